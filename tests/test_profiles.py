"""A profile's synthetic-data settings reach every place that makes data for the chapters."""

from __future__ import annotations

import pytest
import torch

from course_lib.config import get_profile
from course_lib.data import SyntheticConfig
from course_lib.report.frequency import texture_band
from course_lib.samples import (
    cue_accuracies,
    evaluation_images,
    evaluation_loader,
    training_batches,
)

FOUR_CLASSES = SyntheticConfig(num_classes=4, seed=3)


@pytest.fixture
def profile():
    return get_profile("smoke", synthetic=FOUR_CLASSES, n_train=64, n_test=32)


def test_training_batches_use_the_profile_data(profile) -> None:
    batches = training_batches(profile, batch_size=16, n_batches=2)
    labels = {int(y) for _, ys in batches for y in ys}
    assert labels <= set(range(4)) and len(labels) > 1


def test_test_sets_use_the_profile_data(profile) -> None:
    _, labels, info = evaluation_images(profile, n=32)
    assert info.num_classes == 4 and int(labels.max()) < 4
    loader = evaluation_loader(profile)
    assert {int(y) for _, ys in loader for y in ys} == set(range(4))


class _Always(torch.nn.Module):
    """Predicts one class whatever the image: its accuracy is that class's share of the labels."""

    def __init__(self, cls: int, num_classes: int) -> None:
        super().__init__()
        self.logits = torch.nn.functional.one_hot(torch.tensor(cls), num_classes).float()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits.expand(len(x), -1)


def test_cue_accuracies_on_sets_that_share_their_labels(profile) -> None:
    _, labels, _ = evaluation_images(profile, n=32)
    models = {"zero": _Always(0, 4), "two": _Always(2, 4)}
    result = cue_accuracies(models, profile, n=32, batch_size=10)
    for name, cls in (("zero", 0), ("two", 2)):
        share = 100 * float((labels == cls).float().mean())
        assert result.models[name] == pytest.approx(
            dict.fromkeys(("both", "low", "high", "none"), share)
        )
    assert (result.chance, result.images) == (25.0, 32)  # four classes, 32 images per set


def test_texture_band_follows_the_profile() -> None:
    wide = SyntheticConfig(texture_frequency=(0.4, 0.9))
    low, high = texture_band(get_profile("smoke", synthetic=wide))
    assert high == 0.9 and low == pytest.approx(0.4 / 2**0.5)


def test_unknown_profile_field_is_refused() -> None:
    with pytest.raises(ValueError, match=r"unknown profile field\(s\) \['synthetc'\].*synthetic"):
        get_profile("smoke", synthetc=FOUR_CLASSES)
