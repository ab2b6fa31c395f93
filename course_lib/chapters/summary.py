"""The course's closing table: the verdict of every claim, from every chapter's box.

Each chapter module defines ``comparisons(profile)``, built from its cached steps, so collecting
them is fast once the chapters have run. Rendering and combining: :mod:`course_lib.report.summary`.
"""

from __future__ import annotations

import warnings

from course_lib.chapters import (
    ch01_inductive_bias,
    ch02_loss_landscape,
    ch03_frequency,
    ch04_alternet,
)
from course_lib.config import Profile, as_profile
from course_lib.report import Comparison
from course_lib.report.summary import ClaimVerdict, claim_verdicts

CHAPTERS = {  # notebook -> (chapter module, claims it measures)
    "01_inductive_bias": (ch01_inductive_bias, ("C1", "C2")),
    "02_loss_landscape": (ch02_loss_landscape, ("C3", "C4")),
    "03_frequency": (ch03_frequency, ("C5", "C6", "C7")),
    "04_alternet": (ch04_alternet, ("C8",)),
}


def course_summary(profile: Profile | str | None = None) -> list[ClaimVerdict]:
    """The verdict of every claim C1–C8, from the rows of every chapter's box.

    Several rows of one claim are combined (:func:`course_lib.report.summary.combine_verdicts`).
    The claims of a chapter whose rows cannot be computed get ``verdict=None`` and a ``note``
    saying why (with a warning): the closing table never hides a failure, nor does one earlier
    chapter's failure stop this one (chapter 04's own failure is raised).
    """
    profile = as_profile(profile)
    rows: list[Comparison] = []
    notes: dict[str, str] = {}
    for notebook, (module, claims) in CHAPTERS.items():
        try:
            rows += module.comparisons(profile)
        except Exception as err:  # another chapter's failure must not break the course's end
            if module is ch04_alternet:
                raise
            message = f"{notebook}: {type(err).__name__}: {err}"
            warnings.warn(f"closing summary: no verdict from {message}", stacklevel=2)
            notes.update(dict.fromkeys(claims, f"could not collect the verdict ({message})"))
    chapters = {notebook: claims for notebook, (_, claims) in CHAPTERS.items()}
    return claim_verdicts(chapters, rows, notes)
