"""Tests for course_lib.analysis.landscape against cases whose answer is known."""

from __future__ import annotations

import socket

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import Tensor, nn

from course_lib.analysis.curvature import (
    ModelSurfaces,
    directional_curvature,
    l2_norm_grid,
    mean_unit_rise,
    more_directions,
    surface_numbers,
    surface_rise,
    with_l2_term,
)
from course_lib.analysis.landscape import (
    DEFAULT_COORDS,
    Surface1D,
    Surface2D,
    filter_normalized_direction,
    filter_normalized_direction_pair,
    loss_surface_1d,
    loss_surface_2d,
    top1_accuracy,
)


class Quadratic(nn.Module):
    """Loss 1/2 (theta - theta*)^T A (theta - theta*), returned for every input row."""

    def __init__(self, a: Tensor, theta_star: Tensor, theta0: Tensor) -> None:
        super().__init__()
        self.theta = nn.Parameter(theta0.clone())
        self.register_buffer("a", a)
        self.register_buffer("theta_star", theta_star)

    def forward(self, x: Tensor) -> Tensor:
        r = self.theta - self.theta_star
        return (0.5 * r @ self.a @ r).expand(x.shape[0])


def _mean_output(outputs: Tensor, targets: Tensor) -> Tensor:
    return outputs.mean()


def _zero_metric(outputs: Tensor, targets: Tensor) -> Tensor:
    return outputs.new_zeros(())


def _small_cnn() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(4, 3),
    )


def _batch(n: int = 8, size: int = 8, classes: int = 3, seed: int = 0) -> tuple[Tensor, Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, size, size, generator=g), torch.randint(classes, (n,), generator=g)


def _state(model: nn.Module) -> list[Tensor]:
    return [p.detach().clone() for p in model.parameters()]


def _assert_same(a: list[Tensor], b: list[Tensor]) -> None:
    assert len(a) == len(b)
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


@pytest.fixture
def quadratic() -> tuple[Quadratic, Tensor, Tensor, Tensor]:
    g = torch.Generator().manual_seed(0)
    m = torch.randn(5, 5, generator=g, dtype=torch.float64)
    a = m @ m.T - 2.0 * torch.eye(5, dtype=torch.float64)  # indefinite: saddles are fine too
    theta_star = torch.randn(5, generator=g, dtype=torch.float64)
    theta0 = torch.randn(5, generator=g, dtype=torch.float64)
    return Quadratic(a, theta_star, theta0), a, theta_star, theta0


