"""A real photograph and its 2-D Fourier transform, for teaching (chapter 00, ahead of claim C5).

The photo is Grace Hopper's portrait that matplotlib ships as sample data, so nothing is
downloaded. Frequencies are in units of π radians per pixel, per axis: 0 is the mean (DC) and
1 is the Nyquist frequency, a pattern that flips sign from one pixel to the next. Like
:func:`course_lib.analysis.spectral.band_mask`, which the filters reuse, the frequency of an FFT
bin is ``max(|f_y|, |f_x|)``: bands are square annuli in the spectrum, the same bands that the
band-limited noise of chapter 03 uses and the diagonal that its Fourier analysis reads.
"""

from __future__ import annotations

import functools

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from course_lib.analysis.spectral import band_mask, log_amplitude

PHOTO_NAME = "grace_hopper.jpg"  # in matplotlib's mpl-data/sample_data
_LUMA = (0.299, 0.587, 0.114)  # ITU-R BT.601 weights for R, G, B


@functools.lru_cache(maxsize=1)
def _photo_array() -> np.ndarray:
    """The photo as a read-only ``(H, W, 3)`` uint8 array (600 x 512), read once."""
    import matplotlib.cbook as cbook
    import matplotlib.image as mpimg

    array = np.asarray(mpimg.imread(cbook.get_sample_data(PHOTO_NAME, asfileobj=False)))
    array.setflags(write=False)
    return array


def sample_photo(size: int | None = None, gray: bool = True) -> Tensor:
    """Grace Hopper's portrait (bundled with matplotlib, no download) as float32 in ``[0, 1]``.

    Center-cropped to a square (512 x 512) and, when ``size`` is given, resized to
    ``size x size`` with an antialiased bilinear filter. Returns ``(H, W)`` when ``gray``
    (luma, ITU-R BT.601) and ``(3, H, W)`` (RGB) otherwise.
    """
    rgb = torch.from_numpy(_photo_array().copy()).permute(2, 0, 1).float() / 255  # (3, H, W)
    h, w = rgb.shape[-2:]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    image = rgb[:, top : top + side, left : left + side]  # (3, side, side)
    if size is not None and size != side:
        if size < 1:
            raise ValueError(f"size must be a positive number of pixels, got {size}")
        image = F.interpolate(
            image[None], size=(size, size), mode="bilinear", antialias=True, align_corners=False
        )[0].clamp_(0, 1)
    if gray:
        image = torch.einsum("c,chw->hw", torch.tensor(_LUMA), image)
    return image.contiguous()


def spectrum_frequencies(n: int) -> Tensor:
    """Frequencies (units of π) along one axis of a centred (``fftshift``-ed) spectrum, ``(n,)``."""
    return torch.fft.fftshift(torch.fft.fftfreq(n)) * 2


def log_amplitude_spectrum(image: Tensor) -> Tensor:
    """``log(|FFT| + LOG_EPS)`` over the last two dims, centred for display (DC in the middle).

    ``image`` is ``(..., H, W)``; the result has the same shape, with zero frequency at index
    ``(H // 2, W // 2)`` (see :func:`spectrum_frequencies`). The transform is orthonormal, so the
    squared amplitudes sum to the squared pixel values (Parseval) whatever the image size.
    ``LOG_EPS`` and the log amplitude come from :mod:`course_lib.analysis.spectral`.
    """
    spectrum = torch.fft.fft2(image.float(), norm="ortho")
    return log_amplitude(torch.fft.fftshift(spectrum, dim=(-2, -1)))


def _band(size: tuple[int, int], low: float, high: float, device: torch.device) -> Tensor:
    """``band_mask`` for ``[low, high)``; includes the Nyquist bins when ``high >= 1``."""
    if not 0.0 <= low <= high:
        raise ValueError(f"need 0 <= low <= high (units of π), got low={low}, high={high}")
    # band_mask's bands are half-open; the highest bin sits at exactly 1 (π), so "up to π"
    # must reach past it.
    upper = high if high < 1.0 else 1.5
    return band_mask(size, center=(low + upper) / 2, width=upper - low, device=device)


def frequency_filter(image: Tensor, low: float = 0.0, high: float = 1.0) -> Tensor:
    """Keep only the frequencies in ``[low, high)`` (units of π) of ``(..., H, W)`` images.

    ``low=0`` keeps the mean: ``frequency_filter(x, 0, 0.2)`` is a low-pass filter (the coarse
    shapes), ``frequency_filter(x, 0.2, 1)`` a high-pass one (edges and texture, mean removed);
    ``high >= 1`` includes the Nyquist frequency, so ``low=0, high=1`` returns the image itself.
    An ideal (brick-wall) filter: it rings near sharp edges, which is fine for looking.
    """
    mask = _band(tuple(image.shape[-2:]), low, high, image.device)  # (H, W), unshifted layout
    return torch.fft.ifft2(torch.fft.fft2(image.float()) * mask).real


def band_energy_fraction(image: Tensor, low: float = 0.0, high: float = 1.0) -> float:
    """Share of the image's variance (spectral energy without DC) at frequencies in ``[low, high)``.

    Summed over all leading dims; 1.0 for the whole band ``(0, 1)``, and 0 for the high band of
    a low-pass-filtered image. Returns 0.0 for a constant image.
    """
    power = torch.fft.fft2(image.double()).abs().square()  # (..., H, W)
    power[..., 0, 0] = 0  # the mean is not variance
    total = float(power.sum())
    if total == 0:
        return 0.0
    return float((power * _band(tuple(image.shape[-2:]), low, high, image.device)).sum()) / total


def box_blur(image: Tensor, size: int = 3) -> Tensor:
    """Replace every pixel of ``(..., H, W)`` images by the mean of its ``size x size`` neighbours.

    The image wraps around (circular padding), so the blur is exactly a circular convolution and
    its effect on the spectrum is a multiplication: by a product of two Dirichlet kernels, about 1
    at low frequency and small at high frequency. A low-pass filter that averages neighbours, as
    an MSA averages tokens (chapter 03).
    """
    if size < 1 or size % 2 == 0:
        raise ValueError(f"size must be a positive odd number, got {size}")
    h, w = image.shape[-2:]
    flat = image.float().reshape(-1, 1, h, w)  # (N, 1, H, W)
    padded = F.pad(flat, (size // 2,) * 4, mode="circular")
    return F.avg_pool2d(padded, size, stride=1).reshape(image.shape)
