"""Chapter 03's "try it" widget: add noise in one frequency band and watch two models react.

:func:`noise_explorer` returns a static figure for its default values unless widgets are wanted
(see :func:`course_lib.widgets.use_widgets`), so the book shows a real figure where a live
notebook shows sliders. :func:`~course_lib.analysis.robustness.noise_demo` does the computation
and works without ipywidgets.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from matplotlib.figure import Figure
from torch import Tensor, nn

from course_lib.analysis.robustness import noise_demo, predict
from course_lib.plots.frequency_chapter import plot_noise_demo
from course_lib.widgets import figure_png, use_widgets
from course_lib.widgets.frames import FrameSlider, frame_slider

if TYPE_CHECKING:
    import ipywidgets


#: Band centres (units of π) of the static page's frames.
STATIC_CENTERS = (0.1, 0.3, 0.5, 0.7, 0.9)


def noise_explorer(
    models: Mapping[str, nn.Module],
    images: Tensor,
    labels: Tensor,
    *,
    mean: Sequence[float],
    std: Sequence[float],
    classes: Sequence[str] | None = None,
    center: float = 0.9,
    magnitude: float = 1.0,
    width: float = 0.1,
    index: int = 0,
    interactive: bool | None = None,
) -> FrameSlider | ipywidgets.Widget:
    """Pick a frequency band and a noise strength; see a noisy test image and each model's
    prediction, and each model's accuracy on the whole batch, clean vs. noisy.

    ``images`` are normalised with ``mean``/``std`` (used to display them). Static (see
    :func:`~course_lib.widgets.use_widgets`): a :class:`~course_lib.widgets.frames.FrameSlider`
    over the band centres ``STATIC_CENTERS`` and ``center``, at ``magnitude``, for image
    ``index``; it works on a page without a kernel. Interactive: a ``VBox`` with sliders for the
    band centre, the RMS magnitude and the image, and the figure.
    """
    clean = {name: predict(m, images) for name, m in models.items()}

    def figure(c: float, m: float, i: int) -> Figure:
        demo = noise_demo(
            models,
            images,
            labels,
            center=c,
            magnitude=m,
            width=width,
            index=i,
            clean_predictions=clean,
        )
        return plot_noise_demo(demo, mean, std, classes)

    if not use_widgets(interactive):
        centers = sorted({center, *(c for c in STATIC_CENTERS if width / 2 <= c <= 1 - width / 2)})
        return frame_slider(
            lambda c: figure(c, magnitude, index),
            centers,
            title=f"noise band (RMS {magnitude:g})",
            label=lambda c: f"{c:.2f}π",
            start=centers.index(center),
        )

    import ipywidgets as widgets

    common = {"continuous_update": False, "readout_format": ".2f"}
    center_slider = widgets.FloatSlider(
        value=center, min=width / 2, max=1 - width / 2, step=0.05, description="band (×π)", **common
    )
    magnitude_slider = widgets.FloatSlider(
        value=magnitude, min=0.0, max=3.0, step=0.05, description="RMS", **common
    )
    index_slider = widgets.IntSlider(
        value=index, min=0, max=len(labels) - 1, description="image", continuous_update=False
    )
    image = widgets.Image(format="png")

    def redraw(_: Any = None) -> None:
        fig = figure(center_slider.value, magnitude_slider.value, index_slider.value)
        image.value = figure_png(fig)

    for control in (center_slider, magnitude_slider, index_slider):
        control.observe(redraw, names="value")
    redraw()
    return widgets.VBox([widgets.HBox([center_slider, magnitude_slider, index_slider]), image])
