"""Chapter 03's analyses (per-block changes, cue reliance, the paper box), its figures, its data
and its widget.

Per-block changes live in :mod:`course_lib.analysis.depth_profiles`, the tests and the box in
:mod:`course_lib.report.frequency` (the sentences: ``tests/test_frequency_prose.py``); the
chapter module holds the cached steps.
"""

from __future__ import annotations

import dataclasses
import math

import matplotlib

matplotlib.use("Agg")

import ipywidgets  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from scipy import stats  # noqa: E402

from course_lib.analysis import depth_profiles as dp  # noqa: E402
from course_lib.analysis.features import FeatureMap  # noqa: E402
from course_lib.analysis.fourier import FourierProfile, fourier_profile  # noqa: E402
from course_lib.analysis.robustness import split_drops  # noqa: E402
from course_lib.analysis.variance import VarianceProfile, variance_profile  # noqa: E402
from course_lib.cache import CACHE_ENV  # noqa: E402
from course_lib.chapters import ch03_frequency as ch  # noqa: E402
from course_lib.chapters import precompute_steps  # noqa: E402
from course_lib.config import get_profile  # noqa: E402
from course_lib.data import CUES, SyntheticConfig  # noqa: E402
from course_lib.experiments import TrainedModel, trained_model  # noqa: E402
from course_lib.images import box_blur  # noqa: E402
from course_lib.models import create_model  # noqa: E402
from course_lib.plots import frequency_chapter as fp  # noqa: E402
from course_lib.report import frequency as report  # noqa: E402
from course_lib.report.frequency_prose import filter_reading as prose_filter_reading  # noqa: E402
from course_lib.steps import decode, encode  # noqa: E402
from course_lib.train import History  # noqa: E402
from course_lib.widgets import WIDGETS_ENV  # noqa: E402
from course_lib.widgets.frames import FrameSlider  # noqa: E402
from course_lib.widgets.frequency import noise_explorer  # noqa: E402
from tests.frequency_inputs import analysis, hand_profile, paper_like, sweep  # noqa: E402


@pytest.fixture(autouse=True)
def _clean(monkeypatch):
    monkeypatch.delenv(WIDGETS_ENV, raising=False)
    yield
    plt.close("all")


def test_box_blur_block_lowers_high_frequency_by_log_9() -> None:
    # A 3x3 circular box blur multiplies the (π, π) bin by (1/3)² and keeps DC: Δ drops by log 9.
    x = torch.randn(4, 8, 16, 16, generator=torch.Generator().manual_seed(0))
    maps = [FeatureMap("in", "embed", x), FeatureMap("blur", "msa", box_blur(x, 3))]
    (change,) = dp.high_frequency_changes(FourierProfile.from_feature_maps(maps))
    assert change.kind == "msa" and change.category == "MSA" and not change.downsamples
    assert change.change == pytest.approx(-math.log(9), abs=1e-3)


def test_downsampling_is_compared_at_the_same_physical_frequency() -> None:
    # Input 16x16 falls as -2f; output 8x8 ends at -1.0 = the input's value at ½π: no change.
    profile = hand_profile(["stem", "conv", "conv"], [16, 8, 8], [-2.0, -1.0, -0.4])
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


def _pair(profile, sign: float = 1.0) -> dict[str, dp.FeatureAnalysis]:
    vit, resnet = paper_like(sign)
    models = report.chapter_models(profile)
    return {models["vit"]: vit, models["resnet"]: resnet}


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_paper_comparison_verdicts_follow_the_numbers(sign: float) -> None:
    profile = get_profile("smoke")
    models = report.chapter_models(profile)
    sweeps = {
        models["resnet"]: [sweep(1.0, 10.0 if sign > 0 else 1.0)],
        models["vit"]: [sweep(8.0, 2.0 if sign > 0 else 9.0)],
    }
    batches = {name: [[a]] for name, a in _pair(profile, sign).items()}
    rows = report.paper_comparison(batches, sweeps, profile, ch.PAPER, chance=10.0)
    assert [r.claim[:2] for r in rows] == ["C5", "C6", "C7"]
    expected = "reproduced" if sign > 0 else "not reproduced"  # reversed: "not reproduced"
    assert [r.verdict for r in rows] == [expected] * 3
    assert "≈ read from Fig. 8" in rows[0].paper
    assert rows[1].claim.startswith(f"C6 at RMS {report.main_magnitude(profile):g}")
    high = 10.0 if sign > 0 else 1.0  # the ResNet's high-band drop, as a share of 90 − 10
    shares = f"{report.percent(high / 80)} vs. {report.percent(1 / 80)}"
    assert f"{models['resnet']} {shares}" in rows[1].ours
    assert "ResNet-50 above ½π 12.2 vs. below 9.3" in rows[1].paper  # means of Fig. 2b
    assert "n/a" not in rows[0].ours


