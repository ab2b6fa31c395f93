"""Chapter 02 — the loss landscape (claims C3, C4 of Park & Kim 2022): Hessian spectra, surfaces.

Two steps analyse the profile's shared trained models (chapter 01's runs, through
:func:`~course_lib.experiments.trained_model`):

- :func:`hessian_spectra` — per mini-batch of training images, the ``profile.hessian.k``
  largest ("LA", sharpness) and smallest ("SA", non-convexity) Hessian eigenvalues of the trained
  ResNet and ViT, of the ViT trained on the smallest data fraction (C4), and ("LA" only) of both
  families at initialisation; one cached step per model and end (:func:`batch_spectrum`,
  :mod:`course_lib.analysis.spectra`, where the paper's top-``k`` by magnitude is derived).
- :func:`loss_surfaces` — 1-D and 2-D filter-normalised loss surfaces (Li et al. 2018) of the
  trained ResNet and ViT, with the official L2 term and the curvature ``dᵀHd`` along random
  filter-normalised directions; one cached step per model (:func:`model_surfaces`,
  :mod:`course_lib.analysis.curvature`).

:func:`comparisons` gives the "paper vs. this run" rows (also for chapter 04's summary); the
words and numbers of the text come from :mod:`course_lib.report.landscape`.

The loss is the NLL (batch mean) *without* the paper's weight-decay term, which would move every
Hessian eigenvalue by ``+wd`` (0.05); the surfaces offer the official ``wd·Σ‖p‖`` term beside it.
The batches are the model's own training data (the small-data ViT: its subset), augmented as in
training, drawn once with a fixed seed (:func:`course_lib.samples.training_batches`); the model is
in eval mode, so each batch loss is a fixed function of the weights.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
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
from course_lib.analysis.features import token_scales
from course_lib.analysis.hessian import top_eigenvalues
from course_lib.analysis.landscape import (
    filter_normalized_direction_pair,
    loss_surface_1d,
    loss_surface_2d,
)
from course_lib.analysis.spectra import (
    BatchSpectra,
    ModelSpectra,
    batch_spectra,
    spectrum_numbers,
)
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

#: Relative tolerance of every eigenvalue: the residual ``‖Hx − λx‖ ≤ tol·|λ|``. A histogram of
#: a few dozen batches needs no more than 1 %, and the eigenvalue itself is usually far more
#: accurate than its residual (the error is of order residual² / gap).
SPECTRUM_TOL = 1e-2

#: Which eigenvalues are computed for the random-initialisation baseline (only sharpness: C3).
INIT_WHICH: tuple[str, ...] = ("LA",)

#: Random filter-normalised directions along which :func:`model_surfaces` measures the exact
#: curvature ``dᵀHd`` (the surface's two, then more from the same generator). One
#: Hessian-vector product each on the surface's batches: cheap next to the surface itself.
CURVATURE_DIRECTIONS = 8

#: Parameters whose direction is zero in the loss surfaces, as in the official notebook
#: (position embeddings are not filters).
SURFACE_EXCLUDE: tuple[str, ...] = ("pos_embed", "relative_position")

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


def hessian_loss(outputs: Tensor, targets: Tensor) -> Tensor:
    """The loss whose Hessian the chapter studies: the NLL, mean over the batch, no L2 term."""
    return F.cross_entropy(outputs, targets)


@dataclass(frozen=True)
class SpectrumRun:
    """One model whose Hessian spectrum the chapter measures."""

    label: str  # e.g. "vit_mini", "vit_mini (10% data)", "resnet_mini (init)"
    family: str  # "resnet" or "vit"
    fraction: float  # training-data fraction (C4's small-data ViT: min(profile.data_fractions))
    trained: bool  # False: freshly initialised with the run's seed


def spectrum_runs(profile: Profile | str | None = None) -> list[SpectrumRun]:
    """The models of :func:`hessian_spectra`, in the order the chapter shows them."""
    prof = as_profile(profile)
    small = min(prof.data_fractions)
    names = {family: resolve_model_name(family, prof) for family in FAMILIES}
    runs = [SpectrumRun(names[family], family, 1.0, True) for family in FAMILIES]
    if small < 1.0:
        runs.append(SpectrumRun(f"{names['vit']} ({small:.0%} data)", "vit", small, True))
    runs += [SpectrumRun(f"{names[family]} (init)", family, 1.0, False) for family in FAMILIES]
    return runs


def spectrum_roles(profile: Profile | str | None = None) -> report.Roles:
    """Which of :func:`spectrum_runs`' labels plays which part in the comparisons."""
    prof = as_profile(profile)
    label = {(r.family, r.fraction, r.trained): r.label for r in spectrum_runs(prof)}
    return report.Roles(
        resnet=label[("resnet", 1.0, True)],
        vit=label[("vit", 1.0, True)],
        resnet_init=label[("resnet", 1.0, False)],
        vit_init=label[("vit", 1.0, False)],
        vit_small=label.get(("vit", min(prof.data_fractions), True)),
    )


