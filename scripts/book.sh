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
# A notebook that failed to execute is not re-read by an incremental build (its source did not
# change), so its error page would survive a "successful" rebuild: after a failure, read all
# pages again (notebooks that ran are still served from the execution cache).
if [ -d _build/html/reports ]; then
    rm -rf _build/html/reports
    set -- --all "$@"
fi
.venv/bin/jupyter-book build . --warningiserror --keep-going "$@"
# Fixed chapter text may not state what only a run can show (generated sentences do that).
.venv/bin/python -m course_lib lint-prose
echo "[book] built with the $COURSE_PROFILE profile: open _build/html/index.html"
