"""Lesion study: remove one residual unit at a time and measure the accuracy lost (claim C8).

Paper: Park & Kim 2022, Sec. 4, Fig. 10b. A trained residual network computes
``x_{l+1} = shortcut(x_l) + branch(x_l)`` in every unit; *removing* a unit means dropping its
residual branch and keeping the shortcut, so the signal still flows through. In a ResNet the
early units matter most; in Swin and AlterNet no single unit matters much, and the MSAs at the
end of a stage matter most.

What "remove" means for each kind of block (the branch's output is replaced by zeros, so the
block returns exactly its shortcut path):

- our conv blocks (:class:`~course_lib.models.layers.PreActBlock`, ``PreActBottleneck``) and
  MSA blocks (``MSABlock``) compute ``skip + drop_path(branch)``: the lesioned block returns
  ``skip``, i.e. its input, or — where the block changes the shape (stride 2 or a new width) —
  the strided 1×1 projection of its pre-activated input, which is the only way to keep the
  signal flowing to the next stage;
- our post-activation conv blocks (``PostActBlock``, ``PostActBottleneck``, chapter 03's
  ResNet) compute ``relu(shortcut + drop_path(branch))``: the lesioned block returns
  ``relu(shortcut)``, as torchvision's blocks below do;
- our transformer sub-blocks (``AttentionResidual`` "msa", ``MlpResidual`` "mlp") return their
  input ``x`` instead of ``x + branch(norm(x))``;
- torchvision's ``BasicBlock`` / ``Bottleneck`` compute ``relu(branch + identity)``: the output
  of the branch's last BatchNorm (``bn2`` / ``bn3``) is zeroed, so the block returns
  ``relu(identity)`` — its input (already non-negative) or its ``downsample`` projection.

The branch is zeroed by a forward hook on the module whose output *is* the branch (our
``drop_path``, torchvision's last BatchNorm), added by the :func:`lesioned` context manager and
removed on exit, also on errors: the model's weights are never touched.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from course_lib.analysis.batches import iter_batches
from course_lib.analysis.evaluation import evaluate
from course_lib.analysis.features import find_feature_modules

UNIT_KINDS = ("conv", "msa", "mlp")
"""Feature kinds that are residual units (stems and patch embeddings are not)."""


def branch_output_module(block: nn.Module) -> nn.Module:
    """The submodule of a residual ``block`` whose output is the residual branch.

    Our blocks: ``block.drop_path`` (they return ``skip + drop_path(branch)``); torchvision
    ``BasicBlock``: ``bn2``; ``Bottleneck``: ``bn3``. Raises ValueError for other modules.
    """
    from torchvision.models.resnet import BasicBlock, Bottleneck

    if isinstance(block, BasicBlock):
        return block.bn2
    if isinstance(block, Bottleneck):
        return block.bn3
    drop_path = getattr(block, "drop_path", None)
    if isinstance(getattr(block, "feature_kind", None), str) and isinstance(drop_path, nn.Module):
        return drop_path
    raise ValueError(
        f"don't know the residual branch of {type(block).__name__}; supported: course_lib blocks "
        "(a `feature_kind` and a `drop_path` module applied to the branch) and torchvision "
        "BasicBlock/Bottleneck"
    )


def residual_units(
    model: nn.Module, kinds: Sequence[str] = UNIT_KINDS
) -> list[tuple[str, nn.Module, str]]:
    """The ``(name, module, kind)`` of every residual unit of ``model``, in definition order.

    Our models: every module whose ``feature_kind`` is in ``kinds``; torchvision ResNets: every
    ``BasicBlock``/``Bottleneck`` (kind ``"conv"``). Each unit's branch must be known to
    :func:`branch_output_module`.
    """
    units = [(n, m, k) for n, m, k in find_feature_modules(model) if k in kinds]
    if not units:
        raise ValueError(f"{type(model).__name__} has no residual units of kinds {tuple(kinds)}")
    for _, module, _ in units:
        branch_output_module(module)  # fail early on blocks we cannot lesion
    return units


def _zero_output(module: nn.Module, args: tuple, output: Tensor) -> Tensor:
    return torch.zeros_like(output)


@contextlib.contextmanager
def lesioned(model: nn.Module, units: str | nn.Module | Iterable[str | nn.Module]) -> Iterator:
    """Within the ``with`` block, the given units of ``model`` contribute only their shortcut.

    ``units``: a module name (as in ``model.named_modules()``), a module, or several of them.
    Weights are untouched; the hooks that zero the residual branches are removed on exit.
    Yields the model.
    """
    if isinstance(units, (str, nn.Module)):
        units = [units]
    modules = dict(model.named_modules())
    targets = []
    for unit in units:
        if isinstance(unit, str):
            if unit not in modules:
                raise ValueError(f"{type(model).__name__} has no module named {unit!r}")
            unit = modules[unit]
        targets.append(branch_output_module(unit))
    handles = []
    try:
        for target in targets:
            handles.append(target.register_forward_hook(_zero_output))
        yield model
    finally:
        for handle in handles:
            handle.remove()


@dataclass
class LesionResult:
    """Accuracy after removing each unit, alone (paper Fig. 10b)."""

    names: list[str]  # module names of the units, in order
    kinds: list[str]  # "conv", "msa" or "mlp"
    clean_accuracy: float  # percent, nothing removed
    clean_nll: float  # nats
    accuracy: Tensor  # (U,) percent with unit u removed
    nll: Tensor  # (U,) nats with unit u removed
    drop: Tensor  # (U,) clean - lesioned accuracy, percentage points
    num_samples: int


def lesion_study(
    model: nn.Module,
    loader_or_tensors: Iterable[Sequence[Tensor]] | tuple[Tensor, Tensor],
    units: Sequence[str] | None = None,
    *,
    max_batches: int | None = None,
) -> LesionResult:
    """Remove each residual unit alone and measure accuracy and NLL (paper Fig. 10b).

    ``loader_or_tensors`` yields ``(images, labels, ...)`` batches or is one ``(images, labels)``
    pair (images with NaN or inf raise ValueError); ``units`` are module names (default:
    :func:`residual_units`). The model runs in eval mode under ``torch.no_grad()`` on its own
    device; every submodule's mode is restored. Cost: ``len(units) + 1`` passes over the data.
    """
    if units is None:
        names, kinds = zip(*[(n, k) for n, _, k in residual_units(model)], strict=True)
    else:
        known = {n: k for n, _, k in residual_units(model)}
        missing = [u for u in units if u not in known]
        if missing:
            raise ValueError(
                f"not residual units of {type(model).__name__}: {missing}; valid: {list(known)}"
            )
        names, kinds = tuple(units), tuple(known[u] for u in units)
    batches = _materialize(loader_or_tensors, max_batches)
    clean_acc, clean_nll, total = _accuracy_nll(model, batches)
    accuracy, nll = [], []
    for name in names:
        with lesioned(model, name):
            acc, loss, _ = _accuracy_nll(model, batches)
        accuracy.append(acc)
        nll.append(loss)
    accuracy_t = torch.tensor(accuracy, dtype=torch.float64)
    return LesionResult(
        names=list(names),
        kinds=list(kinds),
        clean_accuracy=clean_acc,
        clean_nll=clean_nll,
        accuracy=accuracy_t,
        nll=torch.tensor(nll, dtype=torch.float64),
        drop=clean_acc - accuracy_t,
        num_samples=total,
    )


def _materialize(
    data: Iterable[Sequence[Tensor]] | tuple[Tensor, Tensor], max_batches: int | None
) -> list[tuple[Tensor, Tensor]]:
    """The batches as a list, so every lesion sees the same images (even from a shuffled or
    augmented loader). They are held in memory where they are (usually the CPU, where their NaN
    check costs no device sync): pass ``max_batches`` for large datasets."""
    return list(iter_batches(data, None, max_batches, where="lesion_study"))


def _accuracy_nll(model: nn.Module, batches: list[tuple[Tensor, Tensor]]) -> tuple[float, ...]:
    """Accuracy (%), mean NLL (nats) and number of samples of ``model`` on ``batches``."""
    metrics = evaluate(model, batches)
    return metrics.accuracy, metrics.nll, metrics.count
