"""Chapter 01's records and sentences (claims C1, C2), computed from the measured runs.

- :class:`RunRecord` is what the chapter keeps of a trained run (model, parameters, history);
  its :attr:`~RunRecord.final` metrics (:class:`FinalMetrics`) are measured at the final weights;
  :func:`mean_final` averages them over the seeds of a family.
- The table of the families' models is in :mod:`course_lib.report.architectures`.
- The readings (:func:`c1_reading`, :func:`c2_reading`, …) choose their wording from the
  numbers, so the chapter's prose stays true whatever a run measures; :func:`c1_glue` and
  :func:`c2_glue` return every value the notebook glues into its text.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise

from torch import nn

from course_lib.config import Profile
from course_lib.experiments import TrainedModel
from course_lib.plots.style import family_label
from course_lib.report.objective import seed_relation
from course_lib.report.prose import ascending, num, ratio
from course_lib.report.verdicts import PARTLY, REPRODUCED, same_order_verdict
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
    """Train and test NLL (nats) and error (%) at the final weights.

    The train values are the training objective (mixup/CutMix, label smoothing where the profile
    uses them) on one fixed augmented pass, as the paper's train NLL.
    """

    train_nll: float
    train_error: float
    test_nll: float
    test_error: float


def final_metrics(history: History) -> FinalMetrics:
    """The metrics at the final weights of a training :class:`~course_lib.train.History`."""
    if not history.epoch:
        raise ValueError("the history has no epochs")
    return FinalMetrics(
        train_nll=float(history.final_train_nll),
        train_error=float(history.final_train_error),
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


def training_recipe(profile: Profile) -> str:
    """The profile's shared training recipe in one line."""
    t = profile.train
    return (
        f"{t.epochs} epochs on {profile.n_train} images, batch {t.batch_size}, AdamW lr {t.lr}, "
        f"weight decay {t.weight_decay}, augmentation: {t.augment}, mixup/CutMix: {t.mix}, "
        f"label smoothing {t.label_smoothing}; seeds {', '.join(map(str, profile.seeds))}"
    )


def training_plan(profile: Profile) -> str:
    """The runs chapter 01 trains for a profile, in one line (each cached for later chapters)."""
    seeds = ", ".join(map(str, profile.seeds))
    fractions = [f for f in sorted(profile.data_fractions) if f < 1.0]
    runs = (len(C1_FAMILIES) + len(fractions)) * len(profile.seeds) + len(PREVIEW_FAMILIES)
    families = ", ".join(family_label(f) for f in C1_FAMILIES)
    smaller = ", ".join(f"{f:.0%}" for f in fractions)
    return f"{runs} runs: {families} at seed(s) {seeds}; AlterNet at seed 0" + (
        f"; the ViT on {smaller} of the data at seed(s) {seeds}" if fractions else ""
    )


def training_budget(
    runs: Mapping[str | float, RunRecord | Sequence[RunRecord]], seeds: Sequence[int] = ()
) -> str:
    """One line per run: epochs and training time from the histories (cached runs: as trained).

    ``runs`` maps a family (:func:`family_runs`) or a data fraction (:func:`fraction_sweep`) to
    a run, or to its runs at ``seeds`` (the profile's; without them, numbered from 0).
    """
    lines = []
    for key, value in runs.items():
        label = family_label(key) if isinstance(key, str) else f"ViT on {key:.0%}"
        records = [value] if isinstance(value, RunRecord) else value
        for seed, record in zip(seeds or range(len(records)), records, strict=True):
            name = f"{label}, seed {seed}" if len(records) > 1 else label
            lines.append(
                f"{name:>20}: {record.model}, {record.parameters:,} parameters, "
                f"{len(record.history.epoch)} epoch(s), {record.train_seconds:.0f} s of training"
            )
    return "\n".join(lines)


# --- readings of the numbers -------------------------------------------------------------------


def mean_final(records: Sequence[RunRecord]) -> FinalMetrics:
    """The :class:`FinalMetrics` of several seeds of one family, averaged field by field."""
    finals = [r.final for r in records]
    return FinalMetrics(
        **{
            f.name: sum(getattr(m, f.name) for m in finals) / len(finals)
            for f in dataclasses.fields(FinalMetrics)
        }
    )


