"""The coding exercises (``notebooks/exercises/``) and their checks (``course_lib.exercises``).

The code under test is the code the reader sees: each function is taken from its notebook cell
(the solution cell, tagged ``solution``, or the stub, tagged ``stub``) and defined after the
notebook's setup cell. Typical mistakes are made by editing the solution's text, so a mistake
test breaks loudly if the solution changes under it.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from course_lib import exercises
from course_lib.report.lint import lint_notebook

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks" / "exercises"

# function the student writes -> its notebook
EXERCISES = {
    "neighbourhood_mask": "01_attention",
    "self_attention": "01_attention",
    "hessian_vector_product": "02_curvature",
    "power_iteration": "02_curvature",
    "delta_log_amplitude": "03_frequency",
    "band_limited_noise": "03_frequency",
}

# (function, text in its solution, replacement, a fragment of the check's message)
MISTAKES = [
    ("neighbourhood_mask", "(kernel - 1) // 2", "kernel // 2", "neighbourhood_mask(6, 2)"),
    ("neighbourhood_mask", ".clamp(0, side - kernel)", "", "sees 4 keys instead of 9"),
    ("self_attention", " / math.sqrt(d)", "", "without the 1/√d scale"),
    ("self_attention", "masked_fill(~mask", "masked_fill(mask", "look at the mask"),
    ("self_attention", ".transpose(1, 2).reshape(b, n, dim)", ".reshape(b, n, dim)", "global"),
    ("hessian_vector_product", "create_graph=True", "create_graph=False", "create_graph=True"),
    ("hessian_vector_product", "(g * piece).sum()", "g.sum()", "H times a vector of ones"),
    ("hessian_vector_product", "return torch.cat", "return -torch.cat", "−H v"),
    ("power_iteration", "eigenvalue = v @ w", "eigenvalue = w.norm()", "loses the sign"),
    ("power_iteration", "v = w / w.norm()", "v = w", "expected −8"),
    ("delta_log_amplitude", "diagonal - diagonal[0]", "diagonal", "entry 0 should be exactly 0"),
    (
        "delta_log_amplitude",
        "torch.log(spectrum.abs() + 1e-6).mean(dim=(0, 1))",
        "torch.log(spectrum.abs().mean(dim=(0, 1)) + 1e-6)",
        "log of the averaged amplitude",
    ),
    ("delta_log_amplitude", "// 2 + 1)", "// 2)", "has shape (4,), expected (5,)"),
    ("band_limited_noise", "< center + width / 2", "<= center + width / 2", "outside the band"),
    (
        "band_limited_noise",
        "(frequency >= center - width / 2)",
        "(frequency >= center - width)",
        "outside the band",
    ),
    (
        "band_limited_noise",
        "torch.maximum(fy[:, None], fx[None, :])",
        "(fy[:, None] ** 2 + fx[None, :] ** 2).sqrt()",
        "the band",
    ),
    ("band_limited_noise", "mean(dim=(-3, -2, -1), keepdim=True)", "mean()", "has RMS"),
    ("band_limited_noise", "return rms * noise", "return noise", "has RMS"),
]  # fmt: skip


def _code_cells(notebook: str) -> list[dict]:
    cells = json.loads((NOTEBOOKS / f"{notebook}.ipynb").read_text(encoding="utf-8"))["cells"]
    return [cell for cell in cells if cell["cell_type"] == "code"]


def _source(cell: dict) -> str:
    """The cell's code without IPython magics (``%matplotlib inline``)."""
    lines = "".join(cell["source"]).splitlines()
    return "\n".join(line for line in lines if not line.lstrip().startswith("%"))


def _cell_defining(name: str, tag: str) -> str:
    """The source of the one code cell tagged ``tag`` that defines ``name``."""
    found = [
        _source(cell)
        for cell in _code_cells(EXERCISES[name])
        if tag in cell["metadata"].get("tags", []) and f"def {name}(" in "".join(cell["source"])
    ]
    assert len(found) == 1, f"{EXERCISES[name]}: {len(found)} cells tagged {tag!r} define {name}"
    return found[0]


def _define(name: str, source: str) -> Callable:
    """``name`` as defined by ``source`` after the notebook's setup cell (its first code cell).

    Only the function definition is run, not the check that the cell may call after it.
    """
    namespace: dict = {}
    exec(_source(_code_cells(EXERCISES[name])[0]), namespace)
    (definition,) = [
        node
        for node in ast.parse(source).body
        if isinstance(node, ast.FunctionDef) and node.name == name
    ]
    exec(compile(ast.Module([definition], type_ignores=[]), name, "exec"), namespace)
    return namespace[name]


def _check(name: str) -> Callable:
    return getattr(exercises, f"check_{name}")


@pytest.mark.parametrize("name", EXERCISES)
def test_the_notebook_solution_passes_its_check(name, capsys):
    source = _cell_defining(name, "solution")
    assert _check(name)(_define(name, source)) is True
    assert capsys.readouterr().out.startswith(f"✓ {name}:")
    # the cell runs the check itself, so the built book shows it passing
    assert f"\ncheck_{name}({name})" in source, (
        f"the solution cell of {name} does not run its check"
    )


@pytest.mark.parametrize(
    ("name", "old", "new", "message"),
    MISTAKES,
    ids=[f"{m[0]}:{m[2] or 'removed'}" for m in MISTAKES],
)
def test_a_typical_mistake_fails_the_check_with_a_message_that_names_it(name, old, new, message):
    source = _cell_defining(name, "solution")
    assert old in source, f"the solution of {name} no longer contains {old!r}: update MISTAKES"
    wrong = _define(name, source.replace(old, new))
    with pytest.raises(AssertionError, match=re.escape(message)):
        _check(name)(wrong)


@pytest.mark.parametrize("name", EXERCISES)
def test_the_stub_reports_that_it_is_not_written_without_raising(name, capsys):
    stub = _define(name, _cell_defining(name, "stub"))
    assert _check(name)(stub) is False
    assert capsys.readouterr().out == (
        f"not written yet: fill in `{name}` above, or open the solution below\n"
    )


def test_the_exercise_notebooks_state_no_run_dependent_fact_in_fixed_text():
    notebooks = sorted(NOTEBOOKS.glob("*.ipynb"))
    assert len(notebooks) == len(set(EXERCISES.values()))
    findings = [f for path in notebooks for f in lint_notebook(path)]
    assert not findings, "\n".join(map(str, findings))


def test_every_exercise_notebook_is_in_the_book():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    files = {
        entry["file"]
        for part in toc["parts"]
        for chapter in part["chapters"]
        for entry in [chapter, *chapter.get("sections", [])]
    }
    missing = [
        p.stem for p in NOTEBOOKS.glob("*.ipynb") if f"notebooks/exercises/{p.stem}" not in files
    ]
    assert not missing, f"add these notebooks to _toc.yml: {missing}"
