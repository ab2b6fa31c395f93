"""Robustness to noise restricted to a frequency band (claim C6, paper Fig. 2b).

The paper adds x = x₀ + F⁻¹(F(δ) ⊙ M_f) with Gaussian δ and a mask M_f keeping a band of width
0.1π around frequency f, and plots clean minus noisy accuracy against f: ResNets lose more to
high-frequency noise, ViTs to low-frequency noise. Its script was never released and the noise
magnitude is not stated, so :func:`noise_sweep` sweeps magnitudes as well; :func:`band_drops`
summarises a sweep as the mean drop below and above ½π, and :func:`noise_demo` shows one band on
one batch (the chapter's widget).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from course_lib.analysis.batches import iter_batches
from course_lib.analysis.evaluation import eval_mode, model_device
from course_lib.analysis.spectral import band_mask


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

    def magnitude_index(self, magnitude: float | None = None) -> int:
        """Row of ``magnitude`` in :attr:`accuracy` and :attr:`drop` (None: the largest one)."""
        if magnitude is None:
            return int(self.magnitudes.argmax())
        matches = ((self.magnitudes - magnitude).abs() < 1e-6).nonzero()
        if len(matches) == 0:
            raise ValueError(f"magnitude {magnitude} not in the sweep {self.magnitudes.tolist()}")
        return int(matches[0])


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


@dataclass(frozen=True)
class BandDrops:
    """Mean accuracy drop (pp) over the noise bands below and above ½π, at one magnitude."""

    magnitude: float
    low: float  # bands whose centre is below ½π
    high: float  # bands whose centre is above ½π


def band_drops(sweep: NoiseSweep, magnitude: float | None = None) -> BandDrops:
    """Split a sweep at ½π: the mean drop over the low bands and over the high bands.

    ``magnitude`` picks a row of the sweep (default: the largest magnitude). A band centred at
    exactly ½π counts in neither half.
    """
    row = sweep.magnitude_index(magnitude)
    return split_drops(
        sweep.centers.tolist(), sweep.drop[row].tolist(), float(sweep.magnitudes[row])
    )


def split_drops(
    centers: Sequence[float], drops: Sequence[float], magnitude: float = float("nan")
) -> BandDrops:
    """:class:`BandDrops` of one row of drops per band centre (units of π), e.g. a paper's."""
    low = [d for c, d in zip(centers, drops, strict=True) if c < 0.5 - 1e-9]
    high = [d for c, d in zip(centers, drops, strict=True) if c > 0.5 + 1e-9]
    nan = float("nan")
    return BandDrops(
        magnitude, float(np.mean(low)) if low else nan, float(np.mean(high)) if high else nan
    )


@dataclass
class NoiseDemo:
    """Band-limited noise on a batch, and what each model makes of it."""

    clean: Tensor  # (3, H, W) the shown test image, normalised
    noise: Tensor  # (3, H, W) the noise added to it, normalised units
    label: int  # its true class
    center: float  # band centre, units of π
    width: float  # band width, units of π
    magnitude: float  # RMS of the noise per image, normalised units
    predictions: dict[str, int]  # each model's class for the noisy shown image
    accuracy: dict[str, float]  # each model's accuracy (%) on the noisy batch
    clean_accuracy: dict[str, float]  # ... on the clean batch
    num_images: int


def predict(model: nn.Module, images: Tensor) -> Tensor:
    """Predicted classes ``(B,)`` on the CPU (eval mode, restored after; no grad)."""
    with eval_mode(model), torch.no_grad():
        return model(images.to(model_device(model))).argmax(dim=1).cpu()


def noise_demo(
    models: Mapping[str, nn.Module],
    images: Tensor,
    labels: Tensor,
    *,
    center: float = 0.9,
    magnitude: float = 1.0,
    width: float = 0.1,
    index: int = 0,
    seed: int = 0,
    clean_predictions: Mapping[str, Tensor] | None = None,
) -> NoiseDemo:
    """Add band-limited noise (:func:`band_limited_noise`) to ``images`` ``(B, 3, H, W)`` and
    classify them with every model (:func:`predict`).

    The white noise is drawn from a generator seeded with ``seed``, so moving the band filters
    the same draw. ``clean_predictions`` (``{name: (B,) classes}``) skips the clean pass. The
    predictions of image ``index`` and of the whole batch are kept: one pass per model gives
    both, so this does not use :func:`~course_lib.analysis.evaluation.accuracy`.
    """
    generator = torch.Generator().manual_seed(seed)
    noise = band_limited_noise(images.shape, center, width, magnitude, generator=generator)
    clean = clean_predictions or {name: predict(m, images) for name, m in models.items()}
    noisy = {name: predict(m, images + noise) for name, m in models.items()}
    labels = labels.cpu()
    return NoiseDemo(
        clean=images[index].cpu(),
        noise=noise[index],
        label=int(labels[index]),
        center=center,
        width=width,
        magnitude=magnitude,
        predictions={name: int(p[index]) for name, p in noisy.items()},
        accuracy={name: _percent_correct(p, labels) for name, p in noisy.items()},
        clean_accuracy={name: _percent_correct(p, labels) for name, p in clean.items()},
        num_images=len(labels),
    )


def _percent_correct(predictions: Tensor, labels: Tensor) -> float:
    return 100.0 * (predictions == labels).float().mean().item()


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
