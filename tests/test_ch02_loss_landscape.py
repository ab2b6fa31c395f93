"""Tests for chapter 02 and its deep dive: verdicts, generated sentences, one tiny run.

The analysis primitives they use are tested beside their modules: ``tests/test_spectra.py``
(per-batch spectra, the top-k by magnitude from the two ends) and ``tests/test_landscape.py``
(surfaces, L2 term, curvature).
"""

from __future__ import annotations

import dataclasses

import matplotlib.pyplot as plt
import pytest
import torch

import course_lib.analysis.spectra
from course_lib.analysis.curvature import SurfaceNumbers
from course_lib.analysis.lanczos import EigenResult
from course_lib.analysis.spectra import BatchSpectra
from course_lib.chapters import ch02_loss_landscape as ch
from course_lib.chapters import ch02b_hessian_deep_dive as dive
from course_lib.chapters import precompute_steps
from course_lib.config import get_profile
from course_lib.plots import landscape_chapter, landscape_spectra
from course_lib.report import hessian_deep_dive as deep_report
from course_lib.report import landscape as report
from course_lib.report.verdicts import order_verdict
from course_lib.samples import training_batches
from course_lib.widgets.landscape import surface_explorer

ROLES = report.Roles("resnet", "vit", "vit small", 0.1)


def spectrum(rows: list[list[float]], which: str = "LM") -> BatchSpectra:
    """A hand-made per-batch spectrum (n_batches, k), converged in 10 products per batch."""
    n = len(rows)
    return BatchSpectra(
        which=which,
        eigenvalues=torch.tensor(rows, dtype=torch.float64),
        n_hvp=torch.full((n,), 10),
        converged=torch.ones(n, dtype=torch.bool),
        seconds=1.0,
    )


def model(rows: list[list[float]]) -> ch.HessianSpectra:
    """Both spectra of a model whose "LA" solve found each row's largest value."""
    return ch.HessianSpectra(spectrum(rows), spectrum([[max(r)] for r in rows], which="LA"))


def numbers(rows: list[list[float]]) -> report.SpectrumNumbers:
    s = model(rows)
    return report.spectrum_numbers(s.magnitude, s.top)


def flat(rise: float, curvature: float, negative: float, center: float = 1.0) -> SurfaceNumbers:
    return SurfaceNumbers(rise, 2 * rise, rise, curvature, negative, center)


SHARP = [[100.0, 50.0], [120.0, 40.0], [90.0, 30.0], [110.0, 60.0]]  # no negatives
ONE_NEGATIVE = [[10.0, -8.0], [12.0, 5.0], [9.0, 4.0], [11.0, 6.0]]
MANY_NEGATIVE = [[10.0, -9.0], [-12.0, 8.0], [9.0, -7.0], [-11.0, 10.0]]


@pytest.mark.parametrize("paper_like", [True, False])
def test_comparisons_take_their_verdicts_from_the_contrasts(paper_like, monkeypatch):
    """``comparisons`` wired to hand-made results: the paper's contrasts, then all reversed."""
    profile = get_profile("smoke")
    roles = ch.spectrum_roles(profile)
    steep, gentle = flat(10.0, 10.0, 0.0), flat(1.0, 1.0, 0.5)
    # 100 batches each: enough values for NEPs of 0 %, 12.5 % and 50 % to differ clearly
    if paper_like:
        rows = {roles.resnet: SHARP, roles.vit: ONE_NEGATIVE, roles.vit_small: MANY_NEGATIVE}
        surfaces = {roles.resnet: steep, roles.vit: gentle}
    else:
        rows = {roles.resnet: MANY_NEGATIVE, roles.vit: SHARP, roles.vit_small: ONE_NEGATIVE}
        surfaces = {roles.resnet: gentle, roles.vit: steep}
    rows = {label: r * 25 for label, r in rows.items()}
    spectra = {label: model(r) for label, r in rows.items()}
    monkeypatch.setattr(ch, "hessian_spectra", lambda profile: spectra)
    monkeypatch.setattr(ch, "loss_surfaces", lambda profile: surfaces)
    monkeypatch.setattr(ch, "surface_numbers", lambda numbers, weight_decay: numbers)
    box = ch.comparisons(profile)
    assert [r.claim[:2] for r in box] == ["C3", "C3", "C3", "C4", "C4"]
    expected = "reproduced" if paper_like else "not reproduced"
    assert [r.verdict for r in box] == [expected] * 5
    reading = report.verdict_reading(box)
    assert ("Every contrast" in reading) == paper_like


