"""Command line: ``python -m course_lib {models,train,precompute,check,analyse,lint-prose}``.

Examples::

    python -m course_lib models
    python -m course_lib train --model vit_tiny --data synthetic --profile laptop --out runs/x
    python -m course_lib train ... --resume          # continue an interrupted run exactly
    torchrun --nproc_per_node=4 -m course_lib train --model vit_ti --data cifar100 --out runs/y

``--batch-size`` is the global batch, shared out over the processes, so 1 and N processes train
on the same batches (see ``course_lib.data.make_loaders``). Every expected failure ends with one
line, ``error: <problem>; <fix>``, and an exit code that names its kind (:data:`EXIT_CODES`).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import math
import os
import platform
import signal
import sys
import threading
from pathlib import Path

import torch
import torch.distributed as dist

from course_lib import __version__
from course_lib.config import PROFILES, get_profile
from course_lib.data import DatasetError
from course_lib.io import CheckpointError, ensure_writable
from course_lib.models import create_model, list_models, model_family
from course_lib.train import TrainConfig, TrainingDiverged, default_device, fit

#: Exit status of each kind of failure.
EXIT_CODES = {
    "input": 2,  # a bad option or value
    "data": 3,  # dataset files missing, damaged or not downloadable
    "checkpoint": 4,  # a checkpoint or cache file that is damaged or belongs to another run
    "diverged": 5,  # the loss became NaN/inf
    "filesystem": 6,  # cannot write (permissions, full disk)
    "distributed": 7,  # another process failed or stopped answering
    "interrupted": 130,  # Ctrl-C
    "terminated": 143,  # SIGTERM
}
#: Seconds a process waits for the others before the distributed run is ended.
TIMEOUT_ENV = "COURSE_DIST_TIMEOUT"
DEFAULT_TIMEOUT_S = 300


class DistributedFailure(RuntimeError):
    """Another process of a distributed run failed, was killed, or stopped answering."""


def _cmd_models(args: argparse.Namespace) -> None:
    print(f"{'model':<16} {'family':<10} {'parameters':>12}")
    for name in list_models(args.pattern):
        n = sum(p.numel() for p in create_model(name).parameters())
        print(f"{name:<16} {model_family(name):<10} {n:>12,}")


def _timeout_s() -> float:
    raw = os.environ.get(TIMEOUT_ENV, str(DEFAULT_TIMEOUT_S))
    try:
        seconds = float(raw)
    except ValueError:
        seconds = math.nan
    if not seconds > 0:
        raise ValueError(f"${TIMEOUT_ENV} must be a positive number of seconds, not {raw!r}")
    return seconds


def _init_distributed() -> torch.device:
    """Join the process group when started by torchrun; return this process's device.

    A collective that waits longer than ``$COURSE_DIST_TIMEOUT`` seconds (default 300) for a
    frozen or dead process raises, and the run ends with one line instead of hanging.
    """
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        timeout = datetime.timedelta(seconds=_timeout_s())
        try:
            dist.init_process_group(backend, timeout=timeout)
        except (RuntimeError, ValueError) as err:
            raise DistributedFailure(
                f"could not join the distributed run ({_one_line(err)}); check that every "
                "process was started (torchrun --nproc_per_node=N) and the master address"
            ) from err
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


def _parse_device(name: str) -> torch.device:
    """``--device`` as a device this machine has, else a ValueError naming the fix."""
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError) as err:
        raise ValueError(
            f"unknown device {name!r}; use cpu, cuda, cuda:N or mps (or leave out --device)"
        ) from err
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ValueError(
                f"--device {name}: no CUDA GPU is visible to PyTorch here; use --device cpu, "
                "or install a CUDA build of PyTorch on a machine with a GPU"
            )
        if device.index is not None and device.index >= count:
            raise ValueError(f"--device {name}: only cuda:0 to cuda:{count - 1} exist here")
    elif device.type == "mps" and not (
        getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()
    ):
        raise ValueError(f"--device {name}: Apple's MPS is not available here; use --device cpu")
    elif device.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"--device {name}: use cpu, cuda, cuda:N or mps")
    return device


def _check_train_args(args: argparse.Namespace) -> None:
    """Every check that needs no data, before any data is loaded or any epoch runs."""
    for option, value in (
        ("--epochs", args.epochs),
        ("--batch-size", args.batch_size),
        ("--image-size", args.image_size),
    ):
        if value is not None and value < 1:
            raise ValueError(f"{option} must be at least 1, got {value}")
    if args.lr is not None and not (math.isfinite(args.lr) and args.lr > 0):
        raise ValueError(f"--lr must be a positive number, got {args.lr}")
    if not 0.0 < args.fraction <= 1.0:
        raise ValueError(f"--fraction must be in (0, 1], got {args.fraction}")
    if args.device:
        _parse_device(args.device)
    out = Path(args.out)
    ckpt = out / "checkpoint.pt"
    if args.resume and not ckpt.exists():
        raise ValueError(
            f"--resume: there is no checkpoint at {ckpt}; check --out, or leave out --resume "
            "to start a new run"
        )
    if not args.resume and (ckpt.exists() or (out / "history.json").exists()):
        raise ValueError(
            f"{out} already holds a run; add --resume to continue it, or choose another --out"
        )


def _cmd_train(args: argparse.Namespace) -> None:
    from course_lib.data import make_loaders, mix_transform

    profile = get_profile(args.profile)
    _check_train_args(args)
    joined = _init_distributed()  # also with --device: every rank must join the group
    device = _parse_device(args.device) if args.device else joined
    if not dist.is_initialized() or dist.get_rank() == 0:
        ensure_writable(args.out)
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
    args.interrupt_hint = "rerun the same command: finished steps are cached"
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
    p.add_argument(
        "--batch-size", type=int, default=None, help="global batch, shared out over processes"
    )
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
    from course_lib.report import lint

    add_subcommand(sub)  # python -m course_lib analyse --model timm:NAME ... --out DIR
    lint.add_subcommand(sub)  # python -m course_lib lint-prose [NOTEBOOK ...]
    return parser


def _one_line(err: BaseException) -> str:
    """The message of ``err`` on one line; for an error re-raised from a DataLoader worker (whose
    message holds the worker's traceback), the original error's own message."""
    lines = [line.strip() for line in str(err).strip().splitlines() if line.strip()]
    if not lines:
        return type(err).__name__
    if len(lines) > 1 and any("Traceback" in line for line in lines):
        last = lines[-1]
        name, sep, message = last.partition(": ")
        return message if sep and "." in name and " " not in name else last
    return " ".join(lines) if len(lines) <= 3 else lines[0]


def _is_distributed_failure(err: BaseException) -> bool:
    if isinstance(err, DistributedFailure) or isinstance(err, getattr(dist, "DistError", ())):
        return True
    words = ("gloo", "nccl", "connection", "timed out", "timeout", "peer", "rendezvous")
    text = str(err).lower()
    return dist.is_initialized() and any(word in text for word in words)


def _failure(err: BaseException) -> tuple[str, int]:
    """(one line, exit code) for an expected failure; re-raises anything else (a bug)."""
    if isinstance(err, KeyboardInterrupt):
        return "interrupted", EXIT_CODES["interrupted"]
    if isinstance(err, DatasetError):
        return _one_line(err), EXIT_CODES["data"]
    if isinstance(err, CheckpointError):
        return _one_line(err), EXIT_CODES["checkpoint"]
    if isinstance(err, TrainingDiverged):
        return _one_line(err), EXIT_CODES["diverged"]
    if isinstance(err, FileNotFoundError):
        return _one_line(err), EXIT_CODES["data"]
    if isinstance(err, ValueError):
        return _one_line(err), EXIT_CODES["input"]
    if _is_distributed_failure(err):
        waited = os.environ.get(TIMEOUT_ENV, DEFAULT_TIMEOUT_S)
        return (
            f"another process of this distributed run failed or did not answer within "
            f"${TIMEOUT_ENV}={waited} s ({_one_line(err)}); see that process's own message "
            "above, then rerun (train: with --resume)",
            EXIT_CODES["distributed"],
        )
    if isinstance(err, OSError):
        return _one_line(err), EXIT_CODES["filesystem"]
    raise err


class Terminated(KeyboardInterrupt):
    """SIGTERM, as torchrun sends to every process when one of them failed."""


def _on_sigterm(signum: int, frame: object) -> None:
    raise Terminated


def main(argv: list[str] | None = None) -> int:
    """Run the command line; every expected failure prints one line and returns its exit code."""
    args = build_parser().parse_args(argv)
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _on_sigterm) if in_main_thread else None
    try:
        args.func(args)
    except (Exception, KeyboardInterrupt) as err:
        message, code = _failure(err)
        rank = f"[rank {os.environ['RANK']}] " if "RANK" in os.environ else ""
        if isinstance(err, Terminated):
            stopped = "stopped (SIGTERM), e.g. by torchrun after another process failed"
            print(f"{rank}{stopped}; see the first error above", file=sys.stderr)
            return EXIT_CODES["terminated"]
        if code == EXIT_CODES["interrupted"]:
            hint = getattr(
                args, "interrupt_hint", "rerun with --resume to continue from the last epoch"
            )
            print(f"{rank}interrupted; {hint}", file=sys.stderr)
        else:
            print(f"{rank}error: {message}", file=sys.stderr)
        return code
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)
    return 0


if __name__ == "__main__":
    sys.exit(main())
