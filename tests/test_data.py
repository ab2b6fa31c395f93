"""Tests for course_lib.data: the synthetic dataset's design, CIFAR/folder datasets, loaders."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.nn.functional as F
from PIL import Image

from course_lib.data import (
    CUES,
    DatasetInfo,
    SyntheticConfig,
    dataset_labels,
    get_dataset,
    list_datasets,
    make_loaders,
    make_synthetic,
    mix_transform,
    radial_power_spectrum,
    subset,
    synthetic_components,
    synthetic_examples,
    synthetic_prototypes,
)
from course_lib.data.transforms import image_transform
from tests.fake_cifar import write_cifar

SMALL = SyntheticConfig(num_classes=4, image_size=16)

# --------------------------------------------------------------------------------------------
# Synthetic data


def test_generates_ten_thousand_images_balanced_in_range() -> None:
    start = time.perf_counter()
    images, labels = make_synthetic(10_000).tensors
    print(f"10,000 synthetic 32x32 images in {time.perf_counter() - start:.2f} s")
    assert images.shape == (10_000, 3, 32, 32) and images.dtype == torch.float32
    assert labels.dtype == torch.int64
    assert images.min() >= 0.0 and images.max() <= 1.0
    assert torch.bincount(labels).tolist() == [1000] * 10
    assert ((images == 0) | (images == 1)).float().mean() < 0.02  # clipping is rare


def test_labels_balanced_when_not_divisible() -> None:
    counts = torch.bincount(make_synthetic(103, config=SMALL).tensors[1], minlength=4)
    assert counts.max() - counts.min() <= 1 and counts.sum() == 103


def test_same_seed_same_images_other_seed_or_split_differs() -> None:
    a = make_synthetic(64, config=SMALL).tensors
    b = make_synthetic(64, config=SMALL).tensors
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    other_seed = make_synthetic(64, config=SyntheticConfig(num_classes=4, image_size=16, seed=1))
    other_split = make_synthetic(64, config=SMALL, split="test")
    assert not torch.allclose(a[0], other_seed.tensors[0])
    assert not torch.allclose(a[0], other_split.tensors[0])


def test_any_image_size_and_class_count() -> None:
    config = SyntheticConfig(num_classes=100, image_size=64)
    images, labels = make_synthetic(200, config=config).tensors
    assert images.shape == (200, 3, 64, 64)
    assert labels.max() == 99
    examples = synthetic_examples(SMALL, per_class=3)
    assert examples.shape == (4, 3, 3, 16, 16)
    assert synthetic_prototypes(SMALL, cues="low").shape == (4, 3, 16, 16)


@pytest.mark.parametrize("exponent", [1.0, 0.5])
def test_background_has_power_law_spectrum(exponent: float) -> None:
    config = SyntheticConfig(image_size=32, spectral_exponent=exponent)
    background = synthetic_components(256, config=config).background
    freqs, power = radial_power_spectrum(background)
    slope = np.polyfit(np.log(freqs.numpy()), np.log(power.numpy()), 1)[0]
    assert slope == pytest.approx(-2 * exponent, abs=0.15)  # power ∝ 1/f^(2α)


def test_background_std_and_colour_correlation() -> None:
    background = synthetic_components(256).background
    assert background.std(dim=(1, 2, 3)).mean() == pytest.approx(0.15, rel=0.01)
    channels = background.transpose(0, 1).reshape(3, -1)
    correlation = torch.corrcoef(channels)
    assert correlation[0, 1] == pytest.approx(0.8, abs=0.1)


def _power_fraction(images: torch.Tensor, low: float, high: float) -> float:
    freqs, power = radial_power_spectrum(images)
    band = (freqs >= low) & (freqs <= high)
    return (power[band].sum() / power.sum()).item()


def test_low_cue_is_low_frequency_high_cue_is_high_frequency() -> None:
    parts = synthetic_components(256)
    assert _power_fraction(parts.low, 0.0, 0.2) > 0.95  # frequencies in units of π
    assert _power_fraction(parts.high, 0.5, 1.0) > 0.95


def test_cue_removal_sets_share_everything_else() -> None:
    parts = synthetic_components(128, config=SMALL)
    sets = {cues: make_synthetic(128, config=SMALL, cues=cues).tensors for cues in CUES}
    for _, labels in sets.values():
        assert torch.equal(labels, parts.labels)
    assert torch.allclose(sets["none"][0], (0.5 + parts.background).clamp(0, 1))
    expected = {
        "low": 0.5 + parts.background + parts.low,
        "high": 0.5 + parts.background + parts.high,
        "both": 0.5 + parts.background + parts.low + parts.high,
    }
    for cues, unclipped in expected.items():
        assert torch.allclose(sets[cues][0], unclipped.clamp(0, 1), atol=1e-6)
    with pytest.raises(ValueError, match="cues"):
        make_synthetic(8, cues="shape")  # type: ignore[arg-type]


def _nearest_centroid_accuracy(features, cues: str, flip: bool = False) -> float:
    """Accuracy of a nearest-class-mean classifier on the given features (train → test split)."""
    train_x, train_y = make_synthetic(600, cues=cues).tensors
    test_x, test_y = make_synthetic(300, split="test", cues=cues).tensors
    if flip:
        test_x = test_x.flip(-1)
    train_f, test_f = features(train_x), features(test_x)
    centroids = torch.stack([train_f[train_y == c].mean(0) for c in range(10)])
    return (torch.cdist(test_f, centroids).argmin(1) == test_y).float().mean().item()


def _texture_features(images: torch.Tensor) -> torch.Tensor:
    """Fourier amplitudes above 0.4π: phase-free, blind to the low cue."""
    amplitude = torch.fft.fft2(images.mean(1)).abs()
    f = 2 * torch.fft.fftfreq(images.shape[-1]).view(-1, 1)  # units of π
    return amplitude[:, (f**2 + f.T**2).sqrt() > 0.4]


def _layout_features(images: torch.Tensor) -> torch.Tensor:
    return F.avg_pool2d(images, 8).flatten(1)  # 4x4 colour thumbnail: blind to the texture


def test_each_cue_alone_identifies_the_class() -> None:
    assert _nearest_centroid_accuracy(_texture_features, "high") > 0.9
    assert _nearest_centroid_accuracy(_layout_features, "low") > 0.7
    assert _nearest_centroid_accuracy(_texture_features, "low") < 0.25
    assert _nearest_centroid_accuracy(_layout_features, "high") < 0.25
    assert _nearest_centroid_accuracy(_layout_features, "none") < 0.25


def test_horizontal_flip_keeps_the_texture_class() -> None:
    # Each class's texture is a plaid at ±θ, so the flip augmentation cannot turn it into another.
    assert _nearest_centroid_accuracy(_texture_features, "high", flip=True) > 0.9


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="num_classes"):
        SyntheticConfig(num_classes=1)
    with pytest.raises(ValueError, match="Nyquist"):
        SyntheticConfig(texture_frequency=(0.6, 1.2))
    with pytest.raises(ValueError, match="split"):
        make_synthetic(8, split="val")  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# CIFAR files written by the test (torchvision's MD5 check is off with verify=False)


@pytest.mark.parametrize(
    ("name", "num_classes", "train_size"), [("cifar10", 10, 200), ("cifar100", 100, 100)]
)
def test_cifar_loaders_on_small_files(
    tmp_path: Path, name: str, num_classes: int, train_size: int
) -> None:
    write_cifar(tmp_path, name, per_split=train_size // (5 if name == "cifar10" else 1))
    train, test, info = make_loaders(
        name, batch_size=16, root=tmp_path, verify=False, num_workers=0, augment="strong"
    )
    assert info.num_classes == num_classes and info.image_size == 32
    assert len(info.classes) == num_classes
    assert len(train.dataset) == train_size
    images, labels = next(iter(train))
    assert images.shape == (16, 3, 32, 32) and images.dtype == torch.float32
    assert labels.dtype == torch.int64 and labels.max() < num_classes
    test_images, _ = next(iter(test))
    assert test_images.shape[1:] == (3, 32, 32)


def test_cifar_resized_for_larger_image_size(tmp_path: Path) -> None:
    write_cifar(tmp_path, "cifar10")
    dataset, info = get_dataset("cifar10", train=False, root=tmp_path, verify=False, image_size=64)
    assert dataset[0][0].shape == (3, 64, 64) and info.image_size == 64


def test_cifar_md5_mismatch_says_what_to_do(tmp_path: Path) -> None:
    write_cifar(tmp_path, "cifar10")
    with pytest.raises(RuntimeError, match="verify=False"):
        get_dataset("cifar10", train=True, root=tmp_path)


def test_missing_cifar_names_the_folder(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="cifar-10-batches-py") as info:
        get_dataset("cifar10", train=True, root=tmp_path)
    assert str(tmp_path) in str(info.value) and "download=True" in str(info.value)


def test_offline_download_fails_clearly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def offline(*args: object, **kwargs: object) -> None:
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(RuntimeError, match="Downloading cifar100 failed") as info:
        get_dataset("cifar100", train=True, root=tmp_path, download=True)
    assert "cifar-100-python" in str(info.value) and str(tmp_path) in str(info.value)


# --------------------------------------------------------------------------------------------
# Image folders


def _write_pngs(folder: Path, count: int, color: tuple[int, int, int]) -> None:
    """``count`` noisy 40x30 PNGs around ``color``."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(len(str(folder)))
    for i in range(count):
        pixels = np.clip(np.array(color) + rng.normal(0, 20, (30, 40, 3)), 0, 255)
        Image.fromarray(pixels.astype(np.uint8)).save(folder / f"{i}.png")


