"""Chapter 03: are MSAs low-pass and Convs high-pass? (claims C5, C6, C7 of Park & Kim 2022).

The chapter's models come from :meth:`~course_lib.config.Profile.frequency_profile`: where the
profile sets ``frequency.synthetic`` / ``frequency.epochs`` (laptop: the texture-dominant
default :class:`~course_lib.data.SyntheticConfig`, the shared epochs) they are trained for this
chapter alone, because which cue a model reads depends on the data's cue balance and C6's
mechanism needs a model that reads the texture; otherwise (smoke, gpu) they are the shared models
of chapters 01, 02 and 04. Every analysis uses those models *and* that profile's test images:

- :func:`feature_analysis` — one test batch through every model, one hooked forward pass each:
  the Δ log amplitude of every feature map (C5, paper Fig. 2a and 8) and its variance (C7, Fig. 9).
  :func:`feature_batches` repeats it for the paper's two models, trained with every seed of
  ``profile.seeds``, on every full test batch: the intervals behind the C5 and C7 verdicts.
- :func:`noise_robustness` — accuracy under band-limited noise for every band and magnitude of
  the profile (C6, Fig. 2b), on ``frequency.noise_images`` test images (None: the test set);
  :func:`seed_noise` repeats the verdict's magnitude for the models of the other seeds.
- :func:`cue_reliance` — accuracy on the synthetic cue-removal test sets: which cue (the
  low-frequency layout, "shape", or the high-frequency texture) each model uses, the reason
  behind C6 (Geirhos et al. 2019's shape vs. texture bias, measured).

The analyses themselves live a floor lower (:mod:`course_lib.analysis.depth_profiles`,
:mod:`course_lib.analysis.robustness`); :mod:`course_lib.report.frequency` turns the results
into sentences, verdicts and the "paper vs. this run" rows, which :func:`comparisons` builds
from the cached steps (for the chapter and for the course's closing summary in chapter 04).

Resolution. The paper analyses 224×224 ImageNet models (a 14×14 ViT grid); the laptop profile
analyses 32×32 models (a patch-4 ViT gives an 8×8 token grid: five points on the diagonal, 0,
¼π, ½π, ¾π, π), because 64×64 models would cost three to four times the training.
``frequency.image_size`` in :mod:`course_lib.config` chooses the size.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence

from torch import Tensor

from course_lib.analysis.depth_profiles import FeatureAnalysis, analyse_feature_maps
from course_lib.analysis.evaluation import tensor_batches
from course_lib.analysis.robustness import NoiseSweep, noise_sweep, split_drops
from course_lib.chapters import precompute_step
from course_lib.config import Profile, as_profile
from course_lib.data import DatasetInfo
from course_lib.experiments import TrainedModel, trained_model
from course_lib.plots.frequency_chapter import PaperCurve
from course_lib.report import Comparison
from course_lib.report.frequency import (
    FILTER_FAMILIES,
    chapter_models,
    main_magnitude,
    paper_comparison,
)
from course_lib.samples import cue_accuracies, evaluation_images
from course_lib.steps import PerModel, cached_step

FAMILIES: tuple[str, ...] = ("resnet", "vit", "local_vit")
"""Families whose feature maps (C5, C7) and cue use the chapter analyses. The ResNet and the ViT
are the paper's Fig. 2, 8 and 9; the local ViT (≈ 20 s of laptop training) shows what local
attention does to a spectrum, between a convolution and global attention. The AlterNet is left
to chapter 04: its MSA blocks sit on the last stages' 8×8 and smaller maps, where a spectrum has
five points or fewer, and it would add ≈ 35 s of training and the slowest evaluation here."""

NOISE_FAMILIES: tuple[str, ...] = ("resnet", "vit")
"""Families in the noise sweep (C6): the paper's contrast; each costs one pass per band and
magnitude over the test images."""

EVAL_BATCH = 500
"""Images per forward pass of the noise and cue tests (on 2 CPU cores, 2–3× faster per image
than batches of 128)."""

# The paper's numbers, ≈ read from its figures (shared/PAPER_NOTES.md, "Paper numbers").
_FIG2B_CENTERS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
PAPER_FIG2B = (
    PaperCurve(
        "resnet", "ResNet-50", _FIG2B_CENTERS, (5.0, 8.8, 12.7, 10.7, 10.3, 10.1, 9.7, 13.6, 15.4)
    ),
    PaperCurve("vit", "ViT-Ti", _FIG2B_CENTERS, (5.5, 12.1, 14.9, 13.4, 11.6, 9.8, 6.3, 4.3, 4.8)),
)
"""Accuracy drop (pp) of ResNet-50 and ViT-Ti per noise band (centre, units of π), ImageNet,
band width 0.1π, noise magnitude not stated (≈ read from Fig. 2b)."""

PAPER_FIG8 = (
    PaperCurve(
        "resnet",
        "ResNet-50: stem, then one value per stage",
        # stem at depth 0; stages of (3, 4, 6, 3) blocks over 16 blocks, each at its middle
        (0.0, 2 / 16, 5.5 / 16, 10.5 / 16, 15 / 16),
        (-6.6, -5.4, -3.6, -2.6, -1.0),
    ),
    PaperCurve("vit", "ViT-Ti: embedding, then its range", (0.0,), (-1.8,), band=(-2.7, -2.2)),
)
"""Δ log amplitude at 1.0π over normalized depth, ImageNet-pretrained (≈ read from Fig. 8):
ResNet-50 rises stage by stage; ViT-Ti stays between ≈ −2.7 and −2.2 after its embedding, each
MSA lowering it and each MLP raising it (except in the first blocks)."""

_PAPER_RES, _PAPER_VIT = (split_drops(c.x, c.values) for c in PAPER_FIG2B)

PAPER = {
    "C5": "ResNet-50 rises stage by stage (≈ −6.6 → −1.0); ViT-Ti stays ≈ −2.2…−2.7, every "
    "MSA lowers it and MLPs raise it (≈ read from Fig. 8, ImageNet)",
    "C6": f"ResNet-50 above ½π {_PAPER_RES.high:.1f} vs. below {_PAPER_RES.low:.1f}; ViT-Ti "
    f"{_PAPER_VIT.high:.1f} vs. {_PAPER_VIT.low:.1f} (mean drop in pp of values ≈ read from "
    "Fig. 2b, ImageNet, magnitude not stated)",
    "C7": "ViT-Ti ≈ 0.015 → 0.09, each MSA lowers it (e.g. 0.049 → 0.040); ResNet-50 grows "
    "within stages to ≈ 0.46, 0.77, 0.84 (≈ read from Fig. 9, CIFAR-100)",
}
"""The paper's side of the "paper vs. this run" box."""


