"""One look for every figure of the course: colours per model family, labels, and a context.

The same family always gets the same colour in every chapter (ResNet orange-red, ViT blue,
local ViT teal, AlterNet purple) so a reader can compare figures at a glance.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

from course_lib.models import list_models, model_family

if TYPE_CHECKING:
    from matplotlib.axes import Axes

FAMILY_COLORS: dict[str, str] = {
    "resnet": "#d95f02",
    "vit": "#1f78b4",
    "local_vit": "#1b9e77",
    "alternet": "#7570b3",
    "other": "#666666",
}

# Block kinds as used by the analyses (feature_kind of a module): shading for MSA vs Conv.
KIND_COLORS: dict[str, str] = {
    "msa": "#1f78b4",
    "conv": "#d95f02",
    "mlp": "#999999",
    "stem": "#cccccc",
    "embed": "#cccccc",
}


#: Family names as the chapters write them.
FAMILY_LABELS: dict[str, str] = {
    "resnet": "ResNet",
    "local_vit": "local ViT",
    "vit": "ViT",
    "alternet": "AlterNet",
}


def family_label(family: str) -> str:
    """``"local_vit"`` → ``"local ViT"`` (unknown names pass through)."""
    return FAMILY_LABELS.get(family, family)


def family_of(model_name: str) -> str:
    """The family of a registered model (``vit_tiny`` → ``vit``), from the model registry.

    A family name passes through; a label such as ``"vit_mini (init)"`` is read by its first
    word; unknown names are ``"other"``.
    """
    name = model_name.split(" ", 1)[0].lower()
    if name in FAMILY_COLORS:
        return name
    return model_family(name) if name in list_models() else "other"


def color_for(model_name: str) -> str:
    """The course's colour for a model name or family name."""
    return FAMILY_COLORS.get(model_name, FAMILY_COLORS[family_of(model_name)])


def axes_or_new(ax: Axes | None, figsize: tuple[float, float] = (6.0, 3.6)) -> Axes:
    """``ax`` itself, or the axes of a new figure of ``figsize`` inches."""
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=figsize)[1] if ax is None else ax


def log_scale(ax: Axes, axis: str = "y") -> None:
    """Put ``axis`` ("x" or "y") of ``ax`` on a log scale labelled in plain numbers.

    Losses such as an NLL span less than a decade: matplotlib's default labels their ticks
    "2×10⁰"; this labels them 1.2, 1.4, …, 2 (wider ranges keep one label per decade).
    """
    from matplotlib.ticker import LogFormatter

    getattr(ax, f"set_{axis}scale")("log")
    target = getattr(ax, f"{axis}axis")
    target.set_major_formatter(LogFormatter())
    target.set_minor_formatter(LogFormatter())


@contextlib.contextmanager
def course_style() -> Iterator[None]:
    """Temporarily apply the course's seaborn/matplotlib style."""
    import matplotlib.pyplot as plt

    with plt.rc_context():
        use_course_style()
        yield


def use_course_style() -> None:
    """Apply the course style globally (notebooks call this once at the top)."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    sns.set_theme(context="notebook", style="whitegrid", font_scale=0.95)
    plt.rcParams.update({"figure.dpi": 110, "savefig.bbox": "tight", "axes.titleweight": "bold"})
