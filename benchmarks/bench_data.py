"""How fast the embedded data is made and loaded.

Run: ``python benchmarks/bench_data.py`` (under a minute on 2 CPU cores). Reports

- generation: synthetic images per second (``make_synthetic``) at 32×32 and 64×64, best of a
  few runs, and how that splits into background, low cue and high cue;
- loading: images per second through one epoch of ``make_loaders("synthetic", …)`` (batch 128,
  main process) for each augmentation;
- seeding: the per-image reseeding of the augmentation (``TransformedDataset``) with
  ``torch.manual_seed``, which also seeds every accelerator lazily and records a stack trace
  each time on a CUDA build, against the CPU generator alone, side by side.

Per-image transforms on 32×32 tensors are tiny ops: when other processes load the CPU, torch's
intra-op threads wait on each other and ``strong`` can get 10× slower; ``--threads 1`` shows the
cost without that.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch

from course_lib.data import SyntheticConfig, make_loaders, make_synthetic
from course_lib.data.synthetic import _class_layouts, _pink_noise, _render_blobs, _render_plaid


def best_seconds(fn: Callable[[], object], repeats: int) -> float:
    """Fastest of ``repeats`` runs (the least disturbed by other processes)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def generation(n: int, image_size: int, repeats: int) -> None:
    config = SyntheticConfig(image_size=image_size)
    total = best_seconds(lambda: make_synthetic(n, config=config), repeats)
    layouts, labels = _class_layouts(config), torch.arange(n) % config.num_classes
    gen = torch.Generator().manual_seed(0)
    parts = {
        "background": lambda: _pink_noise(n, image_size, 1.0, 0.8, 0.15, gen),
        "low cue": lambda: _render_blobs(
            layouts.centers[labels], layouts.widths[labels], layouts.colors[labels], image_size
        ),
        "high cue": lambda: _render_plaid(
            layouts.angles[labels],
            layouts.frequencies[labels],
            torch.zeros(n),
            torch.zeros(n, 2),
            torch.ones(n),
            image_size,
        ),
    }
    shares = ", ".join(f"{k} {best_seconds(f, repeats):.2f} s" for k, f in parts.items())
    print(
        f"{n} images {image_size}x{image_size}: {total:.2f} s = {n / total:,.0f} img/s ({shares})"
    )


def loading(n: int, batch_size: int) -> None:
    for augment in ("none", "crop", "basic", "strong"):
        train, _, _ = make_loaders(
            "synthetic", batch_size=batch_size, n_train=n, n_test=100, augment=augment
        )
        start = time.perf_counter()
        for _images, _labels in train:
            pass
        seconds = time.perf_counter() - start
        print(
            f"  {'augment=' + augment:<22} {n / seconds:>10,.0f} img/s (one epoch {seconds:.2f} s)"
        )


def seeding(n: int, repeats: int) -> None:
    def reseed(seed_fn: Callable[[int], object]) -> None:
        for i in range(n):
            with torch.random.fork_rng(devices=[]):
                seed_fn(i)

    everywhere = best_seconds(lambda: reseed(torch.manual_seed), repeats)
    cpu_only = best_seconds(lambda: reseed(torch.default_generator.manual_seed), repeats)
    print(
        f"  torch.manual_seed {1e6 * everywhere / n:.0f} µs/image, CPU generator "
        f"{1e6 * cpu_only / n:.0f} µs/image: {everywhere / cpu_only:.1f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000, help="images to generate")
    parser.add_argument("--n-load", type=int, default=5_000, help="images per loader epoch")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print("Generation (best of repeats):")
    generation(args.n, 32, args.repeats)
    generation(args.n // 4, 64, args.repeats)
    print(f"Loading one epoch of {args.n_load} synthetic 32x32 images, batch 128:")
    loading(args.n_load, 128)
    print(f"Reseeding the augmentation of {args.n_load} images (fork_rng + seed per image):")
    seeding(args.n_load, args.repeats)


if __name__ == "__main__":
    main()