def test_quadratic_1d_matches_analytic(quadratic) -> None:
    model, a, theta_star, theta0 = quadratic
    d = torch.tensor([1.0, -2.0, 0.5, 0.0, 3.0], dtype=torch.float64)
    alphas = np.linspace(-2, 2, 9)
    surface = loss_surface_1d(
        model, _mean_output, (torch.zeros(4, 1), torch.zeros(4)), [d], alphas, metric=_zero_metric
    )
    a, r, d = a.numpy(), (theta0 - theta_star).numpy(), d.numpy()
    expected = 0.5 * r @ a @ r + alphas * (r @ a @ d) + 0.5 * alphas**2 * (d @ a @ d)
    assert isinstance(surface, Surface1D) and surface.label == "NLL"
    np.testing.assert_allclose(surface.loss, expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(surface.alphas, alphas)
    np.testing.assert_array_equal(surface.accuracy, 0.0)


def test_quadratic_2d_matches_analytic(quadratic) -> None:
    model, a, theta_star, theta0 = quadratic
    g = torch.Generator().manual_seed(1)
    d, e = (torch.randn(5, generator=g, dtype=torch.float64) for _ in range(2))
    xs, ys = np.linspace(-1, 1, 5), np.linspace(-0.5, 1.5, 3)
    batches = [(torch.zeros(3, 1), torch.zeros(3)), (torch.zeros(1, 1), torch.zeros(1))]
    surface = loss_surface_2d(model, _mean_output, batches, ([d], [e]), xs, ys, metric=_zero_metric)
    x, y = np.meshgrid(xs, ys)
    a, r, d, e = a.numpy(), (theta0 - theta_star).numpy(), d.numpy(), e.numpy()
    expected = (
        0.5 * r @ a @ r
        + x * (r @ a @ d)
        + y * (r @ a @ e)
        + 0.5 * x**2 * (d @ a @ d)
        + x * y * (d @ a @ e)
        + 0.5 * y**2 * (e @ a @ e)
    )
    assert isinstance(surface, Surface2D)
    assert surface.loss.shape == surface.accuracy.shape == (3, 5)
    np.testing.assert_allclose(surface.loss, expected, rtol=1e-12, atol=1e-12)


def test_filter_normalization_matches_weight_filter_norms() -> None:
    model = _small_cnn()
    g = torch.Generator().manual_seed(0)
    direction = filter_normalized_direction(model, generator=g)
    params = list(model.parameters())
    assert [d.shape for d in direction] == [p.shape for p in params]
    for d, p in zip(direction, params, strict=True):
        if p.dim() >= 2:  # conv (4, 3, 3, 3) and linear (3, 4): one filter per output index
            torch.testing.assert_close(d.flatten(1).norm(dim=1), p.detach().flatten(1).norm(dim=1))
            assert not torch.equal(d, p.detach())  # random, not a copy of the weights
        else:  # biases, BatchNorm weight and bias
            assert torch.count_nonzero(d) == 0


def test_filter_normalization_ignore_none_and_exclude() -> None:
    model = _small_cnn()
    direction = filter_normalized_direction(
        model, generator=torch.Generator().manual_seed(0), ignore=None, exclude=[r"^5\."]
    )
    names = [name for name, _ in model.named_parameters()]
    for name, d, p in zip(names, direction, model.parameters(), strict=True):
        if name.startswith("5."):  # the Linear layer
            assert torch.count_nonzero(d) == 0
        elif p.dim() == 1:  # filters of size 1: |d_k| = |w_k|
            torch.testing.assert_close(d.abs(), p.detach().abs())
    with pytest.raises(ValueError, match="ignore"):
        filter_normalized_direction(model, ignore="bn")


def test_direction_is_deterministic_with_generator() -> None:
    model = _small_cnn()
    a = filter_normalized_direction(model, generator=torch.Generator().manual_seed(3))
    b = filter_normalized_direction(model, generator=torch.Generator().manual_seed(3))
    _assert_same(a, b)
    d1, d2 = filter_normalized_direction_pair(model, generator=torch.Generator().manual_seed(3))
    _assert_same(d1, a)
    assert not torch.equal(d1[0], d2[0])


def test_weights_and_modes_restored_and_centre_is_plain_eval() -> None:
    torch.manual_seed(0)
    model = _small_cnn()
    model.train()
    model[1].eval()  # a mixed state must come back exactly, not as a blanket train()
    modes = [m.training for m in model.modules()]
    inputs, targets = _batch()
    with torch.no_grad():
        model(inputs)  # non-trivial BatchNorm running statistics
    before = _state(model)
    d1, d2 = filter_normalized_direction_pair(model, generator=torch.Generator().manual_seed(0))
    loss_fn = nn.CrossEntropyLoss()
    surface = loss_surface_2d(model, loss_fn, (inputs, targets), (d1, d2), [-1, 0, 1], [0, 0.5])
    _assert_same(_state(model), before)
    assert [m.training for m in model.modules()] == modes

    model.eval()
    with torch.no_grad():
        outputs = model(inputs)
    model.train()
    assert surface.loss[0, 1] == pytest.approx(loss_fn(outputs, targets).item(), abs=1e-6)
    assert surface.accuracy[0, 1] == pytest.approx(top1_accuracy(outputs, targets).item())
    assert not np.allclose(surface.loss, surface.loss[0, 1])  # the weights did move


def test_weights_restored_when_loss_raises() -> None:
    model = _small_cnn()
    model.train()
    before = _state(model)
    direction = filter_normalized_direction(model, generator=torch.Generator().manual_seed(0))
    calls = 0

    def flaky_loss(outputs: Tensor, targets: Tensor) -> Tensor:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise RuntimeError("boom")
        return nn.functional.cross_entropy(outputs, targets)

    with pytest.raises(RuntimeError, match="boom"):
        loss_surface_1d(model, flaky_loss, _batch(), direction, [0.5, 1.0, 2.0, 3.0])
    _assert_same(_state(model), before)
    assert model.training and all(m.training for m in model.modules())


def test_weight_decay_adds_exactly_the_official_l2_term() -> None:
    model = _small_cnn().double()
    inputs, targets = _batch()
    data = (inputs.double(), targets)
    direction = filter_normalized_direction(model, generator=torch.Generator().manual_seed(0))
    alphas = [-0.5, 0.0, 1.0]
    nll = loss_surface_1d(model, nn.CrossEntropyLoss(), data, direction, alphas)
    both = loss_surface_1d(model, nn.CrossEntropyLoss(), data, direction, alphas, weight_decay=5e-2)
    l2 = [
        sum((p.detach() + a * d).norm() for p, d in zip(model.parameters(), direction, strict=True))
        for a in alphas
    ]
    np.testing.assert_allclose(both.loss - nll.loss, 5e-2 * np.array(l2), rtol=1e-12)
    np.testing.assert_array_equal(both.accuracy, nll.accuracy)
    assert nll.label == "NLL" and both.label.startswith("NLL + L2")


def test_dataloader_and_max_batches_match_list() -> None:
    model = _small_cnn()
    inputs, targets = _batch(n=12)
    dataset = torch.utils.data.TensorDataset(inputs, targets)
    loader = torch.utils.data.DataLoader(dataset, batch_size=4)
    batches = [(inputs[:4], targets[:4]), (inputs[4:8], targets[4:8])]
    direction = filter_normalized_direction(model, generator=torch.Generator().manual_seed(0))
    loss_fn = nn.CrossEntropyLoss()
    from_loader = loss_surface_1d(model, loss_fn, loader, direction, [0, 1], max_batches=2)
    from_list = loss_surface_1d(model, loss_fn, batches, direction, [0, 1])
    from_batch = loss_surface_1d(model, loss_fn, (inputs[:8], targets[:8]), direction, [0, 1])
    np.testing.assert_allclose(from_loader.loss, from_list.loss, rtol=1e-6)
    np.testing.assert_allclose(from_batch.loss, from_list.loss, rtol=1e-6)


def test_bad_directions_and_empty_data_raise() -> None:
    model = _small_cnn()
    direction = filter_normalized_direction(model)
    with pytest.raises(ValueError, match="one tensor per parameter"):
        loss_surface_1d(model, nn.CrossEntropyLoss(), _batch(), direction[:-1], [0.0])
    with pytest.raises(ValueError, match="shape"):
        loss_surface_1d(model, nn.CrossEntropyLoss(), _batch(), direction[::-1], [0.0])
    with pytest.raises(ValueError, match="no batches"):
        loss_surface_1d(model, nn.CrossEntropyLoss(), [], direction, [0.0])


def test_default_grid_is_the_official_21_points() -> None:
    np.testing.assert_allclose(DEFAULT_COORDS, np.linspace(-1, 1, 21))


def test_torchvision_resnet18() -> None:
    torchvision = pytest.importorskip("torchvision")
    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=10)
    before = _state(model)
    inputs, targets = _batch(n=2, size=32, classes=10)
    d1, d2 = filter_normalized_direction_pair(model, generator=torch.Generator().manual_seed(0))
    surface = loss_surface_2d(
        model, nn.CrossEntropyLoss(), (inputs, targets), (d1, d2), [0.0, 1.0], [0.0, 1.0]
    )
    assert surface.loss.shape == (2, 2) and np.isfinite(surface.loss).all()
    _assert_same(_state(model), before)


