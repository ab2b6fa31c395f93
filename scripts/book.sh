#!/usr/bin/env bash
# The book command: set up the environment, execute the chapters (laptop profile unless
# COURSE_PROFILE says otherwise) and write the static site to _build/html.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export COURSE_PROFILE=${COURSE_PROFILE:-laptop} MPLBACKEND=Agg
.venv/bin/jupyter-book build . --warningiserror --keep-going "$@"
echo "[book] open _build/html/index.html"
