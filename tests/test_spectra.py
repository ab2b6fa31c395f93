"""Tests for course_lib.analysis.spectra: per-batch spectra against the exact Hessian."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from course_lib.analysis.hessian import exact_hessian, top_eigenvalues
from course_lib.analysis.spectra import (
    BatchSpectra,
    ModelSpectra,
    batch_spectra,
    largest_magnitude,
    log_correlation,
    parameter_group,
    spectrum_numbers,
    top_groups,
    vector_composition,
)


def nll(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(outputs, targets)


def small_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 3))


def small_batches(n: int = 2, size: int = 8) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(1)
    return [
        (torch.randn(size, 4, generator=g), torch.randint(0, 3, (size,), generator=g))
        for _ in range(n)
    ]


def test_largest_magnitude_ranks_the_union_of_both_ends():
    largest = torch.tensor([[5.0, 2.0], [1.0, 0.5]], dtype=torch.float64)
    smallest = torch.tensor([[-3.0, -1.0], [-4.0, -0.2]], dtype=torch.float64)
    assert largest_magnitude(largest, smallest).tolist() == [[5.0, -3.0], [-4.0, 1.0]]
    assert largest_magnitude(largest, smallest, k=1).tolist() == [[5.0], [-4.0]]


def test_batch_spectra_match_the_exact_hessian_and_lm_equals_derived():
    model, batches = small_net(), small_batches()
    k = 2
    la = batch_spectra(model, nll, batches, k, which="LA", tol=1e-8, composition=True)
    sa = batch_spectra(model, nll, batches, k, which="SA", tol=1e-8)
    for i, batch in enumerate(batches):
        exact = torch.linalg.eigvalsh(exact_hessian(model, nll, batch).double())
        assert torch.allclose(la.eigenvalues[i], exact.flip(0)[:k], rtol=1e-4, atol=1e-6)
        assert torch.allclose(sa.eigenvalues[i], exact[:k], rtol=1e-4, atol=1e-6)
        direct = top_eigenvalues(model, nll, batch, k, which="LM", tol=1e-8)
        derived = largest_magnitude(la.eigenvalues[i : i + 1], sa.eigenvalues[i : i + 1])
        assert torch.allclose(derived[0], direct.eigenvalues, rtol=1e-4, atol=1e-6)
    assert la.converged.all() and la.n_hvp.min() >= 1
    assert la.groups == ["0", "2"]  # nn.Sequential's layers
    assert torch.allclose(la.composition.sum(dim=1), torch.ones(2, dtype=torch.float64))
    assert sa.composition is None and sa.groups == []
    both = ModelSpectra(la, sa)
    assert torch.equal(both.by_magnitude, largest_magnitude(la.eigenvalues, sa.eigenvalues))
    assert list(both.ends) == ["LA", "SA"] and ModelSpectra(la).by_magnitude is None
    assert top_groups(la, n=1)[0][0] in {"0", "2"}
    with pytest.raises(ValueError, match="composition"):
        top_groups(sa)


def test_vector_composition_and_groups():
    assert parameter_group("blocks.3.attn.qkv.weight") == "blocks.3"
    assert parameter_group("blocks.3.msa.attn.qkv.weight") == "blocks.3.msa"
    assert parameter_group("blocks.3.mlp.fc1.weight") == "blocks.3.mlp"
    assert parameter_group("stages.1.0.conv1.weight") == "stages.1"
    assert parameter_group("patch_embed.proj.weight") == "patch_embed"
    assert parameter_group("cls_token") == "cls_token"
    model = small_net()
    sizes = [p.numel() for p in model.parameters()]  # 24, 6, 18, 3
    vector = torch.zeros(sum(sizes))
    vector[sizes[0] + sizes[1] :] = 2.0  # only the second layer
    names, shares = vector_composition(vector, model)
    assert names == ["0", "2"] and shares.tolist() == [0.0, 1.0]


def _end(which: str, values: list[float], hvp: int) -> BatchSpectra:
    n = len(values)
    eigenvalues = torch.tensor(values, dtype=torch.float64)[:, None]
    return BatchSpectra(which, eigenvalues, torch.tensor([hvp] * n), torch.ones(n, dtype=bool), 0.0)


def spectra(top: list[float], bottom: list[float] | None) -> ModelSpectra:
    """A model's spectra with k = 1: "LA" values ``top``, "SA" values ``bottom`` (or none)."""
    return ModelSpectra(_end("LA", top, 4), None if bottom is None else _end("SA", bottom, 8))


def test_spectrum_numbers():
    n = spectrum_numbers(spectra([10.0, 2.0, 4.0], [-1.0, -3.0, 0.5]))
    # LM per batch: 10, -3, 4 -> one negative of three; positive mean (10 + 4) / 2
    assert n.nep == pytest.approx(1 / 3) and n.ape == pytest.approx(7.0)
    assert n.median_max == 4.0 and n.median_min == -1.0
    assert n.neg_ratio == pytest.approx(0.1)  # ratios 0.1, 1.5, 0 -> median 0.1
    assert n.hvp == 6.0 and n.k == 1
    init = spectrum_numbers(spectra([1.0, 3.0], None))
    assert init.median_max == 1.0 and np.isnan(init.nep)


def test_log_correlation_of_both_ends():
    top = [1.0, 10.0, 100.0, 1000.0]
    assert log_correlation(spectra(top, [-2.0, -20.0, -200.0, -2000.0])) == pytest.approx(1.0)
    assert np.isnan(log_correlation(spectra(top, [1.0, 1.0, 1.0, -1.0])))  # < 3 negative
    assert np.isnan(log_correlation(spectra(top, None)))