def test_filter_verdicts_pool_the_kinds_and_skip_downsampling() -> None:
    profile = get_profile("smoke")
    # MSA below Conv but the MLP lowers too: "partly". The ResNet's downsampling block, which
    # would pull the Conv mean below the MSA's, is left out.
    vit = analysis(["embed", "msa", "mlp"], [8, 8, 8], [-1.0, -1.3, -1.4], [1.0, 0.5, 0.4])
    resnet = analysis(["stem", "conv", "conv"], [16, 16, 8], [-2.0, -1.8, -5.0], [1, 2, 0.1])
    models = report.chapter_models(profile)
    analyses = {models["vit"]: vit, models["resnet"]: resnet}
    changes = dp.block_changes(analyses)
    means = report.kind_means(changes.fourier, analyses)
    assert means == pytest.approx({"msa": -0.3, "mlp": -0.1, "conv": 0.2})
    batches = {name: [[a]] for name, a in analyses.items()}
    c5, c7 = report.paper_comparison(batches, {}, profile, ch.PAPER, chance=10.0)
    assert (c5.verdict, c7.verdict) == ("partly", "partly")  # no sweeps: no C6 row
    only_vit = report.kind_means(changes.fourier, [models["vit"]])
    assert math.isnan(only_vit["conv"]) and "mlp" in only_vit


def test_c7_counts_a_sign_only_beyond_its_interval_over_test_batches() -> None:
    profile = get_profile("smoke")
    vit, resnet = (report.chapter_models(profile)[f] for f in ("vit", "resnet"))
    conv = analysis(["stem", "conv"], [8, 8], [-2.0, -1.5], [1.0, 2.0])  # Conv: +100 %
    # The MSA lowers the variance by 10 % on one batch and raises it by 2 % on the other
    vits = [
        analysis(["embed", "msa", "mlp"], [8, 8, 8], [-1.0, -1.3, -1.0], [1.0, v, 1.2])
        for v in (0.9, 1.02)
    ]
    changes = report.kind_changes({vit: [vits], resnet: [[conv, conv]]}, [vit, resnet], "variance")
    msa = changes["msa"]
    assert msa.mean == pytest.approx(-4.0) and msa.batches == 2
    half = stats.t.ppf(0.975, 1) * np.std([-10.0, 2.0], ddof=1) / np.sqrt(2)
    assert msa.interval == pytest.approx((-4.0 - half, -4.0 + half))
    assert changes["conv"].interval == pytest.approx((100.0, 100.0))  # the same on both
    assert report.change_verdict(changes) == "partly"  # negative on average, not beyond doubt
    one_batch = report.kind_changes({vit: [vits[:1]], resnet: [[conv]]}, [vit, resnet], "variance")
    assert one_batch["msa"].interval is None and report.change_verdict(one_batch) == "reproduced"
    reading = prose_filter_reading(changes, report.VARIANCE)
    assert "MSA (-4 % [" in reading and "its interval over the test batches reaches" in reading
    assert 'verdict "partly"' in reading and "25× smaller than the Conv change" in reading


def test_a_sign_counts_only_if_it_holds_at_every_seed() -> None:
    profile = get_profile("smoke")
    vit, resnet = (report.chapter_models(profile)[f] for f in ("vit", "resnet"))
    conv = analysis(["stem", "conv"], [8, 8], [-2.0, -1.5], [1.0, 2.0])  # Conv: +100 %

    def vits(*msa_variances: float) -> list[dp.FeatureAnalysis]:
        return [
            analysis(["embed", "msa", "mlp"], [8, 8, 8], [-1.0, -1.3, -1.0], [1.0, v, 1.2])
            for v in msa_variances
        ]

    # seed 0: the MSA lowers the variance by 9-11 %; seed 1: it raises it by 1-3 %
    batches = {vit: [vits(0.9, 0.89, 0.91), vits(1.01, 1.02, 1.03)], resnet: [[conv] * 3] * 2}
    changes = report.kind_changes(batches, [vit, resnet], "variance")
    msa = changes["msa"]
    assert msa.seed_means == pytest.approx((-10.0, 2.0)) and msa.mean == pytest.approx(-4.0)
    assert msa.interval[0] < -10.0 and msa.interval[1] > 2.0  # the hull of both seeds
    assert report.change_verdict(changes) == "partly"
    one_seed = report.kind_changes({vit: batches[vit][:1], resnet: [[conv] * 3]}, [vit, resnet],
                                   "variance")  # fmt: skip
    assert report.change_verdict(one_seed) == "reproduced"
    assert "(seeds -10 %, +2 %)" in report.change_text(msa, report.VARIANCE)


