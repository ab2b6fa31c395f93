"""Chapter 02 — the loss landscape (claims C3, C4 of Park & Kim 2022): Hessian spectra, surfaces.

Steps on the profile's shared trained models (chapter 01's runs, :func:`trained_model`):

- :func:`hessian_spectra` — per mini-batch of the trained ResNet, ViT and small-data ViT (C4):
  the paper's spectrum, the ``k`` eigenvalues of largest magnitude, exactly, from the two ends
  (:func:`magnitude_spectrum`), whence the NEP; and λ_max with its eigenvector's make-up
  (:func:`top_direction`) for C3.
- :func:`loss_surfaces` — filter-normalised 1-D and 2-D loss surfaces (Li et al. 2018) of the
  trained ResNet and ViT, the official L2 term, and ``dᵀHd`` along random directions.

:func:`comparisons` gives the "paper vs. this run" rows (also for chapter 04's summary) and
:func:`chapter_text` every generated sentence. The loss is the batch-mean NLL *without* the
paper's weight-decay term (which moves every eigenvalue by ``+wd``); the batches are the model's
own augmented training data, drawn once with a fixed seed; the model is in eval mode, so each
batch loss is a fixed function of the weights.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from course_lib.analysis.curvature import (
    ModelSurfaces,
    directional_curvature,
    l2_norm_grid,
    more_directions,
    surface_numbers,
)
from course_lib.analysis.evaluation import model_device
from course_lib.analysis.landscape import (
    filter_normalized_direction_pair,
    loss_surface_1d,
    loss_surface_2d,
)
from course_lib.analysis.spectra import BatchSpectra, batch_spectra, nep_design_effect
from course_lib.chapters import precompute_step
from course_lib.config import Profile, as_profile
from course_lib.experiments import TrainedModel, resolve_model_name, trained_model
from course_lib.models import create_model
from course_lib.report import Comparison
from course_lib.report import landscape as report
from course_lib.samples import training_batches
from course_lib.steps import cached_step

#: The two families whose landscapes the chapter compares (Conv vs. global MSA).
FAMILIES: tuple[str, ...] = ("resnet", "vit")

#: Relative tolerance of every eigenvalue (residual ``‖Hx − λx‖ ≤ tol·|λ|``): enough for a
#: histogram of a few dozen batches; the eigenvalue's error is of order residual² / gap.
SPECTRUM_TOL = 1e-2

#: Random filter-normalised directions along which :func:`model_surfaces` measures ``dᵀHd``
#: (the surface's two, then more): one Hessian-vector product each, cheap next to a surface.
CURVATURE_DIRECTIONS = 8

#: Parameters whose direction is zero in the loss surfaces, as in the official notebook
#: (position embeddings and relative-position bias tables are not filters; ours are named
#: ``*.bias.table`` where timm's are ``relative_position_bias_table``).
SURFACE_EXCLUDE: tuple[str, ...] = ("pos_embed", r"bias\.table")

#: Paper numbers (Park & Kim 2022), ≈ read from the figures (see ``shared/PAPER_NOTES.md``).
PAPER = {
    # Fig. 1c / Fig. 4: positive peak of the max-eigenvalue spectrum (top-5 per batch of 16,
    # L2-regularised NLL, augmented CIFAR-100), early in training and at epochs 100, 200, 300.
    "c3_peaks": {"early": (36, 290), "100": (100, 340), "200": (320, 540), "300": (430, 840)},
    # Fig. 4: ViT on 6 % of CIFAR-100 has ≈ 3.7× the negative mass of the full-data ViT.
    "c4_small_over_full": 3.7,
    "c4_vit_negative_range": (-55, 0),
    # Official losslandscape notebook (CIFAR-100): rise at (1, 0) (NLL + L2), NLL at (0, 0).
    "rise_1_0": {"vit": 12.3, "resnet": 20.0},
    "center_nll": {"vit": 2.49, "resnet": 2.19},
}


def hessian_loss(outputs: Tensor, targets: Tensor) -> Tensor:
    """The loss whose Hessian the chapter studies: the NLL, mean over the batch, no L2 term."""
    return F.cross_entropy(outputs, targets)


@dataclass(frozen=True)
class SpectrumRun:
    """One trained model whose Hessian spectrum the chapter measures."""

    label: str  # e.g. "vit_mini", "vit_mini (10% data)"
    family: str  # "resnet" or "vit"
    fraction: float  # training-data fraction (C4's small-data ViT: min(profile.data_fractions))


def spectrum_runs(profile: Profile | str | None = None) -> list[SpectrumRun]:
    """The models of :func:`hessian_spectra`, in the paper's order of increasing NEP."""
    prof = as_profile(profile)
    small = min(prof.data_fractions)
    names = {family: resolve_model_name(family, prof) for family in FAMILIES}
    runs = [SpectrumRun(names[family], family, 1.0) for family in FAMILIES]
    if small < 1.0:
        runs.append(SpectrumRun(f"{names['vit']} ({small:.0%} data)", "vit", small))
    return runs


