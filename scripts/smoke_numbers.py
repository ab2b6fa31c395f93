"""Print every chapter's smoke-profile "paper vs. this run" rows as JSON, from a fresh cache.

A refactor that must change no number is checked by running this before and after and comparing
the two files (``diff``): ``python scripts/smoke_numbers.py > before.json``.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
import sys
import tempfile

CHAPTERS = ("ch01_inductive_bias", "ch02_loss_landscape", "ch03_frequency", "ch04_alternet")


def main() -> None:
    os.environ.setdefault("COURSE_CACHE", tempfile.mkdtemp(prefix="smoke-numbers-"))
    os.environ["COURSE_PROFILE"] = "smoke"
    from course_lib.config import get_profile

    profile = get_profile("smoke")
    rows = {}
    for chapter in CHAPTERS:
        module = importlib.import_module(f"course_lib.chapters.{chapter}")
        rows[chapter] = [dataclasses.asdict(r) for r in module.comparisons(profile)]
    json.dump(rows, sys.stdout, indent=1, ensure_ascii=False)
    print()


if __name__ == "__main__":
    main()
