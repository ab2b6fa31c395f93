"""Intervals for proportions: the NEP of a spectrum (claim C4) is a count of negative values.

Written here rather than taken from statsmodels (not a dependency) because each is a few lines
of closed-form arithmetic: Wilson's score interval for one proportion, Newcombe's hybrid score
interval, built from two Wilson intervals, for the difference of two, and the design effect that
widens both when the values come in correlated clusters (the ``k`` values of one Hessian batch).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import NormalDist


def wilson_interval(
    successes: float, trials: float, confidence: float = 0.95, design_effect: float = 1.0
) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion ``successes / trials``.

    Unlike the normal approximation ``p ± z·sqrt(p(1−p)/n)`` it stays inside [0, 1] and keeps its
    coverage near 0 and 1, where a NEP of a few percent lives (Wilson 1927). ``design_effect``
    (≥ 1, :func:`design_effect`) shrinks the sample to Kish's effective size ``trials /
    design_effect`` (and the successes with it) when the values are correlated in clusters.
    """
    if trials <= 0 or not 0 <= successes <= trials:
        raise ValueError(f"need 0 <= successes <= trials, trials > 0; got {successes}/{trials}.")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}.")
    if not design_effect >= 1:
        raise ValueError(f"design_effect must be at least 1, got {design_effect}.")
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    p, n, z2 = successes / trials, trials / design_effect, z * z
    shrink = 1 + z2 / n
    center = (p + z2 / (2 * n)) / shrink
    half = z / shrink * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    # the interval contains p; at p = 0 or 1 rounding would otherwise leave it a hair outside
    return min(p, max(0.0, center - half)), max(p, min(1.0, center + half))


def difference_interval(
    first: tuple[float, float],
    second: tuple[float, float],
    confidence: float = 0.95,
    design_effect: float = 1.0,
) -> tuple[float, float]:
    """Interval for ``p1 − p2`` of two independent proportions, each ``(successes, trials)``:
    Newcombe's hybrid score method (1998, method 10), which combines the two Wilson intervals
    and, like them, behaves near 0 and 1. ``design_effect`` is common to both samples (as with
    a pooled :func:`intracluster_correlation`). The difference is clear when the interval
    excludes 0.
    """
    (x1, n1), (x2, n2) = first, second
    p1, p2 = x1 / n1, x2 / n2
    l1, u1 = wilson_interval(x1, n1, confidence, design_effect)
    l2, u2 = wilson_interval(x2, n2, confidence, design_effect)
    d = p1 - p2
    return d - math.hypot(p1 - l1, u2 - p2), d + math.hypot(u1 - p1, p2 - l2)


def intracluster_correlation(groups: Sequence[Sequence[int]], size: int) -> float:
    """Correlation ρ between two binary values of the same cluster, pooled over ``groups``.

    Each group (a model) lists its clusters' counts of successes (negative values per batch),
    every cluster holding ``size`` values. The one-way ANOVA estimator ``(MSB − MSW) / (MSB +
    (size − 1)·MSW)``, with the between- and within-cluster mean squares pooled over the groups
    around each group's own mean: the common ρ of Donner & Klar's adjusted comparison of
    proportions in cluster samples (2000), so that a group with no negative values at all
    borrows the others' correlation. Clipped to [0, 1]. When it cannot be estimated (no value
    varies, or no group has two clusters) it is 1, the cautious end: then each cluster counts as
    one value.
    """
    if size < 1:
        raise ValueError(f"size must be a positive number of values per cluster, got {size}.")
    between = within = 0.0
    df_between = df_within = 0
    for counts in groups:
        if not counts:
            raise ValueError("every group needs at least one cluster; got an empty one.")
        if any(not 0 <= c <= size for c in counts):
            raise ValueError(f"every count must lie in [0, size={size}], got {list(counts)}.")
        shares = [c / size for c in counts]
        mean = sum(shares) / len(shares)
        between += size * sum((p - mean) ** 2 for p in shares)
        within += size * sum(p * (1 - p) for p in shares)
        df_between += len(shares) - 1
        df_within += len(shares) * (size - 1)
    if size == 1:
        return 0.0  # one value per cluster: nothing to correlate
    if df_between < 1:
        return 1.0
    msb, msw = between / df_between, within / df_within
    if msb + (size - 1) * msw == 0:
        return 1.0
    return min(1.0, max(0.0, (msb - msw) / (msb + (size - 1) * msw)))


def design_effect(correlation: float, size: int) -> float:
    """Kish's design effect ``1 + (size − 1)·ρ`` of clusters of ``size`` correlated values: the
    factor by which they carry less information than as many independent values."""
    if not 0 <= correlation <= 1:
        raise ValueError(f"the correlation must lie in [0, 1], got {correlation}.")
    return 1 + (size - 1) * correlation


def values_needed(
    first: float,
    second: float,
    confidence: float = 0.95,
    power: float = 0.8,
    design_effect: float = 1.0,
) -> float:
    """Values per sample for a two-sided test at ``confidence`` to tell proportions ``first``
    and ``second`` apart with probability ``power`` (Fleiss, Levin & Paik 2003, ch. 4,
    without the continuity correction), times ``design_effect`` for clustered values. ``inf`` when
    the two are equal. Rounded up by the caller: a planning number, not a guarantee.
    """
    if not (0 <= first <= 1 and 0 <= second <= 1):
        raise ValueError(f"proportions must lie in [0, 1], got {first} and {second}.")
    if not (0 < confidence < 1 and 0 < power < 1):
        raise ValueError(f"confidence and power must lie in (0, 1), got {confidence}, {power}.")
    if first == second:
        return math.inf
    normal = NormalDist()
    z_test, z_power = normal.inv_cdf(0.5 + confidence / 2), normal.inv_cdf(power)
    mean = (first + second) / 2
    spread = z_test * math.sqrt(2 * mean * (1 - mean)) + z_power * math.sqrt(
        first * (1 - first) + second * (1 - second)
    )
    return design_effect * (spread / (first - second)) ** 2


__all__ = [
    "design_effect",
    "difference_interval",
    "intracluster_correlation",
    "values_needed",
    "wilson_interval",
]
