"""CIFAR-10/100 files in torchvision's on-disk format, filled with random pixels.

The tests and the GPU benchmark use them where the real data cannot be downloaded; load them with
``verify=False`` (their MD5 sums are not CIFAR's).
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np


def write_cifar(root: Path, name: str, per_split: int = 40) -> Path:
    """Write ``name`` ("cifar10" or "cifar100") under ``root``, ``per_split`` images per file.

    CIFAR-10 has five training files, CIFAR-100 one; each has one test file. Labels cycle
    through the classes, so every class is present once ``per_split`` ≥ the class count.
    """
    rng = np.random.default_rng(0)
    rng = np.random.default_rng(0)
    if name == "cifar10":
        folder = root / "cifar-10-batches-py"
        files = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
        label_key, num_classes = "labels", 10
        meta = ("batches.meta", {"label_names": [f"c{i}" for i in range(10)]})
    else:
        folder = root / "cifar-100-python"
        files = ["train", "test"]
        label_key, num_classes = "fine_labels", 100
        meta = ("meta", {"fine_label_names": [f"c{i}" for i in range(100)]})
    folder.mkdir(parents=True)
    for file in files:
        entry = {
            "data": rng.integers(0, 256, (per_split, 3072), dtype=np.uint8),
            label_key: (np.arange(per_split) % num_classes).tolist(),
        }
        (folder / file).write_bytes(pickle.dumps(entry))
    (folder / meta[0]).write_bytes(pickle.dumps(meta[1]))
    return folder