def test_nep_order_with_a_reversed_inner_pair_is_partly():
    spectra = {
        "resnet": numbers(SHARP * 25),
        "vit": numbers(MANY_NEGATIVE * 25),
        "vit small": numbers(ONE_NEGATIVE * 25),
    }
    flatness = {"resnet": flat(10.0, 10.0, 0.0), "vit": flat(1.0, 1.0, 0.5)}
    box = report.paper_comparison(spectra, flatness, paper=ch.PAPER, roles=ROLES, weight_decay=0.05)
    assert box[3].verdict == "partly"
    assert "an inner pair does not" in report.verdict_reading(box)
    assert "at its two ends, not in between" in report.c4_reading(spectra, ROLES)


def test_spectrum_numbers_are_the_papers_nep_and_ape_with_an_interval():
    n = numbers(MANY_NEGATIVE)
    assert (n.nep.negatives, n.nep.total) == (4, 8)
    assert n.nep.low < 0.5 < n.nep.high
    assert n.ape == pytest.approx((10 + 8 + 9 + 10) / 4)
    assert n.median_max == pytest.approx(9.5)  # of the rows' largest values 10, 8, 9, 10
    # λ_max: the larger of the two estimates, whichever found it
    magnitude, top = torch.tensor([[-5.0, 1.0], [3.0, -2.0]]), torch.tensor([[2.0], [2.5]])
    assert report.batch_maxima(magnitude, top).tolist() == [2.0, 3.0]


def test_c3_and_c4_sentences_follow_the_numbers():
    sharp, gentle = numbers(SHARP), numbers(ONE_NEGATIVE)
    paper_like = {"resnet": sharp, "vit": gentle, "vit small": numbers(MANY_NEGATIVE)}
    reversed_ = {"resnet": gentle, "vit": sharp, "vit small": sharp}
    assert "the ViT's median λ_max (10.5) is lower than the ResNet's" in report.c3_reading(
        paper_like, ROLES, ch.PAPER
    )
    assert "is higher than the ResNet's" in report.c3_reading(reversed_, ROLES, ch.PAPER)
    text = report.c4_reading(paper_like, ROLES)
    assert "which is the paper's order" in text and "ResNet: 0% < ViT: 12%" in text
    assert "interval" in text and "of 8)" in text
    assert "which is not the paper's order" in report.c4_reading(reversed_, ROLES)
    one_in_40 = numbers([[-1.0, 5.0, 4.0, 3.0, 2.0]] + [[5.0, 4.0, 3.0, 2.0, 1.0]] * 7)
    text = report.c4_reading({"resnet": sharp, "vit": one_in_40}, report.Roles("resnet", "vit"))
    assert "ViT: 2.5% (95%" in text and "< ViT: 2.5%," in text  # one number, written alike
    assert "within noise" in text  # 8 values per model cannot tell 0 %, 12 % and 50 % apart


