"""Chapter 01 — inductive bias (claims C1, C2): the three families trained with one budget.

- :func:`family_runs` trains (or loads from the cache) ResNet, local-window ViT, ViT and, as a
  preview of chapter 04, AlterNet with the profile's shared recipe, and returns their training
  histories and final metrics as plain dicts. These are the shared models that chapters 02–04
  analyse, so they are requested with the profile defaults.
- :func:`fraction_sweep` trains the ViT on the class-balanced fractions
  ``profile.data_fractions`` with the same number of optimisation steps for every fraction.
- :func:`c1_comparisons` / :func:`c2_comparisons` turn the measured values into the rows of the
  "paper vs. this run" box, with verdicts computed from the numbers.

Train NLL is the one :func:`course_lib.train.fit` logs: the mean over the last epoch's
*augmented* training batches, measured while training — as the paper reports it (its Fig. 5
uses train NLL on augmented data). The ``laptop`` profile augments with random crops and flips
only; the ``gpu`` profile adds RandAugment and mixup/CutMix like the paper.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from itertools import pairwise
from typing import TYPE_CHECKING, Any

from matplotlib.figure import Figure
from torch import nn

from course_lib.chapters import precompute_step
from course_lib.config import Profile, get_profile
from course_lib.experiments import resolve_model_name, trained_model
from course_lib.models import ResNet, ViT, create_model, model_family
from course_lib.plots.inductive_bias import family_label, plot_interaction_range
from course_lib.report import Comparison, ordered, verdict_from

if TYPE_CHECKING:
    import ipywidgets

#: The families that claim C1 compares, from strongest to weakest inductive bias.
C1_FAMILIES: tuple[str, ...] = ("resnet", "local_vit", "vit")
#: Trained alongside as a preview of chapter 04 (not part of C1's ordering).
PREVIEW_FAMILIES: tuple[str, ...] = ("alternet",)

#: Paper Fig. 5a (CIFAR-100, ≈ read from the figure): test error (%) and train NLL on augmented
#: data of ResNet-50 (Conv), Swin-Ti (local MSA) and ViT-Ti (global MSA).
PAPER_C1: dict[str, dict[str, float | str]] = {
    "resnet": {"model": "ResNet-50", "test_error": 17.3, "train_nll": 2.09},
    "local_vit": {"model": "Swin-Ti", "test_error": 23.3, "train_nll": 2.23},
    "vit": {"model": "ViT-Ti", "test_error": 33.5, "train_nll": 2.52},
}
#: Paper Fig. 5b (ViT-Ti on class-balanced CIFAR-100 subsets, ≈ read from the figure).
PAPER_C2: dict[str, tuple[float, ...]] = {
    "fraction": (1 / 64, 1 / 32, 1 / 16, 1 / 8, 1 / 4, 1 / 2, 1.0),
    "test_error": (89.9, 83.2, 75.2, 63.9, 53.7, 44.1, 34.8),
    "train_nll": (3.89, 3.57, 3.53, 3.31, 3.03, 2.76, 2.57),
}

_METRICS = ("train_nll", "train_error", "test_nll", "test_error")


def _profile(profile: Profile | str | None) -> Profile:
    return profile if isinstance(profile, Profile) else get_profile(profile)


def parameter_count(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def final_metrics(history: Mapping[str, Sequence[float]]) -> dict[str, float]:
    """The last epoch's train/test NLL and error, and the gaps test − train (NLL, error).

    ``history`` is a :class:`~course_lib.train.History` as a dict. A positive ``nll_gap`` means
    the model does better on its training batches than on unseen images (the overfitting side);
    a gap near zero with a high train NLL is underfitting.
    """
    if not history.get("epoch"):
        raise ValueError("the history has no epochs")
    final = {m: float(history[m][-1]) for m in _METRICS}
    final["nll_gap"] = final["test_nll"] - final["train_nll"]
    final["error_gap"] = final["test_error"] - final["train_error"]
    return final


def model_geometry(profile: Profile | str | None = None) -> dict[str, int]:
    """Image size, conv kernel, ViT patch size and local-ViT window of a profile's models."""
    prof = _profile(profile)
    vit = create_model(resolve_model_name("vit", prof), image_size=prof.image_size)
    local = create_model(resolve_model_name("local_vit", prof), image_size=prof.image_size)
    return {
        "image_size": prof.image_size,
        "kernel": 3,  # every conv of the course's ResNets is 3×3 (1×1 aside)
        "patch_size": vit.config.patch_size,
        "local_patch_size": local.config.patch_size,
        "window": local.config.window,
    }


