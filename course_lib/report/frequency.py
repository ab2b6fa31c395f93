"""Chapter 03's tests and its "paper vs. this run" rows: claims C5 (MSAs low-pass, Convs
high-pass), C6 (robustness to high-frequency noise) and C7 (MSAs reduce feature-map variance),
with verdicts from :mod:`course_lib.report.verdicts`. The sentences built from the same numbers
are in :mod:`course_lib.report.frequency_prose`.

The tests, declared before the run:

- C5 and C7 (:func:`~course_lib.report.verdicts.filter_verdict`): the mean change per block kind
  (:func:`kind_means`) over the same-resolution blocks of the paper's two models, the ResNet
  (Conv blocks) and the ViT (MSA and MLP sub-blocks); downsampling blocks are left out (their
  shortcut restarts the residual stream on a coarser grid). The paper reads one test batch of
  one model; we read every full batch of the chapter's test images with the models of every
  training seed of the profile (:func:`kind_changes`), and count a kind's sign only where, at
  every seed, its 95 % interval over the batches lies on the paper's side of zero.
- C6 (:func:`c6_verdict`, i.e. :func:`~course_lib.report.verdicts.robustness_verdict`): each
  family's accuracy drop, normalised by (clean − chance) (:func:`normalized_band_drops`),
  averaged over the *low* bands (centres below ½π) and over the *high* bands (centres above ½π;
  a band at ½π counts in neither), at the profile's largest noise magnitude
  (:func:`main_magnitude`), for the models of every training seed of the profile: a half of the
  contrast holds only if it holds at every seed.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from course_lib.analysis.depth_profiles import (
    KIND_LABELS,
    BlockChange,
    FeatureAnalysis,
    block_changes,
)
from course_lib.analysis.robustness import BandDrops, NoiseSweep, band_drops
from course_lib.config import Profile
from course_lib.experiments import TrainedModel
from course_lib.report import Comparison
from course_lib.report.prose import num
from course_lib.report.verdicts import (
    NOT,
    PAPER_SIGNS,
    filter_verdict,
    normalized_drop,
    robustness_verdict,
)

FILTER_FAMILIES: tuple[str, ...] = ("resnet", "vit")
"""The models whose blocks the C5 and C7 verdicts pool: the paper's Fig. 8 and 9 models."""

FOURIER = ("+.2g", "")  # (format, unit) of a change of Δ log amplitude
VARIANCE = ("+.2g", " %")  # ... of a relative change of the variance


def texture_band(profile: Profile) -> tuple[float, float] | None:
    """Per-axis frequencies (units of π, the noise bands' max-norm) of the texture cue of the
    chapter's data (:meth:`~course_lib.config.Profile.frequency_profile`); None for data without
    one (CIFAR, folders).

    The gratings have Euclidean radius ``texture_frequency = (r0, r1)``; along the max-norm that
    the noise bands use, such a frequency lies between ``r / √2`` and ``r``.
    """
    if profile.data != "synthetic":
        return None
    low, high = profile.frequency_profile().synthetic.texture_frequency
    return low / math.sqrt(2), high


def main_magnitude(profile: Profile) -> float:
    """The noise magnitude at which C6 is judged and drawn: the largest swept one (the
    heatmaps show every magnitude)."""
    return max(profile.frequency.noise_magnitudes)


def describe_models(runs: Iterable[TrainedModel]) -> str:
    """One line per trained model: parameters, epochs, final test error."""
    lines = []
    for run in runs:
        params = sum(p.numel() for p in run.model.parameters()) / 1e6
        error = run.history.test_error[-1] if run.history.test_error else float("nan")
        lines.append(
            f"{run.name:<16} {params:5.2f} M parameters, {_epochs(len(run.history.epoch))}, "
            f"test error {error:5.1f} %"
        )
    return "\n".join(lines)


def chapter_models(profile: Profile) -> dict[str, str]:
    """Family -> registered name of the chapter's models: the profile's, except where
    ``frequency.models`` gives the chapter its own (:meth:`~Profile.frequency_profile`)."""
    return profile.frequency_profile().models


