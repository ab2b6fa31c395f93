"""The paper's diagnostics for any classifier, at sizes chosen by a profile.

:func:`run_diagnostics` runs, on a few batches of a dataset: the Hessian max-eigenvalue spectrum
(C3, C4; Fig. 1c, 4), 1-D and 2-D filter-normalised loss surfaces (Fig. 1a), the Fourier
Δ log amplitude of every feature map (C5; Fig. 2a, 8), the feature-map variance (C7; Fig. 9) and
the accuracy drop under band-limited noise (C6; Fig. 2b). It returns plain JSON-ready values;
:mod:`course_lib.analyse.report` draws them. The feature maps come from
:func:`course_lib.analysis.features.collect_feature_maps`, so any model it understands works
unchanged (course models, timm, torchvision).
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from course_lib.analysis.features import collect_feature_maps
from course_lib.analysis.fourier import FourierProfile
from course_lib.analysis.landscape import (
    filter_normalized_direction,
    filter_normalized_direction_pair,
    loss_surface_1d,
    loss_surface_2d,
)
from course_lib.analysis.robustness import noise_sweep
from course_lib.analysis.spectra import (
    max_eigenvalue_spectrum,
    negative_proportion,
    nep_design_effect,
    spectrum_summary,
)
from course_lib.analysis.variance import VarianceProfile
from course_lib.models import POSITION_PARAMETERS

ANALYSES = ("hessian", "landscape_1d", "landscape_2d", "fourier", "variance", "noise")

# The official landscape notebook leaves position embeddings and relative position biases
# out of the random directions.
LANDSCAPE_EXCLUDE = (*POSITION_PARAMETERS, "relative_position", "class_token")

Batch = tuple[Tensor, Tensor]


@dataclass(frozen=True)
class Sizes:
    """How much of each diagnostic to compute: the profile decides, the model's size the cost."""

    batch_size: int  # images per batch (the paper's Hessian batches hold 16)
    hessian_batches: int  # rows of the max-eigenvalue spectrum (one mini-batch each)
    hessian_k: int  # eigenvalues per batch (the paper: top-5 by magnitude)
    hessian_max_iter: int  # Hessian-vector products per batch, at most
    landscape_points: int  # points of the 1-D curve over [-1, 1]
    landscape_grid: int  # side of the 2-D grid over [-1, 1]²
    landscape_batches: int  # batches each loss value averages over
    noise_centers: tuple[float, ...]  # band centres, units of π
    noise_magnitudes: tuple[float, ...]  # RMS noise per pixel, in units of the normalised input
    noise_batches: int
    image_size: int  # default image side

    @property
    def n_batches(self) -> int:
        """Batches to read from the data: enough for every diagnostic."""
        return max(self.hessian_batches, self.landscape_batches, self.noise_batches)


SIZES: dict[str, Sizes] = {
    # seconds on a CPU for a small model: a check that everything runs
    "smoke": Sizes(8, 2, 1, 8, 5, 3, 1, (0.1, 0.5, 0.9), (0.1, 0.5), 1, 32),
    # minutes on a laptop CPU for a ResNet-18-sized model at 32×32
    "laptop": Sizes(32, 8, 3, 40, 11, 7, 2, (0.1, 0.3, 0.5, 0.7, 0.9), (0.1, 0.3, 1.0), 4, 32),
    # the paper's sizes (batch 16, top-5 "LM", 21×21 grid, ten 0.1π bands) on a GPU
    "gpu": Sizes(
        16,
        64,
        5,
        100,
        21,
        21,
        8,
        tuple(round(0.05 + 0.1 * i, 2) for i in range(10)),
        (0.1, 0.3, 1.0, 3.0),
        32,
        224,
    ),
}


def sizes_for(profile: str) -> Sizes:
    """The :class:`Sizes` of a profile name (``smoke``, ``laptop``, ``gpu``)."""
    if profile not in SIZES:
        raise ValueError(f"unknown profile {profile!r}; valid: {', '.join(SIZES)}")
    return SIZES[profile]


def hessian_spectrum(model: nn.Module, batches: Sequence[Batch], sizes: Sizes, *, progress: bool):
    """Top-``k`` Hessian eigenvalues (largest magnitude, as the paper) of every batch.

    Calls :func:`course_lib.analysis.hessian.max_eigenvalue_spectrum` with the cross-entropy
    (NLL) and no weight-decay term, model in eval mode. Cost grows with the parameters and the
    batch: each Hessian-vector product costs about two forward+backward passes. Measured once
    (CPU time of one thread, torch 2.14): torchvision ResNet-50 at 224×224, batches of 8, top-1
    with at most 10 products: 121 s for 2 batches (a forward pass takes 1.7 s, forward+backward
    4.5 s); the ``gpu`` profile's 64 batches of 16 with top-5 need a GPU.
    """
    # Warnings (batches that did not converge within max_iter) go into the results and the
    # report instead of stderr, where a notebook or a progress bar would bury them.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rows = max_eigenvalue_spectrum(
            model,
            nn.CrossEntropyLoss(),
            list(batches[: sizes.hessian_batches]),
            k=sizes.hessian_k,
            which="LM",
            max_iter=sizes.hessian_max_iter,
            generator=torch.Generator().manual_seed(0),
            progress=progress,
        )
    nep = negative_proportion(rows, design_effect=nep_design_effect([rows]))
    return {
        "warnings": [str(w.message) for w in caught],
        "eigenvalues": rows.tolist(),
        "which": "LM",
        "k": sizes.hessian_k,
        **{k: _finite_or_none(v) for k, v in spectrum_summary(rows).items()},
        "nep_interval": [nep.low, nep.high],  # 95 %, values of one batch counted as alike
        "design_effect": nep.design_effect,
    }


