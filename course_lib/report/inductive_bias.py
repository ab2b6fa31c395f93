"""Chapter 01's records, tables and sentences (claims C1, C2), computed from the measured runs.

- :class:`RunRecord` is what the chapter keeps of a trained run (model, parameters, history);
  its :attr:`~RunRecord.final` metrics (:class:`FinalMetrics`) are the last epoch's values.
- :func:`architecture_summary` / :func:`format_summary`: the table of the families' models.
- The readings (:func:`c1_reading`, :func:`c2_reading`, …) choose their wording from the
  numbers, so the chapter's prose stays true whatever a run measures; :func:`c1_glue` and
  :func:`c2_glue` return every value the notebook glues into its text.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from torch import nn

from course_lib.config import Profile
from course_lib.experiments import TrainedModel, resolve_model_name
from course_lib.models import ResNet, ViT, create_model, model_family
from course_lib.plots.style import family_label
from course_lib.train import History

#: The families that claim C1 compares, from strongest to weakest inductive bias.
C1_FAMILIES: tuple[str, ...] = ("resnet", "local_vit", "vit")
#: Trained alongside as a preview of chapter 04 (not part of C1's ordering).
PREVIEW_FAMILIES: tuple[str, ...] = ("alternet",)


def parameter_count(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


@dataclass(frozen=True)
class FinalMetrics:
    """The last epoch's train/test NLL (nats) and error (%)."""

    train_nll: float
    train_error: float
    test_nll: float
    test_error: float

    @property
    def nll_gap(self) -> float:
        """Test − train NLL: positive when the model does better on its training batches."""
        return self.test_nll - self.train_nll

    @property
    def error_gap(self) -> float:
        """Test − train error (%)."""
        return self.test_error - self.train_error


def final_metrics(history: History) -> FinalMetrics:
    """The last epoch's metrics of a training :class:`~course_lib.train.History`.

    A positive :attr:`~FinalMetrics.nll_gap` means the model does better on its training batches
    than on unseen images (the overfitting side); a gap near zero with a high train NLL is
    underfitting.
    """
    if not history.epoch:
        raise ValueError("the history has no epochs")
    return FinalMetrics(
        train_nll=float(history.train_nll[-1]),
        train_error=float(history.train_error[-1]),
        test_nll=float(history.test_nll[-1]),
        test_error=float(history.test_error[-1]),
    )


@dataclass(frozen=True)
class RunRecord:
    """What chapter 01 keeps of one trained run."""

    model: str  # registered model name, e.g. "vit_tiny"
    parameters: int  # trainable parameters
    history: History  # per-epoch train/test NLL and error, as trained

    @property
    def final(self) -> FinalMetrics:
        return final_metrics(self.history)

    @property
    def train_seconds(self) -> float:
        """Training time summed over the epochs (a cached run: as it was trained)."""
        return float(sum(self.history.seconds))


def run_record(run: TrainedModel) -> RunRecord:
    """The :class:`RunRecord` of a run from :func:`course_lib.experiments.trained_model`."""
    return RunRecord(model=run.name, parameters=parameter_count(run.model), history=run.history)


# --- the architecture table --------------------------------------------------------------------


@dataclass(frozen=True)
class ArchitectureRow:
    """One row of :func:`architecture_summary`."""

    family: str
    model: str
    parameters: int
    layout: str  # what the blocks work on, e.g. "8×8 = 64 tokens (4×4-px patches)"
    one_layer_mixes: str  # what one mixing layer combines


def _describe(model: nn.Module, image_size: int) -> tuple[str, str]:
    """(what the blocks work on, what one mixing layer combines) for a course model."""
    c = model.config
    if isinstance(model, ViT):
        grid = image_size // c.patch_size
        layout = f"{grid}×{grid} = {grid * grid} tokens ({c.patch_size}×{c.patch_size}-px patches)"
        if c.neighbourhood:
            k, side = c.neighbourhood, c.neighbourhood * c.patch_size
            return layout, (
                f"the {k}×{k} tokens around each token ({side}×{side} px), a field that grows "
                f"by {k - 1} tokens a block"
            )
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
    profile: Profile, families: Sequence[str] = C1_FAMILIES + PREVIEW_FAMILIES
) -> list[ArchitectureRow]:
    """One row per family: model name, parameters, token/feature layout, what one layer mixes.

    Builds the untrained models (no training, milliseconds).
    """
    rows = []
    for family in families:
        name = resolve_model_name(family, profile)
        model = create_model(name, image_size=profile.image_size)
        layout, mixes = _describe(model, profile.image_size)
        rows.append(
            ArchitectureRow(model_family(name), name, parameter_count(model), layout, mixes)
        )
    return rows


