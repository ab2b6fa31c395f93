"""Datasets and loaders: the embedded synthetic data, CIFAR-10/100 and any image folder.

``get_dataset(name, train=...)`` returns a dataset of normalised ``(image (3, H, W) float32,
label int)`` pairs and a ``DatasetInfo``; ``make_loaders`` wraps train and test sets into
``DataLoader``s with a class-balanced subset, seeded shuffling, augmentation and, under
``torchrun``, distributed samplers. Names: ``"synthetic"``, ``"cifar10"``, ``"cifar100"``,
``"folder:PATH"``.

Augmentation follows the DeiT-style recipe of the paper's official CIFAR runs: ``"basic"`` is a
random crop with padding and a horizontal flip, ``"strong"`` adds RandAugment; mixup and CutMix
act on whole batches, so the trainer applies ``mix_transform`` to each batch.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import torch
import torch.distributed as dist
from PIL import Image
from torch.utils.data import DataLoader, Dataset, RandomSampler, Sampler, Subset, TensorDataset
from torchvision import datasets as tv_datasets
from torchvision.transforms import v2

from course_lib.data.synthetic import Cues, SyntheticConfig, make_synthetic

Augment = Literal["none", "basic", "strong"]
DATASETS: tuple[str, ...] = ("synthetic", "cifar10", "cifar100", "folder:PATH")
AUGMENTATIONS: tuple[str, ...] = ("none", "basic", "strong")
SYNTHETIC_SIZES = {True: 10_000, False: 2_000}  # default number of images: train, test


class DatasetError(RuntimeError):
    """Dataset files that are missing, damaged or cannot be downloaded."""


@dataclass(frozen=True)
class DatasetInfo:
    """What a model and a plot need to know about a dataset."""

    name: str  # registry name, e.g. "cifar10" or "folder:/data/pets"
    num_classes: int  # labels are 0 … num_classes − 1
    image_size: int  # height = width of the images the dataset yields
    channels: int  # 3 (RGB)
    mean: tuple[float, ...]  # per-channel mean subtracted from every image
    std: tuple[float, ...]  # per-channel std every image is divided by
    classes: tuple[str, ...] = ()  # class names, in label order


@dataclass(frozen=True)
class DataSpec:
    """Which data a run uses, as one object: what a profile passes whole to :func:`make_loaders`."""

    name: str = "synthetic"  # see DATASETS
    n_train: int | None = None  # training images (None: the dataset's default)
    n_test: int | None = None  # test images
    image_size: int | None = None  # resize to this (None: the dataset's own)
    augment: Augment = "basic"  # augmentation of the training set
    synthetic: SyntheticConfig | None = None  # cue strengths etc. when name == "synthetic"


def _sample_seed(index: int) -> int:
    """The seed of sample ``index``'s random augmentation: a function of the index and of the
    loading process's seed (``torch.initial_seed()``, which ``fit`` sets from (seed, epoch) on
    every rank alike; in a worker, the loader's base seed), not of the samples drawn before."""
    worker = torch.utils.data.get_worker_info()
    base = worker.seed - worker.id if worker is not None else torch.initial_seed()
    return (base * 1_000_003 + index) % 2**63


class TransformedDataset(Dataset):
    """``(transform(image), label)`` for every ``(image, label)`` of another dataset.

    Each sample's random augmentation is seeded by :func:`_sample_seed`, so a sample is augmented
    alike whether one process loads every batch or several processes share them out.
    """

    def __init__(self, dataset: Dataset, transform: Callable[[Any], torch.Tensor]) -> None:
        self.dataset = dataset
        self.transform = transform

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image, label = self.dataset[index]
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(_sample_seed(index))
            return self.transform(image), label


# ---------------------------------------------------------------------------------------------
# Transforms