def loss_landscapes(
    model: nn.Module, batches: Sequence[Batch], sizes: Sizes, *, progress: bool
) -> tuple[dict, dict]:
    """1-D and 2-D loss surfaces along filter-normalised random directions (NLL only).

    Calls :func:`course_lib.analysis.landscape.loss_surface_1d` and ``loss_surface_2d`` on
    ``landscape_batches`` batches; position embeddings and class tokens are left out of the
    directions, as in the official notebook. Cost: one forward pass over those batches per grid
    point (``points + grid²`` of them). Measured once (CPU time of one thread): torchvision
    ResNet-50 at 224×224, one batch of 8, 3 + 3×3 points: 11.7 s, ≈ 1 s a point; the ``gpu``
    profile's 21 + 21×21 points over 8 batches of 16 are ≈ 7,000 such forward passes.
    """
    data = list(batches[: sizes.landscape_batches])
    loss_fn = nn.CrossEntropyLoss()
    generator = torch.Generator().manual_seed(0)
    d = filter_normalized_direction(model, generator=generator, exclude=LANDSCAPE_EXCLUDE)
    alphas = np.linspace(-1.0, 1.0, sizes.landscape_points)
    one = loss_surface_1d(model, loss_fn, data, d, alphas, progress=progress)
    pair = filter_normalized_direction_pair(model, generator=generator, exclude=LANDSCAPE_EXCLUDE)
    coords = np.linspace(-1.0, 1.0, sizes.landscape_grid)
    two = loss_surface_2d(model, loss_fn, data, pair, coords, coords, progress=progress)
    return (
        {
            "alphas": one.alphas.tolist(),
            "loss": one.loss.tolist(),
            "accuracy": one.accuracy.tolist(),
        },
        {
            "xs": two.xs.tolist(),
            "ys": two.ys.tolist(),
            "loss": two.loss.tolist(),
            "accuracy": two.accuracy.tolist(),
        },
    )


def feature_profiles(model: nn.Module, images: Tensor) -> tuple[dict, dict]:
    """Fourier Δ log amplitude and variance of every feature map, from one forward pass."""
    maps = collect_feature_maps(model, images)
    prefix = getattr(model, "num_prefix_tokens", None)
    fourier = FourierProfile.from_feature_maps(maps, prefix)
    variance = VarianceProfile.from_feature_maps(maps, prefix)
    return (
        {
            "names": fourier.names,
            "kinds": fourier.kinds,
            "depth": fourier.depth.tolist(),
            "delta": [d.tolist() for d in fourier.delta],
            "frequencies": [f.tolist() for f in fourier.frequencies],
            "sizes": fourier.sizes,
            "high_frequency": fourier.high_frequency.tolist(),
        },
        {
            "names": variance.names,
            "kinds": variance.kinds,
            "depth": variance.depth.tolist(),
            "values": [_finite_or_none(v) for v in variance.values.tolist()],
        },
    )


def noise_robustness(model: nn.Module, batches: Sequence[Batch], sizes: Sizes) -> dict:
    """Accuracy drop under band-limited noise for every band centre × magnitude (Fig. 2b)."""
    sweep = noise_sweep(
        model,
        list(batches[: sizes.noise_batches]),
        sizes.noise_centers,
        sizes.noise_magnitudes,
    )
    return {
        "centers": sweep.centers.tolist(),
        "magnitudes": sweep.magnitudes.tolist(),
        "width": sweep.width,
        "clean_accuracy": sweep.clean_accuracy,
        "accuracy": sweep.accuracy.tolist(),
        "drop": sweep.drop.tolist(),
        "num_samples": sweep.num_samples,
    }


def run_diagnostics(
    model: nn.Module,
    batches: Sequence[Batch],
    sizes: Sizes,
    *,
    progress: bool = True,
    analyses: Sequence[str] = ANALYSES,
) -> dict[str, Any]:
    """Every diagnostic in ``analyses`` on ``batches`` (a list of ``(images, labels)``).

    Returns ``{name: values}`` with plain lists and floats (NaN → ``None``), plus ``"seconds"``
    per diagnostic and the ``"sizes"`` used. The model is left as it was (the analyses restore
    its weights and train/eval flags).
    """
    unknown = sorted(set(analyses) - set(ANALYSES))
    if unknown:
        raise ValueError(f"unknown analyses {unknown}; valid: {', '.join(ANALYSES)}")
    if len(batches) < sizes.n_batches:
        raise ValueError(f"need {sizes.n_batches} batches, got {len(batches)}")
    steps: dict[str, Callable[[], Any]] = {
        "hessian": lambda: {"hessian": hessian_spectrum(model, batches, sizes, progress=progress)},
        "landscape": lambda: dict(
            zip(
                ("landscape_1d", "landscape_2d"),
                loss_landscapes(model, batches, sizes, progress=progress),
                strict=True,
            )
        ),
        "features": lambda: dict(
            zip(("fourier", "variance"), feature_profiles(model, batches[0][0]), strict=True)
        ),
        "noise": lambda: {"noise": noise_robustness(model, batches, sizes)},
    }
    wanted = {
        "hessian": "hessian" in analyses,
        "landscape": bool({"landscape_1d", "landscape_2d"} & set(analyses)),
        "features": bool({"fourier", "variance"} & set(analyses)),
        "noise": "noise" in analyses,
    }
    results: dict[str, Any] = {"sizes": asdict(sizes), "seconds": {}}
    todo = [name for name, on in wanted.items() if on]
    for name in tqdm(todo, desc="diagnostics", disable=not progress):
        start = time.perf_counter()
        results.update(steps[name]())
        results["seconds"][name] = round(time.perf_counter() - start, 3)
    return results


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None
