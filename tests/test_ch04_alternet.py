"""Chapter 04: build-up bookkeeping, the C8 verdicts, the course summary, and one tiny real run."""

from __future__ import annotations

import dataclasses
import importlib
import sys
import types

import pytest
import torch

from course_lib.analysis.lesion import LesionResult
from course_lib.analysis.robustness import NoiseSweep
from course_lib.chapters import ch04_alternet as ch
from course_lib.chapters import precompute_steps
from course_lib.config import get_profile
from course_lib.report import Comparison


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
    monkeypatch.setattr(ch, "_LOADED", {})
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
    return {"name": name, "params": 10, "test_accuracy": acc, "test_nll": nll, "train_nll": nll,
            "epochs": 1, "seconds_per_epoch": 1.0}  # fmt: skip


def test_buildup_rows():
    result = {
        "steps": [[0, 0, 0], [0, 0, 1], [0, 1, 1], [1, 1, 1]],
        "runs": [_run("r", 80), _run("r", 82), _run("a", 81), _run("r", 81, nll=0.5)],
        "resnet_second_seed": _run("r", 81.5, nll=1.2),  # noise: 1.5 pp, NLL 0.2
    }
    assert ch.seed_spread(result) == pytest.approx({"test_accuracy": 1.5, "test_nll": 0.2})
    rows = ch.buildup_rows(result)
    assert [r.helped for r in rows] == [None, True, False, True]  # the last: same acc, lower NLL
    assert [r.beyond_noise for r in rows] == [None, True, False, True]
    marks = [ch.helped_mark(r) for r in rows]
    assert marks == ["", "✅ yes", "≈ within seed noise (worse)", "✅ yes"]
    assert [r.change for r in rows] == [
        "plain ResNet",
        "+1 MSA in stage 3",
        "+1 MSA in stage 2",
        "+1 MSA in stage 1",
    ]
    html = ch.buildup_table_html(result)
    assert html.count("<tr>") == 6 and "seed 1 (noise floor)" in html


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
        families[family] = _run(family, acc) | {"noise": dataclasses.asdict(sweep)}
    if not alternet_wins:
        families["vit"]["test_accuracy"] = 90.0
    buildup = {
        "steps": [[0, 0, 0], [0, 0, 1]],
        "runs": [_run("r", bad), _run("r", good)],
        "resnet_second_seed": _run("r", bad + 1),
    }

    def lesion(kinds, drops):
        drop = torch.tensor(drops, dtype=torch.float64)
        return dataclasses.asdict(
            LesionResult(
                [f"stages.{i}.0" for i in range(len(kinds))],
                kinds,
                90.0,
                0.5,
                90.0 - drop,
                drop + 0.5,
                drop,
                10,
            )  # fmt: skip
        )

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


def test_combine_verdicts():
    assert ch.combine_verdicts(["reproduced", "reproduced"]) == "reproduced"
    assert ch.combine_verdicts(["not reproduced"] * 2) == "not reproduced"
    assert ch.combine_verdicts(["reproduced", "not reproduced"]) == "partly"
    assert ch.combine_verdicts(["partly"]) == "partly"


def test_course_summary_collects_every_chapter(monkeypatch):
    def chapter(rows):
        module = types.ModuleType("fake")
        module.comparisons = lambda profile: rows
        return module

    row = lambda claim, verdict: Comparison(claim, "paper", "ours", verdict)  # noqa: E731
    monkeypatch.setitem(
        sys.modules,
        "course_lib.chapters.ch01_inductive_bias",
        chapter([row("C1: a", "reproduced"), row("C1: b", "reproduced"), row("C2: c", "partly")]),
    )
    monkeypatch.setitem(sys.modules, "course_lib.chapters.ch02_loss_landscape", None)  # missing
    monkeypatch.setitem(
        sys.modules, "course_lib.chapters.ch03_frequency", types.ModuleType("no_function")
    )
    monkeypatch.setattr(ch, "comparisons", lambda p: [row("C8: x", "not reproduced")])
    message = "no verdict from 03_frequency: AttributeError: ch03_frequency defines no comparisons"
    with pytest.warns(UserWarning, match=message):
        summary = ch.course_summary(get_profile("smoke"))
    verdicts = {s.claim: s.verdict for s in summary}
    assert verdicts == {"C1": "reproduced", "C2": "partly", "C3": None, "C4": None, "C5": None,
                        "C6": None, "C7": None, "C8": "not reproduced"}  # fmt: skip
    assert [len(s.rows) for s in summary][:2] == [2, 1]
    assert "not part of this build" in summary[2].note and "could not" in summary[4].note
    html = ch.course_summary_html(summary, "laptop")
    assert html.count("<tr>") == 9 and "not available" in html


def test_every_chapter_defines_comparisons(monkeypatch):
    for module_name in ch.CHAPTERS:
        module = importlib.import_module(f"course_lib.chapters.{module_name}")
        assert callable(module.comparisons), module_name
    ch03 = importlib.import_module("course_lib.chapters.ch03_frequency")
    rows = [Comparison("C5: x", "paper", "ours", "partly")]
    seen = []
    monkeypatch.setattr(ch03, "comparisons", lambda p: seen.append(p) or rows)
    profile = get_profile("smoke")
    assert ch.chapter_comparisons("ch03_frequency", profile) == rows
    assert seen == [profile]


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
    assert [tuple(s) for s in buildup["steps"]] == [(0, 0, 0), (0, 0, 1)]
    assert set(families) == set(ch.FAMILIES)
    assert families["resnet"]["test_accuracy"] == buildup["runs"][0]["test_accuracy"]
    sweeps = ch.noise_sweeps(families)
    assert sweeps["vit_tiny"].accuracy.shape == (1, 1) and sweeps["vit_tiny"].num_samples == 8
    assert sweeps["vit_tiny"].magnitudes.tolist() == [0.5]
    results = ch.lesion_results(lesions)
    assert results["alternet"].kinds == ["conv", "conv", "conv", "msa"]
    assert results["resnet"].num_samples == 8  # frequency_test_images
    rows = ch.comparisons(micro_profile)
    assert len(rows) == 6
    # everything comes from the cache now: no training, no analysis
    monkeypatch.setattr(ch, "trained_model", lambda *a, **k: pytest.fail("recomputed"))
    assert ch.build_up(micro_profile)["runs"] == buildup["runs"]
    ch.family_comparison(micro_profile)
    ch.lesions(micro_profile)
    for figure in (ch.figure_buildup, ch.figure_families, ch.figure_lesions):
        assert figure(micro_profile).axes
