"""Shared fixtures: small, fast, deterministic data and settings for the whole suite."""

from __future__ import annotations

import os

import matplotlib
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

matplotlib.use("Agg")  # unit tests draw figures without a display

# Two CPU threads at most: CI machines have 2 cores and several tests spawn processes.
torch.set_num_threads(min(2, os.cpu_count() or 1))


def colour_blobs(n: int, num_classes: int = 4, size: int = 32, seed: int = 0) -> TensorDataset:
    """A trivially learnable image set: each class has its own mean colour, plus noise."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % num_classes
    palette = torch.randn(num_classes, 3, 1, 1, generator=torch.Generator().manual_seed(123))
    images = palette[labels] + 0.5 * torch.randn(n, 3, size, size, generator=g)
    return TensorDataset(images, labels)


@pytest.fixture
def blob_loaders():
    """(train_loader, test_loader) over ``colour_blobs``, shuffled by a seeded generator."""

    def make(n_train: int = 128, n_test: int = 64, batch_size: int = 32, size: int = 32):
        train = colour_blobs(n_train, size=size, seed=0)
        test = colour_blobs(n_test, size=size, seed=1)
        g = torch.Generator().manual_seed(0)
        return (
            DataLoader(train, batch_size=batch_size, shuffle=True, generator=g),
            DataLoader(test, batch_size=batch_size),
        )

    return make


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Every test writes results to its own cache folder, never the user's."""
    monkeypatch.setenv("COURSE_CACHE", str(tmp_path_factory.mktemp("cache")))


@pytest.fixture
def cli(monkeypatch, capsys, tmp_path):
    """Run ``python -m course_lib ARGS`` in-process (smoke profile); return (code, out, err)."""
    from course_lib.__main__ import main

    monkeypatch.setenv("COURSE_PROFILE", "smoke")
    monkeypatch.setenv("COURSE_DATA", str(tmp_path / "data"))

    def run(*args: str) -> tuple[int, str, str]:
        code = main(list(args))
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run