def _registered_tiny_models() -> list[str]:
    try:
        from course_lib.models import list_models

        return list_models("*_tiny")
    except Exception:  # the registry is optional for this module
        return []


@pytest.mark.parametrize("name", _registered_tiny_models() or [None])
def test_every_registered_model_runs_a_1d_surface(name: str | None) -> None:
    if name is None:
        pytest.skip("course_lib.models has no list_models() yet")
    from course_lib.models import create_model

    torch.manual_seed(0)
    model = create_model(name, num_classes=10, image_size=32)
    before = _state(model)
    direction = filter_normalized_direction(model, generator=torch.Generator().manual_seed(0))
    surface = loss_surface_1d(
        model, nn.CrossEntropyLoss(), _batch(n=2, size=32, classes=10), direction, [-1.0, 0.0, 1.0]
    )
    assert surface.loss.shape == (3,) and np.isfinite(surface.loss).all()
    _assert_same(_state(model), before)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _distributed_worker(rank: int, world: int, port: int, out: str) -> None:
    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world
    )
    try:
        torch.manual_seed(0)
        model = _small_cnn()
        # rank 1 draws other directions: rank 0's must be broadcast
        d1, d2 = filter_normalized_direction_pair(
            model, generator=torch.Generator().manual_seed(rank)
        )
        surface = loss_surface_2d(
            model, nn.CrossEntropyLoss(), _batch(), (d1, d2), [-1, 0, 1], [-1, 0, 1]
        )
        np.save(f"{out}/rank{rank}.npy", np.stack([surface.loss, surface.accuracy]))
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_distributed_grid_matches_single_process(tmp_path) -> None:
    mp.spawn(_distributed_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    torch.manual_seed(0)
    model = _small_cnn()
    d1, d2 = filter_normalized_direction_pair(model, generator=torch.Generator().manual_seed(0))
    single = loss_surface_2d(
        model, nn.CrossEntropyLoss(), _batch(), (d1, d2), [-1, 0, 1], [-1, 0, 1]
    )
    expected = np.stack([single.loss, single.accuracy])
    for rank in range(2):  # 9 points on 2 ranks: an uneven split, full grid on both
        np.testing.assert_allclose(np.load(tmp_path / f"rank{rank}.npy"), expected, rtol=1e-6)


def test_plots_label_which_loss_they_show() -> None:
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from course_lib.plots.landscape import (
        plot_loss_contour,
        plot_loss_curve_1d,
        plot_loss_surface_3d,
    )

    a = np.linspace(-1, 1, 5)
    x, y = np.meshgrid(a, a)
    curves = {"resnet_tiny": Surface1D(a, 3 * a**2, 1 - a**2, 0.0, "NLL")}
    surface = Surface2D(a, a, x**2 + 2 * y**2, 0 * x, 5e-4, "NLL + L2 (wd=0.0005)")
    ax = plot_loss_curve_1d(curves, relative=True)
    assert "NLL" in ax.get_ylabel() and len(ax.lines) == 2  # the curve and the α = 0 line
    ax = plot_loss_contour(surface, name="vit_tiny")
    assert "L2" in ax.figure.axes[-1].get_ylabel()  # the colour bar
    ax = plot_loss_surface_3d(surface, name="vit_tiny", clip=1.5)
    assert "L2" in ax.get_zlabel()
    plt.close("all")


# ---------------------------------------------------------------------------------------------
# course_lib.analysis.curvature


def _cross_entropy(outputs: Tensor, targets: Tensor) -> Tensor:
    return torch.nn.functional.cross_entropy(outputs, targets)


def _small_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 3))


