"""ResNet/AlterNet geometry: the stage sizes a config promises are the ones the model computes."""

from __future__ import annotations

import pytest
import torch

from course_lib.models import create_model


@pytest.mark.parametrize(("image_size", "expected"), [(32, (32, 16, 8)), (30, (30, 15, 8))])
def test_stage_sides_match_the_feature_maps(image_size, expected):
    model = create_model("resnet_tiny", image_size=image_size).eval()
    assert model.config.stage_sides(image_size) == expected
    with torch.no_grad():
        maps = model.forward_intermediates(torch.zeros(1, 3, image_size, image_size))
    side_of_stage = {m.name.split(".")[1]: m.tensor.shape[-1] for m in maps[1:]}  # "stages.s.i"
    assert tuple(side_of_stage.values()) == expected
