"""Chapter 04: build-up bookkeeping, the C8 verdict over seeds, chance-aware lesion sentences, the
course summary, and one tiny real run."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from course_lib.analysis.evaluation import Metrics
from course_lib.analysis.lesion import LesionResult
from course_lib.analysis.robustness import NoiseSweep
from course_lib.cache import cache_root
from course_lib.chapters import ch04_alternet as ch
from course_lib.chapters import precompute_steps
from course_lib.chapters import summary as course
from course_lib.config import get_profile
from course_lib.plots.alternet import figure_buildup, figure_families, figure_lesions
from course_lib.report import Comparison, paper_vs_run_html, prose
from course_lib.report import alternet as report
from course_lib.report import families as c8
from course_lib.report import lesions as lesion_report
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


def test_buildup_model_reuses_the_shared_runs_at_the_first_seed(monkeypatch):
    calls = []
    monkeypatch.setattr(ch, "trained_model", lambda name, **kw: calls.append((name, kw)))
    profile = get_profile("laptop", seeds=(3, 4))
    for step in [(0, 0, 0), (0, 0, 1), (0, 1, 1), (1, 1, 1)]:
        ch.buildup_model(profile, step)
    first = {"profile": profile, "seed": 3}
    assert calls == [
        ("resnet", first),
        ("resnet_mini", first | {"msa_blocks": (0, 0, 1)}),
        ("alternet", first),  # (0, 1, 1) on resnet_mini *is* alternet_mini
        ("resnet_mini", first | {"msa_blocks": (1, 1, 1)}),
    ]


def _run(name, acc, nll=1.0, seed=0, num_classes=10):
    return report.RunSummary(
        name=name,
        seed=seed,
        params=10,
        num_classes=num_classes,
        test_accuracy=acc,
        test_nll=nll,
        train_nll=nll,
        epochs=1,
        seconds_per_epoch=1.0,
    )


def _buildup(accuracies, nlls=None, seeds=((80.0, 1.0), (81.5, 1.2))):
    nlls = nlls or [1.0] * len(accuracies)
    steps = [(0, 0, 0), (0, 0, 1), (0, 1, 1), (1, 1, 1)][: len(accuracies)]
    runs = [_run("r", a, n) for a, n in zip(accuracies, nlls, strict=True)]
    resnet = [_run("r", a, n, seed=s) for s, (a, n) in enumerate(seeds)]
    return report.BuildUp(steps=steps, runs=runs, resnet_seeds=resnet)


def test_buildup_rows_judge_each_step_against_the_seed_range():
    result = _buildup([80, 82, 81, 81], nlls=[1.0, 1.0, 1.0, 0.5])  # seeds: 1.5 pp, NLL 0.2
    spread = report.seed_spread(result)
    assert (spread.test_accuracy, spread.test_nll, spread.seeds) == pytest.approx((1.5, 0.2, 2))
    rows = report.buildup_rows(result)
    assert [r.helped for r in rows] == [None, True, False, True]  # the last: same acc, lower NLL
    assert [r.beyond_noise for r in rows] == [None, True, False, True]
    marks = [report.helped_mark(r) for r in rows]
    assert marks == ["", "✅ yes", "≈ within seed noise (worse)", "✅ yes"]
    assert [r.change for r in rows][1:] == [
        "+1 MSA in stage 3",
        "+1 MSA in stage 2",
        "+1 MSA in stage 1",
    ]
    html = report.buildup_table_html(result)
    assert html.count("<tr>") == 6 and "plain ResNet, seed 1 (noise floor)" in html
    three = _buildup([80, 82], seeds=((80.0, 1.0), (83.0, 1.1), (79.0, 0.9)))
    assert report.seed_spread(three).test_accuracy == pytest.approx(4.0)  # max − min


def test_buildup_text_follows_the_numbers_and_the_seeds():
    text = report.buildup_text(_buildup([80, 82]))
    assert text.startswith("The first step (+1 MSA in stage 3) helped")
    assert "seeds (0, 1) span 1.50 points" in text and "by 1.3 times that range" in text
    worse = report.buildup_text(_buildup([80, 78]))
    assert "(+1 MSA in stage 3) hurt" in worse and "the plain ResNet (80.00 %)" in worse
    one_seed = report.buildup_text(_buildup([80, 80.5], seeds=((80.0, 1.0),)))
    assert "one seed (0)" in one_seed and "not measured" in one_seed


@pytest.mark.parametrize(
    ("accuracies", "expected"),
    [
        ([80, 82, 84], "reproduced"),  # each step beyond the 1.5 pp seed range
        ([80, 81, 83], "partly"),  # better in the end, the first step within the noise
        ([80, 83, 81], "not reproduced"),  # a step hurts beyond the noise
        ([80, 81, 79.9], "not reproduced"),  # the last step no better than the ResNet
    ],
)
def test_buildup_verdict(accuracies, expected):
    assert report.buildup_verdict(report.buildup_rows(_buildup(accuracies))) == expected


def _sweep(clean, noisy):
    """A sweep over one high band (0.9π) at one magnitude."""
    return NoiseSweep(
        centers=torch.tensor([0.9]),
        magnitudes=torch.tensor([1.0]),
        width=0.1,
        clean_accuracy=clean,
        accuracy=torch.tensor([[noisy]], dtype=torch.float64),
        drop=torch.tensor([[clean - noisy]], dtype=torch.float64),
        num_samples=2000,
    )


def _families(alternet, resnet, vit=(50.0, 52.0)):
    """A comparison from ``family: [(clean, noisy) per seed]``; chance is 10 %."""
    runs, noise = {}, {}
    for family, seeds in {"resnet": resnet, "alternet": alternet}.items():
        runs[family] = [_run(family, c, seed=s) for s, (c, _) in enumerate(seeds)]
        noise[family] = [_sweep(c, n) for c, n in seeds]
    runs["vit"] = [_run("vit", a, seed=s) for s, a in enumerate(vit)]
    runs["local_vit"] = [_run("local_vit", 60.0, seed=s) for s in range(len(vit))]
    return c8.FamilyComparison(runs=runs, noise=noise)


def test_high_frequency_drop_is_normalised_by_what_lies_above_chance():
    c = _families(alternet=[(90.0, 50.0), (70.0, 40.0)], resnet=[(9.0, 9.0), (50.0, 30.0)])
    assert c.high_drop("alternet") == pytest.approx({0: 0.5, 1: 0.5})  # 40/80, 30/60
    assert math.isnan(c.high_drop("resnet")[0]) and c.high_drop("resnet")[1] == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("alternet", "resnet", "verdict", "which"),
    [
        ([(82, 70), (84, 72)], [(80, 50), (81, 50)], "reproduced", "accuracy and robustness"),
        ([(82, 40), (84, 40)], [(80, 60), (81, 60)], "reproduced", "accuracy"),
        ([(78, 70), (79, 70)], [(80, 50), (81, 50)], "reproduced", "robustness"),
        # reversed on both: behind on accuracy, a larger share lost to the noise
        ([(78, 40), (79, 40)], [(80, 60), (81, 60)], "not reproduced", "neither"),
        # seed 0 favours AlterNet, the means do not: the verdict uses the means
        ([(90, 20), (70, 20)], [(85, 60), (80, 60)], "not reproduced", "neither"),
    ],
)
def test_c8_verdict_and_sentence(alternet, resnet, verdict, which):
    c = _families(alternet, resnet)
    assert c8.c8_verdict(c) == (verdict, which)
    text = c8.c8_text(c)
    if verdict == "reproduced":
        assert f"at least as good as the ResNet on {which}: C8 is reproduced" in text
    else:
        assert "behind the ResNet on accuracy and on high-frequency robustness" in text
        assert "C8 is not reproduced" in text
    alt, res = (sum(a for a, _ in seeds) / len(seeds) for seeds in (alternet, resnet))
    relation = "higher" if alt > res else "lower"
    assert f"mean test accuracy ({alt:.2f}) is {relation} than the ResNet's ({res:.2f})" in text


def test_c8_sentence_says_when_the_gap_is_within_the_seeds_and_when_a_drop_is_undefined():
    within = c8.c8_text(_families([(80, 70), (84, 70)], [(81, 60), (82, 60)]))
    assert "no larger than the wider of the two models' ranges over seeds (4.00)" in within
    beyond = c8.c8_text(_families([(90, 70), (91, 70)], [(80, 60), (81, 60)]))
    assert "larger than the wider of the two models' ranges over seeds (1.00)." in beyond
    at_chance = c8.c8_text(_families([(8, 8), (9, 9)], [(80, 60), (81, 60)]))
    assert "cannot be compared" in at_chance and "robustness cannot be compared" in at_chance
    single = _families([(82, 70)], [(80, 50)], vit=(50.0,))
    assert "With one seed" in c8.c8_text(single)


def test_the_c8_row_alone_decides_the_claim(monkeypatch):
    c = _families([(78, 40), (79, 40)], [(80, 60), (81, 60)], vit=(90.0, 91.0))
    monkeypatch.setattr(ch, "build_up", lambda p: _buildup([80, 82]))
    monkeypatch.setattr(ch, "family_comparison", lambda p: c)
    monkeypatch.setattr(ch, "lesions", lambda p: _study(resnet_drops=[80, 80, 5, 5]))
    rows = ch.comparisons(get_profile("smoke"))
    assert [r.claim[:3] for r in rows].count("C8:") == 1 and rows[0].claim.startswith("C8:")
    assert rows[0].verdict == "not reproduced" and "at least as good on: neither" in rows[0].ours
    assert "seed 0: 78.00, seed 1: 79.00" in rows[0].ours
    assert "≈ read from Fig. 12" in rows[0].paper and "≈ read from Fig. 10b" in rows[3].paper
    assert rows[2].verdict == "reproduced"  # the build-up: +2 pp against a 1.5 pp seed range
    assert rows[3].verdict == "reproduced"  # the ResNet's first half costs more
    assert "2 of 4 ResNet lesions" in rows[5].ours  # two lesions reach chance (10 %)
    chapters = {notebook: claims for notebook, (_, claims) in course.CHAPTERS.items()}
    summary = report_summary.claim_verdicts(chapters, rows)
    assert next(s for s in summary if s.claim == "C8").verdict == "not reproduced"


def _lesion(kinds, drops, clean=90.0, n=1000):
    drop = torch.tensor(drops, dtype=torch.float64)
    names = [f"stages.{i}.0" for i in range(len(kinds))]
    return LesionResult(names, kinds, clean, 0.5, clean - drop, drop + 0.5, drop, n)


def _study(resnet_drops=(13.7, 7.3, 4.7, 2.2), alternet_drops=(0.5, 1.9, 0.4, 1.8), clean=90.0):
    return lesion_report.LesionStudy(
        results={
            "resnet": _lesion(["conv"] * 4, list(resnet_drops), clean),
            "alternet": _lesion(["conv", "msa", "conv", "msa"], list(alternet_drops), clean),
            "local_vit": _lesion(["msa", "mlp"], [1.0, 0.5], clean),
        },
        chance=10.0,
    )


def test_lesion_sentences_when_every_lesion_stays_above_chance():
    study = _study()
    text = lesion_report.lesion_text(study)
    assert "The ResNet (90.0 % clean) stays above chance after every single lesion" in text
    assert "as the paper finds, the early units matter more" in text
    assert "as the paper finds, it leans on its MSA blocks" in text
    assert "The local ViT's largest single drop (1.0) is smaller than the ResNet's (13.7)" in text
    assert "cannot" not in text
    assert lesion_report.lesion_verdicts(study) == dict.fromkeys(
        ("resnet_early", "alternet_msa", "local_small"), "reproduced"
    )
    reversed_ = _study(resnet_drops=[2.2, 4.7, 7.3, 13.7], alternet_drops=[1.9, 0.5, 1.8, 0.4])
    text = lesion_report.lesion_text(reversed_)
    assert "unlike in the paper, the later units matter at least as much here" in text
    assert "unlike in the paper, its MSA blocks matter no more than its Conv blocks" in text
    verdicts = lesion_report.lesion_verdicts(reversed_)
    assert verdicts["resnet_early"] == verdicts["alternet_msa"] == "not reproduced"
    partly = _study(alternet_drops=[3.0, 2.5, 0.1, 2.5])  # MSAs cost more, the largest a Conv
    assert lesion_report.lesion_verdicts(partly)["alternet_msa"] == "partly"


def test_lesion_sentences_when_lesions_reach_chance():
    # the laptop run's pattern: clean 77.5 %, second half at chance (drop 67.5 = clean − chance)
    study = _study(resnet_drops=[53.5, 53.5, 67.5, 67.5], clean=77.5)
    text = lesion_report.lesion_text(study)
    assert "Chance is 10.0 % (± 1.9 points for 1,000 test images)" in text
    assert "falls to chance when any one of 2 of its 4 units is removed" in text
    assert "cannot be ranked against each other" in text
    assert "unlike in the paper, the later units matter at least as much here" in text
    assert "ResNets depend most on their early units" not in text
    one = lesion_report.lesion_text(_study(resnet_drops=[79.0, 5.0, 3.0, 1.0]))
    assert "falls to chance without stages.0.0: that lesion takes everything" in one
    listing = lesion_report.lesion_listing(study)
    assert listing.splitlines()[0] == "ResNet: clean accuracy 77.5 %, NLL 0.5000 (chance 10.0 %)"
    assert listing.count("→ at chance") == 2


def test_lesion_halves_within_the_sampling_margin_rank_nothing():
    # the laptop run's pattern: half means 51.93 vs 51.90, on 1,000 images (± 1.9 pp at 90 %)
    study = _study(resnet_drops=[58.5, 38.4, 58.9, 48.0, 62.0, 45.7])
    study.results["resnet"] = _lesion(["conv"] * 6, [58.5, 38.4, 58.9, 48.0, 62.0, 45.7])
    assert lesion_report.lesion_verdicts(study)["resnet_early"] == "not reproduced"
    text = lesion_report.lesion_text(study)
    assert "they cannot be told apart" in text and "is about the same as the second half" in text


def test_lesion_sentences_when_a_model_is_at_chance_before_any_lesion():
    study = _study(clean=11.0)  # within 1.9 points of 10 % on 1,000 images
    text = lesion_report.lesion_text(study)
    assert "The ResNet is at chance before any lesion (11.0 %): its lesions cannot rank" in text
    assert "first half" not in text and "MSA block's mean drop" not in text
    assert set(lesion_report.lesion_verdicts(study).values()) == {"not reproduced"}


@pytest.mark.parametrize(
    ("lesioned", "expected"),
    [
        (17.5, "above chance (10.0 %); its NLL goes from 0.5 to 2. It keeps 11% of the accuracy"),
        (10.5, "at chance (10.0 %); its NLL goes from 0.5 to 2. This lesion takes everything"),
    ],
)
def test_removal_sentence_is_chance_aware(lesioned, expected):
    clean, without = Metrics(0.5, 20.0, 2000), Metrics(2.0, 100 - lesioned, 2000)
    text = lesion_report.removal_text("AlterNet", ["stages.2.1"], clean, without, 10.0)
    assert text.startswith(f"Without stages.2.1, AlterNet classifies {lesioned:.1f} % of the 2,000")
    assert expected in text and "still classifies" not in text
    at_chance = lesion_report.removal_text(
        "AlterNet", ["x"], Metrics(2.3, 89.0, 2000), without, 10.0
    )
    assert at_chance.endswith(
        "The model is at chance before the lesion, so the lesion measures nothing."
    )


def test_over_seeds_lists_each_seed_with_mean_and_range():
    assert prose.over_seeds({0: 80.1, 1: 82.3}, ".1f") == (
        "mean 81.2, range 80.1–82.3 (seed 0: 80.1, seed 1: 82.3)"
    )
    assert prose.over_seeds({0: 80.1}, ".1f") == "80.1 (seed 0 only)"
    assert (
        prose.over_seeds({0: float("nan"), 1: 0.3}, ".1f") == "mean n/a (seed 0: n/a, seed 1: 0.3)"
    )
    with pytest.raises(ValueError, match="at least one seed"):
        prose.over_seeds({})


def test_describe_architecture():
    text = report.describe_architecture("alternet_tiny")
    assert text.splitlines()[0].startswith("stage 1 (32×32, width")
    assert "(8×8" in text.splitlines()[-1] and "(15×15" in report.describe_architecture(
        "resnet_tiny", image_size=30
    )
    assert "MSA" in text.splitlines()[-1] and "MSA" not in report.describe_architecture(
        "resnet_tiny"
    )


def test_combine_verdicts():
    assert report_summary.combine_verdicts(["reproduced", "reproduced"]) == "reproduced"
    assert report_summary.combine_verdicts(["not reproduced"] * 2) == "not reproduced"
    assert report_summary.combine_verdicts(["reproduced", "not reproduced"]) == "partly"
    assert report_summary.combine_verdicts(["partly"]) == "partly"


def test_rows_beside_a_claim_are_listed_but_do_not_change_its_verdict():
    chapters = {"01": ("C1", "C2"), "02": ("C3", "C4", "C5", "C6", "C7", "C8")}
    rows = [
        Comparison("C1: declared", "paper", "ours", "reproduced"),
        Comparison("C1 (ours): beside", "paper", "ours", "not reproduced", counted=False),
        Comparison("C2: beside only", "paper", "ours", "reproduced", counted=False),
    ]
    summary = report_summary.claim_verdicts(chapters, rows)
    c1, c2 = summary[:2]
    assert c1.verdict == "reproduced" and len(c1.rows) == 2  # listed, not combined
    assert c2.verdict is None and "none of its declared test" in c2.note
    assert c1.every_row_verdict == "partly" and c2.every_row_verdict is None
    assert report_summary.beside_reading(summary) == (
        "Counting the rows shown beside the claims (†) as well would change C1 (reproduced → "
        "partly): 0 of 8 claims would read reproduced."
    )
    assert "would change no verdict" in report_summary.beside_reading(summary[1:])
    html = report_summary.course_summary_html(summary, "laptop")
    assert "not at this scale beside †" in html and "not part of its declared test" in html
    box = paper_vs_run_html(rows[:1], "laptop")
    assert "†" not in box  # the footnote only where a row is beside its claim
    assert "beside†" in paper_vs_run_html(rows[:2], "laptop")


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


def test_high_bands_need_a_band_above_half_pi():
    assert ch.high_bands(get_profile("laptop")) == (0.7, 0.9)
    smoke = get_profile("smoke")
    low_only = dataclasses.replace(
        smoke, frequency=dataclasses.replace(smoke.frequency, noise_centers=(0.1, 0.5))
    )
    with pytest.raises(ValueError, match="above 0.5π"):
        ch.high_bands(low_only)


@pytest.fixture
def micro_profile():
    """The smoke profile cut to a few images, at two seeds: every code path runs in seconds."""
    smoke = get_profile("smoke", seeds=(0, 1))
    return dataclasses.replace(
        smoke,
        name="micro",
        n_train=32,
        n_test=16,
        train=dataclasses.replace(smoke.train, batch_size=16),
        frequency=dataclasses.replace(
            smoke.frequency,
            noise_centers=(0.3, 0.9),  # only the band above ½π is used
            noise_magnitudes=(0.25, 0.5),  # only the strongest is used
            noise_images=12,
        ),
        analysis_test_images=8,
    )


def test_tiny_end_to_end_at_two_seeds_and_cached(micro_profile, monkeypatch):
    buildup = ch.build_up(micro_profile)
    families = ch.family_comparison(micro_profile)
    lesions = ch.lesions(micro_profile)
    # each family at both seeds, each trained once, and the build-up's one step of its own
    # (smoke's alternet_tiny has two blocks in stage 3, so (0, 0, 1) on resnet_tiny is not it)
    assert len(list((cache_root() / "trained").iterdir())) == 2 * len(ch.FAMILIES) + 1
    assert [tuple(s) for s in buildup.steps] == [(0, 0, 0), (0, 0, 1)]
    assert [r.seed for r in buildup.resnet_seeds] == [0, 1]
    assert {f: [r.seed for r in runs] for f, runs in families.runs.items()} == dict.fromkeys(
        ch.FAMILIES, [0, 1]
    )
    assert buildup.resnet_seeds == families.runs["resnet"]
    assert set(families.noise) == {"resnet", "alternet"}
    sweep = families.noise["alternet"][1]
    assert sweep.centers.tolist() == pytest.approx([0.9]) and sweep.magnitudes.tolist() == [0.5]
    assert sweep.num_samples == 12  # profile.frequency.noise_images
    assert lesions.results["alternet"].kinds == ["conv", "conv", "conv", "msa"]
    assert lesions.results["resnet"].num_samples == 8 and lesions.chance == 10.0
    html = c8.family_table_html(families)
    assert html.count("<td>0</td>") == html.count("<td>1</td>") == len(ch.FAMILIES)  # seeds
    rows = ch.comparisons(micro_profile)
    assert len(rows) == 6 and "seed 0: " in rows[0].ours and "seed 1: " in rows[0].ours
    # everything comes from the cache now, as the same dataclasses: no training, no analysis
    monkeypatch.setattr(ch, "trained_model", lambda *a, **k: pytest.fail("recomputed"))
    assert ch.build_up(micro_profile) == buildup
    assert isinstance(ch.family_comparison(micro_profile), c8.FamilyComparison)
    assert isinstance(ch.lesions(micro_profile).results["resnet"], LesionResult)
    figures = (
        figure_buildup(report.buildup_rows(buildup), buildup.resnet_seeds, ch.PAPER_BUILDUP),
        figure_families(families, ch.PAPER_ACCURACY, ch.PAPER_CORRUPTED),
        figure_lesions(lesions),
    )
    assert all(figure.axes for figure in figures)
