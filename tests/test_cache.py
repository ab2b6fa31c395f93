"""Results cache and shared trained models: computed once, reused, never silently corrupt."""

from __future__ import annotations

import json
import math
import shutil

import pytest
import torch

from course_lib import cache, experiments
from course_lib.cache import cached_result, code_fingerprint, entry_dir, full_key
from course_lib.config import get_profile
from course_lib.experiments import resolve_model_name, trained_model


def test_cached_result_computes_once_and_reuses():
    calls = []

    def compute():
        calls.append(1)
        return {"values": torch.arange(3.0), "note": "ok"}

    first = cached_result("demo", {"a": 1}, compute)
    second = cached_result("demo", {"a": 1}, compute)
    assert len(calls) == 1
    assert torch.equal(first["values"], second["values"]) and second["note"] == "ok"
    cached_result("demo", {"a": 2}, compute)
    assert len(calls) == 2  # another key, another entry


def test_damaged_cache_entry_is_recomputed_with_a_warning():
    cached_result("demo", {"a": 1}, lambda: {"x": torch.ones(2)})
    (entry_dir("demo", {"a": 1}) / "result.pt").write_bytes(b"garbage")
    with pytest.warns(UserWarning, match="damaged cache entry"):
        result = cached_result("demo", {"a": 1}, lambda: {"x": torch.zeros(2)})
    assert torch.equal(result["x"], torch.zeros(2))


def test_stale_key_is_recomputed():
    cached_result("demo", {"a": 1}, lambda: {"x": torch.ones(2)})
    folder = entry_dir("demo", {"a": 1})
    (folder / "key.json").write_text('{"kind": "demo", "a": "something else"}')
    with pytest.warns(UserWarning, match="stale cache entry"):
        result = cached_result("demo", {"a": 1}, lambda: {"x": torch.zeros(2)})
    assert torch.equal(result["x"], torch.zeros(2))


def test_code_edit_makes_the_entry_stale(monkeypatch):
    """The stored key holds the code fingerprint: an edit recomputes in place, with a warning."""
    cached_result("demo", {"a": 1}, lambda: {"x": torch.ones(2)})
    folder = entry_dir("demo", {"a": 1})
    assert json.loads((folder / "key.json").read_text())["code"] == code_fingerprint("demo")
    monkeypatch.setattr(cache, "code_fingerprint", lambda kind: "0123456789abcdef")
    assert entry_dir("demo", {"a": 1}) == folder  # same folder, now stale
    with pytest.warns(UserWarning, match="stale cache entry"):
        result = cached_result("demo", {"a": 1}, lambda: {"x": torch.zeros(2)})
    assert torch.equal(result["x"], torch.zeros(2))
    again = cached_result("demo", {"a": 1}, lambda: pytest.fail("recomputed a fresh entry"))
    assert torch.equal(again["x"], torch.zeros(2))


