"""Models: every registered model runs forward/backward at two sizes; registry errors are clear."""

from __future__ import annotations

import pytest
import torch

from course_lib.models import create_model, list_models, model_family
from course_lib.models.resnet import msa_positions

SMALL = list_models("*_tiny") + list_models("*_mini")
LARGE = [n for n in list_models() if n not in SMALL]


def _forward_backward(name: str, image_size: int, batch: int = 2) -> None:
    model = create_model(name, num_classes=7, image_size=image_size)
    x = torch.randn(batch, 3, image_size, image_size)
    logits = model(x)
    assert logits.shape == (batch, 7)
    logits.logsumexp(1).sum().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)


@pytest.mark.parametrize("image_size", [32, 64])
@pytest.mark.parametrize("name", SMALL)
def test_small_models_forward_backward(name, image_size):
    _forward_backward(name, image_size)


@pytest.mark.slow
@pytest.mark.parametrize("image_size", [32, 64])
@pytest.mark.parametrize("name", LARGE)
def test_paper_sized_models_forward_backward(name, image_size):
    _forward_backward(name, image_size, batch=1)


def test_every_family_has_smoke_and_laptop_sizes():
    for family in ("resnet", "vit", "local_vit", "alternet"):
        assert model_family(f"{family}_tiny") == family
        assert model_family(f"{family}_mini") == family
    assert {"resnet18", "resnet50", "vit_ti", "vit_s", "alternet50"} <= set(list_models())


def test_list_models_pattern():
    assert list_models("vit_*") == ["vit_mini", "vit_s", "vit_ti", "vit_tiny"]


def test_unknown_model_lists_valid_names():
    with pytest.raises(ValueError, match="unknown model 'vit_huge'.*resnet_tiny"):
        create_model("vit_huge")


@pytest.mark.parametrize(
    "name, kwargs, message",
    [
        ("vit_tiny", {"image_size": 30}, "not divisible by patch_size=4"),
        (
            "vit_tiny",
            {"image_size": 40, "window": 4, "pool": "mean"},
            "10×10 token grid is not divisible by window=4",
        ),
        ("local_vit_tiny", {"image_size": 8}, "neighbourhood=3 does not fit the 2×2 token grid"),
        ("local_vit_tiny", {"window": 4}, "choose window or neighbourhood"),
        ("alternet_tiny", {"image_size": 40}, "not divisible by the attention window 4"),
        ("resnet_tiny", {"num_classes": 0}, "num_classes must be a positive integer"),
        ("vit_tiny", {"heads": 3}, "dim=64 is not divisible by heads=3"),
        ("vit_tiny", {"depht": 3}, r"unknown option\(s\) \['depht'\].*'depth'"),
        ("local_vit_tiny", {"pool": "cls"}, r"local \(window or neighbourhood\) attention needs"),
        ("vit_tiny", {"window": 4}, r"local \(window or neighbourhood\) attention needs"),
    ],
)
def test_bad_configurations_raise_clear_errors(name, kwargs, message):
    with pytest.raises(ValueError, match=message):
        create_model(name, **kwargs)