def test_normalized_band_drops() -> None:
    # clean 90 %, chance 10 %: 80 points above chance; drops of 8 and 40 points are 10 % and 50 %.
    drops = report.normalized_band_drops(sweep(8.0, 40.0), chance=10.0)
    assert (drops.low, drops.high, drops.magnitude) == pytest.approx((0.1, 0.5, 0.5))
    at_chance = report.normalized_band_drops(sweep(1.0, 2.0, clean=10.0), chance=10.0)
    assert math.isnan(at_chance.low) and math.isnan(at_chance.high)
    # a model at chance cannot be tested: not reproduced, whatever the other model does
    assert report.c6_verdict([at_chance], [drops]) == "not reproduced"
    vit = report.normalized_band_drops(sweep(8, 4), 10)
    assert report.c6_verdict([drops], [vit]) == "reproduced"
    assert report.c6_verdict([drops], [drops]) == "partly"  # the ViT's loss high-frequency too
    assert report.c6_verdict([drops, drops], [vit, drops]) == "partly"  # not at every seed


def test_the_papers_own_drops_pass_the_declared_c6_test() -> None:
    resnet, vit = (split_drops(curve.x, curve.values) for curve in ch.PAPER_FIG2B)
    assert [curve.family for curve in ch.PAPER_FIG2B] == ["resnet", "vit"]
    assert report.c6_verdict([resnet], [vit]) == "reproduced"
    assert report.c6_verdict([vit], [resnet]) == "not reproduced"  # swapped


def test_the_chapter_trains_on_its_own_data(monkeypatch, tmp_path) -> None:
    """``frequency.synthetic`` / ``.epochs`` give chapter 03 models of their own."""
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    shared = get_profile("smoke", n_train=64, n_test=32)
    own_data = SyntheticConfig(high_cue=0.2, background=0.1)
    frequency = dataclasses.replace(shared.frequency, synthetic=own_data, epochs=2)
    own = dataclasses.replace(shared, frequency=frequency)
    smoke = shared.frequency_profile()  # smoke: the shared data, its own (post-act.) ResNet
    assert (smoke.synthetic, smoke.train) == (shared.synthetic, shared.train)
    calls = []

    def recording(family, *, profile, image_size, seed=0):
        calls.append((family, profile))
        return trained_model(family, profile=profile, image_size=image_size, seed=seed)

    monkeypatch.setattr(ch, "trained_model", recording)
    runs = ch.trained_runs(own, families=("resnet",))
    assert [(f, p.synthetic, p.train.epochs) for f, p in calls] == [("resnet", own_data, 2)]
    shared_run = trained_model("resnet", profile=shared)
    assert runs["resnet"].folder != shared_run.folder  # another trained-model key
    assert len(runs["resnet"].history.epoch) == 2 and len(shared_run.history.epoch) == 1
    images = ch.evaluation_set(own)[0]
    assert images.shape[0] == 32  # noise_images None: the whole test set
    assert not torch.equal(images, ch.evaluation_set(shared)[0])  # the chapter's own data


@pytest.mark.parametrize("name", ["smoke", "laptop", "gpu"])
def test_the_chapter_reads_a_post_activation_resnet_and_the_shared_vits(name) -> None:
    """The paper's Fig. 8 and 9 ResNets are post-activation; every other family is shared."""
    profile = get_profile(name)
    models = profile.frequency_profile().models
    assert not create_model(models["resnet"]).config.preact
    assert create_model(profile.models["resnet"]).config.preact  # chapters 01, 02, 04
    assert {f: n for f, n in models.items() if f != "resnet"} == {
        f: n for f, n in profile.models.items() if f != "resnet"
    }


