"""Figures for the AlterNet chapter: the build-up rule (Fig. 12), AlterNet vs. the others, and
the lesion study (Fig. 10b). Every function returns its Figure and never calls ``plt.show()``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from course_lib.analysis.lesion import LesionResult
from course_lib.plots.style import (
    FAMILY_COLORS,
    FAMILY_LABELS,
    KIND_COLORS,
    color_for,
    course_style,
    family_label,
)

if TYPE_CHECKING:  # the chapter's result types, read here by their fields only
    from course_lib.report.alternet import BuildUpRow, RunSummary
    from course_lib.report.families import FamilyComparison
    from course_lib.report.lesions import LesionStudy

HELPED_COLORS = {True: "#1a9850", False: "#d73027", None: "#777777"}


def plot_buildup(
    steps: Sequence[Sequence[int]],
    accuracy: Sequence[float],
    nll: Sequence[float],
    helped: Sequence[bool | None] | None = None,
    seed_range: Sequence[tuple[float, float]] | None = None,
    paper_accuracy: Sequence[float] | None = None,
    paper_extra: tuple[float, float] | None = None,
) -> Figure:
    """Test accuracy and NLL at each build-up step, beside the paper's Fig. 12 curve.

    ``steps`` are the MSA blocks per stage of each step (the first: the plain ResNet).
    ``helped[i]``: True (green) if step ``i`` helped, False (red) if it hurt, None (grey) for the
    first step or a change within the noise; default: green/red by accuracy. ``seed_range``:
    ``[(low, high) accuracy, (low, high) NLL]`` of the plain ResNet over its seeds, drawn as a
    band (the run-to-run noise). ``paper_accuracy[i]`` is the paper's accuracy with
    ``i`` MSAs; ``paper_extra`` the range it gives for one MSA more.
    """
    labels = ["ResNet" if not any(s) else str(tuple(s)) for s in steps]
    x = list(range(len(steps)))
    if helped is None:
        helped = [None] + [b > a for a, b in zip(accuracy, accuracy[1:], strict=False)]
    n_panels = 3 if paper_accuracy is not None else 2
    with course_style():
        fig, axes = plt.subplots(1, n_panels, figsize=(4.2 * n_panels, 3.6))
        for k, (ax, values, ylabel) in enumerate(
            ((axes[0], accuracy, "Test accuracy (%)"), (axes[1], nll, "Test NLL (nats)"))
        ):
            if seed_range is not None:
                ax.axhspan(*seed_range[k], color="#999999", alpha=0.3, lw=0)
            ax.plot(x, values, color=FAMILY_COLORS["alternet"], lw=1.5, zorder=1)
            ax.scatter(
                x, values, s=60, zorder=2, color=[HELPED_COLORS[h] for h in helped], ec="white"
            )
            ax.set_xticks(x, labels, rotation=20)
            ax.set_xlabel("MSA blocks per stage")
            ax.set_ylabel(ylabel)
            ax.margins(y=0.2)
        axes[0].set_ylim(top=min(axes[0].get_ylim()[1], 100.5))  # no room above 100 %
        axes[0].set_title("This run")
        axes[1].set_title("This run")
        handles = [
            Patch(color=HELPED_COLORS[True], label="step helped"),
            Patch(color=HELPED_COLORS[False], label="step hurt"),
            Patch(color=HELPED_COLORS[None], label="ResNet / within noise"),
        ]
        if seed_range is not None:
            handles.append(Patch(color="#999999", alpha=0.3, label="ResNet, range over seeds"))
        axes[1].legend(handles=handles, loc="best", fontsize="small")
        if paper_accuracy is not None:
            ax = axes[2]
            n = list(range(len(paper_accuracy)))
            ax.plot(n, paper_accuracy, marker="o", color=FAMILY_COLORS["alternet"])
            if paper_extra is not None:
                low, high = paper_extra
                ax.errorbar(
                    [len(n)],
                    [(low + high) / 2],
                    yerr=[[(high - low) / 2], [(high - low) / 2]],
                    fmt="o",
                    color=HELPED_COLORS[False],
                    capsize=4,
                )
                ax.annotate(
                    "one MSA\ntoo many",
                    (len(n), low),
                    xytext=(0, -4),
                    textcoords="offset points",
                    ha="center",
                    va="top",
                    fontsize="small",
                    color=HELPED_COLORS[False],
                )
            ax.set_xticks(range(len(n) + (paper_extra is not None)))
            ax.set_xlabel("Number of MSA blocks")
            ax.set_ylabel("Test accuracy (%)")
            ax.set_title("Paper, CIFAR-100 (≈ Fig. 12)")
        fig.tight_layout()
    return fig


def plot_family_comparison(
    labels: Mapping[str, str],
    metrics: Mapping[str, Mapping[str, Sequence[float]]],
    paper: Mapping[str, Mapping[str, float]] | None = None,
) -> Figure:
    """Bar charts of a few metrics for each model family, in the family colours.

    ``labels[family]`` names the bars; ``metrics[title][family]`` holds one panel's values, one
    per seed: the bar is their mean, the dots each seed, the line their range (a family absent
    from a panel gets no bar). ``paper[title][family]`` adds a last panel of the paper's numbers
    (grouped bars).
    """
    families = list(labels)
    n_panels = len(metrics) + (paper is not None)
    with course_style():
        fig, axes = plt.subplots(1, n_panels, figsize=(3.4 * n_panels, 3.4))
        axes = [axes] if n_panels == 1 else list(axes)
        colors = [color_for(f) for f in families]
        for ax, (title, values) in zip(axes, metrics.items(), strict=False):
            for i, f in enumerate(families):
                if f not in values:
                    continue
                seeds = list(values[f])
                mean = sum(seeds) / len(seeds)
                ax.bar(i, mean, color=colors[i])
                ax.vlines(i, min(seeds), max(seeds), color="black", lw=1)
                ax.scatter([i] * len(seeds), seeds, color="black", s=12, zorder=3)
                ax.annotate(
                    f"{mean:.3g}", (i, max(seeds)), ha="center", va="bottom", fontsize="small"
                )
            ax.set_xticks(range(len(families)), [labels[f] for f in families], rotation=20)
            ax.set_title(title, fontsize="medium")
            ax.margins(y=0.15)
        if paper is not None:
            ax = axes[-1]
            width = 0.8 / len(paper)
            for j, (title, values) in enumerate(paper.items()):
                xs = [i + (j - (len(paper) - 1) / 2) * width for i in range(len(families))]
                ax.bar(
                    xs,
                    [values[f] for f in families],
                    width=width,
                    color=colors,
                    alpha=1.0 if j == 0 else 0.5,
                    hatch=None if j == 0 else "//",
                    label=title,
                    edgecolor="white",
                )
            ax.set_xticks(range(len(families)), [labels[f] for f in families], rotation=20)
            ax.set_ylim(40, 100)
            ax.set_title("Paper, CIFAR-100 (≈ Fig. 12)", fontsize="medium")
            styles = [dict(facecolor="#777777"), dict(facecolor="#bbbbbb", hatch="//")]
            handles = [
                Patch(label=title, edgecolor="white", **style)
                for title, style in zip(paper, styles, strict=False)
            ]
            ax.legend(handles=handles, fontsize="small", loc="upper center", ncol=2)
        fig.tight_layout()
    return fig


def short_unit_name(name: str) -> str:
    """A compact label for a unit: ``stages.1.0`` → ``2.1``, ``layer3.1`` → ``3.2``,
    ``blocks.5`` → ``5``."""
    if m := re.fullmatch(r"(?:.*\.)?(?:stages|layers)\.(\d+)\.(\d+)", name):
        return f"{int(m.group(1)) + 1}.{int(m.group(2)) + 1}"
    if m := re.fullmatch(r"(?:.*\.)?layer(\d+)\.(\d+)", name):
        return f"{m.group(1)}.{int(m.group(2)) + 1}"
    if m := re.fullmatch(r"(?:.*\.)?blocks\.(\d+)", name):
        return m.group(1)
    return name


def _stage_of(name: str) -> str | None:
    m = re.fullmatch(r"(?:.*\.)?(?:stages\.|layers\.|layer)(\d+)\.\d+", name)
    return m.group(1) if m else None


def plot_lesions(
    results: Mapping[str, LesionResult],
    titles: Mapping[str, str] | None = None,
    chance_drop: Mapping[str, float] | None = None,
) -> Figure:
    """Accuracy drop when each unit is removed alone, one panel per model (paper Fig. 10b).

    Bars are coloured by the unit's kind (Conv, MSA, MLP); dotted lines separate stages. The
    panels share the y axis, so the size of the drops compares across models.
    ``chance_drop[name]`` draws the drop that leaves that model at chance (dashed).
    """
    titles, chance_drop = titles or {}, chance_drop or {}
    with course_style():
        widths = [max(len(r.names), 6) for r in results.values()]
        fig, axes = plt.subplots(
            1,
            len(results),
            figsize=(1.6 + 0.42 * sum(widths), 3.6),
            sharey=True,
            gridspec_kw={"width_ratios": widths},
        )
        axes = [axes] if len(results) == 1 else list(axes)
        for ax, (name, r) in zip(axes, results.items(), strict=True):
            x = range(len(r.names))
            ax.bar(x, r.drop.tolist(), color=[KIND_COLORS[k] for k in r.kinds])
            stages = [_stage_of(n) for n in r.names]
            for i in range(1, len(stages)):
                if stages[i] is not None and stages[i] != stages[i - 1]:
                    ax.axvline(i - 0.5, color="black", ls=":", lw=1)
            ax.axhline(0, color="black", lw=0.8)
            if name in chance_drop:
                ax.axhline(chance_drop[name], color="black", lw=1, ls="--", label="to chance")
            ax.set_xticks(list(x), [short_unit_name(n) for n in r.names], rotation=90)
            ax.set_title(titles.get(name, name), fontsize="medium")
            ax.set_xlabel("Removed unit (stage.block)" if stages[0] else "Removed sub-block")
        axes[0].set_ylabel("Accuracy drop (pp)")
        kinds = sorted({k for r in results.values() for k in r.kinds})
        labels = {"conv": "Conv block", "msa": "MSA block", "mlp": "MLP block"}
        handles = [Patch(color=KIND_COLORS[k], label=labels.get(k, k)) for k in kinds]
        if chance_drop:
            handles.append(Line2D([], [], color="black", lw=1, ls="--", label="drop to chance"))
        axes[-1].legend(
            handles=handles,
            fontsize="small",
            loc="upper left",
            bbox_to_anchor=(1.01, 1.0),
        )
        fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------------------------
# The chapter's figures, from its results


def figure_buildup(
    rows: Sequence[BuildUpRow],
    resnet_seeds: Sequence[RunSummary],
    paper_accuracy: Sequence[float] | None = None,
    paper_extra: tuple[float, float] | None = None,
) -> Figure:
    """Accuracy and NLL over the build-up steps (``buildup_rows``), beside the paper's Fig. 12.

    A step is coloured by whether it helped only if its change exceeds the seed noise;
    ``resnet_seeds`` are the plain ResNet's runs at every seed (the grey band: their range).
    """
    acc = [r.test_accuracy for r in resnet_seeds]
    nll = [r.test_nll for r in resnet_seeds]
    return plot_buildup(
        [r.msa_blocks for r in rows],
        [r.test_accuracy for r in rows],
        [r.test_nll for r in rows],
        helped=[r.helped if r.beyond_noise else None for r in rows],
        seed_range=[(min(acc), max(acc)), (min(nll), max(nll))] if len(acc) > 1 else None,
        paper_accuracy=paper_accuracy,
        paper_extra=paper_extra,
    )


def figure_families(
    families: FamilyComparison,
    paper_accuracy: Mapping[str, float],
    paper_corrupted: Mapping[str, float],
) -> Figure:
    """AlterNet vs. ResNet, local ViT and ViT, every seed: accuracy, NLL, normalised
    high-frequency drop (AlterNet and ResNet); and the paper's accuracy and CIFAR-100-C."""
    runs = families.runs
    metrics = {
        "Test accuracy (%)": {f: [r.test_accuracy for r in rs] for f, rs in runs.items()},
        "Test NLL (nats)": {f: [r.test_nll for r in rs] for f, rs in runs.items()},
        "High-frequency drop\n(normalised, lower = more robust)": {
            f: list(families.high_drop(f).values()) for f in families.noise
        },
    }
    paper = {"accuracy": paper_accuracy, "CIFAR-100-C": paper_corrupted}
    return plot_family_comparison(FAMILY_LABELS, metrics, paper)


def figure_lesions(study: LesionStudy) -> Figure:
    """Accuracy drop per removed unit of each model (Fig. 10b), titled with its clean accuracy;
    the dashed line is the drop that leaves the model at chance."""
    titles = {
        f: f"{family_label(f)}\nclean accuracy {r.clean_accuracy:.2f} %"
        for f, r in study.results.items()
    }
    chance = {f: r.clean_accuracy - study.chance for f, r in study.results.items()}
    return plot_lesions(study.results, titles, chance)
