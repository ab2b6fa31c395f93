"""A results cache on disk, so expensive runs happen once and every chapter reuses them.

Entries are keyed by a hash of everything that determines the result (model, data, profile,
seed, library version, ...). Each entry is a folder holding ``result.pt`` and ``key.json``, both
written atomically. The payload carries its own full key (:func:`stamp`), checked on every read
together with the zip's checksums, so the key and the result cannot disagree: an interrupted or
failed write after a code edit leaves an entry that reads as stale, never an old result under the
new key. ``key.json`` is a readable label written after the payload. A corrupt, empty or stale
entry is reported once and recomputed, never silently used.

The stored key also holds a fingerprint of the library's source code (:func:`code_fingerprint`),
so editing the code without bumping the version makes the entry stale and it is recomputed in
place (with a warning) rather than silently reused.

Under ``torch.distributed`` (``torchrun``), rank 0 alone reads and writes the cache and tells
the other ranks what it found, so every rank takes the same path (see :func:`cached_result`).

The cache lives in ``$COURSE_CACHE`` if set, else ``~/.cache/course_lib``.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch.distributed as dist

from course_lib import __version__
from course_lib.io import (
    CheckpointError,
    atomic_write_json,
    load_checkpoint,
    remove_stale_temporaries,
    save_checkpoint,
)

CACHE_ENV = "COURSE_CACHE"
#: The payload field that holds the entry's full key (removed from what the caller gets back).
STAMP = "_cache_key"

#: The package root whose source the fingerprints hash.
PACKAGE_ROOT = Path(__file__).resolve().parent
#: The parts of the package (relative to :data:`PACKAGE_ROOT`) that can change a trained model's
#: weights; every other kind of result depends on the whole package.
TRAINING_SOURCES: tuple[str, ...] = (
    "models",
    "data",
    "train.py",
    "experiments.py",
)


def cache_root() -> Path:
    """The cache folder: ``$COURSE_CACHE`` or ``~/.cache/course_lib``."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "course_lib")


def source_fingerprint(root: Path, parts: tuple[str, ...] | None = None) -> str:
    """sha256 (16 hex digits) of every ``*.py`` file under ``root`` (or its ``parts``).

    The hash covers the sorted relative paths and the bytes of the files, so an edit, a new
    file, a removed file or a rename changes it; timestamps and ``__pycache__`` do not.
    """
    roots = [root / part for part in parts] if parts is not None else [root]
    files = sorted(
        {f for r in roots for f in ([r] if r.is_file() else r.rglob("*.py")) if f.suffix == ".py"}
    )
    digest = hashlib.sha256()
    for file in files:
        data = file.read_bytes()
        digest.update(f"{file.relative_to(root).as_posix()}\0{len(data)}\0".encode())
        digest.update(data)
    return digest.hexdigest()[:16]


@functools.cache
def code_fingerprint(kind: str) -> str:
    """Fingerprint of the source code a result of ``kind`` depends on (computed once a process).

    A ``"trained"`` model depends only on :data:`TRAINING_SOURCES` (models, data, training loop,
    the experiment recipe; the profile values a run uses are in its key, so an edit to another
    profile setting keeps it): retraining is expensive, so a trained model is invalidated
    only by code that can change its weights, not by an edit to an analysis, a plot or a
    chapter. Every other kind (the analyses) is cheap next to training and may depend on any
    part of the library, so it depends on the whole ``course_lib`` package.
    """
    return source_fingerprint(PACKAGE_ROOT, TRAINING_SOURCES if kind == "trained" else None)


def full_key(kind: str, key: dict[str, Any]) -> dict[str, Any]:
    """The key as stored: the caller's fields plus the kind, library version and code hash."""
    return {**_identity(kind, key), "code": code_fingerprint(kind)}


def _identity(kind: str, key: dict[str, Any]) -> dict[str, Any]:
    # The folder name hashes this (no code fingerprint), so after a code edit the same folder
    # holds a stale entry, which is reported and recomputed in place instead of piling up.
    return {"kind": kind, "version": __version__, **key}


def entry_dir(kind: str, key: dict[str, Any]) -> Path:
    """Folder of the entry for ``key``: ``<root>/<kind>/<sha256 of the key, 16 hex digits>``.

    The hash leaves out the code fingerprint: an edit to the library makes the entry in the
    same folder stale (see :func:`key_matches`) rather than starting a new folder.
    """
    blob = json.dumps(_identity(kind, key), sort_keys=True, default=str).encode()
    return cache_root() / kind / hashlib.sha256(blob).hexdigest()[:16]


