"""Ten ``kill -9`` at random moments of a training run, some in the middle of a save, then resume.

After every kill the checkpoint on disk loads; the resumed run ends with no temporary files
left, a ``history.json`` equal to the checkpoint's history, and the weights of a run that was
never interrupted. Each run is a forked child of the test process, so no kill pays for a new
Python and PyTorch start-up.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import signal
import time
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader

from course_lib.io import load_checkpoint
from course_lib.models import create_model
from course_lib.train import TrainConfig, fit
from tests.conftest import colour_blobs

EPOCHS = 8
CONFIG = TrainConfig(epochs=EPOCHS, lr=3e-3, warmup_epochs=1, progress=False)


def _train(out: str, slow_saves: bool) -> None:
    """Train (resuming whatever is in ``out``) to the end; runs in a forked child."""
    torch.set_num_threads(1)
    if slow_saves:  # widen the window in which a kill lands inside a save
        real_fsync = os.fsync

        def slow_fsync(fd: int) -> None:
            time.sleep(0.03)
            real_fsync(fd)

        os.fsync = slow_fsync
    generator = torch.Generator().manual_seed(0)
    train = DataLoader(colour_blobs(64, size=16, seed=0), 16, shuffle=True, generator=generator)
    test = DataLoader(colour_blobs(32, size=16, seed=1), batch_size=32)
    torch.manual_seed(0)
    model = create_model("resnet_tiny", num_classes=4)
    fit(model, train, test, CONFIG, out_dir=out, resume=True, device="cpu")


def _start(out: Path, slow_saves: bool = True) -> multiprocessing.Process:
    process = multiprocessing.get_context("fork").Process(
        target=_train, args=(str(out), slow_saves)
    )
    process.start()
    return process


def _temporaries(folder: Path) -> list[Path]:
    return sorted(folder.glob(".*.tmp"))


@pytest.mark.skipif(not hasattr(os, "fork"), reason="forks the training runs")
def test_ten_kills_then_resume_equal_an_uninterrupted_run(tmp_path):
    straight = _start(tmp_path / "straight", slow_saves=False)
    straight.join(120)
    assert straight.exitcode == 0

    out, rng = tmp_path / "killed", random.Random(0)
    during_saves = left_behind = 0
    for attempt in range(10):
        process = _start(out)
        deadline = time.monotonic() + 60
        if attempt % 2 == 0:  # wait for a save in progress (its temporary file), then kill
            while not _temporaries(out) and process.is_alive() and time.monotonic() < deadline:
                time.sleep(0.002)
            during_saves += bool(_temporaries(out))
        else:  # anywhere: set-up, an epoch, a save
            time.sleep(rng.uniform(0.0, 0.6))
        os.kill(process.pid, signal.SIGKILL)
        process.join()
        left_behind += len(_temporaries(out))
        if (out / "checkpoint.pt").exists():
            load_checkpoint(out / "checkpoint.pt")  # always loadable

    assert during_saves >= 3, "too few kills landed inside a save; the test proved little"
    assert left_behind, "no kill left a temporary file behind; nothing was cleaned up"
    final = _start(out, slow_saves=False)
    final.join(120)
    assert final.exitcode == 0
    assert _temporaries(out) == []

    a = load_checkpoint(tmp_path / "straight" / "checkpoint.pt")
    b = load_checkpoint(out / "checkpoint.pt")
    assert b["epoch"] == EPOCHS and b["history"]["epoch"] == list(range(1, EPOCHS + 1))
    assert b["history"]["test_nll"] == a["history"]["test_nll"]
    for name, value in a["model"].items():
        assert torch.equal(value, b["model"][name]), name
    assert json.loads((out / "history.json").read_text()) == b["history"]
