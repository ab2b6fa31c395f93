"""Tests for feature-map collection and the Fourier analysis against cases with known answers."""

from __future__ import annotations

import math

import matplotlib
import pytest
import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from course_lib.analysis.features import (
    FeatureMap,
    collect_feature_maps,
    prefix_tokens_of,
    to_grid,
)
from course_lib.analysis.fourier import (
    FourierProfile,
    fourier_profile,
    frequencies,
    relative_log_amplitude,
)

matplotlib.use("Agg")


from tests.tiny_models import TinyConvNet, TinyViT


def _hooks_left(model: nn.Module) -> int:
    return sum(len(m._forward_hooks) for m in model.modules())


def _circular_filter(x: Tensor, kernel: Tensor) -> Tensor:
    """Depthwise 3x3 filter with circular padding: an exact multiplication in Fourier space."""
    c = x.shape[1]
    weight = kernel.to(x.dtype).expand(c, 1, 3, 3)
    return F.conv2d(F.pad(x, (1, 1, 1, 1), mode="circular"), weight, groups=c)


# --- relative_log_amplitude against known answers ----------------------------------------------


@pytest.mark.parametrize("k", [1, 3, 8])
def test_cosine_peaks_at_its_frequency(k: int) -> None:
    n = 16
    y, x = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
    image = torch.cos(2 * math.pi * k * (y + x) / n).double().expand(2, 3, n, n)
    delta = relative_log_amplitude(image)
    assert delta.shape == (n // 2 + 1,)
    assert delta[0] == 0
    assert int(delta.argmax()) == k


def test_white_noise_is_flat() -> None:
    # Flat spectrum. DC and Nyquist bins of a real map are real, the others complex, so
    # E[log|F|] differs by exactly log(2)/2 between them: interior points read ≈ 0.35, π reads 0.
    noise = torch.randn(64, 16, 16, 16, generator=torch.Generator().manual_seed(0))
    delta = relative_log_amplitude(noise)
    assert delta[0] == 0
    torch.testing.assert_close(delta[1:-1], torch.full((7,), math.log(2) / 2), atol=0.15, rtol=0)
    assert abs(delta[-1]) < 0.15


def test_box_blur_is_low_pass_with_the_exact_transfer_function() -> None:
    x = torch.randn(4, 3, 16, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    blurred = _circular_filter(x, torch.full((3, 3), 1 / 9))
    change = relative_log_amplitude(blurred) - relative_log_amplitude(x)
    omega = 2 * math.pi * torch.arange(9, dtype=torch.float64) / 16
    expected = 2 * torch.log(((1 + 2 * torch.cos(omega)) / 3).abs())  # |H(ω, ω)| per axis
    torch.testing.assert_close(change, expected, atol=1e-4, rtol=0)  # 1e-6 in the log
    assert (change[4:] < 0).all()


def test_sharpen_is_high_pass() -> None:
    x = torch.randn(4, 3, 16, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    kernel = torch.tensor([[0.0, -1, 0], [-1, 5, -1], [0, -1, 0]])
    change = relative_log_amplitude(_circular_filter(x, kernel)) - relative_log_amplitude(x)
    omega = 2 * math.pi * torch.arange(9, dtype=torch.float64) / 16
    torch.testing.assert_close(change, torch.log(5 - 4 * torch.cos(omega)), atol=1e-6, rtol=0)
    assert (change[1:] > 0).all()


@pytest.mark.parametrize("prefix", [0, 1, 3])
def test_tokens_give_the_same_answer_as_images(prefix: int) -> None:
    images = torch.randn(2, 5, 8, 8, generator=torch.Generator().manual_seed(3))
    tokens = rearrange(images, "b c h w -> b (h w) c")
    tokens = torch.cat([torch.randn(2, prefix, 5), tokens], dim=1)
    expected = relative_log_amplitude(images)
    given = None if prefix < 2 else prefix  # 0 and 1 are detected from the token count
    torch.testing.assert_close(relative_log_amplitude(tokens, given), expected, atol=1e-6, rtol=0)
    assert torch.equal(to_grid(tokens, given), images)


@pytest.mark.parametrize("shape", [(4, 16), (1, 2, 3, 4, 4), (2, 12, 4), (2, 3, 8, 6), (2, 0, 4)])
def test_wrong_shapes_raise(shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError):
        relative_log_amplitude(torch.zeros(shape))


def test_wrong_prefix_count_raises() -> None:
    with pytest.raises(ValueError, match="square grid"):
        relative_log_amplitude(torch.zeros(1, 17, 4), num_prefix_tokens=0)


def test_odd_sizes_and_frequencies() -> None:
    delta = relative_log_amplitude(torch.randn(2, 3, 7, 7))
    assert delta.shape == (4,)
    torch.testing.assert_close(frequencies(4, size=7), torch.tensor([0, 2 / 7, 4 / 7, 6 / 7]))
    torch.testing.assert_close(frequencies(9), torch.linspace(0, 1, 9))
    with pytest.raises(ValueError):
        frequencies(4, size=8)


# --- collection with hooks ---------------------------------------------------------------------


def test_collects_tagged_conv_net_in_forward_order() -> None:
    model = TinyConvNet()
    maps = collect_feature_maps(model, torch.randn(2, 3, 8, 8))
    assert [m.kind for m in maps] == ["stem", "conv", "conv"]
    assert [m.name for m in maps] == ["stem", "blocks.0", "blocks.1"]
    assert [tuple(m.tensor.shape) for m in maps] == [(2, 4, 8, 8), (2, 4, 8, 8), (2, 4, 4, 4)]
    assert all(isinstance(m, FeatureMap) and not m.tensor.requires_grad for m in maps)
    assert _hooks_left(model) == 0


def test_collects_tagged_token_model() -> None:
    maps = collect_feature_maps(TinyViT(), torch.randn(2, 3, 8, 8))
    assert [m.kind for m in maps] == ["embed", "msa", "mlp", "msa", "mlp"]
    assert all(m.tensor.shape == (2, 17, 8) for m in maps)


def test_eval_mode_during_collection_and_modes_restored() -> None:
    model = TinyConvNet().train()
    model.blocks[0].bn.eval()  # a mixed state must survive
    before = [m.training for m in model.modules()]
    seen = []
    model.blocks[1].register_forward_pre_hook(lambda m, args: seen.append(m.training))
    collect_feature_maps(model, torch.randn(2, 3, 8, 8))
    assert seen == [False]
    assert [m.training for m in model.modules()] == before


def test_hooks_removed_and_mode_restored_after_an_exception() -> None:
    model = TinyConvNet().train()

    def fail(module: nn.Module, args: tuple) -> None:
        raise RuntimeError("boom")

    handle = model.head.register_forward_pre_hook(fail)
    with pytest.raises(RuntimeError, match="boom"):
        collect_feature_maps(model, torch.randn(2, 3, 8, 8))
    handle.remove()
    assert _hooks_left(model) == 0
    assert all(m.training for m in model.modules())


def test_maps_are_copies_safe_from_later_in_place_ops() -> None:
    class InPlace(TinyConvNet):
        def forward(self, x: Tensor) -> Tensor:
            return self.blocks(self.stem(x).mul_(0))

    maps = collect_feature_maps(InPlace(), torch.randn(1, 3, 8, 8))
    assert maps[0].tensor.abs().sum() > 0


def test_module_run_twice_raises_and_leaves_no_hooks() -> None:
    class Twice(TinyConvNet):
        def forward(self, x: Tensor) -> Tensor:
            return self.blocks[0](self.blocks[0](self.stem(x)))

    model = Twice()
    with pytest.raises(ValueError, match="more than once"):
        collect_feature_maps(model, torch.randn(1, 3, 8, 8))
    assert _hooks_left(model) == 0


def test_explicit_modules_as_list_or_dict() -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3))
    maps = collect_feature_maps(model, torch.randn(1, 3, 8, 8), [("relu", model[1], "conv")])
    assert [(m.name, m.kind) for m in maps] == [("relu", "conv")]
    maps = collect_feature_maps(model, torch.randn(1, 3, 8, 8), {"a": model[0], "b": model[2]})
    assert [(m.name, m.kind) for m in maps] == [("a", "block"), ("b", "block")]
    with pytest.raises(ValueError, match="did not run"):
        collect_feature_maps(model, torch.randn(1, 3, 8, 8), {"x": nn.Conv2d(3, 3, 1)})


def test_untagged_unknown_model_raises() -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU())
    with pytest.raises(ValueError, match="modules="):
        collect_feature_maps(model, torch.randn(1, 3, 8, 8))


