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


def test_post_activation_resnet_rectifies_every_map_it_reads():
    """The paper's Fig. 8/9 ResNets apply a ReLU after each residual sum, so every map read
    from ``resnet_post_*`` (stem included) is non-negative, and each block computes
    ``ReLU(shortcut(x) + branch(x))``; the pre-activation ResNet's maps are not rectified."""
    torch.manual_seed(0)
    post, pre = create_model("resnet_post_tiny").eval(), create_model("resnet_tiny").eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        maps = post.forward_intermediates(x)
        assert [m.kind for m in maps] == [m.kind for m in pre.forward_intermediates(x)]
        assert all(m.tensor.min() >= 0 for m in maps)
        assert any(m.tensor.min() < 0 for m in pre.forward_intermediates(x))
        block, before = post.stages[1][0], maps[1].tensor  # stride 2: a projection shortcut
        expected = torch.relu(block.shortcut(before) + block.branch(before))
        torch.testing.assert_close(maps[2].tensor, expected)
        # no final BN-ReLU: the head pools the last block's (already activated) output
        torch.testing.assert_close(post(x), post.head(maps[-1].tensor.mean(dim=(2, 3))))


def test_post_activation_resnet_cannot_hold_msa_blocks():
    with pytest.raises(ValueError, match="MSA blocks are pre-activation blocks"):
        create_model("alternet_tiny", preact=False)
