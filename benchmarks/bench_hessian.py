"""Benchmark ``course_lib.analysis.hessian`` against PyHessian on one small ResNet and batch.

Run: ``python benchmarks/bench_hessian.py`` (needs ``pip install pyhessian==0.1``). Everything
runs on the CPU with the same thread count, on torchvision's ``resnet18(num_classes=10)`` at 32×32
trained for a few dozen Adam steps on random images with a learnable labelling, batch 64:

1. Hessian-vector product methods: reverse-over-reverse with the gradient graph built once (ours),
   the same rebuilt per product, ``torch.func`` forward-over-reverse, and 4 vectors at once with
   ``is_grads_batched`` (vmap): time per product and peak memory, relative to a forward+backward.
2. Top-1 and top-5 eigenvalues (largest magnitude, PyHessian's ranking) at ``tol=1e-4``: ours
   (thick-restart Lanczos) vs PyHessian 0.1's deflated power iteration vs
   ``scipy.sparse.linalg.eigsh`` (ARPACK) around our product; every value is checked against a
   reference converged to ``tol=1e-7``.

Timings are the best of interleaved rounds (the cores may be shared): 3 for products, 2 for
eigenvalues. Peak memory is the growth of the resident set's high-water mark over one call, made
in a fresh process after the model and batch are built (Linux: ``VmHWM`` in
``/proc/self/status``, reset through ``/proc/self/clear_refs``); CPU tensors live in the RSS, so
this is their peak.
"""

from __future__ import annotations

import argparse
import importlib
import multiprocessing
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import torchvision
from scipy.sparse.linalg import LinearOperator, eigsh
from torch import Tensor, nn
from torch.func import functional_call, grad, jvp

from course_lib.analysis.hessian import _hessian_operator, _HessianOperator, top_eigenvalues

IMAGE, CLASSES = 32, 10
Batch = tuple[Tensor, Tensor]


def make_model(name: str, state_path: Path | None = None) -> nn.Module:
    """torchvision's ``resnet18`` (the default), or any model of ``course_lib.models``."""
    if name == "resnet18":
        model = torchvision.models.resnet18(num_classes=CLASSES)
    else:
        from course_lib.models import create_model

        model = create_model(name, num_classes=CLASSES, image_size=IMAGE)
    if state_path is not None:
        model.load_state_dict(torch.load(state_path, weights_only=True))
    return model.eval()


def make_batch(size: int, seed: int) -> Batch:
    """Random images labelled by a fixed random linear map of their 4×4 average-pooled pixels."""
    teacher = torch.randn(3 * 8 * 8, CLASSES, generator=torch.Generator().manual_seed(0))
    x = torch.randn(size, 3, IMAGE, IMAGE, generator=torch.Generator().manual_seed(seed))
    return x, (F.avg_pool2d(x, 4).flatten(1) @ teacher).argmax(1)


def briefly_trained(name: str, steps: int, batch_size: int) -> nn.Module:
    """Adam for a few dozen steps, so the Hessian is not that of the random initialization.

    BatchNorm's running statistics are then recomputed over 8 batches (cumulative average), so
    that the eval-mode network, whose Hessian is measured, matches the trained one.
    """
    torch.manual_seed(0)
    model = make_model(name).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for step in range(steps):
        x, y = make_batch(batch_size, seed=100 + step)
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.reset_running_stats()
            module.momentum = None
    with torch.no_grad():
        for seed in range(8):
            model(make_batch(batch_size, seed=1000 + seed)[0])
    x, y = make_batch(batch_size, seed=1)
    with torch.no_grad():
        print(f"after {steps} steps: train loss {loss.item():.3f}, ", end="")
        print(
            f"eval-mode loss on the Hessian batch {F.cross_entropy(model.eval()(x), y).item():.3f}"
        )
    return model


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    """Wall-clock time of one call, and its result."""
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def best_interleaved(fns: dict[str, Callable[[], object]], rounds: int) -> dict[str, float]:
    """Best time of each callable over ``rounds`` round-robin passes (fair under shared CPUs)."""
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(rounds):
        for name, fn in fns.items():
            best[name] = min(best[name], timed(fn)[0])
    return best


# --- Hessian-vector product methods -----------------------------------------------------------


def functional_hvp(model: nn.Module, batch: Batch) -> Callable[[dict, dict], dict]:
    """``(weights, tangents) -> H·tangents`` by ``torch.func`` forward-over-reverse."""
    buffers = dict(model.named_buffers())

    def loss_of(weights: dict[str, Tensor]) -> Tensor:
        return F.cross_entropy(functional_call(model, (weights, buffers), (batch[0],)), batch[1])

    return lambda weights, tangents: jvp(grad(loss_of), (weights,), (tangents,))[1]


