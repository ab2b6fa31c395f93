"""Chapter 04: AlterNet — the build-up rule, AlterNet vs. ResNet vs. ViT, lesions (claim C8).

Park & Kim 2022, Sec. 4: Convs and MSAs are complementary, so a ResNet whose stage-final blocks
are MSA blocks (AlterNet) beats both. The steps below are cached on disk
(:func:`course_lib.steps.cached_step`) and registered for ``python -m course_lib precompute``;
the trained models come from :func:`course_lib.experiments.trained_model`, shared with the other
chapters wherever the architecture and seed are the same. Tables and prose:
:mod:`course_lib.report.alternet` (the build-up), :mod:`course_lib.report.families` (C8) and
:mod:`course_lib.report.lesions`; figures: :mod:`course_lib.plots.alternet`; the course's
closing table: :mod:`course_lib.chapters.summary`.
"""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Sequence

from course_lib.analysis.lesion import lesion_study
from course_lib.analysis.robustness import noise_sweep
from course_lib.chapters import precompute_step
from course_lib.config import Profile
from course_lib.experiments import TrainedModel, trained_model
from course_lib.models import create_model
from course_lib.plots.style import family_label
from course_lib.report import Comparison
from course_lib.report.alternet import (
    BuildUp,
    RunSummary,
    buildup_rows,
    buildup_verdict,
    seed_spread,
)
from course_lib.report.families import FamilyComparison, c8_numbers, c8_verdict
from course_lib.report.lesions import LesionStudy, lesion_summary, lesion_verdicts, units_at_chance
from course_lib.report.verdicts import less_verdict
from course_lib.samples import evaluation_loader
from course_lib.steps import cached_step

FAMILIES = ("resnet", "local_vit", "vit", "alternet")  # the models compared in Fig. 12
NOISE_FAMILIES = ("resnet", "alternet")  # C8's robustness contrast: AlterNet vs. its ResNet
LESION_FAMILIES = ("resnet", "alternet", "local_vit")  # Fig. 10b: ResNet, AlterNet and Swin

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
    """The profile's ResNet with ``msa_blocks`` MSA blocks per stage, trained with its budget at
    the profile's first seed (the build-up's intermediate steps have one seed each).

    The plain ResNet and a step that *is* the profile's AlterNet (same architecture) reuse the
    shared runs of ``trained_model("resnet")`` / ``trained_model("alternet")``; other steps train
    ``trained_model(<resnet name>, msa_blocks=...)`` once and cache it.
    """
    msa_blocks = tuple(int(n) for n in msa_blocks)
    resnet_name, seed = profile.models["resnet"], profile.seeds[0]
    if not any(msa_blocks):
        return trained_model("resnet", profile=profile, seed=seed)
    resnet = create_model(resnet_name).config
    alternet = create_model(profile.models["alternet"]).config
    if dataclasses.replace(resnet, msa_blocks=msa_blocks) == alternet:
        return trained_model("alternet", profile=profile, seed=seed)
    return trained_model(resnet_name, profile=profile, seed=seed, msa_blocks=msa_blocks)


@precompute_step
@cached_step
def build_up(profile: Profile) -> BuildUp:
    """Train every build-up step (paper Sec. 4, Fig. 12) and return its final metrics.

    The plain ResNet comes at every seed of ``profile.seeds`` (the runs chapter 01 trains): the
    range over its seeds is the run-to-run noise against which each step is judged
    (:func:`course_lib.report.alternet.seed_spread`).
    """
    steps = buildup_steps(profile)
    return BuildUp(
        steps=steps,
        runs=[RunSummary.of(buildup_model(profile, step), profile.seeds[0]) for step in steps],
        resnet_seeds=[
            RunSummary.of(trained_model("resnet", profile=profile, seed=seed), seed)
            for seed in profile.seeds
        ],
    )


def high_bands(profile: Profile) -> tuple[float, ...]:
    """The noise bands of C8's robustness test: the profile's band centres above ½π."""
    bands = tuple(c for c in profile.frequency.noise_centers if c > 0.5)
    if not bands:
        raise ValueError(
            f"C8's robustness test needs a noise band centred above 0.5π; the profile has "
            f"{profile.frequency.noise_centers}: add one to frequency.noise_centers"
        )
    return bands


@precompute_step
@cached_step
def family_comparison(profile: Profile) -> FamilyComparison:
    """AlterNet vs. ResNet, local ViT and ViT at every seed of ``profile.seeds``; AlterNet and
    the ResNet also under high-frequency noise (C8's robustness contrast).

    The noise stands in for the paper's CIFAR-100-C: the bands centred above ½π
    (:func:`high_bands`) at the profile's strongest magnitude, on
    ``profile.frequency.noise_images`` test images (None: the whole test set; the accuracy of a
    model on 2,000 images is known to ± 1 point or so).
    """
    magnitude = max(profile.frequency.noise_magnitudes)
    loader = evaluation_loader(profile, profile.frequency.noise_images)
    runs, noise = {}, {}
    for family in FAMILIES:
        trained = {
            seed: trained_model(family, profile=profile, seed=seed) for seed in profile.seeds
        }
        runs[family] = [RunSummary.of(run, seed) for seed, run in trained.items()]
        if family in NOISE_FAMILIES:
            noise[family] = [
                noise_sweep(run.model, loader, high_bands(profile), [magnitude])
                for run in trained.values()
            ]
    return FamilyComparison(runs=runs, noise=noise)


