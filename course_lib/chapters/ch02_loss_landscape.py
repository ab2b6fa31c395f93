"""Chapter 02 — the loss landscape (claims C3, C4 of Park & Kim 2022): Hessian spectra, surfaces.

Two cached steps analyse the profile's shared trained models (the very runs of chapter 01, through
:func:`~course_lib.experiments.trained_model` with the profile defaults):

- :func:`hessian_spectra` — for every mini-batch of ``profile.hessian_batch_size`` training images
  (``profile.hessian_batches`` of them), the ``profile.hessian_k`` algebraically largest ("LA",
  sharpness) and smallest ("SA", the most negative: non-convexity) eigenvalues of the Hessian of
  the batch loss, for the trained ResNet and ViT, for the ViT trained on the smallest data
  fraction of chapter 01 (C4), and for both families at random initialisation. The paper's
  ranking, top-``k`` by magnitude ("LM", what PyHessian returns), is derived from the two ends
  exactly: the ``k`` largest-magnitude eigenvalues are the ``k`` largest-magnitude values among
  the ``k`` largest and the ``k`` smallest (:func:`largest_magnitude`). With the top eigenvector's
  split over parameter groups (:func:`vector_composition`): where the sharpness lives.
- :func:`loss_surfaces` — 1-D and 2-D filter-normalised loss surfaces (Li et al. 2018) of the
  trained ResNet and ViT on fixed training batches, NLL only, with the official code's L2 term
  available without extra forward passes (:func:`l2_norm_grid`, :func:`with_l2_term`), and the
  exact curvature ``dᵀHd`` along random filter-normalised directions, a scale-free sharpness
  (:func:`directional_curvature`).

:func:`comparisons` gives the "paper vs. this run" rows (used by chapter 04's closing summary);
:func:`prose_numbers` every number the chapter's text quotes.

The loss. Both steps use the NLL (``F.cross_entropy``, mean over the batch) *without* the paper's
weight-decay term: with ``wd/2·‖θ‖²`` every Hessian eigenvalue would move by ``+wd`` (0.05 in the
paper's recipe), which matters only for eigenvalues within 0.05 of zero; the loss surfaces offer
the official ``wd·Σ‖p‖`` term beside the NLL. The batches are the model's own training data
(for the small-data ViT: its class-balanced subset), *augmented* as in training (random crop and
flip; no mixup, so the labels stay hard), drawn once with a fixed seed. The model is in eval mode
(BatchNorm uses its running statistics), so each batch loss is a fixed function of the weights.

The pure functions (:func:`largest_magnitude`, :func:`spectrum_numbers`, :func:`surface_rise`,
:func:`paper_comparison`) take no model and are tested on known answers.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from torch import Tensor, nn

from course_lib.analysis.hessian import hvp, spectrum_summary, top_eigenvalues
from course_lib.analysis.landscape import (
    Surface1D,
    Surface2D,
    filter_normalized_direction,
    filter_normalized_direction_pair,
    loss_surface_1d,
    loss_surface_2d,
)
from course_lib.cache import cached_result
from course_lib.chapters import precompute_step
from course_lib.config import Profile, get_profile
from course_lib.data import make_loaders
from course_lib.experiments import TrainedModel, resolve_model_name, trained_model
from course_lib.models import create_model
from course_lib.report import Comparison, verdict_from

if TYPE_CHECKING:
    import ipywidgets

#: The two families whose landscapes the chapter compares (Conv vs. global MSA).
FAMILIES: tuple[str, ...] = ("resnet", "vit")

#: Relative tolerance of every eigenvalue: the residual ``‖Hx − λx‖ ≤ tol·|λ|``. A histogram of
#: a few dozen batches needs no more than 1 %, and the eigenvalue itself is usually far more
#: accurate than its residual (the error is of order residual² / gap).
SPECTRUM_TOL = 1e-2

#: Which eigenvalues are computed for the random-initialisation baseline (only sharpness: C3).
INIT_WHICH: tuple[str, ...] = ("LA",)

#: Random filter-normalised directions along which :func:`loss_surfaces` measures the exact
#: curvature ``dᵀHd`` (the surface's two, then more from the same generator). One
#: Hessian-vector product each on the surface's batches: cheap next to the surface itself.
CURVATURE_DIRECTIONS = 8

#: Parameters whose direction is zero in the loss surfaces, as in the official notebook
#: (position embeddings are not filters).
SURFACE_EXCLUDE: tuple[str, ...] = ("pos_embed", "relative_position")

#: Version of the cached results' layout: bump it when a step returns different fields.
_FORMAT = 2

#: Paper numbers (Park & Kim 2022), ≈ read from the figures (see ``shared/PAPER_NOTES.md``).
PAPER = {
    # Fig. 1c / Fig. 4: positive peak of the max-eigenvalue spectrum (top-5 per batch of 16,
    # L2-regularised NLL, augmented CIFAR-100), early in training and at epochs 100, 200, 300.
    "c3_peaks": {"early": (36, 290), "100": (100, 340), "200": (320, 540), "300": (430, 840)},
    # Fig. 4: ViT on 6 % of CIFAR-100 has ≈ 3.7× the negative mass of the full-data ViT.
    "c4_small_over_full": 3.7,
    "c4_vit_negative_range": (-55, 0),
    # Official losslandscape notebook (CIFAR-100, NLL + L2): loss increase at (1, 0).
    "rise_1_0": {"vit": 12.3, "resnet": 20.0},
}


def _profile(profile: str | Profile | None) -> Profile:
    return profile if isinstance(profile, Profile) else get_profile(profile)


def hessian_loss(outputs: Tensor, targets: Tensor) -> Tensor:
    """The loss whose Hessian the chapter studies: the NLL, mean over the batch, no L2 term."""
    return F.cross_entropy(outputs, targets)


# ---------------------------------------------------------------------------------------------
# Models and data


@dataclass(frozen=True)
class SpectrumRun:
    """One model whose Hessian spectrum the chapter measures."""

    label: str  # e.g. "vit_mini", "vit_mini (10% data)", "resnet_mini (init)"
    family: str  # "resnet" or "vit"
    fraction: float  # training-data fraction (C4's small-data ViT: min(profile.data_fractions))
    trained: bool  # False: freshly initialised with the run's seed


def spectrum_runs(profile: str | Profile | None = None) -> list[SpectrumRun]:
    """The models of :func:`hessian_spectra`, in the order the chapter shows them."""
    prof = _profile(profile)
    small = min(prof.data_fractions)
    runs = []
    for family in FAMILIES:
        name = resolve_model_name(family, prof)
        runs.append(SpectrumRun(name, family, 1.0, True))
    if small < 1.0:
        name = resolve_model_name("vit", prof)
        runs.append(SpectrumRun(f"{name} ({small:.0%} data)", "vit", small, True))
    for family in FAMILIES:
        name = resolve_model_name(family, prof)
        runs.append(SpectrumRun(f"{name} (init)", family, 1.0, False))
    return runs


_LOADED: dict[tuple[str, str, float], TrainedModel] = {}


def shared_run(profile: str | Profile | None, family: str, fraction: float = 1.0) -> TrainedModel:
    """The profile's trained model (shared with chapters 01, 03, 04), kept in memory once loaded.

    Loading rebuilds the profile's data (seconds on a laptop); do not train it further in place.
    """
    prof = _profile(profile)
    memo = (repr(prof), family, fraction)
    if memo not in _LOADED or not _LOADED[memo].folder.exists():
        _LOADED[memo] = trained_model(family, profile=prof, fraction=fraction)
    return _LOADED[memo]


def initial_model(run: TrainedModel, seed: int = 0) -> nn.Module:
    """A fresh model of ``run``'s architecture, initialised as ``trained_model`` does (seeded)."""
    torch.manual_seed(seed)
    model = create_model(run.name, num_classes=run.num_classes, image_size=run.image_size)
    device = next(run.model.parameters()).device
    return model.to(device).eval()


