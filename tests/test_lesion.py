"""Lesion study: a lesioned unit returns exactly its shortcut, hooks vanish afterwards."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from course_lib.analysis.lesion import (
    branch_output_module,
    lesion_study,
    lesioned,
    residual_units,
)
from course_lib.models import create_model
from course_lib.models.post_activation import PostActResidual
from tests.tiny_models import TinyConvNet


class ShortcutOnly(nn.Module):
    """One of our pre-activation blocks written out without its residual branch."""

    def __init__(self, block: nn.Module) -> None:
        super().__init__()
        self.block = block

    def forward(self, x: Tensor) -> Tensor:
        b = self.block
        if isinstance(b.shortcut, nn.Identity):
            return x
        act = F.gelu if b.feature_kind == "msa" else F.relu  # MSABlock: BN-GELU, conv: BN-ReLU
        return b.shortcut(act(b.bn1(x)))


def _without_branch(model: nn.Module, name: str) -> nn.Module:
    """A hand-built copy of ``model`` in which unit ``name`` is replaced by its shortcut path."""
    from torchvision.models.resnet import BasicBlock, Bottleneck

    copy_ = copy.deepcopy(model)
    block = copy_.get_submodule(name)
    if isinstance(block, (BasicBlock, Bottleneck)):  # relu(identity); input is already >= 0
        new = nn.Sequential(block.downsample, nn.ReLU()) if block.downsample else nn.Identity()
    elif isinstance(block, PostActResidual):  # ours, post-activation: relu(shortcut(x))
        new = nn.Sequential(block.shortcut, nn.ReLU())
    elif hasattr(block, "shortcut"):
        new = ShortcutOnly(block)
    else:  # transformer sub-block: x + branch(norm(x)) -> x
        new = nn.Identity()
    copy_.set_submodule(name, new)
    return copy_.eval()


def _warm_batchnorm(model: nn.Module, x: Tensor) -> nn.Module:
    """Give BatchNorm layers non-trivial running statistics, then switch to eval mode."""
    model.train()
    with torch.no_grad():
        model(x)  # one update (momentum 0.1) moves the running statistics off (0, 1)
    return model.eval()


MODELS = {
    "resnet_tiny": dict(),
    "resnet_post_tiny": dict(),  # post-activation: relu(shortcut(x)), projections conv + BN
    "alternet_tiny": dict(),
    "resnet_tiny_strided_msa": dict(msa_blocks=(0, 0, 1)),  # MSA block with a 1×1 projection
    "vit_tiny": dict(),
    "local_vit_tiny": dict(),
}


@pytest.mark.parametrize("key", MODELS)
def test_lesioned_model_equals_model_without_branch(key):
    torch.manual_seed(0)
    name = key.replace("_strided_msa", "")
    model = create_model(name, num_classes=5, **MODELS[key])
    x = torch.randn(4, 3, 32, 32)
    model = _warm_batchnorm(model, x)
    with torch.no_grad():
        clean = model(x)
        for unit, _, _ in residual_units(model):
            with lesioned(model, unit):
                ours = model(x)
            expected = _without_branch(model, unit)(x)
            torch.testing.assert_close(ours, expected, rtol=1e-5, atol=1e-5)
            assert not torch.allclose(ours, clean), f"removing {unit} changed nothing"
        torch.testing.assert_close(model(x), clean)  # restored


def test_strided_msa_keeps_its_projection():
    model = create_model("resnet_tiny", msa_blocks=(0, 0, 1))
    kinds = {n: k for n, _, k in residual_units(model)}
    assert kinds == {"stages.0.0": "conv", "stages.1.0": "conv", "stages.2.0": "msa"}
    assert isinstance(model.get_submodule("stages.2.0").shortcut, nn.Conv2d)


def test_unit_kinds_of_a_vit():
    model = create_model("vit_tiny")
    kinds = [k for _, _, k in residual_units(model)]
    assert kinds == ["msa", "mlp"] * model.config.depth


def test_torchvision_resnet():
    from torchvision.models import resnet18

    torch.manual_seed(0)
    model = resnet18(num_classes=3)
    x = torch.randn(2, 3, 32, 32)
    model = _warm_batchnorm(model, x)
    units = residual_units(model)
    assert [n for n, _, _ in units] == [f"layer{s}.{i}" for s in range(1, 5) for i in range(2)]
    assert branch_output_module(model.layer2[0]) is model.layer2[0].bn2
    with torch.no_grad():
        for unit in ("layer1.0", "layer2.0", "layer4.1"):
            with lesioned(model, unit):
                ours = model(x)
            torch.testing.assert_close(ours, _without_branch(model, unit)(x))


def test_hooks_removed_even_on_error():
    model = create_model("resnet_tiny")
    with pytest.raises(RuntimeError), lesioned(model, ["stages.0.0", "stages.1.0"]):
        assert model.stages[0][0].drop_path._forward_hooks
        raise RuntimeError("boom")
    assert all(not m._forward_hooks for m in model.modules())


def test_unsupported_blocks_raise():
    with pytest.raises(ValueError, match="residual branch of ConvBlock"):
        residual_units(TinyConvNet())
    with (
        pytest.raises(ValueError, match="no module named"),
        lesioned(create_model("vit_tiny"), "x"),
    ):
        pass


def test_lesion_study_known_answers():
    torch.manual_seed(0)
    model = create_model("resnet_tiny", num_classes=4)
    x = torch.randn(32, 3, 32, 32)
    model = _warm_batchnorm(model, x)
    with torch.no_grad():
        model.stages[1][0].conv2.weight.zero_()  # this unit's branch is already zero
        y = model(x).argmax(dim=1)  # labels = clean predictions: clean accuracy is 100 %
    model.train()  # the study must not depend on, nor change, the mode
    result = lesion_study(model, (x, y))
    assert model.training
    assert result.names == ["stages.0.0", "stages.1.0", "stages.2.0"]
    assert result.kinds == ["conv"] * 3
    assert result.clean_accuracy == 100.0 and result.num_samples == 32
    assert result.drop[1] == 0.0 and result.nll[1] == pytest.approx(result.clean_nll)
    torch.testing.assert_close(result.drop, 100.0 - result.accuracy)
    with torch.no_grad(), lesioned(model.eval(), "stages.2.0"):
        expected = 100.0 * (model(x).argmax(dim=1) == y).double().mean().item()
    assert result.accuracy[2].item() == pytest.approx(expected)


def test_lesion_study_batches_and_unit_choice():
    torch.manual_seed(0)
    model = create_model("vit_tiny", num_classes=3).eval()
    x, y = torch.randn(12, 3, 32, 32), torch.randint(0, 3, (12,))
    batches = [(x[:4], y[:4]), (x[4:8], y[4:8]), (x[8:], y[8:])]
    whole = lesion_study(model, (x[:8], y[:8]), units=["blocks.0.mlp"])
    split = lesion_study(model, batches, units=["blocks.0.mlp"], max_batches=2)
    assert split.num_samples == 8 and split.kinds == ["mlp"]
    torch.testing.assert_close(split.accuracy, whole.accuracy)
    torch.testing.assert_close(split.nll, whole.nll)
    with pytest.raises(ValueError, match="not residual units"):
        lesion_study(model, batches, units=["patch_embed"])
