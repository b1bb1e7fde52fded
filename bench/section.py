#!/usr/bin/env python3
"""Replaces one section of bench/RESULTS.md, atomically.

Usage: section.py RESULTS.md NAME SECTION_FILE [AFTER]
The section is everything between "<!-- NAME:begin -->" and
"<!-- NAME:end -->" (SECTION_FILE holds both markers); a missing section is
appended. With AFTER (another section's name) the section stays where it is
when it exists, and a missing one goes right after AFTER's end marker (or
at the end when AFTER is missing too); without it an existing section is
moved to the end. bench/run.sh keeps the sections when it rewrites its own
table.
"""
import os
import re
import sys

path, name, sec = sys.argv[1], sys.argv[2], open(sys.argv[3]).read()
after = sys.argv[4] if len(sys.argv) > 4 else None
text = open(path).read() if os.path.exists(path) else "# Benchmarks\n"
pat = re.compile(r"<!-- %s:begin -->.*?<!-- %s:end -->\n?" % (re.escape(name), re.escape(name)), re.S)
if after and pat.search(text):
    sec = sec.rstrip("\n") + "\n"
    text = pat.sub(lambda m: sec, text, count=1)
elif after and "<!-- %s:end -->\n" % after in text:
    mark = "<!-- %s:end -->\n" % after
    i = text.index(mark) + len(mark)
    text = text[:i] + "\n" + sec.rstrip("\n") + "\n" + text[i:]
else:
    text = pat.sub("", text).rstrip("\n") + "\n\n" + sec
open(path + ".tmp", "w").write(text)
os.replace(path + ".tmp", path)