def test_overrides_change_the_architecture():
    model = create_model("vit_tiny", depth=3, patch_size=8)
    assert len(model.blocks) == 3
    assert model.pos_embed.shape[1] == 1 + (32 // 8) ** 2  # class token + grid


def test_msa_positions_follow_the_build_up_rule():
    assert msa_positions(4, 2) == [False, True, False, True]
    assert msa_positions(3, 1) == [False, False, True]
    assert msa_positions(2, 0) == [False, False]
    with pytest.raises(ValueError, match="at most 2 MSA"):
        msa_positions(3, 3)


def _kinds(model) -> list[str]:
    with torch.no_grad():
        return [m.kind for m in model.eval().forward_intermediates(torch.randn(1, 3, 32, 32))]


def test_feature_kinds_of_every_depth_in_forward_order():
    vit = create_model("vit_tiny")
    assert _kinds(vit) == ["embed"] + ["msa", "mlp"] * 2
    assert vit.num_prefix_tokens == 1
    assert create_model("local_vit_tiny").num_prefix_tokens == 0
    assert _kinds(create_model("resnet_mini")) == ["stem"] + ["conv"] * 6
    assert _kinds(create_model("alternet_mini")) == ["stem", "conv", "conv", "conv", "msa"] + [
        "conv",
        "msa",
    ]


def test_alternet_is_a_resnet_with_msa_blocks():
    resnet = create_model("resnet_tiny")
    alternet = create_model("resnet_tiny", msa_blocks=(0, 0, 1))
    assert _kinds(resnet) == ["stem", "conv", "conv", "conv"]
    assert _kinds(alternet) == ["stem", "conv", "conv", "msa"]


def _depths(model) -> int:
    """The paper's number of depths: stem + blocks (ResNet), embedding + 2 per block (ViT)."""
    if hasattr(model, "stages"):
        return 1 + sum(len(stage) for stage in model.stages)
    return 1 + 2 * model.config.depth


@pytest.mark.parametrize("name", list_models())
def test_forward_intermediates(name):
    """Every registered model: count, kinds, NCHW shapes, and the last map is forward_features."""
    torch.manual_seed(0)
    model = create_model(name).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        maps = model.forward_intermediates(x)
        tokens = model.forward_intermediates(x, indices=1, output_fmt="NLC")[0].tensor
        features = model.forward_features(x)
    assert len(maps) == _depths(model)
    kinds = [m.kind for m in maps]
    if hasattr(model, "stages"):
        assert kinds[0] == "stem" and set(kinds[1:]) <= {"conv", "msa"}
        last = model.act(model.norm(maps[-1].tensor))
    else:
        assert kinds == ["embed"] + ["msa", "mlp"] * model.config.depth
        assert tokens.shape[1] == model.num_prefix_tokens + (32 // model.config.patch_size) ** 2
        last = model.norm(tokens)
    torch.testing.assert_close(last, features, rtol=0, atol=0)
    for m in maps:
        assert m.tensor.ndim == 4 and m.tensor.shape[0] == 2
        assert m.tensor.shape[-1] == m.tensor.shape[-2]
        assert m.name in dict(model.named_modules()) or m.name == "patch_embed"
    assert [m.name for m in model.forward_intermediates(x, indices=[0, -1])] == [
        maps[0].name,
        maps[-1].name,
    ]
    with pytest.raises(ValueError, match="out of range"):
        model.forward_intermediates(x, indices=[len(maps)])
    with pytest.raises(ValueError, match="output_fmt"):
        model.forward_intermediates(x, output_fmt="NHWC")


def test_old_vit_checkpoint_layout_is_refused_clearly():
    model = create_model("vit_tiny")
    state = model.state_dict()
    state["patch_embed.pos_embed"] = state.pop("pos_embed")
    with pytest.raises(ValueError, match="old layout"):
        model.load_state_dict(state)


def test_parameter_order_is_stable():
    """Analyses walk model.parameters() in order (Hessian, landscape): the order is part of the
    numbers."""
    names = [n for n, _ in create_model("vit_tiny").named_parameters()]
    assert names[:4] == [
        "cls_token",
        "pos_embed",
        "patch_embed.proj.weight",
        "patch_embed.proj.bias",
    ]
    assert names[4].startswith("blocks.0.msa.") and names[-1] == "head.bias"


def test_old_vit_checkpoint_without_class_position_is_refused_clearly():
    model = create_model("vit_tiny")
    state = model.state_dict()
    state["pos_embed"] = state["pos_embed"][:, 1:]  # before issue #13: no class-token row
    with pytest.raises(ValueError, match="class token without a position embedding"):
        model.load_state_dict(state)


@pytest.mark.parametrize("name", ["vit_tiny", "vit_mini", "vit_ti"])
def test_class_token_is_initialised_as_in_the_official_vit(name):
    """trunc-normal(0.02), not zero, and a position embedding of its own (N + 1 rows)."""
    torch.manual_seed(0)
    model = create_model(name)
    std = float(model.cls_token.detach().std())
    assert 0.015 < std < 0.025  # ≈ 0.02 (truncated at ±2 as in timm: in effect N(0, 0.02))
    grid = (32 // model.config.patch_size) ** 2
    assert model.pos_embed.shape == (1, grid + 1, model.config.dim)
    # the class token enters the blocks with row 0 of pos_embed added
    with torch.no_grad():
        tokens = model.forward_intermediates(torch.randn(2, 3, 32, 32), [1], output_fmt="NLC")
        entering = model._prepend_prefix(model._embed(torch.randn(2, 3, 32, 32)))
    assert tokens[0].tensor.shape[1] == grid + 1
    torch.testing.assert_close(
        entering[:, 0], (model.cls_token[0] + model.pos_embed[:, 0]).expand(2, -1)
    )


def test_local_models_use_neighbourhood_attention_and_mean_pooling():
    for name in list_models("local_vit_*"):
        c = create_model(name).config
        assert c.neighbourhood in (3, 5) and c.window is None and c.pool == "mean", name
    assert create_model("local_vit_mini").config.neighbourhood == 3  # 8×8 grid
    assert create_model("local_vit_ti").config.neighbourhood == 5  # 16×16 grid


# --- fair sizes: the laptop families are matched in parameters ----------------------------------

LAPTOP = ["resnet_mini", "resnet_post_mini", "vit_mini", "local_vit_mini", "alternet_mini"]


def _parameters(name: str) -> int:
    return sum(p.numel() for p in create_model(name, num_classes=10, image_size=32).parameters())


@pytest.mark.parametrize("name", LAPTOP)
def test_laptop_families_have_about_the_resnets_parameters(name):
    ratio = _parameters(name) / _parameters("resnet_mini")
    assert 0.75 <= ratio <= 1.25, f"{name}: {ratio:.2f}× resnet_mini's parameters"


def test_alternet_mini_is_resnet_mini_with_msa_blocks_at_stage_ends():
    resnet, alternet = create_model("resnet_mini"), create_model("alternet_mini")
    assert [len(s) for s in alternet.stages] == [len(s) for s in resnet.stages]
    for r_stage, a_stage in zip(resnet.stages, alternet.stages, strict=True):
        for r_block, a_block in zip(r_stage, a_stage, strict=True):
            if a_block.feature_kind == "conv":  # the same conv block, shape for shape
                r_shapes = [p.shape for p in r_block.parameters()]
                assert [p.shape for p in a_block.parameters()] == r_shapes
            else:  # an MSA block of about the replaced conv block's size, at the stage's end
                assert a_block is a_stage[-1]
                ratio = _count(a_block) / _count(r_block)
                assert 0.9 <= ratio <= 1.1, f"MSA block {ratio:.2f}× the conv block it replaces"
    for name in ("resnet_mini", "alternet_mini"):
        c = create_model(name).config
        assert (c.widths, c.depths, c.stem_width, c.block) == (
            resnet.config.widths,
            resnet.config.depths,
            resnet.config.stem_width,
            resnet.config.block,
        )


def _count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("name", list_models("*_tiny"))
def test_channels_last_gives_the_same_output(name):
    torch.manual_seed(0)
    model = create_model(name).eval()
    x = torch.randn(2, 3, 32, 32)
    ref = model(x)
    out = model.to(memory_format=torch.channels_last)(x.to(memory_format=torch.channels_last))
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_torch_compile_matches_eager():
    torch.manual_seed(0)
    model = create_model("vit_tiny").eval()
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(torch.compile(model)(x), model(x), rtol=1e-4, atol=1e-4)
