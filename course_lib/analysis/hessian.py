"""The Hessian of the loss with respect to the weights, for any ``nn.Module``.

Hessian-vector products, the top (or bottom) eigenvalues of one mini-batch's Hessian, the
"max eigenvalue spectrum" over many mini-batches, the trace (Hutchinson) and the spectral density
(stochastic Lanczos quadrature). Park & Kim (ICLR 2022) read the sharpness and non-convexity of the
loss landscape off these spectra (Sec. 2.2, Fig. 1c and Fig. 4; claims C3 and C4).

Every function takes ``(model, loss_fn, batch)`` with ``batch = (inputs, targets)`` (extra items
ignored) and ``loss_fn(outputs, targets) -> scalar``; the batch is moved to the device of the
model's parameters, and inputs with NaN or inf are refused (:mod:`course_lib.analysis.batches`).
"Parameters" are the trainable ones (``requires_grad``) in ``model.parameters()`` order,
flattened into one vector of length ``P``. The model's training flags, buffers and ``.grad`` are
left as they were.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any, Literal

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.nn.attention import SDPBackend, sdpa_kernel

from course_lib.analysis.batches import Batch, is_single_batch, iter_batches, load_batch

LossFn = Callable[[Any, Any], Tensor]
Which = Literal["LA", "SA", "LM"]
Mode = Literal["eval", "train"]

_WHICH = ("LA", "SA", "LM")


@dataclass
class EigenResult:
    """Eigenpairs of one mini-batch's Hessian, as returned by :func:`hessian_eigenvalues`."""

    eigenvalues: Tensor  # (k,) float64 on CPU, in the order asked for by `which`
    eigenvectors: Tensor | None  # (k, P) unit rows on the model's device, or None
    n_hvp: int  # Hessian-vector products spent
    converged: bool  # every eigenvalue met the tolerance within `max_iter` products


# --------------------------------------------------------------------------------------------
# The operator v -> (H + weight_decay I) v for one batch
# --------------------------------------------------------------------------------------------


class _HessianOperator:
    """``v ↦ (H + weight_decay·I) v`` for one batch, the gradient graph built once.

    Reverse-over-reverse: the first backward is taken once with ``create_graph=True`` and every
    product is one more backward through that graph. Measured by ``benchmarks/bench_hessian.py``
    (CPU, 2 threads): a product costs ≈ 2.2 forward+backward passes for ResNet-18 and ≈ 2 for a
    small ViT, against ≈ 4 for ``torch.func`` forward-over-reverse (``jvp`` of ``grad``), which has
    to redo the forward and first backward for every vector. Several vectors at once through vmap
    (``is_grads_batched``) cost more than a loop for ResNet-18 but far less for tiny models, so
    iterative methods take one at a time and ``exact_hessian`` takes blocks. The price is memory:
    the graph stays alive as long as the operator.
    """

    def __init__(self, params: list[Tensor], grads: Sequence[Tensor], weight_decay: float):
        self.params = params
        self.sizes = [p.numel() for p in params]
        self.dim = sum(self.sizes)
        self.dtype = params[0].dtype
        self.device = params[0].device
        self.weight_decay = weight_decay
        # Gradients that do not depend on the weights (loss linear in them) have zero Hessian rows.
        self._rows = [i for i, g in enumerate(grads) if g.requires_grad]
        self._grads = [grads[i] for i in self._rows]

    def __call__(self, v: Tensor, out: Tensor | None = None) -> Tensor:
        """(P,) -> (P,), or (n, P) -> (n, P) with the n rows taken at once through vmap.

        ``out``: where to write the result; reusing a buffer saves the CPU the page faults of a
        fresh allocation of P floats on every product.
        """
        if v.ndim == 2 and len(v) == 1:
            return self(v[0])[None]
        lead = v.shape[:-1]
        if not self._grads:
            return torch.mul(v, self.weight_decay, out=out)
        chunks = v.split(self.sizes, dim=-1)
        hv = torch.autograd.grad(
            self._grads,
            self.params,
            grad_outputs=[chunks[i].reshape(*lead, *self.params[i].shape) for i in self._rows],
            retain_graph=True,
            allow_unused=True,
            materialize_grads=True,
            is_grads_batched=bool(lead),
        )
        out = torch.cat([h.reshape(*lead, -1) for h in hv], dim=-1, out=out)
        return out.add_(v, alpha=self.weight_decay) if self.weight_decay else out


