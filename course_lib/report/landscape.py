"""Chapter 02 in words and numbers: the protocol, the prose numbers, "paper vs. this run" rows.

Everything here formats results that :mod:`course_lib.chapters.ch02_loss_landscape` computed
(:class:`~course_lib.analysis.spectra.ModelSpectra`,
:class:`~course_lib.analysis.curvature.ModelSurfaces` and their numbers); nothing computes a
Hessian or a surface. Verdicts come from the numbers (:func:`~course_lib.report.verdict_from`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from torch import Tensor

from course_lib.analysis.curvature import ModelSurfaces, SurfaceNumbers, surface_numbers
from course_lib.analysis.spectra import (
    ModelSpectra,
    SpectrumNumbers,
    log_correlation,
    spectrum_numbers,
    top_groups,
)
from course_lib.config import Profile
from course_lib.report import Comparison, verdict_from


@dataclass(frozen=True)
class Roles:
    """Which spectrum label plays which part in the chapter's comparisons."""

    resnet: str  # the trained ResNet
    vit: str  # the trained ViT
    resnet_init: str  # the ResNet at initialisation
    vit_init: str  # the ViT at initialisation
    vit_small: str | None = None  # the ViT trained on the smallest data fraction (C4)


# ---------------------------------------------------------------------------------------------
# Numbers in words


def num(x: float, sig: int = 3, *, sign: bool = False) -> str:
    """``x`` to ``sig`` significant digits without exponent: 1370, 0.00348, +3.15."""
    if x == 0 or not math.isfinite(x):
        return f"{x:+g}" if sign else f"{x:g}"
    digits = sig - 1 - math.floor(math.log10(abs(x)))
    text = f"{round(x, digits):.{max(digits, 0)}f}"
    return f"+{text}" if sign and x > 0 else text


def factor(x: float) -> str:
    """A ratio for prose: two significant digits below 10, whole numbers above (no 1e+02)."""
    return f"{x:.0f}" if x >= 10 else num(x, 2)


def times(a: float, b: float) -> str:
    """ "3.2× smaller than" / "3.2× larger than" / "about as large as": a compared with b."""
    if not (a > 0 and b > 0):
        return "not comparable with"
    ratio = a / b
    if 0.8 <= ratio <= 1.25:
        return "about as large as"
    text = factor(max(ratio, 1 / ratio)) + "×"
    return f"{text} smaller than" if ratio < 1 else f"{text} larger than"


def value_range(values: Tensor) -> str:
    """ "0.34 to 231 (a factor 680)": smallest and largest value and their ratio."""
    low, high = float(values.min()), float(values.max())
    ratio = f" (a factor {factor(high / low)})" if low > 0 else ""
    return f"{num(low, 2)} to {num(high)}{ratio}"


# ---------------------------------------------------------------------------------------------
# Printed in the chapter


def protocol(profile: Profile, labels: Sequence[str], tol: float) -> str:
    """What the chapter measures, in words: ``labels`` of the models, Lanczos tolerance ``tol``."""
    h, t = profile.hessian, profile.train
    return "\n".join(
        [
            f"models            : {', '.join(labels)}",
            "loss              : NLL (cross-entropy, batch mean), no weight-decay term",
            f"Hessian batches   : {h.batches} mini-batches of {h.batch_size} training images, "
            f"augmented ({t.augment}), fixed seed",
            "model mode        : eval (BatchNorm running statistics, no dropout)",
            f"eigenvalues       : {h.k} largest (LA) and {h.k} smallest "
            "(SA) per batch (initialised models: LA only),",
            f"                    Lanczos to {tol:.0%}, at most {h.max_iter} "
            "Hessian-vector products each",
            f"loss surfaces     : {profile.landscape.points}×{profile.landscape.points} grid on "
            f"[-1, 1]², {profile.landscape.batches} batch(es) of {t.batch_size} images",
        ]
    )


def spectra_costs(spectra: Mapping[str, ModelSpectra]) -> str:
    """One line per model: seconds spent and Hessian-vector products per batch and end."""
    lines = []
    for label, entry in spectra.items():
        hvps = ", ".join(f"{w} {s.n_hvp.double().mean():.0f}" for w, s in entry.ends.items())
        lines.append(
            f"{label:24s} {entry.seconds:6.1f} s   Hessian-vector products per batch: {hvps}"
        )
    return "\n".join(lines)


def spectrum_peaks(spectra: Mapping[str, ModelSpectra]) -> str:
    """One line per model: median λ_max, and median λ_min where measured."""
    lines = []
    for label, entry in spectra.items():
        n = spectrum_numbers(entry)
        low = f"   median λ_min {n.median_min:9.3g}" if entry.smallest is not None else ""
        lines.append(f"{label:24s} median λ_max {n.median_max:9.3g}{low}")
    return "\n".join(lines)


