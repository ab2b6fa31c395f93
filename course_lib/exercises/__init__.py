"""Checks for the coding exercises (``notebooks/exercises/``): students write the key pieces.

Each ``check_<name>(student_fn)`` builds a small case, runs the student's function and the
library's own implementation on it, and returns True when they agree. A wrong answer raises
``AssertionError`` with what is wrong and a hint; a stub that still raises
``NotImplementedError`` prints one line and returns False, so the notebooks always run.

- :mod:`~course_lib.exercises.attention`: the k×k neighbourhood mask and self-attention
  (chapter 01).
- :mod:`~course_lib.exercises.curvature`: a Hessian-vector product and power iteration
  (chapter 02).
- :mod:`~course_lib.exercises.frequency`: Δ log amplitude and band-limited noise (chapter 03).
"""

from course_lib.exercises.attention import check_neighbourhood_mask, check_self_attention
from course_lib.exercises.curvature import check_hessian_vector_product, check_power_iteration
from course_lib.exercises.frequency import check_band_limited_noise, check_delta_log_amplitude

__all__ = [
    "check_band_limited_noise",
    "check_delta_log_amplitude",
    "check_hessian_vector_product",
    "check_neighbourhood_mask",
    "check_power_iteration",
    "check_self_attention",
]