def test_c4_reading_says_how_its_intervals_count_the_values_of_a_batch():
    """With a design effect above 1 the reading gives the effective number of values."""
    s = model(ONE_NEGATIVE)
    correlated = report.spectrum_numbers(s.magnitude, s.top, design_effect=2.0)
    assert correlated.nep.design_effect == 2.0
    roles = report.Roles("resnet", "vit")
    text = report.c4_reading({"resnet": numbers(SHARP), "vit": correlated}, roles)
    assert "count the 8 values of a model as 4 independent ones (design effect 2" in text
    text = report.c4_reading({"resnet": numbers(SHARP), "vit": numbers(ONE_NEGATIVE)}, roles)
    assert "count the 8 values of a model as independent ones (design effect 1:" in text


def test_times_reads_the_ratio_both_ways():
    assert report.times(1.0, 460.0) == "460× smaller than"
    assert report.times(3.2, 1.0) == "3.2× larger than"
    assert report.times(1.0, 1.01) == "about as large as"
    assert report.times(-1.0, 2.0) == "not comparable with"


def test_c4_counts_a_step_only_when_its_difference_is_clear():
    few = [[1.0]] * 400  # NEP 0 of 400
    many = [[-1.0, 2.0]] * 200  # 50 % of 400
    roles = report.Roles("resnet", "vit")
    text = report.c4_reading({"resnet": numbers(few), "vit": numbers(many)}, roles)
    assert "the NEP of the ViT minus that of the ResNet is 50% (95% interval" in text
    assert "clear" in text
    assert "within noise" not in text and "would take" not in text
    close = {"resnet": numbers(ONE_NEGATIVE), "vit": numbers(MANY_NEGATIVE)}  # 1 of 8, 4 of 8
    text = report.c4_reading(close, roles)
    assert "within noise" in text and "only when it is clear" in text
    # 12.5 % vs 50 %: Fleiss's formula gives 22.8 values per sample, 23 rounded up
    assert "a difference of 38 points between the ViT and the ResNet" in text
    assert "about 23 values per model, 2.9× the 8 here" in text
    reversed_ = {"resnet": numbers(MANY_NEGATIVE), "vit": numbers(ONE_NEGATIVE)}
    assert "would take" not in report.c4_reading(reversed_, roles)  # not a question of power
    nep = {label: n.nep.proportion for label, n in close.items()}
    clear = report.nep_clear(close, ["resnet", "vit"])
    assert clear == {("resnet", "vit"): False}
    assert order_verdict(nep, ["resnet", "vit"]) == "reproduced"  # the points alone
    assert order_verdict(nep, ["resnet", "vit"], clear) == "not reproduced"  # not beyond noise


def test_fit_and_surface_sentences_follow_the_numbers():
    tight = {"resnet": flat(5.0, 5.0, 0.0, center=0.01), "vit": flat(1.0, 1.0, 0.75, center=1.5)}
    loose = {"resnet": flat(1.0, 1.0, 0.0, center=1.9), "vit": flat(5.0, 5.0, 0.0, center=2.0)}
    assert "The NLL of the ResNet is at most" in report.fit_reading(tight, ROLES, 10, ch.PAPER)
    assert "Neither model" in report.fit_reading(loose, ROLES, 10, ch.PAPER)
    text = report.surface_reading(tight, ROLES, 8)
    assert "the ViT's mean rise (1) is lower than the ResNet's (5)" in text
    assert "most of them for the ViT (6 of 8)" in text and "none of them for the ResNet" in text
    assert "is higher than the ResNet's" in report.surface_reading(loose, ROLES, 8)