@pytest.fixture
def source_copy(tmp_path, monkeypatch):
    """A copy of the package source that the fingerprints hash instead of the real one."""
    root = tmp_path / "course_lib"
    shutil.copytree(cache.PACKAGE_ROOT, root, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(cache, "PACKAGE_ROOT", root)
    code_fingerprint.cache_clear()
    yield root
    code_fingerprint.cache_clear()


def _edit(path):
    path.write_text(path.read_text() + "\n# an edit\n")
    code_fingerprint.cache_clear()  # a new process, as after editing the code


def test_trained_key_ignores_edits_outside_the_training_code(source_copy):
    key = {"model": "vit_tiny"}
    trained, analysis = full_key("trained", key), full_key("demo", key)
    assert trained["code"] != analysis["code"]  # different parts of the package
    _edit(source_copy / "chapters" / "ch01_inductive_bias.py")
    assert full_key("trained", key) == trained
    assert full_key("demo", key) != analysis
    edited = full_key("demo", key)
    _edit(source_copy / "models" / "vit.py")
    assert full_key("trained", key) != trained
    assert full_key("demo", key) != edited
    retrained = full_key("trained", key)
    (source_copy / "data" / "extra.py").write_text("X = 1\n")  # a new file counts too
    code_fingerprint.cache_clear()
    assert full_key("trained", key) != retrained


def test_model_code_edit_retrains_from_scratch(monkeypatch):
    profile = get_profile("smoke", n_train=128, n_test=64)
    first = trained_model("resnet", profile=profile, device="cpu", progress=False)
    monkeypatch.setattr(cache, "code_fingerprint", lambda kind: "0123456789abcdef")
    resumed = []
    real_fit = experiments.fit
    monkeypatch.setattr(
        experiments, "fit", lambda *a, **kw: resumed.append(kw["resume"]) or real_fit(*a, **kw)
    )
    again = trained_model("resnet", profile=profile, device="cpu", progress=False)
    assert resumed == [False] and again.folder == first.folder
    assert again.history.epoch == [1]
    assert json.loads((again.folder / "key.json").read_text())["code"] == "0123456789abcdef"


def test_resolve_model_name():
    smoke = get_profile("smoke")
    assert resolve_model_name("vit", smoke) == "vit_tiny"
    assert resolve_model_name("resnet18", smoke) == "resnet18"
    with pytest.raises(ValueError, match="unknown model or family 'vgg'"):
        resolve_model_name("vgg", smoke)


def test_trained_model_is_cached_and_reloaded(capsys):
    profile = get_profile("smoke", n_train=128, n_test=64)
    first = trained_model("resnet", profile=profile, device="cpu", progress=False)
    assert first.name == "resnet_tiny" and first.history.epoch == [1]
    assert (first.folder / "checkpoint.pt").exists()
    second = trained_model("resnet", profile=profile, device="cpu", progress=False)
    assert second.history.test_nll == first.history.test_nll
    for name, value in first.model.state_dict().items():
        assert torch.equal(value, second.model.state_dict()[name]), name
    assert not second.model.training


def test_damaged_trained_model_is_retrained(capsys):
    profile = get_profile("smoke", n_train=128, n_test=64)
    first = trained_model("resnet", profile=profile, device="cpu", progress=False)
    (first.folder / "checkpoint.pt").write_bytes(b"truncated")
    again = trained_model("resnet", profile=profile, device="cpu", progress=False)
    assert "retraining" in capsys.readouterr().out
    assert again.history.test_nll == pytest.approx(first.history.test_nll)


def test_fractions_keep_the_number_of_steps():
    profile = get_profile("smoke", n_train=128, n_test=64)
    half = trained_model("vit", profile=profile, fraction=0.5, device="cpu", progress=False)
    assert half.history.epoch == [1, 2]  # 1 epoch / 0.5
    # tested where the full run is (after 1 of its epochs), not after every short epoch
    assert math.isnan(half.history.test_error[0]) and not math.isnan(half.history.test_error[1])


def _flip_bytes(path, count=200):
    """Flip ``count`` bytes inside the largest record (a tensor's data) of a saved file, keeping
    its size and its zip structure: silent disk damage that only the checksums reveal."""
    import struct
    import zipfile

    with zipfile.ZipFile(path) as archive:
        largest = max(archive.infolist(), key=lambda info: info.file_size)
    data = bytearray(path.read_bytes())
    offset = largest.header_offset
    name_len, extra_len = struct.unpack("<HH", data[offset + 26 : offset + 30])
    start = offset + 30 + name_len + extra_len
    assert largest.compress_size >= count
    for i in range(start, start + count):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def test_flipped_bytes_in_a_cache_entry_are_detected_and_recomputed():
    cached_result("demo", {"a": 1}, lambda: {"x": torch.arange(4000.0)})
    _flip_bytes(entry_dir("demo", {"a": 1}) / "result.pt")
    with pytest.warns(UserWarning, match="damaged cache entry.*corrupt"):
        result = cached_result("demo", {"a": 1}, lambda: {"x": torch.zeros(2)})
    assert torch.equal(result["x"], torch.zeros(2))


def test_empty_cache_file_is_reported_once_and_recomputed():
    cached_result("demo", {"a": 1}, lambda: {"x": torch.ones(2)})
    (entry_dir("demo", {"a": 1}) / "result.pt").write_bytes(b"")
    with pytest.warns(UserWarning, match="damaged cache entry.*empty"):
        result = cached_result("demo", {"a": 1}, lambda: {"x": torch.zeros(2)})
    assert torch.equal(result["x"], torch.zeros(2))
    again = cached_result("demo", {"a": 1}, lambda: pytest.fail("recomputed a repaired entry"))
    assert torch.equal(again["x"], torch.zeros(2))


def test_failed_write_after_a_code_edit_returns_the_fresh_result_and_never_the_old(monkeypatch):
    """A write that dies after the label but before the payload must not make the old payload
    pass for the new code's result; the fresh result is returned with a warning."""
    cached_result("demo", {"a": 1}, lambda: {"x": torch.ones(2)})
    monkeypatch.setattr(cache, "code_fingerprint", lambda kind: "0123456789abcdef")
    cache.write_key(entry_dir("demo", {"a": 1}), "demo", {"a": 1})  # new label, old payload

    def full_disk(path, state):
        raise OSError(f"could not write {path} (No space left on device)")

    real_save = cache.save_checkpoint
    monkeypatch.setattr(cache, "save_checkpoint", full_disk)
    with pytest.warns(UserWarning) as caught:
        fresh = cached_result("demo", {"a": 1}, lambda: {"x": torch.zeros(2)})
    assert torch.equal(fresh["x"], torch.zeros(2))  # computed, not lost
    messages = " ".join(str(w.message) for w in caught)
    assert "stale cache entry" in messages and "not cached" in messages
    monkeypatch.setattr(cache, "save_checkpoint", real_save)
    with pytest.warns(UserWarning, match="stale cache entry"):
        later = cached_result("demo", {"a": 1}, lambda: {"x": torch.full((2,), 7.0)})
    assert torch.equal(later["x"], torch.full((2,), 7.0))


def test_cache_files_follow_the_umask_for_a_shared_cache():
    import os

    old = os.umask(0o002)
    try:
        cached_result("demo", {"a": 1}, lambda: {"x": torch.ones(2)})
    finally:
        os.umask(old)
    folder = entry_dir("demo", {"a": 1})
    for name in ("result.pt", "key.json"):
        assert (folder / name).stat().st_mode & 0o777 == 0o664, name


def test_stale_temporaries_of_dead_writers_are_removed():
    import os
    import subprocess
    import sys

    from course_lib.io import _HOST, remove_stale_temporaries

    cached_result("demo", {"a": 1}, lambda: {"x": torch.ones(2)})
    folder = entry_dir("demo", {"a": 1})
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    leftover = folder / f".result.pt.{_HOST}-{dead.stdout.strip()}.abc123.tmp"
    live = folder / f".result.pt.{_HOST}-{os.getpid()}.def456.tmp"
    leftover.write_bytes(b"x" * 100)
    live.write_bytes(b"y")
    assert remove_stale_temporaries(folder) == [leftover]
    assert not leftover.exists() and live.exists()
    live.unlink()
    leftover.write_bytes(b"x")
    cached_result("demo", {"a": 1}, lambda: pytest.fail("recomputed"))  # cleans at start-up
    assert not leftover.exists()


def test_interrupted_retraining_after_a_code_edit_never_serves_the_old_weights(monkeypatch):
    """Ctrl-C in the first epoch after an edit, then rerun: the old model must not come back."""
    profile = get_profile("smoke", n_train=128, n_test=64)
    old = trained_model("resnet", profile=profile, device="cpu", progress=False)
    monkeypatch.setattr(cache, "code_fingerprint", lambda kind: "0123456789abcdef")
    real_fit = experiments.fit

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(experiments, "fit", interrupted)
    with pytest.raises(KeyboardInterrupt):
        trained_model("resnet", profile=profile, device="cpu", progress=False)
    trained = []
    monkeypatch.setattr(
        experiments, "fit", lambda *a, **kw: trained.append(kw["resume"]) or real_fit(*a, **kw)
    )
    again = trained_model("resnet", profile=profile, device="cpu", progress=False)
    assert trained == [False]  # retrained from scratch, not served or resumed from old code
    assert again.folder == old.folder


def test_flipped_bytes_in_a_trained_checkpoint_retrain(capsys):
    profile = get_profile("smoke", n_train=128, n_test=64)
    first = trained_model("resnet", profile=profile, device="cpu", progress=False)
    _flip_bytes(first.folder / "checkpoint.pt")
    again = trained_model("resnet", profile=profile, device="cpu", progress=False)
    assert "retraining" in capsys.readouterr().out
    assert again.history.test_nll == pytest.approx(first.history.test_nll)