def spectrum_roles(profile: Profile | str | None = None) -> report.Roles:
    """Which of :func:`spectrum_runs`' labels plays which part in the comparisons."""
    prof = as_profile(profile)
    resnet, vit, *small = [r.label for r in spectrum_runs(prof)]
    return report.Roles(resnet, vit, small[0] if small else None, min(prof.data_fractions))


def hessian_batches(profile: Profile, fraction: float = 1.0) -> list[tuple[Tensor, Tensor]]:
    """The fixed augmented training batches every spectrum of a model is computed on."""
    h = profile.hessian
    return training_batches(
        profile, batch_size=h.batch_size, n_batches=h.batches, fraction=fraction
    )


def initial_model(run: TrainedModel, seed: int = 0) -> nn.Module:
    """A fresh model of ``run``'s architecture, initialised as ``trained_model`` does (seeded)."""
    torch.manual_seed(seed)
    model = create_model(run.name, num_classes=run.num_classes, image_size=run.image_size)
    return model.to(model_device(run.model)).eval()


@dataclass
class HessianSpectra:
    """One model's spectra over the same batches."""

    magnitude: BatchSpectra  # "LM": the top k by |λ|, the paper's ranking (C4)
    top: BatchSpectra  # "LA", k = 1: λ_max and its eigenvector's composition (C3)


@cached_step
def magnitude_spectrum(profile: Profile, family: str, fraction: float) -> BatchSpectra:
    """Per batch, the top ``k`` eigenvalues by ``|λ|`` of the trained ``family`` on ``fraction``
    of the data, exactly, from the two ends (the paper's ranking)."""
    model = trained_model(family, profile=profile, fraction=fraction).model
    h = profile.hessian
    batches = hessian_batches(profile, fraction)
    return batch_spectra(
        model, hessian_loss, batches, h.k, which="LM", from_ends=True, tol=SPECTRUM_TOL,
        max_iter=h.max_iter,
    )  # fmt: skip


@cached_step
def top_direction(profile: Profile, family: str, fraction: float, trained: bool) -> BatchSpectra:
    """Per batch, λ_max ("LA", ``k = 1``) of ``family`` on ``fraction`` of the data (trained, or
    freshly initialised) and where its eigenvector lives (``composition=True``)."""
    run = trained_model(family, profile=profile, fraction=fraction)
    model = run.model if trained else initial_model(run)
    batches = hessian_batches(profile, fraction)
    return batch_spectra(
        model, hessian_loss, batches, 1, which="LA", tol=SPECTRUM_TOL,
        max_iter=profile.hessian.max_iter, composition=True,
    )  # fmt: skip


@precompute_step
def hessian_spectra(profile: Profile | str | None = None) -> dict[str, HessianSpectra]:
    """Both spectra of every model of :func:`spectrum_runs`, by label."""
    prof = as_profile(profile)
    return {
        r.label: HessianSpectra(
            magnitude_spectrum(prof, r.family, r.fraction),
            top_direction(prof, r.family, r.fraction, True),
        )
        for r in spectrum_runs(prof)
    }