def hvp_methods(model: nn.Module, batch: Batch, op: _HessianOperator) -> dict[str, Callable]:
    """Zero-argument callables: one forward+backward, or one product (four for vmap)."""
    x, y = batch
    params = list(model.parameters())
    vector = torch.randn(op.dim)
    vectors4 = torch.randn(4, op.dim)
    weights = {n: p.detach() for n, p in model.named_parameters()}
    chunks = vector.split(op.sizes)
    tangents = {n: t.view_as(w) for (n, w), t in zip(weights.items(), chunks, strict=True)}
    forward_over_reverse = functional_hvp(model, batch)

    def rebuilt() -> object:
        g = torch.autograd.grad(F.cross_entropy(model(x), y), params, create_graph=True)
        return torch.autograd.grad(g, params, grad_outputs=list(tangents.values()))

    return {
        "forward+backward": lambda: torch.autograd.grad(F.cross_entropy(model(x), y), params),
        "double backward, graph once (ours)": lambda: op(vector),
        "double backward, graph per product": rebuilt,
        "forward-over-reverse (torch.func)": lambda: forward_over_reverse(weights, tangents),
        "double backward, 4 at once (vmap) /4": lambda: op(vectors4),
    }


def reset_peak_rss() -> float:
    """Reset the process's RSS high-water mark (Linux ``clear_refs``); current RSS in MiB."""
    Path("/proc/self/clear_refs").write_text("5")
    return _status_mib("VmRSS")


def _status_mib(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024  # kB -> MiB
    raise RuntimeError(f"{field} not in /proc/self/status (Linux only)")


def memory_probe(
    name: str, state: str, batch_size: int, method: str, queue: multiprocessing.Queue
) -> None:
    """In a fresh process: growth of the RSS high-water mark over one call of ``method``."""
    torch.set_num_threads(2)
    model, batch = make_model(name, Path(state)), make_batch(batch_size, seed=1)
    params = list(model.parameters())
    weights = {n: p.detach() for n, p in model.named_parameters()}
    tangents = {n: torch.randn_like(w) for n, w in weights.items()}
    flat = torch.cat([t.reshape(-1) for t in tangents.values()])
    forward_over_reverse = functional_hvp(model, batch)
    before = reset_peak_rss()
    if method == "forward+backward":
        torch.autograd.grad(F.cross_entropy(model(batch[0]), batch[1]), params)
    elif method == "double backward, graph once (ours)":
        with _hessian_operator(model, F.cross_entropy, batch, 0.0, "eval") as op:
            op(flat)
    else:
        forward_over_reverse(weights, tangents)
    queue.put(_status_mib("VmHWM") - before)


def peak_memory(name: str, model: nn.Module, batch_size: int) -> dict[str, float]:
    ctx = multiprocessing.get_context("spawn")
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp) / "state.pt"
        torch.save(model.state_dict(), state)
        for method in (
            "forward+backward",
            "double backward, graph once (ours)",
            "forward-over-reverse (torch.func)",
        ):
            queue = ctx.Queue()
            process = ctx.Process(
                target=memory_probe, args=(name, str(state), batch_size, method, queue)
            )
            process.start()
            out[method] = queue.get(timeout=900)
            process.join()
    return out


# --- Eigenvalues -------------------------------------------------------------------------------


def ours_top(
    model: nn.Module, batch: Batch, k: int, tol: float, which: str = "LM"
) -> tuple[list[float], int]:
    result = top_eigenvalues(
        model,
        F.cross_entropy,
        batch,
        k,
        which=which,
        tol=tol,
        max_iter=1000,
        generator=torch.Generator().manual_seed(0),
    )
    assert result.converged
    return result.eigenvalues.tolist(), result.n_hvp


def ours_counts(model: nn.Module, batch: Batch, tol: float) -> None:
    """Products and errors of our solver alone (LM, LA) against tol=1e-7 references."""
    print(f"Ours alone, tol={tol}; error = max |λ - ref| / |ref| against tol=1e-7")
    print(f"{'which':6s} {'k':>2s} {'time s':>8s} {'products':>9s} {'max rel err':>12s}  values")
    for which in ("LM", "LA"):
        reference, _ = ours_top(model, batch, 5, 1e-7, which)
        for k in (1, 5):
            seconds, (values, products) = timed(
                lambda w=which, k=k: ours_top(model, batch, k, tol, w)
            )
            error = max(abs(v - r) / abs(r) for v, r in zip(values, reference[:k], strict=True))
            print(
                f"{which:6s} {k:2d} {seconds:8.1f} {products:9d} {error:12.1e}  "
                f"{[round(v, 3) for v in values]}",
                flush=True,
            )


