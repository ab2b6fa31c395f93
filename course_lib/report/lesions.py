"""Chapter 04's lesion study (paper Fig. 10b) as numbers, verdicts and sentences, chance-aware.

A lesion that sends a model to chance has taken everything the model had above chance: its drop
is the largest possible, so lesions that all reach chance tie and cannot rank the units they
removed; a model at chance before any lesion cannot rank anything. Whether an accuracy is above
chance is decided with the sampling margin of the test set
(:func:`course_lib.report.prose.versus_chance`), and every sentence here says so when it matters.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from course_lib.analysis.evaluation import Metrics
from course_lib.analysis.lesion import LesionResult
from course_lib.plots.style import family_label
from course_lib.report.prose import (
    above_chance,
    binomial_interval,
    compare,
    num,
    versus_chance,
)
from course_lib.report.verdicts import NOT, PARTLY, REPRODUCED, less_verdict, normalized_drop


@dataclass(frozen=True)
class LesionStudy:
    """Single-unit lesions of several trained models, and the chance accuracy of their task."""

    results: dict[str, LesionResult]  # family -> its lesion study
    chance: float  # percent: 100 / number of classes

    def clean_above_chance(self) -> dict[str, bool]:
        """Per family, whether the model is above chance before any lesion (else its lesions
        cannot rank anything)."""
        return {
            f: above_chance(r.clean_accuracy, self.chance, r.num_samples)
            for f, r in self.results.items()
        }


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


def units_at_chance(result: LesionResult, chance: float) -> list[str]:
    """The units whose removal alone leaves the model at (or below) chance."""
    return [
        name
        for name, acc in zip(result.names, result.accuracy.tolist(), strict=True)
        if not above_chance(acc, chance, result.num_samples)
    ]


def lesion_listing(study: LesionStudy) -> str:
    """Every model's clean accuracy and NLL, then the drop and NLL without each unit."""
    lines = []
    for family, r in study.results.items():
        lines.append(
            f"{family_label(family)}: clean accuracy {r.clean_accuracy:.1f} %, "
            f"NLL {r.clean_nll:.4f} (chance {study.chance:.1f} %)"
        )
        at_chance = set(units_at_chance(r, study.chance))
        for name, kind, drop, nll in zip(
            r.names, r.kinds, r.drop.tolist(), r.nll.tolist(), strict=True
        ):
            mark = "  → at chance" if name in at_chance else ""
            lines.append(
                f"  without {name:<10} ({kind:>4}): accuracy −{drop:5.1f} pp, NLL {nll:.3f}{mark}"
            )
    return "\n".join(lines)


def _status(family: str, r: LesionResult, chance: float) -> str:
    """How the clean model stands against chance, and which lesions send it there."""
    name = family_label(family) if family == "alternet" else f"The {family_label(family)}"
    clean = versus_chance(r.clean_accuracy / 100, chance / 100, r.num_samples)
    if clean != "above chance":
        return (
            f"{name} is {clean} before any lesion ({r.clean_accuracy:.1f} %): "
            "its lesions cannot rank its units."
        )
    gone = units_at_chance(r, chance)
    text = f"{name} ({r.clean_accuracy:.1f} % clean) "
    if not gone:
        return text + "stays above chance after every single lesion."
    if len(gone) == 1:
        return text + (
            f"falls to chance without {gone[0]}: that lesion takes everything the model had, "
            "so its drop says the model cannot do without the unit, not by how much."
        )
    return text + (
        f"falls to chance when any one of {len(gone)} of its {len(r.names)} units is removed "
        f"({', '.join(gone)}): those lesions take everything the model had, so they tie and "
        "cannot be ranked against each other."
    )


def _reading(agrees: bool, same: str, opposite: str) -> str:
    return f"as the paper finds, {same}" if agrees else f"unlike in the paper, {opposite}"


