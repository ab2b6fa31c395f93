"""Tests for the feature-map variance (paper Fig. 9) against cases with known answers."""

from __future__ import annotations

import matplotlib
import pytest
import torch
from einops import rearrange

from course_lib.analysis.features import collect_feature_maps
from course_lib.analysis.variance import VarianceProfile, feature_variance, variance_profile
from tests.tiny_models import TinyConvNet, TinyViT

matplotlib.use("Agg")


def _checkerboard(n: int) -> torch.Tensor:
    y, x = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
    return ((y + x) % 2 * 2 - 1).double()  # ±1, population variance exactly 1


def test_constant_map_has_zero_variance() -> None:
    assert feature_variance(torch.full((2, 3, 8, 8), 4.2, dtype=torch.float64)) == 0
    assert (
        feature_variance(torch.full((2, 3, 32, 32), -7.3)) < 1e-10
    )  # float32 rounding of the mean


def test_known_variance_averaged_over_channels() -> None:
    # Channel c is a ±a_c checkerboard plus an offset: unbiased variance a_c² · n / (n - 1).
    amplitudes = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    offsets = torch.tensor([5.0, -1.0, 0.0], dtype=torch.float64)
    maps = amplitudes[:, None, None] * _checkerboard(4) + offsets[:, None, None]  # (3, 4, 4)
    maps = maps.expand(2, 3, 4, 4)
    expected = amplitudes.square().mean() * 16 / 15
    torch.testing.assert_close(feature_variance(maps), expected)


def test_gaussian_map_variance() -> None:
    x = 3 * torch.randn(4, 8, 32, 32, generator=torch.Generator().manual_seed(0))
    assert abs(feature_variance(x).item() - 9) < 0.2


@pytest.mark.parametrize("prefix", [0, 1])
def test_tokens_equal_image_layout(prefix: int) -> None:
    images = torch.randn(2, 5, 6, 6, generator=torch.Generator().manual_seed(1))
    tokens = rearrange(images, "b c h w -> b (h w) c")
    tokens = torch.cat([100 * torch.ones(2, prefix, 5), tokens], dim=1)  # a loud class token
    torch.testing.assert_close(feature_variance(tokens), feature_variance(images))


def test_wrong_shapes_raise() -> None:
    for shape in [(4, 16), (2, 12, 4), (1, 1, 1, 4, 4)]:
        with pytest.raises(ValueError):
            feature_variance(torch.zeros(shape))


def test_variance_profile_of_tiny_models() -> None:
    x = torch.randn(2, 3, 8, 8)
    profile = variance_profile(TinyConvNet(), x)
    assert profile.kinds == ["stem", "conv", "conv"] and profile.values.shape == (3,)
    torch.testing.assert_close(profile.depth, torch.tensor([0.0, 0.5, 1.0]))

    vit = TinyViT()
    profile = variance_profile(vit, x)
    maps = collect_feature_maps(vit, x)
    expected = torch.stack([m.tensor[:, 1:].var(dim=1).mean() for m in maps])  # class token off
    torch.testing.assert_close(profile.values, expected)
    assert VarianceProfile.from_feature_maps(maps, 1).names == profile.names


def test_variance_plot_returns_axes() -> None:
    import matplotlib.pyplot as plt

    from course_lib.plots.frequency import plot_variance_over_depth

    x = torch.randn(2, 3, 8, 8)
    profiles = {
        "vit_tiny": variance_profile(TinyViT(), x),
        "resnet": variance_profile(TinyConvNet(), x),
    }
    ax = plot_variance_over_depth(profiles)
    assert len(ax.lines) == 2 and len(ax.patches) == 2
    assert "variance" in ax.get_ylabel().lower() and ax.get_xlabel()
    plot_variance_over_depth(profiles["resnet"])  # a single profile works too
    plt.close("all")


def test_matches_torch_var_and_one_pixel_maps_are_nan() -> None:
    x = torch.randn(3, 4, 5, 5, generator=torch.Generator().manual_seed(2)) + 10
    torch.testing.assert_close(feature_variance(x), x.var(dim=(2, 3)).mean())
    assert feature_variance(torch.randn(2, 4, 1, 1)).isnan()
