"""Notebooks are committed without outputs: nothing in the repository looks like a result that
only the smoke profile printed (the book shows the laptop run's outputs)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_notebooks_carry_no_outputs():
    notebooks = sorted(str(p) for p in (ROOT / "notebooks").rglob("*.ipynb"))
    nbstripout = Path(sys.executable).with_name("nbstripout")
    done = subprocess.run(
        [str(nbstripout), "--verify", *notebooks], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, (
        f"notebooks with outputs: {done.stdout}{done.stderr}; strip them with "
        f"`.venv/bin/nbstripout notebooks/*.ipynb`"
    )
