"""What a careless or hostile user can do: every expected failure is one line and an exit code.

Each test names the problem it guards against; the exit codes are ``course_lib.__main__``'s
``EXIT_CODES`` (2 input, 3 data, 4 checkpoint, 5 diverged, 6 file system, 7 distributed).
"""

from __future__ import annotations

import json
import shutil
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from course_lib import __main__ as cli_main
from course_lib.__main__ import EXIT_CODES, main
from course_lib.io import CheckpointError, load_checkpoint, save_checkpoint
from tests.fake_cifar import write_cifar
from tests.test_cache import _flip_bytes


def _one_line(err: str) -> str:
    """The single line of ``err``; fails if there is more (a traceback, a second message)."""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


SMALL = ("--fraction", "0.05")  # 30 of the smoke profile's 512 training images: fast


def _train(cli, out, *extra: str) -> tuple[int, str, str]:
    return cli("train", "--model", "resnet_tiny", "--quiet", "--out", str(out), *SMALL, *extra)


@pytest.fixture(scope="module")
def _finished_run(tmp_path_factory):
    """One finished one-epoch smoke run of resnet_tiny, trained once for the module."""
    out = tmp_path_factory.mktemp("template") / "run"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("COURSE_PROFILE", "smoke")
        code = main(["train", "--model", "resnet_tiny", "--quiet", "--out", str(out), *SMALL])
    assert code == 0
    return out


@pytest.fixture
def trained_run(_finished_run, tmp_path):
    """A private copy of the finished run, in ``tmp_path / 'run'``."""
    return Path(shutil.copytree(_finished_run, tmp_path / "run"))


# --- 4. input checks, before any training --------------------------------------------------


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--epochs", "0"], "--epochs must be at least 1, got 0"),
        (["--epochs", "-3"], "--epochs must be at least 1, got -3"),
        (["--batch-size", "0"], "--batch-size must be at least 1"),
        (["--image-size", "0"], "--image-size must be at least 1"),
        (["--lr", "-1"], "--lr must be a positive number"),
        (["--device", "gpu0"], "unknown device 'gpu0'"),
    ],
)
def test_bad_values_are_refused_before_any_data_is_loaded(
    cli, monkeypatch, tmp_path, extra, message
):
    import course_lib.data

    monkeypatch.setattr(course_lib.data, "make_loaders", lambda *a, **k: pytest.fail("loaded"))
    code, _, err = _train(cli, tmp_path / "out", *extra)
    assert code == EXIT_CODES["input"]
    assert message in _one_line(err)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a CUDA GPU")
def test_cuda_without_a_gpu_is_one_line(cli, tmp_path):
    code, _, err = _train(cli, tmp_path / "out", "--device", "cuda")
    assert code == EXIT_CODES["input"]
    assert "no CUDA GPU" in _one_line(err) and "--device cpu" in err


def test_download_offline_is_one_line_naming_the_manual_fix(cli, monkeypatch, tmp_path):
    from torchvision import datasets as tv_datasets

    def offline(self):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(tv_datasets.CIFAR10, "download", offline)
    code, _, err = _train(cli, tmp_path / "out", "--data", "cifar10", "--download")
    assert code == EXIT_CODES["data"]
    line = _one_line(err)
    assert "Downloading cifar10 failed" in line and "Offline: download" in line


def test_corrupt_cifar_files_are_one_line(cli, tmp_path):
    folder = write_cifar(tmp_path / "data", "cifar10", per_split=10)
    (folder / "test_batch").write_bytes(b"\x80\x04 not a pickle")
    code, _, err = _train(cli, tmp_path / "out", "--data", "cifar10")
    assert code == EXIT_CODES["data"]
    assert "delete them and download again" in _one_line(err)


def test_damaged_cifar_files_name_the_fix_even_unverified(tmp_path):
    from course_lib.data import DatasetError, get_dataset

    folder = write_cifar(tmp_path, "cifar10", per_split=10)
    (folder / "test_batch").write_bytes((folder / "test_batch").read_bytes()[:100])
    with pytest.raises(DatasetError, match="damaged.*download again"):
        get_dataset("cifar10", train=False, root=tmp_path, verify=False)


