#!/usr/bin/env bash
# Create or refresh the local environment in .venv (idempotent: a second run installs nothing).
# torch/torchvision are pinned and installed first so that no other package pulls a different build.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VENV=.venv
if [ ! -x "$VENV/bin/python" ]; then
    echo "[setup] creating $VENV"
    "$PY" -m venv "$VENV"
    "$VENV/bin/python" -m pip install -q --upgrade pip
fi
if ! "$VENV/bin/python" -c "import torch, torchvision, sys; sys.exit(not (torch.__version__.startswith('2.14.1') and torchvision.__version__.startswith('0.29.1')))" 2>/dev/null; then
    echo "[setup] installing torch==2.14.1 torchvision==0.29.1"
    "$VENV/bin/python" -m pip install -q "torch==2.14.1" "torchvision==0.29.1"
fi
stamp="$VENV/.course_lib-installed"
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "[setup] installing course_lib with its book and test extras"
    "$VENV/bin/python" -m pip install -q -e ".[book,test,timm]"
    "$VENV/bin/python" -m ipykernel install --sys-prefix --name python3 >/dev/null
    echo "$want" > "$stamp"
fi
echo "[setup] environment ready: $VENV ($("$VENV/bin/python" -c 'import torch; print("torch", torch.__version__)'))"
