#!/usr/bin/env bash
# The test command: unit tests, then every chapter executed and compared with nbval (smoke profile).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export COURSE_PROFILE=smoke PYTHONHASHSEED=0
exec .venv/bin/python -m pytest tests notebooks --nbval --nbval-sanitize-with notebooks/sanitize.cfg "$@"
