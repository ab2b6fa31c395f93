"""Per-batch Hessian spectra with their cost, convergence and where the top eigenvector lives.

:func:`batch_spectra` is the bookkeeping twin of
:func:`course_lib.analysis.hessian.max_eigenvalue_spectrum`: the same arguments and the same
per-batch :func:`~course_lib.analysis.hessian.top_eigenvalues` calls, but it returns a
:class:`BatchSpectra` that also records the Hessian-vector products, the convergence and the
seconds of every batch, and optionally the top eigenvector's split over parameter groups
(:func:`vector_composition`). It runs on one process; for a distributed run over many batches
use ``max_eigenvalue_spectrum``.

:class:`ModelSpectra` pairs a model's largest ("LA") and smallest ("SA") ends; the paper's
top-``k`` by magnitude ("LM", what PyHessian returns) follows exactly from the two
(:func:`largest_magnitude`). :func:`spectrum_numbers` sums a model's spectra up in numbers
(the paper's NEP and APE among them, Park & Kim 2022, Fig. 4).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor, nn

from course_lib.analysis.hessian import spectrum_summary, top_eigenvalues

LossFn = Callable[[Tensor, Tensor], Tensor]


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
    batches: Sequence[tuple[Tensor, Tensor]],
    k: int = 1,
    *,
    which: str = "LA",
    max_iter: int = 100,
    tol: float = 1e-4,
    seed: int = 0,
    composition: bool = False,
) -> BatchSpectra:
    """Per batch, ``k`` extreme Hessian eigenvalues of ``loss_fn`` (model in eval mode).

    Calls :func:`~course_lib.analysis.hessian.top_eigenvalues` batch by batch (``which`` "LA",
    "SA" or "LM", one generator seeded with ``seed`` for all batches), like
    :func:`~course_lib.analysis.hessian.max_eigenvalue_spectrum`, and records every batch's cost
    and convergence. ``composition=True`` also records where each batch's first eigenvector
    lives (:func:`vector_composition`).
    """
    generator = torch.Generator().manual_seed(seed)
    names: list[str] = []
    values, n_hvp, converged, shares = [], [], [], []
    start = time.perf_counter()
    for batch in batches:
        result = top_eigenvalues(
            model,
            loss_fn,
            batch,
            k,
            which=which,
            tol=tol,
            max_iter=max_iter,
            generator=generator,
            return_eigenvectors=composition,
        )
        values.append(result.eigenvalues)
        n_hvp.append(result.n_hvp)
        converged.append(result.converged)
        if composition:
            names, share = vector_composition(result.eigenvectors[0], model)
            shares.append(share)
    return BatchSpectra(
        which=which,
        eigenvalues=torch.stack(values).double(),
        n_hvp=torch.tensor(n_hvp),
        converged=torch.tensor(converged),
        seconds=time.perf_counter() - start,
        composition=torch.stack(shares) if composition else None,
        groups=names,
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


__all__ = [
    "BatchSpectra",
    "ModelSpectra",
    "SpectrumNumbers",
    "batch_spectra",
    "largest_magnitude",
    "log_correlation",
    "parameter_group",
    "spectrum_numbers",
    "token_scales",
    "top_groups",
    "vector_composition",
]
