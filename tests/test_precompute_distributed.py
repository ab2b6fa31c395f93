"""``precompute`` under torchrun: ranks agree on the cache, compute together, write once."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from course_lib import cache, experiments, train
from course_lib.cache import cached_result, entry_dir
from course_lib.config import get_profile

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cache_worker(rank: int, world: int, port: int, root: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), COURSE_CACHE=root)
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        writes, computed = [], []
        save = cache.save_checkpoint
        cache.save_checkpoint = lambda path, state: writes.append(path) or save(path, state)

        def compute() -> dict:
            computed.append(rank)
            total = torch.tensor([rank + 1.0])
            dist.all_reduce(total)  # compute() may hold collectives: every rank must run it
            return {"rank": rank, "total": total}

        first = cached_result("demo", {"a": 1}, compute)
        second = cached_result("demo", {"a": 1}, compute)  # a hit on every rank
        if rank == 0:
            (entry_dir("demo", {"a": 1}) / "key.json").write_text("{}")  # as after a code edit
        dist.barrier()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            third = cached_result("demo", {"a": 1}, compute)  # stale: rank 0 warns, all compute
        torch.save(
            {
                "computed": len(computed),
                "writes": len(writes),
                "first": first,
                "second": second,
                "third": third,
                "warned": any("stale cache entry" in str(w.message) for w in caught),
            },
            Path(root) / f"rank{rank}.pt",
        )
    finally:
        dist.destroy_process_group()


def test_cached_result_with_two_gloo_ranks(tmp_path):
    mp.spawn(_cache_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    for rank, seen in enumerate(ranks):
        assert seen["computed"] == 2, rank  # the miss and the stale entry, not the hit
        assert seen["first"]["rank"] == rank and seen["first"]["total"].item() == 3.0
        assert seen["second"]["rank"] == 0, rank  # loaded: rank 0's stored result
        assert seen["third"]["rank"] == rank
    assert [seen["writes"] for seen in ranks] == [2, 0]  # rank 0 alone writes
    assert [seen["warned"] for seen in ranks] == [True, False]  # rank 0 alone reads
    assert not list(tmp_path.rglob("*.tmp"))


@pytest.mark.slow
def test_precompute_under_torchrun_then_reload_in_one_process(tmp_path, monkeypatch):
    root = tmp_path / "cache"
    env = os.environ | {"COURSE_CACHE": str(root), "COURSE_WIDGETS": "0", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [
            sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
            f"--master_port={_free_port()}",
            "-m", "course_lib", "precompute", "--profile", "smoke", "--only", "ch01*",
        ],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert done.stdout.count("[precompute] ch01_inductive_bias.family_runs done") == 1  # rank 0
    assert not list(root.rglob("*.tmp"))

    from course_lib.chapters import ch01_inductive_bias as ch01

    def no_training(*args, **kwargs):
        raise AssertionError("trained again instead of loading the cache")

    monkeypatch.setenv("COURSE_CACHE", str(root))
    monkeypatch.setattr(train, "fit", no_training)
    monkeypatch.setattr(experiments, "fit", no_training)
    runs = ch01.family_runs("smoke")
    sweep = ch01.fraction_sweep("smoke")
    assert set(runs) == set(ch01.C1_FAMILIES + ch01.PREVIEW_FAMILIES)
    assert sorted(sweep) == sorted(get_profile("smoke").data_fractions)
