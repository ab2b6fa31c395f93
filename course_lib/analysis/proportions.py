"""Intervals for proportions: the NEP of a spectrum (claim C4) is a count of negative values.

Written here rather than taken from statsmodels (not a dependency) because both are a few lines
of closed-form arithmetic: Wilson's score interval for one proportion and Newcombe's hybrid
score interval, built from two Wilson intervals, for the difference of two.
"""

from __future__ import annotations

import math
from statistics import NormalDist


def wilson_interval(successes: int, trials: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion ``successes / trials``.

    Unlike the normal approximation ``p ± z·sqrt(p(1−p)/n)`` it stays inside [0, 1] and keeps its
    coverage near 0 and 1, where a NEP of a few percent lives (Wilson 1927).
    """
    if trials < 1 or not 0 <= successes <= trials:
        raise ValueError(f"need 0 <= successes <= trials, trials >= 1; got {successes}/{trials}.")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}.")
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    p, z2 = successes / trials, z * z
    shrink = 1 + z2 / trials
    center = (p + z2 / (2 * trials)) / shrink
    half = z / shrink * math.sqrt(p * (1 - p) / trials + z2 / (4 * trials * trials))
    # the interval contains p; at p = 0 or 1 rounding would otherwise leave it a hair outside
    return min(p, max(0.0, center - half)), max(p, min(1.0, center + half))


def difference_interval(
    first: tuple[int, int], second: tuple[int, int], confidence: float = 0.95
) -> tuple[float, float]:
    """Interval for ``p1 − p2`` of two independent proportions, each ``(successes, trials)``:
    Newcombe's hybrid score method (1998, method 10), which combines the two Wilson intervals
    and, like them, behaves near 0 and 1. The difference is clear when the interval excludes 0.
    """
    (x1, n1), (x2, n2) = first, second
    p1, p2 = x1 / n1, x2 / n2
    l1, u1 = wilson_interval(x1, n1, confidence)
    l2, u2 = wilson_interval(x2, n2, confidence)
    d = p1 - p2
    return d - math.hypot(p1 - l1, u2 - p2), d + math.hypot(u1 - p1, p2 - l2)


__all__ = ["difference_interval", "wilson_interval"]
