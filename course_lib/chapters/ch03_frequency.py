"""Chapter 03: are MSAs low-pass and Convs high-pass? (claims C5, C6, C7 of Park & Kim 2022).

Three cached steps analyse the profile's trained models (shared with the other chapters through
:func:`~course_lib.experiments.trained_model`):

- :func:`feature_analysis` — one test batch through every model, one hooked forward pass each:
  the Δ log amplitude of every feature map (C5, paper Fig. 2a and 8) and its variance (C7, Fig. 9).
- :func:`noise_robustness` — accuracy under band-limited noise for every band and magnitude of
  the profile (C6, Fig. 2b).
- :func:`cue_reliance` — accuracy on the synthetic cue-removal test sets: which cue (the
  low-frequency layout, "shape", or the high-frequency texture) each model uses, the reason
  behind C6 (Geirhos et al. 2019's shape vs. texture bias, measured).

The analyses themselves live a floor lower: :mod:`course_lib.analysis.depth_profiles` (what
each block changes), :mod:`course_lib.analysis.robustness` (noise sweeps, band drops), and
:mod:`course_lib.report.frequency` turns the results into prose numbers and the "paper vs. this
run" rows. :func:`comparisons` builds those rows from the cached steps (for the chapter and for
the course's closing summary in chapter 04).

Resolution. Feature maps must be at least 8×8 to show a spectrum. The paper analyses 224×224
ImageNet models (a 14×14 ViT grid); the laptop profile analyses the shared 32×32 models (a
patch-4 ViT gives an 8×8 token grid: five points on the diagonal, 0, ¼π, ½π, ¾π, π), because
models trained at 64×64 would cost three to four times the shared training. ``frequency.image_size``
in :mod:`course_lib.config` chooses the size; when it equals ``image_size`` the shared models
are reused.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Generic, TypeVar

from course_lib.analysis.depth_profiles import FeatureAnalysis, analyse_feature_maps
from course_lib.analysis.evaluation import accuracy, tensor_batches
from course_lib.analysis.robustness import NoiseSweep, noise_sweep, split_drops
from course_lib.chapters import precompute_step
from course_lib.config import Profile, as_profile
from course_lib.data import CUES
from course_lib.experiments import TrainedModel, trained_model
from course_lib.report import Comparison
from course_lib.report.frequency import paper_comparison
from course_lib.samples import evaluation_images
from course_lib.steps import cached_step

T = TypeVar("T")

FAMILIES: tuple[str, ...] = ("resnet", "vit", "local_vit", "alternet")
"""Model families whose feature maps the chapter analyses (C5, C7) and whose cue use it tests."""

NOISE_FAMILIES: tuple[str, ...] = ("resnet", "vit")
"""Families in the noise sweep (C6): the paper's contrast; each costs one pass per band and
magnitude."""

PAPER_FIG2B = {
    "centers": (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9),
    "resnet": (5.0, 8.8, 12.7, 10.7, 10.3, 10.1, 9.7, 13.6, 15.4),
    "vit": (5.5, 12.1, 14.9, 13.4, 11.6, 9.8, 6.3, 4.3, 4.8),
}
"""Accuracy drop (pp) of ResNet-50 and ViT-Ti per noise band, ≈ read from Fig. 2b (ImageNet)."""

_PAPER_RES = split_drops(PAPER_FIG2B["centers"], PAPER_FIG2B["resnet"])
_PAPER_VIT = split_drops(PAPER_FIG2B["centers"], PAPER_FIG2B["vit"])

PAPER = {
    "C5": "ResNet-50 rises stage by stage (≈ −6.6 → −1.0); ViT-Ti stays ≈ −2.2…−2.7, every "
    "MSA lowers it and MLPs raise it (≈ read from Fig. 8, ImageNet)",
    "C6": f"mean drop above ½π: ResNet-50 {_PAPER_RES.high:.1f}, ViT-Ti {_PAPER_VIT.high:.1f}; "
    f"below ½π: {_PAPER_RES.low:.1f}, {_PAPER_VIT.low:.1f} (means of values ≈ read from "
    "Fig. 2b, ImageNet, magnitude not stated)",
    "C7": "ViT-Ti ≈ 0.015 → 0.09, each MSA lowers it (e.g. 0.049 → 0.040); ResNet-50 grows "
    "within stages to ≈ 0.46, 0.77, 0.84 (≈ read from Fig. 9, CIFAR-100)",
}
"""The paper's side of the "paper vs. this run" box."""


