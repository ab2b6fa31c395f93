"""A results cache on disk, so expensive runs happen once and every chapter reuses them.

Entries are keyed by a hash of everything that determines the result (model, data, profile,
seed, library version, ...). Each entry is a folder holding ``key.json`` (the full key, checked
on every read, so a hash collision or a stale entry is detected) and the result files, written
atomically. A corrupt or stale entry is reported and recomputed, never silently used.

The cache lives in ``$COURSE_CACHE`` if set, else ``~/.cache/course_lib``.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from course_lib import __version__
from course_lib.io import CheckpointError, atomic_write_json, load_checkpoint, save_checkpoint

CACHE_ENV = "COURSE_CACHE"


def cache_root() -> Path:
    """The cache folder: ``$COURSE_CACHE`` or ``~/.cache/course_lib``."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "course_lib")


def full_key(kind: str, key: dict[str, Any]) -> dict[str, Any]:
    """The key as stored: the caller's fields plus the kind of result and the library version."""
    return {"kind": kind, "version": __version__, **key}


def entry_dir(kind: str, key: dict[str, Any]) -> Path:
    """Folder of the entry for ``key``: ``<root>/<kind>/<sha256 of the key, 16 hex digits>``."""
    blob = json.dumps(full_key(kind, key), sort_keys=True, default=str).encode()
    return cache_root() / kind / hashlib.sha256(blob).hexdigest()[:16]


def key_matches(folder: Path, kind: str, key: dict[str, Any]) -> bool:
    """Whether ``folder/key.json`` holds exactly this key (False if absent or unreadable)."""
    try:
        stored = json.loads((folder / "key.json").read_text())
    except (OSError, ValueError):
        return False
    return stored == json.loads(json.dumps(full_key(kind, key), sort_keys=True, default=str))


def write_key(folder: Path, kind: str, key: dict[str, Any]) -> None:
    atomic_write_json(folder / "key.json", full_key(kind, key))


def cached_result(
    kind: str, key: dict[str, Any], compute: Callable[[], dict[str, Any]], *, refresh: bool = False
) -> dict[str, Any]:
    """Return the cached result for ``key``, computing and storing it if missing or unusable.

    ``compute`` returns a dict of tensors and plain values (saved with ``torch.save`` and
    loaded with ``weights_only=True``). ``refresh=True`` recomputes unconditionally.
    """
    folder = entry_dir(kind, key)
    path = folder / "result.pt"
    if not refresh and path.exists():
        if key_matches(folder, kind, key):
            try:
                return load_checkpoint(path)
            except CheckpointError as err:
                warnings.warn(f"recomputing a damaged cache entry: {err}", stacklevel=2)
        else:
            warnings.warn(f"recomputing a stale cache entry in {folder}", stacklevel=2)
    result = compute()
    write_key(folder, kind, key)
    save_checkpoint(path, result)
    return result
