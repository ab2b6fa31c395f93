"""Cost of the one-pass feature-map collection and analyses, relative to a plain forward pass.

Run: ``python benchmarks/bench_fourier.py`` (seconds on 2 CPU cores). For each model, on one
batch, eval mode, no grad, median of interleaved runs:

- ``forward``: ``model(x)``, the floor;
- ``collect``: :func:`collect_feature_maps` (hooks + a copy of every block output);
- ``collect+analyses``: the same plus the Fourier and variance profiles from the shared maps,
  which is what the frequency chapter computes per model.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
import torchvision
from torch import nn

from course_lib.analysis.features import collect_feature_maps
from course_lib.analysis.fourier import FourierProfile
from course_lib.analysis.variance import VarianceProfile


def median_seconds(fns: list[Callable[[], object]], repeats: int) -> list[float]:
    """Median time of each function; runs are interleaved so that load from other processes
    affects all of them alike."""
    for fn in fns:
        fn()  # warm-up
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for fn, record in zip(fns, times, strict=True):
            start = time.perf_counter()
            fn()
            record.append(time.perf_counter() - start)
    return [statistics.median(record) for record in times]


def models(image_size: int) -> dict[str, nn.Module]:
    found = {"torchvision resnet18": torchvision.models.resnet18(num_classes=10)}
    try:
        from course_lib.models import create_model
    except ImportError:
        return found
    for name in ("resnet_mini", "vit_mini", "alternet_mini"):
        found[name] = create_model(name, image_size=image_size)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    x = torch.randn(args.batch, 3, args.image_size, args.image_size)
    print(f"batch {args.batch}, {args.image_size}x{args.image_size}, {args.threads} threads")
    print(f"{'model':<22}{'forward':>10}{'collect':>10}{'+analyses':>11}{'ratio':>8}")
    for name, model in models(args.image_size).items():
        model.eval()
        prefix = getattr(model, "num_prefix_tokens", None)

        def forward(model: nn.Module = model) -> None:
            with torch.no_grad():
                model(x)

        def collect(model: nn.Module = model) -> None:
            collect_feature_maps(model, x)

        def analyses(model: nn.Module = model, prefix: int | None = prefix) -> None:
            maps = collect_feature_maps(model, x)
            FourierProfile.from_feature_maps(maps, prefix)
            VarianceProfile.from_feature_maps(maps, prefix)

        t_forward, t_collect, t_all = median_seconds([forward, collect, analyses], args.repeats)
        print(
            f"{name:<22}{1e3 * t_forward:>8.1f}ms{1e3 * t_collect:>8.1f}ms"
            f"{1e3 * t_all:>9.1f}ms{t_all / t_forward:>7.2f}x"
        )


if __name__ == "__main__":
    main()
