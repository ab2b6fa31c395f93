"""``python -m course_lib analyse``: one command, one report; bad input gives one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from course_lib.__main__ import main
from course_lib.analyse.run import ANALYSES


def _run(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "course_lib", "analyse", *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)


@pytest.fixture
def env(tmp_path: Path) -> dict:
    return {
        **os.environ,
        "COURSE_PROFILE": "smoke",
        "COURSE_CACHE": str(tmp_path / "cache"),
        "HF_HUB_OFFLINE": "1",
        "TORCH_HOME": str(tmp_path / "torch"),
        "HF_HOME": str(tmp_path / "hf"),
    }


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    """One end-to-end run on a smoke model, in a subprocess as a user starts it."""
    tmp = tmp_path_factory.mktemp("analyse")
    env = {**os.environ, "COURSE_PROFILE": "smoke", "COURSE_CACHE": str(tmp / "cache")}
    done = _run("--model", "resnet_tiny", "--data", "synthetic", "--out", str(tmp / "out"),
                "--quiet", env=env)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "report:" in done.stdout
    return tmp / "out"


def test_report_json_and_figures(report: Path) -> None:
    results = json.loads((report / "results.json").read_text())
    for name in ANALYSES:
        assert name in results, name
    assert results["model"] == "resnet_tiny" and results["profile"] == "smoke"
    assert results["fourier"]["kinds"][0] == "stem"
    hessian = results["hessian"]
    low, high = hessian["nep_interval"]
    assert 0 <= low <= hessian["nep"] <= high <= 1 and hessian["design_effect"] >= 1
    page = (report / "report.html").read_text()
    assert "95 % interval" in page and "design effect" in page
    assert page.count("data:image/png;base64,") == len(ANALYSES)
    for name in ANALYSES:
        assert (report / f"{name}.png").stat().st_size > 1000


def test_weights_file_is_loaded(tmp_path: Path, cli) -> None:
    from course_lib.models import create_model

    torch.manual_seed(3)
    model = create_model("resnet_tiny")
    torch.save({"model": model.state_dict()}, tmp_path / "w.pt")
    code, _, err = cli("--model", "resnet_tiny", "--weights", str(tmp_path / "w.pt"),
                       "--out", str(tmp_path / "out"))  # fmt: skip
    assert code == 0, err
    assert json.loads((tmp_path / "out" / "results.json").read_text())["weights"]


@pytest.fixture
def cli(monkeypatch, capsys, tmp_path):
    """``python -m course_lib analyse ARGS`` in-process; returns (code, stdout, stderr)."""
    monkeypatch.setenv("COURSE_PROFILE", "smoke")
    monkeypatch.setenv("COURSE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))

    def run(*args: str) -> tuple[int, str, str]:
        code = main(["analyse", "--quiet", *args])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "resnet_tinyy"], "unknown model 'resnet_tinyy'; valid models: alternet50"),
        (["--model", "keras:resnet"], "unknown model source 'keras'"),
        (["--model", "torchvision:resnet19"], "torchvision has no classification model"),
        (["--model", "resnet_tiny", "--weights", "missing.pt"], "no weights file at missing.pt"),
        (["--model", "resnet_tiny", "--pretrained"], "course models have no pretrained weights"),
        (["--model", "resnet_tiny", "--profile", "smoke", "--data", "imagenet"], "imagenet"),
    ],
)
def test_bad_input_gives_one_line(cli, tmp_path: Path, args: list[str], message: str) -> None:
    code, out, err = cli(*args, "--out", str(tmp_path / "out"))
    assert code == 2
    assert err.startswith("error: ") and err.count("\n") == 1
    assert message in err


def test_timm_bad_name_and_offline_pretrained(cli, tmp_path: Path) -> None:
    pytest.importorskip("timm")
    code, _, err = cli("--model", "timm:resnet181", "--out", str(tmp_path / "a"))
    assert code == 2 and err.count("\n") == 1
    assert "timm has no model 'resnet181'; closest: resnet18" in err
    code, _, err = cli("--model", "timm:resnet18", "--pretrained", "--out", str(tmp_path / "b"))
    assert code == 2 and err.count("\n") == 1
    assert "could not get the pretrained weights of timm:resnet18" in err and "--weights" in err


def test_torchvision_offline_pretrained(cli, tmp_path: Path, monkeypatch) -> None:
    # no network here; where there is one, make the download fail the same way
    monkeypatch.setenv("https_proxy", "http://127.0.0.1:9")
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    code, _, err = cli("--model", "torchvision:resnet18", "--pretrained", "--out", str(tmp_path))
    assert code == 2 and err.count("\n") == 1
    assert "could not get the pretrained weights of torchvision:resnet18" in err
