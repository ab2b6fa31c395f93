"""Figures of chapter 02's Hessian spectra (C3, C4) and of its deep dive.

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
from matplotlib.figure import Figure
from torch import Tensor

from course_lib.analysis.lanczos import EigenResult
from course_lib.analysis.spectra import BatchSpectra, NegativeProportion, spectrum_summary
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


def plot_nep_intervals(neps: Mapping[str, NegativeProportion], ax: Axes | None = None) -> Axes:
    """Each model's NEP (the paper's share of negative values) with its Wilson interval."""
    styles = _styles(list(neps))
    with course_style():
        ax = axes_or_new(ax, figsize=(6.0, 2.8))
        for i, (label, nep) in enumerate(neps.items()):
            style = styles[label]
            ax.errorbar(
                100 * nep.proportion,
                i,
                xerr=[[100 * (nep.proportion - nep.low)], [100 * (nep.high - nep.proportion)]],
                fmt="o",
                ms=8,
                color=style["color"],
                mfc=style["facecolor"],
                capsize=4,
                lw=2,
            )
        ax.set_yticks(range(len(neps)), list(neps))
        ax.set_ylim(-0.5, len(neps) - 0.5)
        ax.set_xlim(left=0)
        confidence = next(iter(neps.values())).confidence
        ax.set_xlabel(f"NEP: negative share of the top-k by |λ| (%), {confidence:.0%} interval")
    return ax


def plot_solver_results(results: Mapping[str, EigenResult], ax: Axes | None = None) -> Axes:
    """One row per solver: the eigenvalues it returned on one batch, on a symmetric log axis.

    ``results`` as chapter 02b's ``solver_results``: "LA", "SA", "LM", "LM from ends". The
    products each solve spent are in the row's label.
    """
    with course_style():
        ax = axes_or_new(ax, figsize=(8.0, 2.8))
        for i, r in enumerate(results.values()):
            values = r.eigenvalues.double().numpy()
            ax.scatter(values, np.full_like(values, i), s=60, color="C0", zorder=3)
        ax.axvline(0.0, color="black", lw=0.8, ls=":")
        ax.set_xscale("symlog", linthresh=1.0)
        labels = [f"{which} ({r.n_hvp} products)" for which, r in results.items()]
        ax.set_yticks(range(len(results)), labels)
        ax.set_ylim(len(results) - 0.5, -0.5)
        ax.set_xlabel("Hessian eigenvalue (symmetric log scale)")
    return ax


def plot_eigenvector_composition(
    entries: Mapping[str, BatchSpectra], *, figsize: tuple[float, float] | None = None
) -> Figure:
    """Where the top Hessian eigenvector lives: its squared norm's share per parameter group.

    ``entries[label]`` was computed with ``composition=True`` (chapter 02b's
    ``sharpest_directions``): (n_batches, n_groups) shares and the group names. One panel per
    model: bars at the median share over the mini-batches, whiskers from the smallest to the
    largest, groups in the model's order.
    """
    n = len(entries)
    with course_style():
        fig, axes = plt.subplots(
            n, 1, figsize=figsize or (10.0, 2.4 * n), squeeze=False, constrained_layout=True
        )
        for ax, (label, entry) in zip(axes[:, 0], entries.items(), strict=True):
            shares = _values(entry.composition)  # (n_batches, n_groups)
            median = np.median(shares, axis=0)
            low, high = shares.min(axis=0), shares.max(axis=0)
            x = np.arange(len(entry.groups))
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
            ax.set_xticks(x, entry.groups, rotation=45, ha="right", fontsize="small")
            ax.set_ylim(0, 1)
            ax.set_ylabel("share of ‖v‖²")
            ax.set_title(label, color=color_for(label), fontsize="medium")
    return fig
