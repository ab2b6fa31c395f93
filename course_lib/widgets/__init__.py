"""Interactive "try it" widgets (ipywidgets) for the chapters, each with a static fallback.

Every widget function takes ``interactive: bool | None = None`` and returns either an ipywidgets
UI or, when widgets would not work, a static :class:`matplotlib.figure.Figure` drawn for its
default values. A kernel alone is not enough: ``jupyter-book build`` and ``pytest --nbval`` run
notebooks in a kernel with nobody at the other end, and a widget there would put a dead slider
(or nothing) on the page. So :func:`use_widgets` decides, in this order:

1. ``interactive=True`` / ``False`` passed by the caller wins;
2. else the environment variable ``COURSE_WIDGETS`` (``1``/``0``) wins;
3. else widgets are built only inside an IPython kernel that a live front-end started:
   JupyterLab / Notebook 7 (``jupyter_server`` puts ``JPY_SESSION_NAME`` in the kernel's
   environment), VS Code (``__vsc_ipynb_file__`` in the user namespace) or Colab
   (``google.colab`` imported). Batch executors (jupyter-book, nbval, nbclient, papermill) set
   none of these, so they get the static figure, which is what the book shows.

In a front-end this rule does not recognise, pass ``interactive=True`` (or set
``COURSE_WIDGETS=1``).
"""

from __future__ import annotations

import io
import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.figure import Figure

WIDGETS_ENV = "COURSE_WIDGETS"


def live_frontend() -> bool:
    """Whether this code runs in an IPython kernel started by a live Jupyter front-end."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython comes with ipykernel and ipywidgets
        return False
    shell = get_ipython()
    if shell is None or not hasattr(shell, "kernel"):  # plain Python or terminal IPython
        return False
    if os.environ.get("JPY_SESSION_NAME"):  # JupyterLab, Notebook 7 (jupyter_server)
        return True
    if "__vsc_ipynb_file__" in shell.user_ns:  # VS Code
        return True
    return "google.colab" in sys.modules  # Colab


def use_widgets(interactive: bool | None = None) -> bool:
    """``interactive`` if given, else ``$COURSE_WIDGETS``, else :func:`live_frontend`."""
    if interactive is not None:
        return bool(interactive)
    setting = os.environ.get(WIDGETS_ENV, "").strip().lower()
    if setting in ("1", "true", "yes", "on"):
        return True
    if setting in ("0", "false", "no", "off"):
        return False
    return live_frontend()


def figure_png(fig: Figure, dpi: int = 100) -> bytes:
    """A matplotlib figure as PNG bytes: widgets show these, whatever the matplotlib backend."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    return buffer.getvalue()


__all__ = ["WIDGETS_ENV", "figure_png", "live_frontend", "use_widgets"]
