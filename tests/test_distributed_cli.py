"""``python -m course_lib train`` with 2 gloo processes: the numbers of 1 process, and a frozen
or killed process ends the run with one line per surviving process."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
TRAIN = ["-m", "course_lib", "train", "--model", "vit_tiny", "--quiet", "--fraction", "0.25"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(**extra: str) -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    return os.environ | {
        "COURSE_PROFILE": "smoke",
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": path,
        **extra,
    }


@pytest.mark.slow
def test_two_processes_through_torchrun_give_the_numbers_of_one(tmp_path):
    """The README's claim: --batch-size is global and the ranks share out one process's
    batches, so 1 and 2 processes train alike (to float rounding)."""
    one = subprocess.run(
        [sys.executable, *TRAIN, "--epochs", "2", "--out", str(tmp_path / "one")],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert one.returncode == 0, one.stderr[-3000:]
    two = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node=2",
            f"--master_port={_free_port()}",
            *TRAIN[1:],
            "--epochs",
            "2",
            "--out",
            str(tmp_path / "two"),
        ],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert two.returncode == 0, two.stdout[-3000:] + two.stderr[-3000:]
    a = torch.load(tmp_path / "one" / "checkpoint.pt", weights_only=True)
    b = torch.load(tmp_path / "two" / "checkpoint.pt", weights_only=True)
    for key in ("train_nll", "test_nll"):
        assert b["history"][key] == pytest.approx(a["history"][key], rel=1e-4), key
    for key in ("train_error", "test_error"):  # one image may flip at the decision boundary
        assert b["history"][key] == pytest.approx(a["history"][key], abs=1.0), key
    for name, value in a["model"].items():
        torch.testing.assert_close(b["model"][name], value, rtol=1e-3, atol=1e-4, msg=name)


def _start_ranks(out: Path, timeout_s: int) -> list[subprocess.Popen]:
    """Two ranks of one run, started as torchrun would (environment variables), each with its
    own stderr so the test can read what each says."""
    port = str(_free_port())
    procs = []
    for rank in (0, 1):
        env = _env(
            RANK=str(rank),
            LOCAL_RANK=str(rank),
            WORLD_SIZE="2",
            MASTER_ADDR="127.0.0.1",
            MASTER_PORT=port,
            COURSE_DIST_TIMEOUT=str(timeout_s),
        )
        cmd = [sys.executable, *TRAIN, "--epochs", "400", "--out", str(out)]
        procs.append(
            subprocess.Popen(
                cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
        )
    deadline = time.monotonic() + 300
    while not (out / "history.json").exists():  # rank 0 finished epoch 1: both are training
        assert time.monotonic() < deadline and all(p.poll() is None for p in procs), [
            p.communicate()[1] for p in procs if p.poll() is not None
        ]
        time.sleep(0.1)
    return procs


@pytest.mark.slow
@pytest.mark.parametrize("fault", ["SIGSTOP", "SIGKILL"])
def test_a_frozen_or_killed_rank_ends_the_run_with_one_line(tmp_path, fault):
    timeout_s = 10
    rank0, rank1 = _start_ranks(tmp_path / "run", timeout_s)
    try:
        started = time.monotonic()
        os.kill(rank1.pid, getattr(signal, fault))
        _, err = rank0.communicate(timeout=timeout_s + 120)
        waited = time.monotonic() - started
    finally:
        rank1.kill()
        rank1.communicate()
    assert rank0.returncode == 7, err
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.startswith("[rank")]  # not torch's warnings
    assert len(lines) == 1, err
    assert lines[0].startswith("[rank 0] error: another process of this distributed run failed")
    assert "--resume" in lines[0]
    if fault == "SIGSTOP":
        assert f"COURSE_DIST_TIMEOUT={timeout_s} s" in lines[0]
        assert waited < timeout_s + 60  # not torch's default of 30 minutes