def test_single_folder_is_split_80_20_per_class(tmp_path: Path) -> None:
    _write_pngs(tmp_path / "red", 5, (255, 0, 0))
    _write_pngs(tmp_path / "blue", 5, (0, 0, 255))
    train, info = get_dataset(f"folder:{tmp_path}", train=True, augment="basic")
    test, _ = get_dataset(f"folder:{tmp_path}", train=False)
    assert info.num_classes == 2 and info.classes == ("blue", "red")
    assert len(train) == 8 and len(test) == 2
    assert torch.bincount(dataset_labels(test)).tolist() == [1, 1]
    image, label = train[0]
    assert image.shape == (3, 32, 32) and image.dtype == torch.float32


def test_train_test_folders(tmp_path: Path) -> None:
    for split, count in (("train", 3), ("test", 2)):
        _write_pngs(tmp_path / split / "a", count, (10, 200, 10))
        _write_pngs(tmp_path / split / "b", count, (200, 10, 10))
    train, info = get_dataset(f"folder:{tmp_path}", train=True, image_size=24)
    test, _ = get_dataset(f"folder:{tmp_path}", train=False, image_size=24)
    assert (len(train), len(test)) == (6, 4)
    assert test[0][0].shape == (3, 24, 24) and info.image_size == 24


def test_empty_one_class_and_missing_folders_raise(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="empty"):
        get_dataset(f"folder:{tmp_path}", train=True)
    (tmp_path / "only").mkdir()
    with pytest.raises(ValueError, match="empty"):
        get_dataset(f"folder:{tmp_path}", train=True)  # a class folder without images
    _write_pngs(tmp_path / "only", 3, (0, 0, 0))
    with pytest.raises(ValueError, match="at least two"):
        get_dataset(f"folder:{tmp_path}", train=True)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        get_dataset(f"folder:{tmp_path / 'nowhere'}", train=True)


