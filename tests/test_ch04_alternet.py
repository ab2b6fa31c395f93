"""Chapter 04: build-up bookkeeping, the C8 verdicts, the course summary, and one tiny real run."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from course_lib.analysis.lesion import LesionResult
from course_lib.analysis.robustness import NoiseSweep
from course_lib.chapters import ch04_alternet as ch
from course_lib.chapters import precompute_steps
from course_lib.chapters import summary as course
from course_lib.config import get_profile
from course_lib.plots.alternet import figure_buildup, figure_families, figure_lesions
from course_lib.report import Comparison
from course_lib.report import alternet as report
from course_lib.report import summary as report_summary


def test_buildup_steps_come_from_the_profile():
    for name in ("smoke", "laptop", "gpu"):
        profile = get_profile(name)
        steps = ch.buildup_steps(profile)
        depths = ch.create_model(profile.models["resnet"]).config.depths
        assert not any(steps[0]), "the build-up starts from the plain ResNet"
        assert all(len(s) == len(depths) for s in steps)
        for s in steps:  # every step is a valid architecture
            ch.create_model(profile.models["resnet"], msa_blocks=s)
    default = ch.buildup_steps(dataclasses.replace(get_profile("laptop"), alternet_buildup=()))
    assert default == [(0, 0, 0), (0, 1, 1)]


def test_buildup_model_reuses_the_shared_runs(monkeypatch):
    calls = []
    monkeypatch.setattr(ch, "trained_model", lambda name, **kw: calls.append((name, kw)))
    profile = get_profile("laptop")
    for step in [(0, 0, 0), (0, 0, 1), (0, 1, 1), (1, 1, 1)]:
        ch.buildup_model(profile, step)
    assert calls == [
        ("resnet", {"profile": profile}),
        ("resnet_mini", {"profile": profile, "msa_blocks": (0, 0, 1)}),
        ("alternet", {"profile": profile}),  # (0, 1, 1) on resnet_mini *is* alternet_mini
        ("resnet_mini", {"profile": profile, "msa_blocks": (1, 1, 1)}),
    ]


def _run(name, acc, nll=1.0):
    return report.RunSummary(
        name=name,
        params=10,
        test_accuracy=acc,
        test_nll=nll,
        train_nll=nll,
        epochs=1,
        seconds_per_epoch=1.0,
    )


def test_buildup_rows():
    result = report.BuildUp(
        steps=[(0, 0, 0), (0, 0, 1), (0, 1, 1), (1, 1, 1)],
        runs=[_run("r", 80), _run("r", 82), _run("a", 81), _run("r", 81, nll=0.5)],
        resnet_second_seed=_run("r", 81.5, nll=1.2),  # noise: 1.5 pp, NLL 0.2
    )
    spread = report.seed_spread(result)
    assert (spread.test_accuracy, spread.test_nll) == pytest.approx((1.5, 0.2))
    rows = report.buildup_rows(result)
    assert [r.helped for r in rows] == [None, True, False, True]  # the last: same acc, lower NLL
    assert [r.beyond_noise for r in rows] == [None, True, False, True]
    marks = [report.helped_mark(r) for r in rows]
    assert marks == ["", "✅ yes", "≈ within seed noise (worse)", "✅ yes"]
    assert [r.change for r in rows] == [
        "plain ResNet",
        "+1 MSA in stage 3",
        "+1 MSA in stage 2",
        "+1 MSA in stage 1",
    ]
    html = report.buildup_table_html(result, spread_seed=ch.SPREAD_SEED)
    assert html.count("<tr>") == 6 and "seed 1 (noise floor)" in html
    values = report.buildup_glue(result)
    assert values["c8_first_effect"] == "helped" and values["c8_first_metric"] == "accuracy"
    assert values["c8_first_ratio"] == "1.3 times"  # 2 pp against a spread of 1.5 pp
    assert values["c8_best_step"] == "MSA blocks (0, 0, 1)" and values["c8_best_acc"] == "82.00"
    assert values["c8_last_effect"] == "helped" and values["c8_last_step"] == "(1, 1, 1)"
    assert values["c8_spread_acc"] == "1.50" and values["c8_spread_nll"] == "0.2000"


def test_buildup_glue_when_within_noise_and_the_seeds_agree():
    result = report.BuildUp(
        steps=[(0, 0, 0), (0, 0, 1)],
        runs=[_run("r", 80, nll=1.0), _run("r", 80, nll=0.9)],
        resnet_second_seed=_run("r", 80, nll=1.0),  # the seeds agree exactly
    )
    values = report.buildup_glue(result)
    assert values["c8_first_metric"] == "NLL" and values["c8_first_effect"] == "helped"
    assert values["c8_first_ratio"].startswith("infinitely many times")
    slower = dataclasses.replace(result, resnet_second_seed=_run("r", 80, nll=1.5))
    values = report.buildup_glue(slower)
    assert values["c8_first_effect"] == "changed the result by less than the seed noise"
    assert values["c8_best_step"] == "MSA blocks (0, 0, 1)"


def _fake_results(alternet_wins: bool):
    """Results in which every C8 check holds (or, with ``alternet_wins=False``, none does)."""
    good, bad = (85.0, 70.0) if alternet_wins else (70.0, 85.0)
    families = {}
    for family, acc in {"resnet": bad, "local_vit": 60.0, "vit": 50.0, "alternet": good}.items():
        sweep = NoiseSweep(
            centers=torch.tensor([0.5]),
            magnitudes=torch.tensor([1.0]),
            width=0.1,
            clean_accuracy=acc,
            accuracy=torch.tensor([[acc - 5]], dtype=torch.float64),
            drop=torch.tensor([[5.0]], dtype=torch.float64),
            num_samples=10,
        )
        if family == "vit" and not alternet_wins:
            sweep.accuracy += 50
        run = _run(family, 90.0 if family == "vit" and not alternet_wins else acc)
        families[family] = report.FamilyRun(**dataclasses.asdict(run), noise=sweep)
    buildup = report.BuildUp(
        steps=[(0, 0, 0), (0, 0, 1)],
        runs=[_run("r", bad), _run("r", good)],
        resnet_second_seed=_run("r", bad + 1),
    )

    def lesion(kinds, drops):
        drop = torch.tensor(drops, dtype=torch.float64)
        names = [f"stages.{i}.0" for i in range(len(kinds))]
        return LesionResult(names, kinds, 90.0, 0.5, 90.0 - drop, drop + 0.5, drop, 10)

    sign = 1 if alternet_wins else -1
    lesions = {
        "resnet": lesion(["conv"] * 4, [13.7, 7.3, 4.7, 2.2][::sign]),
        "alternet": lesion(["conv", "msa", "conv", "msa"], [0.5, 1.9, 0.4, 1.8][::sign]),
        "local_vit": lesion(["msa", "mlp"], [1.0, 0.5] if alternet_wins else [20.0, 0.5]),
    }
    return buildup, families, lesions


@pytest.mark.parametrize("alternet_wins", [True, False])
def test_comparisons_verdicts_follow_the_numbers(monkeypatch, alternet_wins):
    buildup, families, lesions = _fake_results(alternet_wins)
    monkeypatch.setattr(ch, "build_up", lambda p: buildup)
    monkeypatch.setattr(ch, "family_comparison", lambda p: families)
    monkeypatch.setattr(ch, "lesions", lambda p: lesions)
    rows = ch.comparisons(get_profile("smoke"))
    assert len(rows) == 6 and all(r.claim.startswith("C8:") for r in rows)
    expected = "reproduced" if alternet_wins else "not reproduced"
    assert [r.verdict for r in rows] == [expected] * 6
    assert "≈ read from Fig. 12" in rows[0].paper and "≈ read from Fig. 10b" in rows[3].paper


@pytest.mark.parametrize("alternet_wins", [True, False])
def test_prose_follows_the_numbers(alternet_wins):
    _, families, lesions = _fake_results(alternet_wins)
    values = report.family_glue(families)
    if alternet_wins:
        assert values["c8_ranking"] == "AlterNet > ResNet > local ViT > ViT"
        assert values["c8_noise_ranking"] == "AlterNet > ResNet > local ViT > ViT"
    else:
        assert values["c8_ranking"] == "ViT > ResNet > AlterNet > local ViT"
        assert values["c8_noise_ranking"] == "ViT > ResNet > AlterNet > local ViT"
    assert values["c8_alternet_acc"] == f"{families['alternet'].test_accuracy:.2f}"
    values = report.lesion_glue(lesions)
    assert values["c8_les_res_first"] == ("10.5" if alternet_wins else "3.5")
    assert values["c8_les_res_reading"].startswith("as in the paper" if alternet_wins else "unlike")
    assert ("as the paper finds" in values["c8_les_alt_reading"]) == alternet_wins
    listing = report.lesion_listing(lesions)
    assert listing.splitlines()[0] == "ResNet: clean accuracy 90.0 %, NLL 0.5000"
    assert "without stages.1.0 ( msa)" in listing


def test_lesion_summary():
    _, _, lesions = _fake_results(True)
    alt = report.lesion_summary(lesions["alternet"])
    assert alt.first_half == pytest.approx(1.2) and alt.second_half == pytest.approx(1.1)
    assert (alt.largest_index, alt.largest_name, alt.largest_kind) == (1, "stages.1.0", "msa")
    assert alt.mean("msa") == pytest.approx(1.85) and alt.msa_matter_more
    res = report.lesion_summary(lesions["resnet"])
    assert math.isnan(res.mean("msa")) and not res.msa_matter_more


def test_describe_architecture():
    text = report.describe_architecture("alternet_tiny")
    assert text.splitlines()[0].startswith("stage 1 (32×32, width")
    assert "MSA" in text.splitlines()[-1] and "MSA" not in report.describe_architecture(
        "resnet_tiny"
    )


def test_combine_verdicts():
    assert report_summary.combine_verdicts(["reproduced", "reproduced"]) == "reproduced"
    assert report_summary.combine_verdicts(["not reproduced"] * 2) == "not reproduced"
    assert report_summary.combine_verdicts(["reproduced", "not reproduced"]) == "partly"
    assert report_summary.combine_verdicts(["partly"]) == "partly"


def test_course_summary_collects_every_chapter(monkeypatch):
    def row(claim, verdict):
        return Comparison(claim, "paper", "ours", verdict)

    def broken(profile):
        raise RuntimeError("no cache")

    ch01, ch02, ch03, _ = (module for module, _ in course.CHAPTERS.values())
    rows01 = [row("C1: a", "reproduced"), row("C1: b", "reproduced"), row("C2: c", "partly")]
    monkeypatch.setattr(ch01, "comparisons", lambda p: rows01)
    monkeypatch.setattr(ch02, "comparisons", lambda p: [row("C3: d", "partly")])  # no C4 row
    monkeypatch.setattr(ch03, "comparisons", broken)
    monkeypatch.setattr(ch, "comparisons", lambda p: [row("C8: x", "not reproduced")])
    message = "no verdict from 03_frequency: RuntimeError: no cache"
    with pytest.warns(UserWarning, match=message):
        summary = course.course_summary(get_profile("smoke"))
    verdicts = {s.claim: s.verdict for s in summary}
    missing = dict.fromkeys(("C4", "C5", "C6", "C7"))
    agreed = {"C1": "reproduced", "C2": "partly", "C3": "partly", "C8": "not reproduced"}
    assert verdicts == agreed | missing
    assert [len(s.rows) for s in summary][:2] == [2, 1]
    assert "has no row" in summary[3].note and "could not" in summary[4].note
    html = report_summary.course_summary_html(summary, "laptop")
    assert html.count("<tr>") == 9 and "not available" in html
    counts = report_summary.verdict_counts(summary)
    assert counts == {"reproduced": 1, "partly": 2, "not reproduced": 1, None: 4}
    monkeypatch.setattr(ch, "comparisons", broken)  # chapter 04's own failure is not hidden
    with pytest.raises(RuntimeError), pytest.warns(UserWarning):
        course.course_summary(get_profile("smoke"))


def test_every_chapter_defines_comparisons():
    for module, _ in course.CHAPTERS.values():
        assert callable(module.comparisons), module.__name__


def test_steps_are_registered():
    steps = precompute_steps()
    for name in ("build_up", "family_comparison", "lesions"):
        assert f"ch04_alternet.{name}" in steps


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
        frequency=dataclasses.replace(
            smoke.frequency,
            noise_centers=(0.5,),
            noise_magnitudes=(0.25, 0.5),  # only the strongest is used
        ),
        analysis_test_images=8,
    )


def test_tiny_end_to_end_and_cached(micro_profile, monkeypatch):
    buildup = ch.build_up(micro_profile)
    families = ch.family_comparison(micro_profile)
    lesions = ch.lesions(micro_profile)
    assert [tuple(s) for s in buildup.steps] == [(0, 0, 0), (0, 0, 1)]
    assert set(families) == set(ch.FAMILIES)
    assert families["resnet"].test_accuracy == buildup.runs[0].test_accuracy
    sweep = families["vit"].noise
    assert families["vit"].name == "vit_tiny"
    assert sweep.accuracy.shape == (1, 1) and sweep.num_samples == 8
    assert sweep.magnitudes.tolist() == [0.5]
    assert lesions["alternet"].kinds == ["conv", "conv", "conv", "msa"]
    assert lesions["resnet"].num_samples == 8  # frequency_test_images
    rows = ch.comparisons(micro_profile)
    assert len(rows) == 6
    # everything comes from the cache now, as the same dataclasses: no training, no analysis
    monkeypatch.setattr(ch, "trained_model", lambda *a, **k: pytest.fail("recomputed"))
    assert ch.build_up(micro_profile) == buildup
    assert isinstance(ch.family_comparison(micro_profile)["vit"], report.FamilyRun)
    assert isinstance(ch.lesions(micro_profile)["resnet"], LesionResult)
    figures = (
        figure_buildup(report.buildup_rows(buildup), buildup.resnet_second_seed, ch.PAPER_BUILDUP),
        figure_families(families, ch.PAPER_ACCURACY, ch.PAPER_CORRUPTED),
        figure_lesions(lesions),
    )
    assert all(figure.axes for figure in figures)
