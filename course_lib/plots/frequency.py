"""Figures for the frequency chapter: Δ log amplitude (Fig. 2a, 8), noise sweeps (Fig. 2b),
feature-map variance (Fig. 9). Every function returns its Axes and never calls ``plt.show()``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.patches import Patch
from torch import Tensor

from course_lib.analysis.fourier import FourierProfile
from course_lib.analysis.robustness import NoiseSweep
from course_lib.analysis.variance import VarianceProfile
from course_lib.plots.style import axes_or_new, color_for, course_style
from course_lib.report.verdicts import normalized_drop

DEPTH_CMAP = "plasma"  # colour of a curve = its normalized depth (paper Fig. 2a)
FIGSIZE = (5.5, 3.5)  # inches, of a new figure when no axes are given
SPAN_ALPHA = 0.15  # shading of the depth intervals that end at an MSA block

T = TypeVar("T")


def plot_delta_log_amplitude(profile: FourierProfile, ax: Axes | None = None) -> Axes:
    """One Δ log amplitude curve (0 … π) per depth, coloured by normalized depth (Fig. 2a)."""
    with course_style():
        ax = axes_or_new(ax, FIGSIZE)
        cmap = plt.get_cmap(DEPTH_CMAP)
        for depth, freq, delta in zip(
            profile.depth.tolist(), profile.frequencies, profile.delta, strict=True
        ):
            ax.plot(freq.numpy(), delta.numpy(), color=cmap(depth), lw=1.5)
        colorbar = ax.figure.colorbar(ScalarMappable(Normalize(0, 1), cmap), ax=ax)
        colorbar.set_label("Normalized depth")
        ax.set_xlim(0, 1)
        ax.set_xlabel("Frequency (×π rad/pixel)")
        ax.set_ylabel("Δ log amplitude (vs. DC)")
    return ax


def plot_high_frequency_over_depth(
    profiles: Mapping[str, FourierProfile] | FourierProfile, ax: Axes | None = None
) -> Axes:
    """Δ log amplitude at the highest frequency against normalized depth (Fig. 8).

    One line per model in the model's colour; the depth interval that ends at an MSA block's
    output is shaded. A drop across a block means it removed high frequencies (low-pass).
    """
    profiles = _named(profiles)
    with course_style():
        ax = axes_or_new(ax, FIGSIZE)
        series = {n: (p.depth, p.high_frequency, p.kinds) for n, p in profiles.items()}
        _plot_over_depth(ax, series, "Δ log amplitude at 1.0π (vs. DC)")
    return ax


def plot_variance_over_depth(
    profiles: Mapping[str, VarianceProfile] | VarianceProfile, ax: Axes | None = None
) -> Axes:
    """Feature-map variance against normalized depth, MSA blocks shaded (Fig. 9)."""
    profiles = _named(profiles)
    with course_style():
        ax = axes_or_new(ax, FIGSIZE)
        series = {n: (p.depth, p.values, p.kinds) for n, p in profiles.items()}
        _plot_over_depth(ax, series, "Feature-map variance (activation²)")
        ax.set_ylim(bottom=0)
    return ax


def plot_noise_sweep(
    sweeps: Mapping[str, NoiseSweep] | NoiseSweep,
    ax: Axes | None = None,
    magnitude: float | None = None,
    chance: float | None = None,
) -> Axes:
    """Accuracy drop against the noise band's centre frequency, one line per model (Fig. 2b).

    ``magnitude`` picks one swept noise magnitude (default: the largest of each sweep).
    ``chance`` (accuracy in %) plots the drop as a share of what each model had above chance
    (:func:`drop_values`), which makes models of different clean accuracy comparable.
    """
    sweeps = _named(sweeps)
    with course_style():
        ax = axes_or_new(ax, FIGSIZE)
        for name, sweep in sweeps.items():
            row = sweep.magnitude_index(magnitude)
            label = f"{name} (RMS {sweep.magnitudes[row].item():.3g})"
            ax.plot(
                sweep.centers.numpy(),
                drop_values(sweep, chance)[row],
                marker="o",
                color=color_for(name),
                label=label,
            )
        ax.axhline(0, color="black", lw=0.8)
        ax.set_xlabel("Noise frequency (×π rad/pixel)")
        ax.set_ylabel(drop_label(chance))
        ax.legend()
    return ax


def plot_noise_heatmap(
    sweep: NoiseSweep, ax: Axes | None = None, chance: float | None = None
) -> Axes:
    """Accuracy drop for every (magnitude, centre frequency) of one sweep, as a heatmap
    (``chance``: as a share of the accuracy above chance, see :func:`drop_values`)."""
    with course_style():
        ax = axes_or_new(ax, FIGSIZE)
        drop = drop_values(sweep, chance)
        image = ax.imshow(drop, cmap="magma_r", aspect="auto", origin="lower")
        ax.figure.colorbar(image, ax=ax).set_label(drop_label(chance))
        ax.set_xticks(range(len(sweep.centers)), [f"{c:.2g}" for c in sweep.centers.tolist()])
        ax.set_yticks(range(len(sweep.magnitudes)), [f"{m:.3g}" for m in sweep.magnitudes.tolist()])
        ax.grid(False)
        if drop.size <= 100:
            finite = drop[np.isfinite(drop)]  # NaN: a model at chance (no normalised drop)
            threshold = (finite.max() + finite.min()) / 2 if finite.size else 0.0
            for (i, j), value in np.ndenumerate(drop):
                color = "white" if value > threshold else "black"
                ax.text(j, i, f"{value:.1f}", ha="center", va="center", color=color, fontsize=8)
        ax.set_xlabel(f"Noise frequency (×π rad/pixel, band width {sweep.width:g}π)")
        ax.set_ylabel("Noise magnitude (RMS per pixel)")
    return ax


def drop_values(sweep: NoiseSweep, chance: float | None = None) -> np.ndarray:
    """The sweep's drops ``(M, K)``: in percentage points, or with ``chance`` (%) given, in % of
    the accuracy the model had above chance
    (:func:`~course_lib.report.verdicts.normalized_drop`)."""
    if chance is None:
        return sweep.drop.numpy()
    share = normalized_drop(sweep.clean_accuracy, sweep.accuracy.numpy(), chance)  # NaN at chance
    return 100 * np.broadcast_to(np.asarray(share, dtype=float), sweep.drop.shape)


def drop_label(chance: float | None = None) -> str:
    """The axis label of :func:`drop_values`."""
    if chance is None:
        return "Accuracy drop (percentage points)"
    return "Accuracy drop (% of clean − chance)"


def _named(profiles: Mapping[str, T] | T) -> Mapping[str, T]:
    return profiles if isinstance(profiles, Mapping) else {"model": profiles}


def _plot_over_depth(
    ax: Axes, series: Mapping[str, tuple[Tensor, Tensor, list[str]]], ylabel: str
) -> None:
    """One line per model over normalized depth; ``series[name] = (depth, values, kinds)``.

    As in the paper's code, the interval [previous depth, depth] of each MSA output is shaded,
    here in the model's colour so that several models stay distinguishable.
    """
    handles = []
    for name, (depth, values, kinds) in series.items():
        color, depths = color_for(name), depth.tolist()
        msa = [i for i, kind in enumerate(kinds) if kind == "msa" and i > 0]
        for i in msa:
            ax.axvspan(depths[i - 1], depths[i], color=color, alpha=SPAN_ALPHA, lw=0)
        handles += ax.plot(depths, values.tolist(), marker="o", ms=4, color=color, label=name)
        if msa:
            handles.append(Patch(color=color, alpha=SPAN_ALPHA, lw=0, label=f"{name}: MSA"))
    ax.set_xlim(0, 1)
    ax.set_xlabel("Normalized depth (block index / last index)")
    ax.set_ylabel(ylabel)
    ax.legend(handles=handles)
