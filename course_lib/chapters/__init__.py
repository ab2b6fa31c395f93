"""Each chapter's expensive computations, cached, so notebooks stay thin and can be pre-computed.

A chapter module (``course_lib.chapters.ch01_inductive_bias`` …) holds functions of a
:class:`~course_lib.config.Profile` that train or analyse and return results from the cache
(:mod:`course_lib.cache`, :func:`course_lib.experiments.trained_model`). Decorating one with
:func:`precompute_step` registers it, so ``python -m course_lib precompute --profile gpu`` can run
everything the book needs before a workshop, and the notebooks then load the results instantly.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from typing import TypeVar

from course_lib.config import Profile

Step = Callable[[Profile], object]
F = TypeVar("F", bound=Step)

_STEPS: dict[str, Step] = {}


def precompute_step(func: F) -> F:
    """Register ``func(profile)`` as a step of ``python -m course_lib precompute``."""
    _STEPS[f"{func.__module__.rsplit('.', 1)[-1]}.{func.__name__}"] = func
    return func


def precompute_steps() -> dict[str, Step]:
    """All registered steps, in chapter order (importing every chapter module first)."""
    for info in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{info.name}")
    return dict(sorted(_STEPS.items()))
