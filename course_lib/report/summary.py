"""The course's closing table: every claim C1–C8 with one verdict combined from its chapter's box.

:func:`claim_verdicts` sorts the "paper vs. this run" rows of every chapter by the claim they
start with ("C3: ...") and combines each claim's *counted* rows (:func:`combine_verdicts`): the
rows of the claim's declared test (:mod:`course_lib.report.verdicts`). Rows shown beside a claim
(``Comparison.counted=False``: a measure the paper did not take, a second reading of a figure) are
listed with it but leave its verdict alone;
:func:`course_summary_html` renders the table. Collecting the rows from the chapters is
:func:`course_lib.chapters.summary.course_summary`.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from course_lib.report import BESIDE_MARK, BESIDE_NOTE, VERDICTS, Comparison
from course_lib.report.prose import and_join

CLAIMS = {
    "C1": "Weak inductive bias: train NLL Conv < local MSA < global MSA (underfitting)",
    "C2": "More data lowers ViT's train NLL",
    "C3": "MSAs flatten the loss landscape (small Hessian eigenvalues)",
    "C4": "Negative Hessian eigenvalues: small-data ViT > ViT > ResNet",
    "C5": "MSAs are low-pass filters, Convs high-pass",
    "C6": "High-frequency noise hurts ResNets specifically, ViTs not",
    "C7": "MSAs reduce feature-map variance, Convs increase it",
    "C8": "Conv and MSA are complementary: AlterNet ≥ its ResNet (accuracy or robustness)",
}
_CLAIM_ID = re.compile(r"^\s*(C\d+)")


@dataclass(frozen=True)
class ClaimVerdict:
    """One line of the closing summary: a claim, where it was measured, the combined verdict."""

    claim: str  # "C1" … "C8"
    statement: str
    chapter: str  # notebook name
    verdict: str | None  # "reproduced", "partly", "not reproduced"; None if not available
    rows: tuple[Comparison, ...]  # the chapter box's rows for this claim, counted or not
    note: str = ""  # why the verdict is not available, if it is not

    @property
    def every_row_verdict(self) -> str | None:
        """The verdict if the rows shown beside the claim (†) counted too: what the declared
        test leaves out, so that the reader can see whether it matters."""
        return combine_verdicts([r.verdict for r in self.rows]) if self.verdict else None


def combine_verdicts(verdicts: Sequence[str]) -> str:
    """One verdict from several rows: all reproduced → reproduced, none → not, else partly."""
    if verdicts and all(v == "reproduced" for v in verdicts):
        return "reproduced"
    if verdicts and all(v == "not reproduced" for v in verdicts):
        return "not reproduced"
    return "partly"


def claim_verdicts(
    chapters: Mapping[str, Sequence[str]],
    rows: Sequence[Comparison],
    notes: Mapping[str, str] | None = None,
) -> list[ClaimVerdict]:
    """The verdict of every claim of :data:`CLAIMS`.

    ``chapters[notebook]`` lists the claims a chapter measures; ``rows`` are the rows of every
    chapter's box (a row belongs to the claim its text starts with; only its counted rows make
    the verdict); ``notes[claim]`` says why a claim's rows could not be collected: such a claim
    gets ``verdict=None``, as does a claim without counted rows.
    """
    notes = notes or {}
    by_claim: dict[str, list[Comparison]] = {c: [] for c in CLAIMS}
    for row in rows:
        match = _CLAIM_ID.match(row.claim)
        if match and match.group(1) in by_claim:
            by_claim[match.group(1)].append(row)
    summary = []
    for claim, statement in CLAIMS.items():
        chapter = next(nb for nb, claims in chapters.items() if claim in claims)
        claim_rows = by_claim[claim]
        counted = [r.verdict for r in claim_rows if r.counted]
        missing = (
            "the chapter's box has no row for this claim"
            if not claim_rows
            else "the chapter's box shows rows beside this claim but none of its declared test"
        )
        note = notes.get(claim, "" if counted else missing)
        verdict = combine_verdicts(counted) if counted and not note else None
        summary.append(ClaimVerdict(claim, statement, chapter, verdict, tuple(claim_rows), note))
    return summary


def verdict_counts(summary: Sequence[ClaimVerdict]) -> dict[str | None, int]:
    """How many claims are reproduced, partly, not reproduced, and not available (None)."""
    return {v: sum(s.verdict == v for s in summary) for v in (*VERDICTS, None)}


def beside_reading(summary: Sequence[ClaimVerdict]) -> str:
    """A sentence on what counting the rows beside the claims (†) too would change."""
    changed = [s for s in summary if s.every_row_verdict != s.verdict]
    if not changed:
        return "Counting the rows shown beside the claims (†) as well would change no verdict."
    every = sum(s.every_row_verdict == "reproduced" for s in summary)
    listed = and_join([f"{s.claim} ({s.verdict} → {s.every_row_verdict})" for s in changed])
    return (
        f"Counting the rows shown beside the claims (†) as well would change {listed}: "
        f"{every} of {len(summary)} claims would read reproduced."
    )


def course_summary_html(summary: Sequence[ClaimVerdict], profile: str) -> str:
    """The closing table: claim, statement, chapter, verdict and how many checks it combines."""
    body = []
    for s in summary:
        verdict = VERDICTS[s.verdict] if s.verdict else "— not available"
        detail = s.note or "; ".join(
            f"{VERDICTS[r.verdict]} {r.claim.split(':', 1)[-1].strip()}"
            + ("" if r.counted else f" {BESIDE_MARK}")
            for r in s.rows
        )
        body.append(
            f"<tr><td><b>{s.claim}</b></td><td>{html.escape(s.statement)}</td>"
            f"<td><code>{s.chapter}</code></td><td>{verdict}</td>"
            f"<td>{html.escape(detail)}</td></tr>"
        )
    note = (
        "<em>smoke profile: tiny models and data; these verdicts only show that the code runs.</em>"
        if profile == "smoke"
        else f"<em>{html.escape(profile)} profile.</em>"
    )
    if any(not r.counted for s in summary for r in s.rows):
        note += f"<br><em>{BESIDE_MARK} {BESIDE_NOTE}</em>"
    head = (
        "<tr><th>claim</th><th>statement</th><th>chapter</th><th>verdict</th>"
        "<th>the checks behind it</th></tr>"
    )
    return (
        f'<div class="paper-vs-run"><table><thead>{head}</thead><tbody>{"".join(body)}</tbody>'
        f"</table><p>{note}</p></div>"
    )
