"""One readable training loop for every model, device and process count.

``fit(model, train_loader, test_loader, TrainConfig(...), out_dir=...)`` trains with AdamW or
SGD, linear warm-up then cosine decay (per step), optional label smoothing and gradient clipping,
bfloat16 autocast on CUDA, a tqdm progress bar, and returns a :class:`History` of train/test
NLL and error per epoch. With ``out_dir`` it writes ``history.json`` and ``checkpoint.pt`` after
every epoch (atomically) and ``resume=True`` continues *exactly*: every epoch reseeds the
shuffling and augmentation RNGs from ``(seed, epoch)``, so an interrupted-and-resumed run ends
with the same weights as an uninterrupted one. The checkpoint holds the history too and is the
one source of truth: resuming rewrites ``history.json`` from it (a kill between the two writes
cannot leave them apart), and refuses a checkpoint of another model or recipe. Under ``torchrun``
the model is wrapped in DDP, metrics are summed over ranks, and only rank 0 writes.
"""

from __future__ import annotations

import dataclasses
import math
import os
import random
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from course_lib.analysis.evaluation import eval_mode
from course_lib.analysis.evaluation import evaluate as evaluate_batches
from course_lib.io import (
    CheckpointError,
    atomic_write_json,
    ensure_writable,
    load_checkpoint,
    remove_stale_temporaries,
    save_checkpoint,
)
from course_lib.models import POSITION_PARAMETERS
from course_lib.runs import History, TrainConfig, TrainingDiverged

BatchTransform = Callable[[Tensor, Tensor], tuple[Tensor, Tensor]]


def default_device() -> torch.device:
    """CUDA if available, else Apple's MPS, else the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _rank_and_world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _show_progress(config: TrainConfig, rank: int) -> bool:
    if rank != 0:
        return False
    if config.progress is not None:
        return config.progress
    return sys.stderr.isatty() and not os.environ.get("CI")


def _lr_factor(step: int, total: int, warmup: int) -> float:
    """Linear warm-up to 1 over ``warmup`` steps, then cosine decay to 0 at ``total``."""
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(total - warmup, 1)
    return 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))


def _make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """AdamW or SGD; no weight decay on biases, norms and :data:`POSITION_PARAMETERS`."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            skip = p.dim() < 2 or name.endswith(POSITION_PARAMETERS)
            (no_decay if skip else decay).append(p)
    groups = [
        {"params": decay, "weight_decay": config.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    if config.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=config.lr)
    if config.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=config.lr, momentum=0.9, nesterov=True)
    raise ValueError(f"optimizer must be 'adamw' or 'sgd', not {config.optimizer!r}")


def _soft_nll(logits: Tensor, targets: Tensor, label_smoothing: float = 0.0) -> Tensor:
    """Cross-entropy for class indices or soft (mixup/CutMix) targets, summed over the batch."""
    return F.cross_entropy(
        logits.float(), targets, label_smoothing=label_smoothing, reduction="sum"
    )


def _reseed_epoch(loader: DataLoader, config: TrainConfig, epoch: int) -> None:
    """Make epoch ``epoch``'s shuffling and augmentation a function of (seed, epoch) only."""
    epoch_seed = config.seed * 100_003 + epoch
    torch.manual_seed(epoch_seed)
    random.seed(epoch_seed)
    if loader.generator is not None:
        loader.generator.manual_seed(epoch_seed)
    if hasattr(loader.sampler, "set_epoch"):
        loader.sampler.set_epoch(epoch)


def _objective(
    net: nn.Module,
    x: Tensor,
    y: Tensor,
    config: TrainConfig,
    device: torch.device,
    batch_transform: BatchTransform | None,
) -> tuple[Tensor, Tensor, Tensor]:
    """One batch through the training objective: moved to ``device``, mixed by
    ``batch_transform``, forward (bfloat16 autocast on CUDA if ``config.amp``). Returns the
    logits, the (maybe soft) targets and the summed label-smoothed NLL."""
    memory_format = torch.channels_last if config.channels_last else torch.contiguous_format
    x = x.to(device, non_blocking=True, memory_format=memory_format)
    y = y.to(device, non_blocking=True)
    if batch_transform is not None:
        x, y = batch_transform(x, y)
    with torch.autocast(
        device.type, dtype=torch.bfloat16, enabled=config.amp and device.type == "cuda"
    ):
        logits = net(x)
    return logits, y, _soft_nll(logits, y, config.label_smoothing)


def _tally(totals: Tensor, logits: Tensor, y: Tensor, loss_sum: Tensor) -> None:
    """Add a batch's summed NLL, errors (against the largest soft target) and size to
    ``totals`` in place, on the device (no host sync)."""
    hard = y if y.dim() == 1 else y.argmax(1)
    totals[0] += loss_sum.detach()
    totals[1] += (logits.detach().argmax(1) != hard).sum()
    totals[2] += y.shape[0]


