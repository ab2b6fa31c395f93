"""The bundled photo and the frequency filters of chapter 00, against known answers."""

from __future__ import annotations

import math

import pytest
import torch

from course_lib.images import (
    band_energy_fraction,
    box_blur,
    frequency_filter,
    log_amplitude_spectrum,
    sample_photo,
    spectrum_frequencies,
)


def _cosine(size: int, frequency: float) -> torch.Tensor:
    """cos(π f x) along x on a size x size grid: a single frequency f (units of π)."""
    x = torch.arange(size, dtype=torch.float64)
    return torch.cos(math.pi * frequency * x).expand(size, size).clone()


def test_photo_loads_offline_with_shape_and_range():
    photo = sample_photo()
    assert photo.shape == (512, 512) and photo.dtype == torch.float32
    assert 0.0 <= float(photo.min()) < 0.1 and 0.9 < float(photo.max()) <= 1.0
    colour = sample_photo(64, gray=False)
    assert colour.shape == (3, 64, 64)
    assert 0.0 <= float(colour.min()) and float(colour.max()) <= 1.0
    assert sample_photo(33).shape == (33, 33)
    assert torch.equal(sample_photo(64), sample_photo(64))  # deterministic
    with pytest.raises(ValueError):
        sample_photo(0)


@pytest.mark.parametrize("size", [64, 63])
def test_full_band_returns_the_image(size):
    photo = sample_photo(size)
    torch.testing.assert_close(frequency_filter(photo), photo, atol=1e-5, rtol=0)
    assert band_energy_fraction(photo) == pytest.approx(1.0)


def test_low_pass_removes_high_frequency_energy():
    photo = sample_photo(128)
    assert band_energy_fraction(photo, 0.25, 1.0) > 0.02  # the photo has some
    low = frequency_filter(photo, 0.0, 0.25)
    assert band_energy_fraction(low, 0.25, 1.0) < 1e-10
    assert band_energy_fraction(low, 0.0, 0.25) == pytest.approx(1.0)
    assert float(low.mean()) == pytest.approx(float(photo.mean()), abs=1e-6)  # DC kept


def test_low_and_high_pass_add_up_to_the_image():
    photo = sample_photo(96, gray=False)
    low, high = frequency_filter(photo, 0.0, 0.3), frequency_filter(photo, 0.3, 1.0)
    assert low.shape == high.shape == photo.shape
    torch.testing.assert_close(low + high, photo, atol=1e-5, rtol=0)
    assert abs(float(high.mean())) < 1e-6  # a high-pass image has no mean


def test_a_pure_cosine_is_kept_only_by_bands_that_contain_it():
    wave = _cosine(32, 0.5)  # period 4 pixels
    torch.testing.assert_close(frequency_filter(wave, 0.4, 0.6), wave.float(), atol=1e-5, rtol=0)
    assert float(frequency_filter(wave, 0.0, 0.4).abs().max()) < 1e-5
    assert float(frequency_filter(wave, 0.6, 1.0).abs().max()) < 1e-5
    nyquist = _cosine(32, 1.0)  # +1, -1, +1, ...: frequency π, kept by high = 1
    torch.testing.assert_close(frequency_filter(nyquist, 0.9, 1.0), nyquist.float())
    with pytest.raises(ValueError):
        frequency_filter(wave, 0.6, 0.4)


def test_log_amplitude_spectrum_is_centred():
    constant = torch.full((16, 16), 0.5)
    spectrum = log_amplitude_spectrum(constant)
    assert spectrum.shape == (16, 16)
    assert torch.argmax(spectrum).item() == 8 * 16 + 8  # DC in the middle
    freqs = spectrum_frequencies(16)
    assert freqs[8] == 0 and freqs[0] == -1  # -π at the first index
    wave = _cosine(16, 0.5)
    peaks = (log_amplitude_spectrum(wave)[8] > 0).nonzero().flatten().tolist()
    assert [float(freqs[i]) for i in peaks] == [-0.5, 0.5]


def test_box_blur_is_a_low_pass_filter_with_the_predicted_response():
    # (1 + 2 cos ω) / 3 per axis: -1/3 at π, so a checkerboard comes out times 1/9.
    idx = torch.arange(8)
    checkerboard = (-1.0) ** (idx[:, None] + idx[None, :])
    torch.testing.assert_close(box_blur(checkerboard, 3), checkerboard / 9)
    # ... and exactly 0 at 2π/3: a cosine of period 3 pixels disappears.
    assert float(box_blur(_cosine(12, 2 / 3), 3).abs().max()) < 1e-6
    photo = sample_photo(64)
    blurred = box_blur(photo, 5)
    assert float(blurred.mean()) == pytest.approx(float(photo.mean()), abs=1e-6)
    assert band_energy_fraction(blurred, 0.5, 1.0) < 0.1 * band_energy_fraction(photo, 0.5, 1.0)
    with pytest.raises(ValueError):
        box_blur(photo, 4)
