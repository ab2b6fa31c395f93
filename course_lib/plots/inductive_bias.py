"""Figures of chapter 01 (claims C1, C2): what one layer can mix, final metrics, data-size sweep.

The colours follow :mod:`course_lib.plots.style` (ResNet orange-red, ViT blue, local ViT teal,
AlterNet purple); the data-size sweep draws the ViT in shades of its blue, darker for more data.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from course_lib.plots.style import color_for, course_style, family_label, log_scale

if TYPE_CHECKING:  # the records chapter 01 plots (report sits on the same floor as plots)
    from course_lib.report.inductive_bias import FinalMetrics, RunRecord


def interaction_mask(
    kind: str,
    *,
    image_size: int,
    position: tuple[int, int],
    layers: int = 1,
    kernel: int = 3,
    patch_size: int = 4,
    neighbourhood: int = 3,
) -> torch.Tensor:
    """Which input pixels can influence the output at ``position`` after ``layers`` layers.

    A boolean ``(image_size, image_size)`` mask, for a stack of identical mixing layers:

    - ``"conv"``: ``kernel × kernel`` convolutions at full resolution (stride 1, padding): the
      receptive field grows by ``kernel - 1`` pixels per layer, clipped at the border;
    - ``"local"``: patch embedding, then ``neighbourhood × neighbourhood`` attention on the
      token grid (as the course's local ViT; the window shifted inwards at the borders): the
      field grows by ``neighbourhood - 1`` tokens per layer, like a convolution over tokens;
    - ``"global"``: patch embedding, then global attention: the whole image from layer one.

    ``position`` is ``(row, column)`` in pixels. For the ViTs the output is the token of the
    patch that holds ``position``.
    """
    if kind not in ("conv", "local", "global"):
        raise ValueError(f"kind must be 'conv', 'local' or 'global', not {kind!r}")
    row, col = position
    if not (0 <= row < image_size and 0 <= col < image_size):
        raise ValueError(f"position {position} is outside a {image_size}×{image_size} image")
    if layers < 1:
        raise ValueError(f"layers must be >= 1, got {layers}")
    mask = torch.zeros(image_size, image_size, dtype=torch.bool)
    if kind == "global":
        mask[:] = True
        return mask
    if kind == "conv":
        reach = layers * (kernel - 1) // 2
        mask[max(0, row - reach) : row + reach + 1, max(0, col - reach) : col + reach + 1] = True
        return mask
    if image_size % patch_size:
        raise ValueError(f"image_size={image_size} is not a multiple of patch_size={patch_size}")
    grid = image_size // patch_size
    k = min(neighbourhood, grid)
    spans = []
    for token in (row // patch_size, col // patch_size):
        lo = hi = token
        for _ in range(layers):  # each layer reaches the windows of the tokens reached so far
            lo = min(max(lo - k // 2, 0), grid - k)
            hi = min(max(hi - k // 2, 0), grid - k) + k - 1
        spans.append((lo * patch_size, (hi + 1) * patch_size))
    (r0, r1), (c0, c1) = spans
    mask[r0:r1, c0:c1] = True
    return mask


def _draw_interaction(
    ax, image: np.ndarray, mask: torch.Tensor, position, colour: str, grid: int | None, title: str
) -> None:
    size = mask.shape[0]
    ax.imshow(image, interpolation="nearest", extent=(-0.5, size - 0.5, size - 0.5, -0.5))
    shade = np.zeros((size, size, 4))
    shade[~mask.numpy()] = (1, 1, 1, 0.75)  # fade what the output cannot see
    ax.imshow(shade, interpolation="nearest", extent=(-0.5, size - 0.5, size - 0.5, -0.5))
    if grid:
        for k in range(0, size + 1, grid):
            ax.axhline(k - 0.5, color="k", lw=0.4, alpha=0.5)
            ax.axvline(k - 0.5, color="k", lw=0.4, alpha=0.5)
    rows, cols = torch.nonzero(mask, as_tuple=True)
    r0, r1, c0, c1 = rows.min().item(), rows.max().item(), cols.min().item(), cols.max().item()
    ax.add_patch(
        Rectangle((c0 - 0.5, r0 - 0.5), c1 - c0 + 1, r1 - r0 + 1, fill=False, ec=colour, lw=2)
    )
    ax.plot(position[1], position[0], marker="*", color="k", ms=11, mec="w")
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)


def plot_interaction_range(
    image: torch.Tensor,
    *,
    position: tuple[int, int] | None = None,
    layers: int = 1,
    kernel: int = 3,
    patch_size: int = 4,
    neighbourhood: int = 3,
) -> Figure:
    """Three panels: the pixels that ``layers`` layers of each family let reach one output.

    ``image`` is ``(3, H, W)`` in [0, 1] (e.g. a synthetic training image). The star marks
    ``position`` (default: just off the centre); the coloured box is what can influence the
    output there, faded pixels cannot. Thin lines: the ViTs' patch grid.
    """
    size = image.shape[-1]
    position = position or (size // 2 - 3, size // 2 + 2)
    picture = image.permute(1, 2, 0).clamp(0, 1).numpy()
    panels = [
        ("conv", "resnet", None, f"ResNet: {layers} × ({kernel}×{kernel} conv)"),
        (
            "local",
            "local_vit",
            patch_size,
            f"local ViT: {neighbourhood}×{neighbourhood} neighbouring patches",
        ),
        ("global", "vit", patch_size, "ViT: global attention"),
    ]
    with course_style():
        # A Figure outside pyplot: returned once (no second copy from the inline backend), and
        # the widget can redraw it as often as it likes without leaking open figures.
        fig = Figure(figsize=(9.0, 3.5), layout="constrained")
        axes = fig.subplots(1, 3)
        for ax, (kind, family, grid, title) in zip(axes, panels, strict=True):
            mask = interaction_mask(
                kind,
                image_size=size,
                position=position,
                layers=layers,
                kernel=kernel,
                patch_size=patch_size,
                neighbourhood=neighbourhood,
            )
            pixels = int(mask.sum())
            _draw_interaction(
                ax, picture, mask, position, color_for(family), grid, f"{title}\n{pixels} pixels"
            )
        fig.suptitle(
            f"input pixels that can reach the starred output after {layers} layer(s)", fontsize=10
        )
    return fig


def plot_final_metrics(finals: Mapping[str, FinalMetrics], *, log_nll: bool = False) -> Figure:
    """Bars of the final train and test NLL and error of each model family (claim C1).

    ``finals`` maps a family to its final metrics (anything with ``train_nll``, ``test_nll``,
    ``train_error`` and ``test_error`` attributes, e.g.
    :class:`course_lib.report.inductive_bias.FinalMetrics`). Solid bars: training set (augmented
    batches, as measured during training); hatched: test set. ``log_nll`` draws the NLL on a log
    axis (for losses near zero, where ratios matter).
    """
    families = list(finals)
    x = np.arange(len(families))
    width = 0.38
    with course_style():
        fig, axes = plt.subplots(1, 2, figsize=(9.5, 3.6))
        for ax, metric, unit in ((axes[0], "nll", "NLL (nats)"), (axes[1], "error", "error (%)")):
            for i, family in enumerate(families):
                colour = color_for(family)
                train = getattr(finals[family], f"train_{metric}")
                test = getattr(finals[family], f"test_{metric}")
                train_label = "train (augmented)" if i == 0 else None
                ax.bar(i - width / 2, train, width, color=colour, label=train_label)
                test_style = {"color": to_rgba(colour, 0.25), "ec": colour, "hatch": "//"}
                ax.bar(i + width / 2, test, width, label="test" if i == 0 else None, **test_style)
                for offset, value in ((-width / 2, train), (width / 2, test)):
                    text = f"{value:.3g}" if metric == "nll" else f"{value:.1f}"
                    ax.annotate(text, (i + offset, value), **_VALUE_LABEL)
            ax.set_xticks(x, [family_label(f) for f in families])
            ax.set(ylabel=unit, title=f"final {metric.upper() if metric == 'nll' else metric}")
            ax.margins(y=0.15)
        if log_nll:
            log_scale(axes[0])
        handles, labels = axes[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="upper center", ncol=2, fontsize=8, frameon=False)
        fig.tight_layout(rect=(0, 0, 1, 0.93))
    return fig


#: How a bar's value is written above it.
_VALUE_LABEL = {
    "ha": "center",
    "va": "bottom",
    "fontsize": 7,
    "xytext": (0, 2),
    "textcoords": "offset points",
}


def _fraction_colours(fractions: Sequence[float]) -> list:
    shades = plt.get_cmap("Blues")(np.linspace(0.35, 0.95, len(fractions)))
    order = np.argsort(np.argsort(fractions))  # darker = more data
    return [shades[k] for k in order]


def plot_fraction_sweep(
    sweep: Mapping[float, Sequence[RunRecord]], *, log_nll: bool = False
) -> Figure:
    """The ViT on growing data fractions (claim C2): curves, final NLL and final error.

    ``sweep`` maps a fraction to its runs, one per seed (anything with a ``history``
    (:class:`~course_lib.train.History`) and ``final`` metrics, e.g. the
    :class:`course_lib.report.inductive_bias.RunRecord` of
    :func:`course_lib.chapters.ch01_inductive_bias.fraction_sweep`). Left: train (solid) and test
    (dashed) NLL of the first seed's run against training progress in full-data epochs (every
    run takes the same number of steps); middle and right: the final values' seed means against
    the fraction (log axis), with bars from the lowest to the highest seed.
    ``log_nll`` puts both NLL panels on a log axis.
    """
    fractions = sorted(sweep)
    colours = _fraction_colours(fractions)
    metrics = ("train_nll", "test_nll", "train_error", "test_error")
    finals = {m: [[getattr(r.final, m) for r in sweep[f]] for f in fractions] for m in metrics}
    vit = color_for("vit")
    with course_style():
        fig, (ax_curve, ax_nll, ax_err) = plt.subplots(1, 3, figsize=(12, 3.6))
        for f, colour in zip(fractions, colours, strict=True):
            h = sweep[f][0].history
            progress = np.asarray(h.epoch, dtype=float) * f  # full-data epochs
            ax_curve.plot(progress, h.train_nll, "-o", color=colour, ms=2.5, label=f"{f:.0%}")
            # a small-data run is tested only at the full run's step counts (NaN in between)
            test_nll = np.asarray(h.test_nll, dtype=float)
            tested = np.isfinite(test_nll)
            ax_curve.plot(
                progress[tested], test_nll[tested], "--s", color=colour, ms=3, mfc="white"
            )
        ax_curve.set(
            xlabel="training progress (full-data epochs)",
            ylabel="NLL (nats)",
            title="NLL during training",
        )
        ax_curve.legend(fontsize=7, title="data (solid: train, dashed: test)", title_fontsize=7)
        for ax, metric, unit in ((ax_nll, "nll", "NLL (nats)"), (ax_err, "error", "error (%)")):
            for split, style, extra in (
                ("train", "-o", {"label": "train (augmented)"}),
                ("test", "--s", {"label": "test", "mfc": "white"}),
            ):
                values = finals[f"{split}_{metric}"]  # per fraction, one value per seed
                mean = np.array([np.mean(v) for v in values])
                bars = (mean - [min(v) for v in values], [max(v) for v in values] - mean)
                ax.errorbar(fractions, mean, yerr=bars, fmt=style, color=vit, capsize=3, **extra)
            ax.set_xscale("log")
            ax.set_xticks(fractions, [f"{f:.0%}" for f in fractions])
            ax.minorticks_off()
            title = f"final {metric.upper() if metric == 'nll' else metric}"
            ax.set(xlabel="fraction of the training set", ylabel=unit, title=title)
        ax_nll.legend(fontsize=8)
        if log_nll:
            log_scale(ax_curve)
            log_scale(ax_nll)
        fig.tight_layout()
    return fig


def plot_fit_vs_generalization(
    ours: Mapping[str, Sequence[FinalMetrics]],
    paper: Mapping[str, tuple[float, float]],
    sweep: Mapping[float, Sequence[RunRecord]] | None = None,
) -> Figure:
    """The paper's Fig. 5a beside ours: train NLL (x) against test error (y), one point a model.

    Left: the paper's CIFAR-100 models (``paper`` maps a name to (test error %, train NLL)).
    Right: ours (``ours`` maps a family to its final metrics, one per seed: small dots per seed,
    a large one for the mean) and, if given, the C2 ``sweep``'s ViTs, one triangle per fraction
    at its seed mean (paper Fig. 5b's reading).
    The scales differ (100 vs 10 classes), so each panel has its own axes: compare the slopes.
    """
    with course_style():
        fig, (ax_paper, ax_ours) = plt.subplots(1, 2, figsize=(10, 3.8))
        for name, (error, nll) in paper.items():
            family = "resnet" if "Res" in name else "vit" if "ViT" in name else "local_vit"
            ax_paper.scatter(nll, error, color=color_for(family), s=30)
            ax_paper.annotate(name, (nll, error), fontsize=7, xytext=(4, -3),
                              textcoords="offset points")  # fmt: skip
        ax_paper.set(xlabel="train NLL (augmented)", ylabel="test error (%)",
                     title="paper (CIFAR-100, ≈ read from Fig. 5a)")  # fmt: skip
        for family, finals in ours.items():
            colour = color_for(family)
            nll = [m.train_nll for m in finals]
            error = [m.test_error for m in finals]
            ax_ours.scatter(nll, error, color=colour, s=12, alpha=0.6)
            ax_ours.scatter(np.mean(nll), np.mean(error), color=colour, s=60, ec="black",
                            label=family_label(family))  # fmt: skip
        fractions = sorted(sweep or {})
        for fraction, colour in zip(fractions, _fraction_colours(fractions), strict=True):
            nll = np.mean([r.final.train_nll for r in sweep[fraction]])
            error = np.mean([r.final.test_error for r in sweep[fraction]])
            ax_ours.scatter(nll, error, color=colour, marker="^", s=40)
            ax_ours.annotate(f"ViT {fraction:.0%}", (nll, error), fontsize=7,
                             xytext=(4, -3), textcoords="offset points")  # fmt: skip
        ax_ours.set(xlabel="train NLL (augmented)", ylabel="test error (%)", title="this run")
        ax_ours.legend(fontsize=8)
        fig.tight_layout()
    return fig
