"""Datasets: the embedded synthetic data, CIFAR-10/100 and any image folder, and subsets.

``get_dataset(name, train=...)`` returns a dataset of normalised ``(image (3, H, W) float32,
label int)`` pairs and a ``DatasetInfo``; ``subset`` cuts a class-balanced fraction (C2, C4).
Names: ``"synthetic"``, ``"cifar10"``, ``"cifar100"``, ``"folder:PATH"``. The augmentations
live in :mod:`course_lib.data.transforms`, the loaders in :mod:`course_lib.data.loaders`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

import torch
from PIL import Image
from torch.utils.data import Dataset, Subset, TensorDataset
from torchvision import datasets as tv_datasets
from torchvision.transforms import v2

from course_lib.data.synthetic import Cues, SyntheticConfig, make_synthetic
from course_lib.data.transforms import AUGMENTATIONS, Augment, TransformedDataset, image_transform

DATASETS: tuple[str, ...] = ("synthetic", "cifar10", "cifar100", "folder:PATH")
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


# ---------------------------------------------------------------------------------------------
# Transforms


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
    transform = image_transform(augment, config.image_size, mean, std, from_pil=False)
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
    transform = image_transform(augment, size, mean, std, from_pil=True, resize=size != 32)
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
    resize_only = image_transform("none", size, (0.0,) * 3, (1.0,) * 3, from_pil=True, resize=True)
    mean, std = _mean_std(train_part, resize_only)
    transform = image_transform(augment, size, mean, std, from_pil=True, resize=True)
    info = DatasetInfo(f"folder:{path}", len(classes), size, 3, mean, std, tuple(classes))
    return TransformedDataset(train_part if train else test_part, transform), info


# ---------------------------------------------------------------------------------------------
# Samplers


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
        augment: ``"none"``, ``"crop"`` (random crop, black padding), ``"crop_reflect"`` (the same
            shift, reflected padding), ``"basic"`` (crop + flip) or
            ``"strong"`` (+ RandAugment).
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
