"""Feature-map variance over depth: MSAs reduce it, Convs and MLPs increase it (claim C7).

Paper: Park & Kim 2022, Fig. 9 (one test batch; variance per block against normalized depth).
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


def feature_variance(feature_map: Tensor, num_prefix_tokens: int | None = None) -> Tensor:
    """Variance over the spatial positions, averaged over batch and channels: a scalar tensor.

    ``feature_map`` is ``[B, C, H, W]`` or tokens ``[B, N, D]`` (variance over the token axis,
    prefix tokens dropped as in :func:`~course_lib.analysis.features.to_grid`). Uses the unbiased
    estimator (divides by ``H*W - 1``), as the paper's code does with ``Tensor.var``; a 1x1 map
    gives NaN.
    """
    grid = to_grid(feature_map, num_prefix_tokens)  # (B, C, H, W)
    if grid.dtype not in (torch.float32, torch.float64):
        grid = grid.float()
    n = grid.shape[-2] * grid.shape[-1]
    if n < 2:
        return torch.tensor(float("nan"), dtype=grid.dtype, device=grid.device)
    # Two-pass formula: on small maps ~10x faster than Tensor.var (Welford) and as accurate.
    centered = grid - grid.mean(dim=(-2, -1), keepdim=True)
    return centered.square().sum(dim=(-2, -1)).mean() / (n - 1)


@dataclass
class VarianceProfile:
    """Feature-map variance of every block of a model (paper Fig. 9); tensors on the CPU."""

    names: list[str]  # module names, in forward order
    kinds: list[str]  # "stem", "embed", "conv", "msa", "mlp" or "block"
    depth: Tensor  # (L,) normalized depth i / (L - 1)
    values: Tensor  # (L,) feature-map variance per depth

    @classmethod
    def from_feature_maps(
        cls, maps: Sequence[FeatureMap], num_prefix_tokens: int | None = None
    ) -> VarianceProfile:
        """From collected maps, as :meth:`FourierProfile.from_feature_maps
        <course_lib.analysis.fourier.FourierProfile.from_feature_maps>` (same arguments)."""
        values = [feature_variance(grid).cpu() for grid in grids_of(maps, num_prefix_tokens)]
        return cls(**depth_index(maps), values=torch.stack(values))


def variance_profile(
    model: nn.Module, x: Tensor, modules: ModuleSpec | None = None
) -> VarianceProfile:
    """Feature-map variance of every block's output for one batch ``x`` (paper Fig. 9).

    One forward pass (:func:`~course_lib.analysis.features.collect_feature_maps`: eval mode, no
    grad, mode restored); token maps read by hooks drop ``model.num_prefix_tokens`` leading
    tokens when the model has that attribute.
    """
    maps = _collect_feature_maps(model, x, modules, "variance_profile")
    return VarianceProfile.from_feature_maps(maps, getattr(model, "num_prefix_tokens", None))
