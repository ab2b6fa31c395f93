"""Chapter 04's build-up (paper Fig. 12) as numbers, a table, a verdict and sentences.

The result types of chapter 04's training steps (:class:`RunSummary`, :class:`BuildUp`) and
everything derived from them for the page: which build-up step helped and whether beyond the
seed noise (:func:`buildup_rows`), the HTML table, the verdict and the generated reading
(:func:`buildup_text`). AlterNet against the other families and the C8 verdict:
:mod:`course_lib.report.families`; the lesion study: :mod:`course_lib.report.lesions`.
"""

from __future__ import annotations

import html
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from course_lib.experiments import TrainedModel
from course_lib.models import create_model
from course_lib.report.verdicts import NOT, PARTLY, REPRODUCED


@dataclass(frozen=True)
class RunSummary:
    """Final metrics of a trained run and its cost."""

    name: str  # registered model name, e.g. "resnet_tiny"
    seed: int  # training seed
    params: int  # number of parameters
    num_classes: int  # chance accuracy is 100 / num_classes %
    test_accuracy: float  # percent
    test_nll: float  # nats
    train_nll: float  # nats
    epochs: int
    seconds_per_epoch: float  # mean over the epochs (nan if not recorded)

    @classmethod
    def of(cls, run: TrainedModel, seed: int) -> RunSummary:
        """The last epoch's metrics of ``run``, trained with ``seed``."""
        h = run.history
        return cls(
            name=run.name,
            seed=seed,
            params=sum(p.numel() for p in run.model.parameters()),
            num_classes=run.num_classes,
            test_accuracy=100.0 - h.test_error[-1],
            test_nll=h.test_nll[-1],
            train_nll=h.train_nll[-1],
            epochs=h.epoch[-1],
            seconds_per_epoch=statistics.fmean(h.seconds) if h.seconds else float("nan"),
        )


# ---------------------------------------------------------------------------------------------
# The build-up (paper Fig. 12)


@dataclass(frozen=True)
class BuildUp:
    """The build-up: each step's MSA blocks per stage and its run, and the ResNet's seeds."""

    steps: list[tuple[int, ...]]  # in build-up order; the first is the plain ResNet
    runs: list[RunSummary]  # one per step, all at the profile's first seed
    resnet_seeds: list[RunSummary]  # the plain ResNet at every seed: the noise floor


@dataclass(frozen=True)
class SeedSpread:
    """Run-to-run noise: the range (max − min) of the plain ResNet over its seeds."""

    test_accuracy: float  # percentage points
    test_nll: float  # nats
    seeds: int  # how many seeds; with one, the noise is not measured (range 0)


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
    """The run-to-run noise of a build-up: the range of the ResNet's seeds, accuracy and NLL."""
    acc = [r.test_accuracy for r in result.resnet_seeds]
    nll = [r.test_nll for r in result.resnet_seeds]
    return SeedSpread(max(acc) - min(acc), max(nll) - min(nll), len(acc))


def significant(a: RunSummary | BuildUpRow, b: RunSummary | BuildUpRow, spread: SeedSpread) -> bool:
    """Whether ``a`` and ``b`` differ by more than the seed ``spread``, in the metric that
    :func:`better` decides by (accuracy, or the NLL when the accuracies tie)."""
    metric = deciding_metric(a, b)
    return abs(getattr(a, metric) - getattr(b, metric)) > getattr(spread, metric)


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


def buildup_rows(result: BuildUp) -> list[BuildUpRow]:
    """The build-up as rows, each with the change it made and whether it helped."""
    spread = seed_spread(result)
    rows: list[BuildUpRow] = []
    for i, (step, run) in enumerate(zip(result.steps, result.runs, strict=True)):
        prev = result.runs[i - 1] if i else None
        rows.append(
            BuildUpRow(
                step=i,
                msa_blocks=tuple(step),
                name=run.name,
                test_accuracy=run.test_accuracy,
                test_nll=run.test_nll,
                change=describe_change(tuple(result.steps[i - 1]) if i else None, tuple(step)),
                helped=better(run, prev) if prev else None,
                beyond_noise=significant(run, prev, spread) if prev else None,
            )
        )
    return rows


def best_row(rows: Sequence[BuildUpRow]) -> BuildUpRow:
    """The most accurate step (lowest NLL among equals)."""
    return max(rows, key=lambda r: (r.test_accuracy, -r.test_nll))


