"""Trainer overhead: seconds per epoch of ``course_lib.train.fit`` over a bare hand-written loop.

Both train the same model (same initial weights) on the same in-memory synthetic data with the
same optimiser, batch size and gradient clipping, alternating, and the fastest repeat of each is
kept, so the ratio is the cost of the trainer's bookkeeping (metrics kept on the device, the LR
schedule, epoch seeding). Target: ratio <= 1.10. Run:
``.venv/bin/python benchmarks/bench_train.py [--model resnet_tiny] [--grad-clip 1.0]``.
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from course_lib.data import make_synthetic
from course_lib.models import create_model
from course_lib.train import TrainConfig, fit


def bare_epoch(
    model: torch.nn.Module, loader: DataLoader, lr: float, grad_clip: float | None
) -> float:
    """The floor: forward, loss, backward, (clipping), AdamW step; nothing else."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    model.train()
    started = time.perf_counter()
    for x, y in loader:
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        optimizer.step()
    return time.perf_counter() - started


def trainer_epoch(
    model: torch.nn.Module, loader: DataLoader, lr: float, grad_clip: float | None
) -> float:
    config = TrainConfig(epochs=1, lr=lr, warmup_epochs=0.0, grad_clip=grad_clip, progress=False)
    started = time.perf_counter()
    fit(model, loader, None, config, device="cpu")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="resnet_tiny")
    parser.add_argument("--images", type=int, default=2048)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--grad-clip", type=float, default=None, help="on both sides (fit: 1.0)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = make_synthetic(args.images)
    loader = DataLoader(data, batch_size=args.batch_size, shuffle=True,
                        generator=torch.Generator().manual_seed(0))  # fmt: skip
    torch.manual_seed(0)
    initial = create_model(args.model).state_dict()
    times = {"bare loop": [], "course_lib fit": []}
    for _ in range(args.repeats):
        for label, run in (("bare loop", bare_epoch), ("course_lib fit", trainer_epoch)):
            model = create_model(args.model)
            model.load_state_dict(initial)
            times[label].append(run(model, loader, 1e-3, args.grad_clip))
    bare, ours = min(times["bare loop"]), min(times["course_lib fit"])
    print(f"model={args.model} images={args.images} batch={args.batch_size} "
          f"threads={args.threads} repeats={args.repeats} grad_clip={args.grad_clip} "
          "(fastest repeat)")  # fmt: skip
    print(f"{'bare loop':<16} {bare:8.2f} s/epoch")
    print(f"{'course_lib fit':<16} {ours:8.2f} s/epoch")
    print(f"ratio {ours / bare:.2f}x (target <= 1.10)")


if __name__ == "__main__":
    main()
