"""A check that the chapters' fixed text states nothing that only a particular run could show.

Run-dependent facts ("the ViT is flatter", "training NLL near 0", "above chance") belong in
sentences generated from the numbers (:mod:`course_lib.report.prose`); fixed markdown states the
paper's claims, definitions and what to look for. :func:`lint_notebook` flags a fixed sentence
that names one of our model families together with a comparison word, or uses a phrase that
earlier runs contradicted, unless the sentence is about the paper or is conditional ("if",
"whether", "expect", a question). ``python -m course_lib lint-prose`` runs it on the chapters;
the book command runs it after every build and the test suite runs it in CI.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

#: A sentence about our models' results names a family...
_SUBJECT = re.compile(
    r"\b(ResNets?|ViTs?|AlterNets?|our (?:models?|runs?|numbers)|this run|the run)\b", re.I
)
#: ... together with a word that orders or ranks.
_COMPARISON = re.compile(
    r"\b(lower|higher|flatter|sharper|larger|smaller|fewer|(?<!at )most|least|better|worse|"
    r"outperforms?|beats?|above chance|below chance|at chance|more (?:than|negative|robust)|"
    r"less (?:than|robust))\b",
    re.I,
)
#: Phrases earlier runs contradicted: never in fixed text, whatever the subject.
_ALWAYS = re.compile(
    r"\b(near (?:0|zero)|almost perfectly|orders? of magnitude|well above chance|"
    r"fits? (?:its data )?perfectly|memoris(?:es|ed))\b",
    re.I,
)
#: A sentence about the paper, a definition or a prediction holds for any run.
_HEDGE = re.compile(
    r"\b(paper|Park|Fig\.|Figure|claims?|expect\w*|predict\w*|if|whether|would|should|might|"
    r"may|could|can|look for|hypothes\w+|typically|usually|in principle|official)\b|\?",
    re.I,
)
_CODE = re.compile(r"```.*?```|`[^`]*`|\$\$.*?\$\$|\$[^$]*\$|<!--.*?-->", re.S)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n\s*[-*]\s+|\n{2,}")


@dataclass(frozen=True)
class Finding:
    """A fixed sentence that states a run-dependent fact."""

    path: str
    cell: int  # index of the markdown cell (from 0)
    sentence: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path} cell {self.cell}: {self.reason}: {self.sentence!r}"


def lint_text(text: str) -> list[tuple[str, str]]:
    """``(sentence, reason)`` for each run-dependent sentence of a markdown text."""
    found = []
    for raw in _SENTENCE_END.split(_CODE.sub(" ", text)):
        sentence = " ".join(raw.split())
        if not sentence or _HEDGE.search(sentence):
            continue
        if m := _ALWAYS.search(sentence):
            found.append((sentence, f"run-dependent phrase {m.group(0)!r}"))
        elif _SUBJECT.search(sentence) and (m := _COMPARISON.search(sentence)):
            found.append((sentence, f"compares our models ({m.group(0)!r}) in fixed text"))
    return found


def lint_notebook(path: str | Path) -> list[Finding]:
    """Findings in the markdown cells of one notebook (code cells and outputs are generated)."""
    cells = json.loads(Path(path).read_text(encoding="utf-8"))["cells"]
    return [
        Finding(str(path), i, sentence, reason)
        for i, cell in enumerate(cells)
        if cell["cell_type"] == "markdown"
        for sentence, reason in lint_text("".join(cell["source"]))
    ]


def chapter_notebooks(root: str | Path = ".") -> list[Path]:
    """The chapters' notebooks (``notebooks/0*.ipynb``) under a repository root."""
    return sorted(Path(root).glob("notebooks/0*.ipynb"))


def add_subcommand(sub) -> None:
    """``python -m course_lib lint-prose [NOTEBOOK ...]``: exit status 1 on any finding."""
    p = sub.add_parser("lint-prose", help="flag fixed chapter text that states a run's result")
    p.add_argument("notebooks", nargs="*", help="default: the chapters, notebooks/0*.ipynb")
    p.set_defaults(func=_cmd_lint_prose)


def _cmd_lint_prose(args) -> None:
    paths = args.notebooks or chapter_notebooks()
    findings = [f for path in paths for f in lint_notebook(path)]
    for finding in findings:
        print(finding)
    print(f"lint-prose: {len(findings)} finding(s) in {len(paths)} notebook(s)")
    if findings:
        raise SystemExit(1)


__all__ = ["Finding", "add_subcommand", "chapter_notebooks", "lint_notebook", "lint_text"]
