"""Chapter 02b — a deep dive into chapter 02's Hessian spectra (optional).

Three steps on the same batches as chapter 02 (:func:`~course_lib.chapters.
ch02_loss_landscape.hessian_batches`):

- :func:`solver_results` — one batch of the trained ViT (the one whose top-``k`` by ``|λ|``
  holds the most negative values), solved at each end ("LA", "SA") and for the largest
  magnitudes directly ("LM"), beside chapter 02's "LM" from the two ends for that batch.
- :func:`sharpest_directions` — per batch, λ_max ("LA", ``k = 1``) and where its eigenvector
  lives (the share of ``‖v‖²`` per parameter group), for the trained ResNet and ViT and for
  both at initialisation (chapter 02's ``top_direction``, one cached step per model).
- :func:`vit_token_scales` — the class token against the patch tokens where they enter the
  ViT's first block, at initialisation and trained (a LayerNorm makes a small input sharp).

:func:`deep_dive_text` gives every generated sentence (:mod:`course_lib.report.hessian_deep_dive`).
"""

from __future__ import annotations

import torch

from course_lib.analysis.features import token_scales
from course_lib.analysis.hessian import hessian_eigenvalues
from course_lib.analysis.lanczos import EigenResult
from course_lib.analysis.spectra import BatchSpectra
from course_lib.chapters import precompute_step
from course_lib.chapters.ch02_loss_landscape import (
    FAMILIES,
    SPECTRUM_TOL,
    hessian_batches,
    hessian_loss,
    hessian_spectra,
    initial_model,
    spectrum_roles,
    spectrum_summaries,
    top_direction,
)
from course_lib.config import Profile, as_profile
from course_lib.experiments import resolve_model_name, trained_model
from course_lib.report import hessian_deep_dive as report
from course_lib.steps import cached_step


@precompute_step
def sharpest_directions(profile: Profile | str | None = None) -> dict[str, BatchSpectra]:
    """λ_max per batch with its eigenvector's composition: the trained ResNet and ViT (chapter
    02's :func:`~course_lib.chapters.ch02_loss_landscape.top_direction`), then both at
    initialisation, with the seed their training started from."""
    prof = as_profile(profile)
    names = {family: resolve_model_name(family, prof) for family in FAMILIES}
    trained = {names[f]: top_direction(prof, f, 1.0, True) for f in FAMILIES}
    return trained | {f"{names[f]} (init)": top_direction(prof, f, 1.0, False) for f in FAMILIES}


def solver_batch(spectrum: BatchSpectra) -> int:
    """The batch whose top-k by ``|λ|`` holds the most negative values (the first on ties)."""
    return int((spectrum.eigenvalues < 0).sum(dim=1).argmax())


@precompute_step
@cached_step
def solver_results(profile: Profile) -> dict[str, EigenResult]:
    """The solvers on the trained ViT's :func:`solver_batch`: "LA", "SA" and "LM" (direct),
    ``k = profile.hessian.k`` each from seed 0, and chapter 02's "LM from ends" for that batch."""
    lm = hessian_spectra(profile)[spectrum_roles(profile).vit].magnitude
    i = solver_batch(lm)
    batch = hessian_batches(profile)[i]
    model = trained_model("vit", profile=profile).model
    h = profile.hessian
    out = {}
    for which in ("LA", "SA", "LM"):
        generator = torch.Generator().manual_seed(0)
        out[which] = hessian_eigenvalues(
            model,
            hessian_loss,
            batch,
            h.k,
            which=which,
            tol=SPECTRUM_TOL,
            max_iter=h.max_iter,
            generator=generator,
        )
    out["LM from ends"] = EigenResult(
        lm.eigenvalues[i], None, int(lm.n_hvp[i]), bool(lm.converged[i])
    )
    return out


def vit_token_scales(profile: Profile | str | None = None) -> dict[str, dict[str, float]]:
    """:func:`~course_lib.analysis.features.token_scales` of the ViT on the first Hessian batch,
    ``{"init": ..., "trained": ...}``."""
    prof = as_profile(profile)
    run = trained_model("vit", profile=prof)
    images = hessian_batches(prof)[0][0]
    return {
        "init": token_scales(initial_model(run), images),
        "trained": token_scales(run.model, images),
    }


def deep_dive_text(profile: Profile | str | None = None) -> dict[str, str]:
    """Every run-dependent paragraph of the deep dive, generated from the numbers (markdown)."""
    prof = as_profile(profile)
    roles = spectrum_roles(prof)
    spectra, directions = hessian_spectra(prof), sharpest_directions(prof)
    numbers = spectrum_summaries(prof)
    lmax = {label: float(s.eigenvalues[:, 0].quantile(0.5)) for label, s in directions.items()}
    scales = vit_token_scales(prof)
    pairs = {
        roles.names[label]: (spectra[label].top.eigenvalues, spectra[label].magnitude.eigenvalues)
        for label in (roles.resnet, roles.vit)
    }
    init = [lmax[f"{label} (init)"] for label in (roles.vit, roles.resnet)]
    return {
        "solvers": report.solver_reading(solver_results(prof)),
        "check": report.maxima_check(pairs),
        "ape": report.ape_reading(numbers, roles),
        "init": report.init_reading(*init, lmax[roles.vit]),
        "composition": report.composition_reading(directions),
        "tokens": report.token_reading(scales["trained"], scales["init"]),
    }