def initial_model(run: TrainedModel, seed: int = 0) -> nn.Module:
    """A fresh model of ``run``'s architecture, initialised as ``trained_model`` does (seeded)."""
    torch.manual_seed(seed)
    model = create_model(run.name, num_classes=run.num_classes, image_size=run.image_size)
    return model.to(model_device(run.model)).eval()


# ---------------------------------------------------------------------------------------------
# Hessian spectra (C3, C4)


@cached_step
def batch_spectrum(
    profile: Profile, family: str, fraction: float, trained: bool, which: str
) -> BatchSpectra:
    """One model's per-batch spectrum at one end (``which`` "LA" or "SA"), cached on its own.

    The model: the profile's trained ``family`` on ``fraction`` of the data, or (``trained``
    False) a fresh one of its architecture. "LA" also records the top eigenvector's composition.
    """
    run = trained_model(family, profile=profile, fraction=fraction)
    h = profile.hessian
    batches = training_batches(
        profile, batch_size=h.batch_size, n_batches=h.batches, fraction=fraction
    )
    model = run.model if trained else initial_model(run)
    return batch_spectra(
        model,
        hessian_loss,
        batches,
        h.k,
        which=which,
        tol=SPECTRUM_TOL,
        max_iter=h.max_iter,
        composition=which == "LA",
    )


@precompute_step
def hessian_spectra(profile: Profile | str | None = None) -> dict[str, ModelSpectra]:
    """Both ends of every model of :func:`spectrum_runs`, by label (initialised models: "LA")."""
    prof = as_profile(profile)
    out = {}
    for run in spectrum_runs(prof):
        ends = ("LA", "SA") if run.trained else INIT_WHICH
        computed = [batch_spectrum(prof, run.family, run.fraction, run.trained, w) for w in ends]
        out[run.label] = ModelSpectra(*computed)
    return out


# ---------------------------------------------------------------------------------------------
# Loss surfaces


@cached_step
def model_surfaces(profile: Profile, family: str) -> ModelSurfaces:
    """Filter-normalised loss surfaces of the profile's trained ``family``, NLL only.

    Two filter-normalised random directions ``(d, e)`` (seed 0; biases, norm weights and
    ``SURFACE_EXCLUDE`` held fixed), the 2-D surface on ``profile.landscape.points``² points
    over [−1, 1]², 1-D curves along ``d`` and ``e`` on a grid twice as fine, and the L2 term on
    the 2-D grid, all on ``profile.landscape.batches`` fixed augmented training batches of
    ``profile.train.batch_size``; and ``dᵀHd`` along ``CURVATURE_DIRECTIONS`` directions.
    """
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


# ---------------------------------------------------------------------------------------------
# Paper vs. this run, and the chapter's glue


def comparisons(profile: Profile | str | None = None) -> list[Comparison]:
    """The chapter's "paper vs. this run" rows (C3, C4) from the cached steps.

    Used by the chapter and by the closing summary of chapter 04 (rows start with "C3"/"C4").
    """
    prof = as_profile(profile)
    spectra, surfaces = hessian_spectra(prof), loss_surfaces(prof)
    roles = spectrum_roles(prof)
    wd = prof.train.weight_decay
    return report.paper_comparison(
        {label: spectrum_numbers(entry) for label, entry in spectra.items()},
        {name: surface_numbers(s, wd) for name, s in surfaces.items()},
        paper=PAPER,
        resnet=roles.resnet,
        vit=roles.vit,
        vit_small=roles.vit_small,
        weight_decay=wd,
    )


def protocol(profile: Profile | str | None = None) -> str:
    """What the chapter measures, in words (printed at the top of the chapter)."""
    prof = as_profile(profile)
    return report.protocol(prof, [r.label for r in spectrum_runs(prof)], SPECTRUM_TOL)


def prose_numbers(
    spectra: Mapping[str, ModelSpectra],
    surfaces: Mapping[str, ModelSurfaces],
    profile: Profile | str | None = None,
) -> dict[str, str]:
    """Every number the chapter's prose quotes, formatted, for ``myst_nb.glue``."""
    prof = as_profile(profile)
    roles = spectrum_roles(prof)
    return report.prose_numbers(spectra, surfaces, prof, roles, CURVATURE_DIRECTIONS)


def _first_batch(prof: Profile) -> tuple[Tensor, Tensor]:
    return training_batches(prof, batch_size=prof.hessian.batch_size, n_batches=1)[0]


def vit_token_scales(profile: Profile | str | None = None) -> dict[str, float]:
    """:func:`~course_lib.analysis.features.token_scales` of the trained ViT on a Hessian batch."""
    prof = as_profile(profile)
    return token_scales(trained_model("vit", profile=prof).model, _first_batch(prof)[0])


def direct_largest_magnitude(profile: Profile | str | None = None) -> Tensor:
    """The trained ResNet's top-``k`` by ``|λ|`` on the first Hessian batch, computed directly
    ("LM"), to set beside the value derived from both ends."""
    prof = as_profile(profile)
    model = trained_model("resnet", profile=prof).model
    generator = torch.Generator().manual_seed(0)
    k, batch = prof.hessian.k, _first_batch(prof)
    result = top_eigenvalues(
        model, hessian_loss, batch, k, which="LM", tol=SPECTRUM_TOL, generator=generator
    )
    return result.eigenvalues
