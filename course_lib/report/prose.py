"""Sentences generated from the numbers, so the chapters' text cannot drift from their run.

Every sentence that states a run-dependent fact — an order, a sign, a ratio, "most", "near 0",
"above chance" — is built here from measured values; fixed chapter text only states what holds
for any run (the paper's claims, definitions, what to look for). :mod:`course_lib.report.lint`
flags fixed text that breaks this rule.

Each helper picks its words from the values it is given, and the unit tests drive each one
through both directions.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

#: z for two-sided 95 % intervals.
Z95 = 1.959964


def num(x: float, fmt: str = ".3g") -> str:
    """A number as the chapters print it (thousands separated, NaN as "n/a")."""
    if isinstance(x, float) and math.isnan(x):
        return "n/a"
    text = format(x, fmt)
    # ".2g" prints 460 as "4.6e+02" and 99.5 as "1e+02": print whole numbers from 100 up instead
    if fmt.endswith("g") and abs(x) >= 1 and (abs(x) >= 100 or "e" in text):
        return f"{x:+,.0f}" if fmt.startswith("+") else f"{x:,.0f}"
    return text


def compare(
    quantity: str,
    a: tuple[str, float],
    b: tuple[str, float],
    *,
    words: tuple[str, str] = ("lower", "higher"),
    fmt: str = ".3g",
    tolerance: float = 0.0,
) -> str:
    """The sentence "<a>'s <quantity> (x) is lower than <b>'s (y)", its word from the values.

    ``words`` are the (smaller, larger) adjectives; values closer than ``tolerance`` (absolute)
    read "about the same as".
    """
    (name_a, x), (name_b, y) = a, b
    if abs(x - y) <= tolerance:
        relation = "about the same as"
    else:
        relation = f"{words[0] if x < y else words[1]} than"
    return f"{name_a}'s {quantity} ({num(x, fmt)}) is {relation} {name_b}'s ({num(y, fmt)})"


def ascending(values: Mapping[str, float], fmt: str | Callable[[float], str] = ".3g") -> str:
    """The values in their measured order, e.g. "ResNet 0.644 < ViT 1.2 < local ViT 1.57";
    ``fmt`` is a format spec for :func:`num` or a function that writes one value."""
    show = fmt if callable(fmt) else lambda v: num(v, fmt)
    items = sorted(values.items(), key=lambda kv: kv[1])
    parts = [f"{name} {show(v)}" for name, v in items]
    seps = [" = " if items[i][1] == items[i + 1][1] else " < " for i in range(len(items) - 1)]
    return parts[0] + "".join(s + p for s, p in zip(seps, parts[1:], strict=True))


def and_join(items: Sequence[str]) -> str:
    """``"a"``, ``"a and b"``, ``"a, b and c"``."""
    if not items:
        raise ValueError("and_join needs at least one item")
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def ratio(x: float, y: float) -> str:
    """x relative to y as "3.2× larger", "2.1× smaller" or "about equal" (both positive)."""
    if x <= 0 or y <= 0:
        raise ValueError(f"ratio needs positive values, got {x} and {y}")
    r = x / y
    if 0.95 <= r <= 1.05:
        return "about equal"
    return f"{num(r, '.2g')}× larger" if r > 1 else f"{num(1 / r, '.2g')}× smaller"


def sign_word(
    value: float, negative: str = "lowers", positive: str = "raises", zero: str = "leaves unchanged"
) -> str:
    """The verb for a change's sign (``zero`` for an exact 0)."""
    return negative if value < 0 else positive if value > 0 else zero


def share(count: int, total: int) -> str:
    """The share of ``total``: "none", "a few", "under half", "about half", "most" or "all"."""
    if total <= 0:
        raise ValueError("share needs total > 0")
    p = count / total
    if count == 0:
        return "none"
    if count == total:
        return "all"
    if p < 0.2:
        return "a few"
    if p < 0.4:
        return "under half"
    return "about half" if p <= 0.6 else "most"


def binomial_interval(p: float, n: int) -> float:
    """Half-width of the normal-approximation 95 % interval of a proportion from n draws."""
    return Z95 * math.sqrt(max(p * (1 - p), 1e-12) / max(n, 1))


def versus_chance(accuracy: float, chance: float, n: int) -> str:
    """Whether ``accuracy`` (a fraction, from ``n`` test images) is "above", "at" or "below
    chance", with the 95 % interval of the chance rate as the margin."""
    margin = binomial_interval(chance, n)
    if accuracy > chance + margin:
        return "above chance"
    return "below chance" if accuracy < chance - margin else "at chance"


def above_chance(accuracy: float, chance: float, n: int) -> bool:
    """Whether ``accuracy`` (%, from ``n`` images) is above ``chance`` (%) beyond sampling noise
    (:func:`versus_chance`)."""
    return versus_chance(accuracy / 100, chance / 100, n) == "above chance"


def over_seeds(values: Mapping[int, float], fmt: str = ".3g") -> str:
    """A value measured at each seed, with its mean and range:
    "mean 81.2, range 80.1–82.3 (seed 0: 80.1, seed 1: 82.3)"; one seed: "80.1 (seed 0 only)"."""
    if not values:
        raise ValueError("over_seeds needs at least one seed")
    if len(values) == 1:
        ((seed, value),) = values.items()
        return f"{num(value, fmt)} (seed {seed} only)"
    v = list(values.values())
    each = ", ".join(f"seed {seed}: {num(x, fmt)}" for seed, x in values.items())
    if any(math.isnan(x) for x in v):  # no mean or range of an undefined value
        return f"mean n/a ({each})"
    mean = math.fsum(v) / len(v)
    return f"mean {num(mean, fmt)}, range {num(min(v), fmt)}–{num(max(v), fmt)} ({each})"


def near_zero(value: float, scale: float, rel: float = 0.05) -> bool:
    """Whether ``|value|`` is within ``rel`` of a reference ``scale`` (e.g. the loss at init)."""
    return abs(value) <= rel * abs(scale)


__all__ = [
    "above_chance",
    "and_join",
    "ascending",
    "binomial_interval",
    "compare",
    "near_zero",
    "num",
    "over_seeds",
    "ratio",
    "share",
    "sign_word",
    "versus_chance",
]
