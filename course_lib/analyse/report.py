"""Figures, ``results.json`` and a one-page ``report.html`` (figures inline, readable offline)."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure

from course_lib.analysis.fourier import FourierProfile
from course_lib.analysis.landscape import Surface1D, Surface2D
from course_lib.analysis.robustness import NoiseSweep
from course_lib.analysis.variance import VarianceProfile
from course_lib.io import atomic_write_bytes, atomic_write_json
from course_lib.plots.eigenvalues import plot_max_eigenvalue_spectrum
from course_lib.plots.frequency import (
    plot_delta_log_amplitude,
    plot_high_frequency_over_depth,
    plot_noise_heatmap,
    plot_variance_over_depth,
)
from course_lib.plots.landscape import plot_loss_contour, plot_loss_curve_1d

FIGURES = {
    "hessian": ("hessian.png", "Hessian max-eigenvalue spectrum (paper Fig. 1c, 4)"),
    "landscape_1d": ("landscape_1d.png", "Loss along a filter-normalised direction"),
    "landscape_2d": ("landscape_2d.png", "Loss surface over two directions (paper Fig. 1a)"),
    "fourier": ("fourier.png", "Δ log amplitude of the feature maps (paper Fig. 2a, 8)"),
    "variance": ("variance.png", "Feature-map variance over depth (paper Fig. 9)"),
    "noise": ("noise.png", "Accuracy drop under band-limited noise (paper Fig. 2b)"),
}
"""Diagnostic → (PNG file name, caption)."""


def figures(results: dict[str, Any], name: str = "model") -> dict[str, Figure]:
    """One matplotlib figure per diagnostic present in ``results`` (from ``run_diagnostics``).

    Plain :class:`~matplotlib.figure.Figure` s, not pyplot ones: no display or backend is needed
    and nothing is left open.
    """
    out = {}
    if "hessian" in results:
        fig = Figure(figsize=(6, 3.5))
        ax = fig.subplots()
        rows = torch.tensor(results["hessian"]["eigenvalues"], dtype=torch.float64)
        plot_max_eigenvalue_spectrum({name: rows}, ax=ax, bins=min(40, max(5, rows.numel())))
        out["hessian"] = fig
    if "landscape_1d" in results:
        r = results["landscape_1d"]
        surface = Surface1D(*(np.asarray(r[k]) for k in ("alphas", "loss", "accuracy")), 0.0, "NLL")
        fig = Figure(figsize=(5.5, 3.5))
        ax = fig.subplots()
        plot_loss_curve_1d({name: surface}, ax=ax)
        out["landscape_1d"] = fig
    if "landscape_2d" in results:
        r = results["landscape_2d"]
        arrays = (np.asarray(r[k]) for k in ("xs", "ys", "loss", "accuracy"))
        fig = Figure(figsize=(5, 4))
        ax = fig.subplots()
        plot_loss_contour(Surface2D(*arrays, 0.0, "NLL"), ax=ax, levels=10)
        out["landscape_2d"] = fig
    if "fourier" in results:
        profile = fourier_profile_of(results["fourier"])
        fig = Figure(figsize=(11, 3.5))
        left, right = fig.subplots(1, 2)
        plot_delta_log_amplitude(profile, ax=left)
        plot_high_frequency_over_depth({name: profile}, ax=right)
        out["fourier"] = fig
    if "variance" in results:
        r = results["variance"]
        values = torch.tensor([np.nan if v is None else v for v in r["values"]])
        profile = VarianceProfile(r["names"], r["kinds"], torch.tensor(r["depth"]), values)
        fig = Figure(figsize=(5.5, 3.5))
        ax = fig.subplots()
        plot_variance_over_depth({name: profile}, ax=ax)
        out["variance"] = fig
    if "noise" in results:
        r = results["noise"]
        sweep = NoiseSweep(
            torch.tensor(r["centers"]),
            torch.tensor(r["magnitudes"]),
            r["width"],
            r["clean_accuracy"],
            torch.tensor(r["accuracy"]),
            torch.tensor(r["drop"]),
            r["num_samples"],
        )
        fig = Figure(figsize=(6, 3.5))
        ax = fig.subplots()
        plot_noise_heatmap(sweep, ax=ax)
        out["noise"] = fig
    for fig in out.values():
        fig.tight_layout()
    return out


def fourier_profile_of(r: dict[str, Any]) -> FourierProfile:
    """The :class:`FourierProfile` back from its ``results.json`` form."""
    return FourierProfile(
        names=r["names"],
        kinds=r["kinds"],
        depth=torch.tensor(r["depth"]),
        delta=[torch.tensor(d) for d in r["delta"]],
        frequencies=[torch.tensor(f) for f in r["frequencies"]],
        sizes=r["sizes"],
        high_frequency=torch.tensor(r["high_frequency"]),
    )


def write_report(results: dict[str, Any], out: str | Path, title: str) -> Path:
    """Write ``results.json``, one PNG per diagnostic and ``report.html`` into ``out``.

    The page embeds the PNGs as base64 ``data:`` URIs, so it is one self-contained file.
    Returns the path of ``report.html``.
    """
    out = Path(out)
    atomic_write_json(out / "results.json", results)
    sections = []
    for key, fig in figures(results, results.get("model", "model")).items():
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=90)
        png = buffer.getvalue()
        file, caption = FIGURES[key]
        atomic_write_bytes(out / file, png)
        data = base64.b64encode(png).decode("ascii")
        sections.append(
            f'<figure id="{key}"><img alt="{html.escape(caption)}" '
            f'src="data:image/png;base64,{data}"><figcaption>{html.escape(caption)}'
            f"{_summary(key, results)}</figcaption></figure>"
        )
    page = _PAGE.format(
        title=html.escape(title),
        meta=_meta(results),
        sections="\n".join(sections),
    )
    path = out / "report.html"
    atomic_write_bytes(path, page.encode("utf-8"))
    return path


def _summary(key: str, results: dict[str, Any]) -> str:
    r = results[key]
    if key == "hessian":
        ape = "–" if r["ape"] is None else f"{r['ape']:.4g}"
        notes = "".join(f"<br>⚠ {html.escape(w)}" for w in r.get("warnings", []))
        low, high = r["nep_interval"]
        return (
            f" — APE {ape}, NEP {r['nep']:.1%} (95 % interval {low:.1%}–{high:.1%}, design "
            f"effect {r['design_effect']:.3g}) over {r['n']} values{notes}"
        )
    if key == "noise":
        return f" — clean accuracy {r['clean_accuracy']:.1f} % on {r['num_samples']} images"
    if key == "fourier":
        return f" — {len(r['names'])} feature maps, kinds: {', '.join(sorted(set(r['kinds'])))}"
    return ""


def _meta(results: dict[str, Any]) -> str:
    rows = [
        ("model", results.get("model")),
        ("parameters", f"{results['parameters']:,}" if "parameters" in results else None),
        ("data", results.get("data")),
        ("image size", results.get("image_size")),
        ("profile", results.get("profile")),
        ("seconds", ", ".join(f"{k} {v:.1f}" for k, v in results.get("seconds", {}).items())),
    ]
    cells = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>"
        for k, v in rows
        if v is not None
    )
    return f"<table>{cells}</table>"


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: sans-serif; max-width: 1100px; margin: 1em auto; padding: 0 1em; }}
figure {{ margin: 1.5em 0; }} img {{ max-width: 100%; }}
table {{ border-collapse: collapse; }} th, td {{ text-align: left; padding: 2px 10px; }}
</style></head>
<body><h1>{title}</h1>
<p>The diagnostics of Park &amp; Kim, "How Do Vision Transformers Work?" (ICLR 2022), computed
by <code>python -m course_lib analyse</code>. Numbers are in <code>results.json</code>.</p>
{meta}
{sections}
</body></html>
"""
