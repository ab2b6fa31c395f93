"""Chapter 04's results as numbers, tables and sentences: the build-up, the families, lesions.

The result types of chapter 04's cached steps (:class:`RunSummary`, :class:`FamilyRun`,
:class:`BuildUp`) and everything derived from them for the page: which build-up step helped and
whether beyond the seed noise (:func:`buildup_rows`), the HTML tables, and the values the
notebook glues into its prose (:func:`buildup_glue`, :func:`family_glue`, :func:`lesion_glue`).
"""

from __future__ import annotations

import html
import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from course_lib.analysis.lesion import LesionResult
from course_lib.analysis.robustness import NoiseSweep
from course_lib.experiments import TrainedModel
from course_lib.models import create_model
from course_lib.plots.style import family_label


@dataclass(frozen=True)
class RunSummary:
    """Final metrics of a trained run and its cost."""

    name: str  # registered model name, e.g. "resnet_tiny"
    params: int  # number of parameters
    test_accuracy: float  # percent
    test_nll: float  # nats
    train_nll: float  # nats
    epochs: int
    seconds_per_epoch: float  # mean over the epochs (nan if not recorded)

    @classmethod
    def of(cls, run: TrainedModel) -> RunSummary:
        """The last epoch's metrics of ``run``."""
        h = run.history
        return cls(
            name=run.name,
            params=sum(p.numel() for p in run.model.parameters()),
            test_accuracy=100.0 - h.test_error[-1],
            test_nll=h.test_nll[-1],
            train_nll=h.train_nll[-1],
            epochs=h.epoch[-1],
            seconds_per_epoch=statistics.fmean(h.seconds) if h.seconds else float("nan"),
        )


@dataclass(frozen=True)
class FamilyRun(RunSummary):
    """A family's run with its accuracy under band-limited noise (our CIFAR-100-C stand-in)."""

    noise: NoiseSweep

    @property
    def noisy_accuracy(self) -> float:
        """Mean accuracy (%) over every noise band of the sweep."""
        return float(self.noise.accuracy.mean())


@dataclass(frozen=True)
class BuildUp:
    """The build-up (paper Fig. 12): each step's MSA blocks per stage and its run."""

    steps: list[tuple[int, ...]]  # in build-up order; the first is the plain ResNet
    runs: list[RunSummary]
    resnet_second_seed: RunSummary  # the plain ResNet again, another seed: the noise floor


@dataclass(frozen=True)
class SeedSpread:
    """Run-to-run noise: ``|seed 0 − seed 1|`` of the plain ResNet."""

    test_accuracy: float  # percentage points
    test_nll: float  # nats


@dataclass(frozen=True)
class BuildUpRow:
    """One step of the build-up: what changed and whether it helped."""

    step: int
    msa_blocks: tuple[int, ...]
    name: str
    test_accuracy: float
    test_nll: float
    change: str  # e.g. "+1 MSA in stage 3"
    helped: bool | None  # better than the previous step (see `better`); None for the ResNet
    beyond_noise: bool | None  # the change exceeds the ResNet's seed spread (`significant`)


def better(a: RunSummary | BuildUpRow, b: RunSummary | BuildUpRow) -> bool:
    """Whether run ``a`` beats run ``b``: higher test accuracy, or, on a tie, lower test NLL.

    The tie-break matters when a test set is saturated (both models at 100 %): accuracy then
    cannot tell the models apart, the NLL still can.
    """
    if a.test_accuracy != b.test_accuracy:
        return a.test_accuracy > b.test_accuracy
    return a.test_nll < b.test_nll


def deciding_metric(a: RunSummary | BuildUpRow, b: RunSummary | BuildUpRow) -> str:
    """The metric :func:`better` decides by: ``"test_accuracy"``, or ``"test_nll"`` on a tie."""
    return "test_accuracy" if a.test_accuracy != b.test_accuracy else "test_nll"


