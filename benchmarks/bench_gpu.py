"""GPU figures for the ``gpu`` profile: what each part costs, and what a full pre-compute takes.

Run on a CUDA machine from the repository root: ``python benchmarks/bench_gpu.py``.
CIFAR-100 itself is not needed: the data-pipeline figure uses random images written in CIFAR's
file format (``tests/fake_cifar.py``); every other figure uses tensors already on the GPU.

1. Training images/s through ``course_lib.train.fit`` for each of the profile's models at 32×32,
   batch 128, with mixup/CutMix: fp32, bf16 autocast, + channels_last, + ``torch.compile``
   (compile time reported apart), and peak GPU memory; evaluation images/s.
2. The CIFAR-100 input pipeline (decode, RandAugment, normalise) in images/s for 4 and 8 workers.
3. Seconds per Hessian solve (``top_eigenvalues``, k and ``max_iter`` of the profile, batch 16)
   and per loss-surface grid point (``landscape_batches`` batches of 128).
4. The projected pre-compute time per chapter, from these rates and the profile's counts.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import BatchSampler, DataLoader, Dataset, RandomSampler

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests.fake_cifar

from course_lib.analysis.hessian import top_eigenvalues  # noqa: E402
from course_lib.analysis.landscape import (  # noqa: E402
    filter_normalized_direction_pair,
    loss_surface_2d,
)
from course_lib.chapters.ch03_frequency import NOISE_FAMILIES  # noqa: E402
from course_lib.config import Profile, get_profile  # noqa: E402
from course_lib.data import make_loaders, mix_transform  # noqa: E402
from course_lib.models import create_model  # noqa: E402
from course_lib.train import TrainConfig, evaluate, fit  # noqa: E402
from tests.fake_cifar import write_cifar  # noqa: E402

SETTINGS = {  # label -> (bf16 autocast, channels_last, torch.compile)
    "fp32": (False, False, False),
    "bf16": (True, False, False),
    "bf16+NHWC": (True, True, False),
    "bf16+NHWC+compile": (True, True, True),
}
CIFAR_TRAIN, CIFAR_TEST = 50_000, 10_000


class GpuBatches(Dataset):
    """Whole batches sliced from tensors already on the GPU: the trainer's cost alone."""

    def __init__(self, n: int, num_classes: int, image_size: int, device: torch.device):
        self.x = torch.randn(n, 3, image_size, image_size, device=device)
        self.y = torch.randint(num_classes, (n,), device=device)

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, index: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        index_t = torch.as_tensor(index, device=self.y.device)
        return self.x[index_t], self.y[index_t]


def gpu_loader(data: GpuBatches, batch_size: int, n_batches: int) -> DataLoader:
    sampler = BatchSampler(
        RandomSampler(data, num_samples=batch_size * n_batches), batch_size, drop_last=True
    )
    return DataLoader(data, sampler=sampler, batch_size=None)


def synced_seconds(device: torch.device, fn: Callable[..., Any], /, *args: Any, **kw: Any) -> float:
    """Wall-clock seconds of ``fn(*args, **kwargs)``, the GPU's queue drained before and after."""
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    fn(*args, **kw)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


@contextlib.contextmanager
def section(title: str) -> Iterator[None]:
    """Print a heading; report a failure and go on, so one broken part costs no other figure."""
    print(f"\n## {title}", flush=True)
    try:
        yield
    except Exception as error:  # noqa: BLE001 - a benchmark reports and continues
        print(f"FAILED: {type(error).__name__}: {error}", flush=True)


