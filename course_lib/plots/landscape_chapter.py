"""Figures of chapter 02: Hessian spectra per mini-batch (C3, C4) and loss surfaces side by side.

Every function takes ``{label: values}`` mappings whose labels start with a model name
("vit_mini", "vit_mini (10% data)", "resnet_mini (init)"), so each family keeps the course's
colour; a second curve of the same family gets a dashed line and hollow markers. Each returns
the Figure or Axes it drew on and never calls ``plt.show()``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.colors import BoundaryNorm
from matplotlib.figure import Figure
from torch import Tensor

from course_lib.analysis.landscape import Surface1D, Surface2D
from course_lib.analysis.spectra import ModelSpectra, spectrum_summary
from course_lib.plots.landscape import LANDSCAPE_CMAP, plot_loss_curve_1d, plot_loss_surface_3d
from course_lib.plots.style import axes_or_new, color_for, course_style, family_of

_LINESTYLES = ("-", "--", ":", "-.")


def _styles(labels: Sequence[str]) -> dict[str, dict]:
    """Colour by family; the n-th label of a family gets the n-th line style, hollow if n > 0."""
    seen: dict[str, int] = {}
    styles = {}
    for label in labels:
        family = family_of(label)
        n = seen.get(family, 0)
        seen[family] = n + 1
        color = color_for(label)
        styles[label] = {
            "color": color,
            "ls": _LINESTYLES[n % len(_LINESTYLES)],
            "facecolor": color if n == 0 else "white",
        }
    return styles


def _values(t: Tensor | np.ndarray) -> np.ndarray:
    if isinstance(t, Tensor):
        t = t.detach().double().cpu().numpy()
    return np.asarray(t, dtype=float)


def plot_eigenvalue_strips(
    values: Mapping[str, Tensor | np.ndarray],
    ax: Axes | None = None,
    *,
    log: bool = True,
    ylabel: str = "largest Hessian eigenvalue λ_max of a mini-batch",
    seed: int = 0,
) -> Axes:
    """One column of jittered points per label (all values pooled), its median as a bar.

    A strip shows a spectrum of a few dozen batches better than a histogram; with ``log`` the
    y axis is logarithmic (non-positive values are dropped from the plot, and counted in the
    tick label), so models an order of magnitude apart fit in one figure.
    """
    rng = np.random.default_rng(seed)
    styles = _styles(list(values))
    with course_style():
        ax = axes_or_new(ax)
        ticks = []
        for i, (label, v) in enumerate(values.items()):
            v = _values(v).reshape(-1)
            shown = v[v > 0] if log else v
            x = i + rng.uniform(-0.18, 0.18, size=shown.size)
            style = styles[label]
            ax.scatter(
                x,
                shown,
                s=18,
                color=style["facecolor"],
                edgecolor=style["color"],
                linewidth=1.0,
                alpha=0.85,
                zorder=3,
            )
            if shown.size:
                median = float(np.median(v))
                ax.plot([i - 0.3, i + 0.3], [median, median], color=style["color"], lw=2.5)
            hidden = v.size - shown.size
            ticks.append(
                label.replace(" (", "\n(") + (f"\n[{hidden} ≤ 0 not shown]" if hidden else "")
            )
        ax.set_xticks(range(len(values)), ticks)
        if log:
            ax.set_yscale("log")
        ax.set_ylabel(ylabel)
    return ax


def plot_spectrum_histograms(
    spectra: Mapping[str, Tensor | np.ndarray],
    ax: Axes | None = None,
    *,
    bins: int = 30,
    symlog: bool = True,
    xlabel: str = "top-k Hessian eigenvalues by magnitude (pooled over mini-batches)",
) -> Axes:
    """Paper-style max-eigenvalue spectra (Fig. 4): step histograms on shared bins, NEP/APE in
    the legend. The y axis is a count (a few dozen batches make a density look precise).

    ``symlog``: bins and x axis on a symmetric log scale (linear within ±1), so that values
    spread over orders of magnitude, of either sign, stay readable; ``False``: linear, as the paper.
    """
    pooled = {label: _values(v).reshape(-1) for label, v in spectra.items()}
    values = np.concatenate(list(pooled.values()))
    if symlog:  # equal widths in asinh(x), which is linear near 0 and logarithmic far out
        low, high = np.arcsinh(values.min()), np.arcsinh(values.max())
        edges = np.sinh(np.linspace(low, high if high > low else low + 1, bins + 1))
    else:
        edges = np.histogram_bin_edges(values, bins=bins)
    styles = _styles(list(pooled))
    with course_style():
        ax = axes_or_new(ax)
        for label, v in pooled.items():
            s = spectrum_summary(torch.from_numpy(v))
            ax.hist(
                v,
                bins=edges,
                histtype="step",
                lw=2,
                color=styles[label]["color"],
                ls=styles[label]["ls"],
                label=f"{label}: NEP {s['nep']:.0%}, APE {s['ape']:.3g}",
            )
        ax.axvline(0.0, color="black", lw=0.8, ls=":")
        if symlog:
            ax.set_xscale("symlog", linthresh=1.0)
        ax.set_xlim(min(edges[0], 0.0), max(edges[-1], 0.0))
        ax.set_xlabel(xlabel)
        ax.set_ylabel("mini-batches")
        ax.legend(fontsize="small", loc="upper left")
    return ax


def plot_extreme_pairs(
    largest: Mapping[str, Tensor | np.ndarray],
    smallest: Mapping[str, Tensor | np.ndarray],
    ax: Axes | None = None,
) -> Axes:
    """Per batch, λ_max (x) against |λ_min| (y), both logarithmic, with the diagonal.

    ``largest[label]`` and ``smallest[label]`` are (n, k) spectra with ``which="LA"`` and
    ``"SA"`` over the same batches (first column used). Points above the diagonal are batches
    whose largest-magnitude eigenvalue is negative: those the paper's NEP counts (for k = 1).
    Batches without a negative eigenvalue are left out.
    """
    styles = _styles(list(largest))
    with course_style():
        ax = axes_or_new(ax, figsize=(4.8, 4.0))
        extent = []
        for label, top in largest.items():
            x = _values(top)[:, 0]
            y = -_values(smallest[label])[:, 0]
            keep = (x > 0) & (y > 0)
            style = styles[label]
            ax.scatter(
                x[keep],
                y[keep],
                s=22,
                color=style["facecolor"],
                edgecolor=style["color"],
                linewidth=1.0,
                label=label,
                zorder=3,
            )
            extent += [*x[keep], *y[keep]]
        if extent:
            line = [min(extent) / 2, max(extent) * 2]
            ax.plot(line, line, color="black", lw=0.8, ls=":", label="|λ_min| = λ_max")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("largest eigenvalue λ_max")
        ax.set_ylabel("|most negative eigenvalue λ_min|")
        ax.legend(fontsize="small")
    return ax


def plot_negative_curvature(
    entries: Mapping[str, ModelSpectra], *, figsize: tuple[float, float] = (13.0, 4.0)
) -> Figure:
    """Claim C4 in three panels, for the models of ``hessian_spectra`` with both ends:

    (a) the paper's top-k-by-magnitude spectrum; (b) per batch, λ_max against λ_min;
    (c) λ_min / λ_max per batch, the negative curvature relative to the sharpness.
    """
    both = {label: e for label, e in entries.items() if e.smallest is not None}
    largest = {label: e.largest.eigenvalues for label, e in both.items()}
    smallest = {label: e.smallest.eigenvalues for label, e in both.items()}
    with course_style():
        fig, axes = plt.subplots(1, 3, figsize=figsize, gridspec_kw={"width_ratios": [1.3, 1, 1]})
        plot_spectrum_histograms({label: e.by_magnitude for label, e in both.items()}, axes[0])
        axes[0].set_title("(a) paper style: top-k by |λ|")
        plot_extreme_pairs(largest, smallest, axes[1])
        axes[1].set_title("(b) both ends, per mini-batch")
        ratios = {
            label: (smallest[label][:, 0] / largest[label][:, 0]).clamp(max=0).abs()
            for label in both
        }
        plot_eigenvalue_strips(ratios, axes[2], log=False, ylabel="|λ_min| / λ_max")
        axes[2].set_title("(c) negative curvature relative to λ_max")
        axes[2].tick_params(axis="x", labelsize="x-small")
        fig.tight_layout()
    return fig


def plot_curves_1d(
    curves: Mapping[str, Sequence[Surface1D]], *, figsize: tuple[float, float] = (10.0, 3.6)
) -> Figure:
    """Loss rise along each random direction (one panel per direction), one line per model."""
    n = len(next(iter(curves.values())))
    with course_style():
        fig, axes = plt.subplots(1, n, figsize=figsize, sharey=True, squeeze=False)
        for i, ax in enumerate(axes[0]):
            plot_loss_curve_1d({name: c[i] for name, c in curves.items()}, ax, relative=True)
            ax.set_title(f"direction {i + 1}")
            if i:
                ax.set_ylabel("")
        fig.tight_layout()
    return fig


def plot_contours(
    surfaces: Mapping[str, Surface2D],
    *,
    levels: int = 16,
    decades: float = 3.0,
    figsize: tuple[float, float] = (10.5, 4.2),
) -> Figure:
    """Contours of each model's surface (loss − its minimum) on one shared, logarithmic scale.

    The levels are spaced geometrically over ``decades`` decades below the largest rise of all
    surfaces, each band with its own colour, so a flat surface keeps its detail next to a steep
    one (a linear scale would paint it in one colour). The trained weights are marked at (0, 0).
    """
    rises = {name: s.loss - np.nanmin(s.loss) for name, s in surfaces.items()}
    top = max(float(np.nanmax(r)) for r in rises.values())
    top = top if top > 0 else 1.0
    bounds = np.concatenate([[0.0], np.geomspace(top * 10.0**-decades, top, levels)])
    cmap = plt.get_cmap(LANDSCAPE_CMAP)
    norm = BoundaryNorm(bounds, cmap.N)
    with course_style():
        fig, axes = plt.subplots(
            1, len(surfaces), figsize=figsize, squeeze=False, constrained_layout=True
        )
        for ax, (name, surface) in zip(axes[0], surfaces.items(), strict=True):
            filled = ax.contourf(
                surface.xs,
                surface.ys,
                rises[name],
                levels=bounds,
                cmap=cmap,
                norm=norm,
                extend="neither",
            )
            ax.contour(
                surface.xs, surface.ys, rises[name], levels=bounds, colors="white", linewidths=0.3
            )
            ax.plot(0.0, 0.0, marker="*", ms=12, color=color_for(name), mec="white", ls="none")
            ax.set_xlabel("x (direction 1)")
            ax.set_ylabel("y (direction 2)")
            ax.set_title(name, color=color_for(name))
            ax.set_aspect("equal")
        bar = fig.colorbar(filled, ax=axes[0].tolist(), ticks=bounds[::3], format="%.2g")
        bar.set_label(f"{next(iter(surfaces.values())).label} − min (log-spaced levels)")
    return fig


def plot_surfaces_3d(
    surfaces: Mapping[str, Surface2D],
    *,
    elev: float = 25.0,
    azim: float = -60.0,
    clip: float | None = None,
    figsize: tuple[float, float] = (10.0, 4.5),
) -> Figure:
    """3-D surfaces (loss − its minimum) side by side, with a shared z axis (paper Fig. 1a)."""
    top = max(float(np.nanmax(s.loss - np.nanmin(s.loss))) for s in surfaces.values())
    if clip is not None:
        top = min(top, clip)
    with course_style():
        fig = plt.figure(figsize=figsize)
        for i, (name, surface) in enumerate(surfaces.items()):
            ax = fig.add_subplot(1, len(surfaces), i + 1, projection="3d")
            plot_loss_surface_3d(surface, ax, name=name, clip=clip, elev=elev, azim=azim)
            ax.set_zlim(0.0, top)
    return fig


def plot_eigenvector_composition(
    entries: Mapping[str, ModelSpectra], *, figsize: tuple[float, float] | None = None
) -> Figure:
    """Where the top Hessian eigenvector lives: its squared norm's share per parameter group.

    ``entries[label]`` from chapter 02's ``hessian_spectra``: its largest end holds the
    composition (n_batches, n_groups) and the group names. One panel per model: bars at the
    median share over the mini-batches, whiskers from the smallest to the largest, groups in the
    model's order.
    """
    n = len(entries)
    with course_style():
        fig, axes = plt.subplots(
            n, 1, figsize=figsize or (10.0, 2.4 * n), squeeze=False, constrained_layout=True
        )
        for ax, (label, entry) in zip(axes[:, 0], entries.items(), strict=True):
            shares = _values(entry.largest.composition)  # (n_batches, n_groups)
            median = np.median(shares, axis=0)
            low, high = shares.min(axis=0), shares.max(axis=0)
            x = np.arange(len(entry.largest.groups))
            ax.bar(x, median, color=color_for(label), alpha=0.85)
            ax.errorbar(
                x,
                median,
                yerr=[median - low, high - median],
                fmt="none",
                ecolor="0.3",
                lw=1,
                capsize=2,
            )
            ax.set_xticks(x, entry.largest.groups, rotation=45, ha="right", fontsize="small")
            ax.set_ylim(0, 1)
            ax.set_ylabel("share of ‖v‖²")
            ax.set_title(label, color=color_for(label), fontsize="medium")
    return fig
