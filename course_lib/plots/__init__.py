"""Figures for the course, in one consistent style (see :mod:`course_lib.plots.style`)."""

from course_lib.plots.style import (
    FAMILY_COLORS,
    KIND_COLORS,
    color_for,
    course_style,
    family_of,
    use_course_style,
)

__all__ = [
    "FAMILY_COLORS",
    "KIND_COLORS",
    "color_for",
    "course_style",
    "family_of",
    "use_course_style",
]
