"""Generated sentences take their words from the numbers; the lint flags run-dependent text."""

import json

import pytest

from course_lib.report import lint, prose


def test_compare_picks_the_word_from_the_values():
    assert "lower than" in prose.compare("median λ_max", ("ViT", 205.0), ("ResNet", 5110.0))
    assert "higher than" in prose.compare("median λ_max", ("ViT", 6000.0), ("ResNet", 5110.0))
    assert "(5,110)" in prose.compare("median λ_max", ("ViT", 205.0), ("ResNet", 5110.0))
    same = prose.compare("NLL", ("ViT", 1.00), ("ResNet", 1.01), tolerance=0.02)
    assert "about the same as" in same


def test_and_join():
    assert prose.and_join(["a"]) == "a"
    assert prose.and_join(["a", "b"]) == "a and b"
    assert prose.and_join(["a", "b", "c"]) == "a, b and c"
    with pytest.raises(ValueError, match="at least one"):
        prose.and_join([])


def test_ascending_lists_the_measured_order():
    assert prose.ascending({"ViT": 1.2, "ResNet": 0.64, "local ViT": 1.57}) == (
        "ResNet 0.64 < ViT 1.2 < local ViT 1.57"
    )
    assert " = " in prose.ascending({"a": 1.0, "b": 1.0})
    assert prose.ascending({"a": 0.025, "b": 0.0}, lambda v: f"{100 * v:g}%") == "b 0% < a 2.5%"


@pytest.mark.parametrize(
    ("count", "total", "word"),
    [(0, 10, "none"), (1, 10, "a few"), (3, 10, "under half"), (5, 10, "about half"),
     (8, 10, "most"), (10, 10, "all")],
)  # fmt: skip
def test_share_words(count, total, word):
    assert prose.share(count, total) == word


def test_versus_chance_uses_the_sampling_margin():
    assert prose.versus_chance(0.10, 0.10, 1000) == "at chance"
    assert prose.versus_chance(0.13, 0.10, 1000) == "above chance"
    assert prose.versus_chance(0.12, 0.10, 100) == "at chance"  # ±5.9 pts with 100 images
    assert prose.versus_chance(0.05, 0.10, 1000) == "below chance"


def test_ratio_and_sign():
    assert prose.ratio(10.0, 2.0) == "5× larger"
    assert prose.ratio(2.0, 10.0) == "5× smaller"
    assert prose.ratio(1.0, 1.01) == "about equal"
    assert prose.ratio(4600.0, 10.0) == "460× larger"
    assert prose.ratio(99.5, 1.0) == "100× larger"  # not "1e+02× larger"
    assert prose.num(104.9, "+.2g") == "+105" and prose.num(-0.093, "+.2g") == "-0.093"
    with pytest.raises(ValueError, match="positive"):
        prose.ratio(-1.0, 1.0)
    assert prose.sign_word(-0.3) == "lowers" and prose.sign_word(0.2) == "raises"


def test_lint_flags_run_dependent_fixed_text():
    bad = "The ViT is flatter than the ResNet. Training NLL ends near 0."
    reasons = [r for _, r in lint.lint_text(bad)]
    assert len(reasons) == 2, reasons


@pytest.mark.parametrize(
    "ok",
    [
        "The paper finds the ViT flatter than the ResNet.",
        "If the ViT is flatter, its median λ_max is lower.",
        "Is the ViT flatter than the ResNet?",
        "A convolution has k² C² weights.",
        "The `ViT is flatter` code span is not prose.",
    ],
)
def test_lint_allows_claims_conditionals_and_questions(ok):
    assert lint.lint_text(ok) == []


def test_lint_reads_markdown_cells_only(tmp_path):
    nb = {
        "cells": [
            {"cell_type": "code", "source": ["# the ViT is flatter than the ResNet\n"]},
            {"cell_type": "markdown", "source": ["Our models fit almost perfectly."]},
        ]
    }
    path = tmp_path / "x.ipynb"
    path.write_text(json.dumps(nb))
    (finding,) = lint.lint_notebook(path)
    assert finding.cell == 1 and "almost perfectly" in finding.reason


def test_the_chapters_state_no_run_dependent_fact_in_fixed_text():
    findings = [f for p in lint.chapter_notebooks() for f in lint.lint_notebook(p)]
    assert not findings, "\n".join(map(str, findings))


def test_lint_prose_command_fails_on_a_finding(tmp_path, capsys):
    from course_lib.__main__ import build_parser

    bad = tmp_path / "bad.ipynb"
    bad.write_text(json.dumps({"cells": [{"cell_type": "markdown", "source": ["ViTs win most."]}]}))
    args = build_parser().parse_args(["lint-prose", str(bad)])
    with pytest.raises(SystemExit) as exit_:
        args.func(args)
    assert exit_.value.code == 1 and "bad.ipynb cell 0" in capsys.readouterr().out
