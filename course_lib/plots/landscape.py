"""Figures for loss landscapes: 1-D curves, 2-D contours and 3-D surfaces (paper Fig. 1a).

Every function takes the dataclasses of :mod:`course_lib.analysis.landscape`, returns its Axes
and never calls ``plt.show()``. Axis labels carry the surface's ``label`` ("NLL" or
"NLL + L2 (wd=...)"), so a figure always says which loss it shows.
"""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes

from course_lib.analysis.landscape import Surface1D, Surface2D
from course_lib.plots.style import axes_or_new, color_for, course_style

LANDSCAPE_CMAP = "plasma"  # the official notebook's colour map for surfaces


def plot_loss_curve_1d(
    surfaces: Mapping[str, Surface1D] | Surface1D,
    ax: Axes | None = None,
    *,
    quantity: str = "loss",
    relative: bool = False,
) -> Axes:
    """Loss (or accuracy) along one filter-normalized direction, one line per model.

    Args:
        surfaces: ``{model name: Surface1D}`` (each line in the model's colour) or one surface.
        quantity: ``"loss"`` or ``"accuracy"``.
        relative: subtract each curve's value at ``alpha = 0`` (the trained weights), so that
            curves of models with different minima compare by their rise: flatness.
    """
    if quantity not in ("loss", "accuracy"):
        raise ValueError(f"quantity must be 'loss' or 'accuracy', got {quantity!r}")
    surfaces = {"": surfaces} if isinstance(surfaces, Surface1D) else dict(surfaces)
    with course_style():
        ax = axes_or_new(ax, figsize=(5.0, 4.0))
        for name, surface in surfaces.items():
            values = getattr(surface, quantity)
            if relative:
                values = values - np.interp(0.0, surface.alphas, values)
            color = color_for(name) if name else None
            ax.plot(surface.alphas, values, color=color, label=name or None, lw=1.8)
        label = next(iter(surfaces.values())).label if quantity == "loss" else "Accuracy"
        ax.set_xlabel("α (step along a filter-normalized direction)")
        ax.set_ylabel(f"Δ {label} (vs. α = 0)" if relative else label)
        ax.axvline(0.0, color="0.6", lw=0.8, ls="--")
        if any(surfaces):
            ax.legend()
    return ax


def plot_loss_contour(
    surface: Surface2D,
    ax: Axes | None = None,
    *,
    name: str | None = None,
    levels: int = 20,
    relative: bool = True,
) -> Axes:
    """Filled contours of the loss over the 2-D grid, trained weights marked at (0, 0).

    Args:
        name: the model's name, for the title and the marker in the model's colour.
        relative: subtract the surface's minimum (as the official notebook does).
    """
    with course_style():
        ax = axes_or_new(ax, figsize=(5.0, 4.0))
        loss = surface.loss - np.nanmin(surface.loss) if relative else surface.loss
        filled = ax.contourf(surface.xs, surface.ys, loss, levels=levels, cmap=LANDSCAPE_CMAP)
        ax.contour(surface.xs, surface.ys, loss, levels=levels, colors="white", linewidths=0.4)
        colorbar = ax.figure.colorbar(filled, ax=ax)
        colorbar.set_label(f"{surface.label} − min" if relative else surface.label)
        color = color_for(name) if name else "black"
        ax.plot(0.0, 0.0, marker="*", ms=12, color=color, mec="white", ls="none")
        _label_grid_axes(ax, name)
        ax.set_aspect("equal")
    return ax


def plot_loss_surface_3d(
    surface: Surface2D,
    ax: Axes | None = None,
    *,
    name: str | None = None,
    relative: bool = True,
    clip: float | None = None,
    elev: float = 15.0,
    azim: float = 15.0,
) -> Axes:
    """The loss as a 3-D surface over the grid, as in the paper's Fig. 1a.

    Args:
        name: the model's name, for the title (in the model's colour).
        relative: subtract the surface's minimum (as the official notebook does).
        clip: hide points whose (relative) loss exceeds this value (the official notebook hides
            values above 42), so that a steep rim does not flatten the picture.
        elev, azim: viewing angles in degrees (the official notebook uses 15 and 15).
        ax: a 3-D Axes (``projection="3d"``); a new figure is made when ``None``.
    """
    with course_style():
        if ax is None:
            ax = plt.figure(figsize=(5, 4.5)).add_subplot(projection="3d")
        loss = surface.loss - np.nanmin(surface.loss) if relative else surface.loss.copy()
        if clip is not None:
            loss[loss > clip] = np.nan
        grid_x, grid_y = np.meshgrid(surface.xs, surface.ys)  # (ny, nx), like loss
        ax.plot_surface(grid_x, grid_y, loss, cmap=LANDSCAPE_CMAP, linewidth=0, antialiased=True)
        ax.view_init(elev=elev, azim=azim)
        ax.set_zlabel(f"{surface.label} − min" if relative else surface.label)
        _label_grid_axes(ax, name)
    return ax


def _label_grid_axes(ax: Axes, name: str | None) -> None:
    ax.set_xlabel("x (direction 1)")
    ax.set_ylabel("y (direction 2)")
    if name:
        ax.set_title(name, color=color_for(name))
