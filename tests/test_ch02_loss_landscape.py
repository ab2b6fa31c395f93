"""Tests for chapter 02: its report (verdicts, phrases), its data and one tiny end-to-end run.

The analysis primitives it uses are tested beside their modules: ``tests/test_spectra.py``
(per-batch spectra) and ``tests/test_landscape.py`` (surfaces, L2 term, curvature).
"""

from __future__ import annotations

import dataclasses
import math

import matplotlib.pyplot as plt
import pytest
import torch

import course_lib.analysis.spectra
from course_lib.analysis.curvature import SurfaceNumbers
from course_lib.analysis.spectra import SpectrumNumbers
from course_lib.chapters import ch02_loss_landscape as ch
from course_lib.chapters import precompute_steps
from course_lib.config import get_profile
from course_lib.plots import landscape_chapter as plots
from course_lib.report import landscape as report
from course_lib.samples import training_batches
from course_lib.widgets.landscape import surface_explorer


def numbers(top: float, bottom: list[float], nep: float) -> SpectrumNumbers:
    """Spectrum numbers of three batches with λ_max = ``top`` and λ_min = ``bottom``."""
    middle = sorted(bottom)[1]
    ratio = sorted(max(-b, 0.0) / top for b in bottom)[1]
    return SpectrumNumbers(top, 3, 1, nep, top, middle, ratio, 4.0)


@pytest.mark.parametrize("paper_like", [True, False])
def test_verdicts_follow_the_numbers(paper_like):
    sharp = numbers(100.0, [-0.01] * 3, 0.0)  # ResNet in the paper
    nonconvex = numbers(10.0, [-20.0, -5.0, -20.0], 2 / 3)  # ViT
    worse = numbers(10.0, [-30.0] * 3, 1.0)  # ViT on small data
    sharper = numbers(100.0, [-0.001] * 3, 0.0)
    if paper_like:
        spectra = {"resnet": sharp, "vit": nonconvex, "vit small": worse}
    else:
        spectra = {"resnet": nonconvex, "vit": sharp, "vit small": sharper}
    flat = SurfaceNumbers(1.0, 2.0, 1.0, 1.0, 0.5, 0.0)
    steep = SurfaceNumbers(10.0, 20.0, 10.0, 10.0, 0.0, 0.0)
    flatness = {"resnet": steep, "vit": flat} if paper_like else {"resnet": flat, "vit": steep}
    rows = report.paper_comparison(
        spectra,
        flatness,
        paper=ch.PAPER,
        resnet="resnet",
        vit="vit",
        vit_small="vit small",
        weight_decay=0.05,
    )
    assert [r.claim[:2] for r in rows] == ["C3", "C3", "C3", "C4", "C4", "C4"]
    expected = "reproduced" if paper_like else "not reproduced"
    assert [r.verdict for r in rows] == [expected] * 6


def test_times_phrase_and_numbers():
    assert report.times(1.0, 4.0) == "4.0× smaller than"
    assert report.times(30.0, 1.0) == "30× larger than"
    assert report.times(1.0, 1.1) == "about as large as"
    assert report.num(1372.4) == "1370" and report.num(0.0034817) == "0.00348"
    assert report.num(3.149, sign=True) == "+3.15" and report.num(math.nan) == "nan"
    assert report.value_range(torch.tensor([0.34, 231.0])) == "0.34 to 231 (a factor 679)"
    assert report.token_numbers({"cls": 0.01, "patches": 1.0})["cls_gain"] == "100"


def test_training_batches_are_fixed_and_leave_the_rng_alone():
    profile = get_profile("smoke", n_train=64, n_test=16)
    state = torch.random.get_rng_state()
    first = training_batches(profile, batch_size=8, n_batches=2, fraction=0.5)
    assert torch.equal(torch.random.get_rng_state(), state)
    second = training_batches(profile, batch_size=8, n_batches=2, fraction=0.5)
    assert all(
        torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
        for a, b in zip(first, second, strict=True)
    )
    with pytest.raises(ValueError, match="gives only"):
        training_batches(profile, batch_size=8, n_batches=100, fraction=0.5)


