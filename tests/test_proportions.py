"""Intervals for proportions: Newcombe's published values, and the design effect of clusters."""

from __future__ import annotations

import math

import numpy as np
import pytest

from course_lib.analysis.proportions import (
    design_effect,
    difference_interval,
    intracluster_correlation,
    values_needed,
    wilson_interval,
)


def test_difference_interval_matches_newcombe_1998() -> None:
    # Newcombe (1998), Table II, method 10 (hybrid score): 56/70 − 48/80 and 9/10 − 3/10
    assert difference_interval((56, 70), (48, 80)) == pytest.approx((0.0524, 0.3339), abs=5e-4)
    assert difference_interval((9, 10), (3, 10)) == pytest.approx((0.1705, 0.8090), abs=5e-4)


def test_difference_interval_is_antisymmetric_and_decides_clear_differences() -> None:
    low, high = difference_interval((7, 40), (0, 40))  # a NEP of 7/40 against 0/40
    assert low > 0  # clear
    assert difference_interval((0, 40), (7, 40)) == pytest.approx((-high, -low))
    low, high = difference_interval((11, 40), (7, 40))  # 28 % against 18 %: within noise
    assert low < 0 < high


def test_wilson_interval_with_a_design_effect_counts_fewer_values() -> None:
    # Kish: a design effect d makes n correlated values worth n / d independent ones
    assert wilson_interval(7, 40, design_effect=2.0) == pytest.approx(wilson_interval(3.5, 20))
    assert wilson_interval(7, 40, design_effect=1.0) == wilson_interval(7, 40)
    low, high = difference_interval((7, 40), (0, 40), design_effect=5.0)  # one value per batch
    assert (low, high) == pytest.approx(difference_interval((1.4, 8), (0, 8)))
    with pytest.raises(ValueError, match="design_effect"):
        wilson_interval(7, 40, design_effect=0.5)


def test_intracluster_correlation_at_its_ends() -> None:
    # every cluster all negative or all positive: values of a cluster are identical, ρ = 1
    assert intracluster_correlation([[5, 0, 5, 0], [0, 0, 5, 0]], size=5) == 1.0
    # every cluster holds the same count: no more alike within than between, ρ clipped to 0
    assert intracluster_correlation([[2, 2, 2, 2], [1, 1, 1]], size=5) == 0.0
    # one value per cluster: nothing to correlate
    assert intracluster_correlation([[1, 0, 1]], size=1) == 0.0
    # nothing varies anywhere (e.g. no negative value at all): the cautious end
    assert intracluster_correlation([[0, 0, 0], [0, 0]], size=5) == 1.0
    assert design_effect(1.0, 5) == 5.0 and design_effect(0.0, 5) == 1.0
    with pytest.raises(ValueError, match="count"):
        intracluster_correlation([[6]], size=5)
    with pytest.raises(ValueError, match="empty"):
        intracluster_correlation([[1, 2], []], size=5)


def test_intracluster_correlation_matches_the_anova_of_the_values() -> None:
    """The cluster-count formula equals the one-way ANOVA of the 0/1 values themselves."""
    groups = [[2, 0, 3, 0, 1, 1, 0, 0], [2, 1, 2, 2, 0, 2, 1, 1]]  # a ViT's and a 10 % ViT's
    size = 5
    ss_between = ss_within = 0.0
    df_between = df_within = 0
    for counts in groups:
        clusters = [np.r_[np.ones(c), np.zeros(size - c)] for c in counts]
        grand = np.mean(clusters)
        ss_between += sum(size * (c.mean() - grand) ** 2 for c in clusters)
        ss_within += sum(((c - c.mean()) ** 2).sum() for c in clusters)
        df_between += len(clusters) - 1
        df_within += len(clusters) * (size - 1)
    msb, msw = ss_between / df_between, ss_within / df_within
    expected = max(0.0, (msb - msw) / (msb + (size - 1) * msw))
    assert intracluster_correlation(groups, size) == pytest.approx(expected)


def test_intracluster_correlation_recovers_a_known_correlation() -> None:
    """Beta-binomial clusters: p ~ Beta(a, b) per cluster, then size draws; their ICC is
    1 / (a + b + 1) (here 0.2 and 0.5), which the pooled estimator recovers from many clusters."""
    rng = np.random.default_rng(0)
    for a, b in ((1.0, 3.0), (0.25, 0.75)):
        groups = [rng.binomial(5, rng.beta(a, b, size=4000)).tolist() for _ in range(2)]
        assert intracluster_correlation(groups, 5) == pytest.approx(1 / (a + b + 1), abs=0.03)


def test_values_needed_matches_fleiss_and_scales_with_the_design_effect() -> None:
    # Fleiss, Levin & Paik (2003), ch. 4: 5 % vs 10 %, two-sided 5 % test, 80 % power. Their
    # table (with the continuity correction n/4·(1 + sqrt(1 + 4/(n·|p1 − p2|)))²) gives 474
    n = values_needed(0.05, 0.10)
    assert math.ceil(n) == 435
    assert math.ceil(n / 4 * (1 + math.sqrt(1 + 4 / (n * 0.05))) ** 2) == 474
    assert values_needed(0.10, 0.05) == pytest.approx(values_needed(0.05, 0.10))
    assert values_needed(0.05, 0.10, design_effect=2.0) == pytest.approx(
        2 * values_needed(0.05, 0.10)
    )
    assert values_needed(0.05, 0.10, power=0.9) > values_needed(0.05, 0.10)
    assert values_needed(0.2, 0.2) == math.inf
    with pytest.raises(ValueError, match="proportions"):
        values_needed(1.5, 0.1)