# --------------------------------------------------------------------------------------------
# Registry, subsets, loaders, augmentation


def test_unknown_name_lists_valid_names() -> None:
    with pytest.raises(ValueError, match="cifar10.*folder:PATH"):
        get_dataset("imagenet", train=True)
    assert "synthetic" in list_datasets()
    with pytest.raises(ValueError, match="synthetic"):
        get_dataset("cifar10", train=True, cues="low")


def test_synthetic_dataset_is_normalised() -> None:
    dataset, info = get_dataset("synthetic", train=True, n=1000)
    images = dataset.tensors[0]
    assert isinstance(info, DatasetInfo) and info.num_classes == 10 and info.channels == 3
    assert images.mean(dim=(0, 2, 3)).abs().max() < 0.05
    assert (images.std(dim=(0, 2, 3)) - 1).abs().max() < 0.05
    assert len(get_dataset("synthetic", train=False)[0]) == 2000


def test_synthetic_data_fixed_by_its_config_not_by_the_run_seed() -> None:
    a, _ = get_dataset("synthetic", train=False, n=50, cues="low", seed=0)
    b, _ = get_dataset("synthetic", train=False, n=50, cues="low", seed=7)
    assert torch.equal(a.tensors[0], b.tensors[0])
    c, info = get_dataset("synthetic", train=False, n=50, synthetic_config=SMALL, image_size=24)
    assert info.num_classes == 4 and c.tensors[0].shape == (50, 3, 24, 24)