def _train_epoch(
    net: nn.Module,
    model: nn.Module,
    batches: Iterable[tuple[Tensor, Tensor]],
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    config: TrainConfig,
    device: torch.device,
    batch_transform: BatchTransform | None = None,
    bar: tqdm | None = None,
) -> Tensor:
    """One optimisation pass over ``batches``; (summed NLL, wrong, count) as a float64 tensor.

    The totals stay on ``device``: nothing in the loop waits for the GPU (checked under CUDA's
    sync debug mode in the tests), except the progress bar's update every 20 steps when shown.
    ``net`` is what runs forward (maybe DDP- or compile-wrapped), ``model`` whose gradients are
    clipped.
    """
    totals = torch.zeros(3, device=device, dtype=torch.float64)
    for step, (x, y) in enumerate(batches):
        logits, y, loss_sum = _objective(net, x, y, config, device, batch_transform)
        optimizer.zero_grad(set_to_none=True)
        (loss_sum / y.shape[0]).backward()
        if config.grad_clip is not None:
            nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        scheduler.step()
        _tally(totals, logits, y, loss_sum)
        if bar is not None and step % 20 == 0:
            bar.set_postfix(nll=f"{totals[0].item() / totals[2].item():.3f}")
    return totals


@torch.no_grad()
def augmented_pass(
    model: nn.Module,
    loader: DataLoader,
    config: TrainConfig,
    device: torch.device,
    batch_transform: BatchTransform | None = None,
) -> tuple[float, float]:
    """Train NLL and error (%) of the training objective at the current weights.

    One pass over the augmented training data — label smoothing and ``batch_transform``
    (mixup/CutMix) included, as in the official train NLL — in eval mode, with the augmentation
    seeded by ``(seed, epochs)``: a fixed function of the weights, measured at the same weights as
    the test NLL (a running mean over the last epoch mixes weights and lags behind them).
    """
    _reseed_epoch(loader, config, config.epochs)
    totals = torch.zeros(3, device=device, dtype=torch.float64)
    with eval_mode(model):
        for x, y in loader:
            _tally(totals, *_objective(model, x, y, config, device, batch_transform))
    if _rank_and_world()[1] > 1:
        dist.all_reduce(totals)
    nll, wrong, count = totals.tolist()
    return nll / count, 100.0 * wrong / count


def evaluate(model: nn.Module, loader: DataLoader, amp: bool = True) -> tuple[float, float]:
    """Mean NLL (nats) and error (%) of ``model`` over ``loader``, summed over DDP ranks
    (:func:`course_lib.analysis.evaluation.evaluate`, bfloat16 autocast on CUDA if ``amp``)."""
    reduce = dist.all_reduce if _rank_and_world()[1] > 1 else None
    metrics = evaluate_batches(model, loader, amp=amp, reduce=reduce)
    return metrics.nll, metrics.error


#: What a checkpoint written by :func:`fit` holds.
CHECKPOINT_FIELDS = ("model", "optimizer", "scheduler", "epoch", "history")
#: Settings a resumed run must share with the run it continues (``epochs`` may grow).
RESUME_FIXED = (
    "lr",
    "weight_decay",
    "optimizer",
    "warmup_epochs",
    "label_smoothing",
    "grad_clip",
    "seed",
)


