"""Chapter widgets: ipywidgets when asked, a static figure otherwise (the book's case)."""

from __future__ import annotations

import base64
import os

import ipywidgets
import matplotlib.pyplot as plt
import pytest
import torch
from matplotlib.figure import Figure

from course_lib.analysis.toy import power_iteration
from course_lib.images import sample_photo
from course_lib.plots.toy import (
    plot_curvature,
    plot_frequency_panels,
    plot_power_iteration,
    plot_spectrum_check,
    plot_toy_gallery,
    plot_toy_landscape,
)
from course_lib.widgets import WIDGETS_ENV, figure_png, live_frontend, use_widgets
from course_lib.widgets.frames import FrameSlider, frame_slider
from course_lib.widgets.preliminaries import (
    frequency_filter_explorer,
    landscape_explorer,
)


@pytest.fixture(autouse=True)
def _no_widget_setting(monkeypatch):
    monkeypatch.delenv(WIDGETS_ENV, raising=False)
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    yield
    plt.close("all")


def test_rule_argument_then_environment_then_front_end(monkeypatch):
    assert not live_frontend()  # pytest runs in no kernel at all
    assert use_widgets() is False
    assert use_widgets(True) is True
    monkeypatch.setenv(WIDGETS_ENV, "1")
    assert use_widgets() is True
    assert use_widgets(False) is False
    monkeypatch.setenv(WIDGETS_ENV, "0")
    assert use_widgets() is False
    monkeypatch.setenv("JPY_SESSION_NAME", "notebook.ipynb")  # not in a kernel: still static
    monkeypatch.delenv(WIDGETS_ENV)
    assert use_widgets() is False


def test_landscape_explorer_static_by_default():
    fig = landscape_explorer()
    assert isinstance(fig, Figure)
    assert "autograd (-3.212, 2.192), exact (-3.212, 2.192)" in fig._suptitle.get_text()
    assert figure_png(fig).startswith(b"\x89PNG")


def test_landscape_explorer_widgets_update_when_moved():
    ui = landscape_explorer("bowl", (0.5, 0.5), interactive=True)
    assert isinstance(ui, ipywidgets.VBox)
    picker, theta1, theta2 = ui.children[0].children
    readout, image = ui.children[1], ui.children[2]
    assert isinstance(picker, ipywidgets.Dropdown) and isinstance(theta1, ipywidgets.FloatSlider)
    assert "convex" in readout.value and "closed form (2.000, 4.000)" in readout.value
    first = image.value
    picker.value = "saddle"
    assert "<b>saddle</b>" in readout.value and "(-3.000, 1.000)" in readout.value
    theta2.value = -1.0
    assert "θ = (0.50, -1.00)" in readout.value
    assert bytes(image.value) != bytes(first) and bytes(image.value).startswith(b"\x89PNG")


def test_environment_switch_builds_widgets(monkeypatch):
    monkeypatch.setenv(WIDGETS_ENV, "1")
    assert isinstance(landscape_explorer(), ipywidgets.VBox)


def test_frequency_filter_explorer_static_and_interactive():
    open_before = plt.get_fignums()
    frames = frequency_filter_explorer(0.0, 0.2, size=64)
    assert isinstance(frames, FrameSlider) and plt.get_fignums() == open_before  # frames closed
    assert frames.labels[frames.start] == "[0.00, 0.20)"
    assert frames.labels[0] == "[0.00, 0.05)" and frames.labels[-1] == "[0.60, 1.00)"
    assert len(set(frames.pngs)) == len(frames.pngs) == 8  # the 7 static bands + the asked one
    ui = frequency_filter_explorer(size=64, interactive=True)
    band, image = ui.children
    assert isinstance(band, ipywidgets.FloatRangeSlider)
    first = image.value
    band.value = (0.3, 1.0)
    assert bytes(image.value) != bytes(first) and bytes(image.value).startswith(b"\x89PNG")


def test_plot_functions_return_their_figures():
    assert isinstance(plot_toy_gallery({"bowl": (0.1, 0.2), "saddle": None}), Figure)
    assert isinstance(plot_toy_gallery(["flat", "sharp", "double_well"], ncols=2), Figure)
    assert plot_toy_landscape("saddle", (0.0, 0.0)).get_title() == "saddle"
    assert isinstance(plot_curvature("flat", (0.5, 0.5)), Figure)
    run = power_iteration(lambda v: 2 * v, 3, n_iter=5)
    assert isinstance(plot_power_iteration({"2I": run}, {"2I": 2.0}), Figure)
    ax = plot_spectrum_check(torch.tensor([-1.0, 0.5, 2.0]), {"LA": 2.0, "SA": [-1.0]})
    assert len(ax.get_legend().get_texts()) == 3
    photo = sample_photo(32)
    assert isinstance(plot_frequency_panels({"a": photo}, bands={"a": (0.1, 0.5)}), Figure)


@pytest.mark.slow
def test_rule_inside_a_kernel_follows_the_front_end_marker():
    """A kernel alone (nbval, jupyter-book) is static; one started by jupyter_server is live."""
    from jupyter_client.manager import start_new_kernel

    code = "from course_lib.widgets import use_widgets; print(use_widgets())"
    base = {k: v for k, v in os.environ.items() if k not in ("JPY_SESSION_NAME", WIDGETS_ENV)}
    for session, expected in ((None, "False"), ("chapter.ipynb", "True")):
        env = dict(base, **({"JPY_SESSION_NAME": session} if session else {}))
        km, kc = start_new_kernel(kernel_name="python3", env=env)
        printed = []

        def hook(msg, printed=printed):
            if msg["msg_type"] == "stream":
                printed.append(msg["content"]["text"])

        try:
            kc.execute_interactive(code, timeout=120, output_hook=hook)
        finally:
            kc.stop_channels()
            km.shutdown_kernel(now=True)
        assert "".join(printed).strip() == expected


def test_frame_slider_html_swaps_frames_without_a_kernel():
    def draw(value: int) -> Figure:
        fig, ax = plt.subplots()
        ax.plot([0, value])
        return fig

    frames = frame_slider(draw, [1, 2, 3], title="a <b>", label=lambda v: f"v={v}&", start=1)
    page = frames._repr_html_()
    shown = page.split('<img src="')[1].split('"')[0]
    assert shown == "data:image/png;base64," + base64.b64encode(frames.pngs[1]).decode()
    assert 'type="range" min="0" max="2" step="1" value="1"' in page and "oninput=" in page
    assert all(f'data-f{i}="data:image/png;base64,' in page for i in range(3))
    assert "a &lt;b&gt;" in page and "v=2&amp;" in page and "<b>" not in page  # escaped
    assert repr(frames) == "FrameSlider('a <b>', 3 frames)"
    with pytest.raises(ValueError, match="start must index a frame"):
        FrameSlider("t", ("a",), (b"png",), start=1)
