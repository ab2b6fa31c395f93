"""Re-execute chapter notebooks in the smoke profile and store their outputs for nbval.

nbval compares a fresh run with the outputs stored in the notebook, so after editing a chapter
run ``.venv/bin/python scripts/refresh_notebooks.py [notebooks/NAME.ipynb ...]``. Images and
widget state are dropped from the stored outputs: nbval does not compare them, and they would
bloat the repository. Execution counts stay, as nbval needs them. Cells tagged
``nbval-ignore-output`` keep no outputs at all.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
DROP_MIME = ("image/png", "image/jpeg", "image/svg+xml", "application/vnd.jupyter.widget-view+json")


def refresh(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    os.environ.update(COURSE_PROFILE="smoke", PYTHONHASHSEED="0")
    os.environ.pop("MPLBACKEND", None)  # notebooks use the inline backend
    NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    ).execute()
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        cell.metadata.pop("execution", None)
        if "nbval-ignore-output" in cell.metadata.get("tags", []):
            cell.outputs = []
            continue
        for out in cell.outputs:
            for mime in DROP_MIME:
                out.get("data", {}).pop(mime, None)
    nb.metadata.pop("widgets", None)
    nbformat.write(nb, path)
    print(f"refreshed {path.relative_to(ROOT)}")


if __name__ == "__main__":
    paths = [Path(p).resolve() for p in sys.argv[1:]] or sorted(
        (ROOT / "notebooks").glob("*.ipynb")
    )
    for p in paths:
        refresh(p)
