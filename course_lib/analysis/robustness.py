"""Robustness to noise restricted to a frequency band (claim C6, paper Fig. 2b).

The paper adds x = x₀ + F⁻¹(F(δ) ⊙ M_f) with Gaussian δ and a mask M_f keeping a band of width
0.1π around frequency f, and plots clean minus noisy accuracy against f: ResNets lose more to
high-frequency noise, ViTs to low-frequency noise. Its script was never released and the noise
magnitude is not stated, so :func:`noise_sweep` sweeps magnitudes as well.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from course_lib.analysis.batches import iter_batches
from course_lib.analysis.features import eval_mode, model_device

_EDGE_TOL = 1e-6  # frequencies within this of a band edge count as on the edge


def band_mask(
    size: tuple[int, int],
    center: float,
    width: float = 0.1,
    *,
    onesided: bool = False,
    device: torch.device | str | None = None,
) -> Tensor:
    """Boolean mask ``[H, W]`` (``[H, W // 2 + 1]`` if ``onesided``, the ``rfft2`` layout).

    Keeps the unshifted FFT bins whose frequency ``max(|f_y|, |f_x|)`` (units of π, Nyquist = 1)
    lies in ``[center - width/2, center + width/2)``, a square annulus. We use the max-norm, as
    the paper's helper does, because it is the frequency the Fourier analysis reads along the
    diagonal (bin ``(k, k)`` is "frequency k"), and because bands from 0 to π then tile the whole
    spectrum, corners included (a Euclidean radius reaches √2·π in the corners). Half-open bands
    with centres spaced by ``width`` do not overlap.
    """
    h, w = size
    fy = torch.fft.fftfreq(h, device=device).abs() * 2  # (H,) in units of π
    fx = torch.fft.rfftfreq(w, device=device) if onesided else torch.fft.fftfreq(w, device=device)
    radius = torch.maximum(fy[:, None], fx.abs()[None, :] * 2)  # (H, W) or (H, W//2+1)
    low, high = center - width / 2, center + width / 2
    return (radius >= low - _EDGE_TOL) & (radius < high - _EDGE_TOL)


def band_limited_noise(
    shape: Sequence[int],
    center: float,
    width: float = 0.1,
    magnitude: float = 0.1,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> Tensor:
    """Gaussian noise restricted to one frequency band, ``shape = (..., C, H, W)``.

    Draws δ ~ N(0, 1), keeps the bins of :func:`band_mask` (``center``, ``width`` in units of π)
    in its 2-D FFT over (H, W), transforms back, and scales every image (the last three dims) to
    root-mean-square ``magnitude`` (in the units of the input: 0.1 is 10 % of the signal for
    standardized images). The generator must live on ``device`` (default: the generator's).
    Raises ValueError when no FFT bin of an H x W image lies in the band.
    """
    if len(shape) < 3:
        raise ValueError(f"expected a shape (..., C, H, W), got {tuple(shape)}")
    if device is None and generator is not None:
        device = generator.device
    delta = torch.randn(tuple(shape), generator=generator, device=device)
    return magnitude * _unit_rms(_band_pass(torch.fft.rfft2(delta), shape[-2:], center, width))


@dataclass
class NoiseSweep:
    """Accuracy under band-limited noise for each (magnitude, centre); paper Fig. 2b."""

    centers: Tensor  # (K,) band centres in units of π
    magnitudes: Tensor  # (M,) RMS noise magnitude per image, in input units
    width: float  # band width in units of π
    clean_accuracy: float  # percent
    accuracy: Tensor  # (M, K) percent
    drop: Tensor  # (M, K) clean - noisy accuracy, percentage points
    num_samples: int


def noise_sweep(
    model: nn.Module,
    loader_or_tensors: Iterable[Sequence[Tensor]] | tuple[Tensor, Tensor],
    centers: Sequence[float] | Tensor,
    magnitudes: Sequence[float] | Tensor,
    *,
    width: float = 0.1,
    seed: int = 0,
    max_batches: int | None = None,
) -> NoiseSweep:
    """Accuracy drop under band-limited noise, for every band centre and noise magnitude.

    ``loader_or_tensors`` yields ``(images, labels, ...)`` batches, or is one ``(images, labels)``
    pair; images with NaN or inf raise ValueError. Per batch one white δ is drawn from a CPU
    generator seeded with ``seed`` (the same noise on every device), filtered into each band and
    scaled to each magnitude: bands and magnitudes are compared on the same draw. Noisy images
    are not clipped. The model runs in eval mode under ``torch.no_grad()`` on its own device;
    every submodule's mode is restored. Magnitude 0 reuses the clean predictions, so its drop is
    exactly 0.
    """
    centers_t = torch.as_tensor(centers, dtype=torch.float32).flatten()
    magnitudes_t = torch.as_tensor(magnitudes, dtype=torch.float32).flatten()
    device = model_device(model)
    generator = torch.Generator().manual_seed(seed)
    hits = torch.zeros(len(magnitudes_t), len(centers_t), dtype=torch.long, device=device)
    clean_hits = torch.zeros((), dtype=torch.long, device=device)
    total = 0
    # Images already on an accelerator cost one sync per batch for their NaN check, against
    # 1 + K·M forward passes; images on the CPU are checked before the copy, without a sync.
    batches = iter_batches(loader_or_tensors, device, max_batches, where="noise_sweep")
    with eval_mode(model), torch.no_grad():
        for x, y in batches:
            clean = (model(x).argmax(dim=1) == y).sum()
            clean_hits += clean
            total += len(y)
            spectrum = torch.fft.rfft2(torch.randn(x.shape, generator=generator).to(device))
            for k, center in enumerate(centers_t.tolist()):
                unit = _unit_rms(_band_pass(spectrum, x.shape[-2:], center, width)).to(x.dtype)
                for m, magnitude in enumerate(magnitudes_t.tolist()):
                    noisy = model(x + magnitude * unit) if magnitude != 0 else None
                    hits[m, k] += clean if noisy is None else (noisy.argmax(dim=1) == y).sum()
    if total == 0:
        raise ValueError("noise_sweep got only empty batches: pass batches with images in them")
    clean_accuracy = 100.0 * clean_hits.item() / total
    accuracy = 100.0 * hits.cpu().double() / total
    return NoiseSweep(
        centers=centers_t,
        magnitudes=magnitudes_t,
        width=width,
        clean_accuracy=clean_accuracy,
        accuracy=accuracy,
        drop=clean_accuracy - accuracy,
        num_samples=total,
    )


def _band_pass(spectrum: Tensor, size: Sequence[int], center: float, width: float) -> Tensor:
    """Real images ``(..., H, W)`` from an ``rfft2`` spectrum restricted to one band."""
    h, w = size
    mask = band_mask((h, w), center, width, onesided=True, device=spectrum.device)
    if not mask.any():
        raise ValueError(
            f"no FFT bin of a {h}x{w} image has a frequency in "
            f"[{center - width / 2:.3f}, {center + width / 2:.3f})π; use a wider band"
        )
    # The mask depends on |f| only, so it is Hermitian-symmetric and the result is real.
    return torch.fft.irfft2(spectrum * mask, s=(h, w))


def _unit_rms(noise: Tensor) -> Tensor:
    """Scale each image (last three dims) to root-mean-square 1."""
    rms = noise.square().mean(dim=(-3, -2, -1), keepdim=True).sqrt()
    return noise / rms