@precompute_step
@cached_step
def lesions(profile: Profile) -> LesionStudy:
    """Lesion study (paper Fig. 10b) of the trained ResNet, AlterNet and local ViT, at the
    profile's first seed.

    Each residual unit is removed alone (:mod:`course_lib.analysis.lesion`) and the accuracy
    measured on the first ``profile.analysis_test_images`` test images.
    """
    loader = evaluation_loader(profile, profile.analysis_test_images)
    runs = {f: trained_model(f, profile=profile, seed=profile.seeds[0]) for f in LESION_FAMILIES}
    return LesionStudy(
        results={f: lesion_study(run.model, loader) for f, run in runs.items()},
        chance=100.0 / runs["resnet"].num_classes,
    )


def _arrows(values: Sequence[str]) -> str:
    return " → ".join(values)


def comparisons(profile: Profile) -> list[Comparison]:
    """The rows of chapter 04's "paper vs. this run" box, verdicts from the numbers.

    Only the first row, the contrast declared for C8
    (:func:`course_lib.report.verdicts.alternet_verdict`), starts with "C8" and so decides the
    claim in the course's closing table; the others check the paper's figures behind it (the
    build-up, AlterNet vs. ViT, the lesion study) and are shown beside it.
    """
    result, families, study = build_up(profile), family_comparison(profile), lesions(profile)
    buildup, spread = buildup_rows(result), seed_spread(result)
    verdict, which = c8_verdict(families)
    mean_acc = {f: statistics.fmean(families.accuracy(f).values()) for f in FAMILIES}
    rows = [
        Comparison(
            "C8: AlterNet at least as good as its ResNet on accuracy or on high-frequency "
            "robustness (means over seeds; normalised drop, bands above 0.5π)",
            f"accuracy {PAPER_ACCURACY['alternet']} vs. {PAPER_ACCURACY['resnet']} %, "
            f"CIFAR-100-C {PAPER_CORRUPTED['alternet']} vs. {PAPER_CORRUPTED['resnet']} % "
            "(AlterNet-50 vs. ResNet-50, ≈ read from Fig. 12)",
            f"{c8_numbers(families)}; at least as good on: {which}",
            verdict,
        ),
        Comparison(
            "Fig. 12: AlterNet more accurate than ViT (mean test accuracy over seeds, %)",
            f"{PAPER_ACCURACY['alternet']} vs. {PAPER_ACCURACY['vit']} (≈ read from Fig. 12)",
            f"{mean_acc['alternet']:.2f} vs. {mean_acc['vit']:.2f}",
            less_verdict(mean_acc["vit"], mean_acc["alternet"]),
        ),
        Comparison(
            "Fig. 12, build-up: each stage-end MSA adds accuracy (NLL on ties), beyond the "
            "ResNet's range over seeds",
            _arrows([f"{a:.1f}" for a in PAPER_BUILDUP])
            + f" % for 0…4 MSAs; a 5th: {PAPER_BUILDUP_FIFTH[0]}–{PAPER_BUILDUP_FIFTH[1]} % "
            "(≈ read from Fig. 12)",
            _arrows([f"{r.test_accuracy:.2f}" for r in buildup])
            + " % (NLL "
            + _arrows([f"{r.test_nll:.4f}" for r in buildup])
            + ") for MSA blocks "
            + _arrows([str(r.msa_blocks) for r in buildup])
            + f", one seed each; ResNet range over {spread.seeds} seed(s) "
            f"{spread.test_accuracy:.2f} pp / NLL {spread.test_nll:.4f}",
            buildup_verdict(buildup),
        ),
    ]
    summary = {f: lesion_summary(r) for f, r in study.results.items()}
    res, alt, loc = (summary[f] for f in ("resnet", "alternet", "local_vit"))
    lesion = lesion_verdicts(study)
    gone = {f: len(units_at_chance(r, study.chance)) for f, r in study.results.items()}
    at_chance = ", ".join(
        f"{n} of {len(study.results[f].names)} {family_label(f)} lesions" for f, n in gone.items()
    )
    rows += [
        Comparison(
            "Fig. 10b, lesion: in a ResNet the early units matter most (accuracy drop, pp)",
            "first unit ≈ 13.7, then ≈ 7.3, 4.7 … down to ≈ 2.2 (≈ read from Fig. 10b)",
            f"mean drop first half {res.first_half:.1f} vs. second half "
            f"{res.second_half:.1f}; per unit "
            + ", ".join(f"{d:.1f}" for d in study.results["resnet"].drop.tolist()),
            lesion["resnet_early"],
        ),
        Comparison(
            "Fig. 10b, lesion: in AlterNet the MSAs at stage ends matter most (accuracy drop, pp)",
            "Swin: largest drops at stage-end MSAs ≈ 1.96, 1.44, 1.88 (≈ read from Fig. 10b)",
            f"AlterNet mean drop MSA {alt.mean('msa'):.1f} vs. Conv {alt.mean('conv'):.1f}; "
            f"largest: {alt.largest_kind} unit {alt.largest_name} ({alt.largest:.1f})",
            lesion["alternet_msa"],
        ),
        Comparison(
            "Fig. 10b, lesion: no single unit of a Swin-like model matters much (largest drop, pp)",
            "Swin ≤ ≈ 2 vs. ResNet ≈ 13.7 (≈ read from Fig. 10b)",
            f"local ViT {loc.largest:.1f} vs. ResNet {res.largest:.1f}; lesions that reach "
            f"chance ({study.chance:.0f} %, they cannot rank units): {at_chance}",
            lesion["local_small"],
        ),
    ]
    return rows
