"""Tests for band-limited noise, the noise sweep (paper Fig. 2b), its band drops and the noise demo
against known answers, and for the spectral helpers they share."""

from __future__ import annotations

import matplotlib
import pytest
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, TensorDataset

from course_lib.analysis.robustness import (
    BandDrops,
    NoiseSweep,
    band_drops,
    band_limited_noise,
    noise_demo,
    noise_sweep,
    split_drops,
)
from course_lib.analysis.spectral import LOG_EPS, band_mask, log_amplitude, max_norm_frequency
from course_lib.models import create_model

matplotlib.use("Agg")


def _max_norm_frequency(h: int, w: int) -> Tensor:
    """max(|f_y|, |f_x|) of every unshifted FFT bin, in units of π (computed independently)."""
    fy = torch.tensor([min(k, h - k) * 2 / h for k in range(h)])
    fx = torch.tensor([min(k, w - k) * 2 / w for k in range(w)])
    return torch.maximum(fy[:, None], fx[None, :])


@pytest.mark.parametrize("size", [(8, 8), (16, 24), (5, 7)])
def test_max_norm_frequency_matches_an_independent_count(size: tuple[int, int]) -> None:
    expected = _max_norm_frequency(*size)
    torch.testing.assert_close(max_norm_frequency(size), expected)
    onesided = max_norm_frequency(size, onesided=True)
    torch.testing.assert_close(onesided, expected[:, : size[1] // 2 + 1])


def test_log_amplitude_adds_the_epsilon_once() -> None:
    spectrum = torch.tensor([0.0, 1.0, -2.0 + 0.0j])
    expected = torch.tensor([LOG_EPS, 1 + LOG_EPS, 2 + LOG_EPS]).log()
    torch.testing.assert_close(log_amplitude(spectrum), expected)


@pytest.mark.parametrize("center", [0.1, 0.5, 0.9, 1.0])
@pytest.mark.parametrize("size", [(32, 32), (16, 24)])
def test_noise_energy_lies_in_the_band(center: float, size: tuple[int, int]) -> None:
    noise = band_limited_noise((4, 3, *size), center, generator=torch.Generator().manual_seed(0))
    energy = torch.fft.fft2(noise.double()).abs().square().sum(dim=(0, 1))  # (H, W)
    radius = _max_norm_frequency(*size)
    inside = (radius >= center - 0.05 - 1e-9) & (radius <= center + 0.05 + 1e-9)
    assert energy[inside].sum() / energy.sum() >= 0.99


@pytest.mark.parametrize("magnitude", [0.05, 1.0, 3.0])
def test_noise_has_the_requested_rms_per_image(magnitude: float) -> None:
    noise = band_limited_noise((5, 3, 16, 16), 0.5, width=0.2, magnitude=magnitude)
    rms = noise.square().mean(dim=(1, 2, 3)).sqrt()
    torch.testing.assert_close(rms, torch.full((5,), magnitude))


def test_noise_is_deterministic_with_a_generator() -> None:
    def draw(seed: int) -> Tensor:
        return band_limited_noise(
            (2, 3, 16, 16), 0.3, generator=torch.Generator().manual_seed(seed)
        )

    assert torch.equal(draw(0), draw(0))
    assert not torch.equal(draw(0), draw(1))


def test_noise_above_dc_has_zero_mean_and_dc_noise_is_constant() -> None:
    noise = band_limited_noise((2, 3, 16, 16), 0.5, width=0.4)
    assert noise.mean(dim=(-2, -1)).abs().max() < 1e-6
    dc = band_limited_noise((2, 3, 16, 16), 0.0)
    torch.testing.assert_close(dc, dc.mean(dim=(-2, -1), keepdim=True).expand_as(dc))


def test_bands_tile_the_spectrum_and_onesided_matches() -> None:
    centers = torch.arange(11) / 10  # 0, 0.1, …, 1.0 with width 0.1
    masks = torch.stack([band_mask((32, 32), c.item()) for c in centers])
    assert torch.equal(masks.sum(dim=0), torch.ones(32, 32, dtype=torch.long))
    assert torch.equal(band_mask((32, 32), 0.5, onesided=True), band_mask((32, 32), 0.5)[:, :17])


def test_empty_band_and_bad_shape_raise() -> None:
    with pytest.raises(ValueError, match="wider band"):
        band_limited_noise((1, 3, 8, 8), 0.35)  # bins of an 8x8 image sit at multiples of 0.25π
    with pytest.raises(ValueError):
        band_limited_noise((8, 8), 0.5)


# --- noise_sweep --------------------------------------------------------------------------------


class MeanClassifier(nn.Module):
    """A perfect low-pass "model": class 1 iff the image mean is positive."""

    def forward(self, x: Tensor) -> Tensor:
        m = x.mean(dim=(1, 2, 3))
        return torch.stack([-m, m], dim=1)


def _mean_cue_data(n: int = 64) -> tuple[Tensor, Tensor]:
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(n) % 2
    texture = band_limited_noise((n, 3, 16, 16), 0.7, width=0.6, magnitude=0.5, generator=g)
    return (2 * labels[:, None, None, None] - 1) * 0.2 + texture, labels


def test_low_pass_model_ignores_high_frequencies_but_not_dc() -> None:
    data = _mean_cue_data()
    sweep = noise_sweep(MeanClassifier(), data, centers=[0.0, 0.5, 1.0], magnitudes=[0.0, 1.0])
    assert isinstance(sweep, NoiseSweep) and sweep.num_samples == 64
    assert sweep.clean_accuracy == 100
    assert sweep.accuracy.shape == sweep.drop.shape == (2, 3)
    assert torch.equal(sweep.drop[0], torch.zeros(3, dtype=sweep.drop.dtype))  # magnitude 0
    assert sweep.drop[1, 1] == 0 and sweep.drop[1, 2] == 0  # mid/high bands: the mean is intact
    assert sweep.drop[1, 0] > 20  # DC noise shifts the mean


def test_sweep_is_deterministic_and_batching_independent_of_centres() -> None:
    images, labels = _mean_cue_data()
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(16, 2)
    )
    loader = DataLoader(TensorDataset(images, labels), batch_size=16)
    kwargs = dict(centers=[0.0, 0.5], magnitudes=[0.0, 0.5, 2.0], seed=3)
    first, second = noise_sweep(model, loader, **kwargs), noise_sweep(model, loader, **kwargs)
    assert torch.equal(first.accuracy, second.accuracy)
    torch.testing.assert_close(first.drop, first.clean_accuracy - first.accuracy)
    # The noise of a band does not depend on which other bands are swept.
    alone = noise_sweep(model, loader, centers=[0.5], magnitudes=[2.0], seed=3)
    assert alone.accuracy[0, 0] == first.accuracy[2, 1]
    limited = noise_sweep(model, loader, centers=[0.5], magnitudes=[2.0], max_batches=2)
    assert limited.num_samples == 32


def test_sweep_restores_modes() -> None:
    model = nn.Sequential(
        nn.Conv2d(3, 2, 1), nn.BatchNorm2d(2), nn.AdaptiveAvgPool2d(1), nn.Flatten()
    )
    model.train()
    model[1].eval()
    before = [m.training for m in model.modules()]
    noise_sweep(model, _mean_cue_data(8), centers=[0.5], magnitudes=[0.1])
    assert [m.training for m in model.modules()] == before


def test_noise_plots_return_axes() -> None:
    import matplotlib.pyplot as plt

    from course_lib.plots.frequency import plot_noise_heatmap, plot_noise_sweep

    sweep = noise_sweep(
        MeanClassifier(), _mean_cue_data(16), centers=[0.0, 0.5, 1.0], magnitudes=[0.5, 1.0]
    )
    ax = plot_noise_sweep({"vit_tiny": sweep, "resnet_tiny": sweep})
    assert len(ax.lines) == 3 and "percentage points" in ax.get_ylabel()  # two models + zero line
    plot_noise_sweep(sweep, magnitude=0.5)
    with pytest.raises(ValueError):
        plot_noise_sweep(sweep, magnitude=0.7)
    ax = plot_noise_heatmap(sweep)
    assert len(ax.texts) == 6 and ax.get_xlabel() and ax.get_ylabel()
    plt.close("all")


def test_band_drops_split_at_half_pi() -> None:
    sweep = NoiseSweep(
        centers=torch.tensor([0.1, 0.3, 0.5, 0.7]),
        magnitudes=torch.tensor([0.5, 1.0]),
        width=0.1,
        clean_accuracy=90.0,
        accuracy=torch.zeros(2, 4),
        drop=torch.tensor([[1.0, 3.0, 100.0, 5.0], [2.0, 4.0, 100.0, 8.0]]),
        num_samples=10,
    )
    assert band_drops(sweep) == BandDrops(1.0, 3.0, 8.0)  # largest magnitude
    assert band_drops(sweep, 0.5) == BandDrops(0.5, 2.0, 5.0)  # ½π itself is left out
    assert split_drops([0.1, 0.9], [1.0, 3.0]).high == 3.0  # a paper's row: no magnitude
    with pytest.raises(ValueError, match="not in the sweep"):
        band_drops(sweep, 0.7)


def test_noise_demo_zero_noise_changes_nothing_and_rms_is_the_magnitude() -> None:
    torch.manual_seed(0)
    models = {"resnet_tiny": create_model("resnet_tiny"), "vit_tiny": create_model("vit_tiny")}
    images, labels = torch.randn(6, 3, 32, 32), torch.arange(6) % 10
    quiet = noise_demo(models, images, labels, magnitude=0.0, index=2)
    assert quiet.accuracy == quiet.clean_accuracy and quiet.num_images == 6
    assert quiet.label == 2 and quiet.noise.abs().max() == 0
    loud = noise_demo(models, images, labels, center=0.5, magnitude=0.7, index=1)
    assert loud.noise.shape == (3, 32, 32)
    assert loud.noise.square().mean().sqrt().item() == pytest.approx(0.7, rel=1e-4)
    assert set(loud.predictions) == set(models)