def test_texture_band_and_describe_data_follow_the_chapters_data() -> None:
    laptop = get_profile("laptop")
    r0, r1 = laptop.frequency.synthetic.texture_frequency
    assert report.texture_band(laptop) == pytest.approx((r0 / math.sqrt(2), r1))
    text = report.describe_data(laptop)
    epochs = laptop.frequency_profile().train.epochs
    assert f"{epochs} epochs" in text and "Models trained for this chapter" in text
    smoke = report.describe_data(get_profile("smoke"))
    assert "shared data and recipe" in smoke and "resnet_post_tiny for the resnet" in smoke
    assert "resnet_post_mini for the resnet (shared: resnet_mini)" in text
    assert report.texture_band(get_profile("gpu")) is None  # CIFAR: no texture cue


def test_chapter_figures() -> None:
    hand = analysis(["embed", "msa", "mlp"], [8, 8, 8], [-1.0, -1.3, -1.0], [1.0, 0.5, 1.0])
    down = analysis(["stem", "conv", "conv"], [16, 8, 8], [-2.0, -1.0, -0.5], [1.0, 2.0, 3.0])
    profiles = {"vit_tiny": hand.fourier, "resnet_tiny": down.fourier}
    open_before = plt.get_fignums()
    fig = fp.plot_fourier_curves(profiles)
    assert len(fig.axes) == 4  # two panels, two colour bars
    fig = fp.plot_high_frequency(profiles)
    assert len(fig.axes) == 1 and [t.get_text() for t in fig.axes[0].texts] == ["↓2"]
    changes = dp.block_changes({"vit_tiny": hand, "resnet_tiny": down})
    fourier, variance = changes.fourier, changes.variance
    assert isinstance(fp.plot_block_changes(fourier), Figure)
    fig = fp.plot_block_changes(variance, ylabel="variance change (%)")
    labels = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert labels == ["MSA", "MLP", "Conv", "Conv ↓2"]
    assert len(fp.plot_variance_panels({"vit_tiny": hand.variance}).axes) == 1
    cues = {"vit_tiny": {c: 50.0 for c in CUES}}
    assert isinstance(fp.plot_cue_reliance(cues, chance=10.0), Figure)
    sweeps = {"vit_tiny": sweep(1.0, 2.0), "resnet_tiny": sweep(1.0, 5.0, clean=10.0)}
    assert len(fp.plot_noise_heatmaps(sweeps, chance=10.0).axes) == 4  # heatmaps, colour bars
    _, axes = plt.subplots(1, 2)  # drawing into given axes returns their figure
    assert fp.plot_block_changes(fourier, ax=axes[1]) is axes[1].figure
    assert plt.get_fignums() == [*open_before, axes[0].figure.number]  # no pyplot figures


def test_the_papers_figures_sit_beside_ours() -> None:
    vit, resnet = paper_like()
    profiles = {"vit_tiny": vit.fourier, "resnet_tiny": resnet.fourier}
    fig = fp.plot_high_frequency(profiles, paper=ch.PAPER_FIG8)
    ours, paper = fig.axes
    assert ours.get_title() == "This run" and "≈ read from Fig. 8" in paper.get_title()
    lines = paper.get_lines()
    assert [list(line.get_ydata()) for line in lines] == [list(c.values) for c in ch.PAPER_FIG8]
    assert len(paper.collections) == 1  # the ViT-Ti range
    sweeps = {"vit_tiny": sweep(8.0, 40.0), "resnet_tiny": sweep(1.0, 5.0)}
    fig = fp.plot_noise_drops(sweeps, cue_band=(0.4, 0.8), chance=10.0, paper=ch.PAPER_FIG2B)
    ours, twin = fig.axes
    assert "Fig. 2b" in twin.get_ylabel() and "chance" in ours.get_ylabel()
    vit_line = ours.get_lines()[0]
    assert list(vit_line.get_ydata()) == pytest.approx([10.0, 50.0])  # % of clean − chance
    assert list(twin.get_lines()[0].get_ydata()) == list(ch.PAPER_FIG2B[0].values)
    legend = [t.get_text() for t in ours.get_legend().get_texts()]
    assert "texture cue band" in legend and "ViT-Ti, paper (right axis)" in legend
    raw = fp.plot_noise_drops(sweeps)  # without chance: percentage points, no second axis
    assert len(raw.axes) == 1 and list(raw.axes[0].get_lines()[0].get_ydata()) == [8.0, 40.0]