def describe_data(profile: Profile) -> str:
    """Which models, data and epochs the chapter trains with, against the shared models'."""
    freq = profile.frequency_profile()
    shared = _epochs(profile.train.epochs)
    own = [
        f"{name} for the {family} (shared: {profile.models.get(family)})"
        for family, name in freq.models.items()
        if name != profile.models.get(family)
    ]
    models = f" Architectures of its own: {', '.join(own)}." if own else ""
    if profile.data != "synthetic":
        recipe = f"{profile.data}, {shared}"
        return f"The shared data and recipe of chapters 01, 02 and 04 ({recipe}).{models}"
    if (freq.synthetic, freq.train) == (profile.synthetic, profile.train):
        return (
            f"The shared data and recipe of chapters 01, 02 and 04 ({shared} on the synthetic "
            f"data): the {profile.name} profile sets no data of its own for this chapter.{models}"
        )
    a, b = dataclasses.asdict(freq.synthetic), dataclasses.asdict(profile.synthetic)
    changed = ", ".join(f"{k} {a[k]} (shared: {b[k]})" for k in a if a[k] != b[k])
    return (
        f"Models trained for this chapter: {_epochs(freq.train.epochs)} on synthetic data with "
        f"{changed or 'the shared settings'}; the shared models train for {shared}.{models}"
    )


def kind_means(
    changes: Mapping[str, Sequence[BlockChange]], models: Iterable[str]
) -> dict[str, float]:
    """Mean change per block kind (``"msa"``, ``"conv"``, ``"mlp"``) over the same-resolution
    blocks of ``models``: the input of :func:`~course_lib.report.verdicts.filter_verdict`.

    ``"msa"`` and ``"conv"`` are always present (NaN without such a block), ``"mlp"`` only if
    one of the models has MLP blocks.
    """
    groups: dict[str, list[float]] = {}
    for model in models:
        for c in changes.get(model, []):
            if not c.downsamples and c.kind in PAPER_SIGNS:
                groups.setdefault(c.kind, []).append(c.change)
    means = {kind: float(np.mean(values)) for kind, values in groups.items()}
    return {"msa": float("nan"), "conv": float("nan")} | means


@dataclass(frozen=True)
class KindChange:
    """One block kind's change: its mean over seeds and test batches, the hull of its 95 %
    Student-t intervals over the batches at each seed (None with a single batch), and its mean
    at each seed."""

    mean: float
    interval: tuple[float, float] | None
    batches: int
    seed_means: tuple[float, ...] = ()


def kind_changes(
    batches: Mapping[str, Sequence[Sequence[FeatureAnalysis]]],
    models: Sequence[str],
    statistic: str,
) -> dict[str, KindChange]:
    """:func:`kind_means` of ``statistic`` (``"fourier"`` or ``"variance"``, a field of
    :class:`~course_lib.analysis.depth_profiles.BlockChanges`) on every test batch, pooled over
    ``models``, then per kind the mean and the hull of the per-seed 95 % intervals: the hull
    lies on one side of zero only if every seed's interval does. ``batches[model][s][i]`` is
    the analysis of test batch ``i`` (the same images for every model and seed) by the model
    trained with the ``s``-th seed."""
    seeds = min(len(batches[m]) for m in models)
    per_seed = [_batch_means({m: batches[m][s] for m in models}, models, statistic)
                for s in range(seeds)]  # fmt: skip
    result = {}
    for kind in per_seed[0]:
        stats_ = [_mean_interval(values[kind]) for values in per_seed]
        means = tuple(m for m, _ in stats_)
        intervals = [i for _, i in stats_ if i is not None]
        hull = (min(i[0] for i in intervals), max(i[1] for i in intervals)) if intervals else None
        n = len(per_seed[0][kind])
        result[kind] = KindChange(float(np.mean(means)), hull, n, means)
    return result


def _batch_means(
    batches: Mapping[str, Sequence[FeatureAnalysis]], models: Sequence[str], statistic: str
) -> dict[str, np.ndarray]:
    """Per kind, its :func:`kind_means` on each test batch (one seed)."""
    n = min(len(batches[m]) for m in models)
    per_batch = [
        kind_means(getattr(block_changes({m: batches[m][i] for m in models}), statistic), models)
        for i in range(n)
    ]
    return {kind: np.array([b[kind] for b in per_batch]) for kind in per_batch[0]}


