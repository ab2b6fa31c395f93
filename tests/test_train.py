"""Training loop: learns, resumes exactly, fails clearly, and matches under DDP."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import pickle
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.utils.data import DataLoader
from torch.utils.data.distributed import DistributedSampler

from course_lib.data import mix_transform
from course_lib.io import CheckpointError, load_checkpoint, save_checkpoint
from course_lib.models import create_model
from course_lib.train import History, TrainConfig, TrainingDiverged, augmented_pass, evaluate, fit
from tests.conftest import colour_blobs

FAST = TrainConfig(epochs=2, lr=3e-3, warmup_epochs=0.5, progress=False)


def test_fit_learns_and_writes_history(blob_loaders, tmp_path):
    train, test = blob_loaders()
    model = create_model("resnet_tiny", num_classes=4)
    history = fit(model, train, test, FAST, out_dir=tmp_path, device="cpu")
    assert history.epoch == [1, 2]
    assert history.test_error[-1] < 50.0  # chance is 75 %
    assert history.train_nll[-1] < history.train_nll[0]
    saved = json.loads((tmp_path / "history.json").read_text())
    assert saved["test_error"] == history.test_error
    state = load_checkpoint(tmp_path / "checkpoint.pt")
    assert state["epoch"] == 2 and state["train_config"]["lr"] == FAST.lr


def test_eval_every_tests_every_nth_epoch_and_the_last(blob_loaders):
    train, test = blob_loaders()
    torch.manual_seed(0)
    config = TrainConfig(epochs=5, lr=3e-3, eval_every=2, progress=False)
    history = fit(create_model("resnet_tiny", num_classes=4), train, test, config, device="cpu")
    tested = [not math.isnan(e) for e in history.test_error]
    assert tested == [False, True, False, True, True]
    assert [not math.isnan(n) for n in history.test_nll] == tested
    # training itself does not depend on when the test set is read
    torch.manual_seed(0)
    every = fit(create_model("resnet_tiny", num_classes=4), train, test,
                dataclasses.replace(config, eval_every=1), device="cpu")  # fmt: skip
    assert every.train_nll == history.train_nll
    assert every.test_error[-1] == history.test_error[-1]
    with pytest.raises(ValueError, match="eval_every"):
        TrainConfig(eval_every=0)


def test_final_train_metrics_are_a_fixed_pass_at_the_final_weights(blob_loaders, tmp_path):
    train, test = blob_loaders()
    model = create_model("resnet_tiny", num_classes=4)
    history = fit(model, train, test, FAST, out_dir=tmp_path, device="cpu")
    # without augmentation or mixing the pass is the plain NLL of the training set in eval mode
    assert (history.final_train_nll, history.final_train_error) == pytest.approx(
        evaluate(model, train), rel=1e-5
    )
    saved = History.from_dict(json.loads((tmp_path / "history.json").read_text()))
    assert saved.final_train_nll == history.final_train_nll
    # with mixup/CutMix and label smoothing: the objective, and the same on every call
    config = TrainConfig(epochs=2, label_smoothing=0.1)
    mix = mix_transform(4)
    first = augmented_pass(model, train, config, torch.device("cpu"), mix)
    assert first == augmented_pass(model, train, config, torch.device("cpu"), mix)
    assert first[0] > history.final_train_nll  # soft, smoothed targets cost more


class _CrashingLoader(DataLoader):
    """A DataLoader that raises after ``crash_after`` batches in total, like a killed run."""

    def __init__(self, *args, crash_after: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.crash_after, self.served = crash_after, 0

    def __iter__(self):
        for batch in super().__iter__():
            if self.served == self.crash_after:
                raise KeyboardInterrupt("simulated crash")
            self.served += 1
            yield batch


def test_resume_after_interrupt_gives_identical_weights(tmp_path):
    """3 epochs straight vs. a crash in the middle of epoch 2, then resume: equal weights."""
    config = TrainConfig(epochs=3, lr=3e-3, warmup_epochs=1, progress=False)
    train, test = colour_blobs(128, seed=0), colour_blobs(64, seed=1)

    def loader(**kw):
        return _CrashingLoader(train, batch_size=32, shuffle=True,
                               generator=torch.Generator().manual_seed(0), **kw)  # fmt: skip

    torch.manual_seed(0)
    straight = create_model("vit_tiny", num_classes=4, dropout=0.1)
    h_straight = fit(straight, loader(crash_after=-1), DataLoader(test, batch_size=32), config,
                     out_dir=tmp_path / "a", device="cpu")  # fmt: skip

    torch.manual_seed(0)
    crashed = create_model("vit_tiny", num_classes=4, dropout=0.1)
    with pytest.raises(KeyboardInterrupt):
        fit(crashed, loader(crash_after=6), DataLoader(test, batch_size=32), config,
            out_dir=tmp_path / "b", device="cpu")  # fmt: skip
    assert load_checkpoint(tmp_path / "b" / "checkpoint.pt")["epoch"] == 1

    torch.manual_seed(999)  # whatever state the new process is in must not matter
    resumed = create_model("vit_tiny", num_classes=4, dropout=0.1)
    h_resumed = fit(resumed, loader(crash_after=-1), DataLoader(test, batch_size=32), config,
                    out_dir=tmp_path / "b", resume=True, device="cpu")  # fmt: skip
    for name, value in straight.state_dict().items():
        assert torch.equal(value, resumed.state_dict()[name]), name
    assert h_resumed.test_nll == h_straight.test_nll
    assert h_resumed.epoch == [1, 2, 3]


def test_nan_loss_raises_and_keeps_last_good_checkpoint(tmp_path):
    data = colour_blobs(64)
    loader = DataLoader(data, batch_size=32)
    model = create_model("resnet_tiny", num_classes=4)
    fit(model, loader, None, TrainConfig(epochs=1, progress=False), out_dir=tmp_path, device="cpu")
    good = load_checkpoint(tmp_path / "checkpoint.pt")
    bad_images = data.tensors[0].clone()
    bad_images[5] = float("nan")
    bad = DataLoader(torch.utils.data.TensorDataset(bad_images, data.tensors[1]), batch_size=32)
    with pytest.raises(TrainingDiverged, match="loss became nan in epoch 2.*lower the learning"):
        fit(model, bad, None, TrainConfig(epochs=2, progress=False), out_dir=tmp_path,
            resume=True, device="cpu")  # fmt: skip
    kept = load_checkpoint(tmp_path / "checkpoint.pt")
    assert kept["epoch"] == good["epoch"] == 1
    assert all(torch.equal(kept["model"][k], v) for k, v in good["model"].items())


def test_truncated_checkpoint_is_a_clear_error(tmp_path):
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, {"model": create_model("resnet_tiny").state_dict(), "epoch": 1})
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="corrupt or truncated.*delete it"):
        load_checkpoint(path)


def test_garbage_and_missing_checkpoints_are_clear_errors(tmp_path):
    (tmp_path / "junk.pt").write_bytes(b"this is not a checkpoint")
    with pytest.raises(CheckpointError, match="junk.pt"):
        load_checkpoint(tmp_path / "junk.pt")
    with pytest.raises(CheckpointError, match="no checkpoint at"):
        load_checkpoint(tmp_path / "absent.pt")


class _RunsCode:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_pickle_that_runs_code_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"model": _RunsCode()}, path, pickle_module=pickle)
    with pytest.raises(CheckpointError, match="not a plain checkpoint"):
        load_checkpoint(path)


def test_unwritable_output_folder_is_a_clear_error(blob_loaders, tmp_path):
    if os.geteuid() == 0:
        blocker = tmp_path / "file"
        blocker.write_text("a file where a folder should be")
        out = blocker / "run"
    else:
        tmp_path.chmod(0o500)
        out = tmp_path / "run"
    train, test = blob_loaders()
    with pytest.raises(OSError, match="cannot write to"):
        fit(create_model("resnet_tiny", num_classes=4), train, test,
            TrainConfig(epochs=1, progress=False), out_dir=out, device="cpu")  # fmt: skip


def test_evaluate_restores_training_mode(blob_loaders):
    _, test = blob_loaders()
    model = create_model("resnet_tiny", num_classes=4).train()
    nll, err = evaluate(model, test)
    assert model.training and 0 <= err <= 100 and nll > 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_worker(rank: int, world: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        train, test = colour_blobs(64, seed=0), colour_blobs(32, seed=1)
        loaders = [
            DataLoader(d, batch_size=8, sampler=DistributedSampler(d, shuffle=False))
            for d in (train, test)
        ]
        torch.manual_seed(0)
        model = create_model("vit_tiny", num_classes=4)
        history = fit(model, *loaders, TrainConfig(epochs=2, progress=False), device="cpu")
        if rank == 0:
            torch.save({"model": model.state_dict(), "history": history.to_dict()}, out)
    finally:
        dist.destroy_process_group()


def test_ddp_with_two_gloo_ranks_matches_one_process(tmp_path):
    """2 ranks × batch 8 (DistributedSampler) == 1 process × batch 16: same weights, metrics."""
    out = str(tmp_path / "ddp.pt")
    mp.spawn(_ddp_worker, args=(2, _free_port(), out), nprocs=2, join=True)
    torch.manual_seed(0)
    model = create_model("vit_tiny", num_classes=4)
    train = DataLoader(colour_blobs(64, seed=0), batch_size=16)
    test = DataLoader(colour_blobs(32, seed=1), batch_size=16)
    history = fit(model, train, test, TrainConfig(epochs=2, progress=False), device="cpu")
    ddp = torch.load(out, weights_only=True)
    for name, value in model.state_dict().items():
        torch.testing.assert_close(ddp["model"][name], value, rtol=1e-4, atol=1e-5, msg=name)
    for key in ("train_nll", "test_nll", "test_error"):
        assert ddp["history"][key] == pytest.approx(getattr(history, key), rel=1e-4)


def test_full_disk_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    """A write that fails midway (ENOSPC) raises a clear error and leaves the old file intact."""
    import errno

    from course_lib import io as course_io

    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, {"epoch": 1, "w": torch.ones(3)})

    def no_space(fd, *args, **kwargs):
        os.close(fd)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(course_io.os, "fdopen", no_space)
    with pytest.raises(OSError, match="could not write .*previous file is kept.*disk space"):
        save_checkpoint(path, {"epoch": 2, "w": torch.zeros(3)})
    monkeypatch.undo()
    assert load_checkpoint(path)["epoch"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]  # no temporary left behind


def test_position_parameters_get_no_weight_decay():
    from course_lib.train import _make_optimizer

    model = create_model("local_vit_tiny", num_classes=4)
    groups = _make_optimizer(model, TrainConfig(weight_decay=0.05)).param_groups
    no_decay = {id(p) for g in groups if g["weight_decay"] == 0 for p in g["params"]}
    tables = [p for name, p in model.named_parameters() if name.endswith("bias.table")]
    assert tables and all(id(p) in no_decay for p in tables)
    weights = [p for name, p in model.named_parameters() if name.endswith("qkv.weight")]
    assert weights and not any(id(p) in no_decay for p in weights)
