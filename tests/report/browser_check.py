#!/usr/bin/python3
"""Renders graft's HTML pages (report.html, graft compare --html) in headless
Chromium and checks them the way a person would see them.

For every page: it loads from file:// with nothing fetched from elsewhere
(no resource requests: scripts, styles, fonts and images are all inline), no
message of level SEVERE on the browser console (errors, failed loads), every
<svg> and <table> laid out with a non-zero size, every <img> decoded. A probe
written to console.error proves the console is really being read. A
full-page screenshot is saved next to each page (PAGE.png), as a test
artefact.

Checks given on the command line:
  --count 'SELECTOR=N'   exactly N elements match SELECTOR
  --points 'SELECTOR=N'  every element matching SELECTOR is an SVG polyline
                         with N points (as the browser parsed them)
A check applies to every page that has an element matching the first part of
its selector (e.g. '#plot-loss' for '#plot-loss polyline'); each check must
apply to at least one page.

Exit status: 0 all good, 1 a check failed, 77 Chromium, chromedriver or
selenium is missing (Debian: chromium chromium-driver python3-selenium).

Usage: browser_check.py [--count S=N]... [--points S=N]... PAGE.html...
"""

import argparse
import base64
import os
import shutil
import sys
import tempfile
import time

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
PROBE = "graft-console-probe"


def skip(why):
    print("SKIP: " + why + " (Debian packages: chromium chromium-driver python3-selenium)")
    sys.exit(77)


def parse_check(text):
    selector, sep, n = text.rpartition("=")
    if not sep or not selector or not n.isdigit():
        raise argparse.ArgumentTypeError("expected SELECTOR=N, got %r" % text)
    return selector.strip(), int(n)


def start_browser(profile):
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        skip("python3 module selenium is missing")
    for path in (CHROMIUM, CHROMEDRIVER):
        if not os.path.exists(path):
            skip(path + " is missing")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-extensions", "--no-first-run", "--hide-scrollbars",
                "--force-device-scale-factor=1", "--window-size=1400,1000",
                "--user-data-dir=" + profile):
        options.add_argument(arg)
    # The console (level ALL) is read back with get_log('browser').
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(executable_path=CHROMEDRIVER, log_output=os.devnull) \
        if "log_output" in Service.__init__.__code__.co_varnames \
        else Service(executable_path=CHROMEDRIVER, log_path=os.devnull)
    driver = webdriver.Chrome(service=service, options=options)
    driver.set_page_load_timeout(30)
    driver.set_script_timeout(30)
    return driver


PAGE_FACTS = """
const size = el => { const r = el.getBoundingClientRect(); return [r.width, r.height]; };
return {
  title: document.title,
  resources: performance.getEntriesByType('resource').map(e => e.name),
  svgs: [...document.querySelectorAll('svg')].map(e => [e.id, ...size(e)]),
  tables: [...document.querySelectorAll('table')].map(e => [e.id, ...size(e)]),
  images: [...document.querySelectorAll('img')].map(
      e => [e.title || e.alt, e.complete, e.naturalWidth, e.naturalHeight]),
  scripts: document.querySelectorAll('script').length,
  width: document.documentElement.scrollWidth,
  height: document.documentElement.scrollHeight,
};
"""

COUNT = "return document.querySelectorAll(arguments[0]).length;"
POINTS = """
return [...document.querySelectorAll(arguments[0])].map(
    e => e.points ? e.points.numberOfItems : -1);
"""


def screenshot(driver, path, width, height):
    """A full-page PNG through the DevTools protocol (beyond the viewport)."""
    width = max(1, min(int(width), 4000))
    height = max(1, min(int(height), 20000))
    try:
        shot = driver.execute_cdp_cmd("Page.captureScreenshot", {
            "format": "png", "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": 1}})
        with open(path, "wb") as f:
            f.write(base64.b64decode(shot["data"]))
    except Exception:  # older drivers: the viewport, grown to the page
        driver.set_window_size(max(width, 1400), height + 140)
        driver.save_screenshot(path)