def training_batches(
    profile: str | Profile | None,
    *,
    batch_size: int,
    n_batches: int,
    fraction: float = 1.0,
    seed: int = 0,
) -> list[tuple[Tensor, Tensor]]:
    """The first ``n_batches`` shuffled, augmented batches of the profile's training set.

    The same data a model with ``fraction`` was trained on (the class-balanced subset of
    chapter 01), augmented as in training (``profile.train.augment``; no mixup), and the same
    batches on every call: the shuffling and the augmentations are seeded by ``seed``, and the
    global RNG is restored afterwards.
    """
    prof = _profile(profile)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        loader, _, _ = make_loaders(
            prof.data,
            batch_size=batch_size,
            fraction=fraction,
            seed=seed,
            augment=prof.train.augment,
            image_size=prof.image_size,
            n_train=prof.n_train,
            n_test=prof.n_test,
            synthetic_config=prof.synthetic,
            shard=False,  # every rank iterates the same batches, as under one process
        )
        batches = [(x, y) for x, y in itertools.islice(loader, n_batches)]
    if len(batches) < n_batches:
        raise ValueError(
            f"the training set gives only {len(batches)} batches of {batch_size}; "
            f"lower n_batches (profile.hessian_batches / landscape_batches) to at most that"
        )
    return batches


def protocol(profile: str | Profile | None = None) -> str:
    """What the chapter measures, in words, from the profile (printed at the top of the chapter)."""
    prof = _profile(profile)
    runs = spectrum_runs(prof)
    return "\n".join(
        [
            f"models            : {', '.join(r.label for r in runs)}",
            "loss              : NLL (cross-entropy, batch mean), no weight-decay term",
            f"Hessian batches   : {prof.hessian_batches} mini-batches of "
            f"{prof.hessian_batch_size} training images, augmented ({prof.train.augment}), "
            "fixed seed",
            "model mode        : eval (BatchNorm running statistics, no dropout)",
            f"eigenvalues       : {prof.hessian_k} largest (LA) and {prof.hessian_k} smallest "
            "(SA) per batch (initialised models: LA only),",
            f"                    Lanczos to {SPECTRUM_TOL:.0%}, at most {prof.hessian_max_iter} "
            "Hessian-vector products each",
            f"loss surfaces     : {prof.landscape_points}×{prof.landscape_points} grid on "
            f"[-1, 1]², {prof.landscape_batches} batch(es) of {prof.train.batch_size} images",
        ]
    )


def token_scales(model: nn.Module, images: Tensor) -> dict[str, float]:
    """RMS of the class token and of the patch tokens where they enter a ViT's first block.

    A LayerNorm divides its input by its RMS, so an input 100× smaller than its neighbours is
    amplified 100× more: the reason a small class token makes the ViT's Hessian sharp along it.
    Empty for models without a class token.
    """
    cls = getattr(model, "cls_token", None)
    if cls is None:
        return {}
    with torch.no_grad():
        patches = model.patch_embed(images.to(cls.device))  # (B, N, dim)
    return {
        "cls": float(cls.detach().pow(2).mean().sqrt()),
        "patches": float(patches.pow(2).mean().sqrt()),
    }


