"""Chapter 00's numbers in words: eigenvalues printed the same way in every check."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor


def signed_values(values: float | Sequence[float] | Tensor, digits: int = 4) -> str:
    """``"+1.2345, -0.5000"``: one number or several, each with its sign and ``digits`` decimals."""
    flat = torch.atleast_1d(torch.as_tensor(values)).flatten().tolist()
    return ", ".join(f"{v:+.{digits}f}" for v in flat)


__all__ = ["signed_values"]
