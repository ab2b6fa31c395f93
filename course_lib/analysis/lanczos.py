"""Thick-restart Lanczos with full reorthogonalisation, for one symmetric operator.

The solver behind :mod:`course_lib.analysis.hessian`: :func:`solve` finds ``k`` eigenvalues at
either end of the spectrum ("LA" largest, "SA" smallest, "LM" largest magnitude) of any
:class:`Operator` — an object that multiplies a vector, such as a mini-batch's Hessian — and
:class:`Lanczos` is the Krylov basis that stochastic Lanczos quadrature reuses. Written here
rather than wrapping ``scipy.sparse.linalg.eigsh`` because the operator lives on the model's
device (CUDA included), the basis must stay there without host round trips, and the stopping
rule is ours (see :func:`_error_bounds`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, Protocol

import torch
from torch import Tensor

Which = Literal["LA", "SA", "LM"]
WHICH: tuple[str, ...] = ("LA", "SA", "LM")


class Operator(Protocol):
    """A symmetric linear map on vectors of length ``dim`` (e.g. ``v ↦ H v``)."""

    dim: int
    device: torch.device
    dtype: torch.dtype

    def __call__(self, v: Tensor, out: Tensor | None = None) -> Tensor: ...


@dataclass
class EigenResult:
    """Eigenpairs of one mini-batch's Hessian, as returned by :func:`hessian_eigenvalues`."""

    eigenvalues: Tensor  # (k,) float64 on CPU, in the order asked for by `which`
    eigenvectors: Tensor | None  # (k, P) unit rows on the model's device, or None
    n_hvp: int  # Hessian-vector products spent
    converged: bool  # every eigenvalue met the tolerance within `max_iter` products


def random_vector(
    op: Operator, generator: torch.Generator | None, rademacher: bool = False
) -> Tensor:
    """A (P,) Gaussian or Rademacher vector, drawn on the generator's device, on the model's."""
    device = generator.device if generator is not None else op.device
    if rademacher:
        v = torch.randint(0, 2, (op.dim,), generator=generator, device=device).mul_(2).sub_(1)
    else:
        v = torch.randn(op.dim, generator=generator, device=device)
    return v.to(device=op.device, dtype=op.dtype)