# ---------------------------------------------------------------------------------------------
# Hessian spectra (C3, C4)


def eigenvalue_spectrum(
    model: nn.Module,
    batches: Sequence[tuple[Tensor, Tensor]],
    *,
    k: int,
    which: str,
    tol: float = SPECTRUM_TOL,
    max_iter: int = 100,
    seed: int = 0,
    composition: bool = False,
) -> dict[str, Any]:
    """Per batch, ``k`` extreme Hessian eigenvalues of :func:`hessian_loss` (model in eval mode).

    Calls :func:`course_lib.analysis.hessian.top_eigenvalues` batch by batch (``which`` "LA",
    "SA" or "LM") so that the cost and the convergence of every batch are recorded; for a
    distributed run over many batches use ``max_eigenvalue_spectrum``. Returns a dict with
    ``eigenvalues`` (n_batches, k) float64, ``n_hvp`` (n_batches,) Hessian-vector products spent,
    ``converged`` (n_batches,) bool, and ``seconds`` in total. ``composition=True`` adds
    ``composition`` (n_batches, n_groups): where the first eigenvector lives, the share of its
    squared norm in each group of :func:`vector_composition` (named in ``groups``).
    """
    generator = torch.Generator().manual_seed(seed)
    names: list[str] = []
    values, n_hvp, converged, shares = [], [], [], []
    start = time.perf_counter()
    for batch in batches:
        result = top_eigenvalues(
            model, hessian_loss, batch, k, which=which, tol=tol, max_iter=max_iter,
            generator=generator, return_eigenvectors=composition,
        )  # fmt: skip
        values.append(result.eigenvalues)
        n_hvp.append(result.n_hvp)
        converged.append(result.converged)
        if composition:
            names, share = vector_composition(result.eigenvectors[0], model)
            shares.append(share)
    out = {
        "eigenvalues": torch.stack(values).double(),
        "n_hvp": torch.tensor(n_hvp),
        "converged": torch.tensor(converged),
        "seconds": time.perf_counter() - start,
    }
    if composition:
        out |= {"composition": torch.stack(shares), "groups": names}
    return out


def parameter_group(name: str) -> str:
    """The group of a parameter: the first one or two parts of its name.

    ``blocks.3.attn.qkv.weight`` → ``"blocks.3"`` (a ViT sub-block: even indices are MSA, odd
    ones MLP), ``stages.1.0.conv1.weight`` → ``"stages.1"``, ``cls_token`` → ``"cls_token"``,
    ``patch_embed.proj.weight`` → ``"patch_embed"``, ``head.weight`` → ``"head"``.
    """
    parts = name.split(".")
    return ".".join(parts[:2]) if parts[0] in ("blocks", "stages") and len(parts) > 2 else parts[0]


def vector_composition(vector: Tensor, model: nn.Module) -> tuple[list[str], Tensor]:
    """Where a weight-space vector lives: the share of ``‖vector‖²`` in each parameter group.

    ``vector`` is flat (P,) over the trainable parameters in ``model.parameters()`` order (an
    eigenvector from ``top_eigenvalues``). Returns the group names (:func:`parameter_group`, in
    order of appearance) and their shares (n_groups,) float64, summing to 1.
    """
    named = [(n, p.numel()) for n, p in model.named_parameters() if p.requires_grad]
    squares = [c.detach().double().pow(2).sum().cpu() for c in vector.split([n for _, n in named])]
    groups: dict[str, Tensor] = {}
    for (name, _), sq in zip(named, squares, strict=True):
        key = parameter_group(name)
        groups[key] = groups.get(key, torch.zeros((), dtype=torch.float64)) + sq
    shares = torch.stack(list(groups.values()))
    return list(groups), shares / shares.sum()


def largest_magnitude(largest: Tensor, smallest: Tensor, k: int | None = None) -> Tensor:
    """The top-``k`` eigenvalues by magnitude (PyHessian's ranking) from the two ends.

    ``largest`` (n, k) holds each batch's ``k`` algebraically largest eigenvalues ("LA") and
    ``smallest`` (n, k) its ``k`` smallest ("SA"). Every one of the ``k`` largest-magnitude
    eigenvalues is among these ``2k`` values (it is either positive and then among the largest,
    or negative and among the smallest), so sorting their union by ``|λ|`` gives the "LM" result
    exactly. Returns (n, k), each row by descending ``|λ|``. If the matrix has fewer than ``2k``
    eigenvalues the two ends overlap and a value may appear twice.
    """
    k = k or largest.shape[1]
    both = torch.cat([largest, smallest], dim=1)
    order = torch.argsort(both.abs(), dim=1, descending=True, stable=True)
    return torch.gather(both, 1, order[:, :k])


def _spectrum_key(prof: Profile, run: TrainedModel, spec: SpectrumRun, which: str) -> dict:
    return {
        "profile": prof.name,
        "run": run.folder.name,  # the training key (model, data, fraction, recipe, seed)
        "trained": spec.trained,
        "which": which,
        "k": prof.hessian_k,
        "batch_size": prof.hessian_batch_size,
        "batches": prof.hessian_batches,
        "fraction": spec.fraction,
        "augment": prof.train.augment,
        "tol": SPECTRUM_TOL,
        "max_iter": prof.hessian_max_iter,
        "loss": "nll",
        "mode": "eval",
        "composition": which == "LA",
        "format": _FORMAT,
    }


