"""Tests for chapter 02's module: known answers for the pure parts, one tiny end-to-end run."""

from __future__ import annotations

import dataclasses

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from torch import nn

from course_lib.analysis.hessian import exact_hessian, top_eigenvalues
from course_lib.analysis.landscape import (
    Surface2D,
    filter_normalized_direction_pair,
    loss_surface_1d,
    loss_surface_2d,
)
from course_lib.chapters import ch02_loss_landscape as ch
from course_lib.chapters import precompute_steps
from course_lib.config import get_profile
from course_lib.plots import landscape_chapter as plots


def small_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 3))


def small_batches(n: int = 2, size: int = 8) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(1)
    return [(torch.randn(size, 4, generator=g), torch.randint(0, 3, (size,), generator=g))
            for _ in range(n)]  # fmt: skip


def test_largest_magnitude_ranks_the_union_of_both_ends():
    largest = torch.tensor([[5.0, 2.0], [1.0, 0.5]], dtype=torch.float64)
    smallest = torch.tensor([[-3.0, -1.0], [-4.0, -0.2]], dtype=torch.float64)
    assert ch.largest_magnitude(largest, smallest).tolist() == [[5.0, -3.0], [-4.0, 1.0]]
    assert ch.largest_magnitude(largest, smallest, k=1).tolist() == [[5.0], [-4.0]]


def test_eigenvalue_spectrum_matches_the_exact_hessian_and_lm_equals_derived():
    model, batches = small_net(), small_batches()
    k = 2
    la = ch.eigenvalue_spectrum(model, batches, k=k, which="LA", tol=1e-8, composition=True)
    sa = ch.eigenvalue_spectrum(model, batches, k=k, which="SA", tol=1e-8)
    for i, batch in enumerate(batches):
        exact = torch.linalg.eigvalsh(exact_hessian(model, ch.hessian_loss, batch).double())
        assert torch.allclose(la["eigenvalues"][i], exact.flip(0)[:k], rtol=1e-4, atol=1e-6)
        assert torch.allclose(sa["eigenvalues"][i], exact[:k], rtol=1e-4, atol=1e-6)
        direct = top_eigenvalues(model, ch.hessian_loss, batch, k, which="LM", tol=1e-8)
        derived = ch.largest_magnitude(la["eigenvalues"][i : i + 1], sa["eigenvalues"][i : i + 1])
        assert torch.allclose(derived[0], direct.eigenvalues, rtol=1e-4, atol=1e-6)
    assert la["converged"].all() and la["n_hvp"].min() >= 1
    assert la["groups"] == ["0", "2"]  # nn.Sequential's layers
    assert torch.allclose(la["composition"].sum(dim=1), torch.ones(2, dtype=torch.float64))


def test_vector_composition_and_groups():
    assert ch.parameter_group("blocks.3.attn.qkv.weight") == "blocks.3"
    assert ch.parameter_group("stages.1.0.conv1.weight") == "stages.1"
    assert ch.parameter_group("patch_embed.proj.weight") == "patch_embed"
    assert ch.parameter_group("cls_token") == "cls_token"
    model = small_net()
    sizes = [p.numel() for p in model.parameters()]  # 24, 6, 18, 3
    vector = torch.zeros(sum(sizes))
    vector[sizes[0] + sizes[1] :] = 2.0  # only the second layer
    names, shares = ch.vector_composition(vector, model)
    assert names == ["0", "2"] and shares.tolist() == [0.0, 1.0]