def _trainable_parameters(model: nn.Module, where: str = "the Hessian") -> list[nn.Parameter]:
    everything = list(model.parameters())
    params = [p for p in everything if p.requires_grad]
    if not params:
        why = (
            f"all {len(everything)} have requires_grad=False"
            if everything
            else "it has no parameters at all"
        )
        raise ValueError(
            f"{where}: {type(model).__name__} has no trainable parameters ({why}): pass a model "
            "with parameters that require grad (e.g. call model.requires_grad_(True))"
        )
    return params


@contextlib.contextmanager
def _model_mode(model: nn.Module, mode: Mode) -> Iterator[None]:
    """Put the model in ``mode``; afterwards restore every module's flag and every buffer."""
    if mode not in ("eval", "train"):
        raise ValueError(f"mode must be 'eval' or 'train', got {mode!r}.")
    flags = [(module, module.training) for module in model.modules()]
    # A train-mode forward updates BatchNorm's running statistics: keep a copy to put back.
    saved = [(b, b.detach().clone()) for b in model.buffers()] if mode == "train" else []
    model.train(mode == "train")
    try:
        yield
    finally:
        for module, flag in flags:
            module.training = flag
        with torch.no_grad():
            for buffer, value in saved:
                buffer.copy_(value)


@contextlib.contextmanager
def _hessian_operator(
    model: nn.Module,
    loss_fn: LossFn,
    batch: Any,
    weight_decay: float,
    mode: Mode,
    where: str = "the Hessian",
) -> Iterator[_HessianOperator]:
    """Build the operator for one batch; the graph is freed and the model restored on exit.

    Attention runs on SDPA's math backend: the fused CPU kernels of
    ``F.scaled_dot_product_attention`` have no double backward. ``where``: the public function,
    for error messages. Inputs already on an accelerator cost one sync for their finiteness
    check, against dozens in any solve.
    """
    params = _trainable_parameters(model, where)
    inputs, targets = load_batch(batch, params[0].device, where)
    with _model_mode(model, mode), sdpa_kernel([SDPBackend.MATH]), torch.enable_grad():
        loss = loss_fn(model(inputs), targets)
        if loss.ndim != 0:
            raise ValueError(
                f"loss_fn must return a scalar, got shape {tuple(loss.shape)}; "
                "use a mean reduction (e.g. F.cross_entropy with reduction='mean')."
            )
        if not torch.isfinite(loss):
            raise ValueError(
                f"the loss is {loss.item()} on this batch, so its Hessian is undefined; check the "
                "inputs for NaN/inf and the weights for divergence (reload a healthy checkpoint)."
            )
        grads = torch.autograd.grad(
            loss, params, create_graph=True, allow_unused=True, materialize_grads=True
        )
        yield _HessianOperator(params, grads, weight_decay)


# --------------------------------------------------------------------------------------------
# Lanczos with full reorthogonalization
# --------------------------------------------------------------------------------------------


def _random_vector(
    op: _HessianOperator, generator: torch.Generator | None, rademacher: bool = False
) -> Tensor:
    """A (P,) Gaussian or Rademacher vector, drawn on the generator's device, on the model's."""
    device = generator.device if generator is not None else op.device
    if rademacher:
        v = torch.randint(0, 2, (op.dim,), generator=generator, device=device).mul_(2).sub_(1)
    else:
        v = torch.randn(op.dim, generator=generator, device=device)
    return v.to(device=op.device, dtype=op.dtype)


