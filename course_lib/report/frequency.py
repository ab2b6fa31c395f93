"""Chapter 03's numbers in words: formatted values for the prose, and the "paper vs. this run" rows
of claims C5 (MSAs low-pass, Convs high-pass), C6 (robustness to high-frequency noise) and C7
(MSAs reduce feature-map variance), with verdicts computed from the measured numbers.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

from course_lib.analysis.depth_profiles import (
    DOWNSAMPLING,
    FeatureAnalysis,
    block_changes,
    mean_change_by_kind,
)
from course_lib.analysis.robustness import NoiseSweep, band_drops
from course_lib.config import Profile
from course_lib.experiments import TrainedModel
from course_lib.report import Comparison, verdict_from

C5_MARGIN = 0.05
"""Mean change of Δ log amplitude (natural log) that counts as lowering or raising (C5)."""
C6_MARGIN = 1.0
"""Percentage points by which one accuracy drop must exceed another to count as larger (C6)."""
C7_MARGIN = 5.0
"""Mean relative change of the variance (%) that counts as lowering or raising (C7)."""

_TAGS = {"MSA": "msa", "MLP": "mlp", "Conv": "conv"}  # glue-name tag of a block category


def texture_band(profile: Profile) -> tuple[float, float] | None:
    """Per-axis frequencies (units of π, the noise bands' max-norm) of the synthetic texture cue;
    None for data without one (CIFAR, folders).

    The gratings have Euclidean radius ``texture_frequency = (r0, r1)``
    (the profile's :class:`~course_lib.data.SyntheticConfig`, which the shared models train on);
    along the max-norm that the noise bands use, such a frequency lies between ``r / √2`` and
    ``r``.
    """
    if profile.data != "synthetic":
        return None
    low, high = profile.synthetic.texture_frequency
    return low / math.sqrt(2), high


def main_magnitude(profile: Profile) -> float:
    """The noise magnitude of the chapter's main C6 line plot: the largest swept one (the box
    and the heatmaps report every magnitude)."""
    return max(profile.frequency.noise_magnitudes)


def describe_models(runs: Iterable[TrainedModel]) -> str:
    """One line per trained model: parameters, epochs, final test error."""
    lines = []
    for run in runs:
        params = sum(p.numel() for p in run.model.parameters()) / 1e6
        error = run.history.test_error[-1] if run.history.test_error else float("nan")
        lines.append(
            f"{run.name:<16} {params:5.2f} M parameters, {len(run.history.epoch)} epochs, "
            f"test error {error:5.1f} %"
        )
    return "\n".join(lines)


def prose_numbers(
    profile: Profile,
    analyses: Mapping[str, FeatureAnalysis] | None = None,
    sweeps: Mapping[str, NoiseSweep] | None = None,
    cues: Mapping[str, Mapping[str, float]] | None = None,
) -> dict[str, str]:
    """The chapter's numbers in prose, formatted, for ``myst_nb.glue`` (keys: what is given).

    Per-block means are ``f_<family>_<msa|mlp|conv|down>`` (Fourier, relative to DC), ``t_…``
    (tilt) and ``v_…`` (variance), each with a ``…_verb`` ("lower", "raise" or "barely change",
    within :data:`C5_MARGIN` / :data:`C7_MARGIN`) so that the prose follows the sign. Families are
    the profile's (``profile.models``); a model missing from the results is left out.
    """
    names = profile.models
    out: dict[str, str] = {}
    if analyses is not None:
        vit = analyses[names["vit"]].fourier
        out["grid"] = f"{vit.sizes[-1]}×{vit.sizes[-1]}"
        out["points"] = str(len(vit.delta[-1]))
        changes_ = block_changes(analyses)
        for label, changes, fmt, margin in (
            ("f", changes_.fourier, "{:+.2f}", C5_MARGIN),
            ("t", changes_.tilt, "{:+.2f}", C5_MARGIN),
            ("v", changes_.variance, "{:+.0f} %", C7_MARGIN),
        ):
            for family, name in names.items():
                for category, value in mean_change_by_kind(changes.get(name, [])).items():
                    tag = _TAGS.get(category, "down")
                    out[f"{label}_{family}_{tag}"] = fmt.format(value)
                    out[f"{label}_{family}_{tag}_verb"] = _verb(value, margin)
    if sweeps is not None:
        magnitude = main_magnitude(profile)
        out["magnitude"] = f"{magnitude:g}"
        out["magnitudes"] = ", ".join(f"{m:g}" for m in profile.frequency.noise_magnitudes)
        out["c6_margin"] = f"{C6_MARGIN:g}"
        for family, name in names.items():
            if name in sweeps:
                drops = band_drops(sweeps[name], magnitude)
                out[f"drop_{family}_high"] = f"{drops.high:.1f}"
                out[f"drop_{family}_low"] = f"{drops.low:.1f}"
                out[f"clean_{family}"] = f"{sweeps[name].clean_accuracy:.1f}"
    for family, name in names.items():
        for cue, accuracy in (cues or {}).get(name, {}).items():
            out[f"cue_{family}_{cue}"] = f"{accuracy:.0f}"
    return out


def paper_comparison(
    analyses: Mapping[str, FeatureAnalysis],
    sweeps: Mapping[str, NoiseSweep],
    profile: Profile,
    paper: Mapping[str, str],
) -> list[Comparison]:
    """The rows of the "paper vs. this run" box, verdicts computed from the numbers.

    ``paper`` holds the paper's side of each row (keys ``"C5"``, ``"C6"``, ``"C7"``).
    C5: the ViT's MSA sub-blocks lower the high-frequency Δ on average, its MLP sub-blocks raise
    it, and the ResNet's same-resolution Conv blocks raise it, each by more than
    :data:`C5_MARGIN`. C6, one row per swept magnitude
    (:func:`~course_lib.analysis.robustness.band_drops`): above ½π the ResNet loses more than the
    ViT; the ViT loses less above ½π than below; the ResNet loses more above ½π than below.
    "More" means by more than :data:`C6_MARGIN` points; all three hold for the paper's Fig. 2b.
    C7: MSA sub-blocks lower the variance, Conv blocks raise it (mean relative change, by more
    than :data:`C7_MARGIN` %).
    """
    resnet, vit = profile.models["resnet"], profile.models["vit"]
    changes = block_changes({n: analyses[n] for n in (resnet, vit)})
    fourier, variance = changes.fourier, changes.variance
    f_vit, f_res = mean_change_by_kind(fourier[vit]), mean_change_by_kind(fourier[resnet])
    v_vit, v_res = mean_change_by_kind(variance[vit]), mean_change_by_kind(variance[resnet])
    nan = float("nan")
    c5 = [
        f_vit.get("MSA", nan) < -C5_MARGIN,
        f_vit.get("MLP", nan) > C5_MARGIN,
        f_res.get("Conv", nan) > C5_MARGIN,
    ]
    c7 = [v_vit.get("MSA", nan) < -C7_MARGIN, v_res.get("Conv", nan) > C7_MARGIN]
    rows = [
        Comparison(
            "C5: MSAs low-pass, Convs high-pass (mean change of Δ log amplitude at the highest "
            "frequency per block)",
            paper["C5"],
            f"{vit}: {_means(f_vit, ('MSA', 'MLP'), '{:+.2f}')}; "
            f"{resnet}: {_means(f_res, ('Conv', DOWNSAMPLING), '{:+.2f}')}",
            verdict_from(c5),
        )
    ]
    if resnet in sweeps and vit in sweeps:
        for magnitude in sorted(sweeps[resnet].magnitudes.tolist()):
            d_res = band_drops(sweeps[resnet], magnitude)
            d_vit = band_drops(sweeps[vit], magnitude)
            c6 = [
                d_res.high > d_vit.high + C6_MARGIN,
                d_vit.high < d_vit.low - C6_MARGIN,
                d_res.high > d_res.low + C6_MARGIN,
            ]
            rows.append(
                Comparison(
                    f"C6 at RMS {magnitude:g}: ViT robust to high-frequency noise, ResNet not "
                    "(mean accuracy drop, pp)",
                    paper["C6"],
                    f"above ½π {resnet} {d_res.high:.1f}, {vit} {d_vit.high:.1f}; "
                    f"below ½π {d_res.low:.1f}, {d_vit.low:.1f}",
                    verdict_from(c6),
                )
            )
    rows.append(
        Comparison(
            "C7: MSAs reduce feature-map variance, Convs increase it (mean relative change per "
            "block)",
            paper["C7"],
            f"{vit}: {_means(v_vit, ('MSA', 'MLP'), '{:+.0f} %')}; "
            f"{resnet}: {_means(v_res, ('Conv', DOWNSAMPLING), '{:+.0f} %')}",
            verdict_from(c7),
        )
    )
    return rows


def step_times(seconds: Mapping[str, float]) -> str:
    """One line per cached step: its name and the seconds it took when it was computed."""
    return "\n".join(f"{step:<9} {s:6.1f} s" for step, s in seconds.items())


def _verb(value: float, margin: float) -> str:
    return "lower" if value < -margin else "raise" if value > margin else "barely change"


def _means(means: Mapping[str, float], categories: Sequence[str], fmt: str) -> str:
    """``"MSA -0.12, MLP +0.30"`` for the categories present in ``means``."""
    return ", ".join(f"{c} {fmt.format(means[c])}" for c in categories if c in means) or "—"


__all__ = [
    "C5_MARGIN",
    "C6_MARGIN",
    "C7_MARGIN",
    "describe_models",
    "main_magnitude",
    "paper_comparison",
    "prose_numbers",
    "step_times",
    "texture_band",
]
