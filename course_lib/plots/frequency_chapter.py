"""Figures of chapter 03 beyond the paper's own (:mod:`course_lib.plots.frequency`): side-by-side
Δ log amplitude curves, the high-frequency point with downsampling marked beside the paper's
Fig. 8, per-block changes by block kind, noise sweeps with the texture band shaded and the
paper's Fig. 2b on a second axis, cue reliance, and the noisy-image panel of the noise widget.
Every function returns the Figure it drew on (a new one, made without pyplot, so a notebook
shows it exactly once as the cell's value; or the Figure of ``ax``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TypeVar

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from torch import Tensor

from course_lib.analysis.depth_profiles import DOWNSAMPLING, KIND_LABELS, BlockChange
from course_lib.analysis.fourier import FourierProfile
from course_lib.analysis.robustness import NoiseDemo, NoiseSweep
from course_lib.analysis.variance import VarianceProfile
from course_lib.plots.frequency import (
    plot_delta_log_amplitude,
    plot_high_frequency_over_depth,
    plot_noise_heatmap,
    plot_noise_sweep,
    plot_variance_over_depth,
)
from course_lib.plots.style import color_for, course_style

T = TypeVar("T")

CATEGORY_ORDER = (*KIND_LABELS.values(), DOWNSAMPLING)  # "MSA", "MLP", "Conv", "Conv ↓2"
CUE_LABELS = {
    "both": "both cues",
    "low": "layout only\n(low freq.)",
    "high": "texture only\n(high freq.)",
    "none": "no cue",
}


PAPER_STYLE = {"ls": "--", "marker": "s", "mfc": "none", "lw": 1.2}  # the paper's values


@dataclass(frozen=True)
class PaperCurve:
    """One model's values ≈ read from a paper figure: points, and optionally a band the curve
    stays in from the last point to x = 1 (where the figure gives only a range)."""

    family: str  # the course's family whose colour it takes ("resnet", "vit", ...)
    label: str  # the paper's model, e.g. "ResNet-50"
    x: tuple[float, ...]  # normalized depth (Fig. 8) or band centre in units of π (Fig. 2b)
    values: tuple[float, ...]
    band: tuple[float, float] | None = None  # (low, high) from the last point to x = 1


def plot_fourier_curves(profiles: Mapping[str, FourierProfile], width: float = 4.2) -> Figure:
    """Paper Fig. 2a for each model side by side: one Δ log amplitude curve per depth."""
    return _panel_row(profiles, plot_delta_log_amplitude, (width, 3.3))


def plot_high_frequency(
    profiles: Mapping[str, FourierProfile], paper: Sequence[PaperCurve] = ()
) -> Figure:
    """Paper Fig. 8 (:func:`plot_high_frequency_over_depth`) with downsampling blocks marked,
    and the paper's values in a panel of their own beside it if ``paper`` is given.

    A "↓2" label sits at every depth whose map is smaller than the previous one: there the last
    point is π of a coarser grid, a lower physical frequency than before. The paper panel has
    its own scale: ImageNet models at 224×224, read off the figure.
    """
    with course_style():
        fig = Figure(figsize=(11.0 if paper else 8.0, 3.8), layout="constrained")
        axes = fig.subplots(1, 2, width_ratios=(2, 1)) if paper else [fig.add_subplot()]
    ax = plot_high_frequency_over_depth(profiles, ax=axes[0])
    with course_style():
        _legend_outside(ax)
        for name, profile in profiles.items():
            for i in range(1, len(profile.sizes)):
                if profile.sizes[i] < profile.sizes[i - 1]:
                    ax.annotate(
                        "↓2",
                        (float(profile.depth[i]), float(profile.high_frequency[i])),
                        textcoords="offset points",
                        xytext=(0, 7),
                        ha="center",
                        fontsize=8,
                        color=color_for(name),
                    )
        if paper:
            ax.set_title("This run")
            _plot_paper_curves(axes[1], paper)
            axes[1].set(xlim=(-0.02, 1.02), xlabel="Normalized depth", ylabel=ax.get_ylabel())
            axes[1].set_title("Paper, ImageNet (≈ read from Fig. 8)")
            axes[1].legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.2))
    return fig


def _plot_paper_curves(ax: Axes, paper: Sequence[PaperCurve], suffix: str = "") -> None:
    """The paper's points (hollow squares, dashed) and bands, in each family's colour."""
    for curve in paper:
        color = color_for(curve.family)
        label = f"{curve.label}{suffix}"
        ax.plot(curve.x, curve.values, color=color, label=label, **PAPER_STYLE)
        if curve.band is not None:
            ax.fill_between((curve.x[-1], 1.0), *curve.band, color=color, alpha=0.2, lw=0)


def plot_block_changes(
    changes: Mapping[str, Sequence[BlockChange]],
    ylabel: str = "Δ log amplitude change at 1.0π",
    ax: Axes | None = None,
) -> Figure:
    """Strip plot: one dot per block, x = block kind (MSA, MLP, Conv, Conv ↓2), colour = model.

    The y value is what the block did to the statistic (``BlockChange.change``); a bar marks
    each model's mean per kind. Below the zero line the block lowered it (for Δ log amplitude:
    removed high frequencies, a low-pass filter), above it raised it.
    """
    present = {c.category for cs in changes.values() for c in cs}
    categories = [c for c in CATEGORY_ORDER if c in present]
    categories += sorted(present - set(categories))
    n = max(len(changes), 1)
    offsets = np.linspace(-0.25, 0.25, n) if n > 1 else np.zeros(1)
    rng = np.random.default_rng(0)
    with course_style():
        ax = _axes(ax, (6.0, 3.6))
        for offset, (name, cs) in zip(offsets, changes.items(), strict=True):
            color = color_for(name)
            for j, category in enumerate(categories):
                values = [c.change for c in cs if c.category == category]
                if not values:
                    continue
                x = j + offset + rng.uniform(-0.04, 0.04, len(values))
                ax.scatter(x, values, s=22, color=color, alpha=0.8, lw=0)
                ax.plot([j + offset - 0.1, j + offset + 0.1], [np.mean(values)] * 2, color=color)
            ax.scatter([], [], color=color, label=name)
        ax.axhline(0, color="black", lw=0.8)
        ax.set_xticks(range(len(categories)), categories)
        ax.set_xlim(-0.6, len(categories) - 0.4)
        ax.set_xlabel("Block kind (bar: mean per model)")
        ax.set_ylabel(ylabel)
        ax.legend(fontsize=8)
    return ax.figure


def plot_variance_panels(profiles: Mapping[str, VarianceProfile], width: float = 4.0) -> Figure:
    """Paper Fig. 9 with one panel per model (their scales differ a lot), MSA blocks shaded."""
    named = {name: {name: profile} for name, profile in profiles.items()}
    fig = _panel_row(named, plot_variance_over_depth, (width, 3.2), titles=False)
    for ax in fig.axes[1:]:
        ax.set_ylabel("")
    return fig


def plot_cue_reliance(
    accuracies: Mapping[str, Mapping[str, float]],
    chance: float | None = None,
    ax: Axes | None = None,
) -> Figure:
    """Grouped bars: accuracy of every model on each cue-removal test set (percent).

    A model that keeps its accuracy on "texture only" relies on the high-frequency cue
    (texture bias); one that keeps it on "layout only" relies on the low-frequency cue (shape
    bias). ``chance`` draws the chance level.
    """
    cue_sets = list(next(iter(accuracies.values())).keys()) if accuracies else []
    n = max(len(accuracies), 1)
    width = 0.8 / n
    with course_style():
        ax = _axes(ax, (8.0, 3.6))
        for i, (name, acc) in enumerate(accuracies.items()):
            x = np.arange(len(cue_sets)) + (i - (n - 1) / 2) * width
            ax.bar(x, [acc[c] for c in cue_sets], width, color=color_for(name), label=name)
        if chance is not None:
            ax.axhline(chance, color="black", lw=0.8, ls="--", label="chance")
        ax.set_xticks(range(len(cue_sets)), [CUE_LABELS.get(c, c) for c in cue_sets])
        ax.set_ylim(0, 100)
        ax.set_ylabel("Test accuracy (%)")
        ax.set_xlabel("Test set")
        _legend_outside(ax)
    return ax.figure


def plot_noise_demo(
    demo: NoiseDemo,
    mean: Sequence[float],
    std: Sequence[float],
    classes: Sequence[str] | None = None,
) -> Figure:
    """One test image clean, its band-limited noise and the noisy image, each model's prediction
    for it, and every model's accuracy on the whole batch, clean vs. noisy (the noise widget)."""

    def show(image: Tensor, offset: float | None = None) -> np.ndarray:
        m = np.asarray(mean, dtype=np.float32).reshape(3, 1, 1)
        s = np.asarray(std, dtype=np.float32).reshape(3, 1, 1)
        pixels = image.cpu().numpy() * s + (m if offset is None else offset)
        return np.clip(pixels, 0, 1).transpose(1, 2, 0)

    def name_of(label: int) -> str:
        return classes[label] if classes else f"class {label}"

    with course_style():
        fig = Figure(figsize=(13, 3.6), layout="constrained")
        axes = fig.subplots(1, 4, gridspec_kw={"width_ratios": [1, 1, 1, 1.5]})
        band = f"[{demo.center - demo.width / 2:.2f}, {demo.center + demo.width / 2:.2f})π"
        axes[0].imshow(show(demo.clean))
        axes[0].set_title(f"clean: {name_of(demo.label)}", fontsize=10)
        axes[1].imshow(show(demo.noise, offset=0.5))
        axes[1].set_title(f"noise {band}, RMS {demo.magnitude:g}", fontsize=10)
        axes[2].imshow(show(demo.clean + demo.noise))
        predicted = "\n".join(
            f"{name}: {name_of(p)} {'✓' if p == demo.label else '✗'}"
            for name, p in demo.predictions.items()
        )
        axes[2].set_title(f"noisy; predictions\n{predicted}", fontsize=9)
        for ax in axes[:3]:
            ax.set_xticks([])
            ax.set_yticks([])
            ax.grid(False)
        ax = axes[3]
        names = list(demo.accuracy)
        x = np.arange(len(names))
        colors = [color_for(n) for n in names]
        ax.bar(x - 0.2, [demo.clean_accuracy[n] for n in names], 0.4, color=colors, alpha=0.35)
        ax.bar(x + 0.2, [demo.accuracy[n] for n in names], 0.4, color=colors)
        for xi, n in zip(x, names, strict=True):
            ax.text(xi + 0.2, demo.accuracy[n] + 2, f"{demo.accuracy[n]:.0f}", ha="center")
        ax.set_xticks(x, names)
        ax.set_ylim(0, 105)
        ax.set_ylabel("Accuracy (%)")
        ax.set_title(f"{demo.num_images} test images: clean (pale) vs. noisy", fontsize=10)
    return fig


