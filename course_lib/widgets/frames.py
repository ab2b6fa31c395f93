"""Pre-rendered frames behind an HTML range slider: a "try it" widget that still works on a
static page (the published book has no kernel behind it)."""

from __future__ import annotations

import base64
import hashlib
import html
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from course_lib.widgets import figure_png

V = TypeVar("V")
LIVE_NOTE = (
    "Pre-computed frames: the slider steps through a few settings. Run the notebook with "
    "COURSE_WIDGETS=1 for the live widget with any setting."
)


@dataclass(frozen=True)
class FrameSlider:
    """PNG frames, one per setting, shown one at a time under a slider (``_repr_html_``).

    The slider needs no kernel and no script file: an inline ``oninput`` handler swaps the
    picture, so the page works offline and in any browser with JavaScript on.
    """

    title: str  # what the slider changes, e.g. "band (×π)"
    labels: tuple[str, ...]  # one per frame, shown beside the slider
    pngs: tuple[bytes, ...]  # the frames
    start: int = 0  # the frame shown first
    note: str = ""  # e.g. how to run the live widget

    def __repr__(self) -> str:  # short: the PNG bytes would swamp a text view
        return f"FrameSlider({self.title!r}, {len(self.pngs)} frames)"

    def __post_init__(self) -> None:
        if not self.pngs or len(self.labels) != len(self.pngs):
            raise ValueError("FrameSlider needs one label per frame and at least one frame")
        if not 0 <= self.start < len(self.pngs):
            raise ValueError(f"start must index a frame (0..{len(self.pngs) - 1})")

    def _repr_html_(self) -> str:
        uris = ["data:image/png;base64," + base64.b64encode(png).decode() for png in self.pngs]
        uid = "frames-" + hashlib.sha256("".join(uris).encode()).hexdigest()[:10]
        data = " ".join(
            f'data-f{i}="{uri}" data-l{i}="{html.escape(label)}"'
            for i, (uri, label) in enumerate(zip(uris, self.labels, strict=True))
        )
        swap = (
            f"var box=document.getElementById('{uid}');"
            "box.querySelector('img').src=this.dataset['f'+this.value];"
            "box.querySelector('output').textContent=this.dataset['l'+this.value];"
        )
        note = f'<p style="font-size:smaller">{html.escape(self.note)}</p>' if self.note else ""
        title, label = html.escape(self.title), html.escape(self.labels[self.start])
        return (
            f'<div class="course-frames" id="{uid}">'
            f"<label>{title} "
            f'<input type="range" min="0" max="{len(uris) - 1}" step="1" value="{self.start}" '
            f'oninput="{swap}" {data}> <output>{label}</output></label>'
            f'<div><img src="{uris[self.start]}" alt="{title}: {label}" '
            'style="max-width:100%"></div>'
            f"{note}</div>"
        )


def frame_slider(
    render: Callable[[V], Figure],
    values: Sequence[V],
    *,
    title: str,
    label: Callable[[V], str] = str,
    start: int = 0,
    note: str = LIVE_NOTE,
) -> FrameSlider:
    """Render ``render(v)`` for every ``v`` in ``values`` (each figure closed after), as frames."""
    pngs = []
    for value in values:
        fig = render(value)
        pngs.append(figure_png(fig))
        plt.close(fig)  # else an inline backend would also show every frame under the cell
    return FrameSlider(title, tuple(label(v) for v in values), tuple(pngs), start, note)
