"""Per-batch Hessian spectra: eigenvalues with their cost, convergence and eigenvector makeup.

:func:`batch_spectra` computes, for every mini-batch, ``k`` eigenvalues at one end of its
Hessian ("LA", "SA", or the paper's "LM" ranking), shards the batches across ranks under
``torch.distributed``, and returns a :class:`BatchSpectra` that also records every batch's
Hessian-vector products, convergence and seconds, and optionally where its top eigenvector lives
(:func:`vector_composition`). :func:`max_eigenvalue_spectrum` is its eigenvalues alone, the
paper's "max eigenvalue spectrum" (Park & Kim 2022, Fig. 1c, Fig. 4).

:class:`ModelSpectra` pairs a model's largest ("LA") and smallest ("SA") ends; the top-``k`` by
magnitude (what PyHessian returns) follows exactly from the two (:func:`largest_magnitude`).
:func:`spectrum_numbers`, :func:`spectrum_summary` and :func:`negative_proportion` (the paper's
NEP, with a Wilson interval) sum spectra up in numbers.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor, nn

from course_lib.analysis.batches import Batch, is_single_batch, iter_batches
from course_lib.analysis.hessian import (
    LossFn,
    Mode,
    _trainable_parameters,
    hessian_eigenvalues,
    largest_magnitude_eigenvalues,
)
from course_lib.analysis.lanczos import Which
from course_lib.analysis.proportions import (
    design_effect,
    intracluster_correlation,
    wilson_interval,
)


@dataclass
class BatchSpectra:
    """``k`` extreme Hessian eigenvalues of every mini-batch, with what they cost."""

    which: str  # "LA" (largest), "SA" (smallest) or "LM" (largest magnitude)
    eigenvalues: Tensor  # (n_batches, k) float64, each row in the order of ``which``
    n_hvp: Tensor  # (n_batches,) Hessian-vector products spent
    converged: Tensor  # (n_batches,) bool
    seconds: float  # wall time of all batches
    composition: Tensor | None = None  # (n_batches, n_groups): share of ‖v₁‖² per group
    groups: list[str] = field(default_factory=list)  # names of the composition's groups


def batch_spectra(
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
    seed: int | None = 0,
    generator: torch.Generator | None = None,
    from_ends: bool = False,
    composition: bool = False,
    progress: bool = False,
    where: str = "batch_spectra",
) -> BatchSpectra:
    """Per mini-batch, ``k`` eigenvalues at one end of its Hessian, with what each one cost.

    Each row follows :func:`~course_lib.analysis.hessian.hessian_eigenvalues` (``which`` "LA",
    "SA" or "LM"); with ``which="LM", from_ends=True`` it follows
    :func:`~course_lib.analysis.hessian.largest_magnitude_eigenvalues` (the same values from
    "LA"-k plus "SA"-1, cheaper for trained networks). One generator serves all batches: the
    given one, else a CPU generator seeded with ``seed``. ``composition=True`` also records where
    each batch's first eigenvector lives (:func:`vector_composition`; not with ``from_ends``).

    If ``torch.distributed`` is initialized, batch ``i`` is computed on rank ``i % world_size``
    and the results are all-reduced, so every rank returns the same full record in batch order;
    every rank must iterate the same ``batches`` (a list, a ``DataLoader`` or one batch). Every
    rank checks every batch's inputs for NaN/inf, so bad data raises on all ranks alike.
    Errors name ``where`` (the public function the caller used).
    """
    if from_ends and (which != "LM" or composition):
        raise ValueError(
            f"from_ends=True computes the 'LM' ranking without eigenvectors; got which={which!r}, "
            f"composition={composition}."
        )
    device = _trainable_parameters(model, where)[0].device
    distributed = dist.is_available() and dist.is_initialized()
    rank, world = (dist.get_rank(), dist.get_world_size()) if distributed else (0, 1)
    if generator is None and seed is not None:
        generator = torch.Generator().manual_seed(seed)
    if is_single_batch(batches):
        batches = [batches]  # one row; wrapped before tqdm, which needs the list's length
    if progress:
        from tqdm.auto import tqdm

        batches = tqdm(batches, desc="Hessian spectrum", disable=rank != 0)
    options = dict(max_iter=max_iter, tol=tol, weight_decay=weight_decay, mode=mode)
    groups = parameter_groups(model)
    rows: dict[int, tuple[Tensor, int, bool, Tensor | None]] = {}
    n_batches = 0
    start = time.perf_counter()
    for i, batch in enumerate(iter_batches(batches, where=where)):
        n_batches = i + 1
        if i % world != rank:
            continue
        if from_ends:
            result = largest_magnitude_eigenvalues(
                model, loss_fn, batch, k, generator=generator, **options
            )
        else:
            result = hessian_eigenvalues(
                model,
                loss_fn,
                batch,
                k,
                which=which,
                generator=generator,
                return_eigenvectors=composition,
                **options,
            )
        share = vector_composition(result.eigenvectors[0], model)[1] if composition else None
        rows[i] = (result.eigenvalues, result.n_hvp, result.converged, share)
    # one float64 table (eigenvalues | n_hvp | converged | composition), reduced in one call
    table = torch.zeros(n_batches, k + 2 + len(groups) * composition, dtype=torch.float64)
    for i, (values, n_hvp, converged, share) in rows.items():
        table[i, :k], table[i, k], table[i, k + 1] = values, n_hvp, float(converged)
        if share is not None:
            table[i, k + 2 :] = share
    if world > 1:
        table = table.to(device)  # NCCL only reduces CUDA tensors
        dist.all_reduce(table)
        table = table.cpu()
    return BatchSpectra(
        which=which,
        eigenvalues=table[:, :k].clone(),
        n_hvp=table[:, k].long(),
        converged=table[:, k + 1].bool(),
        seconds=time.perf_counter() - start,
        composition=table[:, k + 2 :].clone() if composition else None,
        groups=groups if composition else [],
    )


def parameter_group(name: str) -> str:
    """The group of a parameter: the first one or two parts of its name.

    ``blocks.3.msa.attn.qkv.weight`` → ``"blocks.3.msa"`` (a ViT sub-block: ``msa`` or
    ``mlp``), ``stages.1.0.conv1.weight`` → ``"stages.1"``, ``cls_token`` → ``"cls_token"``,
    ``patch_embed.proj.weight`` → ``"patch_embed"``, ``head.weight`` → ``"head"``.
    """
    parts = name.split(".")
    n = 3 if parts[0] == "blocks" and parts[2:3] in (["msa"], ["mlp"]) else 2
    return ".".join(parts[:n]) if parts[0] in ("blocks", "stages") and len(parts) > n else parts[0]


def parameter_groups(model: nn.Module) -> list[str]:
    """The :func:`parameter_group` names of a model's trainable parameters, in order."""
    names = (parameter_group(n) for n, p in model.named_parameters() if p.requires_grad)
    return list(dict.fromkeys(names))


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


