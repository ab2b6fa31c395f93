"""Figures of Hessian eigenvalue spectra (paper Fig. 1c, Fig. 4; claims C3 and C4).

Inputs come from :mod:`course_lib.analysis.hessian`; each plot takes ``{model_name: values}`` so
that every family keeps the course's colour, and returns the ``Axes`` it drew on.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor

from course_lib.analysis.spectra import spectrum_summary
from course_lib.plots.style import axes_or_new, color_for, course_style

if TYPE_CHECKING:
    from matplotlib.axes import Axes


def plot_max_eigenvalue_spectrum(
    spectra: Mapping[str, Tensor], *, ax: Axes | None = None, bins: int = 40, log: bool = True
) -> Axes:
    """Histogram density of per-batch top eigenvalues, one step line per model (paper Fig. 4).

    ``spectra[name]`` is what :func:`max_eigenvalue_spectrum` returns, (n_batches, k); all k
    values of all batches are pooled, as in the paper. The legend gives NEP (proportion of
    negative values) and APE (average positive value). The bins are shared by all models.
    """
    pooled = {name: s.detach().double().cpu().reshape(-1).numpy() for name, s in spectra.items()}
    edges = np.histogram_bin_edges(np.concatenate(list(pooled.values())), bins=bins)
    with course_style():
        ax = axes_or_new(ax, figsize=(6.0, 3.5))
        for name, values in pooled.items():
            summary = spectrum_summary(torch.from_numpy(values))
            label = f"{name} (NEP {summary['nep']:.1%}, APE {summary['ape']:.3g})"
            ax.hist(
                values,
                bins=edges,
                density=True,
                histtype="step",
                lw=2,
                color=color_for(name),
                label=label,
            )
        ax.axvline(0.0, color="black", lw=0.8, ls=":")
        if log:
            ax.set_yscale("log")
        ax.set_xlabel("top Hessian eigenvalue of a mini-batch")
        ax.set_ylabel("density (1 / eigenvalue unit)")
        ax.legend()
    return ax


def plot_spectral_density(
    densities: Mapping[str, tuple[Tensor, Tensor]], *, ax: Axes | None = None, log: bool = True
) -> Axes:
    """Eigenvalue densities from :func:`spectral_density` (``{name: (grid, density)}``)."""
    with course_style():
        ax = axes_or_new(ax, figsize=(6.0, 3.5))
        peak = 0.0
        for name, (grid, density) in densities.items():
            ax.plot(grid.cpu(), density.cpu(), lw=1.5, color=color_for(name), label=name)
            peak = max(peak, float(density.max()))
        if log:
            ax.set_yscale("log")
            ax.set_ylim(bottom=peak * 1e-6)  # the smoothed tails fall to 0
        ax.set_xlabel("Hessian eigenvalue")
        ax.set_ylabel("density (1 / eigenvalue unit)")
        ax.legend()
    return ax