def trained_runs(
    profile: Profile | str | None = None, families: tuple[str, ...] = FAMILIES, seed: int = 0
) -> dict[str, TrainedModel]:
    """The chapter's trained models by family: the :meth:`~Profile.frequency_profile`'s, at
    ``frequency.image_size``, trained with ``seed`` (:func:`~course_lib.experiments.trained_model`
    keeps them in memory and on disk)."""
    prof = as_profile(profile)
    freq, size = prof.frequency_profile(), prof.frequency.image_size
    return {
        family: trained_model(family, profile=freq, image_size=size, seed=seed)
        for family in families
    }


def evaluation_count(profile: Profile) -> int:
    """Test images per condition of the chapter's noise and cue tests: ``frequency.noise_images``
    (None: the whole test set)."""
    return profile.frequency.noise_images or profile.frequency_profile().n_test


def evaluation_set(profile: Profile, cues: str = "both") -> tuple[Tensor, Tensor, DatasetInfo]:
    """The chapter's test images, labels and data info: ``frequency.noise_images`` of them (None:
    the whole test set) from the :meth:`~Profile.frequency_profile`'s data, optionally with a cue
    removed (``cues``, synthetic data only)."""
    return evaluation_images(
        profile.frequency_profile(),
        cues=cues,
        n=evaluation_count(profile),
        image_size=profile.frequency.image_size,
    )


@precompute_step
@cached_step
def feature_analysis(profile: Profile) -> PerModel[FeatureAnalysis]:
    """C5 and C7 for every model of :data:`FAMILIES` on one test batch (paper Fig. 2a, 8, 9).

    The batch: the first ``train.batch_size`` test images (the paper uses one test batch).
    """
    runs = trained_runs(profile)
    start = time.perf_counter()
    batch = evaluation_set(profile)[0][: profile.train.batch_size]
    result = {run.name: analyse_feature_maps(run.model, batch) for run in runs.values()}
    return PerModel(result, time.perf_counter() - start)


@precompute_step
@cached_step
def feature_batches(profile: Profile) -> PerModel[list[list[FeatureAnalysis]]]:
    """:func:`feature_analysis` of the models of
    :data:`~course_lib.report.frequency.FILTER_FAMILIES`, trained with every seed of
    ``profile.seeds``, on every full batch of ``train.batch_size`` test images:
    ``models[name][s][i]`` is batch ``i`` through the model of the ``s``-th seed (seed 0, batch
    0: :func:`feature_analysis`'s). The C5 and C7 verdicts count a sign only where it holds
    beyond its interval over the batches at every seed. Costs the extra seeds' training; the
    analyses are a forward pass per batch."""
    runs = [trained_runs(profile, FILTER_FAMILIES, seed) for seed in profile.seeds]
    start = time.perf_counter()
    images, size = evaluation_set(profile)[0], profile.train.batch_size
    # full batches only; a test set smaller than one batch is one batch, as in feature_analysis
    chunks = [images[i : i + size] for i in range(0, len(images) - size + 1, size)] or [
        images[:size]
    ]
    result = {
        run.name: [[analyse_feature_maps(seed_runs[f].model, c) for c in chunks]
                   for seed_runs in runs]
        for f, run in runs[0].items()
    }  # fmt: skip
    return PerModel(result, time.perf_counter() - start, images=size)