@dataclass
class PerModel(Generic[T]):
    """A step's result for every model it analysed, keyed by registered model name."""

    models: dict[str, T]
    seconds: float  # how long the step took when it was computed (NaN: nothing to compute)


def _runs(profile: Profile, families: tuple[str, ...]) -> list[TrainedModel]:
    """The profile's trained models at ``frequency.image_size`` (the shared runs when it equals
    ``image_size``); :func:`~course_lib.experiments.trained_model` keeps them in memory."""
    size = profile.frequency.image_size
    return [trained_model(family, profile=profile, image_size=size) for family in families]


@precompute_step
@cached_step
def feature_analysis(profile: Profile) -> PerModel[FeatureAnalysis]:
    """C5 and C7 for every model of :data:`FAMILIES` on one test batch (paper Fig. 2a, 8, 9).

    The batch: the first ``train.batch_size`` test images (the paper uses one test batch).
    """
    runs = _runs(profile, FAMILIES)
    start = time.perf_counter()
    images, _, _ = evaluation_images(profile, image_size=profile.frequency.image_size)
    batch = images[: profile.train.batch_size]
    result = {run.name: analyse_feature_maps(run.model, batch) for run in runs}
    return PerModel(result, time.perf_counter() - start)


@precompute_step
@cached_step
def noise_robustness(profile: Profile) -> PerModel[NoiseSweep]:
    """C6: accuracy under band-limited noise, every profile band × magnitude (paper Fig. 2b).

    Models of :data:`NOISE_FAMILIES`, ``analysis_test_images`` test images, band width 0.1π,
    RMS magnitudes in normalised pixel units (the data are standardised per channel, so 1.0 is
    noise as strong as the images' own per-pixel spread). The same white noise draw is filtered
    into every band.
    """
    runs = _runs(profile, NOISE_FAMILIES)
    start = time.perf_counter()
    images, labels, _ = evaluation_images(profile, image_size=profile.frequency.image_size)
    bands = profile.frequency.noise_centers, profile.frequency.noise_magnitudes
    sweeps = {
        run.name: noise_sweep(
            run.model, list(tensor_batches(images, labels, profile.train.batch_size)), *bands
        )
        for run in runs
    }
    return PerModel(sweeps, time.perf_counter() - start)


@precompute_step
@cached_step
def cue_reliance(profile: Profile) -> PerModel[dict[str, float]]:
    """Accuracy (%) of every model on each cue-removal test set: ``{model: {cues: accuracy}}``.

    ``"low"`` keeps only the low-frequency colour layout ("shape"), ``"high"`` only the texture,
    ``"none"`` neither (chance level). A model that keeps its accuracy on ``"high"`` but not on
    ``"low"`` relies on the texture (texture-biased), and conversely. Empty for data without cue
    sets (CIFAR, image folders).
    """
    if profile.data != "synthetic":
        return PerModel({}, float("nan"))
    runs = _runs(profile, FAMILIES)
    start = time.perf_counter()
    size = profile.frequency.image_size
    sets = {cues: evaluation_images(profile, cues=cues, image_size=size)[:2] for cues in CUES}
    result = {run.name: {cues: accuracy(run.model, *sets[cues]) for cues in CUES} for run in runs}
    return PerModel(result, time.perf_counter() - start)


def step_seconds(profile: Profile | str | None = None) -> dict[str, float]:
    """Seconds each cached step took when it was computed (from the cache once they have run)."""
    prof = as_profile(profile)
    return {
        "features": feature_analysis(prof).seconds,
        "noise": noise_robustness(prof).seconds,
        "cues": cue_reliance(prof).seconds,
    }


def comparisons(profile: Profile | str | None = None) -> list[Comparison]:
    """The chapter's "paper vs. this run" rows (C5, C6, C7) from the cached steps.

    Used by the chapter and by the closing summary of chapter 04:
    :func:`~course_lib.report.frequency.paper_comparison` of :func:`feature_analysis` and
    :func:`noise_robustness` (cached, so fast once they have run).
    """
    prof = as_profile(profile)
    analyses, sweeps = feature_analysis(prof).models, noise_robustness(prof).models
    return paper_comparison(analyses, sweeps, prof, PAPER)