def lesion_text(study: LesionStudy) -> str:
    """The lesion study's reading, generated: each model against chance, then the paper's three
    findings (ResNet: early units matter more; AlterNet: MSAs more than Convs; no single unit of
    a local ViT matters much) for the models above chance."""
    r, chance = study.results, study.chance
    n = r["resnet"].num_samples
    chance_margin = 100 * binomial_interval(chance / 100, n)
    sentences = [
        f"Chance is {chance:.1f} % (± {chance_margin:.1f} points for {n:,} test images)."
    ] + [_status(f, r[f], chance) for f in r]
    ok = study.clean_above_chance()
    s = {f: lesion_summary(res) for f, res in r.items()}
    if ok["resnet"]:
        res = s["resnet"]
        sentences.append(
            "In the ResNet, "
            + compare(
                "mean drop",
                ("the first half", res.first_half),
                ("the second half", res.second_half),
                words=("smaller", "larger"),
                fmt=".1f",
                tolerance=margin(r["resnet"]),
            )
            + ": "
            + (
                _reading(
                    res.first_half >= res.second_half,
                    "the early units matter more.",
                    "the later units matter at least as much here.",
                )
                if abs(res.first_half - res.second_half) > margin(r["resnet"])
                else "the two halves differ by less than the sampling margin "
                f"(± {num(margin(r['resnet']), '.1f')} points): they cannot be told apart."
            )
        )
    if ok["alternet"]:
        alt = s["alternet"]
        sentences.append(
            "In AlterNet, "
            + compare(
                "mean drop",
                ("an MSA block", alt.mean("msa")),
                ("a Conv block", alt.mean("conv")),
                words=("smaller", "larger"),
                fmt=".1f",
            )
            + ": "
            + _reading(
                alt.msa_matter_more,
                "it leans on its MSA blocks more than on its Conv blocks.",
                "its MSA blocks matter no more than its Conv blocks here.",
            )
        )
    if ok["local_vit"] and ok["resnet"]:
        sentences.append(
            compare(
                "largest single drop",
                ("The local ViT", s["local_vit"].largest),
                ("the ResNet", s["resnet"].largest),
                words=("smaller", "larger"),
                fmt=".1f",
            )
            + "."
        )
    return " ".join(sentences)


def margin(result: LesionResult) -> float:
    """The 95 % sampling half-width (pp) of the clean accuracy on the lesion images: two halves
    whose mean drops differ by less cannot be told apart on this test set."""
    return 100 * binomial_interval(result.clean_accuracy / 100, result.num_samples)


def lesion_verdicts(study: LesionStudy) -> dict[str, str]:
    """The verdict of each of the paper's three lesion findings (Fig. 10b).

    ``"resnet_early"``: the ResNet's first half costs more than its second, by more than the
    sampling :func:`margin`; ``"alternet_msa"``:
    AlterNet's MSAs cost more than its Convs (reversed → not reproduced), the largest single
    drop an MSA too → reproduced, else partly; ``"local_small"``: the local ViT's largest drop
    below the ResNet's. A finding about a model at chance before any lesion is not reproduced:
    nothing was measured.
    """
    r, ok = study.results, study.clean_above_chance()
    res, alt, loc = (lesion_summary(r[f]) for f in ("resnet", "alternet", "local_vit"))
    if not alt.msa_matter_more:
        msa = NOT
    else:
        msa = REPRODUCED if alt.largest_kind == "msa" else PARTLY
    return {
        "resnet_early": less_verdict(res.second_half, res.first_half, margin(r["resnet"]))
        if ok["resnet"]
        else NOT,
        "alternet_msa": msa if ok["alternet"] else NOT,
        "local_small": less_verdict(loc.largest, res.largest)
        if ok["local_vit"] and ok["resnet"]
        else NOT,
    }


def removal_text(
    model: str, units: Sequence[str], clean: Metrics, lesioned: Metrics, chance: float
) -> str:
    """What removing ``units`` together did to ``model``, against chance (the "Try it" cell)."""
    where = versus_chance(lesioned.accuracy / 100, chance / 100, lesioned.count)
    text = (
        f"Without {', '.join(units)}, {model} classifies {lesioned.accuracy:.1f} % of the "
        f"{lesioned.count:,} test images correctly (clean: {clean.accuracy:.1f} %), {where} "
        f"({chance:.1f} %); its NLL goes from {num(clean.nll)} to {num(lesioned.nll)}. "
    )
    if not above_chance(clean.accuracy, chance, clean.count):
        return text + "The model is at chance before the lesion, so the lesion measures nothing."
    if where == "above chance":
        kept = 1 - normalized_drop(clean.accuracy, lesioned.accuracy, chance)
        return text + f"It keeps {kept:.0%} of the accuracy it had above chance."
    return text + (
        "This lesion takes everything the model had above chance: it shows that the model "
        "needs these units together, not how much each of them contributes."
    )
