"""Chapter 02's "try it": the 2-D loss surfaces from any angle, with or without the L2 term."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from course_lib.analysis.curvature import ModelSurfaces, with_l2_term
from course_lib.widgets import figure_png, use_widgets

if TYPE_CHECKING:
    import ipywidgets
    from matplotlib.figure import Figure


def surface_explorer(
    surfaces: Mapping[str, ModelSurfaces],
    *,
    weight_decay: float = 0.05,
    interactive: bool | None = None,
) -> Figure | ipywidgets.Widget:
    """Look at the 2-D surfaces from any angle, with or without the L2 term.

    ``surfaces`` is what chapter 02's ``loss_surfaces`` returns. Static (no live front-end, see
    :func:`course_lib.widgets.use_widgets`): a figure of both models' 3-D surfaces, NLL only.
    Interactive: a loss picker (NLL / NLL + L2), elevation and azimuth sliders and a clip level.
    """
    import matplotlib.pyplot as plt

    from course_lib.plots.landscape_chapter import plot_surfaces_3d

    def draw(l2: bool, elev: float = 25.0, azim: float = -60.0, clip: float | None = None):
        chosen = {
            name: with_l2_term(s.surface, s.l2, weight_decay) if l2 else s.surface
            for name, s in surfaces.items()
        }
        return plot_surfaces_3d(chosen, elev=elev, azim=azim, clip=clip)

    if not use_widgets(interactive):
        fig = draw(False)
        plt.close(fig)  # shown once, as the cell's result, not again by the inline backend
        return fig

    import ipywidgets as widgets

    loss = widgets.ToggleButtons(options=["NLL", "NLL + L2"], value="NLL", description="loss")
    slider = {"continuous_update": False}
    elev = widgets.FloatSlider(value=25, min=0, max=90, step=5, description="elevation", **slider)
    azim = widgets.FloatSlider(
        value=-60, min=-180, max=180, step=15, description="azimuth", **slider
    )
    clip = widgets.FloatLogSlider(
        value=10, base=10, min=-1, max=2, description="clip Δloss", **slider
    )
    image = widgets.Image(format="png")

    def redraw(_: Any = None) -> None:
        fig = draw(loss.value == "NLL + L2", elev.value, azim.value, clip.value)
        image.value = figure_png(fig)
        plt.close(fig)

    for control in (loss, elev, azim, clip):
        control.observe(redraw, names="value")
    redraw()
    return widgets.VBox([widgets.HBox([loss, clip]), widgets.HBox([elev, azim]), image])


__all__ = ["surface_explorer"]
