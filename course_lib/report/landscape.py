"""Chapter 02 in words and numbers: the protocol, generated sentences, "paper vs. this run" rows.

Everything here formats what the chapter-02 modules computed; nothing computes a Hessian or a
surface. Each run-dependent sentence is built from the numbers (:mod:`course_lib.report.prose`)
and each verdict comes from :mod:`course_lib.report.verdicts`, so text and run cannot drift.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations, pairwise
from typing import Any

import torch
from torch import Tensor

from course_lib.analysis.curvature import SurfaceNumbers
from course_lib.analysis.proportions import difference_interval, values_needed
from course_lib.analysis.spectra import (
    BatchSpectra,
    NegativeProportion,
    negative_proportion,
    spectrum_summary,
)
from course_lib.config import Profile
from course_lib.report import Comparison
from course_lib.report.prose import ascending, compare, near_zero, num, ratio, share
from course_lib.report.verdicts import NOT, PARTLY, REPRODUCED, less_verdict, order_verdict


@dataclass(frozen=True)
class Roles:
    """Which spectrum label plays which part in the chapter's comparisons."""

    resnet: str  # the trained ResNet
    vit: str  # the trained ViT
    vit_small: str | None = None  # the ViT trained on the smallest data fraction (C4)
    small_fraction: float = 1.0  # that fraction

    @property
    def order(self) -> list[str]:
        """C4's models in the paper's order of increasing NEP."""
        return [self.resnet, self.vit] + ([self.vit_small] if self.vit_small else [])

    @property
    def names(self) -> dict[str, str]:
        """The words the sentences use for each label."""
        small = {self.vit_small: f"ViT on {self.small_fraction:.0%} of the data"}
        return {self.resnet: "ResNet", self.vit: "ViT"} | (small if self.vit_small else {})


def times(a: float, b: float) -> str:
    """ "3.2× smaller than" / "460× larger than" / "about as large as": a compared with b."""
    if not (a > 0 and b > 0):
        return "not comparable with"
    r = ratio(a, b)
    return "about as large as" if r == "about equal" else f"{r} than"


def percent_text(p: float) -> str:
    """A share (0–1) as chapter 02 prints it: "18%", "8.7%", "-9.3%"."""
    return num(100 * p, ".2g" if abs(p) < 1 else ".0f") + "%"


@dataclass(frozen=True)
class SpectrumNumbers:
    """One model's spectrum in the paper's numbers."""

    median_max: float  # median over batches of λ_max (:func:`batch_maxima`)
    ape: float  # the paper's APE: mean of the positive values of the top-k by |λ|
    nep: NegativeProportion  # the paper's NEP, with its Wilson interval


def batch_maxima(magnitude: Tensor, top: Tensor) -> Tensor:
    """Each batch's λ_max: the larger of two estimates, the top-k by |λ| ``magnitude`` (n, k)
    and an "LA" solve ``top`` (n, 1).

    Lanczos estimates (Ritz values) never exceed λ_max, so the larger is the closer. The top-k
    by |λ| holds λ_max only where one of its values is positive; the "LA" solve alone may settle
    on the second of two close eigenvalues.
    """
    return torch.maximum(magnitude.max(dim=1).values, top[:, 0])


def spectrum_numbers(
    magnitude: BatchSpectra, top: BatchSpectra, design_effect: float = 1.0
) -> SpectrumNumbers:
    """:class:`SpectrumNumbers` of one model: its top-k by |λ| ("LM") and λ_max ("LA");
    ``design_effect`` widens the NEP's interval (pass
    :func:`~course_lib.analysis.spectra.nep_design_effect` of all the spectra compared)."""
    values = magnitude.eigenvalues
    return SpectrumNumbers(
        median_max=float(batch_maxima(values, top.eigenvalues).quantile(0.5)),
        ape=spectrum_summary(values)["ape"],
        nep=negative_proportion(values, design_effect=design_effect),
    )


def nep_text(nep: NegativeProportion) -> str:
    """ "5% (95% interval 1.4%–17%; 2 of 40)"."""
    interval = f"{percent_text(nep.low)}–{percent_text(nep.high)}"
    return (
        f"{percent_text(nep.proportion)} ({percent_text(nep.confidence)} interval {interval}; "
        f"{nep.negatives} of {nep.total})"
    )


def nep_difference(lower: NegativeProportion, higher: NegativeProportion) -> tuple[float, float]:
    """95 % interval of ``higher − lower`` NEP (Newcombe's hybrid score): a pair of C4's order
    is clear when it excludes 0. Like the Wilson intervals it counts the values of both spectra
    as ``total / design_effect`` independent ones (the larger effect of the two, should they
    differ)."""
    return difference_interval(
        (higher.negatives, higher.total),
        (lower.negatives, lower.total),
        design_effect=max(lower.design_effect, higher.design_effect),
    )


