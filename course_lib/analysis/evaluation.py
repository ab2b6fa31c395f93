"""One way to evaluate a classifier and to switch its mode, shared by training and the analyses.

:func:`evaluate` sums the NLL and the errors over any iterable of ``(images, labels)`` batches
(a ``DataLoader``, a list, or one big tensor cut by :func:`tensor_batches`); :func:`model_mode`
puts a model in eval (or train) mode for a block and then restores every submodule's own flag.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn


@dataclass(frozen=True)
class Metrics:
    """A classifier's mean NLL (nats), error and accuracy (%) over ``count`` images."""

    nll: float
    error: float
    count: int

    @property
    def accuracy(self) -> float:
        return 100.0 - self.error


@contextlib.contextmanager
def model_mode(model: nn.Module, training: bool = False) -> Iterator[nn.Module]:
    """Put ``model`` in train or eval mode; afterwards restore every submodule's own flag.

    Restoring per module keeps mixed states intact (e.g. frozen BatchNorm inside a training model).
    """
    modes = [(module, module.training) for module in model.modules()]
    model.train(training)
    try:
        yield model
    finally:
        for module, flag in modes:
            module.training = flag


def eval_mode(model: nn.Module) -> contextlib.AbstractContextManager[nn.Module]:
    """:func:`model_mode` in eval mode (BatchNorm running statistics, no dropout)."""
    return model_mode(model, training=False)


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter or buffer (CPU for a stateless model)."""
    for tensor in (*model.parameters(), *model.buffers()):
        return tensor.device
    return torch.device("cpu")


def tensor_batches(
    images: Tensor, labels: Tensor, batch_size: int = 256
) -> Iterator[tuple[Tensor, Tensor]]:
    """``(images, labels)`` cut into consecutive batches of ``batch_size``."""
    for start in range(0, len(images), batch_size):
        yield images[start : start + batch_size], labels[start : start + batch_size]


@torch.no_grad()
def evaluate(
    model: nn.Module,
    batches: Iterable[tuple[Tensor, Tensor]],
    *,
    amp: bool = False,
    reduce: Callable[[Tensor], None] | None = None,
) -> Metrics:
    """Mean NLL and error (%) of ``model`` (in eval mode, restored after) over ``batches``.

    The sums stay on the model's device until the end (one host sync). ``amp`` runs the forward
    pass in bfloat16 autocast on CUDA; ``reduce`` is applied in place to the sums
    ``[nll, wrong, count]`` before they are read (e.g. an all-reduce over DDP ranks).
    """
    device = model_device(model)
    totals = torch.zeros(3, device=device, dtype=torch.float64)  # nll sum, wrong, count
    with eval_mode(model):
        for x, y in batches:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            with torch.autocast(
                device.type, dtype=torch.bfloat16, enabled=amp and device.type == "cuda"
            ):
                logits = model(x)
            totals[0] += F.cross_entropy(logits.float(), y, reduction="sum")
            totals[1] += (logits.argmax(1) != y).sum()
            totals[2] += y.numel()
    if reduce is not None:
        reduce(totals)
    nll, wrong, count = totals.tolist()
    if count == 0:
        raise ValueError("the evaluation data yielded no images; check the dataset or its size")
    return Metrics(nll=nll / count, error=100.0 * wrong / count, count=int(count))


def accuracy(model: nn.Module, images: Tensor, labels: Tensor, batch_size: int = 256) -> float:
    """Accuracy (%) of ``model`` (eval mode) on ``images`` with ``labels``, in batches."""
    return evaluate(model, tensor_batches(images, labels, batch_size)).accuracy


__all__ = [
    "Metrics",
    "accuracy",
    "eval_mode",
    "evaluate",
    "model_device",
    "model_mode",
    "tensor_batches",
]