def spread_text(values: Sequence[float], fmt: str = ".3g") -> str:
    """``"1.2"`` for one seed, ``"1.2 (1.1–1.3)"`` (mean, min–max) for several."""
    mean = sum(values) / len(values)
    if len(values) == 1:
        return num(mean, fmt)
    return f"{num(mean, fmt)} ({num(min(values), fmt)}–{num(max(values), fmt)})"


def train_nll_at(runs: Mapping[str, RunRecord], progress: float = 0.4) -> tuple[int, dict]:
    """Each run's running train NLL at the epoch ``round(progress · epochs)`` (at least 1).

    Returns ``(epoch, {key: train NLL})``: how far each model got with the same share of the
    budget.
    """
    epochs = min(len(r.history.epoch) for r in runs.values())
    epoch = max(1, round(progress * epochs))
    return epoch, {k: float(r.history.train_nll[epoch - 1]) for k, r in runs.items()}


def order_text(values: Mapping[str, float], families: Sequence[str] = C1_FAMILIES) -> str:
    """The families in their measured order, e.g. ``"ResNet 0.41 < local ViT 0.62 < ViT 0.9"``."""
    return ascending({family_label(f): values[f] for f in families})


def c1_reading(final: Mapping[str, FinalMetrics]) -> str:
    """What the C1 runs' (seed-mean) final metrics say about under- vs overfitting.

    The paper's reading: the family with the highest train NLL also has the highest test error,
    and the two measures rank the families alike. The wording follows the numbers.
    """
    train = {f: final[f].train_nll for f in C1_FAMILIES}
    test = {f: final[f].test_error for f in C1_FAMILIES}
    worst_fit, worst_test = max(train, key=train.get), max(test, key=test.get)
    verdict = same_order_verdict(train, test)  # the box's test, so the words cannot disagree
    if verdict == REPRODUCED:
        return (
            "train NLL and test error rank the three families alike: the model that generalizes "
            f"worst, the {family_label(worst_test)}, is also the one that fits its augmented "
            "training data worst. That is the underfitting signature the paper describes"
        )
    if verdict == PARTLY:
        return (
            f"the {family_label(worst_fit)} has both the highest train NLL and the highest test "
            "error, as in the paper's underfitting reading, though the other two swap places"
        )
    return (
        f"the highest train NLL ({family_label(worst_fit)}) and the highest test error "
        f"({family_label(worst_test)}) belong to different models: this run does not show the "
        "paper's link between fitting and generalizing"
    )


