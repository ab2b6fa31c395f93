"""Chapter 01's reading of the fit to the training images against the mixed objective."""

from __future__ import annotations

import pytest

from course_lib.analysis.evaluation import Metrics
from course_lib.report.objective import image_fit_reading, seed_order_verdict, seed_relation


def fit(*pairs: tuple[float, float]) -> list[Metrics]:
    return [Metrics(nll=nll, error=error, count=100) for nll, error in pairs]


IMAGES = {
    "resnet": fit((1.0, 25.0), (1.1, 24.0)),
    "local_vit": fit((1.82, 66.0), (1.83, 65.0)),
    "vit": fit((1.84, 71.0), (1.82, 70.5)),
}


def test_seed_relation_needs_a_gap_beyond_both_ranges():
    assert seed_relation([1.0, 1.1], [2.0, 2.1]) == "below"
    assert seed_relation([2.0, 2.1], [1.0, 1.1]) == "above"
    assert seed_relation([1.0, 1.3], [1.2, 1.25]) == "within the seeds' noise of"
    assert seed_relation([1.0], [1.01]) == "below"  # one seed: no noise to weigh against
    with pytest.raises(ValueError, match="at least one value"):
        seed_relation([], [1.0])


def test_seed_order_verdict_counts_a_pair_only_beyond_both_ranges():
    order = ("a", "b", "c")
    clear = {"a": [1.0, 1.1], "b": [2.0, 2.1], "c": [3.0, 3.1]}
    assert seed_order_verdict(clear, order) == "reproduced"
    inner = {**clear, "c": [2.0, 2.9]}  # means 2.05 < 2.45, but within c's range (0.9)
    assert seed_order_verdict(inner, order) == "partly"
    assert seed_order_verdict({**clear, "a": [3.5, 3.6]}, order) == "not reproduced"


def test_reading_when_only_the_mixed_objective_puts_the_local_vit_above():
    mixed = {"resnet": [1.7, 1.72], "local_vit": [2.04, 2.03], "vit": [1.97, 1.95]}
    text = image_fit_reading(mixed, IMAGES)
    assert "means over 2 seeds" in text
    assert "NLL orders the models as ResNet 1.05 < local ViT 1.825 < ViT 1.83" in text
    assert "error (%) as ResNet 24.5 < local ViT 65.5 < ViT 70.8" in text
    assert "local ViT's NLL is within the seeds' noise of the ViT's" in text
    assert "its error is below the ViT's" in text
    assert "its train NLL is above the ViT's" in text
    assert "fits its training images no worse than the ViT does" in text


def test_reading_when_the_local_vit_fits_its_images_worse_too():
    mixed = {"resnet": [1.7], "local_vit": [2.04], "vit": [1.96]}
    images = IMAGES | {"local_vit": fit((1.95, 75.0), (1.96, 76.0))}
    text = image_fit_reading(mixed, images)
    assert "local ViT's NLL is above the ViT's" in text
    assert "fits its training images worse too" in text and "no worse" not in text


def test_reading_draws_no_conclusion_when_the_mixed_order_is_the_papers():
    mixed = {"resnet": [1.7], "local_vit": [1.9], "vit": [1.96]}
    text = image_fit_reading(mixed, IMAGES)
    assert "its train NLL is below the ViT's." in text
    assert "So " not in text


def test_reading_needs_both_vits():
    with pytest.raises(ValueError, match="'local_vit' runs"):
        image_fit_reading({"vit": [1.0]}, {"vit": fit((1.0, 1.0))})