def format_summary(rows: Sequence[ArchitectureRow]) -> str:
    """:func:`architecture_summary` as a fixed-width text table."""
    header = ("model", "parameters", "blocks work on", "one mixing layer combines")
    lines = [(r.model, f"{r.parameters:,}", r.layout, r.one_layer_mixes) for r in rows]
    widths = [max(len(str(x)) for x in col) for col in zip(header, *lines, strict=True)]

    def fmt(cells: Sequence[str]) -> str:
        return "  ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    return "\n".join([fmt(header), fmt(["-" * w for w in widths]), *map(fmt, lines)])


def parameter_glue(rows: Sequence[ArchitectureRow]) -> dict[str, str]:
    """The values section 1 glues: the ViT/ResNet parameter ratio and what it implies."""
    params = {row.family: row.parameters for row in rows}
    ratio = params["vit"] / params["resnet"]
    remark = (
        "so if the ViT fits its training data worse, it is not for lack of parameters"
        if ratio >= 1
        else "so part of any gap could come from the ViT's smaller size"
    )
    return {"vit_resnet_param_ratio": f"{ratio:.1f}", "param_remark": remark}


def training_recipe(profile: Profile) -> str:
    """The profile's shared training recipe in one line."""
    t = profile.train
    return (
        f"{t.epochs} epochs on {profile.n_train} images, batch {t.batch_size}, AdamW lr {t.lr}, "
        f"weight decay {t.weight_decay}, augmentation: {t.augment}, mixup/CutMix: {t.mix}"
    )


def training_budget(runs: Mapping[str | float, RunRecord]) -> str:
    """One line per run: epochs and training time from the histories (cached runs: as trained).

    ``runs`` maps a family (:func:`family_runs`) or a data fraction (:func:`fraction_sweep`).
    """
    lines = []
    for key, record in runs.items():
        label = family_label(key) if isinstance(key, str) else f"ViT on {key:.0%}"
        lines.append(
            f"{label:>12}: {record.model}, {record.parameters:,} parameters, "
            f"{len(record.history.epoch)} epoch(s), {record.train_seconds:.0f} s of training"
        )
    return "\n".join(lines)


# --- readings of the numbers -------------------------------------------------------------------


def train_nll_at(runs: Mapping[str, RunRecord], progress: float = 0.4) -> tuple[int, dict]:
    """Each run's train NLL at the epoch ``round(progress · epochs)`` (at least 1).

    Returns ``(epoch, {key: train NLL})``: how far each model got with the same share of the
    budget, which still separates models whose final losses are all near zero.
    """
    epochs = min(len(r.history.epoch) for r in runs.values())
    epoch = max(1, round(progress * epochs))
    return epoch, {k: float(r.history.train_nll[epoch - 1]) for k, r in runs.items()}


def order_text(values: Mapping[str, float], families: Sequence[str] = C1_FAMILIES) -> str:
    """The families sorted by value, e.g. ``"ResNet (0.41) < local ViT (0.62) < ViT (0.90)"``."""
    ranked = sorted(families, key=lambda f: values[f])
    return " < ".join(f"{family_label(f)} ({values[f]:.3g})" for f in ranked)


def c1_reading(final: Mapping[str, FinalMetrics]) -> str:
    """A sentence saying what the final metrics of the C1 runs show.

    ``final`` maps each of :data:`C1_FAMILIES` to its :class:`FinalMetrics`. The wording is
    chosen from the numbers (is the ViT's train NLL the highest? is its test − train gap larger
    than the ResNet's?).
    """
    train = {f: final[f].train_nll for f in C1_FAMILIES}
    highest = max(train, key=train.get) == "vit"
    small_gap = final["vit"].nll_gap <= final["resnet"].nll_gap
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


