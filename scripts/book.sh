#!/usr/bin/env bash
# The book command: set up the environment, execute the chapters (laptop profile unless
# COURSE_PROFILE says otherwise) and write the static site to _build/html.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export COURSE_PROFILE=${COURSE_PROFILE:-laptop}
# The execution cache keys on code, not on the profile: start it afresh when the profile changes.
mkdir -p _build
if [ "$(cat _build/.profile 2>/dev/null)" != "$COURSE_PROFILE" ]; then
    rm -rf _build/.jupyter_cache _build/jupyter_execute
fi
echo "$COURSE_PROFILE" > _build/.profile
.venv/bin/jupyter-book build . --warningiserror --keep-going "$@"
# Fixed chapter text may not state what only a run can show (generated sentences do that).
.venv/bin/python -m course_lib lint-prose
echo "[book] built with the $COURSE_PROFILE profile: open _build/html/index.html"
