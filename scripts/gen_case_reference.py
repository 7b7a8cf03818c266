#!/usr/bin/env python3
"""Regenerate docs/case-files.md from the case schemas of every model."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from pdenet.case import schema_markdown  # noqa: E402

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "docs", "case-files.md")
with open(out, "w") as fh:
    fh.write(schema_markdown())
print(f"wrote {os.path.normpath(out)}")
