#!/usr/bin/env bash
# The test command: unit tests, then every notebook executed under nbval-lax (smoke profile).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# Hermetic runs: a fresh results cache, so no result computed by older code is ever reused.
COURSE_CACHE=$(mktemp -d)
trap 'rm -rf "$COURSE_CACHE"' EXIT
# The browser test's book build and the notebooks under nbval run the same smoke chapters: they
# share this run's fresh cache, so each trained model and analysis is computed once, not twice.
COURSE_TEST_BOOK_CACHE=$COURSE_CACHE
export COURSE_CACHE COURSE_TEST_BOOK_CACHE COURSE_PROFILE=smoke PYTHONHASHSEED=0 COURSE_WIDGETS=0
.venv/bin/python -m pytest tests notebooks --nbval-lax "$@"
