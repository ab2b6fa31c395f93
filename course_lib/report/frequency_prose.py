"""Chapter 03's run-dependent sentences, generated from the measured numbers for ``myst_nb.glue``:
what each kind of block does (C5, C7), the noise losses and their reading (C6), and which cue
each model reads. Every word that orders, signs or ranks comes from the values
(:mod:`course_lib.report.prose`); the tests behind the verdicts are in
:mod:`course_lib.report.frequency`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from course_lib.analysis.depth_profiles import (
    DOWNSAMPLING,
    KIND_LABELS,
    BlockChange,
    FeatureAnalysis,
    block_changes,
)
from course_lib.analysis.robustness import BandDrops, NoiseSweep
from course_lib.config import Profile
from course_lib.plots.style import family_label
from course_lib.report.cues import cue_sentence
from course_lib.report.frequency import (
    FILTER_FAMILIES,
    FOURIER,
    PAPER_SIGNS,
    VARIANCE,
    KindChange,
    c6_verdict,
    change_text,
    change_verdict,
    chapter_models,
    format_change,
    kind_changes,
    main_magnitude,
    percent,
    seed_drops,
)
from course_lib.report.prose import and_join, compare, ratio, sign_word, versus_chance
from course_lib.report.verdicts import (
    NOT,
    PARTLY,
    REPRODUCED,
    normalized_drop,
    sign_holds,
)

_CATEGORIES = {  # a block category (BlockChange.category) in words
    "MSA": "MSA blocks",
    "MLP": "MLP blocks",
    "Conv": "same-resolution Conv blocks",
    DOWNSAMPLING: "downsampling Conv blocks",
}


def feature_glue(
    profile: Profile,
    analyses: Mapping[str, FeatureAnalysis],
    batches: Mapping[str, Sequence[Sequence[FeatureAnalysis]]] | None = None,
) -> dict[str, str]:
    """C5 and C7 in words, for ``myst_nb.glue``: the ViT's grid (``grid``, ``points``), what each
    kind of block does per model on the paper's one test batch ``analyses`` (``c5_blocks``,
    ``tilt_blocks``, ``c7_blocks``) and what the verdict rests on (``c5_reading``,
    ``tilt_reading``, ``c7_reading``), from every seed and test batch of ``batches`` (None:
    ``analyses`` alone)."""
    models = chapter_models(profile)
    names = {f: n for f, n in models.items() if n in analyses}
    changes = block_changes({n: analyses[n] for n in names.values()})
    vit = analyses[models["vit"]].fourier
    pooled = [models[f] for f in FILTER_FAMILIES]
    batches = batches or {n: [[analyses[n]]] for n in pooled}
    fourier = kind_changes(batches, pooled, "fourier")
    return {
        "grid": f"{vit.sizes[-1]}×{vit.sizes[-1]}",
        "points": str(len(vit.delta[-1])),
        "c5_blocks": block_text(changes.fourier, names),
        "tilt_blocks": block_text(changes.tilt, names, "the tilt"),
        "c7_blocks": block_text(changes.variance, names, "the variance", VARIANCE),
        "c5_reading": filter_reading(fourier, FOURIER),
        "tilt_reading": tilt_reading(kind_changes(batches, pooled, "tilt"), fourier),
        "c7_reading": filter_reading(kind_changes(batches, pooled, "variance"), VARIANCE),
    }


def block_text(
    changes: Mapping[str, Sequence[BlockChange]],
    names: Mapping[str, str],
    quantity: str = "the high-frequency Δ",
    style: tuple[str, str] = FOURIER,
) -> str:
    """What each kind of block does to ``quantity`` on average, per model, as a clause to
    continue a sentence: "in the ViT, MSA blocks lower the high-frequency Δ (-0.3 on average
    over 4), MLP blocks raise it (+0.12 on average over 4); in the ResNet, ...". ``names`` maps
    the families to mention to their model names."""
    clauses = []
    for family, name in names.items():
        groups: dict[str, list[float]] = {}
        for c in changes.get(name, []):
            groups.setdefault(c.category, []).append(c.change)
        parts = []
        for category in sorted(groups, key=_category_rank):
            mean, count = float(np.mean(groups[category])), len(groups[category])
            parts.append(
                f"{_CATEGORIES.get(category, category)} {_verb(mean)} "
                f"{'it' if parts or clauses else quantity} "
                f"({format_change(mean, style)} on average over {count})"
            )
        if parts:
            clauses.append(f"in the {family_label(family)}, " + ", ".join(parts))
    return "; ".join(clauses)


def filter_reading(changes: Mapping[str, KindChange], style: tuple[str, str] = FOURIER) -> str:
    """What :func:`~course_lib.report.frequency.change_verdict` found in ``changes`` (per block
    kind), and the verdict: the core contrast (MSA below Conv), the paper's signs (beyond their
    intervals over the test batches) and how large the MSA change is next to the Conv change."""
    verdict = change_verdict(changes)
    msa, conv = (change_text(changes[k], style) for k in ("msa", "conv"))
    if verdict == NOT:
        return (
            f"The MSA blocks' mean change ({msa}) is not below the Conv blocks' ({conv}): the "
            f'core of the claim is reversed in this run, so the verdict is "{NOT}".'
        )
    kinds = [k for k in PAPER_SIGNS if k in changes]
    against = [k for k in kinds if not changes[k].mean * PAPER_SIGNS[k] > 0]
    unclear = [
        k
        for k in kinds
        if k not in against and not sign_holds(changes[k].mean, changes[k].interval, PAPER_SIGNS[k])
    ]
    clauses = []
    if against:
        verb = "does" if len(against) == 1 else "do"
        clauses.append(f"{_listed(against, changes, style)} {verb} not have the paper's sign")
    if unclear:
        clauses.append(
            f"{_listed(unclear, changes, style)} {'has' if len(unclear) == 1 else 'have'} it "
            "only on average: at some seed its interval over the test batches reaches or "
            "crosses zero"
        )
    text = f"The MSA blocks' mean change ({msa}) is below the Conv blocks' ({conv})"
    text += (
        (", but " + "; and ".join(clauses))
        if clauses
        else (", and every kind has the paper's sign beyond its interval")
    )
    text += f' (MSA negative, Conv and MLP positive): verdict "{verdict}".'
    size_msa, size_conv = abs(changes["msa"].mean), abs(changes["conv"].mean)
    if size_msa > 0 and size_conv > 0:
        sizes = ratio(size_msa, size_conv)
        text += (
            f" In size, the MSA change is {sizes} than the Conv change"
            if sizes != "about equal"
            else " In size, the MSA and Conv changes are about equal"
        ) + "."
    return text


def tilt_reading(tilt: Mapping[str, KindChange], fourier: Mapping[str, KindChange]) -> str:
    """What the pooled blocks of each kind do to the tilt over every test batch and seed, and
    what that says of their change against DC (``fourier``): a kind whose tilt change stays
    within its interval over the batches at some seed, while its change against DC does not,
    changed the maps' mean, not the shape of their spectrum."""
    kinds = [k for k in PAPER_SIGNS if k in tilt]
    shaped = {k: sign for k in kinds if (sign := _sign_beyond_noise(tilt[k]))}
    clauses = [
        f"{KIND_LABELS[k]} {'lower' if sign < 0 else 'raise'}s the tilt beyond noise "
        f"({change_text(tilt[k])}: {'a blur' if sign < 0 else 'a sharpening'})"
        for k, sign in shaped.items()
    ]
    flat = [k for k in kinds if k not in shaped]
    if flat:
        verb = "leaves" if len(flat) == 1 else "leave"
        clauses.append(f"{_listed(flat, tilt, FOURIER)} {verb} the tilt within noise")
    text = "; ".join(clauses) + "."
    mean_only = [k for k in flat if _sign_beyond_noise(fourier[k])]
    if mean_only:
        names = and_join([KIND_LABELS[k] for k in mean_only])
        text += (
            f" So the change of the {names} blocks against DC, which is beyond noise, is a "
            "change of the maps' mean, not filtering."
        )
    return text