def seed_spread(result: BuildUp) -> SeedSpread:
    """The run-to-run noise of a build-up: the ResNet's two seeds, accuracy and NLL."""
    a, b = result.runs[0], result.resnet_second_seed
    return SeedSpread(abs(a.test_accuracy - b.test_accuracy), abs(a.test_nll - b.test_nll))


def significant(a: RunSummary | BuildUpRow, b: RunSummary | BuildUpRow, spread: SeedSpread) -> bool:
    """Whether ``a`` and ``b`` differ by more than the seed ``spread``, in the metric that
    :func:`better` decides by (accuracy, or the NLL when the accuracies tie)."""
    metric = deciding_metric(a, b)
    return abs(getattr(a, metric) - getattr(b, metric)) > getattr(spread, metric)


def beats(a: RunSummary, b: RunSummary, spread: SeedSpread) -> bool:
    """``a`` is better than ``b`` by more than the seed noise."""
    return better(a, b) and significant(a, b, spread)


def buildup_rows(result: BuildUp) -> list[BuildUpRow]:
    """The build-up as rows, each with the change it made and whether it helped."""
    spread = seed_spread(result)
    rows: list[BuildUpRow] = []
    previous: tuple[tuple[int, ...], RunSummary] | None = None
    for i, (step, run) in enumerate(zip(result.steps, result.runs, strict=True)):
        step = tuple(step)
        rows.append(
            BuildUpRow(
                step=i,
                msa_blocks=step,
                name=run.name,
                test_accuracy=run.test_accuracy,
                test_nll=run.test_nll,
                change=describe_change(previous[0] if previous else None, step),
                helped=None if previous is None else better(run, previous[1]),
                beyond_noise=None if previous is None else significant(run, previous[1], spread),
            )
        )
        previous = (step, run)
    return rows


def best_row(rows: Sequence[BuildUpRow]) -> BuildUpRow:
    """The most accurate step (lowest NLL among equals)."""
    return max(rows, key=lambda r: (r.test_accuracy, -r.test_nll))


def describe_change(before: tuple[int, ...] | None, after: tuple[int, ...]) -> str:
    """``(0, 0, 0) → (0, 0, 1)`` → ``"+1 MSA in stage 3"``; the first step is named."""
    if before is None:
        return "plain ResNet" if not any(after) else f"start: MSA blocks {after}"
    parts = []
    for stage, (a, b) in enumerate(zip(before, after, strict=True), start=1):
        if b > a:
            parts.append(f"+{b - a} MSA in stage {stage}")
        elif b < a:
            parts.append(f"−{a - b} MSA in stage {stage}")
    return ", ".join(parts) or "no change"


def helped_mark(row: BuildUpRow) -> str:
    """ "✅ yes", "❌ no" or "≈ within seed noise (better/worse)" for a build-up row."""
    if row.helped is None:
        return ""
    if not row.beyond_noise:
        return f"≈ within seed noise ({'better' if row.helped else 'worse'})"
    return "✅ yes" if row.helped else "❌ no"


def describe_architecture(name: str, image_size: int = 32, **overrides) -> str:
    """One line per stage of a registered ResNet/AlterNet: feature-map size and block kinds.

    ``describe_architecture("alternet_mini")`` → ``"stage 1 (32×32, width 16): Conv Conv"``, …
    """
    model = create_model(name, image_size=image_size, **overrides)
    lines, side = [], image_size
    for s, stage in enumerate(model.stages):
        side = side if s == 0 else (side + 1) // 2
        kinds = " ".join("MSA" if block.feature_kind == "msa" else "Conv" for block in stage)
        lines.append(f"stage {s + 1} ({side}×{side}, width {model.config.widths[s]}): {kinds}")
    return "\n".join(lines)


