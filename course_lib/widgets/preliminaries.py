"""Chapter 00's "try it" widgets: a curvature explorer for the toy losses and a frequency filter.

Both return a static figure for their default values unless widgets are wanted (see
:func:`course_lib.widgets.use_widgets` for the rule), so the book shows a real figure where a
live notebook shows sliders. The interactive versions redraw the same figure functions
(:mod:`course_lib.plots.toy`) into an ``ipywidgets.Image``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch
from matplotlib.figure import Figure

from course_lib.analysis.toy import TOY_FUNCTIONS, curvature_at, get_toy, list_toys
from course_lib.images import band_energy_fraction, frequency_filter, sample_photo
from course_lib.plots.toy import plot_curvature, plot_frequency_panels
from course_lib.widgets import figure_png, use_widgets
from course_lib.widgets.frames import FrameSlider, frame_slider

if TYPE_CHECKING:
    import ipywidgets


def landscape_explorer(
    toy: str = "double_well",
    point: Sequence[float] = (0.2, 0.6),
    *,
    interactive: bool | None = None,
) -> Figure | ipywidgets.Widget:
    """Explore the curvature of the 2-D toy losses: pick a function, move the point.

    Shows the contours, the point, the Hessian's eigenvectors drawn with length ``∝ |λ|``
    (dark: λ > 0, magenta: λ < 0), the loss along each eigenvector next to its quadratic model,
    and the eigenvalues of the autograd Hessian beside the closed-form ones. Static
    (``interactive`` false, or no live front-end): returns :func:`plot_curvature`'s figure for
    ``toy`` at ``point``. Interactive: returns a ``VBox`` of a function picker, θ₁/θ₂ sliders,
    a text readout and the figure.
    """
    if not use_widgets(interactive):
        return plot_curvature(toy, point)

    import ipywidgets as widgets

    start = get_toy(toy)
    x0, x1, y0, y1 = start.extent
    picker = widgets.Dropdown(
        options=[(TOY_FUNCTIONS[name].title, name) for name in list_toys()],
        value=start.name,
        description="function",
    )
    slider = {"continuous_update": False, "step": 0.05, "readout_format": ".2f"}
    theta1 = widgets.FloatSlider(value=point[0], min=x0, max=x1, description="θ₁", **slider)
    theta2 = widgets.FloatSlider(value=point[1], min=y0, max=y1, description="θ₂", **slider)
    readout = widgets.HTML()
    image = widgets.Image(format="png")

    def redraw(_: Any = None) -> None:
        current = get_toy(picker.value)
        theta = (theta1.value, theta2.value)
        curvature = curvature_at(current, theta)
        exact = torch.linalg.eigvalsh(current.exact_hessian(curvature.point))
        numeric = ", ".join(f"{v:.3f}" for v in curvature.eigenvalues.tolist())
        closed = ", ".join(f"{v:.3f}" for v in exact.tolist())
        readout.value = (
            f"<b>{curvature.kind}</b> at θ = ({theta[0]:.2f}, {theta[1]:.2f}), "
            f"loss {curvature.value:.3f}; eigenvalues: autograd ({numeric}), "
            f"closed form ({closed})"
        )
        image.value = figure_png(plot_curvature(current, theta))

    for control in (picker, theta1, theta2):
        control.observe(redraw, names="value")
    redraw()
    return widgets.VBox([widgets.HBox([picker, theta1, theta2]), readout, image])


def _filter_figure(photo: torch.Tensor, low: float, high: float) -> Figure:
    kept = frequency_filter(photo, low, high)
    share = 100 * band_energy_fraction(photo, low, high)
    label = f"kept [{low:.2f}, {high:.2f})π: {share:.0f}% of variance"
    panels = {"original": photo, label: kept, "removed (original − kept)": photo - kept}
    return plot_frequency_panels(panels, bands={label: (low, high)})


#: The static page's frames: low-pass bands that widen, then high-pass bands that narrow.
STATIC_BANDS = (
    (0.0, 0.05),
    (0.0, 0.15),
    (0.0, 0.3),
    (0.0, 0.6),
    (0.15, 1.0),
    (0.3, 1.0),
    (0.6, 1.0),
)


def frequency_filter_explorer(
    low: float = 0.0,
    high: float = 0.15,
    *,
    size: int = 256,
    interactive: bool | None = None,
) -> FrameSlider | ipywidgets.Widget:
    """Keep a band of frequencies ``[low, high)`` (units of π) of a photo and look at the result.

    Panels: the original, the kept band and what was removed, each above its log-amplitude
    spectrum (the kept band outlined). ``low = 0`` keeps the mean (a low-pass filter);
    ``high = 1`` keeps everything up to the Nyquist frequency (a high-pass filter when
    ``low > 0``). Static (see :func:`course_lib.widgets.use_widgets`): a
    :class:`~course_lib.widgets.frames.FrameSlider` over ``STATIC_BANDS`` and ``(low, high)``,
    which starts at ``(low, high)`` and works on a page without a kernel. Interactive: a ``VBox``
    with a range slider and the figure.
    """
    photo = sample_photo(size)
    if not use_widgets(interactive):
        bands = list(dict.fromkeys([(low, high), *STATIC_BANDS]))
        bands.sort(key=lambda band: (band[0] > 0, band[1] if band[0] == 0 else band[0]))
        return frame_slider(
            lambda band: _filter_figure(photo, *band), bands, title="band kept (×π)",
            label=lambda band: f"[{band[0]:.2f}, {band[1]:.2f})", start=bands.index((low, high)),
        )  # fmt: skip

    import ipywidgets as widgets

    band = widgets.FloatRangeSlider(
        value=(low, high),
        min=0.0,
        max=1.0,
        step=0.01,
        description="band (×π)",
        continuous_update=False,
        readout_format=".2f",
        layout=widgets.Layout(width="450px"),
    )
    image = widgets.Image(format="png")

    def redraw(_: Any = None) -> None:
        image.value = figure_png(_filter_figure(photo, *band.value))

    band.observe(redraw, names="value")
    redraw()
    return widgets.VBox([band, image])