def test_l2_term_matches_the_slow_surface_and_curvature_matches_finite_differences():
    model, batches = small_net(), small_batches()
    directions = filter_normalized_direction_pair(model, generator=torch.Generator().manual_seed(0))
    coords = np.linspace(-1.0, 1.0, 3)
    nll = loss_surface_2d(model, ch.hessian_loss, batches, directions, coords, coords)
    slow = loss_surface_2d(
        model, ch.hessian_loss, batches, directions, coords, coords, weight_decay=0.05
    )
    fast = ch.with_l2_term(nll, ch.l2_norm_grid(model, directions, coords, coords), 0.05)
    np.testing.assert_allclose(fast.loss, slow.loss, rtol=1e-5)
    assert fast.label == slow.label == "NLL + L2 (wd=0.05)"
    # dᵀHd is the second derivative of the 1-D curve at 0
    h = 1e-2
    curve = loss_surface_1d(model, ch.hessian_loss, batches, directions[0], [-h, 0.0, h])
    finite = (curve.loss[0] - 2 * curve.loss[1] + curve.loss[2]) / h**2
    exact = ch.directional_curvature(model, batches, directions[0])
    assert exact == pytest.approx(finite, rel=2e-2, abs=1e-3)


def _surface(loss: np.ndarray) -> Surface2D:
    coords = np.linspace(-1.0, 1.0, loss.shape[0])
    return Surface2D(coords, coords, loss, np.zeros_like(loss), 0.0, "NLL")


def test_surface_rise_reads_the_grid():
    xs = np.linspace(-1.0, 1.0, 3)
    loss = 1.0 + xs[None, :] ** 2 + 4 * xs[:, None] ** 2  # loss[i, j] at (xs[j], ys[i])
    surface = _surface(loss)
    assert ch.surface_rise(surface, 1.0, 0.0) == pytest.approx(1.0)
    assert ch.surface_rise(surface, 0.0, -1.0) == pytest.approx(4.0)
    assert ch.mean_unit_rise(surface) == pytest.approx(2.5)
    with pytest.raises(ValueError, match="not a grid coordinate"):
        ch.surface_rise(surface, 0.5, 0.0)


def entry(top: list[float], bottom: list[float] | None) -> dict:
    la = torch.tensor(top, dtype=torch.float64)[:, None]
    out = {"LA": la, "n_hvp": {"LA": torch.tensor([4] * len(top))}}
    if bottom is not None:
        sa = torch.tensor(bottom, dtype=torch.float64)[:, None]
        out |= {"SA": sa, "LM": ch.largest_magnitude(la, sa)}
        out["n_hvp"]["SA"] = torch.tensor([8] * len(top))
    return out


def test_spectrum_numbers():
    n = ch.spectrum_numbers(entry([10.0, 2.0, 4.0], [-1.0, -3.0, 0.5]))
    # LM per batch: 10, -3, 4 -> one negative of three; positive mean (10 + 4) / 2
    assert n["nep"] == pytest.approx(1 / 3) and n["ape"] == pytest.approx(7.0)
    assert n["median_max"] == 4.0 and n["median_min"] == -1.0
    assert n["neg_ratio"] == pytest.approx(0.1)  # ratios 0.1, 1.5, 0 -> median 0.1
    assert n["hvp"] == 6.0 and n["k"] == 1
    init = ch.spectrum_numbers(entry([1.0, 3.0], None))
    assert init["median_max"] == 1.0 and np.isnan(init["nep"])


@pytest.mark.parametrize("paper_like", [True, False])
def test_verdicts_follow_the_numbers(paper_like):
    sharp = ch.spectrum_numbers(entry([100.0] * 3, [-0.01] * 3))  # ResNet in the paper
    nonconvex = ch.spectrum_numbers(entry([10.0] * 3, [-20.0, -5.0, -20.0]))  # ViT
    worse = ch.spectrum_numbers(entry([10.0] * 3, [-30.0] * 3))  # ViT on small data
    sharper = ch.spectrum_numbers(entry([100.0] * 3, [-0.001] * 3))
    if paper_like:
        numbers = {"resnet": sharp, "vit": nonconvex, "vit small": worse}
    else:
        numbers = {"resnet": nonconvex, "vit": sharp, "vit small": sharper}
    flat = {"nll": 1.0, "nll_l2": 2.0, "mean": 1.0, "curvature": 1.0, "negative_directions": 0.5}
    steep = {"nll": 10.0, "nll_l2": 20.0, "mean": 10.0, "curvature": 10.0, "negative_directions": 0}
    flatness = {"resnet": steep, "vit": flat} if paper_like else {"resnet": flat, "vit": steep}
    rows = ch.paper_comparison(
        numbers, flatness, resnet="resnet", vit="vit", vit_small="vit small", weight_decay=0.05
    )
    assert [r.claim[:2] for r in rows] == ["C3", "C3", "C3", "C4", "C4", "C4"]
    expected = "reproduced" if paper_like else "not reproduced"
    assert [r.verdict for r in rows] == [expected] * 6


