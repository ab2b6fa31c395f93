"""CUDA paths: bf16 autocast, channels_last, torch.compile, and no host syncs in the hot loop.

Skipped where no GPU is visible (CI); run them on a GPU machine with
``pytest tests/test_cuda.py``.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from course_lib.analysis.hessian import top_eigenvalues
from course_lib.analysis.landscape import filter_normalized_direction, loss_surface_1d
from course_lib.data import make_synthetic, mix_transform
from course_lib.models import create_model
from course_lib.train import TrainConfig, _lr_factor, _make_optimizer, _train_epoch, fit

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
CUDA = torch.device("cuda")


def _pinned_batches(n_batches: int, batch_size: int = 32) -> list[tuple[torch.Tensor, ...]]:
    """What a DataLoader with ``pin_memory=True`` hands the loop: pinned CPU tensors."""
    data = make_synthetic(n_batches * batch_size)
    loader = DataLoader(data, batch_size=batch_size, pin_memory=True)
    return [(x, y) for x, y in loader]


@pytest.mark.parametrize("name", ["resnet_tiny", "vit_tiny", "alternet_tiny"])
@pytest.mark.parametrize("mix", [False, True], ids=["plain", "mixup-cutmix"])
def test_training_loop_never_waits_for_the_gpu(name: str, mix: bool) -> None:
    torch.manual_seed(0)
    model = create_model(name).to(CUDA).to(memory_format=torch.channels_last)
    config = TrainConfig(epochs=1, channels_last=True, amp=True, grad_clip=1.0, progress=False)
    optimizer = _make_optimizer(model, config)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: _lr_factor(s, 8, 2))
    batches = _pinned_batches(4)
    transform = mix_transform(10) if mix else None
    args = (model, model, batches, optimizer, scheduler, config, CUDA, transform)
    _train_epoch(*args)  # warm-up: lazy initialisation may sync once
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        totals = _train_epoch(*args)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    nll, _, count = totals.tolist()
    assert count == 4 * 32 and math.isfinite(nll)


@pytest.mark.parametrize("compile_model", [False, True], ids=["eager", "compiled"])
def test_fit_on_cuda_with_amp_and_channels_last_learns(compile_model: bool) -> None:
    torch.manual_seed(0)
    data = make_synthetic(1024)
    loader = DataLoader(data, batch_size=64, shuffle=True, pin_memory=True,
                        generator=torch.Generator().manual_seed(0))  # fmt: skip
    model = create_model("resnet_tiny")
    config = TrainConfig(epochs=3, lr=2e-3, warmup_epochs=0.5, amp=True, channels_last=True,
                         compile=compile_model, progress=False)  # fmt: skip
    history = fit(model, loader, loader, config, device=CUDA)
    assert next(model.parameters()).device.type == "cuda"
    assert history.train_nll[-1] < 0.8 * history.train_nll[0]
    assert all(math.isfinite(v) for v in history.test_nll)


@pytest.mark.parametrize("name", ["resnet_tiny", "vit_tiny"])
def test_hessian_and_landscape_on_cuda_match_the_cpu(name: str) -> None:
    torch.manual_seed(0)
    model = create_model(name).eval()
    x, y = make_synthetic(32).tensors
    batch = (x, y.long())
    direction = filter_normalized_direction(model, generator=torch.Generator().manual_seed(1))
    on_cpu = top_eigenvalues(model, F.cross_entropy, batch, k=2, tol=1e-5, max_iter=200)
    surface_cpu = loss_surface_1d(model, F.cross_entropy, batch, direction, [-0.5, 0.0, 0.5])
    model.to(CUDA)
    on_gpu = top_eigenvalues(model, F.cross_entropy, batch, k=2, tol=1e-5, max_iter=200)
    surface_gpu = loss_surface_1d(
        model, F.cross_entropy, batch, [d.to(CUDA) for d in direction], [-0.5, 0.0, 0.5]
    )
    torch.testing.assert_close(on_gpu.eigenvalues, on_cpu.eigenvalues, rtol=1e-3, atol=1e-4)
    torch.testing.assert_close(
        torch.as_tensor(surface_gpu.loss), torch.as_tensor(surface_cpu.loss), rtol=1e-4, atol=1e-5
    )