class Lanczos:
    """A Krylov basis ``V`` (n, P) of the operator ``A`` with ``A Vᵀ = Vᵀ T + β·r eₙᵀ``.

    ``T = V A Vᵀ`` (n, n) is kept explicitly (each new column is the projection of ``A v`` on the
    whole basis: full reorthogonalization), so a thick restart only has to rotate the basis onto
    chosen Ritz vectors, and the "arrow" couplings that creates come out of the next projection.
    ``r``, the unit residual direction and next basis vector, is stored as row n of ``basis``.

    The basis is float64 whatever the model's dtype: a float32 matrix-vector product over
    millions of entries accumulates errors of ~1e-3 relative on the CPU (measured for ResNet-18),
    which would cap the eigenvalues' accuracy; float64 costs memory (8·n·P bytes), not time. In
    float64 one classical Gram-Schmidt pass keeps the basis orthogonal to ~1e-16·‖Av‖/β, so a
    second pass is only made when ``β`` cancels below 1e-4·‖Vw‖ (Daniel-Gragg-Kaufman-Stewart).
    Work vectors are allocated once: on the CPU a fresh P-float tensor per step costs more than
    the arithmetic.
    """

    def __init__(
        self, op: Operator, start: Tensor, max_size: int, generator: torch.Generator | None
    ):
        self.op = op
        self.generator = generator
        self.basis = torch.empty(max_size + 1, op.dim, dtype=torch.float64, device=op.device)
        self.basis[0] = start
        self.basis[0] /= torch.linalg.vector_norm(self.basis[0])
        self.proj = torch.zeros(max_size, max_size, dtype=torch.float64)  # T, on the CPU
        self.size = 0
        self.beta = 0.0
        self.n_hvp = 0
        self._vector = torch.empty(op.dim, dtype=op.dtype, device=op.device)  # product's input
        self._product = torch.empty_like(self._vector)  # and output

    def step(self) -> None:
        """One product: the residual direction joins the basis and ``T`` grows by a column."""
        n = self.size
        self._vector.copy_(self.basis[n])
        w = self.basis[n + 1]  # becomes the next residual direction
        w.copy_(self.op(self._vector, out=self._product))
        self.n_hvp += 1
        basis = self.basis[: n + 1]
        h = basis @ w
        w.addmv_(basis.T, h, alpha=-1)  # w - Vᵀh; faster than `w - h @ basis` on the CPU
        beta = torch.linalg.vector_norm(w)
        if beta < 1e-4 * torch.linalg.vector_norm(h):  # cancellation: project once more (DGKS)
            h2 = basis @ w
            w.addmv_(basis.T, h2, alpha=-1)
            h, beta = h + h2, torch.linalg.vector_norm(w)
        column = torch.cat([h, beta[None]]).cpu()  # the one sync per step
        self.proj[: n + 1, n] = column[:-1]
        self.proj[n, : n + 1] = column[:-1]
        self.size, self.beta = n + 1, float(column[-1])
        if self.size == self.op.dim:  # the whole space: T is H in another basis
            self.beta = 0.0
            return
        scale = float(self.proj[: n + 1, : n + 1].abs().max())
        if self.beta <= torch.finfo(self.op.dtype).eps * scale:
            # An invariant subspace: T is exact there; go on in a fresh orthogonal direction.
            self.beta = 0.0
            w.copy_(random_vector(self.op, self.generator))
            for _ in range(2):
                w.addmv_(basis.T, basis @ w, alpha=-1)
            beta = torch.linalg.vector_norm(w)
        w /= beta

    def ritz(self) -> tuple[Tensor, Tensor, Tensor]:
        """Ritz values (n,), Ritz vectors in basis coordinates (n, n), residual norms (n,)."""
        theta, coords = torch.linalg.eigh(self.proj[: self.size, : self.size])
        return theta, coords, self.beta * coords[-1].abs()

    def restart(self, theta: Tensor, coords: Tensor) -> None:
        """Keep only the Ritz pairs ``(theta (p,), coords (n, p))``: thick restart."""
        p, n = theta.numel(), self.size
        self.basis[:p] = coords.T.to(self.basis.device) @ self.basis[:n]
        self.basis[p] = self.basis[n]  # the residual direction
        self.proj.zero_()
        self.proj[:p, :p] = torch.diag(theta)
        self.size = p


def _error_bounds(
    theta: Tensor, residuals: Tensor, wanted: Tensor, which: Which, kato_temple: bool
) -> Tensor:
    """Error bounds (k,) for the wanted Ritz values ``theta[wanted]``, ``theta`` ascending.

    The residual ``r`` bounds the distance to *some* eigenvalue whatever the spectrum. Kato-Temple's
    ``r²/gap`` is far tighter, but only as good as ``gap``, the distance to the next eigenvalue, and
    the Ritz values give no lower bound on it. It is used only at the top end (LA, and the positive
    values of LM), where a trained network's few large outliers are resolved first and the next
    Ritz value down estimates the gap well. At the bottom end (SA, the negative values of LM) the
    spectrum runs on into the bulk near 0, which Lanczos resolves last when λ_max ≫ |λ_min|: with
    2 steps the smallest Ritz value sits in the bulk with λ_max as its only neighbour, and r²/gap
    "converges" to ~0 while λ_min is −60. There the residual itself must meet the tolerance.

    Where it is used, the gap is to the adjacent Ritz values, each moved closer by its own residual
    (its eigenvalue may be that much nearer), and only once the next value down is not the lowest
    Ritz value, which at that point stands for the whole rest of the spectrum.
    """
    r = residuals[wanted]
    n = theta.numel()
    here = theta[wanted]
    top = here >= 0 if which == "LM" else torch.full_like(r, which == "LA", dtype=torch.bool)
    if not kato_temple or n < 3 or not bool(top.any()):
        return r
    padded_theta = torch.cat([theta.new_tensor([-math.inf]), theta, theta.new_tensor([math.inf])])
    padded_r = torch.cat([r.new_zeros(1), residuals, r.new_zeros(1)])
    below, above = wanted, wanted + 2  # indices of the neighbours in the padded tensors
    gap = torch.minimum(
        here - padded_theta[below] - padded_r[below], padded_theta[above] - here - padded_r[above]
    )
    usable = top & (wanted >= 2) & (gap > 0)
    return torch.where(usable, torch.minimum(r, r.square() / gap.clamp(min=1e-300)), r)