def _mean_interval(values: np.ndarray) -> tuple[float, tuple[float, float] | None]:
    """The mean of ``values`` and its 95 % Student-t interval (None for a single value)."""
    mean, n = float(values.mean()), len(values)
    if n < 2:
        return mean, None
    half = float(stats.t.ppf(0.975, n - 1) * values.std(ddof=1) / math.sqrt(n))
    return mean, (mean - half, mean + half)


def change_verdict(changes: Mapping[str, KindChange]) -> str:
    """:func:`~course_lib.report.verdicts.filter_verdict` on the kinds' means and intervals."""
    means = {kind: c.mean for kind, c in changes.items()}
    intervals = {kind: c.interval for kind, c in changes.items() if c.interval is not None}
    return filter_verdict(means, intervals)


def normalized_band_drops(
    sweep: NoiseSweep, chance: float, magnitude: float | None = None
) -> BandDrops:
    """:func:`~course_lib.analysis.robustness.band_drops` as shares (0–1) of the accuracy the
    model had above ``chance`` (%): the low and high bands' mean drop, normalised."""
    drops, clean = band_drops(sweep, magnitude), sweep.clean_accuracy
    low, high = (normalized_drop(clean, clean - d, chance) for d in (drops.low, drops.high))
    return BandDrops(drops.magnitude, low, high)


def c6_verdict(resnet: Sequence[BandDrops], vit: Sequence[BandDrops]) -> str:
    """:func:`~course_lib.report.verdicts.robustness_verdict` on the two families' normalised
    (low, high) drops, one per training seed; "not reproduced" when a model is at or below
    chance on the clean images (NaN: its drops cannot be normalised, so the contrast cannot be
    tested)."""
    if any(math.isnan(d.low + d.high) for d in (*resnet, *vit)):
        return NOT
    return robustness_verdict([(d.low, d.high) for d in resnet], [(d.low, d.high) for d in vit])


def seed_drops(
    sweeps: Mapping[str, Sequence[NoiseSweep]], name: str, chance: float, magnitude: float
) -> list[BandDrops]:
    """Model ``name``'s :func:`normalized_band_drops` at ``magnitude``, one per training seed
    (``sweeps[name][s]``: the sweep of the model trained with the ``s``-th seed)."""
    return [normalized_band_drops(sweep, chance, magnitude) for sweep in sweeps[name]]


def verdict_summary(rows: Sequence[Comparison]) -> str:
    """The box's verdicts in one line, e.g. "C5: partly; C6 at RMS 1: reproduced; ..."."""
    return "; ".join(f"{row.claim.split(':')[0]}: {row.verdict}" for row in rows) + "."


def paper_comparison(
    batches: Mapping[str, Sequence[Sequence[FeatureAnalysis]]],
    sweeps: Mapping[str, Sequence[NoiseSweep]],
    profile: Profile,
    paper: Mapping[str, str],
    chance: float,
) -> list[Comparison]:
    """The rows of the "paper vs. this run" box, verdicts from the tests of the module docstring.

    ``batches[model][s]`` holds the feature analyses of every test batch by the model of the
    ``s``-th training seed (C5, C7);
    ``sweeps[model][s]`` is the noise sweep of the model of the ``s``-th seed (C6; seed 0 first);
    ``paper`` holds the paper's side of each row (keys ``"C5"``, ``"C6"``, ``"C7"``);
    ``chance`` is the chance accuracy (%) of the noise test. The C6 row needs the ResNet's and
    the ViT's sweeps and is left out without them.
    """
    models = chapter_models(profile)
    pooled = [models[f] for f in FILTER_FAMILIES]
    fourier, variance = (kind_changes(batches, pooled, s) for s in ("fourier", "variance"))
    first = next(iter(fourier.values()))
    n, seeds = first.batches, len(first.seed_means)
    where = (
        f"mean [95 % interval] over {n} test batch{'es' if n > 1 else ''}"
        + (f", hull over {seeds} training seeds" if seeds > 1 else "")
        + f"; same-resolution blocks of {' and '.join(pooled)}"
    )
    rows = [
        Comparison(
            "C5: MSAs low-pass, Convs and MLPs high-pass (mean change of Δ log amplitude at the "
            "highest frequency, per block kind)",
            paper["C5"],
            f"{_kinds(fourier, FOURIER)} ({where})",
            change_verdict(fourier),
        )
    ]
    resnet, vit = models["resnet"], models["vit"]
    if resnet in sweeps and vit in sweeps:
        magnitude = main_magnitude(profile)
        res, vit_ = (seed_drops(sweeps, n, chance, magnitude) for n in (resnet, vit))
        rows.append(
            Comparison(
                f"C6 at RMS {magnitude:g}: the ResNet's loss is high-frequency-specific, the "
                "ViT's is not (accuracy lost above vs. below ½π, % of clean − chance)",
                paper["C6"],
                f"{_drops_text(resnet, res, sweeps[resnet])}; {_drops_text(vit, vit_, sweeps[vit])}"
                f" (chance {chance:g} %"
                + (f"; one value per training seed, {len(res)} seeds" if len(res) > 1 else "")
                + ")",
                c6_verdict(res, vit_),
            )
        )
    rows.append(
        Comparison(
            "C7: MSAs reduce feature-map variance, Convs and MLPs increase it (mean relative "
            "change, per block kind)",
            paper["C7"],
            f"{_kinds(variance, VARIANCE)} ({where})",
            change_verdict(variance),
        )
    )
    return rows


