"""Fourier analysis of feature maps: are blocks low-pass or high-pass filters? (claim C5).

Paper: Park & Kim 2022, Fig. 2a (the whole Δ log amplitude curve per depth) and Fig. 8 (its
highest-frequency point over normalized depth). MSAs lower the high-frequency amplitude relative
to DC (low-pass), Convs raise it (high-pass).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from course_lib.analysis.features import (
    FeatureMap,
    ModuleSpec,
    _collect_feature_maps,
    depth_index,
    grids_of,
    to_grid,
)
from course_lib.analysis.spectral import log_amplitude  # log(|F| + 1e-6), as the paper


def relative_log_amplitude(feature_map: Tensor, num_prefix_tokens: int | None = None) -> Tensor:
    """Δ log amplitude along the spectrum's diagonal, relative to DC: ``[H // 2 + 1]``.

    ``feature_map`` is ``[B, C, H, W]`` or tokens ``[B, N, D]`` (prefix tokens dropped, the rest
    laid on their square grid, see :func:`~course_lib.analysis.features.to_grid`). Computes
    ``log(|fft2| + 1e-6)`` over H, W, averages over batch and channels, reads the diagonal
    entries ``(k, k)``, ``k = 0 … H // 2`` of the unshifted spectrum (DC first; the last entry is
    frequency π per axis for even H) and subtracts the DC value, so entry 0 is exactly 0.

    The paper's code (roll by H/2, read ``diag[H/2:]``) stops one bin short of π; we include the
    Nyquist bin so the last point is the paper's "1.0π". Non-square maps raise ValueError: their
    diagonal would mix different frequencies per axis. Baseline: white noise (a flat spectrum)
    reads ≈ ½ log 2 ≈ 0.35 at interior frequencies and ≈ 0 at π, because the DC and Nyquist bins
    of a real map are real while the others are complex (E log|F| differs by ½ log 2).
    """
    grid = to_grid(feature_map, num_prefix_tokens)  # (B, C, H, W)
    h, w = grid.shape[-2:]
    if h != w:
        raise ValueError(f"Fourier diagonal needs a square feature map, got H={h}, W={w}")
    if grid.dtype not in (torch.float32, torch.float64):
        grid = grid.float()
    # rfft2 keeps columns 0 … W//2, which contain every diagonal entry (k, k) with k ≤ H//2.
    amplitude = log_amplitude(torch.fft.rfft2(grid)).mean(dim=(0, 1))  # (H, W//2+1)
    k = torch.arange(h // 2 + 1, device=grid.device)
    diagonal = amplitude[k, k]
    return diagonal - diagonal[0]


def frequencies(n_points: int, size: int | None = None) -> Tensor:
    """Frequencies (in units of π, per axis) of the entries of :func:`relative_log_amplitude`.

    Entry ``k`` of a map of side ``size`` is ``2k / size``. Without ``size`` the map is taken to be
    even-sized (``size = 2 (n_points - 1)``), so the points run from 0 to exactly 1 (π).
    """
    if size is None:
        size = max(2 * (n_points - 1), 1)
    elif size // 2 + 1 != n_points:
        raise ValueError(f"a map of side {size} gives {size // 2 + 1} points, not {n_points}")
    return 2 * torch.arange(n_points, dtype=torch.float32) / size


@dataclass
class FourierProfile:
    """Δ log amplitude of every feature map of a model: the numbers of paper Fig. 2a and Fig. 8.

    Curves have ragged lengths when the resolution changes with depth, hence lists. All tensors
    are on the CPU.
    """

    names: list[str]  # module names, in forward order
    kinds: list[str]  # "stem", "embed", "conv", "msa", "mlp" or "block"
    depth: Tensor  # (L,) normalized depth i / (L - 1)
    delta: list[Tensor]  # per depth (H_i // 2 + 1,): Δ log amplitude, DC first, π last
    frequencies: list[Tensor]  # per depth, same length: frequency in units of π
    sizes: list[int]  # spatial side H_i of each map
    high_frequency: Tensor  # (L,) last entry of each curve (Fig. 8's y-axis)

    @classmethod
    def from_feature_maps(
        cls, maps: Sequence[FeatureMap], num_prefix_tokens: int | None = None
    ) -> FourierProfile:
        """Build the profile from collected maps (e.g. shared with a variance analysis).

        ``num_prefix_tokens`` is the model's (see
        :func:`~course_lib.analysis.features.prefix_tokens_of`); None detects it per map.
        """
        grids = grids_of(maps, num_prefix_tokens)
        delta = [relative_log_amplitude(grid).cpu() for grid in grids]
        sizes = [grid.shape[-1] for grid in grids]
        return cls(
            **depth_index(maps),
            delta=delta,
            frequencies=[frequencies(len(d), s) for d, s in zip(delta, sizes, strict=True)],
            sizes=sizes,
            high_frequency=torch.stack([d[-1] for d in delta]),
        )


def fourier_profile(
    model: nn.Module, x: Tensor, modules: ModuleSpec | None = None
) -> FourierProfile:
    """Δ log amplitude of every block's output for one batch ``x`` (paper Fig. 2a, Fig. 8).

    One forward pass (:func:`~course_lib.analysis.features.collect_feature_maps`: eval mode, no
    grad, mode restored). Course models and timm/torchvision models give ``[B, C, H, W]`` maps
    with their class tokens already dropped; maps read by hooks (``modules=``, other models)
    that are tokens drop ``model.num_prefix_tokens`` leading tokens when the model has that
    attribute, otherwise a class token is detected from the shape.
    """
    maps = _collect_feature_maps(model, x, modules, "fourier_profile")
    return FourierProfile.from_feature_maps(maps, getattr(model, "num_prefix_tokens", None))