def key_matches(folder: Path, kind: str, key: dict[str, Any]) -> bool:
    """Whether ``folder/key.json`` holds exactly this key (False if absent or unreadable)."""
    try:
        stored = json.loads((folder / "key.json").read_text())
    except (OSError, ValueError):
        return False
    return stored == json.loads(json.dumps(full_key(kind, key), sort_keys=True, default=str))


def write_key(folder: Path, kind: str, key: dict[str, Any]) -> None:
    """Write the readable label ``folder/key.json`` (after the payload it describes)."""
    atomic_write_json(folder / "key.json", full_key(kind, key))


def stamp(kind: str, key: dict[str, Any]) -> dict[str, Any]:
    """``{STAMP: full key}``, to store inside a payload so that it names its own key."""
    return {STAMP: json.dumps(full_key(kind, key), sort_keys=True, default=str)}


def stamp_matches(payload: dict[str, Any], kind: str, key: dict[str, Any]) -> bool:
    """Whether ``payload`` was stamped with exactly this key and the current code."""
    return payload.get(STAMP) == stamp(kind, key)[STAMP]


def checkpoint_matches(path: Path, kind: str, key: dict[str, Any]) -> bool:
    """Whether the checkpoint at ``path`` loads and its ``meta`` is stamped with this key.

    A damaged checkpoint is reported and removed, so the run starts afresh.
    """
    if not path.exists():
        return False
    try:
        state = load_checkpoint(path)
    except CheckpointError as err:
        warnings.warn(f"starting afresh: {err}", stacklevel=2)
        path.unlink(missing_ok=True)
        return False
    return stamp_matches(state.get("meta") or {}, kind, key)


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def is_rank0() -> bool:
    """True in a single process, and on rank 0 of a ``torch.distributed`` group."""
    return not _distributed() or dist.get_rank() == 0


def agree(flag: bool) -> bool:
    """Rank 0's ``flag`` on every rank (a collective under ``torch.distributed``); else ``flag``."""
    if not _distributed():
        return flag
    box = [flag]
    dist.broadcast_object_list(box, src=0)
    return bool(box[0])


def _read_entry(folder: Path, kind: str, key: dict[str, Any]) -> dict[str, Any] | None:
    """The stored result, or None (with a warning if the entry is stale or damaged).

    A damaged entry is deleted, so it is reported once even if recomputing it fails.
    """
    path = folder / "result.pt"
    if not path.exists():
        return None
    if not key_matches(folder, kind, key):
        warnings.warn(f"recomputing a stale cache entry in {folder}", stacklevel=3)
        return None
    try:
        payload = load_checkpoint(path)
    except CheckpointError as err:
        warnings.warn(f"recomputing a damaged cache entry: {err}", stacklevel=3)
        path.unlink(missing_ok=True)
        return None
    if not stamp_matches(payload, kind, key):
        warnings.warn(f"recomputing a stale cache entry in {folder}", stacklevel=3)
        return None
    payload.pop(STAMP)
    return payload


def _write_entry(folder: Path, kind: str, key: dict[str, Any], result: dict[str, Any]) -> None:
    """Store ``result`` stamped with its key, then the label; warn (not raise) if that fails."""
    try:
        save_checkpoint(folder / "result.pt", {**result, **stamp(kind, key)})
        write_key(folder, kind, key)
    except OSError as err:
        warnings.warn(f"the result is used but was not cached: {err}", stacklevel=3)


def cached_result(
    kind: str, key: dict[str, Any], compute: Callable[[], dict[str, Any]], *, refresh: bool = False
) -> dict[str, Any]:
    """Return the cached result for ``key``, computing and storing it if missing or unusable.

    ``compute`` returns a dict of tensors and plain values (saved with ``torch.save`` and
    loaded with ``weights_only=True``). ``refresh=True`` recomputes unconditionally. A result
    that cannot be stored (full disk, read-only cache) is still returned, with a warning.

    Under ``torch.distributed`` every rank must call this with the same arguments: rank 0 alone
    reads the entry and tells the others whether it is usable. On a hit every rank loads it; on
    a miss every rank runs ``compute`` (which may use collectives, e.g. a sharded Hessian),
    rank 0 alone writes the entry, and all ranks wait for the write before returning.
    """
    folder = entry_dir(kind, key)
    if is_rank0() and folder.is_dir():
        remove_stale_temporaries(folder)
    result = _read_entry(folder, kind, key) if is_rank0() and not refresh else None
    if agree(result is not None):
        if result is None:
            result = load_checkpoint(folder / "result.pt")
            result.pop(STAMP, None)
        return result
    result = compute()
    if is_rank0():
        _write_entry(folder, kind, key, result)
    if _distributed():
        dist.barrier()
    return result
