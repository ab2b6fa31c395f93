"""Frequencies of an image's 2-D FFT, band masks and log amplitudes: the spectral floor that the
images of chapter 00, the band-limited noise of claim C6 and the Fourier analysis of C5 share.

Frequencies are in units of π radians per pixel, per axis: 0 is the mean (DC), 1 the Nyquist
frequency. The frequency of an FFT bin is ``max(|f_y|, |f_x|)`` (the max-norm), so a band of
frequencies is a square annulus in the spectrum, and bin ``(k, k)`` of the diagonal that the
Fourier analysis reads is "frequency k".
"""

from __future__ import annotations

import torch
from torch import Tensor

LOG_EPS = 1e-6
"""Added to the amplitude ``|FFT|`` before the log, as in the paper's code."""

_EDGE_TOL = 1e-6  # frequencies within this of a band edge count as on the edge


def max_norm_frequency(
    size: tuple[int, int], *, onesided: bool = False, device: torch.device | str | None = None
) -> Tensor:
    """Frequency ``max(|f_y|, |f_x|)`` (units of π) of every bin of an unshifted FFT.

    Returns ``[H, W]``, or ``[H, W // 2 + 1]`` if ``onesided`` (the ``rfft2`` layout).
    """
    h, w = size
    fy = torch.fft.fftfreq(h, device=device).abs() * 2  # (H,) in units of π
    fx = torch.fft.rfftfreq(w, device=device) if onesided else torch.fft.fftfreq(w, device=device)
    return torch.maximum(fy[:, None], fx.abs()[None, :] * 2)  # (H, W) or (H, W//2+1)


def band_mask(
    size: tuple[int, int],
    center: float,
    width: float = 0.1,
    *,
    onesided: bool = False,
    device: torch.device | str | None = None,
) -> Tensor:
    """Boolean mask ``[H, W]`` (``[H, W // 2 + 1]`` if ``onesided``, the ``rfft2`` layout).

    Keeps the unshifted FFT bins whose frequency :func:`max_norm_frequency` lies in
    ``[center - width/2, center + width/2)``, a square annulus. We use the max-norm, as the
    paper's helper does, because it is the frequency the Fourier analysis reads along the
    diagonal, and because bands from 0 to π then tile the whole spectrum, corners included (a
    Euclidean radius reaches √2·π in the corners). Half-open bands with centres spaced by
    ``width`` do not overlap.
    """
    radius = max_norm_frequency(size, onesided=onesided, device=device)
    low, high = center - width / 2, center + width / 2
    return (radius >= low - _EDGE_TOL) & (radius < high - _EDGE_TOL)


def log_amplitude(spectrum: Tensor) -> Tensor:
    """``log(|spectrum| + LOG_EPS)``, elementwise (a new tensor)."""
    return spectrum.abs().add_(LOG_EPS).log_()


__all__ = ["LOG_EPS", "band_mask", "log_amplitude", "max_norm_frequency"]