def step_times(seconds: Mapping[str, float]) -> str:
    """One line per cached step: its name and the seconds it took when it was computed."""
    return "\n".join(f"{step:<9} {s:6.1f} s" for step, s in seconds.items())


def format_change(value: float, style: tuple[str, str] = FOURIER) -> str:
    """A block's change as the chapter prints it: ``style`` is :data:`FOURIER` or
    :data:`VARIANCE` (format, unit)."""
    spec, unit = style
    return num(value, spec) + unit


def percent(share: float) -> str:
    """A share (0–1) as "45 %" (NaN as "n/a %")."""
    return f"{num(100 * share, '.0f')} %"


def _drops_text(name: str, drops: Sequence[BandDrops], sweeps: Sequence[NoiseSweep]) -> str:
    """``"resnet_mini 51 % vs. 6 % (clean 100.0 %)"``, each seed's values separated by "/"."""
    high = " / ".join(percent(d.high) for d in drops)
    low = " / ".join(percent(d.low) for d in drops)
    clean = " / ".join(f"{s.clean_accuracy:.1f}" for s in sweeps)
    return f"{name} {high} vs. {low} (clean {clean} %)"


def _epochs(n: int) -> str:
    return f"{n} epoch" if n == 1 else f"{n} epochs"


def change_text(change: KindChange, style: tuple[str, str] = FOURIER) -> str:
    """``"-0.12 [-0.2, -0.04]"``: a kind's mean change and, if it has one, its interval; with
    several seeds, each seed's mean too (``"…; seeds -0.1, -0.14"``)."""
    text = format_change(change.mean, style)
    if change.interval is not None:
        low, high = (format_change(v, style) for v in change.interval)
        text += f" [{low}, {high}]"
    if len(change.seed_means) > 1:
        text += f" (seeds {', '.join(format_change(m, style) for m in change.seed_means)})"
    return text


def _kinds(changes: Mapping[str, KindChange], style: tuple[str, str]) -> str:
    """``"MSA -0.12 […], Conv +0.05 […], MLP +0.30 […]"`` for the kinds present."""
    return ", ".join(
        f"{KIND_LABELS[k]} {change_text(changes[k], style)}" for k in PAPER_SIGNS if k in changes
    )


__all__ = [
    "FILTER_FAMILIES",
    "FOURIER",
    "KindChange",
    "PAPER_SIGNS",
    "VARIANCE",
    "c6_verdict",
    "change_text",
    "change_verdict",
    "chapter_models",
    "describe_data",
    "describe_models",
    "format_change",
    "kind_changes",
    "kind_means",
    "main_magnitude",
    "normalized_band_drops",
    "paper_comparison",
    "percent",
    "seed_drops",
    "step_times",
    "texture_band",
    "verdict_summary",
]