def token_numbers(scales: Mapping[str, float]) -> dict[str, str]:
    """The class-token numbers the prose quotes (``scales`` from ``token_scales``)."""
    return {
        "cls_rms": f"{scales['cls']:.2g}",
        "patch_rms": f"{scales['patches']:.2g}",
        "cls_gain": f"{scales['patches'] / scales['cls']:.0f}",
    }


# ---------------------------------------------------------------------------------------------
# Paper vs. this run


def _more_negative(a: SpectrumNumbers, b: SpectrumNumbers) -> list[bool]:
    """Checks that spectrum ``a`` is more non-convex than ``b``: by the paper's NEP, by the
    median most negative eigenvalue, and relative to the sharpness (median |λ_min| / λ_max)."""
    return [a.nep > b.nep, a.median_min < b.median_min, a.neg_ratio > b.neg_ratio]


def paper_comparison(
    numbers: Mapping[str, SpectrumNumbers],
    flatness: Mapping[str, SurfaceNumbers],
    *,
    paper: Mapping[str, Any],
    resnet: str,
    vit: str,
    vit_small: str | None,
    weight_decay: float,
) -> list[Comparison]:
    """The rows of the "paper vs. this run" box, verdicts computed from the measured values.

    C3 (spectrum): the ViT's median λ_max *and* its APE (mean positive value) below ResNet's.
    C4: :func:`_more_negative`, for ViT vs ResNet and for small-data vs full-data ViT.
    The scale-free rows use :class:`SurfaceNumbers`. ``paper`` is the chapter's ``PAPER``;
    ``vit_small`` is the small-data ViT's label (None: no such row).
    """
    r, v = numbers[resnet], numbers[vit]
    p = paper["c3_peaks"]
    fr, fv = flatness[resnet], flatness[vit]
    rise = paper["rise_1_0"]
    rows = [
        Comparison(
            "C3: ViT's Hessian spectrum peak ≪ ResNet's (λ_max per batch)",
            f"ViT ≈ {p['early'][0]} vs ResNet ≈ {p['early'][1]} early; ≈ {p['300'][0]} vs "
            f"{p['300'][1]} at epoch 300 (≈ read from Fig. 4)",
            f"median λ_max: ViT {num(v.median_max)} vs ResNet {num(r.median_max)}; "
            f"APE: ViT {num(v.ape)} vs ResNet {num(r.ape)}",
            verdict_from([v.median_max < r.median_max, v.ape < r.ape]),
        ),
        Comparison(
            "C3 (scale-free): curvature |dᵀHd| along filter-normalised directions, ViT < ResNet",
            "not measured in the paper; its filter-normalised surfaces look flatter for ViT "
            "(Fig. 1a)",
            f"mean |dᵀHd|: ViT {num(fv.curvature)} vs ResNet {num(fr.curvature)}",
            verdict_from([fv.curvature < fr.curvature]),
        ),
        Comparison(
            "C3 (surface): smaller loss rise at (1, 0) for ViT",
            f"ViT ≈ +{rise['vit']} vs ResNet ≈ +{rise['resnet']} (NLL + L2, "
            "official losslandscape notebook, CIFAR-100)",
            f"NLL: ViT {num(fv.nll, sign=True)} vs ResNet {num(fr.nll, sign=True)}; "
            f"NLL + L2 (wd={weight_decay:g}): ViT {num(fv.nll_l2, sign=True)} vs ResNet "
            f"{num(fr.nll_l2, sign=True)}",
            verdict_from([fv.nll < fr.nll, fv.nll_l2 < fr.nll_l2]),
        ),
        Comparison(
            "C4: ViT has negative eigenvalues, ResNet almost none",
            f"ViT: many negative top-5 values (≈ {paper['c4_vit_negative_range'][0]} … 0); "
            "ResNet: almost none (≈ read from Fig. 4)",
            f"NEP (top-{v.k} by |λ|): ViT {v.nep:.0%} vs ResNet {r.nep:.0%}; "
            f"median λ_min: ViT {num(v.median_min, 2)} vs ResNet {num(r.median_min, 2)}; "
            f"median |λ_min|/λ_max: ViT {num(v.neg_ratio, 2)} vs ResNet {num(r.neg_ratio, 2)}",
            verdict_from(_more_negative(v, r)),
        ),
        Comparison(
            "C4 (scale-free): more directions curve down for ViT (dᵀHd < 0)",
            "not measured in the paper",
            f"ViT {fv.negative_directions:.0%} vs ResNet {fr.negative_directions:.0%} "
            "of the random filter-normalised directions",
            verdict_from([fv.negative_directions > fr.negative_directions]),
        ),
    ]
    if vit_small is not None:
        s = numbers[vit_small]
        rows.append(
            Comparison(
                "C4: fewer negative eigenvalues with more data (ViT)",
                f"6 % of CIFAR-100: ≈ {paper['c4_small_over_full']}× the negative mass of "
                "full data (≈ read from Fig. 4)",
                f"NEP: small data {s.nep:.0%} vs full {v.nep:.0%}; median λ_min: "
                f"{num(s.median_min, 2)} vs {num(v.median_min, 2)}; median |λ_min|/λ_max: "
                f"{num(s.neg_ratio, 2)} vs {num(v.neg_ratio, 2)}",
                verdict_from(_more_negative(s, v)),
            )
        )
    return rows


