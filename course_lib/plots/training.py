"""Training curves: train/test NLL and error per epoch, one colour per model family."""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from course_lib.plots.style import color_for, course_style
from course_lib.train import History


def plot_history(histories: Mapping[str, History], *, title: str | None = None) -> Figure:
    """Two panels (NLL, error) with train (solid) and test (dashed) curves for each model.

    ``histories`` maps a label (a model name such as ``vit_mini`` picks the family colour) to
    its :class:`~course_lib.train.History`.
    """
    with course_style():
        fig, (ax_nll, ax_err) = plt.subplots(1, 2, figsize=(10, 3.6))
        for label, h in histories.items():
            colour = color_for(label)
            ax_nll.plot(h.epoch, h.train_nll, "-o", color=colour, label=f"{label} train", ms=3)
            ax_nll.plot(h.epoch, h.test_nll, "--", color=colour, label=f"{label} test")
            ax_err.plot(h.epoch, h.train_error, "-o", color=colour, ms=3)
            ax_err.plot(h.epoch, h.test_error, "--", color=colour)
        ax_nll.set(xlabel="epoch", ylabel="NLL (nats)", title="negative log-likelihood")
        ax_err.set(xlabel="epoch", ylabel="error (%)", title="classification error")
        ax_nll.legend(fontsize=8, ncol=2)
        if title:
            fig.suptitle(title)
        fig.tight_layout()
    return fig
