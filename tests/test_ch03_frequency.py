"""Chapter 03's analyses (per-block changes, cue reliance, the paper box) and its widget.

Per-block changes live in :mod:`course_lib.analysis.depth_profiles`, the prose and the box in
:mod:`course_lib.report.frequency`; the chapter module holds the cached steps.
"""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")

import ipywidgets  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from course_lib.analysis import depth_profiles as dp  # noqa: E402
from course_lib.analysis.features import FeatureMap  # noqa: E402
from course_lib.analysis.fourier import FourierProfile, fourier_profile, frequencies  # noqa: E402
from course_lib.analysis.robustness import NoiseSweep  # noqa: E402
from course_lib.analysis.variance import VarianceProfile, variance_profile  # noqa: E402
from course_lib.chapters import ch03_frequency as ch  # noqa: E402
from course_lib.chapters import precompute_steps  # noqa: E402
from course_lib.config import get_profile  # noqa: E402
from course_lib.data import CUES  # noqa: E402
from course_lib.experiments import TrainedModel  # noqa: E402
from course_lib.images import box_blur  # noqa: E402
from course_lib.models import create_model  # noqa: E402
from course_lib.plots import frequency_chapter as fp  # noqa: E402
from course_lib.report import frequency as report  # noqa: E402
from course_lib.samples import evaluation_images  # noqa: E402
from course_lib.steps import decode, encode  # noqa: E402
from course_lib.train import History  # noqa: E402
from course_lib.widgets import WIDGETS_ENV  # noqa: E402
from course_lib.widgets.frames import FrameSlider  # noqa: E402
from course_lib.widgets.frequency import noise_explorer  # noqa: E402


@pytest.fixture(autouse=True)
def _clean(monkeypatch):
    monkeypatch.delenv(WIDGETS_ENV, raising=False)
    yield
    plt.close("all")


