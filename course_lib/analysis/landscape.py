"""Filter-normalized loss landscapes: 1-D curves and 2-D surfaces around trained weights.

The paper (Park & Kim, ICLR 2022, Fig. 1a and Fig. C.4a; official ``losslandscape.ipynb``) draws
the loss on a 21 x 21 grid over [-1, 1]^2 spanned by two random directions normalized filter by
filter (Li et al., "Visualizing the Loss Landscape of Neural Nets", NeurIPS 2018), with the model
in eval mode. This module computes such surfaces for any ``nn.Module``:

* :func:`filter_normalized_direction` draws one direction, :func:`filter_normalized_direction_pair`
  two.
* :func:`loss_surface_1d` and :func:`loss_surface_2d` evaluate loss and accuracy at
  ``theta + alpha * d (+ beta * e)``.

The weights are moved in place (no model copies per grid point) and restored exactly afterwards,
also when the loss raises. The loss is NLL only by default; ``weight_decay > 0`` adds the official
code's L2 term ``weight_decay * sum_p ||p||_2`` (see :func:`loss_surface_2d`). Every figure must
say which one it shows: the returned surfaces carry a ``label`` for that.

Under ``torch.distributed`` the grid points are shared out round-robin across ranks and gathered
with one ``all_reduce``, so every rank returns the full surface.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist
from numpy.typing import ArrayLike
from torch import Tensor, nn
from tqdm.auto import tqdm

from course_lib.analysis.batches import iter_batches
from course_lib.analysis.evaluation import eval_mode

Batch = tuple[Tensor, Tensor]
LossFn = Callable[[Tensor, Tensor], Tensor]

# The official notebook's grid: 21 points over [-1, 1] on each axis.
DEFAULT_COORDS: np.ndarray = np.linspace(-1.0, 1.0, 21)

# Li et al. 2018 add this to a filter's norm before dividing by it.
_EPS = 1e-10


@dataclass(frozen=True)
class Surface1D:
    """Loss and accuracy along one direction, ``theta + alpha * d``."""

    alphas: np.ndarray  # (n,) step sizes along the direction
    loss: np.ndarray  # (n,) mean NLL (+ L2 term when weight_decay > 0) at each alpha
    accuracy: np.ndarray  # (n,) mean metric (top-1 accuracy by default) at each alpha
    weight_decay: float  # coefficient of the L2 term included in ``loss`` (0: NLL only)
    label: str  # "NLL" or "NLL + L2 (wd=...)": what ``loss`` is, for axis labels


@dataclass(frozen=True)
class Surface2D:
    """Loss and accuracy on a grid, ``theta + x * d + y * e``.

    Arrays follow matplotlib's (and ``np.meshgrid``'s) layout: ``loss[i, j]`` is the loss at
    ``(xs[j], ys[i])``, so ``plt.contour(xs, ys, loss)`` draws it directly.
    """

    xs: np.ndarray  # (nx,) coordinates along the first direction
    ys: np.ndarray  # (ny,) coordinates along the second direction
    loss: np.ndarray  # (ny, nx) mean NLL (+ L2 term when weight_decay > 0)
    accuracy: np.ndarray  # (ny, nx) mean metric (top-1 accuracy by default)
    weight_decay: float  # coefficient of the L2 term included in ``loss`` (0: NLL only)
    label: str  # "NLL" or "NLL + L2 (wd=...)": what ``loss`` is, for axis labels


def top1_accuracy(outputs: Tensor, targets: Tensor) -> Tensor:
    """Fraction of rows of ``outputs`` (B, C) whose argmax is the target.

    ``targets`` are class indices (B,) or soft labels (B, C) (e.g. mixup), whose argmax is used.
    """
    if targets.dim() == outputs.dim():
        targets = targets.argmax(dim=-1)
    return (outputs.argmax(dim=-1) == targets).float().mean()


def filter_normalized_direction(
    model: nn.Module,
    *,
    generator: torch.Generator | None = None,
    ignore: str | None = "biasbn",
    exclude: Sequence[str] = (),
) -> list[Tensor]:
    """A Gaussian random direction in weight space, normalized filter by filter (Li et al. 2018).

    Returns one tensor per parameter, in ``model.parameters()`` order, with the parameter's shape,
    dtype and device. For a parameter with >= 2 dims, every output filter ``d[i]`` (index ``i``
    along dim 0: a conv's output channel, a linear layer's output row) is rescaled to the norm of
    the matching weight filter, ``d[i] * ||w[i]|| / ||d[i]||``.

    Args:
        generator: draws the Gaussian noise (on the generator's device), for reproducibility.
        ignore: ``"biasbn"`` (default, Li et al. and the official code) zeroes the direction of
            1-D and 0-D parameters (biases, norm weights); ``None`` treats each of their entries as
            a filter of size 1, i.e. ``|d_k| = |w_k|`` with a random sign.
        exclude: regular expressions; parameters whose name (``model.named_parameters()``)
            matches one get a zero direction. The official notebook excludes ``"pos_embed"`` and
            ``"relative_position"``.
    """
    if ignore not in ("biasbn", None):
        raise ValueError(f"ignore must be 'biasbn' or None, got {ignore!r}")
    direction = []
    for name, weight in model.named_parameters():
        w = weight.detach()
        skip = any(re.search(pattern, name) for pattern in exclude)
        if skip or (w.dim() < 2 and ignore == "biasbn"):
            direction.append(torch.zeros_like(w))
            continue
        noise_device = generator.device if generator is not None else w.device
        d = torch.randn(w.shape, generator=generator, device=noise_device, dtype=w.dtype).to(w)
        # Filters are indexed along dim 0, as in Li et al. 2018. The official how-do-vits-work
        # helper takes the norm over dim 0 instead (a transposed axis); we follow Li et al.
        # Li et al.'s code sets d = w for 1-D tensors when not ignoring them; we keep a random sign.
        rows = w.shape[0] if w.dim() >= 2 else w.numel()
        w_rows, d_rows = w.reshape(rows, -1), d.reshape(rows, -1)  # (filters, filter size)
        scale = w_rows.norm(dim=1, keepdim=True) / (d_rows.norm(dim=1, keepdim=True) + _EPS)
        direction.append((d_rows * scale).reshape(w.shape))
    return direction


def filter_normalized_direction_pair(
    model: nn.Module,
    *,
    generator: torch.Generator | None = None,
    ignore: str | None = "biasbn",
    exclude: Sequence[str] = (),
) -> tuple[list[Tensor], list[Tensor]]:
    """Two independent filter-normalized directions, for :func:`loss_surface_2d`.

    Arguments as in :func:`filter_normalized_direction`; the second direction is drawn right after
    the first from the same generator.
    """
    kwargs = {"generator": generator, "ignore": ignore, "exclude": exclude}
    first = filter_normalized_direction(model, **kwargs)
    return first, filter_normalized_direction(model, **kwargs)


def loss_surface_1d(
    model: nn.Module,
    loss_fn: LossFn,
    data: Batch | Sequence[Batch] | Iterable[Batch],
    direction: Sequence[Tensor],
    alphas: ArrayLike = DEFAULT_COORDS,
    *,
    weight_decay: float = 0.0,
    metric: LossFn = top1_accuracy,
    max_batches: int | None = None,
    progress: bool = False,
) -> Surface1D:
    """Loss and accuracy at ``theta + alpha * direction`` for every ``alpha`` in ``alphas``.

    Same evaluation as :func:`loss_surface_2d` (eval mode, in-place weights restored exactly,
    NLL-only by default, distributed over ranks); see there for the arguments.
    """
    alphas = np.asarray(alphas, dtype=np.float64).reshape(-1)
    loss, accuracy = _evaluate_grid(
        model,
        loss_fn,
        data,
        [direction],
        alphas[:, None],
        weight_decay=weight_decay,
        metric=metric,
        max_batches=max_batches,
        progress=progress,
        where="loss_surface_1d",
    )
    return Surface1D(alphas, loss, accuracy, weight_decay, _label(weight_decay))


def loss_surface_2d(
    model: nn.Module,
    loss_fn: LossFn,
    data: Batch | Sequence[Batch] | Iterable[Batch],
    directions: tuple[Sequence[Tensor], Sequence[Tensor]],
    xs: ArrayLike = DEFAULT_COORDS,
    ys: ArrayLike = DEFAULT_COORDS,
    *,
    weight_decay: float = 0.0,
    metric: LossFn = top1_accuracy,
    max_batches: int | None = None,
    progress: bool = False,
) -> Surface2D:
    """Loss and accuracy on the grid ``theta + x * d + y * e``, x in ``xs``, y in ``ys``.

    The official notebook's surface (Park & Kim 2022, Fig. 1a): 21 x 21 points over [-1, 1]^2
    by default, model in eval mode.

    Args:
        model: any module; the device is taken from its parameters. It is put in eval mode for the
            evaluation and every submodule's train/eval flag is restored afterwards. Its
            parameters are overwritten in place under ``torch.no_grad()`` at each grid point and
            restored bit for bit from one saved copy at the end, also on exception. A
            ``DistributedDataParallel`` wrapper is unwrapped.
        loss_fn: ``loss_fn(outputs, targets)`` -> the batch *mean* loss (e.g.
            ``nn.CrossEntropyLoss()``, the NLL); batches are weighted by size.
        data: one ``(inputs, targets)`` batch, a list of batches (moved to the device once), or any
            iterable of batches such as a ``DataLoader`` (read again at every grid point: use one
            without shuffling or augmentation for a smooth surface). Extra batch items are ignored.
            Inputs with NaN or inf raise ValueError (see :mod:`course_lib.analysis.batches`).
        directions: ``(d, e)``, each one tensor per parameter in ``model.parameters()`` order,
            e.g. from :func:`filter_normalized_direction_pair`.
        xs, ys: grid coordinates along ``d`` and ``e``.
        weight_decay: 0 (default) gives the NLL only. ``> 0`` adds ``weight_decay * sum_p
            ||p||_2`` over all parameters at the grid point: the official code's L2 term (its
            ``ops/norm.py`` sums the *unsquared* L2 norms of the parameter tensors). Users of the
            official code report that this term dominates the picture; say in every figure which
            loss it shows (``Surface2D.label``).
        metric: ``metric(outputs, targets)`` -> batch mean, reported as ``accuracy``.
        max_batches: use only the first ``max_batches`` batches of ``data``.
        progress: show a progress bar over grid points (rank 0 only).

    Returns:
        a :class:`Surface2D` with ``loss`` and ``accuracy`` of shape ``(len(ys), len(xs))``.

    Distributed: when ``torch.distributed`` is initialized, grid point ``k`` (row-major over the
    ``(ys, xs)`` grid) is evaluated by rank ``k % world_size`` on that rank's full ``data`` (give
    every rank the same data, not a ``DistributedSampler`` shard); one ``all_reduce`` then gives
    every rank the full grid. The directions of rank 0 are broadcast to all ranks first, and the
    weights must already agree across ranks (as under DDP).
    """
    xs = np.asarray(xs, dtype=np.float64).reshape(-1)
    ys = np.asarray(ys, dtype=np.float64).reshape(-1)
    grid_x, grid_y = np.meshgrid(xs, ys)  # (ny, nx) each
    loss, accuracy = _evaluate_grid(
        model,
        loss_fn,
        data,
        list(directions),
        np.stack([grid_x.ravel(), grid_y.ravel()], axis=1),
        weight_decay=weight_decay,
        metric=metric,
        max_batches=max_batches,
        progress=progress,
        where="loss_surface_2d",
    )
    shape = (len(ys), len(xs))
    return Surface2D(
        xs, ys, loss.reshape(shape), accuracy.reshape(shape), weight_decay, _label(weight_decay)
    )


def _label(weight_decay: float) -> str:
    return "NLL" if weight_decay == 0 else f"NLL + L2 (wd={weight_decay:g})"


def _evaluate_grid(
    model: nn.Module,
    loss_fn: LossFn,
    data: Batch | Sequence[Batch] | Iterable[Batch],
    directions: list[Sequence[Tensor]],
    coefficients: np.ndarray,
    *,
    weight_decay: float,
    metric: LossFn,
    max_batches: int | None,
    progress: bool,
    where: str,
) -> tuple[np.ndarray, np.ndarray]:
    """Loss and metric at ``theta + sum_k coefficients[:, k] * directions[k]``; two (P,) arrays.

    ``where``: the public function, for error messages.
    """
    if isinstance(model, nn.parallel.DistributedDataParallel):
        model = model.module
    # Every parameter moves, trainable or not: no gradients are taken, so frozen weights are fine.
    params = list(model.parameters())
    if not params:
        raise ValueError(
            f"{where}: {type(model).__name__} has no parameters, so there is no weight space to "
            "draw a surface in: pass the trained model itself (with its weights)"
        )
    device = params[0].device
    directions = [_check_direction(d, params) for d in directions]
    distributed = dist.is_available() and dist.is_initialized()
    rank, world = (dist.get_rank(), dist.get_world_size()) if distributed else (0, 1)
    if distributed:
        for tensor in itertools.chain.from_iterable(directions):
            dist.broadcast(tensor, src=0)
    batches = _batch_source(data, device, max_batches, where)
    # (P, 2): loss and metric per grid point, summed over ranks at the end (MPS has no float64).
    results = torch.zeros(len(coefficients), 2, device=device, dtype=_accumulator_dtype(device))
    my_points = range(rank, len(coefficients), world)
    steps = coefficients.tolist()

    theta = [p.detach().clone() for p in params]
    try:
        with torch.no_grad(), eval_mode(model):
            for k in tqdm(my_points, desc="loss surface", disable=not progress or rank != 0):
                # Set the weights from theta at every point, so rounding errors never accumulate.
                # The _foreach ops update all parameter tensors in a few kernel launches.
                torch._foreach_copy_(params, theta)
                for step, direction in zip(steps[k], directions, strict=True):
                    torch._foreach_add_(params, direction, alpha=step)
                results[k] = _mean_loss_and_metric(model, loss_fn, metric, batches(), results.dtype)
                if weight_decay:
                    l2 = torch.stack(torch._foreach_norm(params)).sum()
                    results[k, 0] += weight_decay * l2.to(results.dtype)
    finally:
        with torch.no_grad():
            torch._foreach_copy_(params, theta)
    if distributed:
        dist.all_reduce(results)  # each point is non-zero on exactly one rank
    loss, accuracy = results.cpu().double().numpy().T
    return loss, accuracy


def _check_direction(direction: Sequence[Tensor], params: list[Tensor]) -> list[Tensor]:
    """The direction on the parameters' devices and dtypes (copies when distributed)."""
    if len(direction) != len(params):
        raise ValueError(
            f"a direction needs one tensor per parameter: got {len(direction)}, "
            f"the model has {len(params)} (use filter_normalized_direction(model))"
        )
    copy = dist.is_available() and dist.is_initialized()  # broadcast must not touch the caller's
    checked = []
    for i, (d, p) in enumerate(zip(direction, params, strict=True)):
        if d.shape != p.shape:
            raise ValueError(
                f"direction tensor {i} has shape {tuple(d.shape)}, "
                f"parameter {i} has {tuple(p.shape)}"
            )
        checked.append(d.to(device=p.device, dtype=p.dtype, copy=copy))
    return checked