@precompute_step
def hessian_spectra(profile: str | Profile | None = None) -> dict[str, dict[str, Any]]:
    """Per-batch extreme Hessian eigenvalues of every model of :func:`spectrum_runs` (cached).

    Returns ``{label: {"LA": (n, k), "SA": (n, k), "LM": (n, k), "n_hvp": {which: (n,)},
    "converged": {which: (n,)}, "seconds": {which: float}, "composition": (n, n_groups),
    "groups": [str]}}`` (float64 eigenvalues; "SA" and "LM" are absent for the initialised
    models, see ``INIT_WHICH``). "LM" is derived from "LA" and "SA" with
    :func:`largest_magnitude`; "composition" says where each batch's top eigenvector lives
    (:func:`vector_composition`).
    """
    prof = _profile(profile)
    out: dict[str, dict[str, Any]] = {}
    batch_cache: dict[float, list] = {}
    for spec in spectrum_runs(prof):
        run = shared_run(prof, spec.family, spec.fraction)
        entry: dict[str, Any] = {"n_hvp": {}, "converged": {}, "seconds": {}}
        for which in ("LA", "SA") if spec.trained else INIT_WHICH:

            def compute(spec=spec, run=run, which=which) -> dict:
                if spec.fraction not in batch_cache:
                    batch_cache[spec.fraction] = training_batches(
                        prof,
                        batch_size=prof.hessian_batch_size,
                        n_batches=prof.hessian_batches,
                        fraction=spec.fraction,
                    )
                model = run.model if spec.trained else initial_model(run)
                return eigenvalue_spectrum(
                    model, batch_cache[spec.fraction], k=prof.hessian_k, which=which,
                    max_iter=prof.hessian_max_iter, composition=which == "LA",
                )  # fmt: skip

            result = cached_result("ch02_spectrum", _spectrum_key(prof, run, spec, which), compute)
            entry[which] = result["eigenvalues"]
            for field in ("n_hvp", "converged", "seconds"):
                entry[field][which] = result[field]
            if which == "LA":
                entry["composition"], entry["groups"] = result["composition"], result["groups"]
        if "SA" in entry:
            entry["LM"] = largest_magnitude(entry["LA"], entry["SA"])
        out[spec.label] = entry
    return out


def spectrum_numbers(entry: Mapping[str, Any]) -> dict[str, float]:
    """One model's spectrum in numbers.

    - ``median_max``: median over batches of the largest eigenvalue λ_max (the spectrum's peak);
    - ``nep`` and ``ape`` of the paper-style top-``k``-by-magnitude values ("LM"): the proportion
      of negative values and the average positive value (:func:`spectrum_summary`);
    - ``median_min``: median of the most negative eigenvalue λ_min;
    - ``neg_ratio``: median over batches of ``max(−λ_min, 0) / λ_max``, the negative curvature
      relative to the positive one (scale-free, so models with different sharpness compare);
    - ``hvp``: mean Hessian-vector products per batch and eigenvalue end.
    NaN where the entry lacks "SA" (the initialised models).
    """
    top = entry["LA"][:, 0]
    numbers = {"median_max": float(top.median()), "n": int(top.numel()), "k": entry["LA"].shape[1]}
    nan = float("nan")
    if "SA" in entry:
        bottom = entry["SA"][:, 0]
        summary = spectrum_summary(entry["LM"])
        ratio = (-bottom).clamp(min=0) / top
        numbers |= {
            "nep": summary["nep"],
            "ape": summary["ape"],
            "median_min": float(bottom.median()),
            "neg_ratio": float(ratio.median()),
        }
    else:
        numbers |= dict.fromkeys(("nep", "ape", "median_min", "neg_ratio"), nan)
    hvps = [float(v.double().mean()) for v in entry["n_hvp"].values()]
    numbers["hvp"] = float(np.mean(hvps))
    return numbers


# ---------------------------------------------------------------------------------------------
# Loss surfaces


def l2_norm_grid(
    model: nn.Module, directions: tuple[Sequence[Tensor], Sequence[Tensor]], xs, ys
) -> np.ndarray:
    """``Σ_p ‖θ_p + x·d_p + y·e_p‖₂`` on the grid, (len(ys), len(xs)): the official L2 term / wd.

    The official ``losslandscape.ipynb`` adds ``weight_decay ·`` this sum (unsquared norms of every
    parameter tensor) to the NLL. It depends on the weights alone, so it is computed here without
    a forward pass; ``loss_surface_2d(..., weight_decay=wd)`` gives the same values the slow way.
    """
    # float64 on the CPU: exact enough to match the slow way, and MPS has no float64
    params = [p.detach().cpu().double() for p in model.parameters()]
    d, e = ([t.detach().cpu().double() for t in ds] for ds in directions)
    out = np.zeros((len(ys), len(xs)))
    for i, y in enumerate(ys):
        for j, x in enumerate(xs):
            out[i, j] = sum(
                float(torch.linalg.vector_norm(p + x * dp + y * ep))
                for p, dp, ep in zip(params, d, e, strict=True)
            )
    return out


def with_l2_term(surface: Surface2D, l2: np.ndarray, weight_decay: float) -> Surface2D:
    """The NLL surface plus the official L2 term ``weight_decay · l2`` (:func:`l2_norm_grid`)."""
    return Surface2D(
        surface.xs,
        surface.ys,
        surface.loss + weight_decay * l2,
        surface.accuracy,
        weight_decay,
        f"NLL + L2 (wd={weight_decay:g})",
    )


