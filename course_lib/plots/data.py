"""Pictures of the embedded synthetic dataset: its classes, cues and cue-removed versions."""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from course_lib.data.synthetic import SyntheticConfig, synthetic_examples, synthetic_prototypes
from course_lib.plots.style import course_style


def plot_synthetic_examples(
    config: SyntheticConfig | None = None, *, image_size: int | None = None, per_class: int = 3
) -> Figure:
    """A grid: per class (columns), the prototype of each cue, then ``per_class`` examples.

    Rows: low-frequency cue alone, high-frequency cue alone, then real training images (both
    cues on the 1/f background).
    """
    config = config or SyntheticConfig()
    if image_size is not None:
        config = SyntheticConfig(**{**config.__dict__, "image_size": image_size})
    low = synthetic_prototypes(config, cues="low")
    high = synthetic_prototypes(config, cues="high")
    examples = synthetic_examples(config, per_class=per_class)  # (C, per_class, 3, H, W)
    rows = [("layout cue\n(low freq.)", low), ("texture cue\n(high freq.)", high)]
    rows += [(f"example {i + 1}", examples[:, i]) for i in range(per_class)]
    n_cls = config.num_classes
    with course_style():
        fig, axes = plt.subplots(len(rows), n_cls, figsize=(1.1 * n_cls, 1.15 * len(rows)),
                                 squeeze=False)  # fmt: skip
        for r, (label, images) in enumerate(rows):
            for c in range(n_cls):
                ax = axes[r, c]
                ax.imshow(images[c].permute(1, 2, 0).numpy(), interpolation="nearest")
                ax.set_xticks([])
                ax.set_yticks([])
                ax.grid(False)
                if r == 0:
                    ax.set_title(f"class {c}", fontsize=9)
                if c == 0:
                    ax.set_ylabel(label, fontsize=8)
        fig.tight_layout(pad=0.3)
    return fig