def _table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """An HTML table; cells are inserted as given (escape text before)."""
    head_html = "".join(f"<th>{h}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head_html}</tr></thead><tbody>{body}</tbody></table>"


def buildup_table_html(result: BuildUp, spread_seed: int = 1) -> str:
    """The build-up as an HTML table: step, MSA blocks per stage, change, accuracy, NLL, helped;
    and the ResNet's second seed (``spread_seed``), whose difference from the first is the
    noise floor."""
    rows = [
        (str(r.step), str(r.msa_blocks), r.change, r.test_accuracy, r.test_nll, helped_mark(r))
        for r in buildup_rows(result)
    ]
    second = result.resnet_second_seed
    noise_floor = f"plain ResNet, seed {spread_seed} (noise floor)"
    rows.append(("—", rows[0][1], noise_floor, second.test_accuracy, second.test_nll, ""))
    cells = [
        (step, html.escape(msa), html.escape(change), f"{acc:.2f}", f"{nll:.4f}", mark)
        for step, msa, change, acc, nll, mark in rows
    ]
    head = ("step", "MSA blocks per stage", "change", "test accuracy (%)", "test NLL", "helped?")
    return _table(head, cells)


def family_table_html(families: Mapping[str, FamilyRun]) -> str:
    """AlterNet vs. the others: parameters, accuracy, NLL, accuracy under noise, training speed."""
    head = (
        "model",
        "parameters",
        "test accuracy (%)",
        "test NLL",
        "train NLL",
        "mean accuracy under noise (%)",
        "s / epoch",
    )
    cells = [
        (
            f"{family_label(f)} (<code>{html.escape(r.name)}</code>)",
            f"{r.params:,}",
            f"{r.test_accuracy:.2f}",
            f"{r.test_nll:.4f}",
            f"{r.train_nll:.4f}",
            f"{r.noisy_accuracy:.1f}",
            f"{r.seconds_per_epoch:.1f}",
        )
        for f, r in families.items()
    ]
    return _table(head, cells)


@dataclass(frozen=True)
class LesionSummary:
    """The numbers the paper reads off Fig. 10b, for one model's lesion study."""

    first_half: float  # mean accuracy drop (pp) of the units in the first half
    second_half: float  # ... in the second half
    largest: float  # the largest single drop
    largest_index: int  # its unit's position
    largest_name: str  # its unit's module name
    largest_kind: str  # its unit's kind ("conv", "msa", "mlp")
    mean_by_kind: dict[str, float]  # mean drop per unit kind

    def mean(self, kind: str) -> float:
        """Mean drop of the units of ``kind`` (nan if the model has none)."""
        return self.mean_by_kind.get(kind, math.nan)

    @property
    def msa_matter_more(self) -> bool:
        """Removing an MSA block costs more on average than removing a Conv block."""
        return self.mean_by_kind.get("msa", -math.inf) > self.mean_by_kind.get("conv", math.inf)


def lesion_summary(result: LesionResult) -> LesionSummary:
    """Drops of the first/second half, the mean per kind and the largest single drop."""
    drop = result.drop.tolist()
    half = len(drop) // 2
    by_kind = {
        kind: statistics.fmean(d for d, k in zip(drop, result.kinds, strict=True) if k == kind)
        for kind in sorted(set(result.kinds))
    }
    largest = max(range(len(drop)), key=drop.__getitem__)
    return LesionSummary(
        first_half=statistics.fmean(drop[: max(half, 1)]),
        second_half=statistics.fmean(drop[half:]),
        largest=drop[largest],
        largest_index=largest,
        largest_name=result.names[largest],
        largest_kind=result.kinds[largest],
        mean_by_kind=by_kind,
    )


def lesion_listing(results: Mapping[str, LesionResult]) -> str:
    """Every model's clean accuracy and NLL, then the drop and NLL without each unit."""
    lines = []
    for family, r in results.items():
        lines.append(
            f"{family_label(family)}: clean accuracy {r.clean_accuracy:.1f} %, "
            f"NLL {r.clean_nll:.4f}"
        )
        for name, kind, drop, nll in zip(
            r.names, r.kinds, r.drop.tolist(), r.nll.tolist(), strict=True
        ):
            lines.append(
                f"  without {name:<10} ({kind:>4}): accuracy −{drop:5.1f} pp, NLL {nll:.3f}"
            )
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Values for the prose: ``{glue:text}`` name → formatted value


_EFFECT = {True: "helped", False: "hurt", None: "changed the result by less than the seed noise"}


def _effect(row: BuildUpRow) -> str:
    return _EFFECT[row.helped if row.beyond_noise else None]


def buildup_glue(result: BuildUp) -> dict[str, str]:
    """The build-up's values for the text after its table (first step, best step, noise)."""
    rows, spread = buildup_rows(result), seed_spread(result)
    best, first, last = best_row(rows), rows[1], rows[-1]
    metric = deciding_metric(first, rows[0])
    change = abs(getattr(first, metric) - getattr(rows[0], metric))
    noise = getattr(spread, metric)
    return {
        "c8_resnet_acc": f"{rows[0].test_accuracy:.2f}",
        "c8_first_acc": f"{first.test_accuracy:.2f}",
        "c8_resnet_nll": f"{rows[0].test_nll:.4f}",
        "c8_first_nll": f"{first.test_nll:.4f}",
        "c8_first_effect": _effect(first),
        "c8_best_step": "the plain ResNet" if best.step == 0 else f"MSA blocks {best.msa_blocks}",
        "c8_best_acc": f"{best.test_accuracy:.2f}",
        "c8_last_step": str(last.msa_blocks),
        "c8_last_effect": _effect(last),
        "c8_first_metric": "accuracy" if metric == "test_accuracy" else "NLL",
        "c8_first_ratio": f"{change / noise:.1f} times"
        if noise > 0
        else "infinitely many times (the two seeds agree exactly)",
        "c8_spread_acc": f"{spread.test_accuracy:.2f}",
        "c8_spread_nll": f"{spread.test_nll:.4f}",
    }


def family_ranking(families: Mapping[str, RunSummary]) -> list[str]:
    """Families by test accuracy, best first (ties: lower test NLL first)."""
    key = {f: (r.test_accuracy, -r.test_nll) for f, r in families.items()}
    return sorted(key, key=key.get, reverse=True)


def family_glue(families: Mapping[str, FamilyRun]) -> dict[str, str]:
    """The families' rankings (by accuracy, by accuracy under noise) and headline accuracies."""
    noisy = {f: r.noisy_accuracy for f, r in families.items()}
    by_noise = sorted(noisy, key=noisy.get, reverse=True)
    return {
        "c8_ranking": " > ".join(family_label(f) for f in family_ranking(families)),
        "c8_alternet_acc": f"{families['alternet'].test_accuracy:.2f}",
        "c8_resnet_acc_fam": f"{families['resnet'].test_accuracy:.2f}",
        "c8_vit_acc": f"{families['vit'].test_accuracy:.2f}",
        "c8_noise_ranking": " > ".join(family_label(f) for f in by_noise),
    }


def lesion_glue(results: Mapping[str, LesionResult]) -> dict[str, str]:
    """The lesion study's readings: ResNet's early vs. late units, AlterNet's MSA vs. Conv."""
    res, alt, loc = (lesion_summary(results[f]) for f in ("resnet", "alternet", "local_vit"))
    early = res.first_half > res.second_half
    return {
        "c8_les_res_first": f"{res.first_half:.1f}",
        "c8_les_res_second": f"{res.second_half:.1f}",
        "c8_les_alt_msa": f"{alt.mean('msa'):.1f}",
        "c8_les_alt_conv": f"{alt.mean('conv'):.1f}",
        "c8_les_loc_max": f"{loc.largest:.1f}",
        "c8_les_res_max": f"{res.largest:.1f}",
        "c8_les_res_reading": "as in the paper, the early units matter more"
        if early
        else "unlike the paper, the later units matter more here",
        "c8_les_alt_reading": "AlterNet leans on its MSA blocks more than on its Conv blocks, "
        "as the paper finds"
        if alt.msa_matter_more
        else "AlterNet's MSA blocks matter less than its Conv blocks, the opposite of the "
        "paper's finding",
    }
