"""The interval for a difference of two proportions, against Newcombe's published values."""

from __future__ import annotations

import pytest

from course_lib.analysis.proportions import difference_interval


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
