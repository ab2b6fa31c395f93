"""What every exercise check shares: the stub protocol and comparisons that explain a mismatch.

A check builds a small case, runs the student's function and the library on it, and raises
``AssertionError`` with a message that says what is wrong and hints at the fix. A stub that
still raises ``NotImplementedError`` is not an error: the check says so in one line and returns
False, so that a notebook with unsolved exercises still runs from top to bottom.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import Tensor

StudentFn = Callable[..., Any]
Check = Callable[[StudentFn], bool]


def exercise_check(name: str) -> Callable[[Callable[[StudentFn], str]], Check]:
    """Turn ``body(student_fn) -> summary`` into a check that prints its verdict.

    The check returns True (and prints ``✓ name: summary``) when the body returns, False when
    the student's function is still the stub (raises ``NotImplementedError``); an
    ``AssertionError`` from the body, the student's mistake, propagates.
    """

    def wrap(body: Callable[[StudentFn], str]) -> Check:
        @functools.wraps(body)
        def check(student_fn: StudentFn) -> bool:
            try:
                summary = body(student_fn)
            except NotImplementedError:
                print(f"not written yet: fill in `{name}` above, or open the solution below")
                return False
            print(f"✓ {name}: {summary}")
            return True

        return check

    return wrap


def as_tensor(got: Any, what: str) -> Tensor:
    """``got`` if it is a tensor, else an AssertionError that names its type."""
    assert isinstance(got, Tensor), f"{what} should be a torch.Tensor, got {type(got).__name__}"
    return got


def assert_close(
    got: Any,
    expected: Tensor,
    what: str,
    hint: str,
    *,
    mistakes: Mapping[str, Tensor] | None = None,
    rtol: float = 1e-4,
    atol: float = 1e-6,
) -> None:
    """Assert that ``got`` has ``expected``'s shape and values, else say where and how it differs.

    ``mistakes`` maps a description of a common mistake ("you forgot the 1/√d scale") to the
    result that mistake produces on this case: when ``got`` matches one, the message names it.
    Otherwise it shows the entry that is furthest off and ends with ``hint``.
    """
    got = as_tensor(got, what)
    assert got.shape == expected.shape, (
        f"{what} has shape {tuple(got.shape)}, expected {tuple(expected.shape)}. {hint}"
    )
    got = got.detach().to(expected.dtype)
    if torch.allclose(got, expected, rtol=rtol, atol=atol):
        return
    for mistake, result in (mistakes or {}).items():
        if torch.allclose(got, result.to(expected.dtype), rtol=rtol, atol=atol):
            raise AssertionError(f"{what} is wrong: {mistake}.")
    error = (got - expected).abs().nan_to_num(float("inf"))
    worst = tuple(int(i) for i in torch.unravel_index(error.argmax(), error.shape))
    raise AssertionError(
        f"{what} is wrong: entry {worst} is {got[worst].item():.6g}, expected "
        f"{expected[worst].item():.6g} ({int((error > atol + rtol * expected.abs()).sum())} of "
        f"{expected.numel()} entries differ). {hint}"
    )