def checks_on_page(driver, checks, kind, script, applied):
    """The --count or --points checks (selector, n) whose root element (the
    selector's first part) is on the page, each with what `script` gives for
    its selector; each one taken is added to `applied` as (kind, index)."""
    for i, (selector, n) in enumerate(checks):
        if driver.execute_script(COUNT, selector.split()[0]) == 0:
            continue
        applied.add((kind, i))
        yield selector, n, driver.execute_script(script, selector)


def check_page(driver, page, counts, points, applied):
    problems = []
    url = "file://" + os.path.abspath(page).replace("%", "%25").replace("#", "%23").replace("?", "%3F")
    driver.get(url)
    facts = driver.execute_script(PAGE_FACTS)
    if not facts["title"]:
        problems.append("the page has no title (not loaded?)")
    for name in facts["resources"]:
        if not name.startswith("data:"):
            problems.append("the page loaded %s (expected everything inline)" % name)
    if facts["scripts"]:
        problems.append("the page has %d <script> elements (expected none)" % facts["scripts"])
    for kind in ("svgs", "tables"):
        for ident, w, h in facts[kind]:
            if not (w > 0 and h > 0):
                problems.append("%s #%s is not laid out (%gx%g)" % (kind[:-1], ident, w, h))
    for label, complete, w, h in facts["images"]:
        if not (complete and w > 0 and h > 0):
            problems.append("image %r did not decode" % label)
    for selector, n, got in checks_on_page(driver, counts, "count", COUNT, applied):
        if got != n:
            problems.append("%d elements match %r (expected %d)" % (got, selector, n))
    for selector, n, got in checks_on_page(driver, points, "points", POINTS, applied):
        if not got or any(p != n for p in got):
            problems.append("polylines %r have %s points (expected %d each)" % (selector, got, n))
    # The console: errors of the page first, then a probe to prove that the
    # console is read at all.
    for entry in driver.get_log("browser"):
        if entry.get("level") == "SEVERE":
            problems.append("console error: %s" % entry.get("message"))
    driver.execute_script("console.error(arguments[0]);", PROBE)
    seen = False
    for _ in range(20):
        if any(PROBE in e.get("message", "") for e in driver.get_log("browser")):
            seen = True
            break
        time.sleep(0.05)
    if not seen:
        problems.append("the console probe was not seen: console errors cannot be checked")
    shot = os.path.splitext(page)[0] + ".png"
    screenshot(driver, shot, facts["width"], facts["height"])
    print("%s: %d svg, %d tables, %d images, %dx%d; screenshot %s" % (
        page, len(facts["svgs"]), len(facts["tables"]), len(facts["images"]),
        facts["width"], facts["height"], shot))
    return problems


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("pages", nargs="+")
    parser.add_argument("--count", action="append", type=parse_check, default=[])
    parser.add_argument("--points", action="append", type=parse_check, default=[])
    args = parser.parse_args()
    for page in args.pages:
        if not os.path.isfile(page):
            print("FAIL: %s does not exist" % page)
            return 1
    profile = tempfile.mkdtemp(prefix="graft-chromium-")
    try:
        try:
            driver = start_browser(profile)
        except SystemExit:
            raise
        except Exception as e:  # a driver that cannot start Chromium
            print("FAIL: cannot start headless Chromium: %s" % e)
            return 1
        problems = []
        applied = set()
        try:
            for page in args.pages:
                problems += ["%s: %s" % (page, p)
                             for p in check_page(driver, page, args.count, args.points, applied)]
        finally:
            driver.quit()
        for i, (selector, _) in enumerate(args.count):
            if ("count", i) not in applied:
                problems.append("no page has %r (for --count %r)" % (selector.split()[0], selector))
        for i, (selector, _) in enumerate(args.points):
            if ("points", i) not in applied:
                problems.append("no page has %r (for --points %r)" % (selector.split()[0], selector))
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    for p in problems:
        print("FAIL: " + p)
    if not problems:
        print("ok: %d page(s)" % len(args.pages))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