def _wanted_order(theta: Tensor, which: Which) -> Tensor:
    """Indices of ``theta`` from most to least wanted."""
    key = {"LA": -theta, "SA": theta, "LM": -theta.abs()}[which]
    return torch.argsort(key, stable=True)


def solve(
    op: Operator,
    k: int,
    which: Which,
    max_iter: int,
    tol: float,
    return_eigenvectors: bool,
    generator: torch.Generator | None,
    krylov_dim: int | None,
) -> EigenResult:
    """Thick-restart Lanczos on a built operator (see :func:`hessian_eigenvalues`).

    As in ARPACK (``scipy.sparse.linalg.eigsh``), the first Ritz values are judged only once the
    basis holds ``krylov_dim`` vectors (or after ``max_iter`` products, if fewer). No error bound
    can see an eigenvalue that the basis has not yet found: if the start vector barely touches
    the top eigenvector, a small basis holds the second eigenvalue with a tiny residual and
    nothing above it. On a trained ``resnet_mini`` a solve that stopped after 4 products returned
    λ₂ = 1,787 for λ_max = 2,047 (the start vector's component along λ_max's eigenvector was
    1/600 of a typical one); each further product shrinks that risk geometrically.
    """
    if which not in WHICH:
        raise ValueError(f"which must be one of {WHICH}, got {which!r}.")
    if k < 1 or max_iter < k:
        raise ValueError(f"need 1 <= k <= max_iter, got k={k}, max_iter={max_iter}.")
    if k > op.dim:
        raise ValueError(f"k={k} exceeds the number of parameters ({op.dim}).")
    size = min(op.dim, krylov_dim or max(2 * k + 1, 20))
    if size <= k and size < op.dim:
        raise ValueError(f"krylov_dim must exceed k={k}, got {krylov_dim}.")
    lanczos = Lanczos(op, random_vector(op, generator), size, generator)
    rounding = 10 * torch.finfo(op.dtype).eps
    while True:
        lanczos.step()
        if lanczos.n_hvp < min(size, max_iter):
            continue  # no Ritz value is accepted before the basis is full once (see docstring)
        theta, coords, residuals = lanczos.ritz()
        order = _wanted_order(theta, which)
        wanted = order[:k]
        error = _error_bounds(theta, residuals, wanted, which, not return_eigenvectors)
        # Relative to each wanted value. The residual alone may also stop at the product's
        # rounding, which scales with ‖H‖; an error bound derived from it may not.
        met = (error <= tol * theta[wanted].abs()) | (
            residuals[wanted] <= rounding * float(theta.abs().max())
        )
        converged = bool(met.all())
        if converged or lanczos.n_hvp >= max_iter:
            break
        if lanczos.size == size:
            keep = order[: k + (size - k) // 2]
            lanczos.restart(theta[keep], coords[:, keep])
    eigenvectors = None
    if return_eigenvectors:
        rotation = coords[:, wanted].T.to(op.device)
        eigenvectors = (rotation @ lanczos.basis[: lanczos.size]).to(op.dtype)
    return EigenResult(theta[wanted], eigenvectors, lanczos.n_hvp, converged)