def test_deep_dive_sentences_follow_the_numbers():
    sharp, gentle = numbers(SHARP), numbers(ONE_NEGATIVE)
    assert "the same way" in deep_report.ape_reading({"resnet": sharp, "vit": gentle}, ROLES)
    odd = dataclasses.replace(gentle, ape=1000.0)
    assert "differently" in deep_report.ape_reading({"resnet": sharp, "vit": odd}, ROLES)
    assert "Training lowers the ViT's" in deep_report.init_reading(100.0, 1.0, 10.0)
    assert "Training raises the ViT's" in deep_report.init_reading(1.0, 100.0, 10.0)
    tokens = deep_report.token_reading({"cls": 0.4, "patches": 1.0}, {"cls": 0.01, "patches": 1.0})
    assert "100× as much" in tokens and "a factor 2.5" in tokens

    def result(values: list[float], n_hvp: int) -> EigenResult:
        return EigenResult(torch.tensor(values, dtype=torch.float64), None, n_hvp, True)

    solvers = {
        "LA": result([5.0, 2.0], 8),
        "SA": result([-6.0, -1.0], 20),
        "LM": result([-6.0, 5.1], 12),
        "LM from ends": result([-6.0, 5.0], 28),
    }
    text = deep_report.solver_reading(solvers)
    assert "1 of the 2 largest magnitudes is negative" in text and "at most 2%" in text
    assert "LM from ends 28" in text
    top = torch.tensor([[5.0], [4.0]])
    check = deep_report.maxima_check({"ViT": (top, torch.tensor([[5.0, -1.0], [4.4, 2.0]]))})
    assert "10% for the ViT" in check

    def directions(shares: list[float]) -> BatchSpectra:
        composition = torch.tensor([shares, shares], dtype=torch.float64)
        spectra = spectrum([[1.0], [1.0]], which="LA")
        return dataclasses.replace(spectra, composition=composition, groups=["a", "b", "c", "d"])

    text = deep_report.composition_reading(
        {"even": directions([0.18, 0.17, 0.16, 0.49]), "one": directions([0.9, 0.05, 0.03, 0.02])}
    )
    assert "- even: d 49%, a 18%, b 17%; d holds about half of it." in text
    assert "- one: a 90%, b 5%, c 3%; a holds most of it." in text
    spread = deep_report.composition_reading({"flat": directions([0.25, 0.2, 0.2, 0.35])})
    assert "holds under half of it" in spread
    thin = deep_report.composition_reading({"thin": directions([0.18, 0.17, 0.16, 0.15])})
    assert "a holds a small part of it." in thin


def test_steps_are_registered():
    steps = precompute_steps()
    assert {
        "ch02_loss_landscape.hessian_spectra",
        "ch02_loss_landscape.loss_surfaces",
        "ch02b_hessian_deep_dive.sharpest_directions",
        "ch02b_hessian_deep_dive.solver_results",
    } <= set(steps)


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


@pytest.fixture
def micro_profile():
    """The smoke profile cut to a few images, with k = 2: every code path runs in seconds."""
    smoke = get_profile("smoke")
    return dataclasses.replace(
        smoke,
        name="micro",
        n_train=32,
        n_test=16,
        train=dataclasses.replace(smoke.train, batch_size=16),
        data_fractions=(0.5, 1.0),
        hessian=dataclasses.replace(smoke.hessian, batches=1, batch_size=8, k=2, max_iter=4),
        landscape=dataclasses.replace(smoke.landscape, points=3),
    )


def fail(*args, **kwargs):
    pytest.fail("recomputed")