def training_rates(
    profile: Profile, device: torch.device, steps: int, batch: int, compile_mode: str | None
) -> dict[str, dict[str, float]]:
    """Per model: images/s for each setting, compile seconds, peak GiB, eval images/s."""
    rates: dict[str, dict[str, float]] = {}
    mix = mix_transform(100)
    header = "".join(f"{label:>20s}" for label in SETTINGS)
    print(f"torch.compile mode: {compile_mode or 'default'}")
    print(f"{'model':14s}{header}{'compile s':>11s}{'peak GiB':>10s}{'eval img/s':>12s}")
    for family, name in profile.models.items():
        row: dict[str, float] = {}
        data = GpuBatches(batch * steps, 100, profile.image_size, device)
        for label, (amp, nhwc, compiled) in SETTINGS.items():
            torch.manual_seed(0)
            model = create_model(name, num_classes=100, image_size=profile.image_size)
            config = TrainConfig(epochs=1, warmup_epochs=0.0, amp=amp, channels_last=nhwc,
                                 compile=compiled and (compile_mode or True),
                                 progress=False)  # fmt: skip
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats()
            run = dict(device=device, batch_transform=mix)
            warm = synced_seconds(device, fit, model, gpu_loader(data, batch, 3), None, config,
                                  **run)  # fmt: skip
            seconds = synced_seconds(device, fit, model, gpu_loader(data, batch, steps), None,
                                     config, **run)  # fmt: skip
            row[label] = batch * steps / seconds
            if compiled:
                row["compile s"] = warm - 3 * seconds / steps
            if device.type == "cuda":
                row["peak GiB"] = max(row.get("peak GiB", 0.0),
                                      torch.cuda.max_memory_allocated() / 2**30)  # fmt: skip
        eval_loader = gpu_loader(data, 256, max(steps // 2, 2))
        evaluate(model, eval_loader)
        row["eval"] = (
            256 * max(steps // 2, 2) / synced_seconds(device, evaluate, model, eval_loader, device)
        )
        rates[family] = row
        cells = "".join(f"{row[label]:20.0f}" for label in SETTINGS)
        peak = row.get("peak GiB", float("nan"))
        print(f"{name:14s}{cells}{row.get('compile s', 0):11.1f}{peak:10.2f}{row['eval']:12.0f}",
              flush=True)  # fmt: skip
    return rates


def pipeline_rates(profile: Profile, device: torch.device, n_batches: int) -> dict[int, float]:
    """Images/s of the augmented CIFAR-100 train loader (random pixels in CIFAR's format)."""
    rates = {}
    with tempfile.TemporaryDirectory() as root:
        write_cifar(Path(root), "cifar100", per_split=CIFAR_TRAIN)
        for workers in (4, 8):
            train, _, _ = make_loaders(
                "cifar100", batch_size=profile.train.batch_size, root=root, verify=False,
                augment=profile.train.augment, num_workers=workers, device=device,
            )  # fmt: skip
            batches = iter(train)
            next(batches)  # workers started
            start = time.perf_counter()
            for _ in range(n_batches):
                x, _ = next(batches)
                x.to(device, non_blocking=True)
            rates[workers] = n_batches * profile.train.batch_size / (time.perf_counter() - start)
            print(f"{workers} workers: {rates[workers]:8.0f} images/s", flush=True)
            del batches, train
    return rates


def analysis_costs(profile: Profile, device: torch.device, solves: int) -> dict[str, dict]:
    """Per Hessian family: seconds per top-k solve (LA and SA) and per surface grid point."""
    costs: dict[str, dict] = {}
    for family in ("resnet", "vit"):
        name = profile.models[family]
        torch.manual_seed(0)
        model = create_model(name, num_classes=100, image_size=profile.image_size).to(device)
        data = GpuBatches(max(profile.hessian.batch_size * solves, 128 * profile.landscape.batches),
                          100, profile.image_size, device)  # fmt: skip
        entry: dict[str, float] = {}
        for which in ("LA", "SA"):
            times, products = [], []
            for i in range(solves):
                lo = i * profile.hessian.batch_size
                batch = (data.x[lo : lo + profile.hessian.batch_size],
                         data.y[lo : lo + profile.hessian.batch_size])  # fmt: skip
                start = time.perf_counter()
                result = top_eigenvalues(
                    model, F.cross_entropy, batch, k=profile.hessian.k, which=which,
                    max_iter=profile.hessian.max_iter,
                )  # fmt: skip
                times.append(time.perf_counter() - start)  # the result is on the CPU: synced
                products.append(result.n_hvp)
            entry[which] = float(np.median(times))
            entry[f"{which} products"] = float(np.median(products))
        batches = [(data.x[i * 128 : (i + 1) * 128], data.y[i * 128 : (i + 1) * 128])
                   for i in range(profile.landscape.batches)]  # fmt: skip
        directions = filter_normalized_direction_pair(
            model, generator=torch.Generator().manual_seed(0)
        )
        coords = np.linspace(-1, 1, 3)
        seconds = synced_seconds(
            device, loss_surface_2d, model, F.cross_entropy, batches, directions, coords, coords
        )
        entry["surface point"] = seconds / coords.size**2
        costs[family] = entry
        print(f"{name:14s} top-{profile.hessian.k} LA {entry['LA']:6.2f} s "
              f"({entry['LA products']:.0f} products), SA {entry['SA']:6.2f} s "
              f"({entry['SA products']:.0f}); surface point {entry['surface point']:.3f} s",
              flush=True)  # fmt: skip
    return costs


def projection(profile: Profile, rates: dict, pipeline: dict, costs: dict) -> None:
    """Minutes per chapter's pre-compute, from the measured rates and the profile's counts."""
    feed = max(pipeline.values()) if pipeline else float("inf")
    best = {f: min(max(r[s] for s in SETTINGS), feed) for f, r in rates.items()}
    epochs = profile.train.epochs
    run_min = {f: epochs * CIFAR_TRAIN / rate / 60 for f, rate in best.items()}
    # ch01: the three C1 families at every seed, and the ViT on each smaller data fraction
    # (equal steps: each costs a full run).
    seeds = len(profile.seeds)
    small = sum(f < 1.0 for f in profile.data_fractions)
    ch01 = (
        seeds * (run_min["resnet"] + run_min["local_vit"] + run_min["vit"]) + small * run_min["vit"]
    )
    # ch02: LA and SA on every batch for 2 trained models + the small-data ViT, LA for 2 inits;
    # a surface of n² points and two curves of 2n - 1 points for each trained model.
    n = profile.landscape.points
    solves = {f: profile.hessian.batches * (c["LA"] + c["SA"]) for f, c in costs.items()}
    ch02 = (
        solves["resnet"]
        + 2 * solves["vit"]
        + profile.hessian.batches * sum(c["LA"] for c in costs.values())
        + sum(c["surface point"] * (n * n + 2 * (2 * n - 1)) for c in costs.values())
    ) / 60
    # ch03: every noise band x strength over the test set for the chapter's noise families, and
    # every band at the verdict's strength for their other seeds (ch03.seed_noise; the models of
    # those seeds are chapter 01's, as the gpu profile gives chapter 03 no data of its own).
    bands = len(profile.frequency.noise_centers)
    noise_images = (len(profile.frequency.noise_magnitudes) + seeds - 1) * bands * CIFAR_TEST
    ch03 = sum(noise_images / rates[f]["eval"] for f in NOISE_FAMILIES) / 60
    # ch04: AlterNet at every seed plus each build-up step after the plain ResNet (a
    # ResNet-sized run each).
    ch04 = seeds * run_min["alternet"] + (len(profile.alternet_buildup) - 1) * run_min["resnet"]
    print(f"one {epochs}-epoch CIFAR-100 run, at the best measured rate (input pipeline capped "
          f"at {feed:.0f} images/s):")  # fmt: skip
    for family, minutes in run_min.items():
        print(f"  {profile.models[family]:14s} {minutes:7.1f} min ({best[family]:.0f} images/s)")
    for chapter, minutes in (("01", ch01), ("02", ch02), ("03", ch03), ("04", ch04)):
        print(f"chapter {chapter}: {minutes:7.1f} min")
    print(f"all chapters: {(ch01 + ch02 + ch03 + ch04) / 60:.1f} h")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="gpu")
    parser.add_argument("--steps", type=int, default=30, help="timed training steps per setting")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--solves", type=int, default=2, help="Hessian solves per model and end")
    parser.add_argument("--loader-batches", type=int, default=60)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--compile-mode", help="torch.compile mode, e.g. reduce-overhead")
    parser.add_argument("--only", help="run only this section: pipeline, analysis or training")
    args = parser.parse_args()
    profile, device = get_profile(args.profile), torch.device(args.device)
    name = torch.cuda.get_device_name() if device.type == "cuda" else "CPU"
    print(f"{name}, torch {torch.__version__}, profile {profile.name}", flush=True)
    rates: dict = {}
    pipeline: dict = {}
    costs: dict = {}
    wanted = {args.only} if args.only else {"pipeline", "analysis", "training"}
    if "pipeline" in wanted:
        with section("CIFAR-100 input pipeline"):
            pipeline = pipeline_rates(profile, device, args.loader_batches)
    if "analysis" in wanted:
        with section("Hessian solves and loss-surface points"):
            costs = analysis_costs(profile, device, args.solves)
    if "training" in wanted:
        with section(f"Training images/s (batch {args.batch}, mixup/CutMix, via fit)"):
            rates = training_rates(profile, device, args.steps, args.batch, args.compile_mode)
    if wanted != {"pipeline", "analysis", "training"}:
        return
    with section("Projected pre-compute (python -m course_lib precompute --profile gpu)"):
        projection(profile, rates, pipeline, costs)


if __name__ == "__main__":
    main()
