"""Chapter 01 — inductive bias (claims C1, C2): the three families trained with one budget.

- :func:`family_runs` trains (or loads from the cache) ResNet, local ViT, ViT and, as a
  preview of chapter 04, AlterNet with the profile's shared recipe at seed 0, and returns a
  :class:`~course_lib.report.inductive_bias.RunRecord` (model, parameters, training history,
  final metrics) for each. These are the shared models that chapters 02–04 analyse.
- :func:`seed_runs` adds the other seeds of ``profile.seeds`` for the three C1 families: C1
  compares families by accuracy, so its verdicts use the seed means and show the spread.
- :func:`fraction_sweep` trains the ViT on the class-balanced fractions
  ``profile.data_fractions`` with the same number of optimisation steps for every fraction, at
  every seed of ``profile.seeds``: C2's steps are weighed against the seeds' noise as C1's
  pairs are.
- :func:`cue_reliance` tests which of the synthetic data's two cues each C1 family learned
  (seed 0): a ViT that learned neither would explain a C1 or C2 row that does not show.
- :func:`image_fit` measures each C1 family's NLL and error on its training images as they are
  (no crops, no mixing): beside the paper's train NLL on the augmented batches, it tells a
  model that fits its images worse from one that fits only the augmented batches worse.
- :func:`c1_comparisons` / :func:`c2_comparisons` turn the measured values into the rows of the
  "paper vs. this run" box, with verdicts from :mod:`course_lib.report.verdicts`.

The records and sentences of the chapter are in :mod:`course_lib.report.inductive_bias`, the
table of its models in :mod:`course_lib.report.architectures`, its figures in
:mod:`course_lib.plots.inductive_bias`, its widget in :mod:`course_lib.widgets.inductive_bias`.

Train NLL is the paper's: the training objective (mixup/CutMix and label smoothing where the
profile trains with them, as the ``laptop`` and ``gpu`` profiles do) on one fixed augmented pass
over the training set at the final weights (:func:`course_lib.train.augmented_pass`).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

from course_lib.analysis.evaluation import Metrics, evaluate
from course_lib.chapters import precompute_step
from course_lib.config import Profile, as_profile
from course_lib.experiments import resolve_model_name, trained_model
from course_lib.plots.style import family_label
from course_lib.report import Comparison
from course_lib.report.inductive_bias import (
    C1_FAMILIES,
    PREVIEW_FAMILIES,
    RunRecord,
    mean_final,
    run_record,
    spread_text,
)
from course_lib.report.objective import image_fit_reading, seed_order_verdict
from course_lib.report.verdicts import same_order_verdict
from course_lib.samples import cue_accuracies, evaluation_loader
from course_lib.steps import PerModel, cached_step

#: Paper Fig. 5a (CIFAR-100, ≈ read from the figure): test error (%) and train NLL on augmented
#: data of ResNet-50 (Conv), Swin-Ti (local MSA) and ViT-Ti (global MSA); every model of the
#: figure in :data:`PAPER_FIG5A`.
PAPER_C1: dict[str, dict[str, float | str]] = {
    "resnet": {"model": "ResNet-50", "test_error": 17.3, "train_nll": 2.09},
    "local_vit": {"model": "Swin-Ti", "test_error": 23.3, "train_nll": 2.23},
    "vit": {"model": "ViT-Ti", "test_error": 33.5, "train_nll": 2.52},
}
#: Paper Fig. 5a, every model: (test error %, train NLL) (PAPER_NOTES, ≈ read from the figure).
PAPER_FIG5A: dict[str, tuple[float, float]] = {
    "ResNet-50": (17.3, 2.09),
    "ResNeXt-50": (17.7, 2.10),
    "Twins-S": (22.4, 2.17),
    "Swin-Ti": (23.3, 2.23),
    "PiT-Ti": (24.0, 2.30),
    "ViT-Ti": (33.5, 2.52),
    "Mixer-Ti": (35.4, 2.57),
}
#: Paper Fig. 5b (ViT-Ti on class-balanced CIFAR-100 subsets, ≈ read from the figure).
PAPER_C2: dict[str, tuple[float, ...]] = {
    "fraction": (1 / 64, 1 / 32, 1 / 16, 1 / 8, 1 / 4, 1 / 2, 1.0),
    "test_error": (89.9, 83.2, 75.2, 63.9, 53.7, 44.1, 34.8),
    "train_nll": (3.89, 3.57, 3.53, 3.31, 3.03, 2.76, 2.57),
}


#: The rows of the box for C1 and C2: (metric, label, unit, format). "#.3g" prints 2.00, not 2,
#: beside 1.99.
BOX_METRICS: tuple[tuple[str, str, str, str], ...] = (
    ("train_nll", "train NLL", "", "#.3g"),
    ("test_error", "test error", " %", ".1f"),
)


# The two steps are not wrapped in ``@cached_step``: a record is rebuilt in milliseconds from the
# run that ``trained_model`` already caches on disk (and memoises in memory), and a second copy
# of the histories in the step cache would add nothing but a key to keep in sync.


@precompute_step
def family_runs(
    profile: Profile | str | None = None,
    families: Sequence[str] = C1_FAMILIES + PREVIEW_FAMILIES,
) -> dict[str, RunRecord]:
    """Train or load each family with the profile's shared recipe (claim C1).

    Returns ``{family: RunRecord}``. The runs are the profile's shared models
    (``trained_model(family, profile=profile)``), cached on disk.
    """
    prof = as_profile(profile)
    return {family: run_record(trained_model(family, profile=prof)) for family in families}


@precompute_step
def seed_runs(profile: Profile | str | None = None) -> dict[str, list[RunRecord]]:
    """Each C1 family at every seed of ``profile.seeds`` (seed 0 first: the shared model)."""
    prof = as_profile(profile)
    return {
        family: [run_record(trained_model(family, profile=prof, seed=s)) for s in prof.seeds]
        for family in C1_FAMILIES
    }


@precompute_step
def fraction_sweep(profile: Profile | str | None = None) -> dict[float, list[RunRecord]]:
    """The ViT trained on each of ``profile.data_fractions`` (claim C2), smallest first, at
    every seed of ``profile.seeds`` (seed 0 first; a seed also draws its own class-balanced
    subset, so the seeds' spread holds the choice of images too).

    Every fraction gets the same number of optimisation steps (``trained_model`` scales the
    epochs by ``1 / fraction``). Returns ``{fraction: [RunRecord per seed]}``; fraction 1.0 is
    the shared ViT and its C1 seeds.
    """
    prof = as_profile(profile)
    return {
        f: [run_record(trained_model("vit", profile=prof, fraction=f, seed=s)) for s in prof.seeds]
        for f in sorted(prof.data_fractions)
    }


@precompute_step
@cached_step
def cue_reliance(profile: Profile) -> PerModel[dict[str, float]]:
    """Accuracy (%) of each C1 family (seed 0) on the cue-removal test sets (layout only,
    texture only, neither), ``profile.analysis_test_images`` images each: which cue it learned
    (:func:`course_lib.samples.cue_accuracies`). Empty for data without cue sets (CIFAR)."""
    if profile.data != "synthetic":
        return PerModel({}, float("nan"))
    runs = [trained_model(family, profile=profile) for family in C1_FAMILIES]
    return cue_accuracies({run.name: run.model for run in runs}, profile)


@precompute_step
@cached_step
def image_fit(profile: Profile) -> PerModel[list[Metrics]]:
    """NLL and error of each C1 family at every seed of ``profile.seeds`` on the whole training
    set as it is: no crops, no mixup/CutMix, no label smoothing (``{model name: [Metrics per
    seed]}``). The paper's train NLL is the training objective; this is the fit to the images."""
    start = time.perf_counter()
    loader = evaluation_loader(profile, train=True, batch_size=500)
    result = {
        resolve_model_name(family, profile): [
            evaluate(trained_model(family, profile=profile, seed=s).model, loader)
            for s in profile.seeds
        ]
        for family in C1_FAMILIES
    }
    return PerModel(result, time.perf_counter() - start, images=len(loader.dataset))


def image_fit_text(profile: Profile | str | None = None) -> str:
    """Chapter 01's reading of :func:`image_fit` beside the paper's train NLL of the same runs
    (:func:`seed_runs`): does the local ViT fit its images worse, or only the augmented ones?"""
    prof = as_profile(profile)
    by_seed, fit = seed_runs(prof), image_fit(prof).models
    return image_fit_reading(
        {f: [r.final.train_nll for r in by_seed[f]] for f in C1_FAMILIES},
        {f: fit[resolve_model_name(f, prof)] for f in C1_FAMILIES},
    )


def c1_comparisons(by_seed: Mapping[str, Sequence[RunRecord]]) -> list[Comparison]:
    """Rows of the paper-vs-run box for C1 from :func:`seed_runs`: seed means (min–max).

    The train-NLL order and the underfitting row are C1's declared test; the test-error order
    is shown beside them (not counted in the closing table). A pair of an order counts only
    when the gap between its means exceeds the range over seeds of either family
    (:func:`~course_lib.report.objective.seed_order_verdict`, which C2's steps use too)."""
    mean = {f: mean_final(by_seed[f]) for f in C1_FAMILIES}
    means = {m: {f: getattr(mean[f], m) for f in C1_FAMILIES} for m in ("train_nll", "test_error")}
    seeds = min(len(by_seed[f]) for f in C1_FAMILIES)
    rows = []
    for metric, label, unit, fmt in BOX_METRICS:
        values = {f: [getattr(r.final, metric) for r in by_seed[f]] for f in C1_FAMILIES}
        paper = " < ".join(
            f"{PAPER_C1[f]['model']} {PAPER_C1[f][metric]}{unit}" for f in C1_FAMILIES
        )
        ours = " | ".join(f"{spread_text(values[f], fmt)}{unit}" for f in C1_FAMILIES)
        if seeds > 1:
            ours += "; a pair counts when its gap exceeds both families' ranges over seeds"
        rows.append(
            Comparison(
                claim=f"C1: {label} ResNet < local ViT < ViT",
                paper=f"{paper} (CIFAR-100, ≈ read from Fig. 5a)",
                ours=f"ResNet | local ViT | ViT, mean (min–max) of {seeds} seed(s): {ours}",
                verdict=seed_order_verdict(values, C1_FAMILIES),
                counted=metric == "train_nll",  # C1's declared test: the train-NLL order
            )
        )
    rows.append(
        Comparison(
            claim="C1: the ViT underfits: higher train NLL goes with higher test error",
            paper="train NLL and test error rank all seven models of Fig. 5a alike",
            ours="train NLL order "
            + " < ".join(family_label(f) for f in sorted(C1_FAMILIES, key=means["train_nll"].get))
            + "; test error order "
            + " < ".join(family_label(f) for f in sorted(C1_FAMILIES, key=means["test_error"].get)),
            verdict=same_order_verdict(means["train_nll"], means["test_error"]),
        )
    )
    return rows


def c2_comparisons(sweep: Mapping[float, Sequence[RunRecord]]) -> list[Comparison]:
    """Rows of the paper-vs-run box for C2 from :func:`fraction_sweep`'s result: the train-NLL
    trend (C2's declared test) and, beside it, the test-error trend of the same figure.

    Each fraction's value is its seed mean. A step counts when the gap between the two means
    exceeds the range over seeds of either fraction, C1's rule for a pair
    (:func:`~course_lib.report.objective.seed_order_verdict`, largest fraction first): the larger
    fraction must be clearly below the smaller one, for every pair.
    """
    fractions = sorted(sweep)
    seeds = min(len(sweep[f]) for f in fractions)
    rows = []
    for metric, label, unit, fmt in BOX_METRICS:
        values = {f: [getattr(r.final, metric) for r in sweep[f]] for f in fractions}
        paper = PAPER_C2[metric]
        ours = ", ".join(f"{f:.0%}: {spread_text(values[f], fmt)}{unit}" for f in fractions)
        ours = f"mean (min–max) of {seeds} seed(s): {ours}"
        if seeds > 1:
            ours += "; a step counts when its gap exceeds both fractions' ranges over seeds"
        rows.append(
            Comparison(
                claim=f"C2: ViT's {label} falls as the training set grows",
                paper=f"{paper[0]}{unit} at 1/64 → {paper[-1]}{unit} with all of CIFAR-100 "
                f"(≈ read from Fig. 5b)",
                ours=ours,
                verdict=seed_order_verdict(values, fractions[::-1]),
                counted=metric == "train_nll",  # C2's declared test: the train-NLL trend
            )
        )
    return rows


def comparisons(profile: Profile | str | None = None) -> list[Comparison]:
    """The chapter's whole "paper vs. this run" box (C1 and C2 rows) for a profile.

    Runs :func:`seed_runs` and :func:`fraction_sweep` (cached runs) and builds the rows; the
    notebook and the course summary (chapter 04) both call this.
    """
    prof = as_profile(profile)
    return c1_comparisons(seed_runs(prof)) + c2_comparisons(fraction_sweep(prof))


__all__ = [
    "C1_FAMILIES",
    "PAPER_C1",
    "PAPER_C2",
    "PAPER_FIG5A",
    "PREVIEW_FAMILIES",
    "c1_comparisons",
    "c2_comparisons",
    "comparisons",
    "cue_reliance",
    "family_runs",
    "fraction_sweep",
    "image_fit",
    "image_fit_text",
    "seed_runs",
]
