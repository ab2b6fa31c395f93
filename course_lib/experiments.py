"""Trained models shared by all chapters, trained once per profile and cached on disk.

``trained_model("vit", profile="laptop")`` returns the laptop profile's ViT trained on the
profile's data, training it (with a progress bar) only if the cache has no finished run for the
same key. A run interrupted midway resumes from its last epoch. The key holds the model, data,
fraction, image size, training recipe, seed and library version.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from course_lib import cache
from course_lib.cache import (
    agree,
    checkpoint_matches,
    entry_dir,
    is_rank0,
    stamp,
    stamp_matches,
    write_key,
)
from course_lib.config import Profile, get_profile
from course_lib.data import make_loaders, mix_transform
from course_lib.io import CheckpointError, load_checkpoint
from course_lib.models import create_model, list_models
from course_lib.train import History, TrainConfig, default_device, fit


@dataclass
class TrainedModel:
    """A trained model with its training history and where its run is stored."""

    name: str
    model: nn.Module
    history: History
    folder: Path
    num_classes: int
    image_size: int


def resolve_model_name(family_or_name: str, profile: Profile) -> str:
    """``"vit"`` → the profile's ViT (e.g. ``vit_mini``); a registered name passes through."""
    if family_or_name in profile.models:
        return profile.models[family_or_name]
    if family_or_name in list_models():
        return family_or_name
    raise ValueError(
        f"unknown model or family {family_or_name!r}; families: {', '.join(profile.models)}; "
        f"models: {', '.join(list_models())}"
    )


def train_config_for(profile: Profile, seed: int = 0, **overrides) -> TrainConfig:
    """The :class:`TrainConfig` matching a profile's training settings (fields overridable)."""
    t = profile.train
    settings = {
        "epochs": t.epochs,
        "lr": t.lr,
        "weight_decay": t.weight_decay,
        "warmup_epochs": t.warmup_epochs,
        "label_smoothing": t.label_smoothing,
        "channels_last": t.channels_last,
        "compile": t.compile,
        "seed": seed,
    }
    return TrainConfig(**(settings | overrides))


def trained_model(
    family_or_name: str,
    *,
    profile: str | Profile | None = None,
    fraction: float = 1.0,
    seed: int = 0,
    image_size: int | None = None,
    epochs: int | None = None,
    device: torch.device | str | None = None,
    progress: bool | None = None,
    **model_overrides,
) -> TrainedModel:
    """Train (or load from the cache) one of the course's models on the profile's data.

    ``fraction`` trains on a class-balanced subset (claim C2). The number of optimisation steps
    is kept equal across fractions by scaling the epochs with ``1 / fraction``, as the paper's
    small-data runs train for the same number of iterations.
    """
    prof = profile if isinstance(profile, Profile) else get_profile(profile)
    name = resolve_model_name(family_or_name, prof)
    size = image_size or prof.image_size
    base_epochs = epochs or prof.train.epochs
    run_epochs = max(1, round(base_epochs / fraction))
    # tested at the full run's step counts: every 1 / fraction epochs
    every = max(1, round(run_epochs / base_epochs))
    config = train_config_for(
        prof, seed=seed, epochs=run_epochs, eval_every=every, progress=progress
    )
    t = prof.train
    key = {
        "model": name,
        "overrides": model_overrides,
        "data": prof.data,
        "synthetic": dataclasses.asdict(prof.synthetic) if prof.data == "synthetic" else None,
        "n_train": prof.n_train,
        "n_test": prof.n_test,
        "fraction": fraction,
        "image_size": size,
        "train": dataclasses.asdict(config) | {"progress": None},
        "augment": t.augment,
        "mix": t.mix,
        "batch_size": t.batch_size,
    }
    folder = entry_dir("trained", key)
    device = torch.device(device) if device is not None else default_device()
    memo = (folder, str(device), cache.code_fingerprint("trained"))
    known = _LOADED.get(memo)
    # rank 0 checks that the file on disk is still the one it loaded; the others follow it
    unchanged = known is not None and (not is_rank0() or known[1] == _file_identity(folder))
    if agree(unchanged) and known:
        return known[0]
    finished = _finished_state(folder, key, run_epochs) if is_rank0() else None
    # Every rank follows rank 0, so a fast rank cannot load a checkpoint rank 0 is still writing.
    if agree(finished is not None):  # no data needed: the checkpoint says how to build the model
        finished = finished or _finished_state(folder, key, run_epochs)
        num_classes = int(finished["meta"]["num_classes"])
        torch.manual_seed(seed)
        model = create_model(name, num_classes=num_classes, image_size=size, **model_overrides)
        model.load_state_dict(finished["model"])
        history = History.from_dict(finished["history"])
        run = TrainedModel(name, model.to(device).eval(), history, folder, num_classes, size)
        _LOADED[memo] = (run, _file_identity(folder))
        return run
    train_loader, test_loader, info = make_loaders(
        prof.data_spec(image_size=size),
        batch_size=t.batch_size,
        fraction=fraction,
        seed=seed,
        device=device,
    )
    torch.manual_seed(seed)
    model = create_model(name, num_classes=info.num_classes, image_size=size, **model_overrides)
    # Resume only a checkpoint stamped with this key and code; any other is overwritten by
    # epoch 1 of a fresh run (rank 0 decides for all ranks).
    resume = agree(is_rank0() and checkpoint_matches(folder / "checkpoint.pt", "trained", key))
    history = fit(
        model,
        train_loader,
        test_loader,
        config,
        out_dir=folder,
        resume=resume,
        batch_transform=mix_transform(info.num_classes) if t.mix else None,
        device=device,
        meta={"model": name, "num_classes": info.num_classes, "image_size": size}
        | stamp("trained", key),
    )
    if is_rank0():
        write_key(folder, "trained", key)
    run = TrainedModel(name, model.to(device).eval(), history, folder, info.num_classes, size)
    _LOADED[memo] = (run, _file_identity(folder))
    return run


#: Trained models already loaded in this process, with their checkpoint's
#: :func:`_file_identity`: every chapter shares one copy (do not train it further in place).
_LOADED: dict[tuple[Path, str, str], tuple[TrainedModel, tuple | None]] = {}


def _file_identity(folder: Path) -> tuple | None:
    """The checkpoint file's (mtime, size): a rewritten or damaged file misses the memo."""
    try:
        stat = (folder / "checkpoint.pt").stat()
    except OSError:
        return None
    return (stat.st_mtime_ns, stat.st_size)


def _finished_state(folder: Path, key: dict, epochs: int) -> dict | None:
    """The checkpoint of a finished cached run with this exact key, else None."""
    ckpt = folder / "checkpoint.pt"
    if not ckpt.exists():
        return None
    try:
        state = load_checkpoint(ckpt)
    except CheckpointError as err:
        print(f"[cache] retraining: {err}")
        ckpt.unlink(missing_ok=True)
        return None
    if not stamp_matches(state.get("meta") or {}, "trained", key):
        return None  # another key or older code: retrained from scratch
    if int(state.get("epoch", 0)) < epochs or "num_classes" not in state.get("meta", {}):
        return None  # unfinished: fit() resumes it
    return state