def _sign_beyond_noise(change: KindChange) -> int:
    """−1 or +1 where the change has that sign beyond its intervals (:func:`sign_holds`), else 0."""
    return next((sign for sign in (-1, 1) if sign_holds(change.mean, change.interval, sign)), 0)


def _listed(kinds: Sequence[str], changes: Mapping[str, KindChange], style: tuple[str, str]):
    return and_join([f"{KIND_LABELS[k]} ({change_text(changes[k], style)})" for k in kinds])


def noise_glue(
    profile: Profile, sweeps: Mapping[str, Sequence[NoiseSweep]], chance: float
) -> dict[str, str]:
    """C6 in words: the swept magnitudes, each family's normalised loss below and above ½π at
    :func:`main_magnitude` (``c6_<family>``), the ResNet against the ViT above ½π
    (``c6_cross``), the verdict's reading (``c6_reading``) and every magnitude's mean loss over
    all bands (``c6_magnitudes``). ``sweeps[model][s]`` is the sweep of the ``s``-th training
    seed's model; the sentences read seed 0 (every magnitude), the reading every seed."""
    magnitude = main_magnitude(profile)
    out = {
        "magnitude": f"{magnitude:g}",
        "magnitudes": ", ".join(f"{m:g}" for m in profile.frequency.noise_magnitudes),
        "chance": f"{chance:g} %",
    }
    drops, lines = {}, []
    for family, name in chapter_models(profile).items():
        if name in sweeps:
            sweep = sweeps[name][0]
            drops[family] = seed_drops(sweeps, name, chance, magnitude)
            out[f"c6_{family}"] = noise_sentence(family, sweep.clean_accuracy, drops[family][0])
            shares = ", ".join(percent(s) for s in _mean_shares(sweep, chance))
            lines.append(f"{shares} for the {family_label(family)}")
    out["c6_magnitudes"] = (
        f"Averaged over every band, the share of above-chance accuracy lost at RMS "
        f"{out['magnitudes']} is " + "; ".join(lines) + "."
    )
    if {"resnet", "vit"} <= drops.keys():
        res, vit = drops["resnet"][0], drops["vit"][0]
        cross = compare(
            "normalised loss above ½π",
            ("the ResNet", res.high),
            ("the ViT", vit.high),
            words=("smaller", "larger"),
            fmt=".2f",
        )
        out["c6_cross"] = "" if math.isnan(res.high - vit.high) else _sentence(cross)
        out["c6_reading"] = c6_reading(drops["resnet"], drops["vit"])
    return out


