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
import socket
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

import torch


class CheckpointError(ValueError):
    """A checkpoint or cache file that is missing, corrupt, truncated or not a plain checkpoint."""


#: Temporary files are named ``.<name>.<host>-<pid>.<random>.tmp`` so that a later process can
#: tell a leftover of a killed writer (dead pid on this host, or older than a day) from a file
#: that a live writer is still filling.
_HOST = socket.gethostname().replace(".", "_")
STALE_TMP_SECONDS = 24 * 3600


def _first_line(err: BaseException) -> str:
    """``Type: first line of the message``, also for exceptions without a message."""
    lines = str(err).strip().splitlines()
    return f"{type(err).__name__}: {lines[0]}" if lines else type(err).__name__


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. another user's process
        return True
    return True


def remove_stale_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Delete the temporary files that killed writers left in ``folder``; return them.

    A file counts as left over when its writer's process is gone (same host) or it is older
    than :data:`STALE_TMP_SECONDS`; the files of live writers are kept.
    """
    removed = []
    for tmp in Path(folder).glob(".*.tmp"):
        tag = tmp.name.split(".")[-3] if tmp.name.count(".") >= 4 else ""
        tag_host, _, pid = tag.rpartition("-")
        try:
            old = time.time() - tmp.stat().st_mtime > STALE_TMP_SECONDS
        except OSError:
            continue
        dead = tag_host == _HOST and pid.isdigit() and not _pid_alive(int(pid))
        if old or dead:
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


def ensure_writable(folder: str | os.PathLike) -> None:
    """Create ``folder`` if needed and check that files can be written there (raises OSError)."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as err:
        raise OSError(
            f"cannot write to {folder} ({err.strerror}); choose a writable output folder"
        ) from err


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically; on failure the old file (if any) is untouched."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tag = f"{_HOST}-{os.getpid()}"
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{tag}.", suffix=".tmp")
    except OSError as err:
        raise OSError(
            f"cannot write to {path.parent} ({err.strerror}); choose a writable output folder"
        ) from err
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; a shared cache needs the umask
        os.replace(tmp, path)
    except BaseException as err:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(err, OSError):
            raise OSError(
                f"could not write {path} ({err.strerror}); the previous file is kept. "
                "Free some disk space or choose another output folder."
            ) from err
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented JSON, atomically."""
    atomic_write_bytes(path, json.dumps(obj, indent=2).encode())


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> None:
    """Save a dict of tensors and plain Python values atomically with ``torch.save``."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def _damaged(path: Path, detail: str) -> CheckpointError:
    return CheckpointError(
        f"{path} is corrupt or truncated ({detail}); delete it and train again, or point to "
        "another checkpoint"
    )


def load_checkpoint(path: str | os.PathLike, map_location: Any = "cpu") -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint` with ``weights_only=True``.

    Raises :class:`CheckpointError` naming the file and the fix when it is missing, truncated,
    corrupt, or holds anything but tensors and plain values (e.g. a pickle that runs code).
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}; train first or check the path")
    if path.stat().st_size == 0:
        raise _damaged(path, "it is empty: 0 bytes")
    try:  # torch.load does not check the CRC-32 of each stored record; the zip reader does
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as err:
        raise _damaged(path, _first_line(err)) from err
    if bad is not None:
        raise _damaged(path, f"checksum mismatch in {bad}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        raise CheckpointError(
            f"{path} is not a plain checkpoint (it holds objects that loading would have to "
            f"execute: {_first_line(err)}); only load files you trust, or retrain"
        ) from err
    except Exception as err:  # torch raises many types for damaged files
        raise _damaged(path, _first_line(err)) from err
    if not isinstance(state, dict):
        raise CheckpointError(
            f"{path} does not hold a checkpoint dict; retrain or use another file"
        )
    return state