@dataclass
class ModelSpectra:
    """One model's spectra over the same batches: both ends, or only the largest."""

    largest: BatchSpectra  # "LA", with the top eigenvector's composition
    smallest: BatchSpectra | None = None  # "SA"; None where only sharpness was measured

    @property
    def by_magnitude(self) -> Tensor | None:
        """The paper's top-``k`` by ``|λ|`` ("LM"), (n, k), from both ends; None without "SA"."""
        if self.smallest is None:
            return None
        return largest_magnitude(self.largest.eigenvalues, self.smallest.eigenvalues)

    @property
    def ends(self) -> dict[str, BatchSpectra]:
        """``{"LA": ..., "SA": ...}``: the computed ends, largest first."""
        out = {"LA": self.largest}
        if self.smallest is not None:
            out["SA"] = self.smallest
        return out

    @property
    def seconds(self) -> float:
        return sum(s.seconds for s in self.ends.values())


@dataclass(frozen=True)
class SpectrumNumbers:
    """One model's spectrum in numbers (NaN where the model has no "SA" end)."""

    median_max: float  # median over batches of the largest eigenvalue λ_max (the peak)
    n: int  # number of batches
    k: int  # eigenvalues per batch and end
    nep: float  # proportion of negative values among the top-k by |λ| (paper's NEP)
    ape: float  # average positive value among the top-k by |λ| (paper's APE)
    median_min: float  # median of the most negative eigenvalue λ_min
    neg_ratio: float  # median over batches of max(−λ_min, 0) / λ_max (scale-free)
    hvp: float  # mean Hessian-vector products per batch and end


def spectrum_numbers(spectra: ModelSpectra) -> SpectrumNumbers:
    """:class:`SpectrumNumbers` of one model's spectra (:func:`spectrum_summary` for NEP/APE)."""
    top = spectra.largest.eigenvalues[:, 0]
    nan = float("nan")
    nep = ape = median_min = neg_ratio = nan
    if spectra.smallest is not None:
        bottom = spectra.smallest.eigenvalues[:, 0]
        summary = spectrum_summary(spectra.by_magnitude)
        nep, ape = summary["nep"], summary["ape"]
        median_min = float(bottom.median())
        neg_ratio = float(((-bottom).clamp(min=0) / top).median())
    hvps = [float(s.n_hvp.double().mean()) for s in spectra.ends.values()]
    return SpectrumNumbers(
        median_max=float(top.median()),
        n=int(top.numel()),
        k=spectra.largest.eigenvalues.shape[1],
        nep=nep,
        ape=ape,
        median_min=median_min,
        neg_ratio=neg_ratio,
        hvp=float(np.mean(hvps)),
    )