def _noise_sweeps(
    profile: Profile, seeds: Sequence[int], magnitudes: Sequence[float]
) -> PerModel[list[NoiseSweep]]:
    """Accuracy under band-limited noise at every band of the profile and each of
    ``magnitudes``, on the :func:`evaluation_set`, for the models of :data:`NOISE_FAMILIES`
    trained with each of ``seeds``: ``models[name][s]`` is the sweep of the ``s``-th seed."""
    runs = [trained_runs(profile, NOISE_FAMILIES, seed) for seed in seeds]
    start = time.perf_counter()
    images, labels, info = evaluation_set(profile)
    batches = list(tensor_batches(images, labels, EVAL_BATCH))
    centers = profile.frequency.noise_centers
    names = chapter_models(profile)
    sweeps = {
        names[f]: [noise_sweep(seed_runs[f].model, batches, centers, magnitudes)
                   for seed_runs in runs]
        for f in NOISE_FAMILIES
    }  # fmt: skip
    return PerModel(sweeps, time.perf_counter() - start, 100 / info.num_classes, len(labels))


@precompute_step
@cached_step
def noise_robustness(profile: Profile) -> PerModel[NoiseSweep]:
    """C6: accuracy under band-limited noise, every profile band × magnitude (paper Fig. 2b).

    Models of :data:`NOISE_FAMILIES` (seed 0), the :func:`evaluation_set`, band width 0.1π, RMS
    magnitudes in normalised pixel units (the data are standardised per channel, so 1.0 is noise
    as strong as the images' own per-pixel spread). The same white noise draw is filtered into
    every band.
    """
    result = _noise_sweeps(profile, (0,), profile.frequency.noise_magnitudes)
    return dataclasses.replace(result, models={n: s[0] for n, s in result.models.items()})


@precompute_step
@cached_step
def seed_noise(profile: Profile) -> PerModel[list[NoiseSweep]]:
    """C6 for the other seeds of ``profile.seeds``: the models of :data:`NOISE_FAMILIES`
    trained with each seed after the first, swept as in :func:`noise_robustness` but at the
    magnitude the verdict reads only (:func:`~course_lib.report.frequency.main_magnitude`)."""
    return _noise_sweeps(profile, profile.seeds[1:], [main_magnitude(profile)])


def noise_by_seed(profile: Profile | str | None = None) -> dict[str, list[NoiseSweep]]:
    """Every seed's noise sweep per model of :data:`NOISE_FAMILIES`, seed 0 first (its full
    sweep, :func:`noise_robustness`), then :func:`seed_noise`'s: what C6's verdict reads."""
    prof = as_profile(profile)
    first, others = noise_robustness(prof).models, seed_noise(prof).models
    return {name: [sweep, *others.get(name, [])] for name, sweep in first.items()}


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
    runs = trained_runs(profile)
    return cue_accuracies(
        {run.name: run.model for run in runs.values()},
        profile.frequency_profile(),
        n=evaluation_count(profile),
        image_size=profile.frequency.image_size,
        batch_size=EVAL_BATCH,
    )


def step_seconds(profile: Profile | str | None = None) -> dict[str, float]:
    """Seconds each cached step took when it was computed (from the cache once they have run)."""
    prof = as_profile(profile)
    return {
        "features": feature_analysis(prof).seconds,
        "batches": feature_batches(prof).seconds,
        "noise": noise_robustness(prof).seconds,
        "seed noise": seed_noise(prof).seconds,
        "cues": cue_reliance(prof).seconds,
    }


def comparisons(profile: Profile | str | None = None) -> list[Comparison]:
    """The chapter's "paper vs. this run" rows (C5, C6, C7) from the cached steps.

    Used by the chapter and by the closing summary of chapter 04:
    :func:`~course_lib.report.frequency.paper_comparison` of :func:`feature_batches` and
    :func:`noise_by_seed` (cached, so fast once they have run).
    """
    prof = as_profile(profile)
    chance = noise_robustness(prof).chance
    return paper_comparison(feature_batches(prof).models, noise_by_seed(prof), prof, PAPER, chance)