def _restore(
    path: Path,
    device: torch.device,
    config: TrainConfig,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
) -> tuple[History, int]:
    """Load ``path`` into the model, optimiser and scheduler; raise a clear error if it does
    not belong to this model or recipe. Returns the history so far and the epochs done."""
    state = load_checkpoint(path, map_location=device)
    missing = [f for f in CHECKPOINT_FIELDS if f not in state]
    if missing:
        raise CheckpointError(
            f"{path} is not a training checkpoint of course_lib (it lacks {', '.join(missing)}); "
            "resume only from a folder `train --out` wrote, or start a new --out without --resume"
        )
    saved = state.get("train_config", {})
    changed = [
        f"{k}={saved[k]!r}, not {getattr(config, k)!r}"
        for k in RESUME_FIXED
        if k in saved and saved[k] != getattr(config, k)
    ]
    if changed:
        raise ValueError(
            f"{path} was trained with {'; '.join(changed)}: resume with the run's own settings "
            "(only --epochs may change), or start a new --out"
        )
    try:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
    except (RuntimeError, ValueError, KeyError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointError(
            f"{path} holds another model or class count than the one being trained ({first}); "
            "resume with the run's own --model and --data, or start a new --out"
        ) from err
    scheduler.load_state_dict(state["scheduler"])
    return History.from_dict(state["history"]), int(state["epoch"])


def fit(
    model: nn.Module,
    train_loader: DataLoader,
    test_loader: DataLoader | None,
    config: TrainConfig = TrainConfig(),
    *,
    out_dir: str | os.PathLike | None = None,
    resume: bool = False,
    batch_transform: BatchTransform | None = None,
    device: torch.device | str | None = None,
    meta: dict | None = None,
) -> History:
    """Train ``model`` in place and return its :class:`History`.

    ``batch_transform`` (e.g. mixup/CutMix) maps a training batch to (images, soft targets);
    train NLL/error are then measured on the transformed batches, as the paper measures train
    NLL on augmented data. ``meta`` (plain values, e.g. the model name and config) is stored in
    the checkpoint. Raises :class:`TrainingDiverged` if the loss becomes NaN/inf; the last
    checkpoint on disk is the last good epoch.
    """
    device = torch.device(device) if device is not None else default_device()
    rank, world = _rank_and_world()
    out = Path(out_dir) if out_dir is not None else None
    seed_everything(config.seed)
    model.to(device)
    if config.channels_last:
        model.to(memory_format=torch.channels_last)
    optimizer = _make_optimizer(model, config)
    steps_per_epoch = len(train_loader)
    if steps_per_epoch == 0:
        raise ValueError("the training loader is empty; check the dataset and batch size")
    total = config.epochs * steps_per_epoch
    warmup = int(config.warmup_epochs * steps_per_epoch)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: _lr_factor(step, total, warmup)
    )
    history, start_epoch = History(), 0
    ckpt_path = out / "checkpoint.pt" if out is not None else None
    if out is not None and rank == 0:
        ensure_writable(out)  # before the first epoch, not after it
        remove_stale_temporaries(out)
    if resume and ckpt_path is not None and ckpt_path.exists():
        history, start_epoch = _restore(ckpt_path, device, config, model, optimizer, scheduler)
        if rank == 0:  # the checkpoint is the truth; a kill may have left history.json behind
            atomic_write_json(out / "history.json", history.to_dict())
    net: nn.Module = model
    if world > 1:
        ids = [device.index] if device.type == "cuda" else None
        net = nn.parallel.DistributedDataParallel(model, device_ids=ids)
    if config.compile:
        net = torch.compile(net, mode=None if config.compile is True else config.compile)
    show = _show_progress(config, rank)

    for epoch in range(start_epoch, config.epochs):
        _reseed_epoch(train_loader, config, epoch)
        net.train()
        started = time.perf_counter()
        bar = tqdm(train_loader, desc=f"epoch {epoch + 1}/{config.epochs}", disable=not show,
                   leave=False)  # fmt: skip
        totals = _train_epoch(
            net, model, bar, optimizer, scheduler, config, device, batch_transform,
            bar if show else None,
        )  # fmt: skip
        if world > 1:
            dist.all_reduce(totals)
        train_nll, wrong, count = totals.tolist()
        if not math.isfinite(train_nll):
            raise TrainingDiverged(
                f"the training loss became {train_nll} in epoch {epoch + 1}: lower the learning "
                f"rate (now {config.lr}), keep gradient clipping on, or check the data for NaN/inf."
                + (
                    f" The last good checkpoint, {ckpt_path}, is kept."
                    if ckpt_path is not None and ckpt_path.exists()
                    else " No checkpoint was written yet."
                )
            )
        tested = test_loader is not None and (
            (epoch + 1) % config.eval_every == 0 or epoch + 1 == config.epochs
        )
        test_nll, test_error = (
            evaluate(model, test_loader, config.amp) if tested else (math.nan,) * 2
        )
        history.append(
            epoch=epoch + 1,
            train_nll=train_nll / count,
            train_error=100.0 * wrong / count,
            test_nll=test_nll,
            test_error=test_error,
            lr=optimizer.param_groups[0]["lr"],
            seconds=time.perf_counter() - started,
        )
        if epoch + 1 == config.epochs:
            history.final_train_nll, history.final_train_error = augmented_pass(
                model, train_loader, config, device, batch_transform
            )
        if show:
            tqdm.write(
                f"epoch {epoch + 1}: train nll {history.train_nll[-1]:.3f} "
                f"err {history.train_error[-1]:.1f}% | "
                f"test nll {test_nll:.3f} err {test_error:.1f}%"
            )
        if out is not None and rank == 0:
            save_checkpoint(
                ckpt_path,
                {
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "epoch": epoch + 1,
                    "history": history.to_dict(),
                    "train_config": dataclasses.asdict(config),
                    "meta": meta or {},
                },
            )
            atomic_write_json(out / "history.json", history.to_dict())
    return history
