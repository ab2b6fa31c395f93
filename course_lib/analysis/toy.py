"""Two-dimensional toy losses whose curvature is known exactly, for teaching (chapter 00).

Every function here takes points of shape ``[..., 2]`` and returns losses of shape ``[...]``, so
the same function evaluates one point, a batch of points or a whole plotting grid. Each toy
carries its Hessian in closed form, so every numerical answer (autograd Hessian, Hessian-vector
product, power iteration, :func:`course_lib.analysis.hessian.top_eigenvalues`) can be checked
against the exact one.

What the eigenvalues of the Hessian ``H`` at a point say about the landscape there:

- ``λ > 0``: the loss curves *up* along that eigenvector (a valley direction);
  the larger ``λ``, the *sharper* the valley.
- ``λ < 0``: the loss curves *down*: a direction of non-convexity (a saddle, or a maximum).
- All ``λ > 0``: locally convex (a bowl); mixed signs: a saddle.

Park & Kim (ICLR 2022, Sec. 2.2) read sharpness from the largest eigenvalues and non-convexity
from the negative ones of a network's Hessian; this module is the 2-D picture behind that.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

Point = Sequence[float] | Tensor

# --------------------------------------------------------------------------------------------
# The toy functions
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ToyFunction:
    """A 2-D loss ``f: [..., 2] -> [...]`` with its Hessian in closed form."""

    name: str  # key in TOY_FUNCTIONS
    title: str  # short description for figure titles
    fn: Callable[[Tensor], Tensor]  # the loss, [..., 2] -> [...]
    exact_hessian: Callable[[Tensor], Tensor]  # closed-form Hessian at one point: (2,) -> (2, 2)
    minima: tuple[tuple[float, float], ...] = ()  # where the minima are (empty: none)
    extent: tuple[float, float, float, float] = (-2.0, 2.0, -2.0, 2.0)  # x0, x1, y0, y1 to plot

    def __call__(self, points: Tensor) -> Tensor:
        return self.fn(points)


def quadratic(matrix: Sequence[Sequence[float]] | Tensor, name: str, title: str) -> ToyFunction:
    """The quadratic ``f(p) = ½ pᵀ A p`` for a symmetric 2x2 ``A``: its Hessian is ``A`` everywhere.

    With ``A`` positive definite the only minimum is the origin, and the eigenvalues of ``A`` are
    the curvatures along its eigenvectors.
    """
    a = torch.as_tensor(matrix, dtype=torch.float64)
    if a.shape != (2, 2) or not torch.allclose(a, a.T):
        raise ValueError(f"need a symmetric 2x2 matrix, got {a.tolist()}")
    definite = bool((torch.linalg.eigvalsh(a) > 0).all())

    def fn(p: Tensor) -> Tensor:
        return 0.5 * torch.einsum("...i,ij,...j->...", p, a.to(p), p)

    def hessian(p: Tensor) -> Tensor:
        return a.clone()

    return ToyFunction(name, title, fn, hessian, minima=((0.0, 0.0),) if definite else ())


def _double_well(p: Tensor) -> Tensor:
    # (x² - 1)² + (y - x/2)²: two valleys at (±1, ±½), a saddle between them at the origin.
    x, y = p[..., 0], p[..., 1]
    return (x**2 - 1) ** 2 + (y - x / 2) ** 2


def _double_well_hessian(p: Tensor) -> Tensor:
    x = float(p[0])
    return torch.tensor([[12 * x**2 - 3.5, -1.0], [-1.0, 2.0]], dtype=torch.float64)


TOY_FUNCTIONS: dict[str, ToyFunction] = {
    toy.name: toy
    for toy in (
        # Rotated bowl: eigenvalues 2 along (1, -1)/√2 and 4 along (1, 1)/√2.
        quadratic([[3.0, 1.0], [1.0, 3.0]], "bowl", "convex bowl"),
        # Same minimum (the origin, loss 0), ten times different curvature.
        quadratic([[10.0, 0.0], [0.0, 4.0]], "sharp", "sharp minimum"),
        quadratic([[1.0, 0.0], [0.0, 0.4]], "flat", "flat minimum"),
        # Up along x (λ = 1), steeply down along y (λ = -3): the negative one is larger in size.
        quadratic([[1.0, 0.0], [0.0, -3.0]], "saddle", "saddle"),
        ToyFunction(
            "double_well",
            "double well (non-convex)",
            _double_well,
            _double_well_hessian,
            minima=((-1.0, -0.5), (1.0, 0.5)),
        ),
    )
}


def list_toys() -> list[str]:
    """Names of the toy functions, in teaching order."""
    return list(TOY_FUNCTIONS)


def get_toy(name: str | ToyFunction) -> ToyFunction:
    """The toy function called ``name`` (a :class:`ToyFunction` passes through)."""
    if isinstance(name, ToyFunction):
        return name
    if name not in TOY_FUNCTIONS:
        raise ValueError(f"unknown toy function {name!r}; valid: {', '.join(TOY_FUNCTIONS)}")
    return TOY_FUNCTIONS[name]


def evaluate_grid(
    toy: ToyFunction | str, n: int = 101, extent: Sequence[float] | None = None
) -> tuple[Tensor, Tensor, Tensor]:
    """``(X, Y, Z)``, each ``(n, n)``: the loss on a regular grid over ``extent`` (for contours)."""
    toy = get_toy(toy)
    x0, x1, y0, y1 = extent or toy.extent
    xs = torch.linspace(x0, x1, n, dtype=torch.float64)
    ys = torch.linspace(y0, y1, n, dtype=torch.float64)
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")  # (n, n): rows are y, columns x
    with torch.no_grad():
        z = toy(torch.stack([grid_x, grid_y], dim=-1))  # (n, n, 2) -> (n, n)
    return grid_x, grid_y, z


# --------------------------------------------------------------------------------------------
# Curvature at a point
# --------------------------------------------------------------------------------------------


def _as_point(point: Point) -> Tensor:
    p = torch.as_tensor(point, dtype=torch.float64).detach().clone()
    if p.shape != (2,):
        raise ValueError(f"a point of a 2-D toy has shape (2,), got {tuple(p.shape)}")
    return p


def hessian_at(f: Callable[[Tensor], Tensor], point: Point) -> Tensor:
    """The ``(2, 2)`` Hessian of ``f`` at ``point`` by automatic differentiation (float64).

    ``torch.autograd.functional.hessian`` differentiates twice: fine for 2 parameters, hopeless
    for millions (it builds all P² entries), which is why networks need Hessian-vector products.
    """
    return torch.autograd.functional.hessian(f, _as_point(point))


def hvp_2d(f: Callable[[Tensor], Tensor], point: Point, vector: Point) -> Tensor:
    """The Hessian-vector product ``H(point) @ vector`` by double backward, without forming ``H``.

    First backward: ``g = ∇f(p)``, kept as a differentiable function of ``p``
    (``create_graph=True``). Because ``v`` is a constant, ``∇(g · v) = H v``: one more backward
    pass through the graph of ``g`` gives the product. This costs about two gradient evaluations
    whatever the dimension, which is what makes curvature of a network measurable
    (:func:`course_lib.analysis.hessian.hvp` does exactly this for any ``nn.Module``).
    """
    p = _as_point(point).requires_grad_(True)
    v = _as_point(vector)
    (grad,) = torch.autograd.grad(f(p), p, create_graph=True)  # (2,), still depends on p
    (product,) = torch.autograd.grad(grad @ v, p)  # ∇(∇f · v) = H v
    return product


@dataclass
class Curvature:
    """Everything the explorer shows about one point of a toy landscape."""

    point: Tensor  # (2,)
    value: float  # f(point)
    gradient: Tensor  # (2,)
    hessian: Tensor  # (2, 2), autograd
    eigenvalues: Tensor  # (2,) ascending
    eigenvectors: Tensor  # (2, 2), column i belongs to eigenvalues[i]

    @property
    def kind(self) -> str:
        """The local shape: see :func:`curvature_kind`."""
        return curvature_kind(self.eigenvalues)


def curvature_at(f: Callable[[Tensor], Tensor], point: Point) -> Curvature:
    """Value, gradient, autograd Hessian and its eigen-decomposition (``eigh``) at ``point``."""
    p = _as_point(point).requires_grad_(True)
    value = f(p)
    (gradient,) = torch.autograd.grad(value, p)
    hessian = hessian_at(f, p.detach())
    eigenvalues, eigenvectors = torch.linalg.eigh(hessian)
    return Curvature(
        p.detach(), float(value.detach()), gradient, hessian, eigenvalues, eigenvectors
    )


def curvature_kind(eigenvalues: Tensor, tol: float = 1e-9) -> str:
    """Name the local shape from the Hessian's eigenvalues.

    ``"convex"`` (all positive: curving up in every direction), ``"concave"`` (all negative),
    ``"saddle"`` (both signs) or ``"degenerate"`` (an eigenvalue within ``tol`` of zero: the
    second-order picture cannot decide).
    """
    if bool((eigenvalues.abs() <= tol).any()):
        return "degenerate"
    if bool((eigenvalues > 0).all()):
        return "convex"
    if bool((eigenvalues < 0).all()):
        return "concave"
    return "saddle"


def eigenvalue_table(points: Mapping[str, Point] | Iterable[tuple[str, Point]]) -> str:
    """A text table: autograd vs closed-form Hessian eigenvalues of each toy at its point.

    ``points`` maps toy names to points, or lists ``(name, point)`` pairs (to visit one toy at
    several points). Values are rounded to 4 decimals, so the table is deterministic (the
    chapter's checked output).
    """

    def fmt(values: Tensor) -> str:
        # "+ 0.0" turns a rounded -0.0 into 0.0.
        return "(" + ", ".join(f"{round(float(v), 4) + 0.0:.4f}" for v in values) + ")"

    pairs = points.items() if isinstance(points, Mapping) else points
    header = f"{'function':<12}{'point':>14}{'autograd λ':>22}{'exact λ':>22}  shape"
    lines = [header, "-" * len(header)]
    for name, point in pairs:
        toy = get_toy(name)
        curvature = curvature_at(toy, point)
        exact = torch.linalg.eigvalsh(toy.exact_hessian(curvature.point))
        where = "(" + ", ".join(f"{float(c):g}" for c in curvature.point) + ")"
        lines.append(
            f"{name:<12}{where:>14}{fmt(curvature.eigenvalues):>22}{fmt(exact):>22}  "
            f"{curvature.kind}"
        )
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Power iteration (teaching version)
# --------------------------------------------------------------------------------------------


@dataclass
class PowerIteration:
    """The result of :func:`power_iteration`, with the estimate after every step."""

    eigenvalue: float  # the last estimate
    eigenvector: Tensor  # (dim,) unit vector
    history: Tensor  # (n_steps,) Rayleigh quotient vᵀAv after each product
    n_matvec: int  # matrix-vector (Hessian-vector) products spent


def power_iteration(
    matvec: Callable[[Tensor], Tensor],
    dim: int,
    n_iter: int = 50,
    generator: torch.Generator | None = None,
    *,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
) -> PowerIteration:
    """Power iteration ``v ← A v / ‖A v‖``, recording the estimate ``vᵀ A v`` at every step.

    The teaching version: no deflation, no stopping rule, everything recorded. ``matvec`` is any
    function ``(dim,) -> (dim,)`` for a symmetric ``A`` (a matrix product, :func:`hvp_2d` or
    :func:`course_lib.analysis.hessian.hvp`). Starting from a random vector, the component along
    the eigenvector of largest ``|λ|`` grows fastest (by ``|λ₁/λ₂|`` per step), so the method
    converges to the eigenvalue of **largest magnitude**, which is not the algebraically largest
    one when a negative eigenvalue dominates (e.g. the saddle, ``λ = 1, -3``: it returns -3).
    PyHessian, and hence the paper's spectra, rank eigenvalues this way.

    For networks use :func:`course_lib.analysis.hessian.top_eigenvalues` (Lanczos: far fewer
    products, a convergence test, and ``which="LA"/"SA"/"LM"`` to pick what you want).
    """
    if n_iter < 1:
        raise ValueError(f"n_iter must be at least 1, got {n_iter}")
    gen_device = generator.device if generator is not None else device
    v = torch.randn(dim, generator=generator, dtype=dtype, device=gen_device).to(device)
    v /= torch.linalg.vector_norm(v)
    history = []
    for _ in range(n_iter):
        w = matvec(v).to(v)
        history.append(float(v @ w))  # Rayleigh quotient: exact when v is an eigenvector
        norm = torch.linalg.vector_norm(w)
        if norm == 0:  # v lies in the null space: the estimate 0 is exact
            break
        v = w / norm
    return PowerIteration(history[-1], v, torch.tensor(history, dtype=torch.float64), len(history))


# --------------------------------------------------------------------------------------------
# A toy as a model: the production Hessian tools on a 2-D loss
# --------------------------------------------------------------------------------------------


class ToyModel(nn.Module):
    """A toy loss as an ``nn.Module`` whose two weights are the point ``θ``.

    ``model(inputs)`` ignores its inputs and returns ``f(θ)``; with :func:`toy_loss` as the loss
    function, the Hessian of "the network" with respect to its weights is exactly the toy's
    Hessian at ``θ``. This lets :mod:`course_lib.analysis.hessian` run on a case with a known
    answer: ``top_eigenvalues(ToyModel(toy, point), toy_loss, TOY_BATCH, which=...)``.
    """

    def __init__(self, toy: ToyFunction | str, point: Point) -> None:
        super().__init__()
        self.toy = get_toy(toy)
        self.theta = nn.Parameter(_as_point(point))

    def forward(self, inputs: Any = None) -> Tensor:
        return self.toy(self.theta)


def toy_loss(outputs: Tensor, targets: Any = None) -> Tensor:
    """The loss function for :class:`ToyModel`: its output already is the loss."""
    return outputs


TOY_BATCH: tuple[Tensor, Tensor] = (torch.zeros(1), torch.zeros(1))  # ignored by ToyModel


class TinyProblem(NamedTuple):
    """A network, a loss and one batch: the arguments of every function in ``analysis.hessian``."""

    model: nn.Module
    loss_fn: Callable[[Tensor, Tensor], Tensor]
    batch: tuple[Tensor, Tensor]  # (inputs (N, n_features), integer labels (N,))


def tiny_network_problem(
    n_samples: int = 64, n_features: int = 4, hidden: int = 8, n_classes: int = 3, seed: int = 0
) -> TinyProblem:
    """A tanh MLP at its random initialisation on random Gaussian data, with cross-entropy.

    Small enough for :func:`course_lib.analysis.hessian.exact_hessian` (by default
    ``P = (4 + 1)·8 + (8 + 1)·3 = 67`` weights, so a 67 x 67 Hessian), yet a real network: its
    Hessian has eigenvalues of both signs. Deterministic for a ``seed``; the global random state
    is left untouched.
    """
    g = torch.Generator().manual_seed(seed)
    inputs = torch.randn(n_samples, n_features, generator=g)
    labels = torch.randint(0, n_classes, (n_samples,), generator=g)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = nn.Sequential(
            nn.Linear(n_features, hidden), nn.Tanh(), nn.Linear(hidden, n_classes)
        )
    return TinyProblem(model, F.cross_entropy, (inputs, labels))