# ---------------------------------------------------------------------------------------------
# Every number the prose quotes


def _groups(entry: ModelSpectra) -> str:
    return ", ".join(f"{g} {s:.0%}" for g, s in top_groups(entry.largest))


def prose_numbers(
    spectra: Mapping[str, ModelSpectra],
    surfaces: Mapping[str, ModelSurfaces],
    profile: Profile,
    roles: Roles,
    n_directions: int,
) -> dict[str, str]:
    """Every number the chapter's prose quotes, formatted, for ``myst_nb.glue``.

    ``surfaces`` is keyed by the trained models' labels (``roles.resnet``, ``roles.vit``);
    ``n_directions`` is the number of random directions of the curvature.
    """
    resnet, vit, small = roles.resnet, roles.vit, roles.vit_small
    numbers = {name: spectrum_numbers(e) for name, e in spectra.items()}
    flat = {name: surface_numbers(s, profile.train.weight_decay) for name, s in surfaces.items()}
    r, v = numbers[resnet], numbers[vit]
    ri, vi = numbers[roles.resnet_init], numbers[roles.vit_init]
    out = {
        "resnet_lmax": num(r.median_max),
        "vit_lmax": num(v.median_max),
        "vit_vs_resnet": times(v.median_max, r.median_max),
        "resnet_init_lmax": num(ri.median_max),
        "vit_init_lmax": num(vi.median_max),
        "vit_vs_resnet_init": times(vi.median_max, ri.median_max),
        "resnet_range": value_range(spectra[resnet].largest.eigenvalues),
        "vit_range": value_range(spectra[vit].largest.eigenvalues),
        "vit_top_groups": _groups(spectra[vit]),
        "vit_init_top_groups": _groups(spectra[roles.vit_init]),
        "resnet_top_groups": _groups(spectra[resnet]),
        "n_directions": str(n_directions),
        "resnet_curv": num(flat[resnet].curvature),
        "resnet_negdir": f"{flat[resnet].negative_directions:.0%}",
        "vit_negdir": f"{flat[vit].negative_directions:.0%}",
        "vit_curv": num(flat[vit].curvature),
        "vit_vs_resnet_curv": times(flat[vit].curvature, flat[resnet].curvature),
        "n_batches": str(profile.hessian.batches),
        "batch_size": str(profile.hessian.batch_size),
        "k": str(profile.hessian.k),
        "wd": f"{profile.train.weight_decay:g}",
    }
    for key, name in (("resnet", resnet), ("vit", vit), ("small", small)):
        if name is None:
            continue
        n = numbers[name]
        out |= {
            f"{key}_corr": f"{log_correlation(spectra[name]):.2f}",
            f"{key}_nep": f"{n.nep:.0%}",
            f"{key}_ape": num(n.ape),
            f"{key}_lmax": num(n.median_max),
            f"{key}_ratio": num(n.neg_ratio, 2),
            f"{key}_lmin": num(n.median_min),
            f"{key}_hvp": f"{n.hvp:.0f}",
        }
    for key, name in (("resnet", resnet), ("vit", vit)):
        f = flat[name]
        out |= {
            f"{key}_rise": num(f.nll, sign=True),
            f"{key}_rise_l2": num(f.nll_l2, sign=True),
            f"{key}_rise_mean": num(f.mean, sign=True),
            f"{key}_center": num(f.center),
        }
    out["vit_vs_resnet_rise"] = times(flat[vit].mean, flat[resnet].mean)
    if small is not None:
        out["small_fraction"] = f"{min(profile.data_fractions):.0%}"
    return out


__all__ = [
    "Roles",
    "factor",
    "num",
    "paper_comparison",
    "prose_numbers",
    "protocol",
    "spectra_costs",
    "spectrum_peaks",
    "times",
    "token_numbers",
    "value_range",
]