def test_subset_balanced_deterministic_nested() -> None:
    dataset, _ = get_dataset("synthetic", train=True, n=1000)
    small = subset(dataset, 0.1, seed=3)
    assert torch.bincount(dataset_labels(small)).tolist() == [10] * 10
    assert small.indices == subset(dataset, 0.1, seed=3).indices
    assert small.indices != subset(dataset, 0.1, seed=4).indices
    assert set(small.indices) <= set(subset(dataset, 0.3, seed=3).indices)
    assert len(subset(dataset, 0.25, balanced=False)) == 250
    for bad in (0.0, -0.1, 1.5):
        with pytest.raises(ValueError, match="fraction"):
            subset(dataset, bad)


def _first_batch(**kwargs: object) -> tuple[torch.Tensor, torch.Tensor]:
    train, _, _ = make_loaders("synthetic", batch_size=32, n_train=200, n_test=50, **kwargs)
    return next(iter(train))


def test_loaders_deterministic_by_seed() -> None:
    a = _first_batch(seed=1, augment="none")
    b = _first_batch(seed=1, augment="none")
    c = _first_batch(seed=2, augment="none")
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[1], c[1])
    torch.manual_seed(0)
    d = _first_batch(seed=1, augment="basic")
    torch.manual_seed(0)
    e = _first_batch(seed=1, augment="basic")
    assert torch.equal(d[0], e[0])


def test_loader_fraction_and_test_order() -> None:
    train, test, info = make_loaders(
        "synthetic", batch_size=50, n_train=500, n_test=100, fraction=0.2, augment="none"
    )
    assert len(train.dataset) == 100
    assert torch.equal(torch.cat([y for _, y in test]), dataset_labels(test.dataset))
    assert train.num_workers == 0 and not train.pin_memory
    cuda_train, _, _ = make_loaders("synthetic", batch_size=8, n_train=40, device="cuda")
    assert cuda_train.pin_memory


@pytest.mark.parametrize("augment", ["none", "crop_reflect", "basic", "strong"])
def test_augmentations_keep_shapes(augment: str) -> None:
    dataset, _ = get_dataset("synthetic", train=True, n=20, augment=augment, image_size=64)
    image, label = dataset[0]
    assert image.shape == (3, 64, 64) and image.dtype == torch.float32
    assert isinstance(int(label), int)


