"""Figures of chapter 02's loss surfaces: 1-D curves, 2-D contours and 3-D views, side by side.

Every function takes ``{model name: surface}`` mappings, so each family keeps the course's
colour, and returns the Figure it drew on without calling ``plt.show()``. The spectra's figures
are in :mod:`course_lib.plots.landscape_spectra`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import BoundaryNorm
from matplotlib.figure import Figure

from course_lib.analysis.landscape import Surface1D, Surface2D
from course_lib.plots.landscape import LANDSCAPE_CMAP, plot_loss_curve_1d, plot_loss_surface_3d
from course_lib.plots.style import color_for, course_style


def plot_curves_1d(
    curves: Mapping[str, Sequence[Surface1D]], *, figsize: tuple[float, float] = (10.0, 3.6)
) -> Figure:
    """Loss rise along each random direction (one panel per direction), one line per model."""
    n = len(next(iter(curves.values())))
    with course_style():
        fig, axes = plt.subplots(1, n, figsize=figsize, sharey=True, squeeze=False)
        for i, ax in enumerate(axes[0]):
            plot_loss_curve_1d({name: c[i] for name, c in curves.items()}, ax, relative=True)
            ax.set_title(f"direction {i + 1}")
            if i:
                ax.set_ylabel("")
        fig.tight_layout()
    return fig


def plot_contours(
    surfaces: Mapping[str, Surface2D],
    *,
    levels: int = 16,
    decades: float = 3.0,
    figsize: tuple[float, float] = (10.5, 4.2),
) -> Figure:
    """Contours of each model's surface (loss − its minimum) on one shared, logarithmic scale.

    The levels are spaced geometrically over ``decades`` decades below the largest rise of all
    surfaces, each band with its own colour, so a flat surface keeps its detail next to a steep
    one (a linear scale would paint it in one colour). The trained weights are marked at (0, 0).
    """
    rises = {name: s.loss - np.nanmin(s.loss) for name, s in surfaces.items()}
    top = max(float(np.nanmax(r)) for r in rises.values())
    top = top if top > 0 else 1.0
    bounds = np.concatenate([[0.0], np.geomspace(top * 10.0**-decades, top, levels)])
    cmap = plt.get_cmap(LANDSCAPE_CMAP)
    norm = BoundaryNorm(bounds, cmap.N)
    with course_style():
        fig, axes = plt.subplots(
            1, len(surfaces), figsize=figsize, squeeze=False, constrained_layout=True
        )
        for ax, (name, surface) in zip(axes[0], surfaces.items(), strict=True):
            filled = ax.contourf(
                surface.xs,
                surface.ys,
                rises[name],
                levels=bounds,
                cmap=cmap,
                norm=norm,
                extend="neither",
            )
            ax.contour(
                surface.xs, surface.ys, rises[name], levels=bounds, colors="white", linewidths=0.3
            )
            ax.plot(0.0, 0.0, marker="*", ms=12, color=color_for(name), mec="white", ls="none")
            ax.set_xlabel("x (direction 1)")
            ax.set_ylabel("y (direction 2)")
            ax.set_title(name, color=color_for(name))
            ax.set_aspect("equal")
        bar = fig.colorbar(filled, ax=axes[0].tolist(), ticks=bounds[::3], format="%.2g")
        bar.set_label(f"{next(iter(surfaces.values())).label} − min (log-spaced levels)")
    return fig


def plot_surfaces_3d(
    surfaces: Mapping[str, Surface2D],
    *,
    elev: float = 25.0,
    azim: float = -60.0,
    clip: float | None = None,
    figsize: tuple[float, float] = (10.0, 4.5),
) -> Figure:
    """3-D surfaces (loss − its minimum) side by side, with a shared z axis (paper Fig. 1a)."""
    top = max(float(np.nanmax(s.loss - np.nanmin(s.loss))) for s in surfaces.values())
    if clip is not None:
        top = min(top, clip)
    with course_style():
        fig = plt.figure(figsize=figsize)
        for i, (name, surface) in enumerate(surfaces.items()):
            ax = fig.add_subplot(1, len(surfaces), i + 1, projection="3d")
            plot_loss_surface_3d(surface, ax, name=name, clip=clip, elev=elev, azim=azim)
            ax.set_zlim(0.0, top)
    return fig