def nep_clear(
    numbers: Mapping[str, SpectrumNumbers], order: Sequence[str]
) -> dict[tuple[str, str], bool]:
    """``{(a, b): whether b's NEP is clearly above a's}`` for every pair of ``order``: the
    ``clear`` argument of C4's :func:`order_verdict`."""
    return {
        (a, b): nep_difference(numbers[a].nep, numbers[b].nep)[0] > 0
        for a, b in combinations(order, 2)
    }


def protocol(profile: Profile, labels: Sequence[str], tol: float) -> str:
    """What the chapter measures, in words: ``labels`` of the models, Lanczos tolerance ``tol``."""
    h, t = profile.hessian, profile.train
    return "\n".join(
        [
            f"models            : {', '.join(labels)}",
            "loss              : NLL (cross-entropy, batch mean), no weight-decay term",
            f"Hessian batches   : {h.batches} mini-batches of {h.batch_size} training images, "
            f"augmented ({t.augment}), fixed seed",
            "model mode        : eval (BatchNorm running statistics, no dropout)",
            f"eigenvalues       : the top {h.k} by |λ| per batch (the paper's ranking), exactly,",
            f"                    from the {h.k} largest and the most negative ({h.k} where a "
            "negative one enters);",
            "                    and λ_max by its own solve (LA, k = 1, with its eigenvector);",
            f"                    Lanczos to {tol:.0%}, at most {h.max_iter} products per solve",
            f"loss surfaces     : {profile.landscape.points}×{profile.landscape.points} grid on "
            f"[-1, 1]², {profile.landscape.batches} batch(es) of {t.batch_size} images",
        ]
    )


def spectra_costs(spectra: Mapping[str, Sequence[BatchSpectra]]) -> str:
    """One line per model and spectrum: seconds, products per batch, converged batches."""
    lines = []
    for label, runs in spectra.items():
        for s in runs:
            n, done, hvp = len(s.converged), int(s.converged.sum()), s.n_hvp.double()
            lines.append(
                f"{label:22s} {s.which}  {s.seconds:6.1f} s   products per batch: mean "
                f"{hvp.mean():.0f}, max {hvp.max():.0f}   converged: {done}/{n}"
            )
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Paper vs. this run


def paper_comparison(
    numbers: Mapping[str, SpectrumNumbers],
    flatness: Mapping[str, SurfaceNumbers],
    *,
    paper: Mapping[str, Any],
    roles: Roles,
    weight_decay: float,
) -> list[Comparison]:
    """The rows of the "paper vs. this run" box, each verdict from its own contrast.

    Declared tests (counted in the closing table): C3, the ViT's median λ_max below the ResNet's
    (:func:`less_verdict`); C4, NEP ResNet < ViT < small-data ViT (:func:`order_verdict`). Beside
    them, not counted: ViT below ResNet in scale-free curvature ``|dᵀHd|`` (not in the paper) and
    in mean loss rise one unit away (the official loss-surface notebook's reading), and more
    filter-normalised directions curving down for the ViT (not in the paper).
    """
    r, v = numbers[roles.resnet], numbers[roles.vit]
    fr, fv = flatness[roles.resnet], flatness[roles.vit]
    p, rise, names = paper["c3_peaks"], paper["rise_1_0"], roles.names
    order = " < ".join(names[label] for label in roles.order)
    neps = "; ".join(f"{names[label]}: {nep_text(numbers[label].nep)}" for label in roles.order)
    return [
        Comparison(
            "C3: ViT's median λ_max below ResNet's (λ_max per mini-batch)",
            f"spectrum peak ViT ≈ {p['early'][0]} vs ResNet ≈ {p['early'][1]} early; "
            f"≈ {p['300'][0]} vs {p['300'][1]} at epoch 300 (≈ read from Fig. 4)",
            f"median λ_max: ViT {num(v.median_max)} vs ResNet {num(r.median_max)} "
            f"(APE: ViT {num(v.ape)} vs ResNet {num(r.ape)})",
            less_verdict(v.median_max, r.median_max),
        ),
        Comparison(
            "C3 (scale-free): curvature |dᵀHd| along filter-normalised directions, ViT < ResNet",
            "not measured in the paper; its filter-normalised surfaces look flatter for ViT "
            "(Fig. 1a)",
            f"mean |dᵀHd|: ViT {num(fv.curvature)} vs ResNet {num(fr.curvature)}",
            less_verdict(fv.curvature, fr.curvature),
            counted=False,
        ),
        Comparison(
            "C3 (surface): smaller loss rise one unit away for ViT (mean of (±1, 0), (0, ±1))",
            f"rise at (1, 0): ViT ≈ +{rise['vit']} vs ResNet ≈ +{rise['resnet']} (NLL + L2, "
            "official losslandscape notebook, CIFAR-100)",
            f"mean NLL rise: ViT {num(fv.mean)} vs ResNet {num(fr.mean)}; at (1, 0), NLL + L2 "
            f"(wd={weight_decay:g}): ViT {num(fv.nll_l2)} vs ResNet {num(fr.nll_l2)}",
            less_verdict(fv.mean, fr.mean),
            counted=False,
        ),
        Comparison(
            f"C4: NEP (negative share of the top-k by |λ|) {order}",
            f"ViT: many negative top-5 values (≈ {paper['c4_vit_negative_range'][0]} … 0), "
            f"ResNet almost none; 6 % of CIFAR-100: ≈ {paper['c4_small_over_full']}× the "
            "negative mass of full data (≈ read from Fig. 4)",
            neps,
            order_verdict(
                {label: numbers[label].nep.proportion for label in roles.order},
                roles.order,
                nep_clear(numbers, roles.order),
            ),
        ),
        Comparison(
            "C4 (scale-free): more filter-normalised directions curve down for ViT (dᵀHd < 0)",
            "not measured in the paper",
            f"ViT {fv.negative_directions:.0%} vs ResNet {fr.negative_directions:.0%} of the "
            "random directions",
            less_verdict(fr.negative_directions, fv.negative_directions),
            counted=False,
        ),
    ]