def test_tiny_end_to_end_cached_and_plotted(micro_profile, monkeypatch):
    calls = []
    spy = course_lib.analysis.spectra.batch_spectra

    def recording(*args, **kwargs):
        calls.append(kwargs)
        return spy(*args, **kwargs)

    monkeypatch.setattr(ch, "batch_spectra", recording)
    spectra = ch.hessian_spectra(micro_profile)
    monkeypatch.undo()
    labels = [r.label for r in ch.spectrum_runs(micro_profile)]
    assert list(spectra) == labels == ["resnet_tiny", "vit_tiny", "vit_tiny (50% data)"]
    # the paper's NEP: the top-k by |λ|, exactly, from the two ends; λ_max with its eigenvector
    assert [c["which"] for c in calls] == ["LM", "LA"] * 3
    assert all(c.get("from_ends") or c.get("composition") for c in calls)
    for s in spectra.values():
        assert s.magnitude.eigenvalues.shape == (1, 2) and s.top.eigenvalues.shape == (1, 1)
        magnitudes = s.magnitude.eigenvalues.abs()
        assert torch.all(magnitudes[:, 0] >= magnitudes[:, 1])
    surfaces = ch.loss_surfaces(micro_profile)
    assert surfaces["vit_tiny"].surface.loss.shape == (3, 3)
    assert len(surfaces["vit_tiny"].curvature) == ch.CURVATURE_DIRECTIONS
    assert len(ch.comparisons(micro_profile)) == 5
    text = ch.chapter_text(micro_profile)
    assert set(text) == {"c3", "fit", "c4", "surfaces", "verdicts"}
    assert "ViT on 50% of the data" in text["c4"]
    costs = report.spectra_costs({k: (v.magnitude, v.top) for k, v in spectra.items()})
    assert "vit_tiny (50% data)    LM" in costs and costs.count("converged") == 6
    # the deep dive
    directions = dive.sharpest_directions(micro_profile)
    assert list(directions) == ["resnet_tiny", "vit_tiny", "resnet_tiny (init)", "vit_tiny (init)"]
    assert torch.equal(directions["vit_tiny"].eigenvalues, spectra["vit_tiny"].top.eigenvalues)
    assert directions["vit_tiny (init)"].composition.shape[0] == 1
    results = dive.solver_results(micro_profile)
    assert list(results) == ["LA", "SA", "LM", "LM from ends"]
    vit = spectra["vit_tiny"].magnitude
    i = dive.solver_batch(vit)
    assert torch.equal(results["LM from ends"].eigenvalues, vit.eigenvalues[i])
    assert set(dive.deep_dive_text(micro_profile)) == {
        "solvers", "check", "ape", "init", "composition", "tokens"
    }  # fmt: skip
    # everything comes from the cache now: no training, no analysis
    monkeypatch.setattr(course_lib.analysis.spectra, "hessian_eigenvalues", fail)
    monkeypatch.setattr(course_lib.analysis.spectra, "largest_magnitude_eigenvalues", fail)
    monkeypatch.setattr(dive, "hessian_eigenvalues", fail)
    monkeypatch.setattr(ch, "loss_surface_2d", fail)
    again = ch.hessian_spectra(micro_profile)
    assert torch.equal(again["vit_tiny"].magnitude.eigenvalues, vit.eigenvalues)
    ch.loss_surfaces(micro_profile)
    dive.sharpest_directions(micro_profile)
    dive.solver_results(micro_profile)
    monkeypatch.undo()
    # the figures draw from these results
    lmax = {k: report.batch_maxima(v.magnitude.eigenvalues, v.top.eigenvalues)
            for k, v in spectra.items()}  # fmt: skip
    landscape_spectra.plot_eigenvalue_strips(lmax)
    magnitudes = {k: v.magnitude for k, v in spectra.items()}
    landscape_spectra.plot_spectrum_histograms({k: v.eigenvalues for k, v in magnitudes.items()})
    neps = {k: n.nep for k, n in ch.spectrum_summaries(micro_profile).items()}
    landscape_spectra.plot_nep_intervals(neps)
    landscape_spectra.plot_solver_results(results)
    landscape_spectra.plot_eigenvector_composition(directions)
    landscape_chapter.plot_curves_1d({k: v.curves for k, v in surfaces.items()})
    landscape_chapter.plot_contours({k: v.surface for k, v in surfaces.items()})
    surface_explorer(surfaces, interactive=False)
    surface_explorer(surfaces, interactive=True)
    plt.close("all")
    scales = dive.vit_token_scales(micro_profile)
    assert set(scales) == {"init", "trained"} and set(scales["init"]) == {"cls", "patches"}


def test_protocol_names_the_loss_the_batches_and_the_ranking():
    text = ch.protocol("smoke")
    assert "no weight-decay term" in text and "mini-batches of 16" in text
    assert "by |λ|" in text
