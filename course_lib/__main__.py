"""Command line: ``python -m course_lib {models,train,precompute,check}`` (also under torchrun).

Examples::

    python -m course_lib models
    python -m course_lib train --model vit_tiny --data synthetic --profile laptop --out runs/x
    python -m course_lib train ... --resume          # continue an interrupted run exactly
    torchrun --nproc_per_node=4 -m course_lib train --model vit_ti --data cifar100 --out runs/y
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import sys

import torch
import torch.distributed as dist

from course_lib import __version__
from course_lib.config import PROFILES, get_profile
from course_lib.io import CheckpointError
from course_lib.models import create_model, list_models, model_family
from course_lib.train import TrainConfig, TrainingDiverged, default_device, fit


def _cmd_models(args: argparse.Namespace) -> None:
    print(f"{'model':<16} {'family':<10} {'parameters':>12}")
    for name in list_models(args.pattern):
        n = sum(p.numel() for p in create_model(name).parameters())
        print(f"{name:<16} {model_family(name):<10} {n:>12,}")


def _init_distributed() -> torch.device:
    """Join the process group when started by torchrun; return this process's device."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend)
        if torch.cuda.is_available():
            local = int(os.environ.get("LOCAL_RANK", "0"))
            torch.cuda.set_device(local)
            return torch.device("cuda", local)
    return default_device()


def train_config(args: argparse.Namespace) -> TrainConfig:
    """The profile's training settings, with the options given on the command line on top."""
    from course_lib.experiments import train_config_for

    config = train_config_for(get_profile(args.profile), seed=args.seed)
    given = {
        "epochs": args.epochs,
        "lr": args.lr,
        "compile": args.compile,
        "channels_last": args.channels_last,
        "progress": False if args.quiet else None,
    }
    return dataclasses.replace(config, **{k: v for k, v in given.items() if v is not None})


def _cmd_train(args: argparse.Namespace) -> None:
    from course_lib.data import make_loaders, mix_transform

    profile = get_profile(args.profile)
    device = torch.device(args.device) if args.device else _init_distributed()
    t = profile.train
    config = train_config(args)
    train_loader, test_loader, info = make_loaders(
        args.data or profile.data,
        batch_size=args.batch_size or t.batch_size,
        fraction=args.fraction,
        seed=args.seed,
        augment=t.augment,
        image_size=args.image_size or profile.image_size,
        n_train=profile.n_train,
        n_test=profile.n_test,
        device=device,
        download=args.download,
    )
    torch.manual_seed(args.seed)
    model = create_model(args.model, num_classes=info.num_classes, image_size=info.image_size)
    history = fit(
        model,
        train_loader,
        test_loader,
        config,
        out_dir=args.out,
        resume=args.resume,
        batch_transform=mix_transform(info.num_classes) if t.mix else None,
        device=device,
        meta={"model": args.model, "num_classes": info.num_classes, "image_size": info.image_size},
    )
    if not dist.is_initialized() or dist.get_rank() == 0:
        print(
            f"{args.model}: {len(history.epoch)} epochs, test error {history.test_error[-1]:.1f}%, "
            f"test NLL {history.test_nll[-1]:.3f}; history and checkpoint in {args.out}"
        )


def _cmd_precompute(args: argparse.Namespace) -> None:
    import fnmatch
    import time

    from course_lib.cache import is_rank0
    from course_lib.chapters import precompute_steps

    # Under torchrun every rank runs every step: training uses DDP, the Hessian spectra and
    # landscape grids shard across ranks, and the cache lets rank 0 alone read and write.
    _init_distributed()
    profile = get_profile(args.profile)
    steps = {k: f for k, f in precompute_steps().items() if fnmatch.fnmatch(k, args.only)}
    if not steps:
        raise ValueError(f"no precompute step matches {args.only!r}")
    for name, step in steps.items():
        started = time.perf_counter()
        if is_rank0():
            print(f"[precompute] {name} ({profile.name}) ...", flush=True)
        step(profile)
        if is_rank0():
            print(f"[precompute] {name} done in {time.perf_counter() - started:.0f} s", flush=True)


def _cmd_check(args: argparse.Namespace) -> None:
    device = default_device()
    print(
        f"course_lib {__version__} | Python {platform.python_version()} | torch {torch.__version__}"
    )
    print(
        f"device: {device}"
        + (f" ({torch.cuda.get_device_name()})" if device.type == "cuda" else "")
    )
    print(f"profile: {get_profile().name} (set COURSE_PROFILE to change)")
    for name in list_models("*_tiny"):
        model = create_model(name).to(device)
        out = model(torch.randn(2, 3, 32, 32, device=device))
        print(f"  {name:<16} forward ok {tuple(out.shape)}")
    print("ready")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m course_lib",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("models", help="list the registered models with parameter counts")
    p.add_argument("pattern", nargs="?", default="*", help="shell-style filter, e.g. '*_tiny'")
    p.set_defaults(func=_cmd_models)

    p = sub.add_parser("train", help="train a model; writes history.json and checkpoint.pt")
    p.add_argument("--model", required=True, help="a name from `python -m course_lib models`")
    p.add_argument("--data", default=None, help="synthetic, cifar10, cifar100 or folder:PATH")
    p.add_argument("--profile", default=None, choices=sorted(PROFILES))
    p.add_argument("--out", required=True, help="output folder for history and checkpoints")
    p.add_argument("--resume", action="store_true", help="continue from --out/checkpoint.pt")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--fraction", type=float, default=1.0, help="class-balanced data subset")
    p.add_argument("--image-size", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1, mps (default: best)")
    p.add_argument("--download", action="store_true", help="download CIFAR if missing")
    p.add_argument(
        "--compile", nargs="?", const=True, default=None, metavar="MODE",
        help="torch.compile the model, optionally with a mode such as reduce-overhead "
        "(default: the profile's choice)",
    )  # fmt: skip
    p.add_argument(
        "--channels-last", action=argparse.BooleanOptionalAction, default=None,
        help="NHWC memory format (default: the profile's choice)",
    )  # fmt: skip
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser(
        "precompute", help="train and analyse everything the chapters need (also under torchrun)"
    )
    p.add_argument("--profile", default=None, choices=sorted(PROFILES))
    p.add_argument("--only", default="*", help="shell-style filter on step names, e.g. 'ch01*'")
    p.set_defaults(func=_cmd_precompute)

    p = sub.add_parser("check", help="pre-flight check: versions, device, every tiny model")
    p.set_defaults(func=_cmd_check)

    from course_lib.analyse.command import add_subcommand

    add_subcommand(sub)  # python -m course_lib analyse --model timm:NAME ... --out DIR
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except (ValueError, CheckpointError, FileNotFoundError, TrainingDiverged, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; rerun with --resume to continue from the last epoch", file=sys.stderr)
        return 130
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