def _describe(model: nn.Module, image_size: int) -> tuple[str, str]:
    """(what the blocks work on, what one mixing layer combines) for a course model."""
    c = model.config
    if isinstance(model, ViT):
        grid = image_size // c.patch_size
        layout = f"{grid}×{grid} = {grid * grid} tokens ({c.patch_size}×{c.patch_size}-px patches)"
        if c.window:
            side = c.window * c.patch_size
            return layout, f"{c.window}×{c.window} tokens ({side}×{side} px window), no shift"
        return layout, f"all {grid * grid} tokens (whole image)"
    assert isinstance(model, ResNet)
    sides = [image_size // 2**s for s in range(len(c.widths))]
    layout = "feature maps " + " → ".join(f"{s}×{s}" for s in sides)
    mixes = "3×3 neighbours (conv)"
    if any(c.msa_blocks):
        mixes += f"; {c.window}×{c.window} windows in the last block of stages " + ", ".join(
            str(s + 1) for s, n in enumerate(c.msa_blocks) if n
        )
    return layout, mixes


def architecture_summary(
    profile: Profile | str | None = None,
    families: Sequence[str] = C1_FAMILIES + PREVIEW_FAMILIES,
) -> list[dict[str, Any]]:
    """One row per family: model name, parameters, token/feature layout, what one layer mixes.

    Builds the untrained models (no training, milliseconds).
    """
    prof = _profile(profile)
    rows = []
    for family in families:
        name = resolve_model_name(family, prof)
        model = create_model(name, image_size=prof.image_size)
        layout, mixes = _describe(model, prof.image_size)
        rows.append(
            {
                "family": model_family(name),
                "model": name,
                "parameters": parameter_count(model),
                "layout": layout,
                "one_layer_mixes": mixes,
            }
        )
    return rows


def format_summary(rows: Sequence[Mapping[str, Any]]) -> str:
    """:func:`architecture_summary` as a fixed-width text table."""
    header = ("model", "parameters", "blocks work on", "one mixing layer combines")
    lines = [(r["model"], f"{r['parameters']:,}", r["layout"], r["one_layer_mixes"]) for r in rows]
    widths = [max(len(str(x)) for x in col) for col in zip(header, *lines, strict=True)]

    def fmt(cells: Sequence[str]) -> str:
        return "  ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    return "\n".join([fmt(header), fmt(["-" * w for w in widths]), *map(fmt, lines)])


def _run_record(run) -> dict[str, Any]:
    history = run.history.to_dict()
    return {
        "model": run.name,
        "parameters": parameter_count(run.model),
        "history": history,
        "final": final_metrics(history),
        "train_seconds": float(sum(history["seconds"])),
    }


@precompute_step
def family_runs(
    profile: Profile | str | None = None,
    families: Sequence[str] = C1_FAMILIES + PREVIEW_FAMILIES,
) -> dict[str, dict[str, Any]]:
    """Train or load each family with the profile's shared recipe (claim C1).

    Returns ``{family: {"model", "parameters", "history", "final", "train_seconds"}}`` with the
    history as a dict of per-epoch lists and ``final`` from :func:`final_metrics`. The runs are
    the profile's shared models (``trained_model(family, profile=profile)``), cached on disk.
    """
    prof = _profile(profile)
    return {family: _run_record(trained_model(family, profile=prof)) for family in families}


@precompute_step
def fraction_sweep(profile: Profile | str | None = None) -> dict[float, dict[str, Any]]:
    """The ViT trained on each of ``profile.data_fractions`` (claim C2), smallest first.

    Every fraction gets the same number of optimisation steps (``trained_model`` scales the
    epochs by ``1 / fraction``). Returns ``{fraction: record}`` with the same record as
    :func:`family_runs`; fraction 1.0 is the shared ViT.
    """
    prof = _profile(profile)
    return {
        f: _run_record(trained_model("vit", profile=prof, fraction=f))
        for f in sorted(prof.data_fractions)
    }


def train_nll_at(
    runs: Mapping[str, Mapping[str, Any]], progress: float = 0.4
) -> tuple[int, dict[str, float]]:
    """Each run's train NLL at the epoch ``round(progress · epochs)`` (at least 1).

    Returns ``(epoch, {key: train NLL})``: how far each model got with the same share of the
    budget, which still separates models whose final losses are all near zero.
    """
    epochs = min(len(r["history"]["epoch"]) for r in runs.values())
    epoch = max(1, round(progress * epochs))
    return epoch, {k: float(r["history"]["train_nll"][epoch - 1]) for k, r in runs.items()}


def order_text(values: Mapping[str, float], families: Sequence[str] = C1_FAMILIES) -> str:
    """The families sorted by value, e.g. ``"ResNet (0.41) < local ViT (0.62) < ViT (0.90)"``."""
    ranked = sorted(families, key=lambda f: values[f])
    return " < ".join(f"{family_label(f)} ({values[f]:.3g})" for f in ranked)


def c1_reading(final: Mapping[str, Mapping[str, float]]) -> str:
    """A sentence saying what the final metrics of :func:`family_runs` show about C1.

    ``final`` maps each of :data:`C1_FAMILIES` to its :func:`final_metrics`. The wording is
    chosen from the numbers (is the ViT's train NLL the highest? is its test − train gap larger
    than the ResNet's?), so the chapter's prose stays true whatever a run measures.
    """
    train = {f: final[f]["train_nll"] for f in C1_FAMILIES}
    highest = max(train, key=train.get) == "vit"
    small_gap = final["vit"]["nll_gap"] <= final["resnet"]["nll_gap"]
    if highest and small_gap:
        return (
            "the ViT has the highest training NLL of the three and a test − train gap no larger "
            "than the ResNet's: when its test loss is high, it is because its training loss is "
            "high too. It underfits, as the paper says"
        )
    if highest:
        return (
            "the ViT has the highest training NLL of the three, as in the paper, but also a "
            "larger test − train gap than the ResNet: here it fits worse and generalizes worse"
        )
    worst = family_label(max(train, key=train.get))
    if small_gap:
        return (
            f"the ViT does not have the highest training NLL in this run ({worst} does), so the "
            "run does not show the paper's ordering, although the ViT's test − train gap is no "
            "larger than the ResNet's"
        )
    return (
        f"the ViT fits its training batches better than {worst} but has a larger test − train "
        "gap than the ResNet: in this run it leans towards overfitting, against the paper"
    )


def c1_scale_remark(final: Mapping[str, Mapping[str, float]], solved_below: float = 5.0) -> str:
    """Whether the C1 runs saturated: a sentence on the worst test error of the three families."""
    worst = max(final[f]["test_error"] for f in C1_FAMILIES)
    if worst < solved_below:
        return (
            f"the worst of the three ends at a test error of {worst:.1f} %: the synthetic task, "
            "whose classes carry two clean cues, is easy for all of them at this budget, so the "
            "differences live in small remaining losses (hence the logarithmic NLL axis); the "
            "paper's CIFAR-100 models end far from zero"
        )
    return (
        f"the worst of the three ends at a test error of {worst:.1f} %, far from solved, like "
        "the paper's CIFAR-100 models"
    )


def local_vit_remark(final: Mapping[str, Mapping[str, float]]) -> str:
    """A sentence placing the local ViT's train NLL between (or outside) the ResNet's and ViT's."""
    train = {f: final[f]["train_nll"] for f in C1_FAMILIES}
    if train["local_vit"] > train["vit"]:
        return (
            "it ends above the ViT: its windows never exchange information (no shift, "
            "no patch merging), so each window must recognise the class from its own part of the "
            "image, and the colour-layout cue of our images spans the whole image; Swin's shifted "
            "windows and patch merging, which the paper's local model has, remove that handicap"
        )
    if train["local_vit"] < train["resnet"]:
        return "it ends below the ResNet, unlike in the paper"
    return "it ends between the ResNet and the ViT, as in the paper"


def c2_reading(sweep: Mapping[float, Mapping[str, Any]]) -> str:
    """A sentence comparing the smallest and the full fraction of :func:`fraction_sweep`.

    "Fits better" compares the final train NLLs; "generalizes worse" the test NLLs.
    """
    small, full = sweep[min(sweep)]["final"], sweep[max(sweep)]["final"]
    fits_better = small["train_nll"] < full["train_nll"]
    tests_worse = small["test_nll"] > full["test_nll"]
    if fits_better and tests_worse:
        text = (
            "the small-data ViT fits its training batches better than the full-data one and "
            "does worse on the test set: it memorises its few images (overfits), the opposite "
            "of the paper's training-NLL curve"
        )
    elif fits_better:
        text = (
            "the small-data ViT fits its training batches better than the full-data one and "
            "does no worse on the test set: at this budget the smallest fraction already "
            "suffices for the task, so the sweep shows neither the paper's underfitting nor "
            "overfitting"
        )
    elif tests_worse:
        text = (
            "the small-data ViT fits its training batches worse than the full-data one and "
            "does worse on the test set, as in the paper: more data helps it fit, not only "
            "generalize"
        )
    else:
        text = (
            "the small-data ViT fits its training batches worse than the full-data one, as in "
            "the paper, yet does no worse on the test set"
        )
    errs_more = small["test_error"] > full["test_error"]
    return text + (
        "; more data lowers the test error"
        if errs_more
        else "; more data does not lower the test error in this run"
    )


def _pairwise_decreasing(values: Sequence[float]) -> list[bool]:
    return [b < a for a, b in pairwise(values)]


def c1_comparisons(runs: Mapping[str, Mapping[str, Any]]) -> list[Comparison]:
    """Rows of the paper-vs-run box for C1, verdicts computed from :func:`family_runs`'s result."""
    final = {f: runs[f]["final"] for f in C1_FAMILIES}
    rows = []
    for metric, label, unit in (("train_nll", "train NLL", ""), ("test_error", "test error", " %")):
        values = {f: final[f][metric] for f in C1_FAMILIES}
        paper = " < ".join(
            f"{PAPER_C1[f]['model']} {PAPER_C1[f][metric]}{unit}" for f in C1_FAMILIES
        )
        fmt = ".3g" if metric == "train_nll" else ".1f"
        ours = " | ".join(f"{values[f]:{fmt}}{unit}" for f in C1_FAMILIES)
        rows.append(
            Comparison(
                claim=f"C1: {label} ResNet < local ViT < ViT",
                paper=f"{paper} (CIFAR-100, ≈ read from Fig. 5a)",
                ours=f"ResNet | local ViT | ViT: {ours}",
                verdict=verdict_from([ordered(values, pair) for pair in pairwise(C1_FAMILIES)]),
            )
        )
    gaps = {f: final[f]["nll_gap"] for f in C1_FAMILIES}
    rows.append(
        Comparison(
            claim="C1: ViT underfits, it does not overfit (its test − train NLL gap is not "
            "larger than the convolutional ResNet's or the local ViT's)",
            paper="higher train NLL goes with higher test error across all models "
            "(≈ read from Fig. 5a)",
            ours="test − train NLL: "
            + ", ".join(f"{family_label(f)} {gaps[f]:+.3f}" for f in C1_FAMILIES),
            verdict=verdict_from([gaps["vit"] <= gaps["resnet"], gaps["vit"] <= gaps["local_vit"]]),
        )
    )
    return rows


def c2_comparisons(sweep: Mapping[float, Mapping[str, Any]]) -> list[Comparison]:
    """Rows of the paper-vs-run box for C2 from :func:`fraction_sweep`'s result."""
    fractions = sorted(sweep)
    rows = []
    for metric, label, unit in (("train_nll", "train NLL", ""), ("test_error", "test error", " %")):
        values = [sweep[f]["final"][metric] for f in fractions]
        paper = PAPER_C2[metric]
        fmt = ".3g" if metric == "train_nll" else ".1f"
        rows.append(
            Comparison(
                claim=f"C2: ViT's {label} falls as the training set grows",
                paper=f"{paper[0]}{unit} at 1/64 → {paper[-1]}{unit} with all of CIFAR-100 "
                f"(≈ read from Fig. 5b)",
                ours=", ".join(
                    f"{f:.0%}: {v:{fmt}}{unit}" for f, v in zip(fractions, values, strict=True)
                ),
                verdict=verdict_from(_pairwise_decreasing(values)),
            )
        )
    return rows


def comparisons(profile: Profile | str | None = None) -> list[Comparison]:
    """The chapter's whole "paper vs. this run" box (C1 and C2 rows) for a profile.

    For the course summary (chapter 04): runs :func:`family_runs` and :func:`fraction_sweep`
    (cached) and builds the rows as the notebook does.
    """
    prof = _profile(profile)
    return c1_comparisons(family_runs(prof)) + c2_comparisons(fraction_sweep(prof))


def interaction_range_explorer(
    profile: Profile | str | None = None, *, interactive: bool | None = None
) -> Figure | ipywidgets.Widget:
    """Try it: move an output position and add layers; see which pixels each family can mix.

    Static (no live front-end, see :func:`course_lib.widgets.use_widgets`): the figure of
    :func:`~course_lib.plots.inductive_bias.plot_interaction_range` for one layer. Interactive:
    sliders for the number of layers and the output's row and column.
    """
    from course_lib.data import synthetic_examples
    from course_lib.widgets import figure_png, use_widgets

    geometry = model_geometry(profile)
    size = geometry["image_size"]
    config = dataclasses.replace(_profile(profile).synthetic, image_size=size)
    image = synthetic_examples(config, per_class=1)[0, 0]
    options = {k: geometry[k] for k in ("kernel", "patch_size", "window")}
    if geometry["local_patch_size"] != geometry["patch_size"]:
        options["patch_size"] = geometry["local_patch_size"]
    if not use_widgets(interactive):
        return plot_interaction_range(image, layers=1, **options)

    import ipywidgets as widgets

    slider = {"continuous_update": False}
    layers = widgets.IntSlider(value=1, min=1, max=size // 2, description="layers", **slider)
    row = widgets.IntSlider(value=size // 2 - 3, min=0, max=size - 1, description="row", **slider)
    col = widgets.IntSlider(value=size // 2 + 2, min=0, max=size - 1, description="column",
                            **slider)  # fmt: skip
    picture = widgets.Image(format="png")

    def redraw(_: Any = None) -> None:
        fig = plot_interaction_range(
            image, position=(row.value, col.value), layers=layers.value, **options
        )
        picture.value = figure_png(fig)

    for control in (layers, row, col):
        control.observe(redraw, names="value")
    redraw()
    return widgets.VBox([widgets.HBox([layers, row, col]), picture])


def training_budget(runs: Mapping[str, Mapping[str, Any]]) -> str:
    """One line per run: epochs and training time from the histories (cached runs: as trained)."""
    lines = []
    for key, record in runs.items():
        h = record["history"]
        label = family_label(key) if isinstance(key, str) else f"ViT on {key:.0%}"
        lines.append(
            f"{label:>12}: {record['model']}, {record['parameters']:,} parameters, "
            f"{len(h['epoch'])} epoch(s), {record['train_seconds']:.0f} s of training"
        )
    return "\n".join(lines)


__all__ = [
    "C1_FAMILIES",
    "PAPER_C1",
    "PAPER_C2",
    "PREVIEW_FAMILIES",
    "architecture_summary",
    "c1_comparisons",
    "c1_reading",
    "c1_scale_remark",
    "c2_comparisons",
    "c2_reading",
    "comparisons",
    "family_runs",
    "final_metrics",
    "format_summary",
    "fraction_sweep",
    "interaction_range_explorer",
    "local_vit_remark",
    "model_geometry",
    "order_text",
    "parameter_count",
    "train_nll_at",
    "training_budget",
]
