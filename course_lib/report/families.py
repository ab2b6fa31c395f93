"""Chapter 04's AlterNet vs. ResNet, local ViT and ViT over seeds, and the C8 verdict.

Claim C8's test, declared before the run (:func:`course_lib.report.verdicts.alternet_verdict`):
averaged over the profile's seeds, AlterNet is at least as good as the ResNet it is built from
on test accuracy or on high-frequency robustness — the normalised drop under the noise bands
centred above ½π (:func:`high_frequency_drop`). :func:`c8_text` says which, from the numbers.
"""

from __future__ import annotations

import html
import math
import statistics
from dataclasses import dataclass

from course_lib.analysis.robustness import NoiseSweep, band_drops
from course_lib.plots.style import family_label
from course_lib.report.alternet import RunSummary, html_table
from course_lib.report.prose import compare, num, over_seeds
from course_lib.report.verdicts import REPRODUCED, alternet_verdict, normalized_drop


@dataclass(frozen=True)
class FamilyComparison:
    """Every family at every seed, and the high-frequency noise test of the C8 contrast."""

    runs: dict[str, list[RunSummary]]  # family -> one run per seed of the profile, in order
    # family -> per seed: accuracy under the noise bands centred above ½π, strongest magnitude
    noise: dict[str, list[NoiseSweep]]

    def accuracy(self, family: str) -> dict[int, float]:
        """Test accuracy (%) of ``family`` per seed."""
        return {r.seed: r.test_accuracy for r in self.runs[family]}

    def high_drop(self, family: str) -> dict[int, float]:
        """Normalised high-frequency drop of ``family`` per seed: accuracy lost to the noise
        bands above ½π (their mean) over what the model had above chance (nan at chance)."""
        return {
            r.seed: high_frequency_drop(sweep, 100.0 / r.num_classes)
            for r, sweep in zip(self.runs[family], self.noise[family], strict=True)
        }


def high_frequency_drop(sweep: NoiseSweep, chance: float) -> float:
    """:func:`~course_lib.report.verdicts.normalized_drop` of the mean accuracy over the sweep's
    bands centred above ½π, at its strongest magnitude (``chance`` in %)."""
    clean = sweep.clean_accuracy
    return normalized_drop(clean, clean - band_drops(sweep).high, chance)


def _mean(values: dict[int, float]) -> float:
    return statistics.fmean(values.values())


def c8_verdict(c: FamilyComparison) -> tuple[str, str]:
    """C8 (:func:`~course_lib.report.verdicts.alternet_verdict`) on the means over seeds:
    (verdict, on which AlterNet is at least as good as the ResNet)."""
    acc = {f: _mean(c.accuracy(f)) for f in ("alternet", "resnet")}
    drop = {f: _mean(c.high_drop(f)) for f in ("alternet", "resnet")}
    return alternet_verdict(acc["alternet"], acc["resnet"], drop["alternet"], drop["resnet"])


def _range(values: dict[int, float]) -> float:
    return max(values.values()) - min(values.values())


def c8_text(c: FamilyComparison) -> str:
    """The C8 reading, generated from the means over seeds: accuracy, robustness, the verdict,
    and whether the accuracy gap exceeds the spread between seeds."""
    acc = {f: c.accuracy(f) for f in ("alternet", "resnet")}
    drop = {f: c.high_drop(f) for f in ("alternet", "resnet")}
    verdict, which = c8_verdict(c)
    sentences = [
        compare(
            "mean test accuracy",
            ("AlterNet", _mean(acc["alternet"])),
            ("the ResNet", _mean(acc["resnet"])),
            fmt=".2f",
        )
        + "."
    ]
    means = {f: _mean(d) for f, d in drop.items()}
    comparable = not any(math.isnan(v) for v in means.values())
    if comparable:
        sentences.append(
            compare(
                "mean normalised high-frequency drop",
                ("AlterNet", means["alternet"]),
                ("the ResNet", means["resnet"]),
                fmt=".3f",
            )
            + "."
        )
    else:
        sentences.append(
            "The normalised high-frequency drops cannot be compared ("
            + ", ".join(f"{family_label(f)} {num(v, '.3f')}" for f, v in means.items())
            + "): a model at chance on clean images has no accuracy above chance to lose."
        )
    if len(acc["resnet"]) > 1:
        gap = abs(_mean(acc["alternet"]) - _mean(acc["resnet"]))
        noise = max(_range(acc["resnet"]), _range(acc["alternet"]))
        sentences.append(
            f"The accuracy gap ({gap:.2f} points) is "
            + (
                f"larger than the wider of the two models' ranges over seeds ({noise:.2f})."
                if gap > noise
                else f"no larger than the wider of the two models' ranges over seeds "
                f"({noise:.2f}): more seeds could reverse it."
            )
        )
    else:
        sentences.append("With one seed the run-to-run spread is not measured.")
    if verdict == REPRODUCED:
        sentences.append(
            f"AlterNet is at least as good as the ResNet on {which}: C8 is reproduced."
        )
    else:
        robustness = (
            " and on high-frequency robustness"
            if comparable
            else ", and its robustness cannot be compared"
        )
        sentences.append(
            f"AlterNet is behind the ResNet on accuracy{robustness}: C8 is not reproduced in "
            "this run."
        )
    return " ".join(sentences)


def c8_numbers(c: FamilyComparison) -> str:
    """The C8 row's numbers: accuracy and normalised high-frequency drop of AlterNet and the
    ResNet, per seed with mean and range."""
    return "; ".join(
        f"{label}: "
        + ", ".join(
            f"{family_label(f)} {over_seeds(values(f), fmt)}" for f in ("alternet", "resnet")
        )
        for label, values, fmt in (
            ("accuracy (%)", c.accuracy, ".2f"),
            ("normalised high-frequency drop", c.high_drop, ".3f"),
        )
    )


def family_table_html(c: FamilyComparison) -> str:
    """Every family at every seed: parameters, accuracy, NLL, the normalised high-frequency
    drop where measured, and the training speed."""
    head = (
        "model",
        "seed",
        "parameters",
        "test accuracy (%)",
        "test NLL",
        "normalised high-frequency drop",
        "s / epoch",
    )
    cells = []
    for f, runs in c.runs.items():
        drops = c.high_drop(f) if f in c.noise else {}
        for r in runs:
            cells.append(
                (
                    f"{family_label(f)} (<code>{html.escape(r.name)}</code>)",
                    str(r.seed),
                    f"{r.params:,}",
                    f"{r.test_accuracy:.2f}",
                    f"{r.test_nll:.4f}",
                    num(drops[r.seed], ".3f") if drops else "—",
                    f"{r.seconds_per_epoch:.1f}",
                )
            )
    return html_table(head, cells)
