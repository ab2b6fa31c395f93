"""Checks for the frequency exercises: Δ log amplitude (claim C5) and band-limited noise (C6).

References: :func:`course_lib.analysis.fourier.relative_log_amplitude` and
:func:`course_lib.analysis.robustness.band_limited_noise`, with the band of
:func:`course_lib.analysis.spectral.band_mask`.
"""

from __future__ import annotations

import torch
from torch import Tensor

from course_lib.analysis.fourier import relative_log_amplitude
from course_lib.analysis.robustness import band_limited_noise
from course_lib.analysis.spectral import band_mask, log_amplitude, max_norm_frequency
from course_lib.exercises.checking import StudentFn, as_tensor, assert_close, exercise_check


def _smooth_maps(batch: int, channels: int, side: int, generator: torch.Generator) -> Tensor:
    """Random maps ``[B, C, side, side]`` (float64) whose spectrum falls with frequency."""
    white = torch.randn(batch, channels, side, side, generator=generator, dtype=torch.float64)
    return white.cumsum(-1).cumsum(-2) / side + white


def _diagonal(spectrum: Tensor) -> Tensor:
    """Entries ``(k, k)``, ``k = 0 … H // 2``, of an ``[H, W]`` spectrum, minus entry (0, 0)."""
    k = torch.arange(spectrum.shape[0] // 2 + 1)
    return spectrum[k, k] - spectrum[0, 0]


@exercise_check("delta_log_amplitude")
def check_delta_log_amplitude(student_fn: StudentFn) -> str:
    """Compare ``student_fn(feature_map)`` with ``relative_log_amplitude`` on 8×8 and 7×7 maps."""
    generator = torch.Generator().manual_seed(0)
    for side in (8, 7):
        maps = _smooth_maps(2, 3, side, generator)
        spectrum = torch.fft.fft2(maps)
        log_amp = log_amplitude(spectrum).mean(dim=(0, 1))  # (H, W)
        mistakes = {
            "entry 0 should be exactly 0: subtract the value at DC (frequency 0) from every "
            "entry": _diagonal(log_amp) + log_amp[0, 0],
            "it is the log of the averaged amplitude: average the log amplitudes over images and "
            "channels instead (the mean of the log, as the paper does)": _diagonal(
                log_amplitude(spectrum.abs().mean(dim=(0, 1)))
            ),
            "it reads the diagonal of the fftshift-ed spectrum from its corner (frequency −π): "
            "without fftshift, bin (k, k) is frequency 2k/H·π, DC at (0, 0)": _diagonal(
                torch.fft.fftshift(log_amp)
            ),
        }
        hint = (
            f"Take fft2 over (H, W), log(|F| + 1e-6), average over images and channels, read "
            f"the diagonal entries (k, k) for k = 0 … {side // 2}, and subtract entry (0, 0)."
        )
        what = f"delta_log_amplitude of {side}×{side} maps"
        got = student_fn(maps)
        expected = relative_log_amplitude(maps)
        assert_close(got, expected, what, hint, mistakes=mistakes, rtol=1e-5, atol=1e-6)
    return "matches the library's relative_log_amplitude on 8×8 and 7×7 maps"


NOISE_CASES = (  # (shape, centre, width, rms)
    ((4, 3, 20, 20), 0.45, 0.1, 0.5),  # 20×20: both band edges fall on FFT bins (0.4π, 0.5π)
    ((3, 2, 16, 16), 0.9, 0.1, 2.0),
    ((2, 3, 20, 20), 0.95, 0.1, 1.0),  # the upper edge is π itself, outside the half-open band
    ((2, 3, 32, 32), 0.5, 0.1, 1.0),  # bins every π/16: only 0.5π lies in the band
)


def _band_properties(noise: Tensor, shape: tuple, center: float, width: float, rms: float) -> None:
    """Assert the shape, per-image RMS and band of the student's noise, the fix in the message."""
    what = f"band_limited_noise({shape}, center={center}, width={width}, rms={rms})"
    assert noise.shape == shape, f"{what} has shape {tuple(noise.shape)}, expected {shape}"
    assert not noise.is_complex(), (
        f"{what} is complex: the inverse FFT of a band mask that keeps ±f together is real; "
        "return its real part (.real), or use rfft2 / irfft2"
    )
    noise = noise.detach().double()
    image_rms = noise.square().mean(dim=(-3, -2, -1)).sqrt().flatten()
    worst = int((image_rms - rms).abs().argmax())
    assert torch.allclose(image_rms, torch.full_like(image_rms, rms), rtol=1e-4), (
        f"{what}: image {worst} has RMS {image_rms[worst]:.4g}, expected {rms}. Scale every image "
        "(its C × H × W values together, not the whole batch) to RMS 1, then multiply by rms."
    )
    size = tuple(shape[-2:])
    power = torch.fft.fft2(noise).abs().square().flatten(0, -3).sum(0)  # (H, W)
    inside = band_mask(size, center, width)
    frequency = max_norm_frequency(size)
    low, high = center - width / 2, center + width / 2
    band = f"[{low:.2f}, {high:.2f})π"
    outside = power.masked_fill(inside, 0)
    assert outside.sum() <= 1e-8 * power.sum(), (
        f"{what} has energy outside the band {band}, e.g. at frequency "
        f"{frequency.flatten()[outside.argmax()]:.3g}π. The frequency of an FFT bin is "
        "max(|f_y|, |f_x|) (the max-norm, not the Euclidean radius, in units of π: "
        "2·fftfreq), and the band is half-open: low ≤ f < high."
    )
    empty = inside & (power <= 1e-10 * power.max())
    assert not empty.any(), (
        f"{what} has no energy at frequency {frequency[empty][0]:.3g}π, inside the band {band}: "
        "keep every bin with low ≤ max(|f_y|, |f_x|) < high (the max-norm, not the Euclidean "
        "radius, which is larger off the axes)."
    )


@exercise_check("band_limited_noise")
def check_band_limited_noise(student_fn: StudentFn) -> str:
    """Check ``student_fn(shape, center, width, rms, generator)`` against the library.

    Per case: the shape, every image's RMS, no energy outside the band of ``band_mask``, energy
    in every bin of it, and finally the library's noise from the same seed (which holds when
    the student filters the one draw ``torch.randn(shape, generator=generator)``).
    """
    for shape, center, width, rms in NOISE_CASES:
        got = student_fn(shape, center, width, rms, torch.Generator().manual_seed(0))
        _band_properties(as_tensor(got, "band_limited_noise"), shape, center, width, rms)
        expected = band_limited_noise(
            shape, center, width, rms, generator=torch.Generator().manual_seed(0)
        )
        hint = (
            "The band and the RMS are right, but it is not the library's noise for the same "
            "seed: draw δ = torch.randn(shape, generator=generator) once, first, and filter it."
        )
        assert_close(got, expected, "band_limited_noise", hint, rtol=1e-4, atol=1e-5)
    return (
        f"right band, RMS and values in {len(NOISE_CASES)} cases, band edges on FFT bins included"
    )
