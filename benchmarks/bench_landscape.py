"""Cost of one loss-landscape grid point vs. a plain eval forward pass over the same data.

A grid point of :func:`course_lib.analysis.landscape.loss_surface_2d` is one forward pass over the
data plus moving the weights in place and computing loss and accuracy; the plain
``model.eval()`` forward pass is the floor. Target: at most 1.2x the floor.

    python benchmarks/bench_landscape.py [--batches 3] [--batch-size 64] [--grid 3] [--repeats 3]
"""

from __future__ import annotations

import argparse
import time

import torch
import torchvision
from torch import nn

from course_lib.analysis.landscape import filter_normalized_direction_pair, loss_surface_2d


def _models() -> dict[str, nn.Module]:
    models = {"torchvision resnet18": torchvision.models.resnet18(num_classes=10)}
    try:
        from course_lib.models import create_model

        models["course resnet_tiny"] = create_model("resnet_tiny", num_classes=10, image_size=32)
    except (ImportError, ValueError) as error:
        print(f"(course resnet_tiny skipped: {error})")
    return models


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _forward_passes(model: nn.Module, batches, passes: int) -> float:
    """Seconds per plain eval forward pass over all batches, over ``passes`` passes."""
    device = batches[0][0].device
    _sync(device)
    start = time.perf_counter()
    with torch.no_grad():
        for _ in range(passes):
            for inputs, _ in batches:
                model(inputs)
    _sync(device)
    return (time.perf_counter() - start) / passes


def _surface_per_point(model: nn.Module, batches, directions, grid: int) -> float:
    """Seconds per grid point of a ``grid`` x ``grid`` surface over all batches."""
    coords = torch.linspace(-1, 1, grid).tolist()
    _sync(batches[0][0].device)
    start = time.perf_counter()
    loss_surface_2d(model, nn.CrossEntropyLoss(), batches, directions, coords, coords)
    return (time.perf_counter() - start) / grid**2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--grid", type=int, default=3, help="grid points per axis")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()

    device = torch.device(args.device)
    g = torch.Generator().manual_seed(0)
    batches = [
        (
            torch.randn(args.batch_size, 3, 32, 32, generator=g).to(device),
            torch.randint(10, (args.batch_size,), generator=g).to(device),
        )
        for _ in range(args.batches)
    ]
    print(
        f"device={device} threads={torch.get_num_threads()} batches={args.batches}x"
        f"{args.batch_size} (32x32) grid={args.grid}x{args.grid} repeats={args.repeats} "
        f"(fastest repeat)"
    )
    print(f"{'model':<22} {'plain forward':>14} {'surface/point':>14} {'ratio':>7}")
    for name, model in _models().items():
        model.to(device).eval()
        directions = filter_normalized_direction_pair(
            model, generator=torch.Generator().manual_seed(0)
        )
        _forward_passes(model, batches, 1)  # warm-up
        # Alternate the two measurements (the same number of forward passes each) and keep the
        # fastest repeat of each: on shared CPU cores the minimum is the least disturbed run.
        floor_s = point_s = float("inf")
        for _ in range(args.repeats):
            floor_s = min(floor_s, _forward_passes(model, batches, args.grid**2))
            point_s = min(point_s, _surface_per_point(model, batches, directions, args.grid))
        print(
            f"{name:<22} {floor_s * 1e3:>11.1f} ms {point_s * 1e3:>11.1f} ms "
            f"{point_s / floor_s:>6.2f}x"
        )


if __name__ == "__main__":
    main()
