"""Chapter 04: AlterNet — the build-up rule, AlterNet vs. ResNet vs. ViT, lesions (claim C8).

Park & Kim 2022, Sec. 4: Convs and MSAs are complementary, so a ResNet whose stage-final blocks
are MSA blocks (AlterNet) beats both. The steps below are cached on disk
(:func:`course_lib.steps.cached_step`) and registered for ``python -m course_lib precompute``;
the trained models come from :func:`course_lib.experiments.trained_model`, shared with the other
chapters wherever the architecture is the same. Tables and prose: :mod:`course_lib.report.alternet`;
figures: :mod:`course_lib.plots.alternet`; the course's closing table:
:mod:`course_lib.chapters.summary`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from course_lib.analysis.lesion import LesionResult, lesion_study
from course_lib.analysis.robustness import noise_sweep
from course_lib.chapters import precompute_step
from course_lib.config import Profile
from course_lib.experiments import TrainedModel, trained_model
from course_lib.models import create_model
from course_lib.plots.style import family_label
from course_lib.report import Comparison, verdict_from
from course_lib.report.alternet import (
    BuildUp,
    FamilyRun,
    RunSummary,
    beats,
    best_row,
    buildup_rows,
    lesion_summary,
    seed_spread,
)
from course_lib.samples import evaluation_loader
from course_lib.steps import cached_step

FAMILIES = ("resnet", "local_vit", "vit", "alternet")  # the models compared in Fig. 12
LESION_FAMILIES = ("resnet", "alternet", "local_vit")  # Fig. 10b: ResNet, AlterNet and Swin
SPREAD_SEED = 1  # a second training seed of the ResNet measures the run-to-run noise

# Paper numbers (PAPER_NOTES.md, "≈ read from" the figures).
PAPER_BUILDUP = (82.5, 83.5, 83.7, 83.8, 84.0)  # Fig. 12: accuracy with 0 … 4 MSAs, CIFAR-100
PAPER_BUILDUP_FIFTH = (83.2, 83.8)  # Fig. 12: a fifth MSA lowers it to this range
PAPER_ACCURACY = {"alternet": 84.0, "resnet": 82.5, "local_vit": 76.7, "vit": 66.5}  # Fig. 12
PAPER_CORRUPTED = {"alternet": 66.7, "resnet": 65.0, "local_vit": 60.0, "vit": 51.9}  # C-100-C
PAPER_MODELS = {
    "alternet": "AlterNet-50",
    "resnet": "ResNet-50",
    "local_vit": "Swin-Ti",
    "vit": "ViT-Ti",
}


def buildup_steps(profile: Profile) -> list[tuple[int, ...]]:
    """MSA blocks per stage at each build-up step (``profile.alternet_buildup``).

    Default when the profile names none: the plain ResNet, then the profile's AlterNet.
    """
    if profile.alternet_buildup:
        return [tuple(step) for step in profile.alternet_buildup]
    resnet = create_model(profile.models["resnet"]).config
    alternet = create_model(profile.models["alternet"]).config
    return [(0,) * len(resnet.depths), tuple(alternet.msa_blocks)]


def buildup_model(profile: Profile, msa_blocks: Sequence[int]) -> TrainedModel:
    """The profile's ResNet with ``msa_blocks`` MSA blocks per stage, trained with its budget.

    The plain ResNet and a step that *is* the profile's AlterNet (same architecture) reuse the
    shared runs of ``trained_model("resnet")`` / ``trained_model("alternet")``; other steps train
    ``trained_model(<resnet name>, msa_blocks=...)`` once and cache it.
    """
    msa_blocks = tuple(int(n) for n in msa_blocks)
    resnet_name = profile.models["resnet"]
    if not any(msa_blocks):
        return trained_model("resnet", profile=profile)
    resnet = create_model(resnet_name).config
    alternet = create_model(profile.models["alternet"]).config
    if dataclasses.replace(resnet, msa_blocks=msa_blocks) == alternet:
        return trained_model("alternet", profile=profile)
    return trained_model(resnet_name, profile=profile, msa_blocks=msa_blocks)


@precompute_step
@cached_step
def build_up(profile: Profile) -> BuildUp:
    """Train every build-up step (paper Sec. 4, Fig. 12) and return its final metrics.

    Also trains the plain ResNet with a second seed (:data:`SPREAD_SEED`): the difference
    between its two seeds is the run-to-run noise against which each step is judged
    (:func:`course_lib.report.alternet.seed_spread`).
    """
    steps = buildup_steps(profile)
    return BuildUp(
        steps=steps,
        runs=[RunSummary.of(buildup_model(profile, step)) for step in steps],
        resnet_second_seed=RunSummary.of(
            trained_model("resnet", profile=profile, seed=SPREAD_SEED)
        ),
    )


@precompute_step
@cached_step
def family_comparison(profile: Profile) -> dict[str, FamilyRun]:
    """AlterNet vs. ResNet, local ViT and ViT: accuracy, NLL, and accuracy under noise.

    The robustness column stands in for the paper's CIFAR-100-C: the mean accuracy over every
    noise band of chapter 03 (``profile.frequency.noise_centers``) at the profile's strongest noise
    magnitude (the weaker ones barely move a trained model on the synthetic data, and each
    costs as much), on the first ``profile.analysis_test_images`` test images.
    """
    magnitude = max(profile.frequency.noise_magnitudes)
    loader = evaluation_loader(profile, profile.analysis_test_images)
    out = {}
    for family in FAMILIES:
        run = trained_model(family, profile=profile)
        sweep = noise_sweep(run.model, loader, profile.frequency.noise_centers, [magnitude])
        out[family] = FamilyRun(**dataclasses.asdict(RunSummary.of(run)), noise=sweep)
    return out


@precompute_step
@cached_step
def lesions(profile: Profile) -> dict[str, LesionResult]:
    """Lesion study (paper Fig. 10b) of the trained ResNet, AlterNet and local ViT.

    Each residual unit is removed alone (:mod:`course_lib.analysis.lesion`) and the accuracy
    measured on the first ``profile.analysis_test_images`` test images (the images of the
    noise test).
    """
    loader = evaluation_loader(profile, profile.analysis_test_images)
    return {
        family: lesion_study(trained_model(family, profile=profile).model, loader)
        for family in LESION_FAMILIES
    }


def comparisons(profile: Profile) -> list[Comparison]:
    """The rows of chapter 04's "paper vs. this run" box (claim C8), verdicts from the numbers."""
    result = build_up(profile)
    buildup, spread = buildup_rows(result), seed_spread(result)
    families = family_comparison(profile)
    lesion = lesions(profile)
    order = sorted(FAMILIES, key=lambda f: -PAPER_ACCURACY[f])
    noisy = {f: r.noisy_accuracy for f, r in families.items()}

    def listing(values: dict[str, float], paper: bool = False) -> str:
        return ", ".join(
            f"{PAPER_MODELS[f] if paper else family_label(f)} {values[f]:.1f}" for f in order
        )

    def arrows(values: Sequence[str]) -> str:
        return " → ".join(values)

    noise = f"; seed spread of the ResNet {spread.test_accuracy:.2f} pp / NLL {spread.test_nll:.4f}"
    best = best_row(buildup)
    alt = families["alternet"]
    first_helped = len(buildup) > 1 and bool(buildup[1].helped and buildup[1].beyond_noise)
    rows = [
        Comparison(
            "C8: AlterNet is more accurate than ResNet and ViT (test accuracy %, NLL on ties; "
            "beyond seed noise)",
            f"{listing(PAPER_ACCURACY, paper=True)} (CIFAR-100, ≈ read from Fig. 12)",
            ", ".join(
                f"{family_label(f)} {families[f].test_accuracy:.2f} / NLL "
                f"{families[f].test_nll:.4f}"
                for f in order
            )
            + noise,
            verdict_from(
                [beats(alt, families["resnet"], spread), beats(alt, families["vit"], spread)]
            ),
        ),
        Comparison(
            "C8: build-up rule — MSAs at stage ends add accuracy (NLL on ties; beyond seed "
            "noise), up to a point",
            arrows([f"{a:.1f}" for a in PAPER_BUILDUP])
            + f" % for 0…4 MSAs; a 5th: {PAPER_BUILDUP_FIFTH[0]}–{PAPER_BUILDUP_FIFTH[1]} % "
            "(≈ read from Fig. 12)",
            arrows([f"{r.test_accuracy:.2f}" for r in buildup])
            + " % (NLL "
            + arrows([f"{r.test_nll:.4f}" for r in buildup])
            + ") for MSA blocks "
            + arrows([str(r.msa_blocks) for r in buildup])
            + noise,
            verdict_from(
                [
                    first_helped,
                    best.step > 0 and beats(result.runs[best.step], result.runs[0], spread),
                ]
            ),
        ),
        Comparison(
            "C8: AlterNet is the most robust (mean accuracy under corruption/noise, %)",
            f"{listing(PAPER_CORRUPTED, paper=True)} (CIFAR-100-C, ≈ read from Fig. 12)",
            listing(noisy) + " (band-limited noise, mean over all bands)",
            verdict_from([noisy["alternet"] > noisy["resnet"], noisy["alternet"] > noisy["vit"]]),
        ),
    ]
    res, alt_l, loc = (lesion_summary(lesion[f]) for f in ("resnet", "alternet", "local_vit"))
    rows += [
        Comparison(
            "C8: lesion — in a ResNet the early units matter most (accuracy drop, pp)",
            "first unit ≈ 13.7, then ≈ 7.3, 4.7 … down to ≈ 2.2 (≈ read from Fig. 10b)",
            f"mean drop first half {res.first_half:.1f} vs. second half "
            f"{res.second_half:.1f}; per unit "
            + ", ".join(f"{d:.1f}" for d in lesion["resnet"].drop.tolist()),
            verdict_from([res.first_half > res.second_half]),
        ),
        Comparison(
            "C8: lesion — in AlterNet the MSAs at stage ends matter most (accuracy drop, pp)",
            "Swin: largest drops at stage-end MSAs ≈ 1.96, 1.44, 1.88 (≈ read from Fig. 10b)",
            f"AlterNet mean drop MSA {alt_l.mean('msa'):.1f} vs. Conv {alt_l.mean('conv'):.1f}; "
            f"largest: {alt_l.largest_kind} unit {alt_l.largest_name} ({alt_l.largest:.1f})",
            verdict_from([alt_l.msa_matter_more, alt_l.largest_kind == "msa"]),
        ),
        Comparison(
            "C8: lesion — no single unit of a Swin-like model matters much (largest drop, pp)",
            "Swin ≤ ≈ 2 vs. ResNet ≈ 13.7 (≈ read from Fig. 10b)",
            f"local ViT {loc.largest:.1f} vs. ResNet {res.largest:.1f}",
            verdict_from([loc.largest < res.largest]),
        ),
    ]
    return rows
