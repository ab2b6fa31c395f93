"""Figures for chapter 00: toy loss landscapes, power iteration and the Fourier view of a photo.

Axes-level functions take ``ax`` and return it (a new pyplot figure when ``ax`` is None);
figure-level functions (``plot_toy_gallery``, ``plot_curvature``, ``plot_power_iteration``,
``plot_frequency_panels``) build a :class:`matplotlib.figure.Figure` outside pyplot and return it,
so a notebook shows it exactly once (as the cell's value) and widgets can redraw it. None of them
calls ``plt.show()``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib import patheffects
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.ticker import MaxNLocator
from torch import Tensor

from course_lib.analysis.toy import (
    Curvature,
    PowerIteration,
    ToyFunction,
    curvature_at,
    evaluate_grid,
    get_toy,
)
from course_lib.images import log_amplitude_spectrum
from course_lib.plots.style import course_style

LANDSCAPE_CMAP = "YlGnBu"  # low loss light, so the arrows stand out where it matters
POSITIVE_COLOR = "#111111"  # an eigenvector with λ > 0 (curving up)
NEGATIVE_COLOR = "#c51b7d"  # an eigenvector with λ < 0 (curving down)
DEFAULT_LEVELS = np.linspace(-4.0, 8.0, 25)  # shared contour levels: sharp vs flat compare
ARROW_SCALE = 0.12  # eigenvector arrows are |λ| * ARROW_SCALE long (in units of θ)
_HALO = [patheffects.withStroke(linewidth=3, foreground="white")]


def _new_axes(ax: Axes | None, figsize: tuple[float, float] = (4.2, 3.8)) -> Axes:
    if ax is None:
        _, ax = plt.subplots(figsize=figsize, layout="constrained")
    return ax


def plot_toy_landscape(
    toy: ToyFunction | str,
    point: Sequence[float] | Tensor | None = None,
    ax: Axes | None = None,
    *,
    levels: Sequence[float] | np.ndarray | None = None,
    n: int = 121,
    arrow_scale: float = ARROW_SCALE,
    curvature: Curvature | None = None,
    title: str | None = None,
    colorbar: bool = True,
) -> Axes:
    """Filled contours of a toy loss, its minima (stars), and the Hessian at ``point`` (dot).

    At ``point`` each eigenvector is drawn as a double arrow ``|λ| * arrow_scale`` long, dark
    for ``λ > 0`` (the loss curves up along it) and magenta for ``λ < 0`` (it curves down); the
    eigenvalues are listed in the top-left corner. ``levels`` defaults to levels shared by every
    toy, so two panels compare by the density of their contour lines. ``curvature`` skips the
    autograd computation when the caller already has it.
    """
    toy = get_toy(toy)
    levels = DEFAULT_LEVELS if levels is None else np.asarray(levels)
    x, y, z = evaluate_grid(toy, n)
    with course_style():
        ax = _new_axes(ax)
        filled = ax.contourf(x, y, z, levels=levels, cmap=LANDSCAPE_CMAP, extend="both")
        ax.contour(x, y, z, levels=levels, colors="#555555", linewidths=0.4, alpha=0.5)
        for mx, my in toy.minima:
            ax.plot(mx, my, "*", color="white", mec="black", ms=12, zorder=3)
        if point is not None or curvature is not None:
            curvature = curvature or curvature_at(toy, point)
            _draw_eigenvectors(ax, curvature, arrow_scale)
        x0, x1, y0, y1 = toy.extent
        ax.set(xlim=(x0, x1), ylim=(y0, y1), xlabel=r"$\theta_1$", ylabel=r"$\theta_2$")
        ax.set_aspect("equal")
        ax.grid(False)
        ax.set_title(toy.title if title is None else title)
        if colorbar:
            ax.figure.colorbar(filled, ax=ax, shrink=0.85, label="loss", ticks=levels[::4])
    return ax


def _draw_eigenvectors(ax: Axes, curvature: Curvature, arrow_scale: float) -> None:
    px, py = curvature.point.tolist()
    ax.plot(px, py, "o", color="white", mec="black", ms=5, zorder=5)
    pairs = list(zip(curvature.eigenvalues.tolist(), curvature.eigenvectors.T, strict=True))
    for i, (value, vector) in enumerate(pairs):
        color = POSITIVE_COLOR if value > 0 else NEGATIVE_COLOR
        dx, dy = (vector * abs(value) * arrow_scale).tolist()
        ax.annotate(
            "",
            xy=(px + dx, py + dy),
            xytext=(px - dx, py - dy),
            arrowprops={
                "arrowstyle": "<->",
                "color": color,
                "lw": 2,
                "shrinkA": 0,
                "shrinkB": 0,
                "path_effects": _HALO,
            },
            zorder=4,
        )
        # The eigenvalues go in the corner, not at the arrow tips, where they would overlap.
        ax.text(
            0.03,
            0.97 - 0.1 * (len(pairs) - 1 - i),
            f"λ{i + 1} = {value:.2f}",
            transform=ax.transAxes,
            va="top",
            color=color,
            fontsize=9,
            fontweight="bold",
            bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "none", "alpha": 0.85},
            zorder=6,
        )


def plot_toy_gallery(
    points: Mapping[str, Sequence[float]] | Sequence[str],
    *,
    ncols: int | None = None,
    levels: Sequence[float] | np.ndarray | None = None,
) -> Figure:
    """One :func:`plot_toy_landscape` panel per toy, with shared contour levels.

    ``points`` maps toy names to the point whose Hessian is drawn, or lists names (no point).
    """
    if not isinstance(points, Mapping):
        points = dict.fromkeys(points)
    ncols = ncols or len(points)
    nrows = -(-len(points) // ncols)
    with course_style():
        fig = Figure(figsize=(3.6 * ncols, 3.3 * nrows), layout="constrained")
        axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
        for ax, (name, point) in zip(axes, points.items(), strict=False):
            plot_toy_landscape(name, point, ax, levels=levels, colorbar=False)
        for ax in axes[len(points) :]:
            ax.set_visible(False)
        contours = axes[0].collections[0]  # the filled contours: same levels in every panel
        ticks = contours.levels[::4]
        fig.colorbar(contours, ax=axes.tolist(), shrink=0.85, label="loss", ticks=ticks)
    return fig


def plot_curvature(
    toy: ToyFunction | str, point: Sequence[float] | Tensor, *, radius: float = 1.0
) -> Figure:
    """The explorer's picture: the landscape at ``point`` and the loss along each eigenvector.

    Left: :func:`plot_toy_landscape`. Right: ``f(point + t·u)`` for each unit eigenvector ``u``
    (solid) and its second-order Taylor model ``f + t ∇f·u + ½ λ t²`` (dotted): the eigenvalue
    is the curvature of that slice at ``t = 0``. The title compares the eigenvalues of the
    autograd Hessian with those of the closed-form one.
    """
    toy = get_toy(toy)
    curvature = curvature_at(toy, point)
    exact = torch.linalg.eigvalsh(toy.exact_hessian(curvature.point))
    t = torch.linspace(-radius, radius, 81, dtype=torch.float64)
    with course_style():
        fig = Figure(figsize=(9.0, 3.9), layout="constrained")
        left, right = fig.subplots(1, 2, width_ratios=[1.15, 1])
        plot_toy_landscape(toy, curvature=curvature, ax=left, colorbar=False)
        for value, u in zip(curvature.eigenvalues.tolist(), curvature.eigenvectors.T, strict=True):
            color = POSITIVE_COLOR if value > 0 else NEGATIVE_COLOR
            with torch.no_grad():
                along = toy(curvature.point + t[:, None] * u)  # (81,)
            slope = float(curvature.gradient @ u)
            taylor = curvature.value + slope * t + 0.5 * value * t**2
            right.plot(t, along, color=color, lw=2, label=f"along u with λ={value:.2f}")
            right.plot(t, taylor, color=color, lw=1.2, ls=":")
        right.axvline(0, color="#999999", lw=0.8)
        right.xaxis.set_major_locator(MaxNLocator(5))
        right.set(xlabel="step t along the unit eigenvector u", ylabel="loss")
        right.set_title("slices: solid = loss, dotted = ½λt² model")
        right.legend(fontsize=8, loc="best")
        numeric = ", ".join(f"{v:.3f}" for v in curvature.eigenvalues.tolist())
        closed = ", ".join(f"{v:.3f}" for v in exact.tolist())
        px, py = curvature.point.tolist()
        fig.suptitle(
            f"{toy.title} at ({px:.2f}, {py:.2f}): {curvature.kind}; "
            f"eigenvalues autograd ({numeric}), exact ({closed})",
            fontsize=10,
        )
    return fig


def plot_power_iteration(
    runs: Mapping[str, PowerIteration | Tensor],
    exact: Mapping[str, float | Sequence[float]] | None = None,
) -> Figure:
    """Power-iteration estimates per step (left) and their error on a log scale (right).

    ``runs`` maps labels to results of :func:`~course_lib.analysis.toy.power_iteration` (or raw
    histories); ``exact`` maps the same labels to the eigenvalue(s) to compare with: the first
    is the target of the error panel, all are drawn as dashed lines.
    """
    exact = dict(exact or {})
    with course_style():
        fig = Figure(figsize=(9.0, 3.4), layout="constrained")
        left, right = fig.subplots(1, 2)
        colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
        for i, (label, run) in enumerate(runs.items()):
            history = (run.history if isinstance(run, PowerIteration) else run).double()
            steps = torch.arange(1, len(history) + 1)
            color = colors[i % len(colors)]
            left.plot(steps, history, "o-", ms=3, color=color, label=label)
            targets = np.atleast_1d(np.asarray(exact.get(label, []), dtype=float))
            for target in targets:
                left.axhline(target, color=color, ls="--", lw=1)
            if len(targets):
                error = (history - float(targets[0])).abs().clamp(min=1e-16)
                right.semilogy(steps, error, "o-", ms=3, color=color, label=label)
        left.set(xlabel="Hessian-vector products", ylabel="estimate vᵀHv")
        left.set_title("power iteration (dashed: exact eigenvalues)")
        left.legend(fontsize=8)
        right.set(xlabel="Hessian-vector products", ylabel="|estimate − target|")
        right.set_title("error (log scale)")
        if right.lines:
            right.legend(fontsize=8)
    return fig


def plot_spectrum_check(
    exact: Tensor,
    found: Mapping[str, float | Sequence[float] | Tensor],
    ax: Axes | None = None,
) -> Axes:
    """Every eigenvalue of an exact Hessian (histogram and rug) and the ones a method found.

    ``exact``: all eigenvalues, e.g. ``torch.linalg.eigvalsh(exact_hessian(...))``. ``found``
    maps a method's label to its eigenvalue(s), drawn as coloured markers above the histogram:
    a correct method puts its markers on the ends of the spectrum it was asked for.
    """
    values = exact.detach().double().cpu().numpy()
    with course_style():
        ax = _new_axes(ax, figsize=(7.0, 3.0))
        counts, _, _ = ax.hist(values, bins=40, color="#bbbbbb", label="exact eigenvalues")
        ax.plot(values, np.zeros_like(values), "|", color="#555555", ms=12)
        top = max(float(counts.max()), 1.0)
        colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
        for i, (label, estimate) in enumerate(found.items()):
            points = np.atleast_1d(np.asarray(torch.as_tensor(estimate).double(), dtype=float))
            height = top * (1.15 + 0.12 * i)
            ax.plot(points, np.full_like(points, height), "v", ms=8, color=colors[i], label=label)
        ax.axvline(0, color="#999999", lw=0.8)
        ax.set(
            xlabel="Hessian eigenvalue λ", ylabel="count", ylim=(0, top * (1.3 + 0.12 * len(found)))
        )
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
    return ax


def plot_frequency_panels(
    images: Mapping[str, Tensor],
    *,
    bands: Mapping[str, tuple[float, float]] | None = None,
) -> Figure:
    """Each image (top row) above its centred log-amplitude spectrum (bottom row).

    Images are ``(H, W)`` (gray) or ``(3, H, W)``; a gray image is shown with its own contrast
    range (a high-passed image has no mean and negative values). Spectra share one colour range,
    taken from the first image, so removed frequencies look dark; axes are in units of π.
    ``bands`` maps labels to ``(low, high)`` to outline the kept band (square annuli, as in
    :func:`course_lib.images.frequency_filter`).
    """
    bands = dict(bands or {})
    spectra = {label: log_amplitude_spectrum(img) for label, img in images.items()}
    spectra = {k: s.mean(0) if s.ndim == 3 else s for k, s in spectra.items()}  # colour: mean
    first = next(iter(spectra.values()))
    vmin, vmax = float(first.quantile(0.01)), float(first.max())
    with course_style():
        fig = Figure(figsize=(2.9 * len(images) + 0.8, 5.6), layout="constrained")
        axes = fig.subplots(2, len(images), squeeze=False)
        for col, (label, image) in enumerate(images.items()):
            top, bottom = axes[0, col], axes[1, col]
            if image.ndim == 3:
                top.imshow(image.permute(1, 2, 0).clamp(0, 1).numpy())
            else:
                top.imshow(image.numpy(), cmap="gray")
            top.set_title(label, fontsize=10)
            top.set_axis_off()
            h, w = image.shape[-2:]
            # Centred bins run from -1 to 1 - 2/n; pixel edges half a bin further.
            extent = (-1 - 1 / w, 1 - 1 / w, -1 - 1 / h, 1 - 1 / h)
            shown = bottom.imshow(
                spectra[label].numpy(),
                cmap="magma",
                vmin=vmin,
                vmax=vmax,
                extent=extent,
                origin="lower",
            )
            bottom.set(xlabel=r"$f_x$ (× π)", ylabel=r"$f_y$ (× π)" if col == 0 else None)
            bottom.grid(False)
            if label in bands:
                for edge in bands[label]:
                    if 0 < edge < 1:
                        bottom.add_patch(
                            Rectangle(
                                (-edge, -edge), 2 * edge, 2 * edge, fill=False, ec="cyan", lw=1.2
                            )
                        )
        fig.colorbar(shown, ax=axes[1, :].tolist(), shrink=0.8, label="log amplitude")
    return fig
