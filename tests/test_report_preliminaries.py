"""Chapter 00's number formatting."""

from __future__ import annotations

import torch

from course_lib.report.preliminaries import signed_values


def test_signed_values_takes_numbers_lists_and_tensors() -> None:
    assert signed_values(1.5) == "+1.5000"
    assert signed_values([2.0, -0.25]) == "+2.0000, -0.2500"
    assert signed_values(torch.tensor([[3.0], [-1.0]]), digits=1) == "+3.0, -1.0"
    assert signed_values(torch.tensor(0.5, dtype=torch.float64)) == "+0.5000"
