"""Chapter 01's table of the families' models: what each is made of, before any training.

:func:`architecture_summary` builds each family's untrained model for a profile and describes it
(parameters, what its blocks work on, what one mixing layer combines); :func:`format_summary`
prints the rows as a text table and :func:`parameter_glue` gives the sentence on the ViT's size
against the ResNet's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from torch import nn

from course_lib.config import Profile
from course_lib.experiments import resolve_model_name
from course_lib.models import ResNet, ViT, create_model, model_family
from course_lib.report.inductive_bias import C1_FAMILIES, PREVIEW_FAMILIES, parameter_count
from course_lib.report.prose import ratio


@dataclass(frozen=True)
class ArchitectureRow:
    """One row of :func:`architecture_summary`."""

    family: str
    model: str
    parameters: int
    layout: str  # what the blocks work on, e.g. "8×8 = 64 tokens (4×4-px patches)"
    one_layer_mixes: str  # what one mixing layer combines


def _describe(model: nn.Module, image_size: int) -> tuple[str, str]:
    """(what the blocks work on, what one mixing layer combines) for a course model."""
    c = model.config
    if isinstance(model, ViT):
        grid = image_size // c.patch_size
        layout = f"{grid}×{grid} = {grid * grid} tokens ({c.patch_size}×{c.patch_size}-px patches)"
        if c.neighbourhood:
            k, side = c.neighbourhood, c.neighbourhood * c.patch_size
            return layout, (
                f"the {k}×{k} tokens around each token ({side}×{side} px), a field that grows "
                f"by {k - 1} tokens a block"
            )
        return layout, f"all {grid * grid} tokens (whole image)"
    assert isinstance(model, ResNet)
    sides = c.stage_sides(image_size)
    layout = "feature maps " + " → ".join(f"{s}×{s}" for s in sides)
    mixes = "3×3 neighbours (conv)"
    if any(c.msa_blocks):
        mixes += f"; {c.window}×{c.window} windows in the last block of stages " + ", ".join(
            str(s + 1) for s, n in enumerate(c.msa_blocks) if n
        )
    return layout, mixes


def architecture_summary(
    profile: Profile, families: Sequence[str] = C1_FAMILIES + PREVIEW_FAMILIES
) -> list[ArchitectureRow]:
    """One row per family: model name, parameters, token/feature layout, what one layer mixes.

    Builds the untrained models (no training, milliseconds).
    """
    rows = []
    for family in families:
        name = resolve_model_name(family, profile)
        model = create_model(name, image_size=profile.image_size)
        layout, mixes = _describe(model, profile.image_size)
        rows.append(
            ArchitectureRow(model_family(name), name, parameter_count(model), layout, mixes)
        )
    return rows


def format_summary(rows: Sequence[ArchitectureRow]) -> str:
    """:func:`architecture_summary` as a fixed-width text table."""
    header = ("model", "parameters", "blocks work on", "one mixing layer combines")
    lines = [(r.model, f"{r.parameters:,}", r.layout, r.one_layer_mixes) for r in rows]
    widths = [max(len(str(x)) for x in col) for col in zip(header, *lines, strict=True)]

    def fmt(cells: Sequence[str]) -> str:
        return "  ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    return "\n".join([fmt(header), fmt(["-" * w for w in widths]), *map(fmt, lines)])


def parameter_glue(rows: Sequence[ArchitectureRow]) -> dict[str, str]:
    """The values section 1 glues: the ViT's parameter count against the ResNet's."""
    params = {row.family: row.parameters for row in rows}
    remark = (
        "so if the ViT fits its training data worse, it is not for lack of parameters"
        if params["vit"] >= 0.95 * params["resnet"]
        else "so part of any gap could come from the ViT's smaller size"
    )
    return {"vit_resnet_params": ratio(params["vit"], params["resnet"]), "param_remark": remark}


__all__ = [
    "ArchitectureRow",
    "architecture_summary",
    "format_summary",
    "parameter_glue",
]