class _Lanczos:
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
        self, op: _HessianOperator, start: Tensor, max_size: int, generator: torch.Generator | None
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
            w.copy_(_random_vector(self.op, self.generator))
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


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


def hvp(
    model: nn.Module,
    loss_fn: LossFn,
    batch: Any,
    vector: Tensor,
    *,
    weight_decay: float = 0.0,
    mode: Mode = "eval",
) -> Tensor:
    """Hessian-vector product ``(H + weight_decay·I) v`` of the batch loss, shape (P,).

    ``vector`` is flat (P,) over the trainable parameters in ``model.parameters()`` order.
    ``weight_decay`` adds the Hessian of ``weight_decay/2·‖θ‖²``, the L2 term the paper kept in
    its loss. ``mode="eval"`` (default): BatchNorm uses its running statistics and dropout is off,
    so the loss is a deterministic function of the weights alone and its Hessian is well defined
    (PyHessian, hence the paper, did the same). ``mode="train"``: batch statistics, and dropout
    with one mask per batch that every product of an iterative method shares. Method:
    reverse-over-reverse, chosen by measurement (see ``_HessianOperator``).
    """
    with _hessian_operator(model, loss_fn, batch, weight_decay, mode, "hvp") as op:
        if vector.shape != (op.dim,):
            raise ValueError(f"vector must have shape ({op.dim},), got {tuple(vector.shape)}.")
        return op(vector.to(device=op.device, dtype=op.dtype))


def _solve(
    op: _HessianOperator,
    k: int,
    which: Which,
    max_iter: int,
    tol: float,
    return_eigenvectors: bool,
    generator: torch.Generator | None,
    krylov_dim: int | None,
) -> EigenResult:
    """Thick-restart Lanczos on a built operator (see :func:`hessian_eigenvalues`)."""
    if which not in _WHICH:
        raise ValueError(f"which must be one of {_WHICH}, got {which!r}.")
    if k < 1 or max_iter < k:
        raise ValueError(f"need 1 <= k <= max_iter, got k={k}, max_iter={max_iter}.")
    if k > op.dim:
        raise ValueError(f"k={k} exceeds the number of parameters ({op.dim}).")
    size = min(op.dim, krylov_dim or max(2 * k + 1, 20))
    if size <= k and size < op.dim:
        raise ValueError(f"krylov_dim must exceed k={k}, got {krylov_dim}.")
    lanczos = _Lanczos(op, _random_vector(op, generator), size, generator)
    rounding = 10 * torch.finfo(op.dtype).eps
    while True:
        lanczos.step()
        if lanczos.size < k:
            continue
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


