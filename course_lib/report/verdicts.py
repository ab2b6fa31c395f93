"""Each claim's verdict, from a test of that claim's own contrast (declared before the run).

A verdict is "reproduced" when the whole contrast holds, "partly" when part of it holds and
nothing in it is reversed, and "not reproduced" when the contrast's core is reversed or none of
it holds. The chapters pass measured numbers in; these functions know nothing of models.

| claim | contrast tested |
|---|---|
| C1 | train NLL Conv < local MSA < global MSA, each pair beyond noise (:func:`order_verdict`); |
| | underfitting: the train-NLL order is the test-error order (:func:`same_order_verdict`) |
| C2 | ViT train NLL falls with more data, each step beyond seed noise (:func:`order_verdict`) |
| C3 | ViT's median λ_max below ResNet's (:func:`less_verdict`) |
| C4 | NEP small-data ViT > ViT > ResNet, each pair clear (:func:`order_verdict`) |
| C5, C7 | MSA lowers, Conv and MLP raise, each sign beyond its interval (:func:`filter_verdict`) |
| C6 | ResNet's drop high-frequency-specific, ViT's not (:func:`robustness_verdict`) |
| C8 | AlterNet ≥ ResNet on accuracy or on high-frequency robustness (:func:`alternet_verdict`) |

Other rows of a chapter's box are shown beside these tests (``Comparison(counted=False)``, marked
†) and do not change a claim's verdict in the closing table.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import combinations

REPRODUCED, PARTLY, NOT = "reproduced", "partly", "not reproduced"

PAPER_SIGNS: dict[str, int] = {"msa": -1, "conv": 1, "mlp": 1}
"""The sign of each block kind's change in the paper (C5 and C7): MSAs lower, the others raise."""


def order_verdict(
    values: Mapping[str, float],
    order: Sequence[str],
    clear: Mapping[tuple[str, str], bool] | None = None,
) -> str:
    """``values`` increasing along ``order`` (e.g. Conv < local MSA < global MSA).

    Every pair is checked: all in order → reproduced; the two ends in order but an inner pair
    not → partly; the two ends reversed or equal → not reproduced. ``clear[(a, b)]``, where
    given, says whether the difference of a pair is beyond noise (e.g. its interval excludes 0):
    a pair then counts as in order only if it is also clear.
    """
    clear = clear or {}

    def holds(a: str, b: str) -> bool:
        return values[a] < values[b] and clear.get((a, b), True)

    if all(holds(a, b) for a, b in combinations(order, 2)):
        return REPRODUCED
    return PARTLY if holds(order[0], order[-1]) else NOT


def same_order_verdict(first: Mapping[str, float], second: Mapping[str, float]) -> str:
    """Two measures rank the same items alike (C1: higher train NLL goes with higher test error).

    The same ranking → reproduced; the same item last (the highest in both) but another pair
    swapped → partly; otherwise not reproduced.
    """
    rank_first, rank_second = sorted(first, key=first.get), sorted(second, key=second.get)
    if rank_first == rank_second:
        return REPRODUCED
    return PARTLY if rank_first[-1] == rank_second[-1] else NOT


def less_verdict(smaller: float, larger: float, margin: float = 0.0) -> str:
    """A two-value contrast: reproduced if ``smaller + margin < larger``, else not reproduced.

    ``margin`` is the difference measurement noise alone could make (e.g. a sampling interval).
    """
    return REPRODUCED if smaller + margin < larger else NOT


def filter_verdict(
    change_by_kind: Mapping[str, float],
    intervals: Mapping[str, tuple[float, float]] | None = None,
) -> str:
    """MSAs lower a quantity, Convs and MLPs raise it (C5: high-frequency Δ log amplitude; C7:
    feature-map variance). ``change_by_kind`` maps "msa", "conv", "mlp" to a block's mean change.

    The core contrast is MSA below Conv: reversed → not reproduced. With it, all three signs as
    the paper says → reproduced, otherwise partly. Where ``intervals`` gives a kind's interval
    (e.g. 95 % over test batches), its sign counts only if the whole interval lies on the
    paper's side of zero: a change that noise could flip is not the paper's sign. A kind that is
    absent (a model without MLP blocks) is not tested.
    """
    msa, conv = change_by_kind["msa"], change_by_kind["conv"]
    if not msa < conv:
        return NOT
    intervals = intervals or {}
    signs = [sign_holds(change_by_kind[k], intervals.get(k), sign)
             for k, sign in PAPER_SIGNS.items() if k in change_by_kind]  # fmt: skip
    return REPRODUCED if all(signs) else PARTLY


def sign_holds(value: float, interval: tuple[float, float] | None, sign: int) -> bool:
    """Whether ``value`` has ``sign`` (−1 or +1) beyond doubt: its whole ``interval`` on that
    side of zero, or (without an interval) the value itself."""
    low, high = interval if interval is not None else (value, value)
    return high < 0 if sign < 0 else low > 0


def normalized_drop(clean: float, noisy: float, chance: float) -> float:
    """Accuracy lost to noise as a share of what the model had above chance: a model near chance
    cannot lose much in points, so raw drops are not comparable across models."""
    if clean <= chance:
        return float("nan")
    return (clean - noisy) / (clean - chance)


def robustness_verdict(
    resnet: Sequence[tuple[float, float]], vit: Sequence[tuple[float, float]]
) -> str:
    """C6: each family's (low-band, high-band) normalised drop, one pair per training seed.

    The ResNet's drop is high-frequency-specific (high > low) and the ViT's is not (high ≤ low),
    each at every seed: both → reproduced; one → partly; neither → not reproduced.
    """
    checks = [all(high > low for low, high in resnet), all(high <= low for low, high in vit)]
    return REPRODUCED if all(checks) else PARTLY if any(checks) else NOT


def alternet_verdict(
    alternet_accuracy: float,
    resnet_accuracy: float,
    alternet_high_drop: float,
    resnet_high_drop: float,
) -> tuple[str, str]:
    """C8: AlterNet at least as good as the ResNet it is built from, on accuracy or on
    high-frequency robustness (lower normalised drop). Returns (verdict, which: "accuracy and
    robustness", "accuracy", "robustness" or "neither")."""
    better = {
        "accuracy": alternet_accuracy >= resnet_accuracy,
        "robustness": alternet_high_drop <= resnet_high_drop,
    }
    which = " and ".join(k for k, v in better.items() if v) or "neither"
    return (REPRODUCED if any(better.values()) else NOT), which


__all__ = [
    "NOT",
    "PAPER_SIGNS",
    "PARTLY",
    "REPRODUCED",
    "alternet_verdict",
    "filter_verdict",
    "less_verdict",
    "normalized_drop",
    "order_verdict",
    "robustness_verdict",
    "same_order_verdict",
    "sign_holds",
]