def test_torchvision_resnet18_by_fx() -> None:
    from torchvision.models import resnet18

    model = resnet18(num_classes=10)
    profile = fourier_profile(model, torch.randn(1, 3, 32, 32))
    assert profile.kinds == ["stem"] + ["conv"] * 8
    assert profile.names[:2] == ["maxpool", "layer1.0"]
    assert profile.sizes == [8, 8, 8, 4, 4, 2, 2, 1, 1]
    assert _hooks_left(model) == 0


def test_torchvision_vit_by_fx_drops_the_class_token() -> None:
    from torchvision.models import VisionTransformer

    model = VisionTransformer(
        image_size=16, patch_size=4, num_layers=2, num_heads=2, hidden_dim=8, mlp_dim=16
    )
    profile = fourier_profile(model, torch.randn(2, 3, 16, 16))
    assert profile.kinds == ["embed", "block", "block"] and profile.sizes == [4, 4, 4]


# --- profiles ----------------------------------------------------------------------------------


def test_fourier_profile_of_tiny_models() -> None:
    profile = fourier_profile(TinyConvNet(), torch.randn(2, 3, 8, 8))
    assert profile.sizes == [8, 8, 4]
    assert [len(d) for d in profile.delta] == [5, 5, 3]  # ragged: the last block downsamples
    torch.testing.assert_close(profile.depth, torch.tensor([0.0, 0.5, 1.0]))
    assert torch.equal(profile.high_frequency, torch.stack([d[-1] for d in profile.delta]))
    for freq, delta in zip(profile.frequencies, profile.delta, strict=True):
        assert len(freq) == len(delta) and freq[-1] == 1

    vit = TinyViT()
    x = torch.randn(2, 3, 8, 8)
    profile = fourier_profile(vit, x)
    assert profile.kinds == ["embed", "msa", "mlp", "msa", "mlp"]
    maps = collect_feature_maps(vit, x)
    expected = [relative_log_amplitude(m.tensor[:, 1:]) for m in maps]
    for got, want in zip(profile.delta, expected, strict=True):
        torch.testing.assert_close(got, want)
    assert FourierProfile.from_feature_maps(maps, 1).names == profile.names


