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
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Literal

import torch
from torch import Tensor, nn
from torch.nn.attention import SDPBackend, sdpa_kernel

from course_lib.analysis.batches import load_batch
from course_lib.analysis.evaluation import model_mode
from course_lib.analysis.lanczos import EigenResult, Lanczos, Which, random_vector, solve

LossFn = Callable[[Any, Any], Tensor]
Mode = Literal["eval", "train"]


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
    # A train-mode forward updates BatchNorm's running statistics: keep a copy to put back.
    saved = [(b, b.detach().clone()) for b in model.buffers()] if mode == "train" else []
    try:
        with model_mode(model, training=mode == "train"):
            yield
    finally:
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
    which can meet the tolerance several products before the residual does. At the bottom end
    (SA, negative LM values) the gap cannot be estimated before that end is resolved, and the
    residual itself must meet the tolerance (see ``_error_bounds``). With
    ``return_eigenvectors=True`` the residual must meet it everywhere, which makes the vectors
    accurate too. A residual below the product's float rounding (~1e-6·‖H‖ in float32) also
    counts as converged, for eigenvalues too close to 0 for a relative test. ``max_iter`` caps the
    Hessian-vector products in total; the basis holds ``krylov_dim`` vectors (default
    ``max(2k + 1, 20)``; memory ``8·krylov_dim·P`` bytes), and no answer is judged before it is
    full once, as in ARPACK. Like every single-vector Krylov method, an exactly repeated
    eigenvalue may be found once, and an eigenvalue whose eigenvector the start vector barely
    touches may be found late; the full first basis makes that rare (see ``lanczos.solve``).

    Cost, measured (``benchmarks/bench_hessian.py --only-ours``: torchvision ResNet-18, batch 64,
    2 CPU threads, torch 2.14.1, tol 1e-4, "LM" and "LA" alike): top-1 in 20 products (the first
    full basis) and 8.1 s, top-5 in 24 products and 10.5 s, with a relative error of 1.7e-7.
    PyHessian 0.1, measured by the full benchmark on the same model and batch before this rule:
    top-1 in 11 products, top-5 in 149 and 140 s, with an error of 1.5e-3. One product costs
    about 2.3 forward+backward passes and 2.8× their peak memory. Before the full first basis was
    required, our solves stopped after 5 and 19 products.
    """
    with _hessian_operator(model, loss_fn, batch, weight_decay, mode, "hessian_eigenvalues") as op:
        return solve(op, k, which, max_iter, tol, return_eigenvectors, generator, krylov_dim)


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
        return solve(op, k, which, max_iter, tol, return_eigenvectors, generator, krylov_dim)


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

        def end(which: Which, n: int) -> EigenResult:
            return solve(op, n, which, max_iter, tol, False, generator, krylov_dim)

        results = [end("LA", k), end("SA", 1)]
        largest, smallest = results[0].eigenvalues, results[1].eigenvalues
        if not (largest[-1] > 0 and -smallest[0] <= largest[-1]):
            results.append(end("SA", min(k, op.dim)))
            both = torch.cat([largest, results[2].eigenvalues])
            order = torch.argsort(both.abs(), descending=True, stable=True)
            largest = both[order[:k]]
    return EigenResult(
        largest,
        None,
        sum(r.n_hvp for r in results),
        all(r.converged for r in results),
    )


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
            z = torch.stack([random_vector(op, generator, rademacher=True) for _ in range(n)])
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
            start = random_vector(op, generator, rademacher=True)
            lanczos = Lanczos(op, start, steps, generator)
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
