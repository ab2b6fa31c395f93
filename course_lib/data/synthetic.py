"""The course's embedded dataset: procedural images whose class shows in two separable cues.

Why a synthetic dataset: the book must run on a laptop without downloads, and the paper's central
contrast — MSAs are low-pass, shape-biased; Convs are high-pass, texture-biased (Sec. 3) — is only
measurable if we *know* where the class information lives in frequency space. Every image is

    image = clip(0.5 + background + low cue + high cue, 0, 1)          # (3, H, W), float32

- **background**: natural-image-like noise, amplitude ∝ 1/f^α (α = 1 as in natural images, so
  the power falls as 1/f²). Each colour channel mixes a shared "luminance" field with its own
  field (this correlates the channels); each field has random Fourier phases and amplitude
  exactly 1/f^α. It carries no class information.
- **low-frequency cue** ("shape"): a class-specific layout of a few smooth Gaussian colour blobs
  (each class has its own blob centres, widths and signed RGB colours). Per image, every blob is
  displaced and rescaled at random, so the layout is not a fixed template to memorise. Its energy
  lies below ≈ 0.2π.
- **high-frequency cue** ("texture"): a class-specific luminance grating near (but below) the
  Nyquist frequency π, at a radius between ``texture_frequency[0]`` and ``[1]`` (0.56π–0.8π;
  per axis, the max-norm that the course's band-limited noise uses, ≈ 0.4π–0.8π). Classes differ in
  orientation and in radial frequency (a few rings of a few angles); the phase is random per image.
  A class with orientation θ carries the gratings at +θ and −θ (a plaid), so a horizontal flip —
  part of the standard augmentation — maps a class's texture onto itself, not onto another class.

Either cue alone identifies the class. Test sets with cues removed (``cues="low"``: only the
low-frequency cue; ``"high"``: only the texture; ``"none"``: background only, chance accuracy)
share the background and jitter of the full images, so the accuracy on each tells which cue a
trained model relies on.

**The balance of the two cue strengths decides which cue a model learns.** Models trained on
images with both cues pick one: ResNets live off the high-frequency texture and ViTs off the
low-frequency layout — the paper's texture/shape bias made measurable, and the reason
high-frequency noise hurts ResNets more (C6). With the defaults (6,000 training images, 3–6
epochs, no augmentation), a small 5-conv CNN scored 100 % on texture-only and 36 % on layout-only
test images, a 4-block ViT (patch 4) 27 % and 94 %; trained on one cue alone, the CNN reached
99–100 % on either. Make one cue much stronger and every model uses it; report the
``SyntheticConfig`` with any result that compares models.

With many classes the textures crowd together (100 classes at 32×32 are less than one FFT bin
apart): use larger images or fewer classes when the texture cue matters.

Generation is vectorised (FFTs for the background, separable outer products for blobs and
gratings) and deterministic: the class layouts depend only on ``seed``, the images on ``seed``
and the split, which use different derived seeds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch.utils.data import TensorDataset

Cues = Literal["both", "low", "high", "none"]
Split = Literal["train", "test"]
CUES: tuple[str, ...] = ("both", "low", "high", "none")
_SPLIT_STREAMS = {"train": 1, "test": 2}  # stream 0 draws the class layouts
_CHUNK = 2048  # images per FFT chunk: bounds memory for large n


@dataclass(frozen=True)
class SyntheticConfig:
    """Everything that defines a synthetic dataset; two equal configs give identical images."""

    num_classes: int = 10  # number of classes; labels are balanced over them
    image_size: int = 32  # height = width in pixels (e.g. 64 for the Fourier chapter)
    low_cue: float = 0.25  # peak amplitude of each colour blob of the class layout (0: no cue)
    high_cue: float = 0.08  # amplitude of the class texture (grating), in [0, 1] pixel units
    background: float = 0.15  # standard deviation of the 1/f noise background of each image
    spectral_exponent: float = 1.0  # α: background amplitude ∝ 1/f^α (natural images: α ≈ 1)
    color_correlation: float = 0.8  # correlation of the background between colour channels
    blobs_per_class: int = 3  # smooth colour blobs in each class's layout
    texture_frequency: tuple[float, float] = (0.56, 0.80)  # grating radii, π rad/px (Nyquist 1)
    position_jitter: float = 0.05  # std of the per-image blob displacement, in image widths
    amplitude_jitter: float = 0.25  # per-image cue amplitudes are scaled by U(1 − a, 1 + a)
    orientation_jitter: float = 2.0  # std of the per-image grating orientation, in degrees
    seed: int = 0  # seeds the class layouts and (with the split) the images

    def __post_init__(self) -> None:
        if self.num_classes < 2:
            raise ValueError(f"num_classes must be >= 2, got {self.num_classes}")
        if self.image_size < 8:
            raise ValueError(f"image_size must be >= 8 pixels, got {self.image_size}")
        for name in ("low_cue", "high_cue", "background", "position_jitter", "orientation_jitter"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not 0.0 <= self.color_correlation <= 1.0:
            raise ValueError(f"color_correlation must be in [0, 1], got {self.color_correlation}")
        if not 0.0 <= self.amplitude_jitter < 1.0:
            raise ValueError(f"amplitude_jitter must be in [0, 1), got {self.amplitude_jitter}")
        if self.blobs_per_class < 1:
            raise ValueError(f"blobs_per_class must be >= 1, got {self.blobs_per_class}")
        f_lo, f_hi = self.texture_frequency
        if not 0.0 < f_lo <= f_hi < 1.0:
            raise ValueError(
                "texture_frequency must satisfy 0 < low <= high < 1 (Nyquist, in units of π), "
                f"got {self.texture_frequency}"
            )


@dataclass
class SyntheticComponents:
    """The unclipped parts of synthetic images, float32, and the labels.

    ``0.5 + background + low + high`` clipped to [0, 1] is the image with both cues.
    """

    background: torch.Tensor  # 1/f noise, zero mean, std ``config.background`` per image
    low: torch.Tensor  # low-frequency cue (colour-blob layout)
    high: torch.Tensor  # high-frequency cue (grating texture), (N, 1, H, W): same in R, G, B
    labels: torch.Tensor  # (N,) int64


@dataclass
class _ClassLayouts:
    """Per-class cue parameters, drawn once from ``config.seed`` (shared by all splits)."""

    centers: torch.Tensor  # (C, K, 2) blob centres (x, y) in image widths
    widths: torch.Tensor  # (C, K) blob standard deviations in image widths
    colors: torch.Tensor  # (C, K, 3) signed RGB colours, max |component| = 1
    angles: torch.Tensor  # (C,) grating orientation θ in [0, π/2] (the plaid uses ±θ)
    frequencies: torch.Tensor  # (C,) grating frequency in units of π rad/pixel


def _derived_seed(seed: int, stream: int) -> int:
    """An independent 63-bit seed for one random stream (class layouts, train or test images)."""
    return int(np.random.SeedSequence([seed, stream]).generate_state(1, dtype=np.uint64)[0] >> 1)


def _generator(seed: int, stream: int) -> torch.Generator:
    return torch.Generator().manual_seed(_derived_seed(seed, stream))


def _class_layouts(config: SyntheticConfig) -> _ClassLayouts:
    """Draw each class's blob layout and texture (angle, ring) from ``config.seed``."""
    gen = _generator(config.seed, 0)
    c, k = config.num_classes, config.blobs_per_class
    centers = 0.2 + 0.6 * torch.rand(c, k, 2, generator=gen)
    widths = 0.10 + 0.08 * torch.rand(c, k, generator=gen)
    colors = torch.randn(c, k, 3, generator=gen)
    colors = colors / colors.abs().amax(dim=-1, keepdim=True)
    # Textures on a grid of rings × angles in [0, π/2]: the number of rings maximises the smallest
    # distance in frequency space between two classes (ring gap or arc between angles).
    f_lo, f_hi = config.texture_frequency

    def min_separation(rings: int) -> float:
        angles = math.ceil(c / rings)
        ring_gap = (f_hi - f_lo) / (rings - 1) if rings > 1 else math.inf
        arc = f_lo * (math.pi / 2) / (angles - 1) if angles > 1 else math.inf
        return min(ring_gap, arc)

    n_rings = max(range(1, c + 1), key=min_separation)
    n_angles = math.ceil(c / n_rings)
    slot = torch.randperm(n_rings * n_angles, generator=gen)[:c]
    angles = torch.linspace(0.0, math.pi / 2, n_angles)[slot % n_angles]
    rings = (
        torch.linspace(f_lo, f_hi, n_rings) if n_rings > 1 else torch.tensor([(f_lo + f_hi) / 2])
    )
    return _ClassLayouts(centers, widths, colors, angles, rings[slot // n_angles])


def _render_blobs(
    centers: torch.Tensor, widths: torch.Tensor, colors: torch.Tensor, size: int
) -> torch.Tensor:
    """Sum of Gaussian colour blobs: centers (N, K, 2), widths (N, K), colors (N, K, 3) ->
    (N, 3, H, W). A blob is separable, exp(-dx²/2σ²)·exp(-dy²/2σ²), so one batched matmul over
    the K blobs renders every image.
    """
    n, k = widths.shape
    coords = (torch.arange(size, dtype=torch.float32) + 0.5) / size  # pixel centres, image widths
    sigma2 = 2 * widths.unsqueeze(-1) ** 2  # (N, K, 1)
    gx = torch.exp(-((coords - centers[..., 0:1]) ** 2) / sigma2)  # (N, K, W)
    gy = torch.exp(-((coords - centers[..., 1:2]) ** 2) / sigma2)  # (N, K, H)
    colored_gy = colors.unsqueeze(-1) * gy.unsqueeze(2)  # (N, K, 3, H)
    colored_gy = colored_gy.permute(0, 2, 3, 1).reshape(n, 3 * size, k)  # (N, 3·H, K)
    return torch.bmm(colored_gy, gx).view(n, 3, size, size)


def _render_plaid(
    angles: torch.Tensor,
    frequencies: torch.Tensor,
    rotations: torch.Tensor,
    phases: torch.Tensor,
    gains: torch.Tensor,
    size: int,
) -> torch.Tensor:
    """Gratings at +θ and −θ (one grating where θ is 0 or π/2), all turned by a small rotation,
    with the same mean power (gain²/2) for every class.

    angles, frequencies, rotations, gains (N,), phases (N, 2) -> (N, 1, H, W). A grating
    cos(kx·x + ky·y + φ) is the real part of the outer product e^{i(kx·x + φ)} e^{i ky·y}.
    """
    coords = torch.arange(size, dtype=torch.float32)  # pixels
    sign = torch.tensor([1.0, -1.0])
    theta = angles.view(-1, 1) * sign + rotations.view(-1, 1)  # (N, 2)
    k = math.pi * frequencies.view(-1, 1)  # radians/pixel
    one = torch.ones(())
    wave_x = torch.polar(one, (k * torch.cos(theta)).unsqueeze(-1) * coords + phases.unsqueeze(-1))
    wave_y = torch.polar(one, (k * torch.sin(theta)).unsqueeze(-1) * coords)  # (N, 2, H)
    # A self-mirrored orientation (θ = 0 or π/2) is a single grating with the same power.
    self_mirror = (torch.sin(2 * angles) < 1e-3).view(-1, 1)
    weights = torch.where(self_mirror, torch.tensor([1.0, 0.0]), torch.full((1, 2), 0.5**0.5))
    weights = (weights * gains.view(-1, 1)).unsqueeze(-1)  # (N, 2, 1)
    return torch.einsum("nph,npw->nhw", wave_y * weights, wave_x).real.unsqueeze(1)


def _pink_noise(
    n: int, size: int, exponent: float, correlation: float, std: float, gen: torch.Generator
) -> torch.Tensor:
    """(n, 3, H, W) noise with expected power ∝ 1/f^(2·exponent), zero mean and the given std per
    image. Each channel mixes a shared field and its own (weights √ρ and √(1 − ρ): correlation ρ);
    every field has random phases and amplitude exactly 1/f^exponent."""
    fy = torch.fft.fftfreq(size).view(size, 1)
    fx = torch.fft.rfftfreq(size).view(1, size // 2 + 1)
    radius = torch.sqrt(fx**2 + fy**2)
    amplitude = torch.where(radius > 0, radius.clamp_min(1e-12) ** -exponent, 0.0)  # no DC
    chunks = []
    for start in range(0, n, _CHUNK):
        m = min(_CHUNK, n - start)
        # White noise's spectrum has uniform, Hermitian-symmetric phases: keep them, set |·|.
        phases = torch.sgn(torch.fft.rfft2(torch.randn(m, 4, size, size, generator=gen)))
        mixed = correlation**0.5 * phases[:, :1] + (1 - correlation) ** 0.5 * phases[:, 1:]
        noise = torch.fft.irfft2(amplitude * mixed, s=(size, size))  # (m, 3, H, W)
        rms = torch.linalg.vector_norm(noise, dim=(1, 2, 3), keepdim=True) / (3 * size**2) ** 0.5
        chunks.append(noise.mul_(std / rms))  # zero mean (no DC), so the RMS is the std
    return torch.cat(chunks)


def _uniform(shape: tuple[int, ...], low: float, high: float, gen: torch.Generator) -> torch.Tensor:
    return low + (high - low) * torch.rand(shape, generator=gen)


def synthetic_components(
    n: int, *, config: SyntheticConfig = SyntheticConfig(), split: Split = "train"
) -> SyntheticComponents:
    """Draw ``n`` images' background, low cue and high cue separately (unclipped), with labels.

    Useful to look at each part and its spectrum; ``make_synthetic`` composes them.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if split not in _SPLIT_STREAMS:
        raise ValueError(f"split must be one of {tuple(_SPLIT_STREAMS)}, got {split!r}")
    layouts = _class_layouts(config)
    gen = _generator(config.seed, _SPLIT_STREAMS[split])
    size, k, a = config.image_size, config.blobs_per_class, config.amplitude_jitter
    # Balanced labels: class counts differ by at most one.
    labels = (torch.arange(n) % config.num_classes)[torch.randperm(n, generator=gen)]

    # Every random draw happens whatever the cues, so cue-removal sets share everything else.
    shifts = config.position_jitter * torch.randn(n, k, 2, generator=gen)
    blob_gain = _uniform((n, k), 1 - a, 1 + a, gen)
    texture_gain = _uniform((n,), 1 - a, 1 + a, gen)
    phases = _uniform((n, 2), 0.0, 2 * math.pi, gen)
    angle_noise = math.radians(config.orientation_jitter) * torch.randn(n, generator=gen)
    background = _pink_noise(
        n, size, config.spectral_exponent, config.color_correlation, config.background, gen
    )
    low = _render_blobs(
        layouts.centers[labels] + shifts,
        layouts.widths[labels],
        layouts.colors[labels] * (config.low_cue * blob_gain).unsqueeze(-1),
        size,
    )
    # The jitter turns the whole plaid, so a flipped image still shows its own class's texture.
    high = _render_plaid(
        layouts.angles[labels],
        layouts.frequencies[labels],
        angle_noise,
        phases,
        config.high_cue * texture_gain,
        size,
    )
    return SyntheticComponents(background=background, low=low, high=high, labels=labels)


def make_synthetic(
    n: int,
    *,
    config: SyntheticConfig = SyntheticConfig(),
    split: Split = "train",
    cues: Cues = "both",
) -> TensorDataset:
    """``n`` synthetic images and labels: a ``TensorDataset`` of ``(N, 3, H, W)`` float32 images in
    [0, 1] and ``(N,)`` int64 labels, balanced over classes.

    ``cues`` picks which class cues the images carry: ``"both"``, ``"low"`` (colour layout only),
    ``"high"`` (texture only) or ``"none"`` (background only). The same ``n``, ``config`` and
    ``split`` give the same backgrounds and labels for every choice of ``cues``.
    """
    if cues not in CUES:
        raise ValueError(f"cues must be one of {CUES}, got {cues!r}")
    parts = synthetic_components(n, config=config, split=split)
    images = parts.background.add_(0.5)  # in place: the parts are not returned
    if cues in ("both", "low"):
        images += parts.low
    if cues in ("both", "high"):
        images += parts.high
    return TensorDataset(images.clamp_(0.0, 1.0), parts.labels)


def synthetic_prototypes(
    config: SyntheticConfig = SyntheticConfig(), *, cues: Cues = "both"
) -> torch.Tensor:
    """Each class's cues without background or jitter, on mid-grey: ``(C, 3, H, W)`` in [0, 1].

    What a model would have to find in the noise; plot it next to ``synthetic_examples``.
    """
    if cues not in CUES:
        raise ValueError(f"cues must be one of {CUES}, got {cues!r}")
    layouts = _class_layouts(config)
    c, size = config.num_classes, config.image_size
    images = torch.full((c, 3, size, size), 0.5)
    if cues in ("both", "low"):
        images += config.low_cue * _render_blobs(
            layouts.centers, layouts.widths, layouts.colors, size
        )
    if cues in ("both", "high"):
        gains = torch.full((c,), config.high_cue)
        images += _render_plaid(
            layouts.angles, layouts.frequencies, torch.zeros(c), torch.zeros(c, 2), gains, size
        )
    return images.clamp_(0.0, 1.0)


def synthetic_examples(
    config: SyntheticConfig = SyntheticConfig(),
    *,
    per_class: int = 4,
    split: Split = "train",
    cues: Cues = "both",
) -> torch.Tensor:
    """``per_class`` example images of every class: ``(C, per_class, 3, H, W)`` in [0, 1]."""
    images, labels = make_synthetic(
        config.num_classes * per_class, config=config, split=split, cues=cues
    ).tensors
    order = torch.argsort(labels, stable=True)  # balanced labels: exactly per_class of each
    return images[order].view(config.num_classes, per_class, *images.shape[1:])


def radial_power_spectrum(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean power spectrum of ``(..., H, W)`` images, averaged over rings of equal frequency.

    Returns ``(frequencies, power)``, each ``(H // 2,)``: ring k holds the FFT bins whose radius
    sqrt(fx² + fy²) rounds to k / H cycles/pixel, for k = 1 … H / 2 (DC left out); frequencies are
    in units of π rad/pixel like everywhere in the course (2k / H; Nyquist = 1). The mean is
    removed per image first. A 1/f^α amplitude spectrum gives a line of slope −2α in log–log axes.
    """
    h, w = images.shape[-2:]
    if h != w:
        raise ValueError(f"radial_power_spectrum needs square images, got {h}x{w}")
    x = images.reshape(-1, h, w).double()
    x = x - x.mean(dim=(-2, -1), keepdim=True)
    power = (torch.fft.fft2(x).abs() ** 2).mean(dim=0) / (h * w)  # (H, W)
    fy = torch.fft.fftfreq(h, dtype=torch.float64).view(h, 1)
    fx = torch.fft.fftfreq(w, dtype=torch.float64).view(1, w)
    ring = torch.round(torch.sqrt(fx**2 + fy**2) * h).long().flatten()
    keep = (ring >= 1) & (ring <= h // 2)
    sums = torch.bincount(ring[keep], weights=power.flatten()[keep], minlength=h // 2 + 1)
    counts = torch.bincount(ring[keep], minlength=h // 2 + 1)
    k = torch.arange(1, h // 2 + 1)
    return (2 * k / h).float(), (sums[1:] / counts[1:]).float()