def _accumulator_dtype(device: torch.device) -> torch.dtype:
    return torch.float32 if device.type == "mps" else torch.float64


def _batch_source(
    data: Batch | Sequence[Batch] | Iterable[Batch],
    device: torch.device,
    max_batches: int | None,
    where: str,
) -> Callable[[], Iterator[Batch]]:
    """A function that yields the batches on ``device`` anew for every grid point.

    One batch or a list of them is checked for NaN/inf and moved once, here, before any weight
    moves. Any other iterable is read and moved again at every grid point; its CPU tensors (what
    a ``DataLoader`` yields) are checked on every pass, which costs no device sync. Inputs that
    already live on an accelerator are checked on the first pass only: one host sync per batch
    then, none in the later passes of the grid loop.
    """
    if isinstance(data, (tuple, list)):  # one batch or a list of them
        cached = list(iter_batches(data, device, max_batches, where=where))
        return lambda: iter(cached)
    passes = itertools.count()
    return lambda: iter_batches(data, device, max_batches, where=where, sync=next(passes) == 0)


def _mean_loss_and_metric(
    model: nn.Module, loss_fn: LossFn, metric: LossFn, batches: Iterator[Batch], dtype: torch.dtype
) -> Tensor:
    """(2,) tensor: size-weighted mean of ``loss_fn`` and ``metric`` over the batches.

    Stays on the device (no ``.item()``), so a GPU never waits for the host between points.
    ``batches`` is never empty (:func:`~course_lib.analysis.batches.iter_batches` raises).
    """
    sums, count = 0, 0
    for inputs, targets in batches:
        outputs = model(inputs)
        n = inputs.shape[0]
        sums = (
            sums + torch.stack([loss_fn(outputs, targets), metric(outputs, targets)]).to(dtype) * n
        )
        count += n
    return sums / count