def hessian_eigenvalues(
    model: nn.Module,
    loss_fn: LossFn,
    batch: Any,
    k: int = 1,
    *,
    which: Which = "LA",
    max_iter: int = 100,
    tol: float = 1e-4,
    weight_decay: float = 0.0,
    mode: Mode = "eval",
    return_eigenvectors: bool = False,
    generator: torch.Generator | None = None,
    krylov_dim: int | None = None,
) -> EigenResult:
    """``k`` eigenvalues at either end of one batch's Hessian by thick-restart Lanczos.

    ``which``: "LA" algebraically largest, sorted descending (sharpness, the default); "SA"
    smallest, ascending (the most negative: non-convexity); "LM" largest magnitude, by descending
    ``|λ|`` — what PyHessian's deflated power iteration returns, so the ranking behind the paper's
    spectra (Fig. 1c, Fig. 4), where a large negative eigenvalue can enter the "top-5".

    Converged means every returned eigenvalue's error bound is at most ``tol·|λ|``. The bound of a
    Ritz pair with residual ``r = ‖Hx − λx‖`` is ``r``; at the top end (LA, positive LM values) it
    is ``min(r, r²/gap)`` (Kato-Temple, gap to the neighbouring Ritz values less their residuals),
    so those eigenvalues converge in about half the products of a residual test. At the bottom end
    (SA, negative LM values) the gap cannot be estimated before that end is resolved, and the
    residual itself must meet the tolerance (see ``_error_bounds``). With
    ``return_eigenvectors=True`` the residual must meet it everywhere, which makes the vectors
    accurate too. A residual below the product's float rounding (~1e-6·‖H‖ in float32) also
    counts as converged, for eigenvalues too close to 0 for a relative test. ``max_iter`` caps the
    Hessian-vector products in total; the basis holds ``krylov_dim`` vectors (default
    ``max(2k + 1, 20)``; memory ``8·krylov_dim·P`` bytes). Like every single-vector Krylov
    method, an exactly repeated eigenvalue may be found once, and an eigenvalue whose eigenvector
    the start vector barely touches may be found late, after a converged answer without it.

    Cost, measured (``benchmarks/bench_hessian.py``: torchvision ResNet-18, batch 64, 2 CPU
    threads, tol 1e-4, "LM"): top-1 in 6 products (PyHessian 0.1: 11), top-5 in 21 products and
    10.7 s (PyHessian: 149 products and 140 s, with a 1.5e-3 error against our 1.7e-5). One
    product costs about 2.3 forward+backward passes and 2.8× their peak memory. Re-measured with
    the present stopping rule (``--only-ours``, torch 2.14.1, 1 thread): top-1 in 5 products and
    top-5 in 19, for "LM" and "LA" alike: as many as with the rule it replaced on the same run.
    """
    with _hessian_operator(model, loss_fn, batch, weight_decay, mode, "hessian_eigenvalues") as op:
        return _solve(op, k, which, max_iter, tol, return_eigenvectors, generator, krylov_dim)


def top_eigenvalues(
    model: nn.Module,
    loss_fn: LossFn,
    batch: Any,
    k: int = 1,
    *,
    which: Which = "LA",
    max_iter: int = 100,
    tol: float = 1e-4,
    weight_decay: float = 0.0,
    mode: Mode = "eval",
    return_eigenvectors: bool = False,
    generator: torch.Generator | None = None,
    krylov_dim: int | None = None,
) -> EigenResult:
    """The ``k`` largest eigenvalues of one batch's Hessian, descending: the sharpness.

    The course's entry point for the top of the spectrum: :func:`hessian_eigenvalues`, which
    documents the arguments (``which`` works here too, for code that asks for the other end by
    this name; errors name this function).
    """
    with _hessian_operator(model, loss_fn, batch, weight_decay, mode, "top_eigenvalues") as op:
        return _solve(op, k, which, max_iter, tol, return_eigenvectors, generator, krylov_dim)


def largest_magnitude_eigenvalues(
    model: nn.Module,
    loss_fn: LossFn,
    batch: Any,
    k: int = 5,
    *,
    max_iter: int = 100,
    tol: float = 1e-4,
    weight_decay: float = 0.0,
    mode: Mode = "eval",
    generator: torch.Generator | None = None,
    krylov_dim: int | None = None,
) -> EigenResult:
    """The ``k`` eigenvalues of largest ``|λ|``, by descending ``|λ|``, from the two ends.

    PyHessian's, hence the paper's, ranking, computed as "LA"-k, then "SA"-1, then "SA"-k only
    if needed: each of the top-k by magnitude is among the k largest or the k smallest. If
    ``λ_k > 0`` and ``|λ_min| <= λ_k`` no negative eigenvalue outranks ``λ_k``, so the top-k by
    magnitude are the k largest and one "SA" solve decides it; this is the usual case for a
    trained network, where ``λ_max ≫ |λ_min|`` and "LM"-k would spend its products resolving
    the top end anyway. Otherwise "SA"-k is solved too and the two ends are merged. Both solves
    share one gradient graph. ``max_iter`` caps each solve; ``n_hvp`` is their sum; converged
    means every solve converged. Returns no eigenvectors.
    """
    with _hessian_operator(
        model, loss_fn, batch, weight_decay, mode, "largest_magnitude_eigenvalues"
    ) as op:

        def solve(which: Which, n: int) -> EigenResult:
            return _solve(op, n, which, max_iter, tol, False, generator, krylov_dim)

        results = [solve("LA", k), solve("SA", 1)]
        largest, smallest = results[0].eigenvalues, results[1].eigenvalues
        if not (largest[-1] > 0 and -smallest[0] <= largest[-1]):
            results.append(solve("SA", min(k, op.dim)))
            both = torch.cat([largest, results[2].eigenvalues])
            order = torch.argsort(both.abs(), descending=True, stable=True)
            largest = both[order[:k]]
    return EigenResult(
        largest,
        None,
        sum(r.n_hvp for r in results),
        all(r.converged for r in results),
    )


