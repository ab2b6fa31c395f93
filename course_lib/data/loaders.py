"""Loaders: seeded shuffling, and one sampling order whether 1 or N processes load it.

``make_loaders(data, batch_size=...)`` wraps a dataset's train and test sets
(:func:`course_lib.data.datasets.get_dataset`) into ``DataLoader``s.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, RandomSampler, Sampler

from course_lib.data.datasets import DatasetInfo, DataSpec, get_dataset, subset
from course_lib.data.synthetic import SyntheticConfig
from course_lib.data.transforms import Augment


class RankShard(Sampler[int]):
    """Every ``world``-th index of ``order``, starting at ``rank`` (rank 0 of 1: all of it).

    Given the one-process order, the ranks' batches of ``B / world`` images together hold
    exactly the one-process batch of ``B`` images, step by step. The order is padded by
    repeating its start so every rank gets the same number of indices (only when its length is
    not a multiple of ``world``).
    """

    def __init__(self, order: Sampler[int] | Sequence[int], rank: int, world: int) -> None:
        self.order, self.rank, self.world = order, rank, world

    def __len__(self) -> int:
        return -(-len(self.order) // self.world)

    def __iter__(self) -> Iterator[int]:
        indices = list(self.order)
        indices += indices[: len(self) * self.world - len(indices)]
        return itertools.islice(iter(indices), self.rank, None, self.world)


def _rank_and_world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def make_loaders(
    data: str | DataSpec,
    *,
    batch_size: int,
    fraction: float = 1.0,
    seed: int = 0,
    augment: Augment = "basic",
    image_size: int | None = None,
    root: str | Path | None = None,
    download: bool = False,
    n_train: int | None = None,
    n_test: int | None = None,
    num_workers: int | None = None,
    device: str | torch.device | None = None,
    synthetic_config: SyntheticConfig | None = None,
    verify: bool = True,
    shard: bool = True,
) -> tuple[DataLoader, DataLoader, DatasetInfo]:
    """Train and test loaders for a dataset, and its ``DatasetInfo``.

    The train set is augmented (``augment``), cut to a class-balanced ``fraction`` and shuffled
    by a generator seeded with ``seed``; the test set is neither. Augmentations draw from torch's
    global RNG in the main process (seed it for repeatable runs) and from seeds the loader derives
    from ``seed`` in workers. ``num_workers`` defaults to 0 for the in-memory synthetic data and
    min(8, CPUs) for files; memory is pinned when ``device`` is CUDA.

    ``batch_size`` is the global batch: under ``torch.distributed`` with ``W`` processes each
    rank loads ``batch_size / W`` images (it must divide evenly), and its share of the very
    order one process would use (:class:`RankShard`), so every optimisation step sees the same
    images whatever ``W`` (reseed ``loader.generator`` every epoch, as ``fit`` does). The test
    set is shared out without padding. ``shard=False`` gives every rank the whole one-process
    loaders (for analyses that need the same batches on every rank). ``data`` is a dataset
    name, or a :class:`DataSpec` whose fields replace ``n_train``, ``n_test``, ``image_size``,
    ``augment`` and ``synthetic_config``. Other arguments: see ``get_dataset``.
    """
    name = data
    if isinstance(data, DataSpec):
        name, n_train, n_test = data.name, data.n_train, data.n_test
        image_size, augment, synthetic_config = data.image_size, data.augment, data.synthetic
    rank, world = _rank_and_world() if shard else (0, 1)
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    if batch_size % world:
        raise ValueError(
            f"the batch size {batch_size} is the global batch and must be a multiple of the "
            f"{world} processes; choose e.g. {batch_size - batch_size % world or world}"
        )
    common: dict[str, Any] = dict(
        root=root,
        download=download,
        image_size=image_size,
        seed=seed,
        synthetic_config=synthetic_config,
        verify=verify,
    )
    train_set, info = get_dataset(name, train=True, n=n_train, augment=augment, **common)
    test_set, _ = get_dataset(name, train=False, n=n_test, augment="none", **common)
    if fraction != 1.0:
        train_set = subset(train_set, fraction, seed=seed)
    if num_workers is None:
        # 8 workers fed 7,600 augmented CIFAR images/s, 4 workers 5,100 (benchmarks/bench_gpu.py)
        num_workers = 0 if name == "synthetic" else min(8, os.cpu_count() or 1)
    options: dict[str, Any] = dict(
        batch_size=batch_size // world,
        num_workers=num_workers,
        pin_memory=device is not None and torch.device(device).type == "cuda",
        persistent_workers=num_workers > 0,
    )
    generator = torch.Generator().manual_seed(seed)
    if world > 1:
        order = RandomSampler(train_set, generator=generator)
        train_sampler = RankShard(order, rank, world)
        test_sampler = range(rank, len(test_set), world)  # no padding: metrics are exact
        train_loader = DataLoader(train_set, sampler=train_sampler, generator=generator, **options)
        test_loader = DataLoader(test_set, sampler=test_sampler, **options)
    else:
        train_loader = DataLoader(train_set, shuffle=True, generator=generator, **options)
        test_loader = DataLoader(test_set, shuffle=False, **options)
    return train_loader, test_loader, info