def _transform(
    augment: str,
    image_size: int,
    mean: Sequence[float],
    std: Sequence[float],
    *,
    from_pil: bool,
    resize: bool = False,
) -> v2.Compose:
    """Image pipeline: [to uint8 tensor, resize] → augmentation → float in [0, 1] → normalise.

    RandAugment runs on uint8 for file datasets (its canonical input) and on floats in [0, 1]
    for the synthetic tensors; the padding of the random crop is 1/8 of the image (4 px at 32).
    """
    if augment not in AUGMENTATIONS:
        raise ValueError(f"augment must be one of {AUGMENTATIONS}, got {augment!r}")
    steps: list[Callable[[Any], Any]] = [v2.ToImage()] if from_pil else []
    if resize:
        steps += [v2.Resize(image_size, antialias=True), v2.CenterCrop(image_size)]
    if augment in ("basic", "strong"):
        steps += [v2.RandomCrop(image_size, padding=image_size // 8), v2.RandomHorizontalFlip()]
    if augment == "strong":
        steps.append(v2.RandAugment(num_ops=2, magnitude=9))  # DeiT's rand-m9
    steps += [v2.ToDtype(torch.float32, scale=True), v2.Normalize(list(mean), list(std))]
    return v2.Compose(steps)


def mix_transform(
    num_classes: int, mixup_alpha: float = 0.8, cutmix_alpha: float = 1.0
) -> Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    """Batch-level mixup or CutMix (one of the two at random per batch, as in DeiT).

    Call it on a batch: ``images (B, C, H, W), labels (B,) int64 -> images, soft labels (B,
    num_classes)``; train with cross-entropy on the soft labels. An alpha of 0 turns that one off.
    """
    choices: list[Callable[..., Any]] = []
    if mixup_alpha > 0:
        choices.append(v2.MixUp(alpha=mixup_alpha, num_classes=num_classes))
    if cutmix_alpha > 0:
        choices.append(v2.CutMix(alpha=cutmix_alpha, num_classes=num_classes))
    if not choices:
        raise ValueError("mix_transform needs mixup_alpha > 0 or cutmix_alpha > 0")
    return choices[0] if len(choices) == 1 else v2.RandomChoice(choices)


# ---------------------------------------------------------------------------------------------
# Subsets


def dataset_labels(dataset: Dataset) -> torch.Tensor:
    """All labels of a dataset as an ``(N,)`` int64 tensor, without loading images where the
    dataset keeps its labels (tensor datasets, CIFAR, image folders, subsets of these)."""
    if isinstance(dataset, Subset):
        return dataset_labels(dataset.dataset)[torch.as_tensor(dataset.indices)]
    if isinstance(dataset, TransformedDataset):
        return dataset_labels(dataset.dataset)
    if isinstance(dataset, TensorDataset):
        return dataset.tensors[1].long()
    targets = getattr(dataset, "targets", None)
    if targets is not None:
        return torch.as_tensor(targets, dtype=torch.long)
    return torch.tensor([int(dataset[i][1]) for i in range(len(dataset))], dtype=torch.long)


def _stratified_indices(labels: torch.Tensor, fraction: float, seed: int) -> torch.Tensor:
    """Per class, the first round(fraction · class size) (at least 1) of a seeded permutation.

    The permutations do not depend on ``fraction``, so a smaller subset is inside a larger one.
    """
    gen = torch.Generator().manual_seed(seed)
    chosen = []
    for label in labels.unique():
        members = (labels == label).nonzero().flatten()
        count = max(1, round(fraction * len(members)))
        chosen.append(members[torch.randperm(len(members), generator=gen)[:count]])
    return torch.cat(chosen).sort().values


def subset(dataset: Dataset, fraction: float, *, seed: int = 0, balanced: bool = True) -> Subset:
    """A seeded random ``fraction`` of a dataset, for the small-data experiments (C2, C4).

    With ``balanced`` (the paper's protocol) every class keeps the same fraction of its images,
    so a balanced dataset stays balanced; with the same seed, smaller subsets are nested in
    larger ones.
    """
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    if balanced:
        indices = _stratified_indices(dataset_labels(dataset), fraction, seed)
    else:
        gen = torch.Generator().manual_seed(seed)
        size = len(dataset)
        indices = (
            torch.randperm(size, generator=gen)[: max(1, round(fraction * size))].sort().values
        )
    return Subset(dataset, indices.tolist())


# ---------------------------------------------------------------------------------------------
# Synthetic


@lru_cache(maxsize=16)
def _synthetic_stats(config: SyntheticConfig) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of 1,000 training images with both cues (used for every split
    and cue set of this config, so they are all normalised alike)."""
    images = make_synthetic(1000, config=config, split="train").tensors[0]
    return tuple(images.mean(dim=(0, 2, 3)).tolist()), tuple(images.std(dim=(0, 2, 3)).tolist())


def _synthetic(
    train: bool,
    config: SyntheticConfig,
    n: int | None,
    cues: Cues,
    augment: str,
) -> tuple[Dataset, DatasetInfo]:
    images, labels = make_synthetic(
        SYNTHETIC_SIZES[train] if n is None else n,
        config=config,
        split="train" if train else "test",
        cues=cues,
    ).tensors
    mean, std = _synthetic_stats(config)
    classes = tuple(f"class {i}" for i in range(config.num_classes))
    info = DatasetInfo("synthetic", config.num_classes, config.image_size, 3, mean, std, classes)
    if augment == "none":  # normalise once, in memory: no per-sample Python work when loading
        images = (images - torch.tensor(mean).view(3, 1, 1)) / torch.tensor(std).view(3, 1, 1)
        return TensorDataset(images, labels), info
    transform = _transform(augment, config.image_size, mean, std, from_pil=False)
    return TransformedDataset(TensorDataset(images, labels), transform), info


# ---------------------------------------------------------------------------------------------
# CIFAR


class _UnverifiedCIFAR10(tv_datasets.CIFAR10):
    """CIFAR-10 that only checks that its files exist. torchvision checks each batch file's MD5,
    which rejects files one writes oneself (tests, re-packed copies); ``check_integrity`` skips the
    MD5 when it is None, so we set it to None in the file lists."""

    train_list = [[name, None] for name, _ in tv_datasets.CIFAR10.train_list]
    test_list = [[name, None] for name, _ in tv_datasets.CIFAR10.test_list]
    meta = {**tv_datasets.CIFAR10.meta, "md5": None}


class _UnverifiedCIFAR100(tv_datasets.CIFAR100):
    """CIFAR-100 that only checks that its files exist (see ``_UnverifiedCIFAR10``)."""

    train_list = [[name, None] for name, _ in tv_datasets.CIFAR100.train_list]
    test_list = [[name, None] for name, _ in tv_datasets.CIFAR100.test_list]
    meta = {**tv_datasets.CIFAR100.meta, "md5": None}


@dataclass(frozen=True)
class _CifarSpec:
    """torchvision's class, our unverified twin, and per-pixel mean and std of the training
    images (the paper's code normalises by the often-quoted CIFAR std (0.2023, 0.1994, 0.2010),
    which is not the per-pixel std)."""

    verified: type[tv_datasets.CIFAR10]
    unverified: type[tv_datasets.CIFAR10]
    mean: tuple[float, ...]
    std: tuple[float, ...]


_CIFAR = {
    "cifar10": _CifarSpec(
        tv_datasets.CIFAR10,
        _UnverifiedCIFAR10,
        mean=(0.4914, 0.4822, 0.4465),
        std=(0.2470, 0.2435, 0.2616),
    ),
    "cifar100": _CifarSpec(
        tv_datasets.CIFAR100,
        _UnverifiedCIFAR100,
        mean=(0.5071, 0.4865, 0.4409),
        std=(0.2673, 0.2564, 0.2762),
    ),
}


def default_root() -> Path:
    """Where datasets live: ``$COURSE_DATA`` if set, else ``./data``."""
    return Path(os.environ.get("COURSE_DATA", "./data"))


def _cifar(
    name: str,
    train: bool,
    root: Path,
    download: bool,
    verify: bool,
    image_size: int | None,
    augment: str,
) -> tuple[Dataset, DatasetInfo]:
    spec = _CIFAR[name]
    verified_cls, mean, std = spec.verified, spec.mean, spec.std
    folder = root / verified_cls.base_folder
    files = [f for f, _ in verified_cls.train_list + verified_cls.test_list]
    files.append(verified_cls.meta["filename"])
    how_to = (
        f"Offline: download {verified_cls.url} elsewhere and unpack it into {root} (which gives "
        f"the {verified_cls.base_folder} folder), or point root / $COURSE_DATA at a folder that "
        "holds it."
    )
    if download and not all((folder / f).is_file() for f in files):
        try:  # torchvision downloads, checks the archive's MD5 and unpacks it
            verified_cls(str(root), train=train, download=True)
        except (OSError, RuntimeError, ValueError) as err:  # urllib's URLError is an OSError
            raise DatasetError(f"Downloading {name} failed ({err}). {how_to}") from err
    missing = [f for f in files if not (folder / f).is_file()]
    if missing:
        raise FileNotFoundError(
            f"{name} not found: {folder} lacks {', '.join(missing)}. "
            f"Pass download=True when online. {how_to}"
        )
    try:
        base = (verified_cls if verify else spec.unverified)(str(root), train=train)
    except RuntimeError as err:
        raise DatasetError(
            f"The {name} files in {folder} failed torchvision's MD5 check: delete them and "
            "download again, or pass verify=False if you wrote them yourself."
        ) from err
    except Exception as err:  # unpickling a damaged file raises many types
        raise DatasetError(
            f"The {name} files in {folder} are damaged ({type(err).__name__}: {err}): delete "
            f"the folder and download again. {how_to}"
        ) from err
    size = image_size or 32
    transform = _transform(augment, size, mean, std, from_pil=True, resize=size != 32)
    info = DatasetInfo(name, len(base.classes), size, 3, mean, std, tuple(base.classes))
    return TransformedDataset(base, transform), info


# ---------------------------------------------------------------------------------------------
# Image folders


def _load_image(path: str) -> Image.Image:
    """An RGB image; a damaged or truncated file raises :class:`DatasetError` naming it."""
    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except (OSError, ValueError, SyntaxError) as err:  # PIL's errors for damaged files
        raise DatasetError(f"cannot read image {path} ({err}); replace or delete the file") from err


def _check_images(folder: tv_datasets.ImageFolder) -> None:
    """Decode every image before any training, so a damaged or truncated file in the test split
    is reported at once rather than after a full epoch. JPEGs decode at reduced size (PIL's
    draft mode), which still reads all their data, so the check stays cheap."""
    for path, _ in folder.samples:
        try:
            with Image.open(path) as image:
                image.draft("RGB", (8, 8))
                image.load()
        except (OSError, ValueError, SyntaxError) as err:
            raise DatasetError(
                f"cannot read image {path} ({err}); replace or delete the file"
            ) from err


def _image_folder(root: Path) -> tv_datasets.ImageFolder:
    """``ImageFolder`` whose errors say what a class folder layout should look like."""
    layout = f"expected one sub-folder per class with images inside, e.g. {root}/cat/001.png"
    try:
        folder = tv_datasets.ImageFolder(str(root), loader=_load_image)
    except FileNotFoundError as err:  # no class folders, or class folders without images
        raise ValueError(f"Folder dataset {root} is empty ({err}); {layout}.") from err
    if len(folder.classes) < 2:
        raise ValueError(
            f"Folder dataset {root} has {len(folder.classes)} class ({folder.classes}); "
            f"classification needs at least two: {layout}."
        )
    _check_images(folder)
    return folder


def _mean_std(dataset: Dataset, transform: v2.Compose, count: int = 256) -> tuple[tuple, tuple]:
    """Per-channel mean and std of up to ``count`` images (evenly spaced) after ``transform``;
    a constant channel gets std 1 rather than a division by zero."""
    step = max(1, len(dataset) // count)
    images = torch.stack([transform(dataset[i][0]) for i in range(0, len(dataset), step)])
    std = images.std(dim=(0, 2, 3))
    std = torch.where(std > 1e-6, std, 1.0)
    return tuple(images.mean(dim=(0, 2, 3)).tolist()), tuple(std.tolist())


def _folder(
    path: Path, train: bool, image_size: int | None, augment: str, seed: int
) -> tuple[Dataset, DatasetInfo]:
    """``PATH/train/<class>/…`` and ``PATH/test/<class>/…``, or ``PATH/<class>/…`` split 80/20
    per class by ``seed``. Images are resized and centre-cropped to ``image_size`` (default 32).
    Mean and std are measured on (a sample of) the training images."""
    if not path.is_dir():
        raise FileNotFoundError(f"Folder dataset {path} does not exist or is not a directory.")
    if (path / "train").is_dir() and (path / "test").is_dir():
        train_folder, test_folder = _image_folder(path / "train"), _image_folder(path / "test")
        classes = train_folder.classes
        if test_folder.classes != classes:
            raise ValueError(
                f"Folder dataset {path}: train classes {classes} differ from test classes "
                f"{test_folder.classes}."
            )
        train_part: Dataset = train_folder
        test_part: Dataset = test_folder
    else:
        everything = _image_folder(path)
        classes = everything.classes
        train_idx = _stratified_indices(torch.as_tensor(everything.targets), 0.8, seed)
        is_test = torch.ones(len(everything), dtype=torch.bool)
        is_test[train_idx] = False
        train_part = Subset(everything, train_idx.tolist())
        test_part = Subset(everything, is_test.nonzero().flatten().tolist())
    size = image_size or 32
    resize_only = _transform("none", size, (0.0,) * 3, (1.0,) * 3, from_pil=True, resize=True)
    mean, std = _mean_std(train_part, resize_only)
    transform = _transform(augment, size, mean, std, from_pil=True, resize=True)
    info = DatasetInfo(f"folder:{path}", len(classes), size, 3, mean, std, tuple(classes))
    return TransformedDataset(train_part if train else test_part, transform), info


# ---------------------------------------------------------------------------------------------
# Samplers


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


# ---------------------------------------------------------------------------------------------
# Entry points


def list_datasets() -> list[str]:
    """The dataset names ``get_dataset`` accepts (``folder:PATH`` with a real path)."""
    return list(DATASETS)


def get_dataset(
    name: str,
    *,
    train: bool,
    root: str | Path | None = None,
    download: bool = False,
    image_size: int | None = None,
    cues: Cues = "both",
    n: int | None = None,
    augment: Augment = "none",
    seed: int = 0,
    synthetic_config: SyntheticConfig | None = None,
    verify: bool = True,
) -> tuple[Dataset, DatasetInfo]:
    """One split of a dataset, normalised by its mean and std, and its ``DatasetInfo``.

    Args:
        name: ``"synthetic"`` (in memory; ``n`` images, default 10,000 train / 2,000 test),
            ``"cifar10"``, ``"cifar100"`` (files under ``root``, default ``$COURSE_DATA`` or
            ``./data``) or ``"folder:PATH"``.
        image_size: output height = width; default 32 (synthetic images are generated at this size,
            others are resized).
        cues: synthetic only — which class cues the images carry (``"both"``, ``"low"``, ``"high"``,
            ``"none"``; see ``course_lib.data.synthetic``).
        n: synthetic: number of images; others: keep a class-balanced seeded subset of about ``n``.
        augment: ``"none"``, ``"basic"`` (crop + flip) or ``"strong"`` (+ RandAugment).
        seed: seeds the 80/20 split of a single image folder and the subset of ``n`` images. It does
            not change the synthetic images: like a downloaded dataset they are fixed, by
            ``synthetic_config`` (default ``SyntheticConfig()``, whose own ``seed`` is 0), so that a
            cue-removal test set made later always matches the classes a model was trained on.
        synthetic_config: cue strengths, classes, seed… of the synthetic data (ignored by others).
        verify: check the MD5 of the CIFAR files (turn off for files you wrote yourself).

    Returns ``(dataset, info)``; the dataset yields ``(image (3, H, W) float32, label int)``.
    """
    if augment not in AUGMENTATIONS:
        raise ValueError(f"augment must be one of {AUGMENTATIONS}, got {augment!r}")
    if name != "synthetic" and cues != "both":
        raise ValueError(f"cues={cues!r} needs the synthetic dataset; {name!r} has no cue sets")
    if name == "synthetic":
        config = synthetic_config or SyntheticConfig()
        if image_size is not None:
            config = replace(config, image_size=image_size)
        return _synthetic(train, config, n, cues, augment)
    if name in _CIFAR:
        root_path = Path(root).expanduser() if root is not None else default_root()
        dataset, info = _cifar(name, train, root_path, download, verify, image_size, augment)
    elif name.startswith("folder:"):
        dataset, info = _folder(Path(name[7:]).expanduser(), train, image_size, augment, seed)
    else:
        raise ValueError(f"Unknown dataset {name!r}; valid names: {', '.join(DATASETS)}")
    if n is not None:
        dataset = subset(dataset, min(1.0, n / len(dataset)), seed=seed)
    return dataset, info


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