def surface_rise(surface: Surface2D, x: float = 1.0, y: float = 0.0) -> float:
    """Loss at grid point ``(x, y)`` minus the loss at ``(0, 0)`` (both must be grid points)."""

    def index(coords: np.ndarray, value: float) -> int:
        hits = np.flatnonzero(np.isclose(coords, value))
        if not len(hits):
            raise ValueError(f"{value} is not a grid coordinate ({coords.tolist()})")
        return int(hits[0])

    i0, j0 = index(surface.ys, 0.0), index(surface.xs, 0.0)
    return float(surface.loss[index(surface.ys, y), index(surface.xs, x)] - surface.loss[i0, j0])


def mean_unit_rise(surface: Surface2D) -> float:
    """Mean loss rise at the unit points ``(±1, 0)``, ``(0, ±1)``: less luck of one direction."""
    points = ((1.0, 0.0), (-1.0, 0.0), (0.0, 1.0), (0.0, -1.0))
    return float(np.mean([surface_rise(surface, x, y) for x, y in points]))


def directional_curvature(
    model: nn.Module, batches: Sequence[tuple[Tensor, Tensor]], direction: Sequence[Tensor]
) -> float:
    """``dᵀ H d``: the second derivative of the loss along ``direction`` at the weights.

    The curvature of the 1-D loss curve ``α ↦ L(θ + α d)`` at ``α = 0`` (so the curve starts as
    ``L(θ) + ½·dᵀHd·α²``), from one exact Hessian-vector product on all ``batches`` at once (one
    batch of their union: the same mean loss as the surfaces when the batches are equally large).
    For a filter-normalised ``d`` it is a *scale-free* sharpness: every filter is probed in
    proportion to its own norm, so a parameter whose scale does not matter to the function
    (one that only feeds a normalisation layer) cannot dominate it.
    """
    inputs = torch.cat([x for x, _ in batches])
    targets = torch.cat([y for _, y in batches])
    params = [p for p in model.parameters() if p.requires_grad]
    flat = torch.cat([d.reshape(-1) for d, p in zip(direction, model.parameters(), strict=True)
                      if p.requires_grad]).to(params[0])  # fmt: skip
    return float(flat @ hvp(model, hessian_loss, (inputs, targets), flat))


def _directions(
    model: nn.Module, first: tuple[list[Tensor], list[Tensor]], generator: torch.Generator
) -> list[list[Tensor]]:
    """``CURVATURE_DIRECTIONS`` filter-normalised directions: ``first``, then new ones."""
    more = [
        filter_normalized_direction(model, generator=generator, exclude=SURFACE_EXCLUDE)
        for _ in range(CURVATURE_DIRECTIONS - len(first))
    ]
    return [*first, *more]


def _surface_key(prof: Profile, run: TrainedModel) -> dict:
    return {
        "profile": prof.name,
        "run": run.folder.name,
        "points": prof.landscape_points,
        "batches": prof.landscape_batches,
        "batch_size": prof.train.batch_size,
        "augment": prof.train.augment,
        "exclude": SURFACE_EXCLUDE,
        "curvature_directions": CURVATURE_DIRECTIONS,
        "loss": "nll",
        "seed": 0,
        "format": _FORMAT,
    }


def _surface_to_dict(surface: Surface1D | Surface2D) -> dict:
    out = {f: getattr(surface, f) for f in surface.__dataclass_fields__}
    return {k: torch.from_numpy(v) if isinstance(v, np.ndarray) else v for k, v in out.items()}


def _surface_from_dict(d: Mapping, cls: type) -> Any:
    return cls(**{k: v.numpy() if isinstance(v, Tensor) else v for k, v in d.items()})


@precompute_step
def loss_surfaces(profile: str | Profile | None = None) -> dict[str, dict[str, Any]]:
    """Filter-normalised loss surfaces of the trained ResNet and ViT (cached), NLL only.

    Per model: two filter-normalised random directions ``(d, e)`` (seed 0; biases, norm weights
    and position embeddings held fixed), the 2-D surface on ``profile.landscape_points``² points
    over [−1, 1]², 1-D curves along ``d`` and along ``e`` on a grid twice as fine, and the L2
    term on the 2-D grid, all on ``profile.landscape_batches`` fixed augmented training batches
    of ``profile.train.batch_size``; and the exact curvature ``dᵀHd``
    (:func:`directional_curvature`) along ``CURVATURE_DIRECTIONS`` filter-normalised random
    directions, ``d`` and ``e`` first. Returns ``{model name: {"surface": Surface2D, "curves":
    [Surface1D, Surface1D], "l2": (n, n) array, "curvature": [float, ...], "seconds": float}}``.
    """
    prof = _profile(profile)
    out = {}
    for family in FAMILIES:
        run = shared_run(prof, family)

        def compute(run=run) -> dict:
            start = time.perf_counter()
            batches = training_batches(
                prof, batch_size=prof.train.batch_size, n_batches=prof.landscape_batches
            )
            generator = torch.Generator().manual_seed(0)
            directions = filter_normalized_direction_pair(
                run.model, generator=generator, exclude=SURFACE_EXCLUDE
            )
            coords = np.linspace(-1.0, 1.0, prof.landscape_points)
            fine = np.linspace(-1.0, 1.0, 2 * prof.landscape_points - 1)
            surface = loss_surface_2d(run.model, hessian_loss, batches, directions, coords, coords)
            curves = [
                loss_surface_1d(run.model, hessian_loss, batches, direction, fine)
                for direction in directions
            ]
            return {
                "surface": _surface_to_dict(surface),
                "curves": [_surface_to_dict(c) for c in curves],
                "curvature": [
                    directional_curvature(run.model, batches, d)
                    for d in _directions(run.model, directions, generator)
                ],
                "l2": torch.from_numpy(l2_norm_grid(run.model, directions, coords, coords)),
                "seconds": time.perf_counter() - start,
            }

        result = cached_result("ch02_surface", _surface_key(prof, run), compute)
        out[run.name] = {
            "surface": _surface_from_dict(result["surface"], Surface2D),
            "curves": [_surface_from_dict(c, Surface1D) for c in result["curves"]],
            "l2": result["l2"].numpy(),
            "curvature": list(result["curvature"]),
            "seconds": result["seconds"],
        }
    return out


