"""Toy losses of chapter 00 against their closed forms, and power iteration on known matrices."""

from __future__ import annotations

import math

import pytest
import torch

from course_lib.analysis.hessian import exact_hessian, hvp, top_eigenvalues
from course_lib.analysis.toy import (
    TOY_BATCH,
    ToyModel,
    curvature_at,
    curvature_kind,
    eigenvalue_table,
    evaluate_grid,
    get_toy,
    hessian_at,
    hvp_2d,
    list_toys,
    power_iteration,
    quadratic,
    tiny_network_problem,
    toy_loss,
)

POINTS = [(0.0, 0.0), (0.3, -0.7), (-1.2, 0.4), (1.0, 0.5)]


def _symmetric_with_eigenvalues(values: list[float], seed: int = 0) -> torch.Tensor:
    """Q diag(values) Qᵀ with a random orthogonal Q: a matrix whose spectrum we know."""
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(len(values), len(values), generator=g, dtype=torch.float64))
    return q @ torch.diag(torch.tensor(values, dtype=torch.float64)) @ q.T


@pytest.mark.parametrize("name", list_toys())
@pytest.mark.parametrize("point", POINTS)
def test_autograd_hessian_equals_closed_form(name, point):
    toy = get_toy(name)
    exact = toy.exact_hessian(torch.tensor(point, dtype=torch.float64))
    torch.testing.assert_close(hessian_at(toy, point), exact, atol=1e-10, rtol=1e-10)


@pytest.mark.parametrize("name", list_toys())
def test_hvp_by_double_backward_equals_hessian_times_vector(name):
    toy = get_toy(name)
    g = torch.Generator().manual_seed(1)
    for point in POINTS:
        v = torch.randn(2, generator=g, dtype=torch.float64)
        expected = toy.exact_hessian(torch.tensor(point, dtype=torch.float64)) @ v
        torch.testing.assert_close(hvp_2d(toy, point, v), expected)


@pytest.mark.parametrize("name", list_toys())
def test_toys_evaluate_batches_and_minima_are_stationary(name):
    toy = get_toy(name)
    x, y, z = evaluate_grid(toy, n=7)
    assert x.shape == y.shape == z.shape == (7, 7)
    assert float(z[3, 3]) == pytest.approx(float(toy(torch.zeros(2, dtype=torch.float64))))
    for minimum in toy.minima:
        curvature = curvature_at(toy, minimum)
        assert curvature.gradient.abs().max() < 1e-12
        assert curvature.kind == "convex"


def test_bowl_eigenpairs():
    c = curvature_at(get_toy("bowl"), (0.4, -0.2))
    torch.testing.assert_close(c.eigenvalues, torch.tensor([2.0, 4.0], dtype=torch.float64))
    s = 1 / math.sqrt(2)
    assert abs(float(c.eigenvectors[:, 0] @ torch.tensor([s, -s], dtype=torch.float64))) == (
        pytest.approx(1.0)
    )
    assert abs(float(c.eigenvectors[:, 1] @ torch.tensor([s, s], dtype=torch.float64))) == (
        pytest.approx(1.0)
    )


def test_sharp_and_flat_share_the_minimum_but_not_the_curvature():
    sharp, flat = get_toy("sharp"), get_toy("flat")
    assert sharp.minima == flat.minima == ((0.0, 0.0),)
    origin = torch.zeros(2, dtype=torch.float64)
    assert float(sharp(origin)) == float(flat(origin)) == 0.0
    ratio = curvature_at(sharp, (0, 0)).eigenvalues / curvature_at(flat, (0, 0)).eigenvalues
    torch.testing.assert_close(ratio, torch.full((2,), 10.0, dtype=torch.float64))


def test_saddle_eigenvalues_have_opposite_signs():
    c = curvature_at(get_toy("saddle"), (0.7, -0.3))
    assert c.eigenvalues[0] < 0 < c.eigenvalues[1]
    assert c.kind == "saddle"
    torch.testing.assert_close(c.eigenvalues, torch.tensor([-3.0, 1.0], dtype=torch.float64))


def test_double_well_is_non_convex_exactly_where_the_closed_form_says():
    # det H = 24 x² - 8 < 0  <=>  |x| < 1/√3 (chapter 00, exercise 1)
    toy = get_toy("double_well")
    edge = 1 / math.sqrt(3)
    for x in (0.0, 0.3, edge - 0.01, -(edge - 0.01)):
        assert curvature_at(toy, (x, 0.2)).kind == "saddle"
    for x in (edge + 0.01, 1.0, -1.5):
        assert curvature_at(toy, (x, 0.2)).kind == "convex"


def test_curvature_kind_names():
    t = torch.tensor
    assert curvature_kind(t([1.0, 2.0])) == "convex"
    assert curvature_kind(t([-1.0, -2.0])) == "concave"
    assert curvature_kind(t([-1.0, 2.0])) == "saddle"
    assert curvature_kind(t([0.0, 2.0])) == "degenerate"


