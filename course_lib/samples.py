"""Fixed samples of a profile's data that the chapters analyse, the same on every call.

- :func:`training_batches`: shuffled, augmented training batches (Hessian spectra, surfaces);
- :func:`evaluation_images`: test images as tensors, optionally with a cue removed (noise, cues);
- :func:`evaluation_loader`: the test set in fixed order (lesions, accuracy under noise), or the
  training set as it is, unaugmented (the fit to the images);
- :func:`cue_accuracies`: every model's accuracy on each cue-removal test set (which cue it reads).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Mapping

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Subset, TensorDataset

from course_lib.analysis.evaluation import accuracy
from course_lib.config import Profile
from course_lib.data import CUES, DatasetInfo, get_dataset, make_loaders
from course_lib.steps import PerModel


def training_batches(
    profile: Profile, *, batch_size: int, n_batches: int, fraction: float = 1.0, seed: int = 0
) -> list[tuple[Tensor, Tensor]]:
    """The first ``n_batches`` shuffled, augmented batches of the profile's training set.

    The same data a model with ``fraction`` was trained on (the class-balanced subset of
    chapter 01), augmented as in training (``profile.train.augment``; no mixup), and the same
    batches on every call: the shuffling and the augmentations are seeded by ``seed``, and the
    global RNG is restored afterwards.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        loader, _, _ = make_loaders(
            profile.data_spec(),
            batch_size=batch_size,
            fraction=fraction,
            seed=seed,
            shard=False,  # every rank iterates the same batches, as under one process
        )
        batches = list(itertools.islice(loader, n_batches))
    if len(batches) < n_batches:
        raise ValueError(
            f"the training set gives only {len(batches)} batches of {batch_size}; "
            f"lower n_batches (profile.hessian.batches / landscape.batches) to at most that"
        )
    return batches


def evaluation_images(
    profile: Profile, *, cues: str = "both", n: int | None = None, image_size: int | None = None
) -> tuple[Tensor, Tensor, DatasetInfo]:
    """Normalised test images ``(N, 3, H, W)``, labels ``(N,)`` and the dataset's info.

    ``n`` defaults to the profile's ``analysis_test_images`` (else its whole test set);
    ``image_size`` to the profile's. ``cues`` other than ``"both"`` need the synthetic data
    (cue-removal sets): for the same ``n`` they share every image's background, jitter and label
    with the full set.
    """
    dataset, info = get_dataset(
        profile.data,
        train=False,
        n=n or profile.analysis_test_images or profile.n_test,
        image_size=image_size or profile.image_size,
        cues=cues,
        synthetic_config=profile.synthetic,
    )
    if isinstance(dataset, TensorDataset):
        images, labels = dataset.tensors
    else:  # files (CIFAR, folders): stack once
        batches = list(DataLoader(dataset, batch_size=512))
        images = torch.cat([images for images, _ in batches])
        labels = torch.cat([labels for _, labels in batches])
    return images, labels.long(), info


def evaluation_loader(
    profile: Profile, n: int | None = None, *, train: bool = False, batch_size: int | None = None
) -> DataLoader:
    """The profile's test set (its first ``n`` images if given), in fixed order.

    ``train=True``: the training set instead, as it is: without crops, flips or mixing, the
    images the models were trained on, not as the training objective saw them.
    """
    dataset, _ = get_dataset(
        profile.data,
        train=train,
        n=profile.n_train if train else profile.n_test,
        image_size=profile.image_size,
        synthetic_config=profile.synthetic,
    )
    if n is not None and n < len(dataset):
        dataset = Subset(dataset, range(n))
    return DataLoader(dataset, batch_size=batch_size or profile.train.batch_size, shuffle=False)


def cue_accuracies(
    models: Mapping[str, nn.Module],
    profile: Profile,
    *,
    n: int | None = None,
    image_size: int | None = None,
    batch_size: int = 500,
) -> PerModel[dict[str, float]]:
    """Accuracy (%) of every model on each cue set of the synthetic data, ``{name: {cues: %}}``,
    with the chance level, the images per set and the seconds it took.

    ``"both"`` is the plain test set, ``"low"`` keeps only the low-frequency colour layout (a
    "shape"), ``"high"`` only the texture, ``"none"`` neither (chance). A model that keeps its
    accuracy with one cue alone relies on that cue. The sets share every image's background,
    jitter and label (:func:`evaluation_images` with ``n`` and ``image_size``).
    """
    start = time.perf_counter()
    sets = {
        cues: evaluation_images(profile, cues=cues, n=n, image_size=image_size) for cues in CUES
    }
    result = {
        name: {cues: accuracy(model, *sets[cues][:2], batch_size) for cues in CUES}
        for name, model in models.items()
    }
    images, _, info = sets["both"]
    return PerModel(result, time.perf_counter() - start, 100 / info.num_classes, len(images))


__all__ = [
    "cue_accuracies",
    "evaluation_images",
    "evaluation_loader",
    "training_batches",
]