def c1_scale_remark(final: Mapping[str, FinalMetrics], solved_below: float = 5.0) -> str:
    """Whether the C1 runs saturated: a sentence on the worst test error of the three families."""
    worst = max(final[f].test_error for f in C1_FAMILIES)
    if worst < solved_below:
        return (
            f"the worst of the three ends at a test error of {worst:.1f} %: the synthetic task is "
            "easy for all of them at this budget, so the differences live in small remaining "
            "losses; the paper's CIFAR-100 models end far from zero"
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


def c2_noise_remark(sweep: Mapping[float, Sequence[RunRecord]]) -> str:
    """The C2 steps in train NLL (seed means) against the seeds' noise: a step counts when the
    gap between the two means exceeds the range over seeds of either fraction (C1's rule)."""
    fractions = sorted(sweep)
    seeds = min(len(sweep[f]) for f in fractions)
    if seeds < 2:
        return "With one seed per run, these steps cannot be weighed against the seeds' noise."
    train = {f: [r.final.train_nll for r in sweep[f]] for f in fractions}
    steps = list(pairwise(fractions))
    beyond = sum(seed_relation(train[b], train[a]) == "below" for a, b in steps)
    ranges = ", ".join(f"{num(max(v) - min(v), '.2g')} ({f:.0%})" for f, v in train.items())
    return (
        f"Over {seeds} seeds the train NLL of one fraction spans {ranges}; {beyond} of the "
        f"{len(steps)} steps between fractions fall{'s' if beyond == 1 else ''} by more than the "
        "ranges of both their fractions."
    )


def c2_reading(sweep: Mapping[float, Sequence[RunRecord]]) -> str:
    """What the C2 sweep's seed means show, step by step from the smallest fraction to the
    full data.

    The paper: train NLL and test error both fall as the data grow (underfitting on small data).
    """
    final = {f: mean_final(sweep[f]) for f in sorted(sweep)}
    train = [m.train_nll for m in final.values()]
    test = [m.test_error for m in final.values()]

    def trend(values: Sequence[float]) -> str:
        steps = [b < a for a, b in pairwise(values)]
        if all(steps):
            return "falls at every step"
        if not any(steps):
            return "rises at every step"
        return "falls overall" if values[-1] < values[0] else "does not fall overall"

    text = f"as the data grow, the ViT's train NLL {trend(train)} and its test error {trend(test)}"
    if train[-1] < train[0]:
        return text + ": with more data it fits its augmented training data better, as in the paper"
    return text + ": more data does not help it fit, unlike in the paper"


# --- every value the notebook glues into its text ----------------------------------------------


def c1_glue(by_seed: Mapping[str, Sequence[RunRecord]]) -> dict[str, str | int]:
    """The values sections 2–3 glue into their text, by glue name, from the C1 runs.

    ``by_seed`` maps a family to its runs, one per seed (the first: seed 0, the shared model).
    """
    final = {family: mean_final(records) for family, records in by_seed.items()}
    vit, resnet = final["vit"], final["resnet"]
    early_epoch, early = train_nll_at({f: by_seed[f][0] for f in C1_FAMILIES}, progress=0.4)
    seeds = min(len(by_seed[f]) for f in C1_FAMILIES)
    return {
        "c1_seeds": f"{seeds} seed{'s' if seeds > 1 else ''}",
        "c1_train_order": order_text({f: final[f].train_nll for f in C1_FAMILIES}),
        "c1_test_order": order_text({f: final[f].test_error for f in C1_FAMILIES}),
        "c1_reading": c1_reading(final),
        "c1_scale_remark": c1_scale_remark(final),
        "c1_local_remark": local_vit_remark(final),
        "c1_early_epoch": early_epoch,
        "c1_early_order": order_text(early),
        "c1_vit_resnet_ratio": ratio(vit.train_nll, resnet.train_nll),
        "c1_vit_train": num(vit.train_nll),
        "c1_resnet_train": num(resnet.train_nll),
    }


def c2_glue(sweep: Mapping[float, Sequence[RunRecord]]) -> dict[str, str | int]:
    """The values section 4 glues into its text, by glue name, from the C2 sweep (each fraction
    at every seed)."""
    fractions = sorted(sweep)
    seeds = min(len(sweep[f]) for f in fractions)

    def listing(metric: str, fmt: str, unit: str = "") -> str:
        return ", ".join(
            f"{spread_text([getattr(r.final, metric) for r in sweep[f]], fmt)}{unit} ({f:.0%})"
            for f in fractions
        )

    return {
        "c2_small": f"{fractions[0]:.0%}",
        "c2_small_epochs": len(sweep[fractions[0]][0].history.epoch),
        "c2_seeds": f"{seeds} seed{'s' if seeds > 1 else ''}",
        "c2_train_values": listing("train_nll", "#.3g"),
        "c2_test_values": listing("test_error", ".1f", " %"),
        "c2_reading": c2_reading(sweep),
        "c2_noise": c2_noise_remark(sweep),
    }


__all__ = [
    "C1_FAMILIES",
    "PREVIEW_FAMILIES",
    "FinalMetrics",
    "RunRecord",
    "c1_glue",
    "c1_reading",
    "c1_scale_remark",
    "c2_glue",
    "c2_noise_remark",
    "c2_reading",
    "final_metrics",
    "local_vit_remark",
    "mean_final",
    "order_text",
    "parameter_count",
    "run_record",
    "spread_text",
    "train_nll_at",
    "training_budget",
    "training_plan",
]
