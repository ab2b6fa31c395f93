"""Bad input to the analyses gives one clear error: NaN/inf images, no weights, no data.

Also the shared reading of data (:mod:`course_lib.analysis.batches`): one batch, a list of
batches and a DataLoader mean the same to every analysis. Tiny models only: runs in seconds.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, TensorDataset

from course_lib.analysis.batches import (
    is_single_batch,
    iter_batches,
    load_batch,
    require_finite,
    to_device,
)
from course_lib.analysis.features import collect_feature_maps
from course_lib.analysis.fourier import fourier_profile
from course_lib.analysis.hessian import (
    exact_hessian,
    hessian_trace,
    hvp,
    spectral_density,
    top_eigenvalues,
)
from course_lib.analysis.landscape import (
    filter_normalized_direction,
    filter_normalized_direction_pair,
    loss_surface_1d,
    loss_surface_2d,
)
from course_lib.analysis.lesion import lesion_study
from course_lib.analysis.robustness import noise_sweep
from course_lib.analysis.spectra import max_eigenvalue_spectrum
from course_lib.analysis.variance import variance_profile
from course_lib.models import create_model
from tests.tiny_models import TinyConvNet, TinyViT


def _batch(n: int = 4, seed: int = 0) -> tuple[Tensor, Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, 8, 8, generator=g), torch.randint(0, 2, (n,), generator=g)


def _poisoned(value: float = math.nan, count: int = 1) -> tuple[Tensor, Tensor]:
    inputs, targets = _batch()
    inputs.view(-1)[:count] = value
    return inputs, targets


def _model() -> nn.Module:
    torch.manual_seed(0)
    return TinyConvNet()


class ParameterFree(nn.Module):
    """Logits from the image means: a model without any weights."""

    def forward(self, x: Tensor) -> Tensor:
        m = x.mean(dim=(1, 2, 3))
        return torch.stack([-m, m], dim=1)


# Each analysis as ``run(model, data)``; ``data`` is one batch or (where it takes several) any
# of the forms; single-batch functions get one batch.
ANALYSES: dict[str, Callable[[nn.Module, Any], object]] = {
    "top_eigenvalues": lambda m, d: top_eigenvalues(m, F.cross_entropy, d),
    "max_eigenvalue_spectrum": lambda m, d: max_eigenvalue_spectrum(m, F.cross_entropy, d, tol=0.1),
    "hessian_trace": lambda m, d: hessian_trace(m, F.cross_entropy, d, n_samples=2),
    "spectral_density": lambda m, d: spectral_density(m, F.cross_entropy, d, n_iter=2, n_runs=1),
    "hvp": lambda m, d: hvp(
        m, F.cross_entropy, d, torch.zeros(sum(p.numel() for p in m.parameters()))
    ),
    "exact_hessian": lambda m, d: exact_hessian(m, F.cross_entropy, d, max_params=10**6),
    "loss_surface_1d": lambda m, d: loss_surface_1d(
        m, F.cross_entropy, d, filter_normalized_direction(m), [0.0, 1.0]
    ),
    "loss_surface_2d": lambda m, d: loss_surface_2d(
        m, F.cross_entropy, d, filter_normalized_direction_pair(m), [0.0], [0.0, 1.0]
    ),
    "noise_sweep": lambda m, d: noise_sweep(m, d, centers=[0.5], magnitudes=[0.1]),
    "fourier_profile": lambda m, d: fourier_profile(m, d[0]),
    "variance_profile": lambda m, d: variance_profile(m, d[0]),
    "collect_feature_maps": lambda m, d: collect_feature_maps(m, d[0]),
}
HESSIAN = ["top_eigenvalues", "max_eigenvalue_spectrum", "hessian_trace", "spectral_density",
           "hvp", "exact_hessian"]  # fmt: skip
LANDSCAPE = ["loss_surface_1d", "loss_surface_2d"]
MULTI_BATCH = ["max_eigenvalue_spectrum", *LANDSCAPE, "noise_sweep"]


# --- NaN and inf in the inputs -------------------------------------------------------------------


@pytest.mark.parametrize("name", list(ANALYSES))
@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_inputs_raise_naming_the_function_and_the_fix(name: str, value: float) -> None:
    model = _model()
    before = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(ValueError, match="NaN or inf") as error:
        ANALYSES[name](model, _poisoned(value, count=3))
    message = str(error.value)
    assert message.startswith(name) and "(3 values)" in message and "nan_to_num" in message
    for p, saved in zip(model.parameters(), before, strict=True):
        assert torch.equal(p, saved)  # the landscape restored (never moved) the weights


@pytest.mark.parametrize("name", MULTI_BATCH)
@pytest.mark.parametrize("form", ["list", "loader"])
def test_non_finite_batch_is_found_in_lists_and_loaders(name: str, form: str) -> None:
    inputs, targets = _batch(8)
    inputs[5, 0, 0, 0] = math.nan  # second batch of 4
    data = (
        [(inputs[:4], targets[:4]), (inputs[4:], targets[4:])]
        if form == "list"
        else DataLoader(TensorDataset(inputs, targets), batch_size=4)
    )
    with pytest.raises(
        ValueError, match=r"\(batch 1\): the inputs contain NaN or inf \(1 values\)"
    ):
        ANALYSES[name](_model(), data)


def test_lesion_study_refuses_non_finite_images() -> None:
    model = create_model("resnet_tiny", num_classes=2)
    with pytest.raises(ValueError, match="lesion_study.*NaN or inf"):
        lesion_study(model, _poisoned())


def test_integer_inputs_and_non_tensors_are_not_checked() -> None:
    require_finite(torch.tensor([1, 2, 3]), "test")
    require_finite({"ids": torch.arange(3), "mask": None, "x": torch.zeros(2)}, "test")
    with pytest.raises(ValueError, match=r"test: .*NaN or inf \(2 values\)"):
        require_finite((torch.zeros(2), {"x": torch.tensor([math.nan, math.inf])}), "test")


class _CleanThenPoisoned:
    """An iterable that yields a clean batch on its first pass and a NaN batch afterwards."""

    def __init__(self) -> None:
        self.passes = 0

    def __iter__(self):
        self.passes += 1
        yield _batch() if self.passes == 1 else _poisoned()


def test_landscape_checks_a_cpu_loader_on_every_grid_point() -> None:
    model = _model()
    before = [p.detach().clone() for p in model.parameters()]
    direction = filter_normalized_direction(model)
    with pytest.raises(ValueError, match=r"^loss_surface_1d \(batch 0\): .*NaN or inf"):
        loss_surface_1d(model, F.cross_entropy, _CleanThenPoisoned(), direction, [0.0, 1.0])
    for p, saved in zip(model.parameters(), before, strict=True):
        assert torch.equal(p, saved)


def test_sync_false_checks_only_cpu_tensors() -> None:
    on_device = torch.empty(3, device="meta")  # stands in for an accelerator: never read back
    require_finite({"cpu": torch.zeros(2), "device": on_device}, "test", sync=False)
    with pytest.raises(ValueError, match="NaN or inf"):
        require_finite((torch.tensor([math.nan]), on_device), "test", sync=False)


# --- Models without (trainable) weights ----------------------------------------------------------


@pytest.mark.parametrize("name", HESSIAN)
@pytest.mark.parametrize("frozen", [True, False], ids=["frozen", "parameter-free"])
def test_hessian_needs_trainable_parameters(name: str, frozen: bool) -> None:
    model = _model().requires_grad_(False) if frozen else ParameterFree()
    why = "requires_grad=False" if frozen else "no parameters at all"
    with pytest.raises(ValueError, match=rf"^{name}: .* has no trainable parameters .*{why}") as e:
        ANALYSES[name](model, _batch())
    assert "model.requires_grad_(True)" in str(e.value)


@pytest.mark.parametrize("name", LANDSCAPE)
def test_landscape_needs_parameters(name: str) -> None:
    with pytest.raises(ValueError, match=rf"^{name}: ParameterFree has no parameters"):
        ANALYSES[name](ParameterFree(), _batch())


def test_landscape_of_a_frozen_model_is_that_of_the_unfrozen_one() -> None:
    # The surface moves every parameter and takes no gradient: frozen weights are no obstacle.
    model, batch = _model(), _batch()
    direction = filter_normalized_direction(model, generator=torch.Generator().manual_seed(0))
    trainable = loss_surface_1d(model, F.cross_entropy, batch, direction, [0.0, 0.5])
    frozen = loss_surface_1d(
        model.requires_grad_(False), F.cross_entropy, batch, direction, [0.0, 0.5]
    )
    np.testing.assert_array_equal(frozen.loss, trainable.loss)


# --- No data -------------------------------------------------------------------------------------


def _empty_loader() -> DataLoader:
    return DataLoader(TensorDataset(torch.zeros(0, 3, 8, 8), torch.zeros(0, dtype=torch.long)))


@pytest.mark.parametrize("name", [*MULTI_BATCH, "lesion_study"])
@pytest.mark.parametrize("form", ["list", "loader", "iterator"])
def test_empty_data_raises(name: str, form: str) -> None:
    data = {"list": [], "loader": _empty_loader(), "iterator": iter([])}[form]
    if name == "lesion_study":
        model = create_model("resnet_tiny", num_classes=2)
        run = lambda: lesion_study(model, data)  # noqa: E731
    else:
        run = lambda: ANALYSES[name](_model(), data)  # noqa: E731
    with pytest.raises(ValueError, match=rf"^{name} got no batches"):
        run()


def test_max_batches_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="max_batches must be None or at least 1, got 0"):
        noise_sweep(_model(), _batch(), [0.5], [0.1], max_batches=0)


# --- One batch, a list of batches or a DataLoader: the same data ---------------------------------


def test_one_batch_list_and_loader_mean_the_same() -> None:
    inputs, targets = _batch(8)
    ids = torch.arange(8)
    forms = {
        "pair": (inputs[:4], targets[:4]),
        "triple": (inputs[:4], targets[:4], ids[:4]),  # extra items are dropped
        "list": [(inputs[:4], targets[:4]), (inputs[4:], targets[4:])],
        "loader": DataLoader(TensorDataset(inputs, targets, ids), batch_size=4),
    }
    read = {k: list(iter_batches(d, "cpu", max_batches=1)) for k, d in forms.items()}
    for batches in read.values():
        assert len(batches) == 1
        assert torch.equal(batches[0][0], inputs[:4]) and torch.equal(batches[0][1], targets[:4])
    assert len(list(iter_batches(forms["loader"]))) == 2
    assert is_single_batch(forms["triple"]) and not is_single_batch(forms["list"])


def test_max_eigenvalue_spectrum_takes_one_batch_as_one_row() -> None:
    model, batch = _model(), _batch()
    g = torch.Generator().manual_seed(0)
    spectrum = max_eigenvalue_spectrum(model, F.cross_entropy, batch, tol=0.1, generator=g)
    g = torch.Generator().manual_seed(0)
    alone = top_eigenvalues(model, F.cross_entropy, batch, tol=0.1, generator=g).eigenvalues
    assert spectrum.shape == (1, 1)
    torch.testing.assert_close(spectrum[0], alone)


def test_hessian_batch_may_carry_extra_items() -> None:
    model, (inputs, targets) = _model(), _batch()
    v = torch.randn(sum(p.numel() for p in model.parameters()))
    plain = hvp(model, F.cross_entropy, (inputs, targets), v)
    torch.testing.assert_close(hvp(model, F.cross_entropy, (inputs, targets, "id"), v), plain)


@pytest.mark.parametrize(
    "data, message",
    [
        (torch.zeros(4, 3, 8, 8), "got a tensor of shape"),
        ({"image": torch.zeros(1), "label": torch.zeros(1)}, "got a dict"),
        (42, "got a int"),
        ([torch.zeros(1)], "got a Tensor|got a tensor"),
    ],
)
def test_malformed_data_is_explained(data: Any, message: str) -> None:
    with pytest.raises(ValueError, match=rf"^noise_sweep.*({message}).*\(inputs, targets\)"):
        noise_sweep(_model(), data, [0.5], [0.1])


def test_single_batch_functions_refuse_a_list_of_batches() -> None:
    batches = [_batch(seed=0), _batch(seed=1)]
    with pytest.raises(ValueError, match="top_eigenvalues takes one .* got a sequence of 2"):
        top_eigenvalues(_model(), F.cross_entropy, batches)
    with pytest.raises(ValueError, match="hessian_trace: expected a batch"):
        hessian_trace(_model(), F.cross_entropy, [_batch()])


class Pair(NamedTuple):
    x: Tensor
    y: Tensor


def test_to_device_keeps_structure() -> None:
    moved = to_device({"a": [torch.zeros(1), (torch.ones(1), "s")], "p": Pair(*_batch())}, "cpu")
    assert isinstance(moved["a"], list) and isinstance(moved["a"][1], tuple)
    assert moved["a"][1][1] == "s" and isinstance(moved["p"], Pair)
    inputs, targets = load_batch(Pair(*_batch()), "cpu", "test")
    assert torch.equal(inputs, _batch()[0]) and torch.equal(targets, _batch()[1])


def test_feature_maps_of_a_token_model_check_their_input() -> None:
    x = torch.randn(2, 3, 8, 8)
    assert len(fourier_profile(TinyViT(), x).names) == 5
    x[1, 2, 3, 4] = math.inf
    with pytest.raises(ValueError, match=r"^fourier_profile: the inputs contain NaN or inf"):
        fourier_profile(TinyViT(), x)