# ---------------------------------------------------------------------------------------------
# Generated sentences: chapter 02


def c3_reading(numbers: Mapping[str, SpectrumNumbers], roles: Roles, paper: Mapping) -> str:
    """The C3 paragraph: the two medians, their ratio, and the paper's values beside them."""
    r, v = numbers[roles.resnet].median_max, numbers[roles.vit].median_max
    vit300, resnet300 = paper["c3_peaks"]["300"]
    return (
        f"After training, {compare('median λ_max', ('the ViT', v), ('the ResNet', r))}: "
        f"ViT / ResNet = {num(v / r) if v > 0 and r > 0 else 'n/a'}. "
        f"The paper's spectrum peaks at ≈ {vit300} (ViT-Ti) and ≈ {resnet300} (ResNet-50) at "
        f"epoch 300 (≈ read from Fig. 4): this run's ViT median is {times(v, vit300)} the "
        f"paper's ViT-Ti, its ResNet median {times(r, resnet300)} the paper's ResNet-50."
    )


def fit_reading(
    flatness: Mapping[str, SurfaceNumbers], roles: Roles, num_classes: int, paper: Mapping
) -> str:
    """How closely each model fits its training batches, against the loss of a uniform guess.

    The cross-entropy's curvature shrinks as the predicted probabilities approach 0 and 1, so a
    model whose NLL is at most a tenth of ln C has small eigenvalues for that reason alone.
    """
    chance = math.log(num_classes)
    centers = {roles.names[label]: flatness[label].center for label in (roles.resnet, roles.vit)}
    listing = " and ".join(f"{num(c)} for the {name}" for name, c in centers.items())
    close = [name for name, c in centers.items() if near_zero(c, chance, rel=0.1)]
    pc = paper["center_nll"]
    text = (
        f"At the trained weights the NLL on the fixed training batches is {listing}, against "
        f"ln {num_classes} = {num(chance)} for a uniform guess (the paper's models: ≈ "
        f"{pc['resnet']} for ResNet-50 and ≈ {pc['vit']} for ViT-Ti, against ln 100 = 4.61)."
    )
    if close:
        return text + (
            f" The NLL of the {' and the '.join(close)} is at most a tenth of ln C: where "
            "predictions approach certainty the cross-entropy's curvature shrinks, which pulls "
            "every eigenvalue towards zero whatever the architecture."
        )
    return text + " Neither model's NLL is as low as a tenth of ln C."


def c4_reading(numbers: Mapping[str, SpectrumNumbers], roles: Roles) -> str:
    """The C4 paragraph: each NEP with its interval, the measured order, and whether each step of
    the paper's order is clear (its difference's interval excludes 0), as the verdict asks."""
    names, order = roles.names, roles.order
    neps = {label: numbers[label].nep for label in order}
    listing = "; ".join(f"{names[label]}: {nep_text(n)}" for label, n in neps.items())
    measured = ascending(
        {f"{names[label]}:": n.proportion for label, n in neps.items()}, percent_text
    )
    points = order_verdict({label: n.proportion for label, n in neps.items()}, order)
    agreement = {
        REPRODUCED: "which is the paper's order",
        NOT: "which is not the paper's order: its two ends are reversed or equal",
    }.get(points, "which is the paper's order at its two ends, not in between")
    intervals = {(a, b): nep_difference(neps[a], neps[b]) for a, b in pairwise(order)}
    steps = [
        f"the NEP of the {names[b]} minus that of the {names[a]} is "
        f"{percent_text(neps[b].proportion - neps[a].proportion)} (95% interval "
        f"{percent_text(low)} to {percent_text(high)}), " + ("clear" if low > 0 else "within noise")
        for (a, b), (low, high) in intervals.items()
    ]
    within_noise = [(a, b) for (a, b), (low, _) in intervals.items() if low <= 0]
    return (
        f"NEP per model: {listing}. In increasing order: {measured}, {agreement}. Step by step, "
        f"{'; '.join(steps)}. The verdict counts a step of the order only when it is clear. "
        + effect_sentence(max(neps.values(), key=lambda n: n.design_effect))
        + "".join(power_sentence(neps[a], neps[b], names[a], names[b]) for a, b in within_noise)
    )