def _image_folder(root, bad: dict[str, bytes] | None = None):
    """``root/{train,test}/{a,b}/*.png`` with 4 small images per class; ``bad`` replaces files
    (relative path -> bytes)."""
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for cls in ("a", "b"):
            (root / split / cls).mkdir(parents=True)
            for i in range(4):
                pixels = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(root / split / cls / f"{i}.png")
    for rel, data in (bad or {}).items():
        (root / rel).write_bytes(data)
    return root


def test_corrupt_image_in_the_test_split_is_found_before_training(cli, tmp_path):
    data = _image_folder(tmp_path / "pets", {"test/b/2.png": b"\x89PNG\r\n\x1a\n garbage"})
    code, _, err = _train(cli, tmp_path / "out", "--data", f"folder:{data}", "--epochs", "1")
    assert code == EXIT_CODES["data"]
    assert "test/b/2.png" in _one_line(err) and "replace or delete" in err
    assert not (tmp_path / "out" / "checkpoint.pt").exists()  # no epoch ran


def test_truncated_jpeg_is_named(cli, tmp_path):
    data = _image_folder(tmp_path / "pets")
    pixels = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    jpeg = data / "test" / "a" / "photo.jpg"
    Image.fromarray(pixels).save(jpeg, quality=90)
    jpeg.write_bytes(jpeg.read_bytes()[: jpeg.stat().st_size // 2])
    code, _, err = _train(cli, tmp_path / "out", "--data", f"folder:{data}")
    assert code == EXIT_CODES["data"]
    assert "photo.jpg" in _one_line(err) and "truncated" in err


def test_unreadable_image_in_a_loader_worker_is_one_line_with_its_name(tmp_path):
    """An image damaged after the start-up check: the worker's error keeps the file's name."""
    from torch.utils.data import DataLoader

    from course_lib.data import DatasetError, get_dataset

    data = _image_folder(tmp_path / "pets")
    test, _ = get_dataset(f"folder:{data}", train=False)
    (data / "test" / "a" / "1.png").write_bytes(b"")
    with pytest.raises(DatasetError) as info:
        list(DataLoader(test, batch_size=4, num_workers=1))
    assert cli_main._one_line(info.value).startswith(f"cannot read image {data}/test/a/1.png")


# --- 4. checkpoints from elsewhere ----------------------------------------------------------


def test_checkpoint_of_another_program_is_one_line(cli, tmp_path):
    out = tmp_path / "run"
    save_checkpoint(out / "checkpoint.pt", {"weights": torch.ones(3), "step": 10})
    code, _, err = _train(cli, out, "--resume")
    assert code == EXIT_CODES["checkpoint"]
    assert "not a training checkpoint of course_lib" in _one_line(err)


def test_resume_with_another_model_is_one_line(cli, trained_run):
    args = ["--model", "vit_tiny", "--quiet", "--out", str(trained_run), "--resume"]
    code, _, err = cli("train", *args, "--epochs", "2")
    assert code == EXIT_CODES["checkpoint"]
    assert "another model or class count" in _one_line(err) and "new --out" in err


def test_resume_with_another_class_count_is_one_line(cli, trained_run, tmp_path):
    data = _image_folder(tmp_path / "pets")  # 2 classes; the smoke run had 10
    code, _, err = _train(cli, trained_run, "--resume", "--epochs", "2", "--data", f"folder:{data}")
    assert code == EXIT_CODES["checkpoint"]
    assert "another model or class count" in _one_line(err)


@pytest.mark.parametrize("damage", ["empty", "flipped"])
def test_damaged_checkpoint_is_one_line_every_time(cli, trained_run, damage):
    path = trained_run / "checkpoint.pt"
    if damage == "empty":
        path.write_bytes(b"")
    else:
        _flip_bytes(path)
    for _ in range(2):
        code, _, err = _train(cli, trained_run, "--resume", "--epochs", "2")
        assert code == EXIT_CODES["checkpoint"]
        assert "corrupt or truncated" in _one_line(err) and "delete it" in err


def test_empty_and_flipped_checkpoints_raise_checkpoint_error(tmp_path):
    path = tmp_path / "ckpt.pt"
    path.write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty"):
        load_checkpoint(path)
    save_checkpoint(path, {"w": torch.arange(20000.0)})
    _flip_bytes(path)
    with pytest.raises(CheckpointError, match="checksum mismatch"):
        load_checkpoint(path)


# --- 7. smaller traps ------------------------------------------------------------------------


def test_resume_without_a_checkpoint_is_refused(cli, tmp_path):
    code, _, err = _train(cli, tmp_path / "nothing", "--resume")
    assert code == EXIT_CODES["input"]
    assert "no checkpoint at" in _one_line(err) and "leave out --resume" in err


def test_training_into_an_existing_run_without_resume_is_refused(cli, trained_run):
    before = (trained_run / "checkpoint.pt").read_bytes()
    code, _, err = _train(cli, trained_run)
    assert code == EXIT_CODES["input"]
    assert "already holds a run" in _one_line(err) and "--resume" in err
    assert (trained_run / "checkpoint.pt").read_bytes() == before


def test_resume_with_another_learning_rate_is_refused(cli, trained_run):
    code, _, err = _train(cli, trained_run, "--resume", "--epochs", "2", "--lr", "0.5")
    assert code == EXIT_CODES["input"]
    assert "lr=0.001, not 0.5" in _one_line(err)
    assert json.loads((trained_run / "history.json").read_text())["epoch"] == [1]


def test_unwritable_out_is_reported_before_loading_data(cli, monkeypatch, tmp_path):
    import course_lib.data

    monkeypatch.setattr(course_lib.data, "make_loaders", lambda *a, **k: pytest.fail("loaded"))
    blocker = tmp_path / "file"
    blocker.write_text("a file where a folder should be")
    code, _, err = _train(cli, blocker / "run")
    assert code == EXIT_CODES["filesystem"]
    assert "cannot write to" in _one_line(err)


def test_precompute_interrupt_does_not_suggest_resume(cli, monkeypatch):
    import course_lib.chapters

    def interrupted(profile):
        raise KeyboardInterrupt

    monkeypatch.setattr(course_lib.chapters, "precompute_steps", lambda: {"step": interrupted})
    code, _, err = cli("precompute", "--profile", "smoke")
    assert code == EXIT_CODES["interrupted"]
    assert "--resume" not in err and "finished steps are cached" in _one_line(err)


def test_divergence_without_a_checkpoint_does_not_claim_one_is_kept(tmp_path):
    from torch.utils.data import DataLoader, TensorDataset

    from course_lib.models import create_model
    from course_lib.train import TrainConfig, TrainingDiverged, fit

    images = torch.full((8, 3, 32, 32), float("nan"))
    loader = DataLoader(TensorDataset(images, torch.zeros(8, dtype=torch.long)), batch_size=8)
    with pytest.raises(TrainingDiverged) as info:
        model = create_model("resnet_tiny", num_classes=4)
        config = TrainConfig(epochs=1, progress=False)
        fit(model, loader, None, config, out_dir=tmp_path / "run", device="cpu")
    assert "No checkpoint was written yet" in str(info.value)
    assert "is kept" not in str(info.value)


def test_history_one_epoch_behind_the_checkpoint_is_repaired_on_resume(cli, trained_run):
    """A kill between the last checkpoint and its history write left history.json behind; the
    run is finished, so no later epoch would ever rewrite it."""
    (trained_run / "history.json").write_text(json.dumps({"epoch": []}))
    code, _, err = _train(cli, trained_run, "--resume", "--epochs", "1")
    assert code == 0, err
    history = json.loads((trained_run / "history.json").read_text())
    assert history["epoch"] == [1]
    assert history == load_checkpoint(trained_run / "checkpoint.pt")["history"]
