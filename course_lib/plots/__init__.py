"""Figures for the course, in one consistent style (see :mod:`course_lib.plots.style`)."""

from course_lib.plots.data import plot_synthetic_examples
from course_lib.plots.frequency import (
    plot_delta_log_amplitude,
    plot_high_frequency_over_depth,
    plot_noise_heatmap,
    plot_noise_sweep,
    plot_variance_over_depth,
)
from course_lib.plots.landscape import (
    LANDSCAPE_CMAP,
    plot_loss_contour,
    plot_loss_curve_1d,
    plot_loss_surface_3d,
)
from course_lib.plots.style import (
    FAMILY_COLORS,
    KIND_COLORS,
    color_for,
    course_style,
    family_of,
    log_scale,
    use_course_style,
)
from course_lib.plots.training import plot_history

__all__ = [
    "FAMILY_COLORS",
    "KIND_COLORS",
    "LANDSCAPE_CMAP",
    "color_for",
    "course_style",
    "family_of",
    "log_scale",
    "plot_delta_log_amplitude",
    "plot_high_frequency_over_depth",
    "plot_history",
    "plot_loss_contour",
    "plot_loss_curve_1d",
    "plot_loss_surface_3d",
    "plot_noise_heatmap",
    "plot_noise_sweep",
    "plot_synthetic_examples",
    "plot_variance_over_depth",
    "use_course_style",
]
