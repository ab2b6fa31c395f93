"""Safe files: atomic writes and checkpoints that load with ``weights_only=True``.

A crash, a full disk or ``kill -9`` in the middle of a save never leaves a half-written file in
place of a good one: everything is written to a temporary file in the same folder and moved over
the old one with ``os.replace`` (atomic on POSIX and Windows).
"""

from __future__ import annotations

import io
import json
import os
import pickle
import tempfile
from pathlib import Path
from typing import Any

import torch


class CheckpointError(ValueError):
    """A checkpoint or cache file that is missing, corrupt, truncated or not a plain checkpoint."""


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically; on failure the old file (if any) is untouched."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as err:
        raise OSError(
            f"cannot write to {path.parent} ({err.strerror}); choose a writable output folder"
        ) from err
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(err, OSError):
            raise OSError(
                f"could not write {path} ({err.strerror}); the previous file is kept. "
                "Free some disk space or choose another output folder."
            ) from err
        raise


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented JSON, atomically."""
    atomic_write_bytes(path, json.dumps(obj, indent=2).encode())


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> None:
    """Save a dict of tensors and plain Python values atomically with ``torch.save``."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def load_checkpoint(path: str | os.PathLike, map_location: Any = "cpu") -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint` with ``weights_only=True``.

    Raises :class:`CheckpointError` naming the file and the fix when it is missing, truncated,
    corrupt, or holds anything but tensors and plain values (e.g. a pickle that runs code).
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}; train first or check the path")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        raise CheckpointError(
            f"{path} is not a plain checkpoint (it holds objects that loading would have to "
            f"execute: {str(err).splitlines()[0]}); only load files you trust, or retrain"
        ) from err
    except Exception as err:  # torch raises many types for damaged files
        raise CheckpointError(
            f"{path} is corrupt or truncated ({type(err).__name__}: {str(err).splitlines()[0]}); "
            "delete it and train again, or point to another checkpoint"
        ) from err
    if not isinstance(state, dict):
        raise CheckpointError(
            f"{path} does not hold a checkpoint dict; retrain or use another file"
        )
    return state