def c1_scale_remark(final: Mapping[str, FinalMetrics], solved_below: float = 5.0) -> str:
    """Whether the C1 runs saturated: a sentence on the worst test error of the three families."""
    worst = max(final[f].test_error for f in C1_FAMILIES)
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


def local_vit_remark(final: Mapping[str, FinalMetrics]) -> str:
    """A sentence placing the local ViT's train NLL between (or outside) the ResNet's and ViT's."""
    train = {f: final[f].train_nll for f in C1_FAMILIES}
    if train["local_vit"] > train["vit"]:
        return "it ends above the ViT, unlike in the paper"
    if train["local_vit"] < train["resnet"]:
        return "it ends below the ResNet, unlike in the paper"
    return "it ends between the ResNet and the ViT, as in the paper"


def c2_reading(sweep: Mapping[float, RunRecord]) -> str:
    """A sentence comparing the smallest and the full fraction of the C2 sweep.

    "Fits better" compares the final train NLLs; "generalizes worse" the test NLLs.
    """
    small, full = sweep[min(sweep)].final, sweep[max(sweep)].final
    fits_better = small.train_nll < full.train_nll
    tests_worse = small.test_nll > full.test_nll
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
    errs_more = small.test_error > full.test_error
    return text + (
        "; more data lowers the test error"
        if errs_more
        else "; more data does not lower the test error in this run"
    )


# --- every value the notebook glues into its text ----------------------------------------------


def c1_glue(runs: Mapping[str, RunRecord]) -> dict[str, str | int]:
    """The values sections 2–3 glue into their text, by glue name, from the C1 runs."""
    final = {family: record.final for family, record in runs.items()}
    vit, resnet = final["vit"], final["resnet"]
    early_epoch, early = train_nll_at({f: runs[f] for f in C1_FAMILIES}, progress=0.4)
    return {
        "c1_train_order": order_text({f: final[f].train_nll for f in C1_FAMILIES}),
        "c1_test_order": order_text({f: final[f].test_error for f in C1_FAMILIES}),
        "c1_gaps": ", ".join(f"{family_label(f)} {final[f].nll_gap:+.3f}" for f in C1_FAMILIES),
        "c1_vit_gap": f"{vit.nll_gap:+.3f}",
        "c1_reading": c1_reading(final),
        "c1_scale_remark": c1_scale_remark(final),
        "c1_local_remark": local_vit_remark(final),
        "c1_early_epoch": early_epoch,
        "c1_early_order": order_text(early),
        "c1_vit_resnet_ratio": f"{vit.train_nll / resnet.train_nll:.1f}",
        "c1_vit_train": f"{vit.train_nll:.3g}",
        "c1_resnet_train": f"{resnet.train_nll:.3g}",
        "alternet_test_error": f"{final['alternet'].test_error:.1f}",
        "alternet_train_nll": f"{final['alternet'].train_nll:.3g}",
    }


def c2_glue(sweep: Mapping[float, RunRecord]) -> dict[str, str | int]:
    """The values section 4 glues into its text, by glue name, from the C2 sweep."""
    small, full = min(sweep), max(sweep)
    fs, ff = sweep[small].final, sweep[full].final
    return {
        "c2_small": f"{small:.0%}",
        "c2_small_epochs": len(sweep[small].history.epoch),
        "c2_small_train": f"{fs.train_nll:.3g}",
        "c2_full_train": f"{ff.train_nll:.3g}",
        "c2_small_test_error": f"{fs.test_error:.1f}",
        "c2_full_test_error": f"{ff.test_error:.1f}",
        "c2_small_gap": f"{fs.nll_gap:+.3f}",
        "c2_full_gap": f"{ff.nll_gap:+.3f}",
        "c2_train_direction": "lower" if fs.train_nll < ff.train_nll else "higher",
        "c2_reading": c2_reading(sweep),
    }


__all__ = [
    "C1_FAMILIES",
    "PREVIEW_FAMILIES",
    "ArchitectureRow",
    "FinalMetrics",
    "RunRecord",
    "architecture_summary",
    "c1_glue",
    "c1_reading",
    "c1_scale_remark",
    "c2_glue",
    "c2_reading",
    "final_metrics",
    "format_summary",
    "local_vit_remark",
    "order_text",
    "parameter_count",
    "parameter_glue",
    "run_record",
    "train_nll_at",
    "training_budget",
]