@cached_step
def model_surfaces(profile: Profile, family: str) -> ModelSurfaces:
    """NLL surfaces of the trained ``family`` along two filter-normalised random directions
    (seed 0; biases, norm weights and ``SURFACE_EXCLUDE`` fixed): 2-D on [−1, 1]², 1-D along
    each on a grid twice as fine, the L2 term; and ``dᵀHd`` along ``CURVATURE_DIRECTIONS``."""
    model = trained_model(family, profile=profile).model
    start = time.perf_counter()
    batches = training_batches(
        profile, batch_size=profile.train.batch_size, n_batches=profile.landscape.batches
    )
    generator = torch.Generator().manual_seed(0)
    directions = filter_normalized_direction_pair(
        model, generator=generator, exclude=SURFACE_EXCLUDE
    )
    coords = np.linspace(-1.0, 1.0, profile.landscape.points)
    fine = np.linspace(-1.0, 1.0, 2 * profile.landscape.points - 1)
    surface = loss_surface_2d(model, hessian_loss, batches, directions, coords, coords)
    curves = [loss_surface_1d(model, hessian_loss, batches, d, fine) for d in directions]
    probes = more_directions(
        model, directions, CURVATURE_DIRECTIONS, generator, exclude=SURFACE_EXCLUDE
    )
    curvature = [directional_curvature(model, hessian_loss, batches, d) for d in probes]
    return ModelSurfaces(
        surface=surface,
        curves=curves,
        l2=l2_norm_grid(model, directions, coords, coords),
        curvature=curvature,
        seconds=time.perf_counter() - start,
    )


@precompute_step
def loss_surfaces(profile: Profile | str | None = None) -> dict[str, ModelSurfaces]:
    """:func:`model_surfaces` of the trained ResNet and ViT, by model name."""
    prof = as_profile(profile)
    return {resolve_model_name(f, prof): model_surfaces(prof, f) for f in FAMILIES}


def spectrum_summaries(profile: Profile | str | None = None) -> dict[str, report.SpectrumNumbers]:
    """Every spectrum's numbers (medians, NEP, APE), by label, from the cached steps; the NEPs'
    intervals share the design effect of all the spectra's batches."""
    spectra = hessian_spectra(profile)
    effect = nep_design_effect(s.magnitude.eigenvalues for s in spectra.values())
    return {label: report.spectrum_numbers(s.magnitude, s.top, effect)
            for label, s in spectra.items()}  # fmt: skip


def _numbers(prof: Profile) -> tuple[dict, dict]:
    """The spectra's and the surfaces' numbers, by label, from the cached steps."""
    wd = prof.train.weight_decay
    surfaces = {name: surface_numbers(s, wd) for name, s in loss_surfaces(prof).items()}
    return spectrum_summaries(prof), surfaces


def comparisons(profile: Profile | str | None = None) -> list[Comparison]:
    """The chapter's "paper vs. this run" rows (C3, C4) from the cached steps.

    Used by the chapter and by the closing summary of chapter 04 (rows start with "C3"/"C4").
    """
    prof = as_profile(profile)
    spectrum, flat = _numbers(prof)
    return report.paper_comparison(
        spectrum,
        flat,
        paper=PAPER,
        roles=spectrum_roles(prof),
        weight_decay=prof.train.weight_decay,
    )


def protocol(profile: Profile | str | None = None) -> str:
    """What the chapter measures, in words (printed at the top of the chapter)."""
    prof = as_profile(profile)
    return report.protocol(prof, [r.label for r in spectrum_runs(prof)], SPECTRUM_TOL)


def chapter_text(profile: Profile | str | None = None) -> dict[str, str]:
    """Every run-dependent paragraph of the chapter, generated from the numbers (markdown)."""
    prof = as_profile(profile)
    roles, (spectrum, flat) = spectrum_roles(prof), _numbers(prof)
    num_classes = trained_model("vit", profile=prof).num_classes
    return {
        "c3": report.c3_reading(spectrum, roles, PAPER),
        "fit": report.fit_reading(flat, roles, num_classes, PAPER),
        "c4": report.c4_reading(spectrum, roles),
        "surfaces": report.surface_reading(flat, roles, CURVATURE_DIRECTIONS),
        "verdicts": report.verdict_reading(comparisons(prof)),
    }
