"""What a filter-normalised loss surface says in numbers: rises, the L2 term, curvature ``dᵀHd``.

Companions of :mod:`course_lib.analysis.landscape` (Li et al. 2018): the official notebook's
L2 term on a surface's grid without extra forward passes (:func:`l2_norm_grid`,
:func:`with_l2_term`), the loss rise at grid points (:func:`surface_rise`,
:func:`mean_unit_rise`), and the exact second derivative along a direction
(:func:`directional_curvature`), a scale-free sharpness for filter-normalised directions.
:class:`ModelSurfaces` holds one model's surfaces; :func:`surface_numbers` sums them up.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from course_lib.analysis.hessian import hvp
from course_lib.analysis.landscape import Surface1D, Surface2D, filter_normalized_direction

LossFn = Callable[[Tensor, Tensor], Tensor]


def l2_norm_grid(
    model: nn.Module, directions: tuple[Sequence[Tensor], Sequence[Tensor]], xs, ys
) -> np.ndarray:
    """``Σ_p ‖θ_p + x·d_p + y·e_p‖₂`` on the grid, (len(ys), len(xs)): the official L2 term / wd.

    The official ``losslandscape.ipynb`` adds ``weight_decay ·`` this sum (unsquared norms of every
    parameter tensor) to the NLL. It depends on the weights alone, so it is computed here without
    a forward pass; ``loss_surface_2d(..., weight_decay=wd)`` gives the same values the slow way.
    """
    # float64 on the CPU: exact enough to match the slow way, and MPS has no float64
    params = [p.detach().cpu().double() for p in model.parameters()]
    d, e = ([t.detach().cpu().double() for t in ds] for ds in directions)
    out = np.zeros((len(ys), len(xs)))
    for i, y in enumerate(ys):
        for j, x in enumerate(xs):
            out[i, j] = sum(
                float(torch.linalg.vector_norm(p + x * dp + y * ep))
                for p, dp, ep in zip(params, d, e, strict=True)
            )
    return out


def with_l2_term(surface: Surface2D, l2: np.ndarray, weight_decay: float) -> Surface2D:
    """The NLL surface plus the official L2 term ``weight_decay · l2`` (:func:`l2_norm_grid`)."""
    return Surface2D(
        surface.xs,
        surface.ys,
        surface.loss + weight_decay * l2,
        surface.accuracy,
        weight_decay,
        f"NLL + L2 (wd={weight_decay:g})",
    )


def _grid_index(coords: np.ndarray, value: float) -> int:
    hits = np.flatnonzero(np.isclose(coords, value))
    if not len(hits):
        raise ValueError(f"{value} is not a grid coordinate ({coords.tolist()})")
    return int(hits[0])


def surface_rise(surface: Surface2D, x: float = 1.0, y: float = 0.0) -> float:
    """Loss at grid point ``(x, y)`` minus the loss at ``(0, 0)`` (both must be grid points)."""
    i0, j0 = _grid_index(surface.ys, 0.0), _grid_index(surface.xs, 0.0)
    i, j = _grid_index(surface.ys, y), _grid_index(surface.xs, x)
    return float(surface.loss[i, j] - surface.loss[i0, j0])


def mean_unit_rise(surface: Surface2D) -> float:
    """Mean loss rise at the unit points ``(±1, 0)``, ``(0, ±1)``: less luck of one direction."""
    points = ((1.0, 0.0), (-1.0, 0.0), (0.0, 1.0), (0.0, -1.0))
    return float(np.mean([surface_rise(surface, x, y) for x, y in points]))


def surface_center(surface: Surface2D) -> float:
    """The loss at ``(0, 0)``, the trained weights."""
    return float(surface.loss[_grid_index(surface.ys, 0.0), _grid_index(surface.xs, 0.0)])


def directional_curvature(
    model: nn.Module,
    loss_fn: LossFn,
    batches: Sequence[tuple[Tensor, Tensor]],
    direction: Sequence[Tensor],
) -> float:
    """``dᵀ H d``: the second derivative of ``loss_fn`` along ``direction`` at the weights.

    The curvature of the 1-D loss curve ``α ↦ L(θ + α d)`` at ``α = 0`` (so the curve starts as
    ``L(θ) + ½·dᵀHd·α²``), from one exact Hessian-vector product on all ``batches`` at once (one
    batch of their union: the same mean loss as the surfaces when the batches are equally large).
    For a filter-normalised ``d`` it is a *scale-free* sharpness: every filter is probed in
    proportion to its own norm, so a parameter whose scale does not matter to the function
    (one that only feeds a normalisation layer) cannot dominate it.
    """
    inputs = torch.cat([x for x, _ in batches])
    targets = torch.cat([y for _, y in batches])
    params = [p for p in model.parameters() if p.requires_grad]
    pairs = zip(direction, model.parameters(), strict=True)
    flat = torch.cat([d.reshape(-1) for d, p in pairs if p.requires_grad]).to(params[0])
    return float(flat @ hvp(model, loss_fn, (inputs, targets), flat))


def more_directions(
    model: nn.Module,
    first: Sequence[list[Tensor]],
    n: int,
    generator: torch.Generator,
    exclude: Sequence[str] = (),
) -> list[list[Tensor]]:
    """``n`` filter-normalised directions: ``first``, then new ones drawn from ``generator``."""
    more = [
        filter_normalized_direction(model, generator=generator, exclude=exclude)
        for _ in range(n - len(first))
    ]
    return [*first, *more]


@dataclass
class ModelSurfaces:
    """One model's filter-normalised loss surfaces and curvatures on fixed batches."""

    surface: Surface2D  # the 2-D surface over [−1, 1]², NLL only
    curves: list[Surface1D]  # 1-D curves along each of the surface's two directions
    l2: np.ndarray  # (n, n) the L2 term / wd on the surface's grid (:func:`l2_norm_grid`)
    curvature: list[float]  # dᵀHd along random filter-normalised directions, the two first
    seconds: float  # wall time of the whole computation


@dataclass(frozen=True)
class SurfaceNumbers:
    """Flatness of one model's surfaces, in numbers."""

    nll: float  # NLL rise at (1, 0), the point the official notebook reports
    nll_l2: float  # the same with the L2 term weight_decay · Σ‖p‖
    mean: float  # NLL rise averaged over the four unit points
    curvature: float  # mean |dᵀHd| over the random directions (scale-free sharpness)
    negative_directions: float  # fraction of them with dᵀHd < 0 (scale-free non-convexity)
    center: float  # NLL at (0, 0)


def surface_numbers(surfaces: ModelSurfaces, weight_decay: float) -> SurfaceNumbers:
    """:class:`SurfaceNumbers` of one model's surfaces (L2 term with ``weight_decay``)."""
    surface = surfaces.surface
    return SurfaceNumbers(
        nll=surface_rise(surface),
        nll_l2=surface_rise(with_l2_term(surface, surfaces.l2, weight_decay)),
        mean=mean_unit_rise(surface),
        curvature=float(np.mean(np.abs(surfaces.curvature))),
        negative_directions=float(np.mean(np.asarray(surfaces.curvature) < 0)),
        center=surface_center(surface),
    )


__all__ = [
    "ModelSurfaces",
    "SurfaceNumbers",
    "directional_curvature",
    "l2_norm_grid",
    "mean_unit_rise",
    "more_directions",
    "surface_center",
    "surface_numbers",
    "surface_rise",
    "with_l2_term",
]
