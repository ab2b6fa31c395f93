"""The course's closing table: every claim C1–C8 with one verdict combined from its chapter's box.

:func:`claim_verdicts` sorts the "paper vs. this run" rows of every chapter by the claim they
start with ("C3: ...") and combines each claim's rows (:func:`combine_verdicts`);
:func:`course_summary_html` renders the table. Collecting the rows from the chapters is
:func:`course_lib.chapters.summary.course_summary`.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from course_lib.report import VERDICTS, Comparison

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
    rows: tuple[Comparison, ...]  # the chapter box's rows for this claim
    note: str = ""  # why the verdict is not available, if it is not


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
    chapter's box (a row belongs to the claim its text starts with); ``notes[claim]`` says why
    a claim's rows could not be collected: such a claim gets ``verdict=None``, as does a claim
    without rows.
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
        note = notes.get(claim, "" if claim_rows else "the chapter's box has no row for this claim")
        verdict = (
            combine_verdicts([r.verdict for r in claim_rows]) if claim_rows and not note else None
        )
        summary.append(ClaimVerdict(claim, statement, chapter, verdict, tuple(claim_rows), note))
    return summary


def verdict_counts(summary: Sequence[ClaimVerdict]) -> dict[str | None, int]:
    """How many claims are reproduced, partly, not reproduced, and not available (None)."""
    return {v: sum(s.verdict == v for s in summary) for v in (*VERDICTS, None)}


def course_summary_html(summary: Sequence[ClaimVerdict], profile: str) -> str:
    """The closing table: claim, statement, chapter, verdict and how many checks it combines."""
    body = []
    for s in summary:
        verdict = VERDICTS[s.verdict] if s.verdict else "— not available"
        detail = s.note or "; ".join(
            f"{VERDICTS[r.verdict]} {r.claim.split(':', 1)[-1].strip()}" for r in s.rows
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
    head = (
        "<tr><th>claim</th><th>statement</th><th>chapter</th><th>verdict</th>"
        "<th>the checks behind it</th></tr>"
    )
    return (
        f'<div class="paper-vs-run"><table><thead>{head}</thead><tbody>{"".join(body)}</tbody>'
        f"</table><p>{note}</p></div>"
    )