def _small_batches(n: int = 2, size: int = 8) -> list[tuple[Tensor, Tensor]]:
    g = torch.Generator().manual_seed(1)
    return [
        (torch.randn(size, 4, generator=g), torch.randint(0, 3, (size,), generator=g))
        for _ in range(n)
    ]


def test_l2_term_matches_the_slow_surface_and_curvature_matches_finite_differences() -> None:
    model, batches, loss = _small_net(), _small_batches(), _cross_entropy
    directions = filter_normalized_direction_pair(model, generator=torch.Generator().manual_seed(0))
    coords = np.linspace(-1.0, 1.0, 3)
    nll = loss_surface_2d(model, loss, batches, directions, coords, coords)
    slow = loss_surface_2d(model, loss, batches, directions, coords, coords, weight_decay=0.05)
    fast = with_l2_term(nll, l2_norm_grid(model, directions, coords, coords), 0.05)
    np.testing.assert_allclose(fast.loss, slow.loss, rtol=1e-5)
    assert fast.label == slow.label == "NLL + L2 (wd=0.05)"
    # dᵀHd is the second derivative of the 1-D curve at 0
    h = 1e-2
    curve = loss_surface_1d(model, loss, batches, directions[0], [-h, 0.0, h])
    finite = (curve.loss[0] - 2 * curve.loss[1] + curve.loss[2]) / h**2
    exact = directional_curvature(model, loss, batches, directions[0])
    assert exact == pytest.approx(finite, rel=2e-2, abs=1e-3)
    probes = more_directions(model, directions, 4, torch.Generator().manual_seed(1))
    assert len(probes) == 4 and probes[0] is directions[0] and probes[1] is directions[1]


def _grid_surface(loss: np.ndarray) -> Surface2D:
    coords = np.linspace(-1.0, 1.0, loss.shape[0])
    return Surface2D(coords, coords, loss, np.zeros_like(loss), 0.0, "NLL")


def test_surface_rise_reads_the_grid() -> None:
    xs = np.linspace(-1.0, 1.0, 3)
    loss = 1.0 + xs[None, :] ** 2 + 4 * xs[:, None] ** 2  # loss[i, j] at (xs[j], ys[i])
    surface = _grid_surface(loss)
    assert surface_rise(surface, 1.0, 0.0) == pytest.approx(1.0)
    assert surface_rise(surface, 0.0, -1.0) == pytest.approx(4.0)
    assert mean_unit_rise(surface) == pytest.approx(2.5)
    with pytest.raises(ValueError, match="not a grid coordinate"):
        surface_rise(surface, 0.5, 0.0)
    numbers = surface_numbers(
        ModelSurfaces(surface, [], np.ones((3, 3)), [2.0, -1.0, 3.0, -2.0], 0.0), 0.5
    )
    assert numbers.nll == pytest.approx(1.0) and numbers.nll_l2 == pytest.approx(1.0)
    assert numbers.mean == pytest.approx(2.5) and numbers.center == pytest.approx(1.0)
    assert numbers.curvature == pytest.approx(2.0) and numbers.negative_directions == 0.5