def noise_sentence(family: str, clean: float, drops: BandDrops) -> str:
    """One family's normalised loss above and below ½π, and where it is larger."""
    if math.isnan(drops.high - drops.low):
        return (
            f"The {family_label(family)} (clean accuracy {clean:.1f} %) is at or below chance on "
            "the clean images: its loss cannot be normalised."
        )
    where = sign_word(
        drops.high - drops.low,
        "smaller at high frequency than at low",
        "larger at high frequency than at low",
        "the same at high and low frequency",
    )
    return (
        f"The {family_label(family)} (clean accuracy {clean:.1f} %) loses {percent(drops.high)} of "
        f"its above-chance accuracy to noise above ½π and {percent(drops.low)} below: its loss is "
        f"{where}."
    )


def c6_reading(resnet: Sequence[BandDrops], vit: Sequence[BandDrops]) -> str:
    """Which half of the C6 contrast holds, at how many training seeds (one drop per seed), and
    the verdict (:func:`~course_lib.report.frequency.c6_verdict`)."""
    verdict = c6_verdict(resnet, vit)
    magnitude = resnet[0].magnitude
    if any(math.isnan(d.high + d.low) for d in (*resnet, *vit)):
        return (
            f"At RMS {magnitude:g}, a model at or below chance on the clean images has "
            f'no loss to normalise: verdict "{verdict}".'
        )
    res = _half(
        "the ResNet", sum(d.high > d.low for d in resnet), len(resnet),
        "loses more above ½π than below", "loses no more above ½π than below",
    )  # fmt: skip
    vit_ = _half(
        "the ViT", sum(d.high <= d.low for d in vit), len(vit),
        "loses no more above ½π than below", "loses more above ½π than below",
    )  # fmt: skip
    why = {
        REPRODUCED: "both halves of the contrast hold",
        PARTLY: "one half of the contrast holds",
        NOT: "neither half holds",
    }[verdict]
    return f'At RMS {magnitude:g}, {res}, and {vit_}: {why}, verdict "{verdict}".'


def _half(model: str, agree: int, seeds: int, as_paper: str, unlike: str) -> str:
    """One half of C6 in words: ``model`` behaves ``as_paper`` at ``agree`` of ``seeds``."""
    every = " at every seed" if seeds > 1 else ""
    if agree == seeds:
        return f"{model} {as_paper}{every}, as in the paper"
    if agree == 0:
        return f"{model} {unlike}{every}, unlike the paper's {model.removeprefix('the ')}"
    return f"{model} {as_paper} at {agree} of {seeds} seeds only"


def cue_glue(
    profile: Profile, cues: Mapping[str, Mapping[str, float]], chance: float, images: int
) -> dict[str, str]:
    """Which cue each model reads (``cue_<family>``), and the ViT's texture-only accuracy
    against chance (``cue_vit_high``), from ``images`` test images per cue set."""
    out, models = {}, chapter_models(profile)
    for family, name in models.items():
        if name in cues:
            out[f"cue_{family}"] = cue_sentence(family, cues[name], chance, images)
    vit = cues.get(models["vit"])
    if vit is not None:
        where = versus_chance(vit["high"] / 100, chance / 100, images)
        out["cue_vit_high"] = f"{vit['high']:.0f} % ({where}, chance {chance:g} %)"
    return out


def _mean_shares(sweep: NoiseSweep, chance: float) -> list[float]:
    """Per magnitude, the mean drop over every band as a share of the accuracy above chance."""
    clean = sweep.clean_accuracy
    return [normalized_drop(clean, clean - float(row.mean()), chance) for row in sweep.drop]


def _verb(value: float) -> str:
    return sign_word(value, "lower", "raise", "do not change")


def _category_rank(category: str) -> int:
    order = [*KIND_LABELS.values(), DOWNSAMPLING]
    return order.index(category) if category in order else len(order)


def _sentence(text: str) -> str:
    """``text`` with a capital first letter and a full stop."""
    if not text:
        return ""
    text = text[0].upper() + text[1:]
    return text if text.endswith(".") else text + "."


__all__ = [
    "block_text",
    "c6_reading",
    "cue_glue",
    "feature_glue",
    "filter_reading",
    "noise_glue",
    "noise_sentence",
]