def power_sentence(
    lower: NegativeProportion, higher: NegativeProportion, lower_name: str, higher_name: str
) -> str:
    """For a step within noise (:func:`nep_difference`'s interval reaches 0): how many values
    per model a test would need to tell it from noise (95 %, 80 % power, :func:`values_needed`);
    "" for a step against the paper's direction, which more values would not turn around."""
    if higher.proportion <= lower.proportion:
        return ""
    effect = max(lower.design_effect, higher.design_effect)
    needed = math.ceil(values_needed(higher.proportion, lower.proportion, design_effect=effect))
    per_model = max(lower.total, higher.total)
    step = num(100 * (higher.proportion - lower.proportion), ".2g")
    return (
        f" Telling a difference of {step} points between the {higher_name} and the "
        f"{lower_name} from noise (a 95% test with 80% power) would take about {needed:,} "
        f"values per model, {num(needed / per_model, '.2g')}× the {per_model} here."
    )


def effect_sentence(nep: NegativeProportion) -> str:
    """How the NEP intervals count values that share a batch (``nep.design_effect``; the
    models compared share one, or :func:`nep_difference` takes the larger)."""
    effective, effect = num(nep.total / nep.design_effect, ".3g"), num(nep.design_effect, ".3g")
    if nep.design_effect == 1:
        return (
            f"The intervals count the {nep.total} values of a model as independent ones (design "
            "effect 1: no correlation between the values of one batch to allow for)."
        )
    return (
        "Values of one batch need not be independent (a batch with a large negative eigenvalue "
        f"can bring several into its top-k), so the intervals count the {nep.total} values of a "
        f"model as {effective} independent ones (design effect {effect}, from the "
        "correlation of two values of one batch, pooled over the models)."
    )


def surface_reading(flatness: Mapping[str, SurfaceNumbers], roles: Roles, n_directions: int) -> str:
    """The surfaces paragraph: rises one unit away, curvature and its sign along directions."""
    fr, fv = flatness[roles.resnet], flatness[roles.vit]
    negative = {
        name: round(f.negative_directions * n_directions)
        for name, f in (("ViT", fv), ("ResNet", fr))
    }
    curving = " and ".join(
        f"{share(n, n_directions)} of them for the {name} ({n} of {n_directions})"
        for name, n in negative.items()
    )
    return (
        f"One unit along the first direction the NLL rises by {num(fr.nll)} for the ResNet and "
        f"{num(fv.nll)} for the ViT; averaged over the four unit steps (±1, 0), (0, ±1), "
        f"{compare('mean rise', ('the ViT', fv.mean), ('the ResNet', fr.mean))}. Over "
        f"{n_directions} random filter-normalised directions, "
        f"{compare('mean |dᵀHd|', ('the ViT', fv.curvature), ('the ResNet', fr.curvature))}, "
        f"and the loss curves down (dᵀHd < 0) along {curving}."
    )


def verdict_reading(rows: Sequence[Comparison]) -> str:
    """One line per row that is not reproduced, saying which way its contrast went."""
    why = {
        NOT: "its contrast is reversed or tied in this run",
        PARTLY: "the ends of its order hold in this run, an inner pair does not (or not "
        "beyond noise)",
    }
    lines = [f"- {r.claim}: {why[r.verdict]} ({r.ours})." for r in rows if r.verdict in why]
    if not lines:
        return "Every contrast of the box holds in this run."
    return "Rows whose contrast does not fully hold in this run:\n\n" + "\n".join(lines)


__all__ = [
    "Roles",
    "SpectrumNumbers",
    "batch_maxima",
    "c3_reading",
    "c4_reading",
    "effect_sentence",
    "fit_reading",
    "nep_clear",
    "nep_difference",
    "nep_text",
    "paper_comparison",
    "percent_text",
    "power_sentence",
    "protocol",
    "spectra_costs",
    "spectrum_numbers",
    "surface_reading",
    "times",
    "verdict_reading",
]