# ---------------------------------------------------------------------------------------------
# Paper vs. this run


def landscape_numbers(
    surfaces: Mapping[str, Mapping[str, Any]], weight_decay: float
) -> dict[str, dict[str, float]]:
    """Flatness of each model's surfaces (from :func:`loss_surfaces`), in numbers.

    ``nll``: NLL rise at (1, 0), the point the official notebook reports; ``nll_l2``: the same
    with its L2 term ``weight_decay · Σ‖p‖``; ``mean``: NLL rise averaged over the four unit
    points; ``curvature``: mean ``|dᵀHd|`` over the random directions (scale-free sharpness);
    ``negative_directions``: the fraction of them with ``dᵀHd < 0`` (scale-free non-convexity);
    ``center``: NLL at (0, 0).
    """
    out = {}
    for name, s in surfaces.items():
        surface = s["surface"]
        with_l2 = with_l2_term(surface, s["l2"], weight_decay)
        out[name] = {
            "nll": surface_rise(surface),
            "nll_l2": surface_rise(with_l2),
            "mean": mean_unit_rise(surface),
            "curvature": float(np.mean(np.abs(s["curvature"]))),
            "negative_directions": float(np.mean(np.asarray(s["curvature"]) < 0)),
            "center": _center(surface),
        }
    return out


def _center(surface: Surface2D) -> float:
    i = int(np.flatnonzero(np.isclose(surface.ys, 0.0))[0])
    j = int(np.flatnonzero(np.isclose(surface.xs, 0.0))[0])
    return float(surface.loss[i, j])


def paper_comparison(
    numbers: Mapping[str, Mapping[str, float]],
    flatness: Mapping[str, Mapping[str, float]],
    *,
    resnet: str,
    vit: str,
    vit_small: str | None,
    weight_decay: float,
) -> list[Comparison]:
    """The rows of the "paper vs. this run" box, verdicts computed from the measured values.

    C3 (spectrum): the ViT's median λ_max *and* its APE (mean positive value) below ResNet's.
    C4: :func:`_more_negative`, for ViT vs ResNet and for small-data vs full-data ViT.
    The scale-free rows use :func:`landscape_numbers`.

    ``numbers[label]`` from :func:`spectrum_numbers`, ``flatness[model]`` from
    :func:`landscape_numbers`. ``vit_small`` is the small-data ViT's label (None: no such row).
    """
    r, v = numbers[resnet], numbers[vit]
    p = PAPER["c3_peaks"]
    rows = [
        Comparison(
            "C3: ViT's Hessian spectrum peak ≪ ResNet's (λ_max per batch)",
            f"ViT ≈ {p['early'][0]} vs ResNet ≈ {p['early'][1]} early; ≈ {p['300'][0]} vs "
            f"{p['300'][1]} at epoch 300 (≈ read from Fig. 4)",
            f"median λ_max: ViT {_num(v['median_max'])} vs ResNet {_num(r['median_max'])}; "
            f"APE: ViT {_num(v['ape'])} vs ResNet {_num(r['ape'])}",
            verdict_from([v["median_max"] < r["median_max"], v["ape"] < r["ape"]]),
        ),
    ]
    fr, fv = flatness[resnet], flatness[vit]
    paper_rise = PAPER["rise_1_0"]
    rows += [
        Comparison(
            "C3 (scale-free): curvature |dᵀHd| along filter-normalised directions, ViT < ResNet",
            "not measured in the paper; its filter-normalised surfaces look flatter for ViT "
            "(Fig. 1a)",
            f"mean |dᵀHd|: ViT {_num(fv['curvature'])} vs ResNet {_num(fr['curvature'])}",
            verdict_from([fv["curvature"] < fr["curvature"]]),
        ),
        Comparison(
            "C3 (surface): smaller loss rise at (1, 0) for ViT",
            f"ViT ≈ +{paper_rise['vit']} vs ResNet ≈ +{paper_rise['resnet']} (NLL + L2, "
            "official losslandscape notebook, CIFAR-100)",
            f"NLL: ViT {_num(fv['nll'], sign=True)} vs ResNet {_num(fr['nll'], sign=True)}; "
            f"NLL + L2 (wd={weight_decay:g}): ViT {_num(fv['nll_l2'], sign=True)} vs ResNet "
            f"{_num(fr['nll_l2'], sign=True)}",
            verdict_from([fv["nll"] < fr["nll"], fv["nll_l2"] < fr["nll_l2"]]),
        ),
        Comparison(
            "C4: ViT has negative eigenvalues, ResNet almost none",
            f"ViT: many negative top-5 values (≈ {PAPER['c4_vit_negative_range'][0]} … 0); "
            "ResNet: almost none (≈ read from Fig. 4)",
            f"NEP (top-{v['k']} by |λ|): ViT {v['nep']:.0%} vs ResNet {r['nep']:.0%}; "
            f"median λ_min: ViT {_num(v['median_min'], 2)} vs ResNet {_num(r['median_min'], 2)}; "
            f"median |λ_min|/λ_max: ViT {_num(v['neg_ratio'], 2)} vs ResNet "
            f"{_num(r['neg_ratio'], 2)}",
            verdict_from(_more_negative(v, r)),
        ),
        Comparison(
            "C4 (scale-free): more directions curve down for ViT (dᵀHd < 0)",
            "not measured in the paper",
            f"ViT {fv['negative_directions']:.0%} vs ResNet {fr['negative_directions']:.0%} "
            "of the random filter-normalised directions",
            verdict_from([fv["negative_directions"] > fr["negative_directions"]]),
        ),
    ]
    if vit_small is not None:
        s = numbers[vit_small]
        rows.append(
            Comparison(
                "C4: fewer negative eigenvalues with more data (ViT)",
                f"6 % of CIFAR-100: ≈ {PAPER['c4_small_over_full']}× the negative mass of "
                "full data (≈ read from Fig. 4)",
                f"NEP: small data {s['nep']:.0%} vs full {v['nep']:.0%}; median λ_min: "
                f"{_num(s['median_min'], 2)} vs {_num(v['median_min'], 2)}; median |λ_min|/λ_max: "
                f"{_num(s['neg_ratio'], 2)} vs {_num(v['neg_ratio'], 2)}",
                verdict_from(_more_negative(s, v)),
            )
        )
    return rows


