"""Chapter 02b (the Hessian deep dive) in words: sentences generated from its numbers.

The solvers and their agreement, APE against the median, where the sharpest direction lives,
the class token's scale and initialisation against training. Chapter 02's own sentences and box
are in :mod:`course_lib.report.landscape`.
"""

from __future__ import annotations

from collections.abc import Mapping

from torch import Tensor

from course_lib.analysis.lanczos import EigenResult
from course_lib.analysis.spectra import BatchSpectra, top_groups
from course_lib.report.landscape import Roles, SpectrumNumbers, percent_text, times
from course_lib.report.prose import compare, num, share, sign_word


def solver_reading(results: Mapping[str, EigenResult]) -> str:
    """The solvers on one batch: what each returns, at what cost, and whether "LM" agrees.

    ``results`` holds "LA", "SA", "LM" (direct) and "LM from ends" for one batch.
    """
    values = {w: ", ".join(num(x) for x in r.eigenvalues.tolist()) for w, r in results.items()}
    costs = ", ".join(f"{w} {r.n_hvp}" for w, r in results.items())
    direct, ends = results["LM"].eigenvalues, results["LM from ends"].eigenvalues
    gap = float(((direct - ends).abs() / ends.abs()).max())
    negatives = int((ends < 0).sum())
    return (
        f"On this batch LA returns {values['LA']}; SA {values['SA']}; LM directly "
        f"{values['LM']}; LM from the two ends {values['LM from ends']}. "
        f"{negatives} of the {len(ends)} largest magnitudes {'is' if negatives == 1 else 'are'} "
        f"negative. The two LM answers differ by at most {percent_text(gap)} (relative). "
        f"Hessian-vector products: {costs}."
    )


def ape_reading(numbers: Mapping[str, SpectrumNumbers], roles: Roles) -> str:
    """The paper's APE beside the median λ_max, and whether the two order the models alike."""
    r, v = numbers[roles.resnet], numbers[roles.vit]
    same = (v.ape < r.ape) == (v.median_max < r.median_max)
    return (
        f"{compare('APE', ('The ViT', v.ape), ('the ResNet', r.ape))}, while "
        f"{compare('median λ_max', ('the ViT', v.median_max), ('the ResNet', r.median_max))}: "
        f"the two summaries order the models {'the same way' if same else 'differently'}."
    )


def composition_reading(spectra: Mapping[str, BatchSpectra]) -> str:
    """Where each model's top eigenvector lives: its three largest groups and their shares."""
    lines = []
    for label, s in spectra.items():
        (first, part), *_ = groups = top_groups(s)
        listing = ", ".join(f"{g} {p:.0%}" for g, p in groups)
        amount = "a small part" if part < 0.2 else share(round(part * 1e3), 1000)
        lines.append(f"- {label}: {listing}; {first} holds {amount} of it.")
    return "Median share of ‖v‖² per parameter group:\n\n" + "\n".join(lines)


def token_reading(trained: Mapping[str, float], initial: Mapping[str, float]) -> str:
    """Class token vs patch tokens entering the first block, at initialisation and trained."""

    def gain(s: Mapping[str, float]) -> str:
        return num(s["patches"] / s["cls"])

    return (
        f"At initialisation the class-token parameter has an RMS of {num(initial['cls'], '.2g')} "
        f"against {num(initial['patches'], '.2g')} for the patch tokens entering the first "
        f"block: the first LayerNorm, which divides every token by its own RMS, scales it "
        f"{gain(initial)}× as much as a patch token. After training: "
        f"{num(trained['cls'], '.2g')} against {num(trained['patches'], '.2g')}, a factor "
        f"{gain(trained)}."
    )


def init_reading(vit_init: float, resnet_init: float, vit: float) -> str:
    """Median λ_max of both families at initialisation, and the ViT's change with training."""
    return (
        f"At initialisation, "
        f"{compare('median λ_max', ('the ViT', vit_init), ('the ResNet', resnet_init))}. "
        f"Training {sign_word(vit - vit_init)} the ViT's median λ_max, from {num(vit_init)} to "
        f"{num(vit)} ({times(vit, vit_init)} where it started)."
    )


def maxima_check(pairs: Mapping[str, tuple[Tensor, Tensor]]) -> str:
    """λ_max two ways, per model ``(top, magnitude)``: an "LA" solve (n, 1) and the largest of
    the top-k by ``|λ|`` (n, k) over the same batches; their largest relative difference."""

    gaps = {name: ((t[:, 0] - m.max(dim=1).values).abs() / t[:, 0].abs()).max()
            for name, (t, m) in pairs.items()}  # fmt: skip
    listing = " and ".join(f"{percent_text(float(g))} for the {name}" for name, g in gaps.items())
    return (
        "λ_max from its own solve and the largest of the top-k by |λ| differ by at most "
        f"{listing} (relative, over the batches)."
    )


__all__ = [
    "ape_reading",
    "composition_reading",
    "init_reading",
    "maxima_check",
    "solver_reading",
    "token_reading",
]