def test_times_phrase():
    assert ch._times(1.0, 4.0) == "4.0× smaller than"
    assert ch._times(30.0, 1.0) == "30× larger than"
    assert ch._times(1.0, 1.1) == "about as large as"


def test_training_batches_are_fixed_and_leave_the_rng_alone():
    profile = get_profile("smoke", n_train=64, n_test=16)
    state = torch.random.get_rng_state()
    first = ch.training_batches(profile, batch_size=8, n_batches=2, fraction=0.5)
    assert torch.equal(torch.random.get_rng_state(), state)
    second = ch.training_batches(profile, batch_size=8, n_batches=2, fraction=0.5)
    assert all(
        torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
        for a, b in zip(first, second, strict=True)
    )
    with pytest.raises(ValueError, match="gives only"):
        ch.training_batches(profile, batch_size=8, n_batches=100, fraction=0.5)


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


def test_tiny_end_to_end_cached_and_plotted(micro_profile, monkeypatch):
    spectra = ch.hessian_spectra(micro_profile)
    labels = [r.label for r in ch.spectrum_runs(micro_profile)]
    assert list(spectra) == labels == [
        "resnet_tiny", "vit_tiny", "vit_tiny (50% data)", "resnet_tiny (init)", "vit_tiny (init)",
    ]  # fmt: skip
    assert spectra["vit_tiny"]["LM"].shape == (1, 1) and "SA" not in spectra["vit_tiny (init)"]
    assert spectra["vit_tiny"]["n_hvp"]["SA"].max() <= 4
    surfaces = ch.loss_surfaces(micro_profile)
    assert surfaces["vit_tiny"]["surface"].loss.shape == (3, 3)
    assert surfaces["vit_tiny"]["curves"][0].loss.shape == (5,)
    rows = ch.comparisons(micro_profile)
    assert len(rows) == 6
    assert len(surfaces["vit_tiny"]["curvature"]) == ch.CURVATURE_DIRECTIONS
    prose = ch.prose_numbers(spectra, surfaces, micro_profile)
    assert prose["small_fraction"] == "50%" and prose["n_batches"] == "1"
    # everything comes from the cache now: no training, no analysis
    monkeypatch.setattr(ch, "top_eigenvalues", lambda *a, **k: pytest.fail("recomputed"))
    monkeypatch.setattr(ch, "loss_surface_2d", lambda *a, **k: pytest.fail("recomputed"))
    again = ch.hessian_spectra(micro_profile)
    assert torch.equal(again["vit_tiny"]["LA"], spectra["vit_tiny"]["LA"])
    ch.loss_surfaces(micro_profile)
    # the chapter's figures draw from these results
    trained = {k: v for k, v in spectra.items() if "SA" in v}
    plots.plot_eigenvalue_strips({k: v["LA"] for k, v in spectra.items()})
    plots.plot_negative_curvature(trained)
    plots.plot_eigenvector_composition(trained)
    plots.plot_curves_1d({k: v["curves"] for k, v in surfaces.items()})
    plots.plot_contours({k: v["surface"] for k, v in surfaces.items()})
    ch.surface_explorer(surfaces, interactive=False)
    ch.surface_explorer(surfaces, interactive=True)
    plt.close("all")
    model = ch.shared_run(micro_profile, "vit").model
    scales = ch.token_scales(model, torch.zeros(2, 3, 32, 32))
    assert set(scales) == {"cls", "patches"}
    assert ch.token_scales(ch.shared_run(micro_profile, "resnet").model, torch.zeros(1)) == {}


def test_protocol_names_the_loss_and_batches():
    text = ch.protocol("smoke")
    assert "no weight-decay term" in text and "mini-batches of 16" in text
