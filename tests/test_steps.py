"""The one cache protocol: ``@cached_step`` keys, safe dataclass results, recompute on change."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from course_lib import cache
from course_lib.config import get_profile
from course_lib.steps import allow_result_types, cached_step, decode, encode


@dataclasses.dataclass(frozen=True)
class Inner:
    values: torch.Tensor
    label: str


@dataclasses.dataclass
class Outer:
    inner: Inner
    table: dict[float, list[Inner]]
    array: np.ndarray
    count: int
    derived: float = dataclasses.field(init=False, default=0.0)


allow_result_types(Inner, Outer)


def _example() -> Outer:
    inner = Inner(torch.arange(3.0), "a")
    outer = Outer(inner, {0.5: [inner, Inner(torch.ones(2), "b")]}, np.linspace(0, 1, 4), 7)
    outer.derived = 2.5
    return outer


def test_encode_decode_round_trip_keeps_types_and_values():
    back = decode(encode(_example()))
    assert isinstance(back, Outer) and isinstance(back.inner, Inner)
    assert torch.equal(back.inner.values, torch.arange(3.0)) and back.inner.label == "a"
    assert [i.label for i in back.table[0.5]] == ["a", "b"]
    assert isinstance(back.array, np.ndarray) and np.array_equal(back.array, np.linspace(0, 1, 4))
    assert back.count == 7 and back.derived == 2.5


def test_decode_refuses_types_outside_course_lib():
    with pytest.raises(ValueError, match="only course_lib result types"):
        decode({"__dataclass__": "os:system", "command": "true"})
    with pytest.raises(ValueError, match="only course_lib result types"):
        decode({"__dataclass__": "tests.test_steps:_counting_step"})


def test_encoded_results_load_with_weights_only(tmp_path):
    path = tmp_path / "result.pt"
    torch.save(encode(_example()), path)
    loaded = torch.load(path, weights_only=True)
    assert isinstance(decode(loaded), Outer)


def _counting_step(calls: list):
    @cached_step
    def summary(profile, scale: float = 1.0) -> Inner:
        calls.append(scale)
        return Inner(torch.tensor([profile.n_train * scale]), profile.name)

    return summary


def test_cached_step_computes_once_per_profile_and_arguments():
    calls: list[float] = []
    step = _counting_step(calls)
    first = step("smoke")
    again = step(get_profile("smoke"))  # a name and the Profile itself are the same key
    assert isinstance(again, Inner) and torch.equal(first.values, again.values)
    assert calls == [1.0]
    step("smoke", scale=2.0)
    step(get_profile("smoke", n_train=64))
    assert calls == [1.0, 2.0, 1.0]
    step("smoke", refresh=True)
    assert calls == [1.0, 2.0, 1.0, 1.0]


def test_cached_step_recomputes_after_a_code_edit(monkeypatch):
    calls: list[float] = []
    step = _counting_step(calls)
    step("smoke")
    monkeypatch.setattr(cache, "code_fingerprint", lambda kind: "0123456789abcdef")
    with pytest.warns(UserWarning, match="stale"):
        step("smoke")
    assert calls == [1.0, 1.0]