def buildup_verdict(rows: Sequence[BuildUpRow]) -> str:
    """Fig. 12: each stage-end MSA adds accuracy (NLL on ties), judged against the seed noise.

    Every step helps beyond the noise → reproduced. A step that hurts beyond the noise, or a
    last step (the most MSAs) no better than the plain ResNet, reverses the contrast → not
    reproduced. Otherwise (the last step better, some step within the noise) → partly.
    """
    steps = rows[1:]
    if any(r.helped is False and r.beyond_noise for r in steps) or not better(rows[-1], rows[0]):
        return NOT
    return REPRODUCED if all(r.helped and r.beyond_noise for r in steps) else PARTLY


def helped_mark(row: BuildUpRow) -> str:
    """ "✅ yes", "❌ no" or "≈ within seed noise (better/worse)" for a build-up row."""
    if row.helped is None:
        return ""
    if not row.beyond_noise:
        return f"≈ within seed noise ({'better' if row.helped else 'worse'})"
    return "✅ yes" if row.helped else "❌ no"


_EFFECT = {True: "helped", False: "hurt", None: "changed the result by less than the seed noise"}


def _effect(row: BuildUpRow) -> str:
    return _EFFECT[row.helped if row.beyond_noise else None]


def buildup_text(result: BuildUp) -> str:
    """The build-up's reading, generated: what the first step did, the best and last steps,
    and how the first step's change compares with the ResNet's seed range."""
    rows, spread = buildup_rows(result), seed_spread(result)
    first, best, last = rows[1], best_row(rows), rows[-1]
    metric = deciding_metric(first, rows[0])
    change = abs(getattr(first, metric) - getattr(rows[0], metric))
    noise = getattr(spread, metric)
    seeds = ", ".join(str(r.seed) for r in result.resnet_seeds)
    text = (
        f"The first step ({first.change}) {_effect(first)}: test accuracy "
        f"{rows[0].test_accuracy:.2f} % → {first.test_accuracy:.2f} %, test NLL "
        f"{rows[0].test_nll:.4f} → {first.test_nll:.4f}. The best model of the build-up is "
        + ("the plain ResNet" if best.step == 0 else f"MSA blocks {best.msa_blocks}")
        + f" ({best.test_accuracy:.2f} %); the last step, {last.msa_blocks}, {_effect(last)}. "
    )
    if spread.seeds == 1:
        return text + (
            f"The ResNet has one seed ({seeds}) in this profile, so the run-to-run noise is "
            "not measured and every difference counts as beyond it."
        )
    what = "accuracy" if metric == "test_accuracy" else "NLL"
    ratio = f"{change / noise:.1f} times" if noise > 0 else "infinitely many times"
    return text + (
        f"The ResNet's seeds ({seeds}) span {spread.test_accuracy:.2f} points of accuracy and "
        f"{spread.test_nll:.4f} in NLL; the first step changed the {what} by {ratio} that range."
    )


def buildup_table_html(result: BuildUp) -> str:
    """The build-up as an HTML table: step, MSA blocks per stage, change, accuracy, NLL, helped;
    then the ResNet at its other seeds, whose range is the noise floor."""
    rows = [
        (str(r.step), str(r.msa_blocks), r.change, r.test_accuracy, r.test_nll, helped_mark(r))
        for r in buildup_rows(result)
    ]
    rows[0] = (*rows[0][:2], f"plain ResNet, seed {result.runs[0].seed}", *rows[0][3:])
    for run in result.resnet_seeds[1:]:
        noise_floor = f"plain ResNet, seed {run.seed} (noise floor)"
        rows.append(("—", rows[0][1], noise_floor, run.test_accuracy, run.test_nll, ""))
    cells = [
        (step, html.escape(msa), html.escape(change), f"{acc:.2f}", f"{nll:.4f}", mark)
        for step, msa, change, acc, nll, mark in rows
    ]
    head = ("step", "MSA blocks per stage", "change", "test accuracy (%)", "test NLL", "helped?")
    return html_table(head, cells)


def describe_architecture(name: str, image_size: int = 32, **overrides) -> str:
    """One line per stage of a registered ResNet/AlterNet: feature-map size and block kinds.

    ``describe_architecture("alternet_mini")`` → ``"stage 1 (32×32, width 16): Conv Conv"``, …
    """
    model = create_model(name, image_size=image_size, **overrides)
    c = model.config
    lines = []
    for s, (stage, side) in enumerate(zip(model.stages, c.stage_sides(image_size), strict=True)):
        kinds = " ".join("MSA" if block.feature_kind == "msa" else "Conv" for block in stage)
        lines.append(f"stage {s + 1} ({side}×{side}, width {c.widths[s]}): {kinds}")
    return "\n".join(lines)


def html_table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """An HTML table; cells are inserted as given (escape text before)."""
    head_html = "".join(f"<th>{h}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head_html}</tr></thead><tbody>{body}</tbody></table>"
