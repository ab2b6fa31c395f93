"""Verdict functions on hand-made inputs: a contrast that holds, holds in part, or is reversed."""

from __future__ import annotations

import math
from itertools import combinations

import pytest

from course_lib.report import VERDICTS
from course_lib.report.verdicts import (
    NOT,
    PARTLY,
    REPRODUCED,
    alternet_verdict,
    filter_verdict,
    less_verdict,
    normalized_drop,
    order_verdict,
    robustness_verdict,
    same_order_verdict,
)

ORDER = ("resnet", "local_vit", "vit")


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"resnet": 1.0, "local_vit": 1.5, "vit": 2.0}, REPRODUCED),
        ({"resnet": 1.0, "local_vit": 2.5, "vit": 2.0}, PARTLY),  # inner pair out of order
        ({"resnet": 1.6, "local_vit": 1.0, "vit": 2.0}, PARTLY),
        ({"resnet": 2.0, "local_vit": 1.5, "vit": 1.0}, NOT),  # reversed
        ({"resnet": 2.0, "local_vit": 1.0, "vit": 2.0}, NOT),  # ends equal
    ],
)
def test_order_verdict(values, expected):
    assert order_verdict(values, ORDER) == expected


def test_order_verdict_counts_only_clear_pairs():
    values = {"resnet": 1.0, "local_vit": 1.5, "vit": 2.0}
    inner = {("local_vit", "vit"): False}  # in order, but within noise
    assert order_verdict(values, ORDER, inner) == PARTLY
    ends = {("resnet", "vit"): False}
    assert order_verdict(values, ORDER, ends) == NOT
    assert order_verdict(values, ORDER, dict.fromkeys(combinations(ORDER, 2), True)) == REPRODUCED


def test_less_verdict():
    assert less_verdict(1.0, 2.0) == REPRODUCED and less_verdict(2.0, 1.0) == NOT


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"msa": -0.3, "conv": 0.5, "mlp": 0.1}, REPRODUCED),
        ({"msa": -0.3, "conv": 0.5, "mlp": -0.1}, PARTLY),  # MLP lowers too
        ({"msa": -0.3, "conv": 0.5}, REPRODUCED),  # no MLP blocks: not tested
        ({"msa": 0.2, "conv": 0.5, "mlp": 0.1}, PARTLY),  # MSA raises, less than Conv
        ({"msa": -0.26, "conv": -0.87, "mlp": -0.06}, NOT),  # Conv lowers more: reversed
    ],
)
def test_filter_verdict(changes, expected):
    assert filter_verdict(changes) == expected


def test_filter_verdict_counts_a_sign_only_outside_its_interval():
    changes = {"msa": -0.1, "conv": 95.0, "mlp": 2.4}
    assert filter_verdict(changes) == REPRODUCED  # the point signs alone
    straddles = {"msa": (-0.3, 0.1), "conv": (80.0, 110.0), "mlp": (1.0, 3.0)}
    assert filter_verdict(changes, straddles) == PARTLY  # MSA's sign could be noise
    clear = straddles | {"msa": (-0.2, -0.01)}
    assert filter_verdict(changes, clear) == REPRODUCED
    assert filter_verdict(changes, {"msa": (-0.2, -0.01)}) == REPRODUCED  # others: points
    reversed_core = {"msa": 1.0, "conv": 0.5, "mlp": 2.0}
    assert filter_verdict(reversed_core, {"msa": (0.9, 1.1)}) == NOT


def test_normalized_drop():
    assert normalized_drop(60.0, 35.0, 10.0) == pytest.approx(0.5)
    assert math.isnan(normalized_drop(9.0, 8.0, 10.0))


def test_robustness_verdict():
    assert robustness_verdict(resnet=[(0.1, 0.6)], vit=[(0.3, 0.2)]) == REPRODUCED
    assert robustness_verdict(resnet=[(0.1, 0.6)], vit=[(0.2, 0.3)]) == PARTLY
    assert robustness_verdict(resnet=[(0.6, 0.1)], vit=[(0.2, 0.3)]) == NOT
    # every seed must agree: the ViT's second seed loses more at high frequency
    two_seeds = robustness_verdict(resnet=[(0.1, 0.6), (0.2, 0.5)], vit=[(0.3, 0.2), (0.2, 0.3)])
    assert two_seeds == PARTLY


def test_alternet_verdict_says_which():
    assert alternet_verdict(80.0, 78.0, 0.2, 0.3) == (REPRODUCED, "accuracy and robustness")
    assert alternet_verdict(77.0, 78.0, 0.2, 0.3) == (REPRODUCED, "robustness")
    assert alternet_verdict(79.0, 78.0, 0.4, 0.3) == (REPRODUCED, "accuracy")
    assert alternet_verdict(77.0, 78.0, 0.4, 0.3) == (NOT, "neither")


def test_verdicts_are_the_boxes_vocabulary():
    assert {REPRODUCED, PARTLY, NOT} == set(VERDICTS)


def test_same_order_verdict():
    nll = {"resnet": 0.5, "local_vit": 0.8, "vit": 1.0}
    assert same_order_verdict(nll, {"resnet": 10, "local_vit": 20, "vit": 30}) == REPRODUCED
    assert same_order_verdict(nll, {"resnet": 20, "local_vit": 10, "vit": 30}) == PARTLY
    assert same_order_verdict(nll, {"resnet": 30, "local_vit": 20, "vit": 10}) == NOT
