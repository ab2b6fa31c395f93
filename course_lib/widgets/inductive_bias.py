"""Chapter 01's "try it" widget: which input pixels one layer of each family can mix.

:func:`interaction_range_explorer` returns the static figure of
:func:`~course_lib.plots.inductive_bias.plot_interaction_range` unless widgets are wanted (see
:func:`course_lib.widgets.use_widgets`), so the book shows a real figure where a live notebook
shows sliders.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from matplotlib.figure import Figure

from course_lib.config import Profile
from course_lib.data import synthetic_examples
from course_lib.experiments import resolve_model_name
from course_lib.models import create_model
from course_lib.plots.inductive_bias import plot_interaction_range
from course_lib.widgets import figure_png, use_widgets

if TYPE_CHECKING:
    import ipywidgets


@dataclass(frozen=True)
class ModelGeometry:
    """Image size, conv kernel, ViT patch size and local-ViT neighbourhood of a profile's models."""

    image_size: int
    kernel: int  # every conv of the course's ResNets is 3×3 (1×1 aside)
    patch_size: int  # the ViT's
    local_patch_size: int  # the local ViT's
    neighbourhood: int  # the local ViT's attention neighbourhood (k×k tokens)


def model_geometry(profile: Profile) -> ModelGeometry:
    """The :class:`ModelGeometry` of ``profile``'s ViT and local ViT (built untrained)."""
    vit = create_model(resolve_model_name("vit", profile), image_size=profile.image_size)
    local = create_model(resolve_model_name("local_vit", profile), image_size=profile.image_size)
    return ModelGeometry(
        image_size=profile.image_size,
        kernel=3,
        patch_size=vit.config.patch_size,
        local_patch_size=local.config.patch_size,
        neighbourhood=local.config.neighbourhood,
    )


def interaction_range_explorer(
    profile: Profile, *, interactive: bool | None = None
) -> Figure | ipywidgets.Widget:
    """Try it: move an output position and add layers; see which pixels each family can mix.

    Static (no live front-end): the figure of
    :func:`~course_lib.plots.inductive_bias.plot_interaction_range` for one layer, drawn on a
    synthetic training image. Interactive: sliders for the number of layers and the output's row
    and column.
    """
    geometry = model_geometry(profile)
    size = geometry.image_size
    config = dataclasses.replace(profile.synthetic, image_size=size)
    image = synthetic_examples(config, per_class=1)[0, 0]
    options = {
        "kernel": geometry.kernel,
        "patch_size": geometry.patch_size,
        "neighbourhood": geometry.neighbourhood,
    }
    if geometry.local_patch_size != geometry.patch_size:
        options["patch_size"] = geometry.local_patch_size
    if not use_widgets(interactive):
        return plot_interaction_range(image, layers=1, **options)

    import ipywidgets as widgets

    slider = {"continuous_update": False}
    layers = widgets.IntSlider(value=1, min=1, max=size // 2, description="layers", **slider)
    row = widgets.IntSlider(value=size // 2 - 3, min=0, max=size - 1, description="row", **slider)
    col = widgets.IntSlider(
        value=size // 2 + 2, min=0, max=size - 1, description="column", **slider
    )
    picture = widgets.Image(format="png")

    def redraw(_: Any = None) -> None:
        fig = plot_interaction_range(
            image, position=(row.value, col.value), layers=layers.value, **options
        )
        picture.value = figure_png(fig)

    for control in (layers, row, col):
        control.observe(redraw, names="value")
    redraw()
    return widgets.VBox([widgets.HBox([layers, row, col]), picture])


__all__ = ["ModelGeometry", "interaction_range_explorer", "model_geometry"]