@pytest.mark.parametrize(("augment", "mode"), [("crop", "constant"), ("crop_reflect", "reflect")])
def test_crops_shift_the_whole_image_and_fill_the_strip_as_named(augment: str, mode: str) -> None:
    torch.manual_seed(0)
    image = 0.2 + 0.6 * torch.rand(3, 16, 16)  # no pixel is black
    padded = torch.nn.functional.pad(image[None], (2, 2, 2, 2), mode=mode)[0]
    shifts = {(dy, dx): padded[:, dy : dy + 16, dx : dx + 16] for dy in range(5) for dx in range(5)}
    transform = image_transform(augment, 16, (0.0,) * 3, (1.0,) * 3, from_pil=False)
    seen = set()
    for _ in range(60):
        out = transform(image)
        match = [s for s, view in shifts.items() if torch.equal(out, view)]
        assert len(match) == 1, "every output is one shift of the padded image"
        seen.add(match[0])
        # the strip a shift uncovers is black with "crop", the image's own reflection otherwise
        assert bool((out == 0).any()) == (augment == "crop" and match[0] != (2, 2))
    assert len(seen) > 5  # the shift is random


def test_mix_transform_gives_soft_labels() -> None:
    images, labels = torch.rand(8, 3, 32, 32), torch.randint(0, 10, (8,))
    mixed, soft = mix_transform(10)(images, labels)
    assert mixed.shape == images.shape and soft.shape == (8, 10)
    assert torch.allclose(soft.sum(1), torch.ones(8))
    with pytest.raises(ValueError):
        mix_transform(10, mixup_alpha=0.0, cutmix_alpha=0.0)


def test_distributed_samplers(tmp_path: Path) -> None:
    """A one-process group loads exactly what no group loads; the batch size is global."""
    plain, _, _ = make_loaders("synthetic", batch_size=16, n_train=64, n_test=32)
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'pg'}", rank=0, world_size=1)
    try:
        train, test, _ = make_loaders("synthetic", batch_size=16, n_train=64, n_test=32)
        assert sum(len(y) for _, y in train) == 64 and sum(len(y) for _, y in test) == 32
        train.generator.manual_seed(0)
        plain.generator.manual_seed(0)
        for (x, y), (px, py) in zip(train, plain, strict=True):
            assert torch.equal(y, py) and torch.equal(x, px)
    finally:
        dist.destroy_process_group()


def test_rank_shards_together_make_the_one_process_batches() -> None:
    from course_lib.data import RankShard

    order = torch.randperm(20, generator=torch.Generator().manual_seed(0)).tolist()
    shards = [list(RankShard(order, rank, 2)) for rank in (0, 1)]
    for step in range(0, 10, 2):  # global batch 4 = 2 ranks x 2
        together = sorted(shards[0][step : step + 2] + shards[1][step : step + 2])
        assert together == sorted(order[2 * step : 2 * step + 4])
    padded = [list(RankShard(order[:7], rank, 2)) for rank in (0, 1)]
    assert [len(p) for p in padded] == [4, 4]  # equal counts, so no rank waits for the other
    assert sorted(set(padded[0] + padded[1])) == sorted(order[:7])


def test_random_augmentation_depends_on_the_sample_not_on_the_order() -> None:
    dataset, _ = get_dataset("synthetic", train=True, n=8, augment="strong")
    torch.manual_seed(3)
    forwards = [dataset[i][0] for i in range(8)]
    torch.manual_seed(3)
    backwards = [dataset[i][0] for i in reversed(range(8))][::-1]
    assert all(torch.equal(a, b) for a, b in zip(forwards, backwards, strict=True))
    torch.manual_seed(4)  # another epoch: other augmentations
    assert not torch.equal(dataset[0][0], forwards[0])


def test_global_batch_must_divide_among_the_processes(tmp_path: Path, monkeypatch) -> None:
    from course_lib.data import loaders

    monkeypatch.setattr(loaders, "_rank_and_world", lambda: (0, 3))
    with pytest.raises(ValueError, match="global batch.*multiple of the 3 processes"):
        make_loaders("synthetic", batch_size=16, n_train=64, n_test=32)
