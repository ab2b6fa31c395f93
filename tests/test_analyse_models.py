"""The paper's diagnostics on third-party models, unchanged: timm and torchvision (issue #16).

Small configurations (timm kwargs, torchvision's reduced ViT) and small images keep the matrix
to seconds per model on a CPU; the point is that every analysis runs without ``modules=`` and
gives finite numbers.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from course_lib.analyse.run import Sizes, run_diagnostics
from course_lib.analysis.features import collect_feature_maps
from course_lib.analysis.fourier import fourier_profile

TIMM = {
    "resnet18": dict(image_size=64, layers=(1, 1, 1, 1), channels=(8, 16, 32, 64), stem_width=8),
    "convnext_atto": dict(image_size=64, depths=(1, 1, 1, 1), dims=(8, 16, 32, 64)),
    "vit_tiny_patch16_224": dict(image_size=32, img_size=32, patch_size=8, depth=2),
    "deit_tiny_patch16_224": dict(image_size=32, img_size=32, patch_size=8, depth=2),
    "swin_tiny_patch4_window7_224": dict(
        image_size=64,
        img_size=64,
        window_size=4,
        depths=(1, 1, 1, 1),
        embed_dim=24,
        num_heads=(1, 1, 1, 1),
    ),
}


def _timm_model(name: str) -> tuple[nn.Module, int]:
    timm = pytest.importorskip("timm")
    kwargs = dict(TIMM[name])
    size = kwargs.pop("image_size")
    torch.manual_seed(0)
    return timm.create_model(name, pretrained=False, num_classes=3, **kwargs).eval(), size


def _torchvision_model(name: str, full: bool = False) -> tuple[nn.Module, int]:
    import torchvision
    from torchvision.models.resnet import BasicBlock

    torch.manual_seed(0)
    if name == "resnet18" and full:
        return torchvision.models.resnet18(num_classes=3).eval(), 64
    if name == "resnet18":  # resnet18's class with one block per stage
        return torchvision.models.ResNet(BasicBlock, [1, 1, 1, 1], num_classes=3).eval(), 64
    # vit_b_16's class with a reduced configuration (12 layers of width 768 are too slow here)
    model = torchvision.models.VisionTransformer(
        image_size=32, patch_size=8, num_layers=2, num_heads=2, hidden_dim=32, mlp_dim=64,
        num_classes=3,
    )  # fmt: skip
    return model.eval(), 32


# Smaller than the smoke profile: one batch of 2, top-1 in at most 4 products, 3 + 3×3 points.
TINY = Sizes(2, 1, 1, 4, 3, 3, 1, (0.5,), (0.5,), 1, 32)

MODELS = [("timm", n) for n in TIMM] + [("torchvision", "resnet18"), ("torchvision", "vit_b_16")]


def _finite(values) -> bool:
    flat = torch.tensor(values, dtype=torch.float64).flatten()
    return bool(torch.isfinite(flat).all())


@pytest.mark.parametrize(("source", "name"), MODELS, ids=[f"{s}:{n}" for s, n in MODELS])
def test_every_diagnostic_runs_on_third_party_models(source: str, name: str) -> None:
    model, size = (_timm_model if source == "timm" else _torchvision_model)(name)
    generator = torch.Generator().manual_seed(0)
    batches = [(torch.randn(2, 3, size, size, generator=generator), torch.tensor([0, 2]))]
    results = run_diagnostics(model, batches, TINY, progress=False)
    assert len(results["hessian"]["eigenvalues"]) == 1
    assert _finite(results["hessian"]["eigenvalues"])
    assert _finite(results["landscape_1d"]["loss"]) and _finite(results["landscape_2d"]["loss"])
    assert len(results["landscape_2d"]["loss"]) == 3
    fourier, variance = results["fourier"], results["variance"]
    assert len(fourier["names"]) >= 2 and fourier["names"] == variance["names"]
    assert _finite(fourier["high_frequency"]) and all(v is not None for v in variance["values"])
    assert all(math.isfinite(v) for v in variance["values"])
    assert set(fourier["kinds"]) <= {"stem", "embed", "conv", "msa", "mlp", "block"}
    assert _finite(results["noise"]["drop"])


def test_block_kinds_come_from_the_models() -> None:
    vit, _ = _timm_model("vit_tiny_patch16_224")
    swin, _ = _timm_model("swin_tiny_patch4_window7_224")
    resnet, _ = _timm_model("resnet18")
    kinds = {
        name: [m.kind for m in collect_feature_maps(model, torch.randn(2, 3, s, s))]
        for name, model, s in (("vit", vit, 32), ("swin", swin, 64), ("resnet", resnet, 64))
    }
    assert kinds == {
        "vit": ["block", "block"],
        "swin": ["block"] * 4,
        "resnet": ["stem"] + ["conv"] * 4,
    }


def test_torchvision_resnet_fourier_equals_hand_given_modules() -> None:
    model, size = _torchvision_model("resnet18", full=True)
    x = torch.randn(2, 3, size, size)
    automatic = fourier_profile(model, x)
    names = ["maxpool"] + [f"layer{i}.{j}" for i in range(1, 5) for j in range(2)]
    by_hand = fourier_profile(model, x, {n: model.get_submodule(n) for n in names})
    assert automatic.names == names
    for got, want in zip(automatic.delta, by_hand.delta, strict=True):
        assert torch.equal(got, want)


def test_torchvision_vit_drops_its_class_token_by_its_own_sizes() -> None:
    model, size = _torchvision_model("vit_b_16")
    maps = collect_feature_maps(model, torch.randn(2, 3, size, size))
    assert [m.kind for m in maps] == ["embed", "block", "block"]
    assert all(m.tensor.shape == (2, 32, 4, 4) for m in maps)