def max_eigenvalue_spectrum(
    model: nn.Module,
    loss_fn: LossFn,
    batches: Batch | Iterable[Any],
    k: int = 1,
    *,
    which: Which = "LA",
    max_iter: int = 100,
    tol: float = 1e-4,
    weight_decay: float = 0.0,
    mode: Mode = "eval",
    generator: torch.Generator | None = None,
    progress: bool = False,
    from_ends: bool = False,
) -> Tensor:
    """Top-``k`` eigenvalues of every mini-batch's Hessian, (n_batches, k) float64 on the CPU.

    The paper's "max eigenvalue spectrum" (Fig. 1c, Fig. 4) is the density of these values over
    many mini-batches (batch 16, ``which="LM"``, ``k=5``, with the weight-decay term). Each row
    follows :func:`hessian_eigenvalues`; with ``which="LM", from_ends=True`` it follows
    :func:`largest_magnitude_eigenvalues` instead (the same values, from "LA"-k plus "SA"-1,
    cheaper for trained networks). :func:`negative_proportion` turns an "LM" spectrum into the
    paper's NEP. If ``torch.distributed`` is initialized, batch ``i`` is computed on rank
    ``i % world_size`` and the rows are all-reduced, so every rank returns the same full tensor in
    batch order; every rank must iterate the same ``batches``.

    ``batches``: a list of ``(inputs, targets)`` batches, any iterable of them (a ``DataLoader``),
    or one batch (one row). Every rank checks every batch's inputs for NaN/inf (cheap on the
    CPU), so that bad data raises on all ranks alike instead of leaving some in ``all_reduce``.
    """
    if from_ends and which != "LM":
        raise ValueError(f"from_ends=True computes the 'LM' ranking; got which={which!r}.")
    device = _trainable_parameters(model, "max_eigenvalue_spectrum")[0].device
    distributed = dist.is_available() and dist.is_initialized()
    rank, world = (dist.get_rank(), dist.get_world_size()) if distributed else (0, 1)
    if is_single_batch(batches):
        batches = [batches]  # one row; wrapped before tqdm, which needs the list's length
    if progress:
        from tqdm.auto import tqdm

        batches = tqdm(batches, desc="Hessian spectrum", disable=rank != 0)
    options = dict(max_iter=max_iter, tol=tol, weight_decay=weight_decay, mode=mode)
    rows: dict[int, Tensor] = {}
    n_batches, n_unconverged = 0, 0
    for i, batch in enumerate(iter_batches(batches, where="max_eigenvalue_spectrum")):
        n_batches = i + 1
        if i % world != rank:
            continue
        if from_ends:
            result = largest_magnitude_eigenvalues(
                model, loss_fn, batch, k, generator=generator, **options
            )
        else:
            result = hessian_eigenvalues(
                model, loss_fn, batch, k, which=which, generator=generator, **options
            )
        rows[i] = result.eigenvalues
        n_unconverged += not result.converged
    spectrum = torch.zeros(n_batches, k, dtype=torch.float64)
    for i, eigenvalues in rows.items():
        spectrum[i] = eigenvalues
    if world > 1:
        # NCCL only reduces CUDA tensors: reduce on the model's device.
        spectrum = spectrum.to(device)
        dist.all_reduce(spectrum)
        spectrum = spectrum.cpu()
    if n_unconverged:
        warnings.warn(
            f"{n_unconverged} batch(es) on rank {rank} did not reach tol={tol} within "
            f"max_iter={max_iter} products; raise max_iter.",
            stacklevel=2,
        )
    return spectrum