def plot_noise_drops(
    sweeps: Mapping[str, NoiseSweep],
    magnitude: float | None = None,
    cue_band: tuple[float, float] | None = None,
    chance: float | None = None,
    paper: Sequence[PaperCurve] = (),
    ax: Axes | None = None,
) -> Figure:
    """Paper Fig. 2b (:func:`plot_noise_sweep` at one ``magnitude``, as a share of the accuracy
    above ``chance`` if given) with the band that holds the data's texture cue shaded
    (``cue_band``, units of π), and the paper's drops (pp, ImageNet) on a second axis."""
    ax = plot_noise_sweep(sweeps, ax=_axes(ax, (8.0, 3.8)), magnitude=magnitude, chance=chance)
    with course_style():
        if cue_band is not None:
            ax.axvspan(*cue_band, color="0.5", alpha=0.15, lw=0, label="texture cue band")
        handles, labels = ax.get_legend_handles_labels()
        if paper:
            twin = ax.twinx()
            _plot_paper_curves(twin, paper, suffix=", paper (right axis)")
            twin.set_ylim(bottom=0)
            twin.grid(False)
            twin.set_ylabel("Paper, ImageNet (≈ read from Fig. 2b):\naccuracy drop (pp)")
            more = twin.get_legend_handles_labels()
            handles, labels = handles + more[0], labels + more[1]
        right = 1.15 if paper else 1.01  # beyond the second axis's labels
        ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(right, 1), fontsize=8)
    return ax.figure


