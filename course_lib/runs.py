"""What describes a training run: its settings (:class:`TrainConfig`) and its record
(:class:`History`), kept apart from the loop in :mod:`course_lib.train` that produces them."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of :func:`fit` (defaults: a small DeiT-like recipe)."""

    epochs: int = 10
    lr: float = 1e-3  # peak learning rate, reached after the warm-up
    weight_decay: float = 0.05  # decoupled (AdamW) or L2 (SGD)
    optimizer: str = "adamw"  # "adamw" or "sgd" (momentum 0.9, Nesterov)
    warmup_epochs: float = 1.0  # linear warm-up from 0, then cosine decay to 0
    label_smoothing: float = 0.0  # 0.1 in the paper's recipe
    grad_clip: float | None = 1.0  # max global gradient norm (None: no clipping)
    amp: bool = True  # bfloat16 autocast, used only on CUDA
    seed: int = 0  # seeds initial RNGs and, with the epoch, each epoch's shuffling/augmentation
    channels_last: bool = False  # NHWC memory format (faster convolutions on recent GPUs)
    compile: bool | str = False  # torch.compile the model; a string names its mode
    # Test the model after every ``eval_every``-th epoch and after the last (NaN in between):
    # a run on a small fraction repeats its few images for many short epochs, and testing it
    # at the full run's epoch boundaries keeps the test cost that of the full run.
    eval_every: int = 1
    progress: bool | None = None  # tqdm bars; None: on when stderr is a terminal and not in CI

    def __post_init__(self) -> None:
        if self.eval_every < 1:
            raise ValueError(
                f"eval_every must be >= 1 (test every n-th epoch), got {self.eval_every}"
            )


@dataclass
class History:
    """Per-epoch metrics: lists aligned by epoch (NLL in nats, error in %).

    ``test_nll``/``test_error`` are NaN after epochs the run did not test (``eval_every``).
    ``train_nll``/``train_error`` are running means over each epoch's batches while the weights
    move; ``final_train_nll``/``final_train_error`` are measured once more at the final weights
    (:func:`augmented_pass`), comparable with the test values of the last epoch.
    """

    epoch: list[int] = field(default_factory=list)
    train_nll: list[float] = field(default_factory=list)
    train_error: list[float] = field(default_factory=list)
    test_nll: list[float] = field(default_factory=list)
    test_error: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    final_train_nll: float = math.nan
    final_train_error: float = math.nan

    def append(self, **row: float) -> None:
        for key, value in row.items():
            getattr(self, key).append(value)

    def to_dict(self) -> dict[str, list[float]]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> History:
        return cls(
            **{
                f.name: list(d.get(f.name, [])) if f.type.startswith("list") else d[f.name]
                for f in dataclasses.fields(cls)
                if f.type.startswith("list") or f.name in d
            }
        )


class TrainingDiverged(FloatingPointError):
    """The loss became NaN or infinite."""


__all__ = ["History", "TrainConfig", "TrainingDiverged"]
