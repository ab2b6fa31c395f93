"""Chapter 03's generated sentences take their words from the numbers, in both directions, and
cover every glued value the notebook's prose uses."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from course_lib.analysis import depth_profiles as dp
from course_lib.analysis.robustness import BandDrops
from course_lib.chapters import ch03_frequency as ch
from course_lib.config import get_profile
from course_lib.report import Comparison
from course_lib.report import cues as cues_report
from course_lib.report import frequency as report
from course_lib.report import frequency_prose as prose
from tests.frequency_inputs import analysis, paper_like, sweep

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "03_frequency.ipynb"


@pytest.mark.parametrize(
    ("sign", "msa", "conv"), [(1.0, "lower", "raise"), (-1.0, "raise", "lower")]
)
def test_block_text_follows_the_signs(sign: float, msa: str, conv: str) -> None:
    vit, resnet = paper_like(sign)
    changes = dp.block_changes({"v": vit, "r": resnet})
    text = prose.block_text(changes.fourier, {"resnet": "r", "vit": "v"})
    start = f"in the ResNet, same-resolution Conv blocks {conv} the high-frequency Δ"
    assert text.startswith(f"{start} ({0.5 * sign:+.2g} on average over 2)")
    assert f"; in the ViT, MSA blocks {msa} it ({-0.3 * sign:+.2g} on average over 1)" in text
    variance = prose.block_text(changes.variance, {"vit": "v"}, "the variance", report.VARIANCE)
    assert f"MSA blocks {msa} the variance ({-50 * sign:+.2g} % on average" in variance


def _one_batch(**means: float) -> dict[str, report.KindChange]:
    return {kind: report.KindChange(mean, None, 1) for kind, mean in means.items()}


def test_filter_reading_names_what_holds() -> None:
    reproduced = prose.filter_reading(_one_batch(msa=-0.3, conv=0.5, mlp=0.3))
    assert "every kind has the paper's sign" in reproduced and '"reproduced"' in reproduced
    assert "the MSA change is 1.7× smaller than the Conv change" in reproduced
    partly = prose.filter_reading(_one_batch(msa=-0.3, conv=0.5, mlp=-0.1))
    assert "but MLP (-0.1) does not have the paper's sign" in partly and '"partly"' in partly
    both = prose.filter_reading(_one_batch(msa=0.1, conv=0.5, mlp=-0.1))
    assert "MSA (+0.1) and MLP (-0.1) do not" in both
    reversed_ = prose.filter_reading(_one_batch(msa=0.3, conv=-0.5))
    assert "is not below the Conv blocks' (-0.5)" in reversed_ and "reversed" in reversed_
    assert '"not reproduced"' in reversed_
    equal = prose.filter_reading(_one_batch(msa=-0.5, conv=0.5))
    assert "the MSA and Conv changes are about equal" in equal


def test_tilt_reading_tells_a_change_of_the_mean_from_filtering() -> None:
    def kinds(**values):  # kind -> (mean, interval)
        return {k: report.KindChange(m, i, 15) for k, (m, i) in values.items()}

    fourier = kinds(
        msa=(-0.22, (-0.24, -0.21)), conv=(-0.19, (-0.2, -0.17)), mlp=(-0.03, (-0.04, 0.01))
    )
    flat = kinds(msa=(-0.001, (-0.002, 0.001)), conv=(-0.01, (-0.04, 0.02)), mlp=(0.0, (-0.1, 0.1)))
    text = prose.tilt_reading(flat, fourier)
    assert "MSA (-0.001 [-0.002, +0.001]), Conv (" in text and "leave the tilt within noise" in text
    # the MLP's change against DC is itself within noise: only MSA and Conv changed the mean
    assert text.endswith("So the change of the MSA and Conv blocks against DC, which is beyond "
                         "noise, is a change of the maps' mean, not filtering.")  # fmt: skip
    blur = kinds(msa=(-0.3, (-0.4, -0.2)), conv=(0.2, (0.1, 0.3)), mlp=(0.0, (-0.1, 0.1)))
    text = prose.tilt_reading(blur, fourier)
    assert "MSA lowers the tilt beyond noise (-0.3 [-0.4, -0.2]: a blur)" in text
    assert "Conv raises the tilt beyond noise (+0.2 [+0.1, +0.3]: a sharpening)" in text
    assert "MLP (+0 [-0.1, +0.1]) leaves the tilt within noise" in text
    assert "change of the maps' mean" not in text  # the MLP's change against DC is not beyond


@pytest.mark.parametrize(
    ("low", "high", "word"),
    [(0.1, 0.5, "larger at high"), (0.5, 0.1, "smaller at high"), (0.2, 0.2, "the same")],
)
def test_noise_sentence_says_where_the_loss_is(low: float, high: float, word: str) -> None:
    text = prose.noise_sentence("resnet", 90.0, BandDrops(1.0, low, high))
    assert word in text and f"loses {report.percent(high)}" in text
    nan = prose.noise_sentence("vit", 9.0, BandDrops(1.0, float("nan"), float("nan")))
    assert "at or below chance" in nan


@pytest.mark.parametrize(
    ("resnet", "vit", "verdict", "words"),
    [
        ((0.1, 0.5), (0.5, 0.1), "reproduced", "both halves of the contrast hold"),
        ((0.1, 0.5), (0.1, 0.5), "partly", "unlike the paper's ViT"),
        ((0.5, 0.1), (0.1, 0.5), "not reproduced", "neither half holds"),
        ((float("nan"),) * 2, (0.5, 0.1), "not reproduced", "no loss to normalise"),
    ],
)
def test_c6_reading_explains_the_verdict(resnet, vit, verdict, words) -> None:
    text = prose.c6_reading([BandDrops(1.0, *resnet)], [BandDrops(1.0, *vit)])
    assert words in text and text.endswith(f'verdict "{verdict}".')


def test_c6_reading_counts_the_seeds() -> None:
    holds, fails = BandDrops(1.0, 0.1, 0.5), BandDrops(1.0, 0.5, 0.1)
    text = prose.c6_reading([holds, holds], [fails, holds])
    assert "the ResNet loses more above ½π than below at every seed, as in the paper" in text
    assert "the ViT loses no more above ½π than below at 1 of 2 seeds only" in text
    assert text.endswith('verdict "partly".')


@pytest.mark.parametrize(
    ("high", "low", "reads"),
    [
        (95.0, 20.0, "relies more on the texture"),
        (12.0, 90.0, "relies more on the layout"),
        (11.0, 9.0, "neither cue alone carries it above chance"),
    ],
)
def test_cue_sentence_reads_the_cue_against_chance(high: float, low: float, reads: str) -> None:
    text = cues_report.cue_sentence("vit", {"both": 95.0, "high": high, "low": low}, 10.0, 2000)
    assert reads in text
    assert ("(above chance)" in text) == (max(high, low) > 20)


@pytest.mark.parametrize(
    ("high", "low", "cue"),
    [(95.0, 20.0, "texture"), (12.0, 90.0, "layout"), (60.0, 60.0, "both"), (11.0, 9.0, "neither")],
)
def test_relied_cue(high: float, low: float, cue: str) -> None:
    assert cues_report.relied_cue({"high": high, "low": low}, 10.0, 2000) == cue


def test_read_cues_lists_the_cues_above_chance() -> None:
    read = cues_report.read_cues
    assert read({"high": 28.0, "low": 57.0}, 10.0, 1000) == ("texture", "layout")
    assert read({"high": 10.0, "low": 30.0}, 10.0, 1000) == ("layout",)
    assert read({"high": 11.0, "low": 9.0}, 10.0, 1000) == ()


def test_noise_glue_words_and_the_cross_comparison() -> None:
    profile = get_profile("smoke")
    models = report.chapter_models(profile)
    sweeps = {models["resnet"]: [sweep(8.0, 40.0)], models["vit"]: [sweep(8.0, 4.0)]}
    out = prose.noise_glue(profile, sweeps, chance=10.0)
    assert out["c6_cross"].startswith("The ResNet's normalised loss above ½π (0.50) is larger")
    assert out["c6_reading"].endswith('verdict "reproduced".')
    assert "30 % for the ResNet; 8 % for the ViT" in out["c6_magnitudes"]  # (8+40)/2 of 80
    sweeps[models["resnet"]] = [sweep(8.0, 40.0, clean=10.0)]  # at chance
    assert prose.noise_glue(profile, sweeps, chance=10.0)["c6_cross"] == ""


def test_verdict_summary() -> None:
    rows = [
        Comparison("C5: x", "", "", "partly"),
        Comparison("C6 at RMS 1: y", "", "", "reproduced"),
    ]
    assert report.verdict_summary(rows) == "C5: partly; C6 at RMS 1: reproduced."


def test_every_glued_value_of_the_chapter_is_generated() -> None:
    """Every ``{glue:text}`` the notebook's prose uses comes from a glue function or a glue
    call of the notebook itself."""
    profile = get_profile("smoke")
    vit, resnet = paper_like()
    local = analysis(["embed", "msa", "mlp"], [8, 8, 8], [-1.0, -1.1, -1.0], [1.0, 0.9, 1.0])
    names = {f: report.chapter_models(profile)[f] for f in ch.FAMILIES}
    analyses = {names["vit"]: vit, names["resnet"]: resnet, names["local_vit"]: local}
    sweeps = {names[f]: [sweep(8.0, 4.0)] for f in ch.NOISE_FAMILIES}
    cues = {n: {"both": 90.0, "low": 80.0, "high": 20.0, "none": 10.0} for n in names.values()}
    produced = (
        prose.feature_glue(profile, analyses)
        | prose.noise_glue(profile, sweeps, 10.0)
        | prose.cue_glue(profile, cues, 10.0, 256)
    )
    cells = json.loads(NOTEBOOK.read_text(encoding="utf-8"))["cells"]
    markdown = "".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    code = "".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    used = set(re.findall(r"\{glue:text\}`([^`]+)`", markdown))
    own = set(re.findall(r'glue\("([^"]+)"', code)) | set(re.findall(r'"([a-z_]+)": f"', code))
    assert used and not used - produced.keys() - own, used - produced.keys() - own
