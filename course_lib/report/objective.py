"""Chapter 01's second reading of C1: the fit to the training images against the fit to the
training objective.

The paper's train NLL is the training objective: cross-entropy on shifted mixup/CutMix batches
with label smoothing. A model can rank differently on it than on its training images as they
are (no crops, no mixing, no smoothing): mixed targets ask how much of each image a batch item
holds, not only which class it shows, and a shift moves what the image shows. Chapter 01 puts
the two side by side (:func:`image_fit_reading`) for the local ViT against the ViT, the pair
whose order it questions.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from itertools import combinations

from course_lib.analysis.evaluation import Metrics
from course_lib.plots.style import family_label
from course_lib.report.prose import ascending
from course_lib.report.verdicts import order_verdict


def seed_relation(a: Sequence[float], b: Sequence[float]) -> str:
    """Where the mean of ``a`` sits against that of ``b``: ``"below"`` or ``"above"`` when the
    gap between the means exceeds the range over seeds of both (chapter 01's rule for a pair of
    C1's order), else ``"within the seeds' noise of"``."""
    if not a or not b:
        raise ValueError("seed_relation needs at least one value on each side")
    gap = sum(a) / len(a) - sum(b) / len(b)
    noise = max(max(a) - min(a), max(b) - min(b))
    if abs(gap) <= noise:
        return "within the seeds' noise of"
    return "below" if gap < 0 else "above"


def seed_order_verdict(
    values: Mapping[Hashable, Sequence[float]], order: Sequence[Hashable]
) -> str:
    """:func:`~course_lib.report.verdicts.order_verdict` on seed means: ``values`` maps an item
    to its values over seeds, and a pair counts as in order only where :func:`seed_relation`
    puts the first clearly below the second (C1's pairs of families, C2's steps of data)."""
    means = {key: sum(v) / len(v) for key, v in values.items()}
    clear = {(a, b): seed_relation(values[a], values[b]) == "below"
             for a, b in combinations(order, 2)}  # fmt: skip
    return order_verdict(means, order, clear)


def image_fit_reading(
    train_nll: Mapping[str, Sequence[float]], fit: Mapping[str, Sequence[Metrics]]
) -> str:
    """Sentences comparing the families on their training images (``fit``: per family, one
    :class:`Metrics` per seed) with the paper's train NLL (``train_nll``: per family, one value
    per seed, on the augmented batches). Needs the families ``"local_vit"`` and ``"vit"``."""
    for family in ("local_vit", "vit"):
        if family not in fit or family not in train_nll:
            raise ValueError(f"image_fit_reading needs the {family!r} runs")
    nll = {f: [m.nll for m in runs] for f, runs in fit.items()}
    error = {f: [m.error for m in runs] for f, runs in fit.items()}
    seeds = min(len(runs) for runs in fit.values())

    def mean_order(values: Mapping[str, Sequence[float]], fmt: str) -> str:
        means = {family_label(f): sum(v) / len(v) for f, v in values.items()}
        return ascending(means, fmt)

    on_images = seed_relation(nll["local_vit"], nll["vit"])
    on_mixed = seed_relation(train_nll["local_vit"], train_nll["vit"])
    text = (
        f"On the training images as they are (no crops, no mixing, no label smoothing; means "
        f"over {seeds} seed{'s' if seeds > 1 else ''}) the NLL orders the models as "
        f"{mean_order(nll, '.4g')} and the error (%) as {mean_order(error, '.1f')}. There the "
        f"local ViT's NLL is {on_images} the ViT's and its error is "
        f"{seed_relation(error['local_vit'], error['vit'])} the ViT's; on the augmented batches "
        f"of the paper's measure its train NLL is {on_mixed} the ViT's."
    )
    if on_mixed != "above":
        return text
    if on_images == "above":
        return text + (
            " So the local ViT fits its training images worse too, not only the augmented batches."
        )
    return text + (
        " So this local ViT fits its training images no worse than the ViT does: it falls "
        "behind only on the shifted, mixed, label-smoothed batches of the paper's objective."
    )


__all__ = ["image_fit_reading", "seed_order_verdict", "seed_relation"]
