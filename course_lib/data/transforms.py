"""Augmentations: the DeiT-style recipe of the paper's official CIFAR runs.

``"crop"`` is a random crop with black padding (a translation of the whole image, as in the
paper's CIFAR runs), ``"crop_reflect"`` the same translation with the uncovered strip filled by
reflecting the image, ``"basic"`` adds a horizontal flip to ``"crop"``, ``"strong"`` adds
RandAugment
(:func:`image_transform`); each image's random draws are seeded by the image
(:class:`TransformedDataset`), so 1 and N processes augment alike. Mixup and CutMix act on whole
batches, so the trainer applies :func:`mix_transform` to each batch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal

import torch
from torch.utils.data import Dataset
from torchvision.transforms import v2

Augment = Literal["none", "crop", "crop_reflect", "basic", "strong"]
AUGMENTATIONS: tuple[str, ...] = ("none", "crop", "crop_reflect", "basic", "strong")


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
        # The transforms draw from the CPU generator alone. torch.manual_seed would also seed
        # every accelerator lazily, recording a stack trace each time: half the loading time.
        with torch.random.fork_rng(devices=[]):
            torch.default_generator.manual_seed(_sample_seed(index))
            return self.transform(image), label


def image_transform(
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
    if augment != "none":
        # A black strip marks how far the image moved, a reflected one hardly does; no test
        # image has a black border, so a model that reads the strip fits its training batches
        # better than its test images.
        fill = "reflect" if augment == "crop_reflect" else "constant"
        steps.append(v2.RandomCrop(image_size, padding=image_size // 8, padding_mode=fill))
    if augment in ("basic", "strong"):
        steps.append(v2.RandomHorizontalFlip())
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
