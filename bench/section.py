#!/usr/bin/env python3
"""Replaces one section of bench/RESULTS.md, atomically.

Usage: section.py RESULTS.md NAME SECTION_FILE
The section is everything between "<!-- NAME:begin -->" and
"<!-- NAME:end -->" (SECTION_FILE holds both markers); a missing section is
appended. bench/run.sh keeps the sections when it rewrites its own table.
"""
import os
import re
import sys

path, name, sec = sys.argv[1], sys.argv[2], open(sys.argv[3]).read()
text = open(path).read() if os.path.exists(path) else "# Benchmarks\n"
pat = re.compile(r"<!-- %s:begin -->.*?<!-- %s:end -->\n?" % (re.escape(name), re.escape(name)), re.S)
text = pat.sub("", text).rstrip("\n") + "\n\n" + sec
open(path + ".tmp", "w").write(text)
os.replace(path + ".tmp", path)
