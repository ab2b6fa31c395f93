"""Chapter 01 — inductive bias (claims C1, C2): the three families trained with one budget.

- :func:`family_runs` trains (or loads from the cache) ResNet, local ViT, ViT and, as a
  preview of chapter 04, AlterNet with the profile's shared recipe, and returns a
  :class:`~course_lib.report.inductive_bias.RunRecord` (model, parameters, training history,
  final metrics) for each. These are the shared models that chapters 02–04 analyse, so they
  are requested with the profile defaults.
- :func:`fraction_sweep` trains the ViT on the class-balanced fractions
  ``profile.data_fractions`` with the same number of optimisation steps for every fraction.
- :func:`c1_comparisons` / :func:`c2_comparisons` turn the measured values into the rows of the
  "paper vs. this run" box, with verdicts computed from the numbers.

The records, tables and sentences of the chapter are in :mod:`course_lib.report.inductive_bias`,
its figures in :mod:`course_lib.plots.inductive_bias`, its widget in
:mod:`course_lib.widgets.inductive_bias`.

Train NLL is the one :func:`course_lib.train.fit` logs: the mean over the last epoch's
*augmented* training batches, measured while training — as the paper reports it (its Fig. 5
uses train NLL on augmented data). The ``laptop`` profile augments with random crops and flips
only; the ``gpu`` profile adds RandAugment and mixup/CutMix like the paper.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import pairwise

from course_lib.chapters import precompute_step
from course_lib.config import Profile, as_profile
from course_lib.experiments import trained_model
from course_lib.plots.style import family_label
from course_lib.report import Comparison, ordered, verdict_from
from course_lib.report.inductive_bias import C1_FAMILIES, PREVIEW_FAMILIES, RunRecord, run_record

#: Paper Fig. 5a (CIFAR-100, ≈ read from the figure): test error (%) and train NLL on augmented
#: data of ResNet-50 (Conv), Swin-Ti (local MSA) and ViT-Ti (global MSA).
PAPER_C1: dict[str, dict[str, float | str]] = {
    "resnet": {"model": "ResNet-50", "test_error": 17.3, "train_nll": 2.09},
    "local_vit": {"model": "Swin-Ti", "test_error": 23.3, "train_nll": 2.23},
    "vit": {"model": "ViT-Ti", "test_error": 33.5, "train_nll": 2.52},
}
#: Paper Fig. 5b (ViT-Ti on class-balanced CIFAR-100 subsets, ≈ read from the figure).
PAPER_C2: dict[str, tuple[float, ...]] = {
    "fraction": (1 / 64, 1 / 32, 1 / 16, 1 / 8, 1 / 4, 1 / 2, 1.0),
    "test_error": (89.9, 83.2, 75.2, 63.9, 53.7, 44.1, 34.8),
    "train_nll": (3.89, 3.57, 3.53, 3.31, 3.03, 2.76, 2.57),
}


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
def fraction_sweep(profile: Profile | str | None = None) -> dict[float, RunRecord]:
    """The ViT trained on each of ``profile.data_fractions`` (claim C2), smallest first.

    Every fraction gets the same number of optimisation steps (``trained_model`` scales the
    epochs by ``1 / fraction``). Returns ``{fraction: RunRecord}``; fraction 1.0 is the shared
    ViT.
    """
    prof = as_profile(profile)
    return {
        f: run_record(trained_model("vit", profile=prof, fraction=f))
        for f in sorted(prof.data_fractions)
    }


def _pairwise_decreasing(values: Sequence[float]) -> list[bool]:
    return [b < a for a, b in pairwise(values)]


def c1_comparisons(runs: Mapping[str, RunRecord]) -> list[Comparison]:
    """Rows of the paper-vs-run box for C1, verdicts computed from :func:`family_runs`'s result."""
    final = {f: runs[f].final for f in C1_FAMILIES}
    rows = []
    for metric, label, unit in (("train_nll", "train NLL", ""), ("test_error", "test error", " %")):
        values = {f: getattr(final[f], metric) for f in C1_FAMILIES}
        paper = " < ".join(
            f"{PAPER_C1[f]['model']} {PAPER_C1[f][metric]}{unit}" for f in C1_FAMILIES
        )
        fmt = ".3g" if metric == "train_nll" else ".1f"
        ours = " | ".join(f"{values[f]:{fmt}}{unit}" for f in C1_FAMILIES)
        rows.append(
            Comparison(
                claim=f"C1: {label} ResNet < local ViT < ViT",
                paper=f"{paper} (CIFAR-100, ≈ read from Fig. 5a)",
                ours=f"ResNet | local ViT | ViT: {ours}",
                verdict=verdict_from([ordered(values, pair) for pair in pairwise(C1_FAMILIES)]),
            )
        )
    gaps = {f: final[f].nll_gap for f in C1_FAMILIES}
    rows.append(
        Comparison(
            claim="C1: ViT underfits, it does not overfit (its test − train NLL gap is not "
            "larger than the convolutional ResNet's or the local ViT's)",
            paper="higher train NLL goes with higher test error across all models "
            "(≈ read from Fig. 5a)",
            ours="test − train NLL: "
            + ", ".join(f"{family_label(f)} {gaps[f]:+.3f}" for f in C1_FAMILIES),
            verdict=verdict_from([gaps["vit"] <= gaps["resnet"], gaps["vit"] <= gaps["local_vit"]]),
        )
    )
    return rows


def c2_comparisons(sweep: Mapping[float, RunRecord]) -> list[Comparison]:
    """Rows of the paper-vs-run box for C2 from :func:`fraction_sweep`'s result."""
    fractions = sorted(sweep)
    rows = []
    for metric, label, unit in (("train_nll", "train NLL", ""), ("test_error", "test error", " %")):
        values = [getattr(sweep[f].final, metric) for f in fractions]
        paper = PAPER_C2[metric]
        fmt = ".3g" if metric == "train_nll" else ".1f"
        rows.append(
            Comparison(
                claim=f"C2: ViT's {label} falls as the training set grows",
                paper=f"{paper[0]}{unit} at 1/64 → {paper[-1]}{unit} with all of CIFAR-100 "
                f"(≈ read from Fig. 5b)",
                ours=", ".join(
                    f"{f:.0%}: {v:{fmt}}{unit}" for f, v in zip(fractions, values, strict=True)
                ),
                verdict=verdict_from(_pairwise_decreasing(values)),
            )
        )
    return rows


def comparisons(profile: Profile | str | None = None) -> list[Comparison]:
    """The chapter's whole "paper vs. this run" box (C1 and C2 rows) for a profile.

    Runs :func:`family_runs` and :func:`fraction_sweep` (cached runs) and builds the rows; the
    notebook and the course summary (chapter 04) both call this.
    """
    prof = as_profile(profile)
    return c1_comparisons(family_runs(prof)) + c2_comparisons(fraction_sweep(prof))


__all__ = [
    "C1_FAMILIES",
    "PAPER_C1",
    "PAPER_C2",
    "PREVIEW_FAMILIES",
    "c1_comparisons",
    "c2_comparisons",
    "comparisons",
    "family_runs",
    "fraction_sweep",
]
