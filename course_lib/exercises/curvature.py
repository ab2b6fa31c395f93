"""Checks for the curvature exercises: a Hessian-vector product and power iteration.

References: :func:`course_lib.analysis.hessian.hvp` and ``exact_hessian`` on the toy saddle and
on chapter 00's tiny MLP (67 weights, so its whole Hessian is cheap), and Lanczos
(``top_eigenvalues``) for the eigenvalue of largest magnitude.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from course_lib.analysis.hessian import LossFn, exact_hessian, hvp, top_eigenvalues
from course_lib.analysis.toy import TOY_BATCH, ToyModel, tiny_network_problem, toy_loss
from course_lib.exercises.checking import StudentFn, assert_close, exercise_check

HVP_HINT = (
    "Take the gradient of the loss with create_graph=True, form the scalar Σ gradient · v "
    "(v split into pieces shaped like the parameters), differentiate it once more, and "
    "concatenate the flattened results in model.parameters() order."
)
GRAPH_HINT = (
    "Differentiating a gradient needs its graph: take the first gradient with "
    "torch.autograd.grad(loss, params, create_graph=True)."
)


def _flat_gradient(model: nn.Module, loss_fn: LossFn, batch: tuple[Tensor, Tensor]) -> Tensor:
    """The gradient of the batch loss, flat over ``model.parameters()``: ``(P,)``."""
    inputs, targets = batch
    grads = torch.autograd.grad(loss_fn(model(inputs), targets), list(model.parameters()))
    return torch.cat([g.flatten() for g in grads])


@exercise_check("hessian_vector_product")
def check_hessian_vector_product(student_fn: StudentFn) -> str:
    """Compare ``student_fn(model, loss_fn, batch, vector)`` with the library's ``hvp``.

    First the toy saddle ``½(x² − 3y²)`` (``H = diag(1, −3)``), then the tiny MLP with two
    random vectors. A ``RuntimeError`` from autograd becomes an AssertionError with the fix.
    """
    problems = [
        (
            "the saddle ½(x² − 3y²), H = diag(1, −3)",
            (ToyModel("saddle", (0.5, -0.5)), toy_loss, TOY_BATCH),
        ),
        ("the tiny MLP of chapter 00", tiny_network_problem(seed=0)),
    ]
    generator = torch.Generator().manual_seed(0)
    for what, (model, loss_fn, batch) in problems:
        n_params = sum(p.numel() for p in model.parameters())
        dtype = next(model.parameters()).dtype
        for vector in torch.randn(2, n_params, generator=generator, dtype=dtype):
            expected = hvp(model, loss_fn, batch, vector)
            mistakes = {
                "it is −H v (a sign flipped)": -expected,
                "it is the gradient itself: differentiate the dot product of the gradient with "
                "v once more": _flat_gradient(model, loss_fn, batch),
                "it is H times a vector of ones: differentiate Σ gradient · v, not Σ gradient": (
                    hvp(model, loss_fn, batch, torch.ones_like(vector))
                ),
            }
            try:
                got = student_fn(model, loss_fn, batch, vector)
            except NotImplementedError:  # a RuntimeError too: the stub, which the decorator reports
                raise
            except RuntimeError as error:
                fix = GRAPH_HINT if "does not require grad" in str(error) else HVP_HINT
                raise AssertionError(
                    f"hessian_vector_product failed on {what}: {error}. {fix}"
                ) from error
            label = f"hessian_vector_product on {what}"
            assert_close(got, expected, label, HVP_HINT, mistakes=mistakes, rtol=1e-4, atol=1e-6)
    return "matches the library's hvp on the toy saddle and on the tiny MLP"


def _symmetric_matrix(eigenvalues: Tensor, seed: int = 0) -> Tensor:
    """``Q diag(eigenvalues) Qᵀ`` with a random orthogonal ``Q`` (float64)."""
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(len(eigenvalues), len(eigenvalues), generator=g).double())
    return q @ torch.diag(eigenvalues.double()) @ q.T


def _as_number(got: object, what: str) -> float:
    try:
        return float(got)  # a float, or a tensor with one element
    except (TypeError, ValueError, RuntimeError):
        raise AssertionError(
            f"{what} returned {type(got).__name__}: return the eigenvalue estimate, one number"
        ) from None


@exercise_check("power_iteration")
def check_power_iteration(student_fn: StudentFn) -> str:
    """Compare ``student_fn(matvec, dim, n_iter, generator)`` with exact eigenvalues.

    First a 6×6 matrix whose largest-magnitude eigenvalue is −8 (the sign tells a Rayleigh
    quotient from a norm), then the tiny MLP's Hessian through the library's ``hvp``, against
    ``eigvalsh`` of its exact Hessian and Lanczos (``which="LM"``).
    """
    matrix = _symmetric_matrix(torch.tensor([-8.0, 5.0, 3.0, -2.0, 1.0, 0.5]))

    def times_matrix(v: Tensor) -> Tensor:
        return (matrix @ v.double()).to(v.dtype)

    got = student_fn(times_matrix, 6, 60, torch.Generator().manual_seed(0))
    got = _as_number(got, "power_iteration")
    assert abs(got - 8.0) > 1e-3, (
        "power_iteration returned +8 for a matrix whose eigenvalue of largest magnitude is −8: "
        "‖A v‖ loses the sign. Return the Rayleigh quotient vᵀ A v of the unit vector v."
    )
    assert abs(got + 8.0) < 1e-6, (
        f"power_iteration returned {got:.6g} for a 6×6 matrix with eigenvalues −8, 5, 3, −2, 1, "
        "0.5; expected −8 (largest magnitude). Start from a random unit vector, repeat "
        "v ← A v / ‖A v‖, and return vᵀ A v at the end."
    )
    model, loss_fn, batch = tiny_network_problem(seed=0)
    exact = torch.linalg.eigvalsh(exact_hessian(model, loss_fn, batch).double())
    expected = float(exact[exact.abs().argmax()])
    lanczos = float(top_eigenvalues(model, loss_fn, batch, which="LM").eigenvalues[0])
    n_params = len(exact)

    def times_hessian(v: Tensor) -> Tensor:
        return hvp(model, loss_fn, batch, v).to(v.dtype)

    got = student_fn(times_hessian, n_params, 30, torch.Generator().manual_seed(0))
    got = _as_number(got, "power_iteration")
    assert abs(got - expected) < 1e-3 * abs(expected), (
        f"power_iteration on the tiny MLP's Hessian returned {got:.6g}; exact eigvalsh gives "
        f"{expected:.6g} (largest magnitude), Lanczos {lanczos:.6g}. It passed the 6×6 matrix, "
        "so check that you use matvec (the Hessian-vector product) and n_iter as given."
    )
    return f"−8 on the 6×6 matrix and {got:.4f} on the tiny MLP (exact: {expected:.4f})"
