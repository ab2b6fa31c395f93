"""Hand-made results of chapter 03's analyses (Fourier and variance profiles, noise sweeps) whose
per-block changes and band drops are known, for testing the verdicts, prose and figures."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from course_lib.analysis import depth_profiles as dp
from course_lib.analysis.fourier import FourierProfile, frequencies
from course_lib.analysis.robustness import NoiseSweep
from course_lib.analysis.variance import VarianceProfile


def hand_profile(
    kinds: Sequence[str], sizes: Sequence[int], last: Sequence[float], *, slope: float = -2.0
) -> FourierProfile:
    """Δ curves that fall linearly (``slope · f``) except the last point, set to ``last[i]``."""
    delta, freqs = [], []
    for size, value in zip(sizes, last, strict=True):
        f = frequencies(size // 2 + 1, size)
        d = slope * f
        d[-1] = value
        delta.append(d)
        freqs.append(f)
    n = len(kinds)
    return FourierProfile(
        names=[f"b{i}" for i in range(n)],
        kinds=list(kinds),
        depth=torch.linspace(0, 1, n),
        delta=delta,
        frequencies=freqs,
        sizes=list(sizes),
        high_frequency=torch.tensor(last, dtype=torch.float32),
    )


def analysis(
    kinds: Sequence[str], sizes: Sequence[int], last: Sequence[float], variances: Sequence[float]
) -> dp.FeatureAnalysis:
    """A :class:`FeatureAnalysis` from :func:`hand_profile` and the given variances."""
    fourier = hand_profile(kinds, sizes, last)
    variance = VarianceProfile(fourier.names, fourier.kinds, fourier.depth, torch.tensor(variances))
    return dp.FeatureAnalysis(fourier, variance)


def sweep(drop_low: float, drop_high: float, clean: float = 90.0) -> NoiseSweep:
    """One magnitude (0.5), two bands (0.1π and 0.9π) with the given drops (pp)."""
    drop = torch.tensor([[drop_low, drop_high]], dtype=torch.float64)
    return NoiseSweep(
        centers=torch.tensor([0.1, 0.9]),
        magnitudes=torch.tensor([0.5]),
        width=0.1,
        clean_accuracy=clean,
        accuracy=clean - drop,
        drop=drop,
        num_samples=10,
    )


def paper_like(sign: float = 1.0) -> tuple[dp.FeatureAnalysis, dp.FeatureAnalysis]:
    """(ViT, ResNet) analyses with the paper's signs (``sign=1``) or every sign reversed (-1).

    ViT: its MSA changes Δ by -0.3·sign and the variance by -50·sign %, its MLP undoes both.
    ResNet: two same-resolution Conv blocks, each raising Δ by 0.5·sign, the variance likewise.
    """
    vit = analysis(
        ["embed", "msa", "mlp"],
        [8, 8, 8],
        [-1.0, -1.0 - 0.3 * sign, -1.0],
        [1.0, 1.0 - 0.5 * sign, 1.0],
    )
    resnet = analysis(
        ["stem", "conv", "conv"],
        [8, 8, 8],
        [-2.0, -2.0 + 0.5 * sign, -2.0 + sign],
        [1.0, 1.0 + 0.5 * sign, 1.0 + sign],
    )
    return vit, resnet