def test_quadratic_rejects_non_symmetric_and_get_toy_rejects_unknown_names():
    with pytest.raises(ValueError, match="symmetric"):
        quadratic([[1.0, 2.0], [0.0, 1.0]], "bad", "bad")
    with pytest.raises(ValueError, match="valid"):
        get_toy("mountain")


def test_eigenvalue_table_is_deterministic_text():
    table = eigenvalue_table([("saddle", (1, 1)), ("bowl", (0.5, -1))])
    assert table == eigenvalue_table([("saddle", (1, 1)), ("bowl", (0.5, -1))])
    lines = table.splitlines()
    assert "(-3.0000, 1.0000)" in lines[2] and lines[2].endswith("saddle")
    assert "(2.0000, 4.0000)" in lines[3] and lines[3].endswith("convex")
    assert "-0.0000" not in table


def test_power_iteration_converges_to_largest_magnitude_eigenvalue():
    a = _symmetric_with_eigenvalues([5.0, -1.0, 2.0, 0.5])
    result = power_iteration(
        lambda v: a @ v, 4, n_iter=60, generator=torch.Generator().manual_seed(0)
    )
    assert result.eigenvalue == pytest.approx(5.0, abs=1e-10)
    assert result.history.shape == (60,) and result.n_matvec == 60
    torch.testing.assert_close(a @ result.eigenvector, 5.0 * result.eigenvector)
    # The estimate's error shrinks like (λ2/λ1)^(2k) = (2/5)^(2k).
    errors = (result.history - 5.0).abs()
    assert errors[20] < 10 * errors[10] * 0.4 ** (2 * 10)


def test_power_iteration_returns_a_dominant_negative_eigenvalue_not_the_largest():
    # The chapter's point: with eigenvalues 1 and -3, power iteration answers -3 ("LM"), while
    # the algebraically largest eigenvalue ("LA", the sharpness) is 1.
    a = _symmetric_with_eigenvalues([1.0, -3.0])
    result = power_iteration(
        lambda v: a @ v, 2, n_iter=40, generator=torch.Generator().manual_seed(3)
    )
    assert result.eigenvalue == pytest.approx(-3.0, abs=1e-10)
    assert float(torch.linalg.eigvalsh(a).max()) == pytest.approx(1.0)
    # Shifting by 3 (exercise 2) turns the algebraically largest one into the dominant one.
    shifted = power_iteration(lambda v: a @ v + 3 * v, 2, n_iter=60, generator=torch.Generator())
    assert shifted.eigenvalue - 3 == pytest.approx(1.0, abs=1e-8)


def test_power_iteration_stops_in_the_null_space():
    result = power_iteration(torch.zeros_like, 3, n_iter=10)
    assert result.eigenvalue == 0.0 and result.n_matvec == 1
    with pytest.raises(ValueError):
        power_iteration(torch.zeros_like, 3, n_iter=0)


def test_production_lanczos_on_the_toy_saddle_agrees_with_the_explanation():
    model = ToyModel("saddle", (0.2, -0.4))
    expected = {"LA": 1.0, "SA": -3.0, "LM": -3.0}
    for which, value in expected.items():
        result = top_eigenvalues(model, toy_loss, TOY_BATCH, which=which)
        assert result.eigenvalues.item() == pytest.approx(value, abs=1e-10)
    toy = get_toy("double_well")
    point = (0.3, 0.1)
    torch.testing.assert_close(
        exact_hessian(ToyModel(toy, point), toy_loss, TOY_BATCH),
        toy.exact_hessian(torch.tensor(point)),
    )


def test_tiny_network_power_iteration_and_lanczos_match_the_exact_hessian():
    state = torch.random.get_rng_state()
    model, loss_fn, batch = tiny_network_problem(seed=0)
    assert torch.equal(state, torch.random.get_rng_state())  # global RNG untouched
    n_params = sum(p.numel() for p in model.parameters())
    assert n_params == 67
    exact = torch.linalg.eigvalsh(exact_hessian(model, loss_fn, batch).double())
    assert exact.min() < 0 < exact.max()  # a real network is not convex
    power = power_iteration(
        lambda v: hvp(model, loss_fn, batch, v), n_params, 60, torch.Generator().manual_seed(0)
    )
    assert power.eigenvalue == pytest.approx(float(exact.abs().max()), rel=1e-4)
    gen = torch.Generator().manual_seed(0)
    largest = top_eigenvalues(model, loss_fn, batch, k=2, which="LA", generator=gen)
    smallest = top_eigenvalues(model, loss_fn, batch, k=2, which="SA", generator=gen)
    torch.testing.assert_close(largest.eigenvalues, exact[-2:].flip(0), rtol=1e-3, atol=1e-5)
    torch.testing.assert_close(smallest.eigenvalues, exact[:2], rtol=1e-3, atol=1e-5)
    a, b = tiny_network_problem(seed=0), tiny_network_problem(seed=0)
    pairs = zip(a.model.parameters(), b.model.parameters(), strict=True)
    assert all(torch.equal(p, q) for p, q in pairs)