def pyhessian_top(model: nn.Module, batch: Batch, k: int, tol: float) -> tuple[list[float], int]:
    """PyHessian 0.1's deflated power iteration (its default maxIter=100 per eigenvalue)."""
    module = importlib.import_module("pyhessian.hessian")  # `pyhessian.hessian` is also a class
    products = 0
    original = module.hessian_vector_product

    def counted(*args: object) -> object:
        nonlocal products
        products += 1
        return original(*args)

    torch.manual_seed(0)
    module.hessian_vector_product = counted
    try:
        engine = module.hessian(model, nn.CrossEntropyLoss(), data=batch, cuda=False)
        eigenvalues, _ = engine.eigenvalues(maxIter=100, tol=tol, top_n=k)
    finally:
        module.hessian_vector_product = original
        model.zero_grad(set_to_none=True)  # PyHessian leaves a graph in .grad
    return eigenvalues, products


def eigsh_top(model: nn.Module, batch: Batch, k: int, tol: float) -> tuple[list[float], int]:
    """ARPACK (``scipy.sparse.linalg.eigsh``, which="LM") around our product."""
    products = 0
    with _hessian_operator(model, F.cross_entropy, batch, 0.0, "eval") as op:

        def matvec(v: np.ndarray) -> np.ndarray:
            nonlocal products
            products += 1
            return op(torch.from_numpy(np.asarray(v, np.float32).ravel())).numpy()

        operator = LinearOperator((op.dim, op.dim), matvec=matvec, dtype=np.float32)
        start = np.random.default_rng(0).standard_normal(op.dim).astype(np.float32)
        values = eigsh(operator, k=k, which="LM", tol=tol, v0=start, return_eigenvectors=False)
    return sorted(values.tolist(), key=abs, reverse=True), products


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet18", help="resnet18 or a course_lib model")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--train-steps", type=int, default=40)
    parser.add_argument("--tol", type=float, default=1e-4)
    parser.add_argument(
        "--only-ours", action="store_true", help="only our solver's products (LM, LA)"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    model = briefly_trained(args.model, args.train_steps, args.batch)
    batch = make_batch(args.batch, seed=1)
    n_params = sum(p.numel() for p in model.parameters())
    print(
        f"{args.model}(num_classes={CLASSES}), {n_params:,} parameters, "
        f"batch {args.batch}x3x{IMAGE}x{IMAGE}, {args.threads} threads, CPU, "
        f"torch {torch.__version__}\n",
        flush=True,
    )
    if args.only_ours:
        ours_counts(model, batch, args.tol)
        return

    with _hessian_operator(model, F.cross_entropy, batch, 0.0, "eval") as op:
        times = best_interleaved(hvp_methods(model, batch, op), rounds=3)
    times["double backward, 4 at once (vmap) /4"] /= 4
    memory = peak_memory(args.model, model, args.batch)
    print(f"{'Hessian-vector product (best of 3)':40s} {'s/product':>10s} {'x fwd+bwd':>10s}")
    for name, seconds in times.items():
        print(f"{name:40s} {seconds:10.3f} {seconds / times['forward+backward']:10.2f}")
    print(f"\n{'Peak memory of one call (RSS growth)':40s} {'MiB':>10s} {'x fwd+bwd':>10s}")
    for name, mib in memory.items():
        print(f"{name:40s} {mib:10.0f} {mib / memory['forward+backward']:10.2f}", flush=True)

    ref_time, (reference, ref_products) = timed(lambda: ours_top(model, batch, 5, 1e-7))
    print(
        f"\nReference (ours, tol=1e-7): {[round(v, 4) for v in reference]} "
        f"({ref_products} products, {ref_time:.0f} s)\n",
        flush=True,
    )

    tol = args.tol
    methods = {
        "ours (Lanczos)": lambda k: ours_top(model, batch, k, tol),
        "PyHessian 0.1": lambda k: pyhessian_top(model, batch, k, tol),
        "PyHessian, tol/10": lambda k: pyhessian_top(model, batch, k, tol / 10),
        "scipy eigsh": lambda k: eigsh_top(model, batch, k, tol),
    }
    print(f"Top-k eigenvalues, largest magnitude, tol={tol}; error = max |λ - ref| / |ref|")
    print(
        f"{'k':>2s} {'method':18s} {'time s':>8s} {'vs ours':>8s} {'products':>9s} "
        f"{'max rel err':>12s}  values"
    )
    for k in (1, 5):
        results: dict[str, tuple[float, tuple[list[float], int]]] = {}
        for _ in range(2):  # best of 2 interleaved rounds
            for name, method in methods.items():
                seconds, out = timed(lambda method=method, k=k: method(k))
                if name not in results or seconds < results[name][0]:
                    results[name] = (seconds, out)
        ours_time = results["ours (Lanczos)"][0]
        for name, (seconds, (values, products)) in results.items():
            values = sorted(values, key=abs, reverse=True)
            error = max(abs(v - r) / abs(r) for v, r in zip(values, reference[:k], strict=True))
            print(
                f"{k:2d} {name:18s} {seconds:8.1f} {seconds / ours_time:7.1f}x {products:9d} "
                f"{error:12.1e}  {[round(v, 3) for v in values]}",
                flush=True,
            )


if __name__ == "__main__":
    main()
