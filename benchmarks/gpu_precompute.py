"""Time ``precompute --profile gpu`` end to end, chapter by chapter, on CIFAR-format files.

Run on a CUDA machine from the repository root: ``python benchmarks/gpu_precompute.py``.
The real CIFAR-100 is not needed (nor reachable offline): random images are written in its file
format (``tests/fake_cifar.py``) and their checksums are not verified. To fit a few minutes the
profile's epochs and Hessian batches are cut (``--epochs``, ``--hessian-batches``, ``--images``);
everything else — models, compile mode, channels_last, sizes of the analyses — is the ``gpu``
profile's. Prints the seconds of every precompute step and the sum per chapter.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from course_lib.chapters import precompute_steps  # noqa: E402
from course_lib.config import get_profile  # noqa: E402
from course_lib.data import datasets  # noqa: E402
from tests.fake_cifar import write_cifar  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=5_000, help="images per CIFAR split")
    parser.add_argument("--epochs", type=int, default=1, help="training epochs (profile: 100)")
    parser.add_argument("--hessian-batches", type=int, default=8, help="profile: 128")
    parser.add_argument("--only", default="", help="a prefix of step names, e.g. ch02")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="fake-cifar-"))
    write_cifar(root, "cifar100", per_split=args.images)
    os.environ["COURSE_DATA"] = str(root)
    os.environ.setdefault("COURSE_CACHE", tempfile.mkdtemp(prefix="gpu-cache-"))
    # the fake files' MD5 sums are not CIFAR's: load them unverified, as the tests do
    spec = datasets._CIFAR["cifar100"]
    datasets._CIFAR["cifar100"] = dataclasses.replace(spec, verified=spec.unverified)

    gpu = get_profile("gpu")
    profile = dataclasses.replace(
        gpu,
        train=dataclasses.replace(gpu.train, epochs=args.epochs),
        hessian=dataclasses.replace(gpu.hessian, batches=args.hessian_batches),
    )
    print(
        f"gpu profile, {args.images} fake CIFAR-100 images per split, {args.epochs} epoch(s), "
        f"{args.hessian_batches} Hessian batches",
        flush=True,
    )
    per_chapter: dict[str, float] = defaultdict(float)
    for name, step in precompute_steps().items():
        if not name.startswith(args.only):
            continue
        started = time.perf_counter()
        step(profile)
        seconds = time.perf_counter() - started
        per_chapter[name.split(".")[0]] += seconds
        print(f"{name:<45} {seconds:8.1f} s", flush=True)
    for chapter, seconds in per_chapter.items():
        print(f"{chapter:<45} {seconds:8.1f} s in total", flush=True)


if __name__ == "__main__":
    main()