def test_feature_batches_use_a_model_per_seed(monkeypatch, tmp_path) -> None:
    profile = get_profile("smoke", n_test=32, seeds=(0, 1))
    calls = []

    def fake_trained_model(family, *, profile, image_size, seed=0):
        calls.append((family, seed))
        torch.manual_seed(seed)  # a different model per seed
        name = profile.models[family]  # the chapter's profile (frequency_profile)
        model = create_model(name, image_size=image_size).eval()
        return TrainedModel(name, model, History(), tmp_path, 10, image_size)

    monkeypatch.setattr(ch, "trained_model", fake_trained_model)
    batches = ch.feature_batches(profile).models
    assert sorted(calls) == sorted((f, s) for f in report.FILTER_FAMILIES for s in (0, 1))
    assert [len(per_seed) for per_seed in batches.values()] == [2, 2]
    first, second = (batches["vit_tiny"][s][0].variance.values for s in (0, 1))
    assert not torch.equal(first, second)
    others = ch.seed_noise(profile).models  # C6: the second seed, at the verdict's magnitude
    assert {n: len(v) for n, v in others.items()} == {"resnet_post_tiny": 1, "vit_tiny": 1}
    assert others["vit_tiny"][0].magnitudes.tolist() == [report.main_magnitude(profile)]
    assert [len(v) for v in ch.noise_by_seed(profile).values()] == [2, 2]


def test_cached_steps_on_untrained_models(monkeypatch, tmp_path) -> None:
    """The three steps run end to end on the synthetic data and come back from the cache."""
    profile = get_profile("smoke", n_test=32, analysis_test_images=24)
    calls = []

    def fake_trained_model(family, *, profile, image_size, seed=0):
        calls.append(family)
        name = profile.models[family]  # the chapter's profile (frequency_profile)
        folder = tmp_path / name
        folder.mkdir(exist_ok=True)
        torch.manual_seed(0)
        model = create_model(name, image_size=image_size).eval()
        return TrainedModel(name, model, History(), folder, 10, image_size)

    monkeypatch.setattr(ch, "trained_model", fake_trained_model)
    analyses = ch.feature_analysis(profile).models
    noise = ch.noise_robustness(profile)
    cues = ch.cue_reliance(profile)
    models = report.chapter_models(profile)
    assert set(analyses) == set(cues.models) == {models[f] for f in ch.FAMILIES}
    assert set(noise.models) == {models[f] for f in ch.NOISE_FAMILIES}
    assert noise.models["vit_tiny"].drop.shape == (len(profile.frequency.noise_magnitudes), 2)
    assert noise.images == cues.images == noise.models["vit_tiny"].num_samples == 32
    assert noise.chance == cues.chance == 10.0
    assert set(cues.models["resnet_post_tiny"]) == set(CUES)
    batches = ch.feature_batches(profile).models
    assert set(map(len, ch.seed_noise(profile).models.values())) == {0}  # smoke: one seed
    computed = len(calls)  # models are loaded only to compute a step
    seconds = ch.step_seconds(profile)
    assert set(seconds) == {"features", "batches", "noise", "seed noise", "cues"}
    assert all(s >= 0 for s in seconds.values())
    again = ch.feature_analysis(profile).models  # from the cache
    assert isinstance(again["vit_tiny"], dp.FeatureAnalysis)
    torch.testing.assert_close(
        again["vit_tiny"].fourier.high_frequency, analyses["vit_tiny"].fourier.high_frequency
    )
    assert set(batches) == {report.chapter_models(profile)[f] for f in report.FILTER_FAMILIES}
    assert len(batches["vit_tiny"]) == len(profile.seeds) == 1
    assert len(batches["vit_tiny"][0]) == 1  # 32 test images, batches of 64: the test set is one
    torch.testing.assert_close(  # seed 0's first batch is feature_analysis's
        batches["vit_tiny"][0][0].variance.values, analyses["vit_tiny"].variance.values
    )
    sweeps = ch.noise_by_seed(profile)
    assert {n: len(v) for n, v in sweeps.items()} == dict.fromkeys(noise.models, 1)  # one seed
    torch.testing.assert_close(sweeps["vit_tiny"][0].drop, noise.models["vit_tiny"].drop)
    rows = report.paper_comparison(batches, sweeps, profile, ch.PAPER, noise.chance)
    assert len(rows) == 3
    assert ch.comparisons(profile) == rows  # the same box, from the cached steps
    assert len(calls) == computed  # no model loaded again


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


def test_steps_are_registered() -> None:
    steps = precompute_steps()
    for name in ("feature_analysis", "noise_robustness", "cue_reliance"):
        assert f"ch03_frequency.{name}" in steps


def test_cue_reliance_is_empty_without_cue_sets() -> None:
    assert ch.cue_reliance(get_profile("gpu")).models == {}
