"""``analyse()`` and the ``python -m course_lib analyse`` subcommand: one model, one report."""

from __future__ import annotations

import argparse
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from course_lib.analyse.run import SIZES, Sizes, run_diagnostics, sizes_for


def load_batches(data: str, sizes: Sizes, image_size: int) -> tuple[list, int]:
    """The first ``sizes.n_batches`` test batches of ``data`` and its number of classes."""
    from course_lib.data import get_dataset

    n = sizes.batch_size * sizes.n_batches
    dataset, info = get_dataset(data, train=False, n=n, image_size=image_size)
    loader = DataLoader(dataset, batch_size=sizes.batch_size, shuffle=False)
    batches = []
    for images, labels in loader:
        if len(batches) == sizes.n_batches:
            break
        if len(labels) == sizes.batch_size:
            batches.append((images, labels))
    if len(batches) < sizes.n_batches:
        raise ValueError(
            f"{data} has {len(dataset)} test images, fewer than the {n} the profile needs; "
            "use a smaller profile or more images"
        )
    return batches, info.num_classes


def analyse(
    model: str,
    *,
    out: str | os.PathLike,
    data: str = "synthetic",
    weights: str | os.PathLike | None = None,
    pretrained: bool = False,
    image_size: int | None = None,
    profile: str | None = None,
    seed: int = 0,
    model_kwargs: dict[str, Any] | None = None,
    progress: bool = True,
    refresh: bool = False,
) -> dict[str, Any]:
    """Run every diagnostic on ``model`` and write ``out/report.html``, ``results.json``, PNGs.

    ``model``: ``timm:NAME``, ``torchvision:NAME`` or a course model (see
    :func:`course_lib.analyse.models.load_model`, which also explains ``weights``,
    ``pretrained`` and ``model_kwargs``); without weights the model is randomly initialised
    from ``seed``. ``data``: ``synthetic``, ``cifar10``, ``cifar100`` or ``folder:PATH`` (test
    split). ``profile`` (default: ``$COURSE_PROFILE``) sets the sizes
    (:data:`course_lib.analyse.run.SIZES`), ``image_size`` overrides its image side. The results
    are cached (:func:`course_lib.cache.cached_result`) under a key of all these arguments and the
    weights file's hash; ``refresh=True`` recomputes. Returns the results (as in ``results.json``).
    """
    from course_lib.analyse.models import load_model
    from course_lib.analyse.report import write_report
    from course_lib.cache import cached_result
    from course_lib.config import get_profile

    profile_name = get_profile(profile).name if profile is None else profile
    sizes = sizes_for(profile_name)
    size = image_size or sizes.image_size
    kwargs = dict(model_kwargs or {})
    key = {
        "model": model,
        "weights": _file_hash(weights) if weights is not None else None,
        "pretrained": pretrained,
        "data": data,
        "image_size": size,
        "profile": profile_name,
        "seed": seed,
        "model_kwargs": json.dumps(kwargs, sort_keys=True, default=str),
    }

    def compute() -> dict[str, Any]:
        batches, num_classes = load_batches(data, sizes, size)
        torch.manual_seed(seed)
        net = load_model(
            model,
            num_classes=num_classes,
            image_size=size,
            weights=weights,
            pretrained=pretrained,
            **kwargs,
        )
        results = run_diagnostics(net, batches, sizes, progress=progress)
        parameters = sum(p.numel() for p in net.parameters())
        return {**key, "num_classes": num_classes, "parameters": parameters, **results}

    results = cached_result("analyse", key, compute, refresh=refresh)
    write_report(results, out, f"Diagnostics of {model}")
    return results


def _file_hash(path: str | os.PathLike) -> str:
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"no weights file at {path}; check the path given to --weights")
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def add_subcommand(sub: argparse._SubParsersAction) -> None:
    """Register ``analyse`` on the subparsers of ``python -m course_lib``."""
    p = sub.add_parser(
        "analyse",
        help="the paper's diagnostics for any model (timm, torchvision, ours): report.html",
        description="Hessian spectrum, loss surfaces, Fourier Δ log amplitude, feature-map "
        "variance and band-limited noise robustness of one model, as one HTML report.",
    )
    p.add_argument(
        "--model", required=True, help="timm:NAME, torchvision:NAME or a course model name"
    )
    p.add_argument("--weights", default=None, help="local checkpoint (loaded weights_only)")
    p.add_argument("--pretrained", action="store_true", help="the library's pretrained weights")
    p.add_argument("--data", default="synthetic", help="synthetic, cifar10, cifar100, folder:PATH")
    p.add_argument("--out", required=True, help="output folder for report.html and results")
    p.add_argument("--image-size", type=int, default=None)
    p.add_argument("--profile", default=None, choices=sorted(SIZES), help="sizes of the analyses")
    p.add_argument("--seed", type=int, default=0, help="seed of a randomly initialised model")
    p.add_argument("--refresh", action="store_true", help="recompute instead of using the cache")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_analyse)


def _cmd_analyse(args: argparse.Namespace) -> None:
    analyse(
        args.model,
        out=args.out,
        data=args.data,
        weights=args.weights,
        pretrained=args.pretrained,
        image_size=args.image_size,
        profile=args.profile,
        seed=args.seed,
        progress=not args.quiet,
        refresh=args.refresh,
    )
    print(f"report: {Path(args.out) / 'report.html'}")
