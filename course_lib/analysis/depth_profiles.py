"""What each block does to its feature map, over depth (claims C5 and C7, paper Fig. 8 and 9).

:func:`analyse_feature_maps` takes the Fourier profile (C5) and the variance profile (C7) of a
model from one forward pass; :func:`high_frequency_changes` and :func:`variance_changes` turn a
profile into one :class:`BlockChange` per block (its output's statistic minus its input's), and
:func:`mean_change_by_kind` averages them per kind of block (MSA, MLP, Conv, downsampling Conv).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from torch import Tensor, nn

from course_lib.analysis.features import collect_feature_maps
from course_lib.analysis.fourier import FourierProfile
from course_lib.analysis.variance import VarianceProfile

KIND_LABELS: dict[str, str] = {"msa": "MSA", "mlp": "MLP", "conv": "Conv"}
DOWNSAMPLING = "Conv ↓2"  # category of a block whose output is smaller than its input


@dataclass
class FeatureAnalysis:
    """Fourier (C5) and variance (C7) profiles of one model, from the same feature maps."""

    fourier: FourierProfile
    variance: VarianceProfile


def analyse_feature_maps(model: nn.Module, images: Tensor) -> FeatureAnalysis:
    """Both profiles of ``model`` for one batch, from one forward pass (hooks, eval, no grad)."""
    maps = collect_feature_maps(model, images)
    prefix = getattr(model, "num_prefix_tokens", None)
    return FeatureAnalysis(
        FourierProfile.from_feature_maps(maps, prefix),
        VarianceProfile.from_feature_maps(maps, prefix),
    )


@dataclass(frozen=True)
class BlockChange:
    """What one block did to a feature-map statistic: its output's value minus its input's."""

    model: str  # model name
    name: str  # module name of the block
    kind: str  # "msa", "mlp" or "conv"
    depth: float  # normalized depth of the block's output
    downsamples: bool  # the output map is smaller than the input map
    before: float  # statistic of the block's input (the previous feature map)
    after: float  # statistic of the block's output
    change: float  # after - before (Fourier) or relative change in % (variance)

    @property
    def category(self) -> str:
        """``"MSA"``, ``"MLP"``, ``"Conv"`` or ``"Conv ↓2"`` (a downsampling block)."""
        return DOWNSAMPLING if self.downsamples else KIND_LABELS.get(self.kind, self.kind)


def high_frequency_changes(
    profile: FourierProfile, model: str = "model", reference: str = "dc"
) -> list[BlockChange]:
    """Per block: Δ log amplitude at its output's highest frequency minus its input's there.

    Input and output are compared at the same *physical* frequency: a block that halves the
    resolution maps frequency ½π of its input to π of its output, so its output's last point is
    compared with its input's Δ at ½π (interpolated on the input's curve), not with the input's
    last point. Without this, subsampling alone would seem to raise high frequencies (the
    spectrum falls with frequency). Negative change: the block removed high frequencies relative
    to the reference (low-pass); positive: it amplified them (high-pass). The stem / patch
    embedding has no feature map before it and is skipped.

    ``reference="dc"`` is the paper's Δ (relative to the mean over positions). A block that
    adds a large mean to its map (a ReLU branch, attention that averages all tokens) lowers Δ at
    *every* frequency at once. ``reference="lowest"`` measures the **tilt** instead: the highest
    frequency relative to the lowest non-zero one of the output map (the input read at the same
    two physical frequencies), which a change of the mean does not move.
    """
    if reference not in ("dc", "lowest"):
        raise ValueError(f"reference must be 'dc' or 'lowest', not {reference!r}")
    changes = []
    for i in range(1, len(profile.kinds)):
        if profile.kinds[i] in ("stem", "embed"):
            continue
        size_in, size_out = profile.sizes[i - 1], profile.sizes[i]
        scale = size_out / size_in  # output frequency (π of the output) → π of the input map
        f_out, d_out = profile.frequencies[i].numpy(), profile.delta[i].numpy()
        f_in, d_in = profile.frequencies[i - 1].numpy(), profile.delta[i - 1].numpy()
        before = float(np.interp(f_out[-1] * scale, f_in, d_in))
        after = float(d_out[-1])
        if reference == "lowest":
            before -= float(np.interp(f_out[1] * scale, f_in, d_in))
            after -= float(d_out[1])
        changes.append(
            _change(profile, i, model, size_out < size_in, before, after, after - before)
        )
    return changes


def variance_changes(
    profile: VarianceProfile, sizes: Sequence[int] | None = None, model: str = "model"
) -> list[BlockChange]:
    """Per block: relative change of the feature-map variance, ``100 (after / before - 1)`` %.

    ``sizes`` (the spatial side of every map, e.g. ``FourierProfile.sizes``) marks the blocks
    that downsample. The stem / patch embedding is skipped.
    """
    changes = []
    values = profile.values.tolist()
    for i in range(1, len(profile.kinds)):
        if profile.kinds[i] in ("stem", "embed"):
            continue
        before, after = values[i - 1], values[i]
        down = sizes is not None and sizes[i] < sizes[i - 1]
        changes.append(_change(profile, i, model, down, before, after, 100 * (after / before - 1)))
    return changes


def _change(
    profile: FourierProfile | VarianceProfile,
    i: int,
    model: str,
    down: bool,
    before: float,
    after: float,
    change: float,
) -> BlockChange:
    return BlockChange(
        model=model,
        name=profile.names[i],
        kind=profile.kinds[i],
        depth=float(profile.depth[i]),
        downsamples=down,
        before=before,
        after=after,
        change=change,
    )


def mean_change_by_kind(changes: Sequence[BlockChange]) -> dict[str, float]:
    """Mean change per category (``"MSA"``, ``"MLP"``, ``"Conv"``, ``"Conv ↓2"``) present."""
    groups: dict[str, list[float]] = {}
    for c in changes:
        groups.setdefault(c.category, []).append(c.change)
    return {k: float(np.mean(v)) for k, v in groups.items()}


@dataclass
class BlockChanges:
    """Per-block changes of every analysed model (keyed by model name), three statistics."""

    fourier: dict[str, list[BlockChange]]  # Δ log amplitude at the top frequency (paper, C5)
    tilt: dict[str, list[BlockChange]]  # top frequency relative to the lowest non-zero one
    variance: dict[str, list[BlockChange]]  # relative change of the variance in % (C7)


def block_changes(analyses: Mapping[str, FeatureAnalysis]) -> BlockChanges:
    """:func:`high_frequency_changes` (both references) and :func:`variance_changes` per model."""
    items = analyses.items()
    return BlockChanges(
        fourier={n: high_frequency_changes(a.fourier, n) for n, a in items},
        tilt={n: high_frequency_changes(a.fourier, n, reference="lowest") for n, a in items},
        variance={n: variance_changes(a.variance, a.fourier.sizes, n) for n, a in items},
    )


__all__ = [
    "DOWNSAMPLING",
    "KIND_LABELS",
    "BlockChange",
    "BlockChanges",
    "FeatureAnalysis",
    "analyse_feature_maps",
    "block_changes",
    "high_frequency_changes",
    "mean_change_by_kind",
    "variance_changes",
]