def log_correlation(spectra: ModelSpectra) -> float:
    """Correlation over batches of log λ_max and log |λ_min| (batches with λ_min < 0; else NaN)."""
    if spectra.smallest is None:
        return math.nan
    top, bottom = spectra.largest.eigenvalues[:, 0], spectra.smallest.eigenvalues[:, 0]
    keep = (bottom < 0) & (top > 0)
    if keep.sum() < 3:
        return math.nan
    pair = torch.stack([top[keep].log(), (-bottom[keep]).log()])
    return float(torch.corrcoef(pair)[0, 1])


def top_groups(spectra: BatchSpectra, n: int = 3) -> list[tuple[str, float]]:
    """The ``n`` parameter groups holding most of the top eigenvector (median share per batch)."""
    if spectra.composition is None:
        raise ValueError("these spectra were computed without composition=True")
    shares = spectra.composition.median(dim=0).values
    order = torch.argsort(shares, descending=True)[:n]
    return [(spectra.groups[int(i)], float(shares[i])) for i in order]


__all__ = [
    "BatchSpectra",
    "ModelSpectra",
    "SpectrumNumbers",
    "batch_spectra",
    "largest_magnitude",
    "log_correlation",
    "parameter_group",
    "spectrum_numbers",
    "top_groups",
    "vector_composition",
]


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
    many mini-batches (batch 16, ``which="LM"``, ``k=5``, with the weight-decay term);
    :func:`negative_proportion` turns an "LM" spectrum into the paper's NEP. The eigenvalues of
    :func:`batch_spectra` (which see, for the arguments and ``torch.distributed``), with a warning
    if some batch did not converge.
    """
    record = batch_spectra(
        model,
        loss_fn,
        batches,
        k,
        which=which,
        max_iter=max_iter,
        tol=tol,
        weight_decay=weight_decay,
        mode=mode,
        seed=None,
        generator=generator,
        progress=progress,
        from_ends=from_ends,
        where="max_eigenvalue_spectrum",
    )
    n_unconverged = int((~record.converged).sum())
    if n_unconverged:
        warnings.warn(
            f"{n_unconverged} batch(es) did not reach tol={tol} within max_iter={max_iter} "
            "products; raise max_iter.",
            stacklevel=2,
        )
    return record.eigenvalues


@dataclass
class NegativeProportion:
    """The paper's NEP: the share of negative values in a top-k-by-magnitude spectrum."""

    proportion: float
    low: float  # Wilson score interval at `confidence`, widened by `design_effect`
    high: float
    negatives: int
    total: int  # n_batches · k values
    confidence: float
    design_effect: float = 1.0  # ≥ 1: how much less the correlated values of a batch tell


def negative_proportion(
    spectrum: Tensor, confidence: float = 0.95, design_effect: float = 1.0
) -> NegativeProportion:
    """NEP of an "LM" spectrum (n_batches, k), as the paper counts it, with a Wilson interval.

    Per batch the paper ranks the top-k (k = 5) eigenvalues by magnitude (PyHessian) and counts
    the negative ones; NEP pools the counts over batches. Pass what
    ``max_eigenvalue_spectrum(..., which="LM")`` returns (or ``from_ends=True``, the same values
    for less): a spectrum ranked "LA" would never let a negative value in. The values of one
    batch may be correlated (a batch whose Hessian has a large negative eigenvalue can bring
    several into its top-k), so the interval counts ``n_batches·k / design_effect`` effective
    values: pass :func:`nep_design_effect` of the spectra being compared; the default 1 treats
    every value as independent.
    """
    values = spectrum.detach().reshape(-1)
    negatives, total = int((values < 0).sum()), values.numel()
    low, high = wilson_interval(negatives, total, confidence, design_effect)
    return NegativeProportion(
        negatives / total, low, high, negatives, total, confidence, design_effect
    )


def nep_design_effect(spectra: Iterable[Tensor]) -> float:
    """The design effect of the NEP's values, from "LM" spectra (n_batches, k) of the same k.

    A batch is a cluster of k values; their correlation is pooled over the spectra
    (:func:`~course_lib.analysis.proportions.intracluster_correlation`), so that models compared
    by NEP share one effect, and a spectrum without negative values borrows the others'.
    """
    spectra = [s.detach().reshape(s.shape[0], -1) for s in spectra]
    sizes = {s.shape[1] for s in spectra}
    if len(sizes) != 1:
        raise ValueError(f"the spectra must share one k (values per batch), got {sorted(sizes)}.")
    counts = [(s < 0).sum(dim=1).tolist() for s in spectra]
    size = sizes.pop()
    return design_effect(intracluster_correlation(counts, size), size)


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