def _more_negative(a: Mapping[str, float], b: Mapping[str, float]) -> list[bool]:
    """Checks that spectrum ``a`` is more non-convex than ``b``: by the paper's NEP, by the
    median most negative eigenvalue, and relative to the sharpness (median |λ_min| / λ_max)."""
    return [a["nep"] > b["nep"], a["median_min"] < b["median_min"], a["neg_ratio"] > b["neg_ratio"]]


def comparisons(profile: str | Profile | None = None) -> list[Comparison]:
    """The chapter's "paper vs. this run" rows (C3, C4) from the cached steps.

    Used by the chapter and by the closing summary of chapter 04 (rows start with "C3"/"C4").
    """
    prof = _profile(profile)
    spectra, surfaces = hessian_spectra(prof), loss_surfaces(prof)
    runs = {(r.family, r.fraction, r.trained): r.label for r in spectrum_runs(prof)}
    return paper_comparison(
        {label: spectrum_numbers(entry) for label, entry in spectra.items()},
        landscape_numbers(surfaces, prof.train.weight_decay),
        resnet=runs[("resnet", 1.0, True)],
        vit=runs[("vit", 1.0, True)],
        vit_small=runs.get(("vit", min(prof.data_fractions), True)),
        weight_decay=prof.train.weight_decay,
    )


def _times(a: float, b: float) -> str:
    """ "3.2× smaller than" / "3.2× larger than" / "about as large as": a compared with b."""
    if not (a > 0 and b > 0):
        return "not comparable with"
    ratio = a / b
    if 0.8 <= ratio <= 1.25:
        return "about as large as"
    text = _factor(max(ratio, 1 / ratio)) + "×"
    return f"{text} smaller than" if ratio < 1 else f"{text} larger than"


def _num(x: float, sig: int = 3, *, sign: bool = False) -> str:
    """``x`` to ``sig`` significant digits without exponent: 1370, 0.00348, +3.15."""
    if x == 0 or not math.isfinite(x):
        return f"{x:+g}" if sign else f"{x:g}"
    digits = sig - 1 - math.floor(math.log10(abs(x)))
    text = f"{round(x, digits):.{max(digits, 0)}f}"
    return f"+{text}" if sign and x > 0 else text


def _factor(x: float) -> str:
    """A ratio for prose: two significant digits below 10, whole numbers above (no 1e+02)."""
    return f"{x:.0f}" if x >= 10 else _num(x, 2)


def _log_correlation(entry: Mapping[str, Any]) -> float:
    """Correlation over batches of log λ_max and log |λ_min| (batches with λ_min < 0; else NaN)."""
    top, bottom = entry["LA"][:, 0], entry["SA"][:, 0]
    keep = (bottom < 0) & (top > 0)
    if keep.sum() < 3:
        return float("nan")
    pair = torch.stack([top[keep].log(), (-bottom[keep]).log()])
    return float(torch.corrcoef(pair)[0, 1])


def _range(values: Tensor) -> str:
    """ "0.34 to 231 (a factor 680)": smallest and largest value and their ratio."""
    low, high = float(values.min()), float(values.max())
    factor = f" (a factor {_factor(high / low)})" if low > 0 else ""
    return f"{_num(low, 2)} to {_num(high)}{factor}"


def top_groups(entry: Mapping[str, Any], n: int = 3) -> list[tuple[str, float]]:
    """The ``n`` parameter groups holding most of the top eigenvector (median share per batch)."""
    shares = entry["composition"].median(dim=0).values
    order = torch.argsort(shares, descending=True)[:n]
    return [(entry["groups"][int(i)], float(shares[i])) for i in order]