def _hand_profile(kinds, sizes, last, *, slope=-2.0) -> FourierProfile:
    """Δ curves that fall linearly (``slope · f``) except the last point, set to ``last[i]``."""
    delta, freqs = [], []
    for size, value in zip(sizes, last, strict=True):
        f = frequencies(size // 2 + 1, size)
        d = slope * f
        d[-1] = value
        delta.append(d)
        freqs.append(f)
    n = len(kinds)
    return FourierProfile(
        names=[f"b{i}" for i in range(n)],
        kinds=list(kinds),
        depth=torch.linspace(0, 1, n),
        delta=delta,
        frequencies=freqs,
        sizes=list(sizes),
        high_frequency=torch.tensor(last, dtype=torch.float32),
    )


def test_box_blur_block_lowers_high_frequency_by_log_9() -> None:
    # A 3x3 circular box blur multiplies the (π, π) bin by (1/3)² and keeps DC: Δ drops by log 9.
    x = torch.randn(4, 8, 16, 16, generator=torch.Generator().manual_seed(0))
    maps = [FeatureMap("in", "embed", x), FeatureMap("blur", "msa", box_blur(x, 3))]
    (change,) = dp.high_frequency_changes(FourierProfile.from_feature_maps(maps))
    assert change.kind == "msa" and change.category == "MSA" and not change.downsamples
    assert change.change == pytest.approx(-math.log(9), abs=1e-3)


def test_downsampling_is_compared_at_the_same_physical_frequency() -> None:
    # Input 16x16 falls as -2f; output 8x8 ends at -1.0 = the input's value at ½π: no change.
    profile = _hand_profile(["stem", "conv", "conv"], [16, 8, 8], [-2.0, -1.0, -0.4])
    first, second = dp.high_frequency_changes(profile, "net")
    assert first.downsamples and first.category == dp.DOWNSAMPLING
    assert first.before == pytest.approx(-1.0) and first.change == pytest.approx(0.0, abs=1e-6)
    assert not second.downsamples and second.change == pytest.approx(0.6)
    assert first.model == "net" and second.name == "b2"


def test_tilt_ignores_a_change_of_the_mean() -> None:
    # Adding a constant lowers Δ at every frequency relative to DC, but leaves the tilt alone.
    x = torch.randn(4, 8, 16, 16, generator=torch.Generator().manual_seed(0))
    maps = [FeatureMap("in", "embed", x), FeatureMap("shift", "msa", x + 5.0)]
    profile = FourierProfile.from_feature_maps(maps)
    (dc,) = dp.high_frequency_changes(profile)
    (tilt,) = dp.high_frequency_changes(profile, reference="lowest")
    assert dc.change < -1.0
    assert tilt.change == pytest.approx(0.0, abs=1e-4)
    # A blur tilts the spectrum: the top falls more than the lowest frequency.
    maps = [FeatureMap("in", "embed", x), FeatureMap("blur", "msa", box_blur(x, 3))]
    (blur,) = dp.high_frequency_changes(FourierProfile.from_feature_maps(maps), reference="lowest")
    expected = -math.log(9) - 2 * math.log((1 + 2 * math.cos(math.pi / 8)) / 3)
    assert blur.change == pytest.approx(expected, abs=1e-3)
    with pytest.raises(ValueError, match="reference"):
        dp.high_frequency_changes(profile, reference="mean")


def test_variance_changes_and_means_by_kind() -> None:
    profile = VarianceProfile(
        names=["e", "a", "m", "c"],
        kinds=["embed", "msa", "mlp", "conv"],
        depth=torch.linspace(0, 1, 4),
        values=torch.tensor([1.0, 0.5, 2.0, 3.0]),
    )
    changes = dp.variance_changes(profile, sizes=[8, 8, 8, 4])
    assert [c.change for c in changes] == pytest.approx([-50.0, 300.0, 50.0])
    assert [c.category for c in changes] == ["MSA", "MLP", dp.DOWNSAMPLING]
    assert dp.mean_change_by_kind(changes) == pytest.approx(
        {"MSA": -50.0, "MLP": 300.0, dp.DOWNSAMPLING: 50.0}
    )


@pytest.mark.parametrize("name", ["resnet_tiny", "vit_tiny", "alternet_tiny"])
def test_one_pass_gives_both_profiles(name: str) -> None:
    torch.manual_seed(0)
    model = create_model(name)
    x = torch.randn(4, 3, 32, 32)
    analysis = dp.analyse_feature_maps(model, x)
    expected_f, expected_v = fourier_profile(model, x), variance_profile(model, x)
    assert analysis.fourier.names == expected_f.names == analysis.variance.names
    torch.testing.assert_close(analysis.fourier.high_frequency, expected_f.high_frequency)
    torch.testing.assert_close(analysis.variance.values, expected_v.values)
    again = decode(encode(analysis))  # as the cache stores and loads it
    torch.testing.assert_close(again.fourier.high_frequency, analysis.fourier.high_frequency)
    assert isinstance(again, dp.FeatureAnalysis) and again.fourier.sizes == analysis.fourier.sizes


def _sweep(drop_low: float, drop_high: float) -> NoiseSweep:
    drop = torch.tensor([[drop_low, drop_high]], dtype=torch.float64)
    return NoiseSweep(
        centers=torch.tensor([0.1, 0.9]),
        magnitudes=torch.tensor([0.5]),
        width=0.1,
        clean_accuracy=90.0,
        accuracy=90.0 - drop,
        drop=drop,
        num_samples=10,
    )


def _analysis(kinds, sizes, last, variances) -> dp.FeatureAnalysis:
    fourier = _hand_profile(kinds, sizes, last)
    variance = VarianceProfile(fourier.names, fourier.kinds, fourier.depth, torch.tensor(variances))
    return dp.FeatureAnalysis(fourier, variance)


@pytest.mark.parametrize("paper_like", [True, False])
def test_paper_comparison_verdicts_follow_the_numbers(paper_like: bool) -> None:
    profile = get_profile("smoke")
    sign = 1.0 if paper_like else -1.0
    vit = _analysis(
        ["embed", "msa", "mlp"],
        [8, 8, 8],
        [-1.0, -1.0 - 0.3 * sign, -1.0],
        [1.0, 1.0 - 0.5 * sign, 1.0],
    )
    resnet = _analysis(
        ["stem", "conv", "conv"],
        [8, 8, 8],
        [-2.0, -2.0 + 0.5 * sign, -2.0 + sign],
        [1.0, 1.0 + 0.5 * sign, 1.0 + sign],
    )
    analyses = {profile.models["vit"]: vit, profile.models["resnet"]: resnet}
    sweeps = {
        profile.models["resnet"]: _sweep(1.0, 10.0 if paper_like else 1.0),
        profile.models["vit"]: _sweep(8.0, 2.0 if paper_like else 9.0),
    }
    rows = report.paper_comparison(analyses, sweeps, profile, ch.PAPER)
    assert [r.claim[:2] for r in rows] == ["C5", "C6", "C7"]
    expected = "reproduced" if paper_like else "not reproduced"
    assert [r.verdict for r in rows] == [expected] * 3
    assert "≈ read from Fig. 8" in rows[0].paper
    assert rows[1].claim.startswith("C6 at RMS 0.5")
    assert f"resnet_tiny {10.0 if paper_like else 1.0:.1f}" in rows[1].ours
    assert "ResNet-50 12.2, ViT-Ti 6.3" in rows[1].paper  # means of Fig. 2b above ½π
    assert "nan" not in rows[0].ours  # no downsampling block: not listed


def test_prose_numbers_follow_the_signs() -> None:
    profile = get_profile("smoke")
    vit = _analysis(["embed", "msa", "mlp"], [8, 8, 8], [-1.0, -1.3, -1.0], [1.0, 0.5, 0.52])
    resnet = _analysis(["stem", "conv", "conv"], [16, 8, 8], [-2.0, -1.0, -0.5], [1, 2, 2.01])
    analyses = {profile.models["vit"]: vit, profile.models["resnet"]: resnet}
    sweeps = {profile.models["vit"]: _sweep(8.0, 2.0)}
    cues = {profile.models["vit"]: {"both": 91.2, "high": 10.4}}
    numbers = report.prose_numbers(profile, analyses, sweeps, cues)
    assert numbers["grid"] == "8×8" and numbers["points"] == "5"
    assert (numbers["f_vit_msa"], numbers["f_vit_msa_verb"]) == ("-0.30", "lower")
    assert (numbers["f_vit_mlp"], numbers["f_vit_mlp_verb"]) == ("+0.30", "raise")
    assert (numbers["v_vit_mlp"], numbers["v_vit_mlp_verb"]) == ("+4 %", "barely change")
    assert numbers["v_resnet_down"] == "+100 %" and "f_local_vit_msa" not in numbers
    assert numbers["magnitude"] == "0.5" and numbers["c6_margin"] == f"{report.C6_MARGIN:g}"
    assert (numbers["drop_vit_low"], numbers["drop_vit_high"]) == ("8.0", "2.0")
    assert "drop_resnet_high" not in numbers and numbers["clean_vit"] == "90.0"
    assert (numbers["cue_vit_both"], numbers["cue_vit_high"]) == ("91", "10")
    assert report.main_magnitude(profile) == max(profile.frequency.noise_magnitudes)
    assert report.texture_band(get_profile("gpu")) is None  # CIFAR: no texture cue


def test_c6_differences_below_the_margin_do_not_count() -> None:
    profile = get_profile("smoke")
    flat = _analysis(["embed", "msa"], [8, 8], [-1.0, -1.0], [1.0, 1.0])
    names = profile.models["resnet"], profile.models["vit"]
    near = 0.5 * report.C6_MARGIN  # the paper's pattern, but by less than the margin
    sweeps = {names[0]: _sweep(0.0, near), names[1]: _sweep(near, 0.0)}
    rows = report.paper_comparison(dict.fromkeys(names, flat), sweeps, profile, ch.PAPER)
    assert rows[1].verdict == "not reproduced"


def test_noise_explorer_static_and_interactive() -> None:
    torch.manual_seed(0)
    models = {"resnet_tiny": create_model("resnet_tiny")}
    images, labels = torch.randn(4, 3, 32, 32), torch.arange(4)
    common = dict(mean=(0.5,) * 3, std=(0.2,) * 3, classes=[f"c{i}" for i in range(10)])
    frames = noise_explorer(models, images, labels, center=0.8, **common)
    assert isinstance(frames, FrameSlider)
    assert frames.labels == ("0.10π", "0.30π", "0.50π", "0.70π", "0.80π", "0.90π")
    assert frames.labels[frames.start] == "0.80π" and len(set(frames.pngs)) == 6
    ui = noise_explorer(models, images, labels, interactive=True, **common)
    assert isinstance(ui, ipywidgets.VBox)
    controls, image = ui.children
    before = image.value
    controls.children[0].value = 0.3  # the band slider redraws the figure
    assert bytes(image.value) != bytes(before) and bytes(image.value).startswith(b"\x89PNG")


def test_chapter_figures() -> None:
    hand = _analysis(["embed", "msa", "mlp"], [8, 8, 8], [-1.0, -1.3, -1.0], [1.0, 0.5, 1.0])
    down = _analysis(["stem", "conv", "conv"], [16, 8, 8], [-2.0, -1.0, -0.5], [1.0, 2.0, 3.0])
    profiles = {"vit_tiny": hand.fourier, "resnet_tiny": down.fourier}
    open_before = plt.get_fignums()
    fig = fp.plot_fourier_curves(profiles)
    assert len(fig.axes) == 4  # two panels, two colour bars
    fig = fp.plot_high_frequency(profiles)
    assert [t.get_text() for t in fig.axes[0].texts] == ["↓2"]
    changes = dp.block_changes({"vit_tiny": hand, "resnet_tiny": down})
    fourier, variance = changes.fourier, changes.variance
    assert isinstance(fp.plot_block_changes(fourier), Figure)
    fig = fp.plot_block_changes(variance, ylabel="variance change (%)")
    labels = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert labels == ["MSA", "MLP", "Conv", "Conv ↓2"]
    assert len(fp.plot_variance_panels({"vit_tiny": hand.variance}).axes) == 1
    cues = {"vit_tiny": {c: 50.0 for c in CUES}}
    assert isinstance(fp.plot_cue_reliance(cues, chance=10.0), Figure)
    sweeps = {"vit_tiny": _sweep(1.0, 2.0), "resnet_tiny": _sweep(1.0, 5.0)}
    fig = fp.plot_noise_drops(sweeps, magnitude=0.5, cue_band=(0.4, 0.8))
    assert "texture cue band" in [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert len(fp.plot_noise_heatmaps(sweeps).axes) == 4  # two heatmaps, two colour bars
    _, axes = plt.subplots(1, 2)  # drawing into given axes returns their figure
    assert fp.plot_block_changes(fourier, ax=axes[1]) is axes[1].figure
    assert plt.get_fignums() == [*open_before, axes[0].figure.number]  # no pyplot figures


def test_cached_steps_on_untrained_models(monkeypatch, tmp_path) -> None:
    """The three steps run end to end on the synthetic data and come back from the cache."""
    profile = get_profile("smoke", n_test=32, analysis_test_images=24)
    calls = []

    def fake_trained_model(family, *, profile, image_size):
        calls.append(family)
        name = profile.models[family]
        folder = tmp_path / name
        folder.mkdir(exist_ok=True)
        torch.manual_seed(0)
        model = create_model(name, image_size=image_size).eval()
        return TrainedModel(name, model, History(), folder, 10, image_size)

    monkeypatch.setattr(ch, "trained_model", fake_trained_model)
    analyses = ch.feature_analysis(profile).models
    sweeps = ch.noise_robustness(profile).models
    cues = ch.cue_reliance(profile).models
    assert set(analyses) == set(cues) == {profile.models[f] for f in ch.FAMILIES}
    assert set(sweeps) == {profile.models[f] for f in ch.NOISE_FAMILIES}
    assert sweeps["vit_tiny"].drop.shape == (len(profile.frequency.noise_magnitudes), 2)
    assert sweeps["vit_tiny"].num_samples == 24
    assert set(cues["resnet_tiny"]) == set(CUES)
    computed = len(calls)  # models are loaded only to compute a step
    seconds = ch.step_seconds(profile)
    assert set(seconds) == {"features", "noise", "cues"}
    assert all(s >= 0 for s in seconds.values())
    again = ch.feature_analysis(profile).models  # from the cache
    assert isinstance(again["vit_tiny"], dp.FeatureAnalysis)
    torch.testing.assert_close(
        again["vit_tiny"].fourier.high_frequency, analyses["vit_tiny"].fourier.high_frequency
    )
    rows = report.paper_comparison(analyses, sweeps, profile, ch.PAPER)
    assert len(rows) == 3
    assert ch.comparisons(profile) == rows  # the same box, from the cached steps
    assert len(calls) == computed  # no model loaded again
    images, labels, info = evaluation_images(profile, cues="high")
    assert images.shape == (24, 3, 32, 32) and info.num_classes == 10


def test_steps_are_registered() -> None:
    steps = precompute_steps()
    for name in ("feature_analysis", "noise_robustness", "cue_reliance"):
        assert f"ch03_frequency.{name}" in steps


def test_cue_reliance_is_empty_without_cue_sets() -> None:
    assert ch.cue_reliance(get_profile("gpu")).models == {}
