"""The command line: models, train, resume, check, and one clear line for bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from course_lib.models import list_models


def test_models_lists_names_and_parameter_counts(cli):
    code, out, _ = cli("models", "*_tiny")
    assert code == 0
    assert "resnet_tiny" in out and "77,850" in out
    assert "vit_ti " not in out


def test_train_then_resume_from_the_shell(tmp_path):
    """The real entry point, in a subprocess, as a user runs it."""
    env = {**os.environ, "COURSE_PROFILE": "smoke"}
    out_dir = tmp_path / "run"
    cmd = [sys.executable, "-m", "course_lib", "train", "--model", "resnet_tiny", "--quiet",
           "--out", str(out_dir)]  # fmt: skip
    first = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert first.returncode == 0, first.stderr
    assert "test error" in first.stdout
    assert json.loads((out_dir / "history.json").read_text())["epoch"] == [1]
    again = subprocess.run(cmd + ["--resume", "--epochs", "2"], capture_output=True, text=True,
                           env=env, timeout=300)  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert json.loads((out_dir / "history.json").read_text())["epoch"] == [1, 2]


@pytest.mark.parametrize(
    "args, message, exit_code",
    [
        (["--model", "vit_huge"], "unknown model 'vit_huge'", 2),
        (["--model", "vit_tiny", "--data", "imagenet"], "imagenet", 2),
        (["--model", "vit_tiny", "--image-size", "30"], "patch_size", 2),
        (["--model", "vit_tiny", "--fraction", "0"], "fraction", 2),
        (["--model", "resnet_tiny", "--data", "cifar10"], "download", 3),  # a data problem
    ],
)
def test_bad_input_gives_one_clear_line_and_an_exit_code(cli, args, message, exit_code, tmp_path):
    code, _, err = cli("train", *args, "--out", str(tmp_path / "out"))
    assert code == exit_code
    assert err.startswith("error: ") and message in err
    assert "Traceback" not in err


def test_unknown_profile_is_refused(cli, monkeypatch):
    monkeypatch.setenv("COURSE_PROFILE", "huge")
    code, _, err = cli("check")
    assert code == 2 and "unknown profile 'huge'" in err


def test_check_runs_every_tiny_model(cli):
    code, out, _ = cli("check")
    tiny = list_models("*_tiny")
    assert len(tiny) == 5 and all(f"{name} " in out for name in tiny)  # four families + post-act.
    assert code == 0 and out.count("forward ok") == 5 and out.rstrip().endswith("ready")


def test_kill_9_then_resume_matches_an_uninterrupted_run(tmp_path):
    """SIGKILL a training process after its first checkpoint; --resume must end identically."""
    import signal
    import time

    import torch

    env = {**os.environ, "COURSE_PROFILE": "smoke", "OMP_NUM_THREADS": "1"}

    def cmd(out, *extra):
        return [sys.executable, "-m", "course_lib", "train", "--model", "resnet_tiny", "--quiet",
                "--epochs", "4", "--out", str(out), *extra]  # fmt: skip

    straight = subprocess.run(cmd(tmp_path / "a"), capture_output=True, text=True, env=env)
    assert straight.returncode == 0, straight.stderr

    proc = subprocess.Popen(cmd(tmp_path / "b"), env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 240
    while not (tmp_path / "b" / "history.json").exists() and time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    killed_midway = proc.poll() is None
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    resumed = subprocess.run(cmd(tmp_path / "b", "--resume"), capture_output=True, text=True,
                             env=env)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    a = torch.load(tmp_path / "a" / "checkpoint.pt", weights_only=True)
    b = torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=True)
    assert a["history"]["test_nll"] == b["history"]["test_nll"]
    for name, value in a["model"].items():
        assert torch.equal(value, b["model"][name]), name
    assert killed_midway, "training finished before it could be killed; the test proved nothing"


@pytest.mark.parametrize(
    ("flags", "compile_", "channels_last"),
    [
        ([], "reduce-overhead", True),  # the gpu profile's own choice
        (["--compile"], True, True),
        (["--compile", "max-autotune", "--no-channels-last"], "max-autotune", False),
    ],
)
def test_compile_and_memory_format_default_to_the_profile(flags, compile_, channels_last):
    from course_lib.__main__ import build_parser, train_config

    argv = ["train", "--model", "vit_ti", "--profile", "gpu", "--out", "x", "--epochs", "3"]
    config = train_config(build_parser().parse_args(argv + flags))
    assert (config.compile, config.channels_last, config.epochs) == (compile_, channels_last, 3)