def prose_numbers(
    spectra: Mapping[str, Mapping[str, Any]],
    surfaces: Mapping[str, Mapping[str, Any]],
    profile: str | Profile | None = None,
) -> dict[str, str]:
    """Every number the chapter's prose quotes, formatted, for ``myst_nb.glue``."""
    prof = _profile(profile)
    runs = spectrum_runs(prof)
    label = {(r.family, r.fraction, r.trained): r.label for r in runs}
    resnet, vit = label[("resnet", 1.0, True)], label[("vit", 1.0, True)]
    small = label.get(("vit", min(prof.data_fractions), True))
    numbers = {name: spectrum_numbers(e) for name, e in spectra.items()}
    flat = landscape_numbers(surfaces, prof.train.weight_decay)
    r, v = numbers[resnet], numbers[vit]
    ri, vi = numbers[label[("resnet", 1.0, False)]], numbers[label[("vit", 1.0, False)]]
    out = {
        "resnet_lmax": _num(r["median_max"]),
        "vit_lmax": _num(v["median_max"]),
        "vit_vs_resnet": _times(v["median_max"], r["median_max"]),
        "resnet_init_lmax": _num(ri["median_max"]),
        "vit_init_lmax": _num(vi["median_max"]),
        "vit_vs_resnet_init": _times(vi["median_max"], ri["median_max"]),
        "resnet_range": _range(spectra[resnet]["LA"]),
        "vit_range": _range(spectra[vit]["LA"]),
        "vit_top_groups": ", ".join(f"{g} {s:.0%}" for g, s in top_groups(spectra[vit])),
        "vit_init_top_groups": ", ".join(
            f"{g} {s:.0%}" for g, s in top_groups(spectra[label[("vit", 1.0, False)]])
        ),
        "resnet_top_groups": ", ".join(f"{g} {s:.0%}" for g, s in top_groups(spectra[resnet])),
        "n_directions": str(CURVATURE_DIRECTIONS),
        "resnet_curv": _num(flat[resnet]["curvature"]),
        "resnet_negdir": f"{flat[resnet]['negative_directions']:.0%}",
        "vit_negdir": f"{flat[vit]['negative_directions']:.0%}",
        "vit_curv": _num(flat[vit]["curvature"]),
        "vit_vs_resnet_curv": _times(flat[vit]["curvature"], flat[resnet]["curvature"]),
        "n_batches": str(prof.hessian_batches),
        "batch_size": str(prof.hessian_batch_size),
        "k": str(prof.hessian_k),
        "wd": f"{prof.train.weight_decay:g}",
    }
    for key, name in (("resnet", resnet), ("vit", vit), ("small", small)):
        if name is None:
            continue
        n = numbers[name]
        out |= {
            f"{key}_corr": f"{_log_correlation(spectra[name]):.2f}",
            f"{key}_nep": f"{n['nep']:.0%}",
            f"{key}_ape": _num(n["ape"]),
            f"{key}_lmax": _num(n["median_max"]),
            f"{key}_ratio": _num(n["neg_ratio"], 2),
            f"{key}_lmin": _num(n["median_min"]),
            f"{key}_hvp": f"{n['hvp']:.0f}",
        }
    for key, name in (("resnet", resnet), ("vit", vit)):
        f = flat[name]
        out |= {
            f"{key}_rise": _num(f["nll"], sign=True),
            f"{key}_rise_l2": _num(f["nll_l2"], sign=True),
            f"{key}_rise_mean": _num(f["mean"], sign=True),
            f"{key}_center": _num(f["center"]),
        }
    out["vit_vs_resnet_rise"] = _times(flat[vit]["mean"], flat[resnet]["mean"])
    if small is not None:
        out["small_fraction"] = f"{min(prof.data_fractions):.0%}"
    return out


# ---------------------------------------------------------------------------------------------
# "Try it": the surface explorer


def surface_explorer(
    surfaces: Mapping[str, Mapping[str, Any]],
    *,
    weight_decay: float = 0.05,
    interactive: bool | None = None,
) -> Figure | ipywidgets.Widget:
    """Look at the 2-D surfaces from any angle, with or without the L2 term.

    ``surfaces`` is what :func:`loss_surfaces` returns. Static (no live front-end, see
    :func:`course_lib.widgets.use_widgets`): a figure of both models' 3-D surfaces, NLL only.
    Interactive: a loss picker (NLL / NLL + L2), elevation and azimuth sliders and a clip level.
    """
    from course_lib.plots.landscape_chapter import plot_surfaces_3d
    from course_lib.widgets import figure_png, use_widgets

    def draw(l2: bool, elev: float = 25.0, azim: float = -60.0, clip: float | None = None):
        chosen = {
            name: with_l2_term(s["surface"], s["l2"], weight_decay) if l2 else s["surface"]
            for name, s in surfaces.items()
        }
        return plot_surfaces_3d(chosen, elev=elev, azim=azim, clip=clip)

    import matplotlib.pyplot as plt

    if not use_widgets(interactive):
        fig = draw(False)
        plt.close(fig)  # shown once, as the cell's result, not again by the inline backend
        return fig

    import ipywidgets as widgets

    loss = widgets.ToggleButtons(options=["NLL", "NLL + L2"], value="NLL", description="loss")
    slider = {"continuous_update": False}
    elev = widgets.FloatSlider(value=25, min=0, max=90, step=5, description="elevation", **slider)
    azim = widgets.FloatSlider(value=-60, min=-180, max=180, step=15, description="azimuth",
                               **slider)  # fmt: skip
    clip = widgets.FloatLogSlider(value=10, base=10, min=-1, max=2, description="clip Δloss",
                                  **slider)  # fmt: skip
    image = widgets.Image(format="png")

    def redraw(_: Any = None) -> None:
        fig = draw(loss.value == "NLL + L2", elev.value, azim.value, clip.value)
        image.value = figure_png(fig)
        plt.close(fig)

    for control in (loss, elev, azim, clip):
        control.observe(redraw, names="value")
    redraw()
    return widgets.VBox([widgets.HBox([loss, clip]), widgets.HBox([elev, azim]), image])
