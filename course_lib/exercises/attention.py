"""Checks for the attention exercises: the k×k neighbourhood mask and self-attention itself.

The reference is the library's :class:`~course_lib.models.layers.Attention`, the layer of every
ViT in the course, run on a small random input with its own weights handed to the student's
function.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping

import torch
from torch import Tensor

from course_lib.exercises.checking import StudentFn, as_tensor, assert_close, exercise_check
from course_lib.models.layers import Attention, neighbourhood_mask

MASK_CASES = ((5, 3), (6, 2), (6, 4), (4, 4), (5, 1))  # (side, kernel): odd, even, global, 1×1


def draw_windows(windows: Mapping[str, tuple[Tensor, int]], side: int) -> str:
    """Rows of a mask drawn side by side on the ``side × side`` grid: ``{title: (row, query)}``.

    ``row`` is ``(N,)`` bool, the keys that token ``query`` sees (one row of a mask). Returns
    the drawings with their titles above and a legend below, for ``print``.
    """
    width = max(side, *(len(title) for title in windows)) + 3
    lines = ["".join(f"{title:<{width}}" for title in windows)]
    for r in range(side):
        line = ""
        for row, query in windows.values():
            marks = ["■" if seen else "·" for seen in row[r * side : (r + 1) * side].tolist()]
            if query // side == r:
                marks[query % side] = "◆" if row[query] else "◇"
            line += f"{''.join(marks):<{width}}"
        lines.append(line)
    lines.append(
        "■ a key the query sees, · one it does not, ◆ the query (◇ if it does not see itself)"
    )
    return "\n".join(line.rstrip() for line in lines)


@exercise_check("neighbourhood_mask")
def check_neighbourhood_mask(student_fn: StudentFn) -> str:
    """Compare ``student_fn(side, kernel)`` with the library's ``neighbourhood_mask``."""
    for side, kernel in MASK_CASES:
        n = side * side
        got = as_tensor(student_fn(side, kernel), f"neighbourhood_mask({side}, {kernel})")
        assert got.shape == (n, n), (
            f"neighbourhood_mask({side}, {kernel}) has shape {tuple(got.shape)}, expected "
            f"({n}, {n}): one row per query, one column per key, tokens in row-major order."
        )
        assert got.dtype == torch.bool, (
            f"neighbourhood_mask({side}, {kernel}) has dtype {got.dtype}: return a bool tensor, "
            "True where the query may attend to the key."
        )
        expected = neighbourhood_mask(side, kernel)
        wrong = (got != expected).any(dim=1).nonzero().flatten()
        if len(wrong) == 0:
            continue
        q = int(wrong[0])
        seen = int(got[q].sum())
        count = f"sees {seen} keys" + (f" instead of {kernel**2}" if seen != kernel**2 else "")
        drawing = draw_windows({"yours": (got[q], q), "expected": (expected[q], q)}, side)
        raise AssertionError(
            f"neighbourhood_mask({side}, {kernel}) is wrong for {len(wrong)} of {n} queries; "
            f"the first, query {q} (row {q // side}, column {q % side}), {count}:\n"
            f"{drawing}\n"
            f"The window of a query on line i starts at i - (kernel - 1) // 2, clamped to "
            f"[0, side - kernel] (shifted inwards at the border, not clipped), and spans kernel "
            f"lines; a key is seen when both its row and its column are in the window."
        )
    return f"matches the library's mask on {len(MASK_CASES)} grids (odd, even and global kernels)"


def _scaled_queries(attn: Attention, factor: float) -> Attention:
    """A copy of ``attn`` whose queries are multiplied by ``factor`` (a different logit scale)."""
    other = copy.deepcopy(attn)
    inner = other.proj.in_features
    with torch.no_grad():
        other.qkv.weight[:inner] *= factor
        other.qkv.bias[:inner] *= factor
    return other


GLOBAL_HINT = (
    "Check in order: q, k, v are the three thirds of qkv(x) (queries first), each split into "
    "heads of width d = D / heads; logits q kᵀ / √d; softmax over the keys (the last axis); heads "
    "put back side by side before proj."
)
MASK_HINT = (
    "Global attention passed, so look at the mask (and at anything that depends on the number of "
    "heads): before the softmax, set the logits of the keys where mask is False to -inf "
    "(masked_fill(~mask, -inf)); zeroing weights after the softmax leaves rows that no longer "
    "sum to 1."
)


@exercise_check("self_attention")
def check_self_attention(student_fn: StudentFn) -> str:
    """Compare ``student_fn(x, qkv, proj, heads, mask)`` with the library's ``Attention``.

    Three cases in float64: global attention over a class token plus a 4×4 grid, 3×3
    neighbourhoods on a 5×5 grid, 2×2 neighbourhoods on a 4×4 grid with four heads. The
    library's learned bias per relative offset is set to zero, so only the mask remains.
    """
    dim = 8
    cases = [  # (description, heads, side, kernel, class token)
        ("global attention, a class token plus a 4×4 grid", 2, 4, None, True),
        ("3×3 neighbourhoods on a 5×5 grid", 2, 5, 3, False),
        ("2×2 neighbourhoods on a 4×4 grid, 4 heads", 4, 4, 2, False),
    ]
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(0)
        for case, heads, side, kernel, class_token in cases:
            attn = Attention(dim, heads, neighbourhood=kernel, grid=side).double().eval()
            mask = None
            if kernel is not None:
                attn.bias.table.zero_()
                mask = neighbourhood_mask(side, kernel)
            x = torch.randn(2, side * side + class_token, dim, dtype=torch.float64)
            d = dim // heads
            mistakes = {
                "it is attention without the 1/√d scale of the logits": (
                    _scaled_queries(attn, math.sqrt(d))(x)
                ),
                f"the logits are scaled by 1/√{dim} (the token width) instead of 1/√d with "
                f"d = {d}, the width of one head": _scaled_queries(attn, math.sqrt(d / dim))(x),
            }
            got = student_fn(x, attn.qkv, attn.proj, heads, mask)
            what = f"self_attention's output ({case})"
            hint = GLOBAL_HINT if mask is None else MASK_HINT
            assert_close(got, attn(x), what, hint, mistakes=mistakes, rtol=1e-7, atol=1e-9)
    return "matches the library's Attention, global (with a class token) and local (3×3, 2×2)"