def wilson_interval(successes: int, trials: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion ``successes / trials``.

    Unlike the normal approximation ``p ± z·sqrt(p(1−p)/n)`` it stays inside [0, 1] and keeps its
    coverage near 0 and 1, where a NEP of a few percent lives (Wilson 1927).
    """
    if trials < 1 or not 0 <= successes <= trials:
        raise ValueError(f"need 0 <= successes <= trials, trials >= 1; got {successes}/{trials}.")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}.")
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    p, z2 = successes / trials, z * z
    shrink = 1 + z2 / trials
    center = (p + z2 / (2 * trials)) / shrink
    half = z / shrink * math.sqrt(p * (1 - p) / trials + z2 / (4 * trials * trials))
    return max(0.0, center - half), min(1.0, center + half)


@dataclass
class NegativeProportion:
    """The paper's NEP: the share of negative values in a top-k-by-magnitude spectrum."""

    proportion: float
    low: float  # Wilson score interval at `confidence`
    high: float
    negatives: int
    total: int  # n_batches · k values
    confidence: float


def negative_proportion(spectrum: Tensor, confidence: float = 0.95) -> NegativeProportion:
    """NEP of an "LM" spectrum (n_batches, k), as the paper counts it, with a Wilson interval.

    Per batch the paper ranks the top-k (k = 5) eigenvalues by magnitude (PyHessian) and counts
    the negative ones; NEP pools the counts over batches. Pass what
    ``max_eigenvalue_spectrum(..., which="LM")`` returns (or ``from_ends=True``, the same values
    for less): a spectrum ranked "LA" would never let a negative value in. The interval treats
    the ``n_batches·k`` values as independent draws; values of one batch are not, so read it as a
    lower bound on the uncertainty.
    """
    values = spectrum.detach().reshape(-1)
    negatives, total = int((values < 0).sum()), values.numel()
    low, high = wilson_interval(negatives, total, confidence)
    return NegativeProportion(negatives / total, low, high, negatives, total, confidence)


def spectrum_summary(eigs: Tensor) -> dict[str, float]:
    """The paper's two numbers for a spectrum (any shape; all values pooled).

    ``nep``: proportion of negative eigenvalues (non-convexity); ``ape``: average of the positive
    eigenvalues (sharpness). Also ``n``, the number of values.
    """
    values = eigs.detach().reshape(-1).double().cpu()
    positive = values[values > 0]
    return {
        "nep": float((values < 0).double().mean()) if values.numel() else math.nan,
        "ape": float(positive.mean()) if positive.numel() else math.nan,
        "n": values.numel(),
    }


def hessian_trace(
    model: nn.Module,
    loss_fn: LossFn,
    batch: Any,
    *,
    n_samples: int = 100,
    weight_decay: float = 0.0,
    mode: Mode = "eval",
    generator: torch.Generator | None = None,
    probes_per_product: int = 1,
) -> tuple[float, float]:
    """Hutchinson estimate of ``tr(H)`` with Rademacher probes: ``(estimate, standard_error)``.

    ``E[zᵀHz] = tr(H)`` for ``z`` with independent ±1 entries; the standard error is the sample
    standard deviation over ``sqrt(n_samples)``. ``probes_per_product > 1`` multiplies that many
    probes at once through vmap: faster for tiny models, slower for ResNet-18 on CPU (measured in
    ``benchmarks/bench_hessian.py``).
    """
    if n_samples < 2:
        raise ValueError(f"n_samples must be at least 2 for a standard error, got {n_samples}.")
    with _hessian_operator(model, loss_fn, batch, weight_decay, mode, "hessian_trace") as op:
        samples = torch.empty(n_samples, dtype=torch.float64, device=op.device)
        for start in range(0, n_samples, probes_per_product):
            n = min(probes_per_product, n_samples - start)
            z = torch.stack([_random_vector(op, generator, rademacher=True) for _ in range(n)])
            samples[start : start + n] = (z * op(z)).sum(-1)
    return float(samples.mean()), float(samples.std() / math.sqrt(n_samples))


def spectral_density(
    model: nn.Module,
    loss_fn: LossFn,
    batch: Any,
    *,
    n_iter: int = 64,
    n_runs: int = 4,
    grid: Tensor | None = None,
    sigma: float | None = None,
    n_points: int = 1000,
    weight_decay: float = 0.0,
    mode: Mode = "eval",
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor]:
    """Eigenvalue density of the Hessian by stochastic Lanczos quadrature: ``(grid, density)``.

    Each of ``n_runs`` Lanczos runs of ``n_iter`` steps from a random unit vector ``v`` gives a
    Gauss quadrature (nodes = Ritz values, weights = squared first components) of
    ``vᵀ f(H) v ≈ tr f(H) / P``; the density is their average, smoothed with a Gaussian of width
    ``sigma`` (default 1 % of the Ritz range). Both are (n_points,) float64 on the CPU, or the
    shape of ``grid``; the density integrates to ≈ 1 and its mean estimates ``tr(H) / P``
    (Ghorbani et al. 2019; PyHessian's ``density``).
    """
    nodes, weights = [], []
    with _hessian_operator(model, loss_fn, batch, weight_decay, mode, "spectral_density") as op:
        steps = min(n_iter, op.dim)
        for _ in range(n_runs):
            start = _random_vector(op, generator, rademacher=True)
            lanczos = _Lanczos(op, start, steps, generator)
            for _ in range(steps):
                lanczos.step()
            theta, coords, _ = lanczos.ritz()
            nodes.append(theta)
            weights.append(coords[0] ** 2 / n_runs)
    nodes_, weights_ = torch.cat(nodes), torch.cat(weights)
    low, high = float(nodes_.min()), float(nodes_.max())
    if sigma is None:
        sigma = 0.01 * (high - low) or 0.01 * max(abs(high), 1.0)
    if grid is None:
        grid = torch.linspace(low - 5 * sigma, high + 5 * sigma, n_points, dtype=torch.float64)
    grid = grid.to(torch.float64)
    gaussians = torch.exp(-0.5 * ((grid[..., None] - nodes_) / sigma) ** 2)
    density = gaussians @ weights_ / (sigma * math.sqrt(2 * math.pi))
    return grid, density


def exact_hessian(
    model: nn.Module,
    loss_fn: LossFn,
    batch: Any,
    *,
    weight_decay: float = 0.0,
    mode: Mode = "eval",
    max_params: int = 5000,
) -> Tensor:
    """The full (P, P) Hessian, symmetrized; for tiny models and tests.

    Columns are products with the identity, 256 at a time through vmap: for tiny models that is
    far faster than a loop, which wins for large ones (see ``_HessianOperator``).
    """
    n_params = sum(p.numel() for p in _trainable_parameters(model, "exact_hessian"))
    if n_params > max_params:
        raise ValueError(
            f"exact_hessian would build a {n_params}x{n_params} matrix ({n_params} products); "
            f"use top_eigenvalues/spectral_density, or pass max_params={n_params} if you mean it."
        )
    with _hessian_operator(model, loss_fn, batch, weight_decay, mode, "exact_hessian") as op:
        identity = torch.eye(op.dim, dtype=op.dtype, device=op.device)
        columns = torch.cat([op(block) for block in identity.split(256)])
    return (columns + columns.T) / 2