def plot_noise_heatmaps(
    sweeps: Mapping[str, NoiseSweep], chance: float | None = None, width: float = 5.0
) -> Figure:
    """:func:`plot_noise_heatmap` for each model side by side: drop per magnitude and band."""
    return _panel_row(sweeps, partial(plot_noise_heatmap, chance=chance), (width, 3.2))


def _axes(ax: Axes | None, figsize: tuple[float, float]) -> Axes:
    """``ax``, or the axes of a new pyplot-free Figure.

    Not :func:`~course_lib.plots.style.axes_or_new`, which makes a pyplot figure: under
    ``%matplotlib inline`` a pyplot figure is shown once by the backend and once more as the
    cell's value, so the chapter's figures stay out of pyplot.
    """
    if ax is not None:
        return ax
    with course_style():
        return Figure(figsize=figsize, layout="constrained").add_subplot()


def _legend_outside(ax: Axes) -> None:
    """Move the axes' legend to the right of the plot, where it hides no data."""
    legend = ax.get_legend()
    handles = legend.legend_handles if legend is not None else None
    if handles:
        labels = [text.get_text() for text in legend.get_texts()]
        ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8)
    else:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8)


def _panel_row(
    items: Mapping[str, T],
    draw: Callable[..., Axes],
    panel_size: tuple[float, float],
    titles: bool = True,
) -> Figure:
    """One panel per item, side by side: ``draw(item, ax=ax)``, titled with the item's name."""
    width, height = panel_size
    with course_style():
        fig = Figure(figsize=(width * len(items), height), layout="constrained")
        axes = np.atleast_1d(fig.subplots(1, len(items)))
        for ax, (name, item) in zip(axes, items.items(), strict=True):
            draw(item, ax=ax)
            if titles:
                ax.set_title(name, color=color_for(name))
    return fig