def test_steps_are_registered():
    steps = precompute_steps()
    assert {"ch02_loss_landscape.hessian_spectra", "ch02_loss_landscape.loss_surfaces"} <= set(
        steps
    )


@pytest.fixture
def micro_profile():
    """The smoke profile cut to a few images: every code path runs in seconds."""
    smoke = get_profile("smoke")
    return dataclasses.replace(
        smoke,
        name="micro",
        n_train=32,
        n_test=16,
        train=dataclasses.replace(smoke.train, batch_size=16),
        data_fractions=(0.5, 1.0),
        hessian=dataclasses.replace(smoke.hessian, batches=1, batch_size=8, max_iter=4),
        landscape=dataclasses.replace(smoke.landscape, points=3),
    )


def fail(*args, **kwargs):
    pytest.fail("recomputed")


def test_tiny_end_to_end_cached_and_plotted(micro_profile, monkeypatch):
    spectra = ch.hessian_spectra(micro_profile)
    labels = [r.label for r in ch.spectrum_runs(micro_profile)]
    assert (
        list(spectra)
        == labels
        == [
            "resnet_tiny",
            "vit_tiny",
            "vit_tiny (50% data)",
            "resnet_tiny (init)",
            "vit_tiny (init)",
        ]
    )
    assert spectra["vit_tiny"].by_magnitude.shape == (1, 1)
    assert spectra["vit_tiny (init)"].smallest is None
    assert spectra["vit_tiny"].smallest.n_hvp.max() <= 4
    surfaces = ch.loss_surfaces(micro_profile)
    assert surfaces["vit_tiny"].surface.loss.shape == (3, 3)
    assert surfaces["vit_tiny"].curves[0].loss.shape == (5,)
    rows = ch.comparisons(micro_profile)
    assert len(rows) == 6
    assert len(surfaces["vit_tiny"].curvature) == ch.CURVATURE_DIRECTIONS
    prose = ch.prose_numbers(spectra, surfaces, micro_profile)
    assert prose["small_fraction"] == "50%" and prose["n_batches"] == "1"
    assert "vit_tiny (init)" in report.spectra_costs(spectra)
    assert "median λ_min" in report.spectrum_peaks(spectra)
    # everything comes from the cache now: no training, no analysis
    monkeypatch.setattr(course_lib.analysis.spectra, "hessian_eigenvalues", fail)
    monkeypatch.setattr(ch, "loss_surface_2d", fail)
    again = ch.hessian_spectra(micro_profile)
    assert torch.equal(
        again["vit_tiny"].largest.eigenvalues, spectra["vit_tiny"].largest.eigenvalues
    )
    ch.loss_surfaces(micro_profile)
    monkeypatch.undo()
    # the chapter's figures draw from these results
    trained = {k: v for k, v in spectra.items() if v.smallest is not None}
    plots.plot_eigenvalue_strips({k: v.largest.eigenvalues for k, v in spectra.items()})
    plots.plot_negative_curvature(trained)
    plots.plot_eigenvector_composition(trained)
    plots.plot_curves_1d({k: v.curves for k, v in surfaces.items()})
    plots.plot_contours({k: v.surface for k, v in surfaces.items()})
    surface_explorer(surfaces, interactive=False)
    surface_explorer(surfaces, interactive=True)
    plt.close("all")
    scales = ch.vit_token_scales(micro_profile)
    assert set(scales) == {"cls", "patches"}
    assert ch.direct_largest_magnitude(micro_profile).shape == (micro_profile.hessian.k,)
    resnet = ch.trained_model("resnet", profile=micro_profile).model
    assert ch.token_scales(resnet, torch.zeros(1)) == {}


def test_protocol_names_the_loss_and_batches():
    text = ch.protocol("smoke")
    assert "no weight-decay term" in text and "mini-batches of 16" in text
