"""One look for every figure of the course: colours per model family, labels, and a context.

The same family always gets the same colour in every chapter (ResNet orange-red, ViT blue,
local-window ViT teal, AlterNet purple) so a reader can compare figures at a glance.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

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


def family_of(model_name: str) -> str:
    """Map a model name such as ``vit_tiny`` or ``alternet50`` to its family key."""
    name = model_name.lower()
    for family in ("local_vit", "alternet", "resnet", "vit"):
        if name.startswith(family):
            return family
    return "other"


def color_for(model_name: str) -> str:
    """The course's colour for a model name or family name."""
    return FAMILY_COLORS.get(model_name, FAMILY_COLORS[family_of(model_name)])


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