def test_prefix_tokens_per_map() -> None:
    # A model with a class token whose patch embedding outputs the bare grid (before the class
    # token is prepended): that map has no prefix, the others have the model's one.
    assert prefix_tokens_of(torch.zeros(2, 64, 8), 1) == 0
    assert prefix_tokens_of(torch.zeros(2, 65, 8), 1) == 1
    assert prefix_tokens_of(torch.zeros(2, 4, 8, 8), 1) == 1
    assert prefix_tokens_of(torch.zeros(2, 65, 8), None) is None


def _tiny_registered_models() -> list[str]:
    try:
        from course_lib.models import list_models
    except ImportError:
        return []
    return list_models("*_tiny")


@pytest.mark.parametrize("name", _tiny_registered_models())
def test_every_registered_model(name: str) -> None:
    from course_lib.analysis.variance import variance_profile
    from course_lib.models import create_model

    model = create_model(name)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        expected = model.eval().forward_intermediates(x)
    fourier = fourier_profile(model, x)
    variance = variance_profile(model, x)
    assert fourier.names == variance.names == [m.name for m in expected]
    assert fourier.kinds == [m.kind for m in expected]
    for got, m in zip(fourier.delta, expected, strict=True):
        torch.testing.assert_close(got, relative_log_amplitude(m.tensor))
    assert torch.isfinite(fourier.high_frequency).all() and torch.isfinite(variance.values).all()


# --- plots -------------------------------------------------------------------------------------


def test_fourier_plots_return_axes() -> None:
    import matplotlib.pyplot as plt

    from course_lib.plots.frequency import plot_delta_log_amplitude, plot_high_frequency_over_depth

    x = torch.randn(2, 3, 8, 8)
    vit, conv = fourier_profile(TinyViT(), x), fourier_profile(TinyConvNet(), x)
    ax = plot_delta_log_amplitude(vit)
    assert ax.get_xlabel() and ax.get_ylabel() and len(ax.lines) == 5
    ax = plot_high_frequency_over_depth({"vit_tiny": vit, "resnet_tiny": conv})
    assert len(ax.lines) == 2 and len(ax.patches) == 2  # two MSA spans
    plt.close("all")


def test_token_scales_read_the_class_token_with_its_position_row() -> None:
    from course_lib.analysis.features import token_scales
    from course_lib.models import create_model

    torch.manual_seed(0)
    model = create_model("vit_tiny", num_classes=4, image_size=32).eval()
    images = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        model.cls_token.fill_(0.0)
        model.pos_embed[:, 0].fill_(0.5)  # the class token enters the first block as 0.5s
        patches = model.patch_embed(images) + model.pos_embed[:, 1:]
    scales = token_scales(model, images)
    assert scales["cls"] == pytest.approx(0.5)
    assert scales["patches"] == pytest.approx(float(patches.pow(2).mean().sqrt()), rel=1e-5)
    assert token_scales(create_model("local_vit_tiny", num_classes=4), images) == {}
