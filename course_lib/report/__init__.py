"""The "paper vs. this run" box: the paper's number, ours, and a verdict computed from the run.

Chapters build a list of :class:`Comparison` rows from measured values and display them with
:func:`paper_vs_run`; verdicts come from checks on the numbers (e.g. :func:`ordered`), never
typed by hand, so a rebuild with different results updates the verdict too.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

VERDICTS = {
    "reproduced": "✅ reproduced",
    "partly": "🟡 partly",
    "not reproduced": "❌ not at this scale",
}

BESIDE_MARK = "†"
BESIDE_NOTE = (
    "shown beside the claim, not part of its declared test: it does not change the claim's "
    "verdict in the closing table."
)


@dataclass(frozen=True)
class Comparison:
    """One row of the box."""

    claim: str  # e.g. "C1: train NLL ResNet < local ViT < ViT"
    paper: str  # the paper's number or figure, e.g. "2.09 < 2.23 < 2.52 (≈ read from Fig. 5a)"
    ours: str  # our measured values, formatted
    verdict: str  # "reproduced", "partly" or "not reproduced"
    # Part of the claim's declared test (report/verdicts.py)? False: a check shown beside the
    # claim (a measure the paper did not take, a second reading of its figure), which the
    # closing table lists but does not combine into the claim's verdict.
    counted: bool = True

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {sorted(VERDICTS)}, not {self.verdict!r}")


def ordered(values: Mapping[str, float], order: Sequence[str], *, strict: bool = True) -> bool:
    """Whether ``values[order[0]] < values[order[1]] < ...`` (``<=`` if not strict)."""
    seq = [values[k] for k in order]
    pairs = zip(seq, seq[1:], strict=False)
    return all(a < b for a, b in pairs) if strict else all(a <= b for a, b in pairs)


def verdict_from(checks: Sequence[bool]) -> str:
    """ "reproduced" if every check holds, "partly" if some do, "not reproduced" if none."""
    if checks and all(checks):
        return "reproduced"
    return "partly" if any(checks) else "not reproduced"


def paper_vs_run_html(rows: Sequence[Comparison], profile: str) -> str:
    """The box as an HTML table (what :func:`paper_vs_run` displays)."""
    note = (
        "<em>smoke profile: tiny models and data; these numbers only show that the code runs.</em>"
        if profile == "smoke"
        else f"<em>{html.escape(profile)} profile.</em>"
    )
    body = "".join(
        f"<tr><td>{html.escape(r.claim)}{'' if r.counted else BESIDE_MARK}</td>"
        f"<td>{html.escape(r.paper)}</td><td>{html.escape(r.ours)}</td>"
        f"<td>{VERDICTS[r.verdict]}</td></tr>"
        for r in rows
    )
    if not all(r.counted for r in rows):
        note += f"<br><em>{BESIDE_MARK} {BESIDE_NOTE}</em>"
    return (
        '<div class="paper-vs-run"><table><thead><tr><th>claim</th><th>paper</th>'
        f"<th>this run</th><th>verdict</th></tr></thead><tbody>{body}</tbody></table>"
        f"<p>{note}</p></div>"
    )


def paper_vs_run(rows: Sequence[Comparison], profile: str):
    """Display the box in a notebook (an ``IPython.display.HTML`` object)."""
    from IPython.display import HTML

    return HTML(paper_vs_run_html(rows, profile))
