"""One cache protocol for the chapters' expensive steps: ``@cached_step``.

A step is a function ``step(profile, **arguments)`` that trains or analyses and returns a result:
a dataclass (or dict, list, tuple) of tensors, numbers and strings. Decorated with
:func:`cached_step` it runs once per (step, profile, arguments) and the result is kept on disk by
:func:`course_lib.cache.cached_result`: the key is derived from the step's name, the whole
profile and the arguments, and the cache adds the library's source fingerprint, so an edit to
the code recomputes the step — no hand-built keys, no version constants to bump.

Results are stored safely: dataclasses are written as their fields plus the type's name and
rebuilt on load (only dataclasses defined in ``course_lib``), and the file is loaded with
``weights_only=True``, so loading a result never runs code from the file.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import inspect
from collections.abc import Callable
from typing import Any, Generic, ParamSpec, TypeVar

import numpy as np
import torch

from course_lib.cache import cached_result
from course_lib.config import Profile, as_profile

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")

_TYPE = "__dataclass__"  # marks an encoded dataclass: "module:QualName"
_ARRAY = "__ndarray__"  # marks an encoded numpy array (stored as a tensor)


@dataclasses.dataclass
class PerModel(Generic[T]):
    """A step's result for every model it analysed, keyed by registered model name."""

    models: dict[str, T]
    seconds: float  # how long the step took when it was computed (NaN: nothing to compute)
    chance: float = float("nan")  # chance accuracy (%) of the test images (noise, cue steps)
    images: int = 0  # test images per condition (noise, cue steps)


def encode(value: Any) -> Any:
    """``value`` as plain containers of tensors and numbers (what ``weights_only`` loads)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        cls = type(value)
        fields = {f.name: encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
        return {_TYPE: f"{cls.__module__}:{cls.__qualname__}", **fields}
    if isinstance(value, np.ndarray):
        return {_ARRAY: torch.from_numpy(np.ascontiguousarray(value))}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {k: encode(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(encode(v) for v in value)
    return value


def decode(value: Any) -> Any:
    """Inverse of :func:`encode`; rebuilds only dataclasses defined in ``course_lib``."""
    if isinstance(value, dict):
        if _ARRAY in value:
            return value[_ARRAY].numpy()
        if _TYPE in value:
            cls = _result_type(value[_TYPE])
            fields = {k: decode(v) for k, v in value.items() if k != _TYPE}
            init = {f.name for f in dataclasses.fields(cls) if f.init}
            obj = cls(**{k: v for k, v in fields.items() if k in init})
            for name in fields.keys() - init:
                object.__setattr__(obj, name, fields[name])
            return obj
        return {k: decode(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(decode(v) for v in value)
    return value


#: Result types defined outside ``course_lib`` that :func:`decode` may rebuild.
_ALLOWED: set[str] = set()


def allow_result_types(*types: type) -> None:
    """Let :func:`decode` rebuild these dataclasses too (e.g. a researcher's own step results)."""
    _ALLOWED.update(f"{t.__module__}:{t.__qualname__}" for t in types)


def _result_type(name: str) -> type:
    module, _, qualname = name.partition(":")
    if not module.startswith("course_lib.") and name not in _ALLOWED:
        raise ValueError(
            f"refusing to rebuild {name!r}: only course_lib result types and those passed to "
            "allow_result_types are loaded"
        )
    obj: Any = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    if not (isinstance(obj, type) and dataclasses.is_dataclass(obj)):
        raise ValueError(f"{name!r} is not a dataclass")
    return obj


def key_value(value: Any) -> Any:
    """A JSON-friendly form of an argument or profile for the cache key."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: key_value(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): key_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [key_value(v) for v in value]
    return value


def cached_step(func: Callable[P, R]) -> Callable[..., R]:
    """Cache ``func(profile, **arguments)`` on disk, keyed by its name, profile and arguments.

    The decorated function accepts a :class:`~course_lib.config.Profile`, a profile name or
    None (the default profile), resolved once here, and an optional ``refresh=True`` that
    recomputes. Arguments must be plain values (numbers, strings, tuples, dataclasses).
    """
    signature = inspect.signature(func)
    step = f"{func.__module__}.{func.__qualname__}"

    @functools.wraps(func)
    def wrapper(
        profile: Profile | str | None = None, *args: Any, refresh: bool = False, **kwargs: Any
    ) -> R:
        prof = as_profile(profile)
        bound = signature.bind(prof, *args, **kwargs)
        bound.apply_defaults()
        arguments = dict(list(bound.arguments.items())[1:])
        key = {"step": step, "profile": key_value(prof), "arguments": key_value(arguments)}
        stored = cached_result(
            "step", key, lambda: encode(func(prof, **arguments)), refresh=refresh
        )
        return decode(stored)

    return wrapper


__all__ = ["PerModel", "allow_result_types", "cached_step", "decode", "encode", "key_value"]
