"""Chapter 03: are MSAs low-pass and Convs high-pass? (claims C5, C6, C7 of Park & Kim 2022).

Three cached steps analyse the profile's trained models (shared with the other chapters through
:func:`~course_lib.experiments.trained_model`):

- :func:`feature_analysis` — one test batch through every model, one hooked forward pass each:
  the Δ log amplitude of every feature map (C5, paper Fig. 2a and 8) and its variance (C7, Fig. 9).
- :func:`noise_robustness` — accuracy under band-limited noise for every band and magnitude of
  the profile (C6, Fig. 2b).
- :func:`cue_reliance` — accuracy on the synthetic cue-removal test sets: which cue (the
  low-frequency layout, "shape", or the high-frequency texture) each model uses, the reason
  behind C6 (Geirhos et al. 2019's shape vs. texture bias, measured).

The pure functions below them (:func:`high_frequency_changes`, :func:`variance_changes`,
:func:`mean_change_by_kind`, :func:`paper_comparison`) turn the profiles into per-block changes
and the "paper vs. this run" rows; they take no model and are tested on known answers.
:func:`comparisons` builds those rows from the cached steps (for the chapter and for the
course's closing summary in chapter 04).

Resolution. Feature maps must be at least 8×8 to show a spectrum. The paper analyses 224×224
ImageNet models (a 14×14 ViT grid); the laptop profile analyses the shared 32×32 models (a
patch-4 ViT gives an 8×8 token grid: five points on the diagonal, 0, ¼π, ½π, ¾π, π), because
models trained at 64×64 would cost three to four times the shared training. ``frequency.image_size``
in :mod:`course_lib.config` chooses the size; when it equals ``image_size`` the shared models
are reused.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, TensorDataset

from course_lib.analysis.features import collect_feature_maps, eval_mode, model_device
from course_lib.analysis.fourier import FourierProfile
from course_lib.analysis.robustness import NoiseSweep, noise_sweep
from course_lib.analysis.variance import VarianceProfile
from course_lib.cache import cached_result, entry_dir, key_matches
from course_lib.chapters import precompute_step
from course_lib.config import Profile, get_profile
from course_lib.data import DatasetInfo, get_dataset
from course_lib.experiments import TrainedModel, trained_model
from course_lib.io import CheckpointError, load_checkpoint
from course_lib.report import Comparison, verdict_from

FAMILIES: tuple[str, ...] = ("resnet", "vit", "local_vit", "alternet")
"""Model families whose feature maps the chapter analyses (C5, C7) and whose cue use it tests."""

NOISE_FAMILIES: tuple[str, ...] = ("resnet", "vit")
"""Families in the noise sweep (C6): the paper's contrast; each costs one pass per band and
magnitude."""

CUE_SETS: tuple[str, ...] = ("both", "low", "high", "none")
"""Synthetic test sets: both cues, the low-frequency layout only, the texture only, neither."""

KIND_LABELS: dict[str, str] = {"msa": "MSA", "mlp": "MLP", "conv": "Conv"}
DOWNSAMPLING = "Conv ↓2"  # category of a block whose output is smaller than its input


def _profile(profile: str | Profile | None) -> Profile:
    return profile if isinstance(profile, Profile) else get_profile(profile)


# ---------------------------------------------------------------------------------------------
# Models and data


def chapter_models(
    profile: str | Profile | None = None, families: Sequence[str] = FAMILIES
) -> dict[str, TrainedModel]:
    """The profile's trained models at ``frequency.image_size``, keyed by registered model name.

    Trained once and cached on disk; with ``frequency.image_size == image_size`` these are the very
    runs that chapters 01, 02 and 04 use. Loaded runs are also kept in memory for the session
    (loading one rebuilds the profile's data, seconds on a laptop), so the steps and the widget
    share the same model objects: do not train them further in place.
    """
    prof = _profile(profile)
    models = {}
    for family in families:
        memo_key = (repr(prof), family)
        if memo_key not in _LOADED or not _LOADED[memo_key].folder.exists():
            _LOADED[memo_key] = trained_model(
                family, profile=prof, image_size=prof.frequency.image_size
            )
        run = _LOADED[memo_key]
        models[run.name] = run
    return models


_LOADED: dict[tuple[str, str], TrainedModel] = {}


def load_test_images(
    profile: str | Profile | None = None, *, cues: str = "both", n: int | None = None
) -> tuple[Tensor, Tensor, DatasetInfo]:
    """Normalised test images ``(N, 3, H, W)``, labels ``(N,)`` and the dataset's info.

    ``n`` defaults to the profile's ``analysis_test_images`` (else its whole test set).
    ``cues`` other than ``"both"`` need the synthetic data (cue-removal sets): for the same ``n``
    they share every image's background, jitter and label with the full set.
    """
    prof = _profile(profile)
    count = n or prof.analysis_test_images or prof.n_test
    dataset, info = get_dataset(
        prof.data, train=False, n=count, image_size=prof.frequency.image_size, cues=cues,
        synthetic_config=prof.synthetic,
    )  # fmt: skip
    if isinstance(dataset, TensorDataset):
        images, labels = dataset.tensors
    else:  # files (CIFAR, folders): stack once
        batches = list(DataLoader(dataset, batch_size=512))
        images = torch.cat([images for images, _ in batches])
        labels = torch.cat([labels for _, labels in batches])
    return images, labels.long(), info


# ---------------------------------------------------------------------------------------------
# C5 + C7: one hooked forward pass, two profiles


@dataclass
class FeatureAnalysis:
    """Fourier (C5) and variance (C7) profiles of one model, from the same feature maps."""

    fourier: FourierProfile
    variance: VarianceProfile

    def to_dict(self) -> dict:
        return {
            "fourier": dataclasses.asdict(self.fourier),
            "variance": dataclasses.asdict(self.variance),
        }

    @classmethod
    def from_dict(cls, d: Mapping) -> FeatureAnalysis:
        return cls(FourierProfile(**d["fourier"]), VarianceProfile(**d["variance"]))


def analyse_feature_maps(model: nn.Module, images: Tensor) -> FeatureAnalysis:
    """Both profiles of ``model`` for one batch, from one forward pass (hooks, eval, no grad)."""
    maps = collect_feature_maps(model, images)
    prefix = getattr(model, "num_prefix_tokens", None)
    return FeatureAnalysis(
        FourierProfile.from_feature_maps(maps, prefix),
        VarianceProfile.from_feature_maps(maps, prefix),
    )


@precompute_step
def feature_analysis(profile: str | Profile | None = None) -> dict[str, FeatureAnalysis]:
    """C5 and C7 for every model of :data:`FAMILIES` on one test batch (paper Fig. 2a, 8, 9).

    The batch: the first ``train.batch_size`` test images (the paper uses one test batch).
    Cached; the result records the seconds the analysis took (``"seconds"`` key of the entry).
    """
    prof = _profile(profile)
    models = chapter_models(prof)

    def compute() -> dict:
        start = time.perf_counter()
        images, _, _ = load_test_images(prof)
        batch = images[: prof.train.batch_size]
        result = {
            name: analyse_feature_maps(run.model, batch).to_dict() for name, run in models.items()
        }
        return {"models": result, "seconds": time.perf_counter() - start}

    entry = cached_result("ch03_features", _key(prof, models, "features"), compute)
    return {name: FeatureAnalysis.from_dict(d) for name, d in entry["models"].items()}


@dataclass(frozen=True)
class BlockChange:
    """What one block did to a feature-map statistic: its output's value minus its input's."""

    model: str  # model name
    name: str  # module name of the block
    kind: str  # "msa", "mlp" or "conv"
    depth: float  # normalized depth of the block's output
    downsamples: bool  # the output map is smaller than the input map
    before: float  # statistic of the block's input (the previous feature map)
    after: float  # statistic of the block's output
    change: float  # after - before (Fourier) or relative change in % (variance)

    @property
    def category(self) -> str:
        """``"MSA"``, ``"MLP"``, ``"Conv"`` or ``"Conv ↓2"`` (a downsampling block)."""
        return DOWNSAMPLING if self.downsamples else KIND_LABELS.get(self.kind, self.kind)


def high_frequency_changes(
    profile: FourierProfile, model: str = "model", reference: str = "dc"
) -> list[BlockChange]:
    """Per block: Δ log amplitude at its output's highest frequency minus its input's there.

    Input and output are compared at the same *physical* frequency: a block that halves the
    resolution maps frequency ½π of its input to π of its output, so its output's last point is
    compared with its input's Δ at ½π (interpolated on the input's curve), not with the input's
    last point. Without this, subsampling alone would seem to raise high frequencies (the
    spectrum falls with frequency). Negative change: the block removed high frequencies relative
    to the reference (low-pass); positive: it amplified them (high-pass). The stem / patch
    embedding has no feature map before it and is skipped.

    ``reference="dc"`` is the paper's Δ (relative to the mean over positions). A block that
    adds a large mean to its map (a ReLU branch, attention that averages all tokens) lowers Δ at
    *every* frequency at once. ``reference="lowest"`` measures the **tilt** instead: the highest
    frequency relative to the lowest non-zero one of the output map (the input read at the same
    two physical frequencies), which a change of the mean does not move.
    """
    if reference not in ("dc", "lowest"):
        raise ValueError(f"reference must be 'dc' or 'lowest', not {reference!r}")
    changes = []
    for i in range(1, len(profile.kinds)):
        if profile.kinds[i] in ("stem", "embed"):
            continue
        size_in, size_out = profile.sizes[i - 1], profile.sizes[i]
        scale = size_out / size_in  # output frequency (π of the output) → π of the input map
        f_out, d_out = profile.frequencies[i].numpy(), profile.delta[i].numpy()
        f_in, d_in = profile.frequencies[i - 1].numpy(), profile.delta[i - 1].numpy()
        before = float(np.interp(f_out[-1] * scale, f_in, d_in))
        after = float(d_out[-1])
        if reference == "lowest":
            before -= float(np.interp(f_out[1] * scale, f_in, d_in))
            after -= float(d_out[1])
        changes.append(
            _change(profile, i, model, size_out < size_in, before, after, after - before)
        )
    return changes


def variance_changes(
    profile: VarianceProfile, sizes: Sequence[int] | None = None, model: str = "model"
) -> list[BlockChange]:
    """Per block: relative change of the feature-map variance, ``100 (after / before - 1)`` %.

    ``sizes`` (the spatial side of every map, e.g. ``FourierProfile.sizes``) marks the blocks
    that downsample. The stem / patch embedding is skipped.
    """
    changes = []
    values = profile.values.tolist()
    for i in range(1, len(profile.kinds)):
        if profile.kinds[i] in ("stem", "embed"):
            continue
        before, after = values[i - 1], values[i]
        down = sizes is not None and sizes[i] < sizes[i - 1]
        changes.append(_change(profile, i, model, down, before, after, 100 * (after / before - 1)))
    return changes


def _change(profile, i: int, model: str, down: bool, before: float, after: float, change: float):
    return BlockChange(
        model=model,
        name=profile.names[i],
        kind=profile.kinds[i],
        depth=float(profile.depth[i]),
        downsamples=down,
        before=before,
        after=after,
        change=change,
    )


def mean_change_by_kind(changes: Sequence[BlockChange]) -> dict[str, float]:
    """Mean change per category (``"MSA"``, ``"MLP"``, ``"Conv"``, ``"Conv ↓2"``) present."""
    groups: dict[str, list[float]] = {}
    for c in changes:
        groups.setdefault(c.category, []).append(c.change)
    return {k: float(np.mean(v)) for k, v in groups.items()}


@dataclass
class BlockChanges:
    """Per-block changes of every analysed model (keyed by model name), three statistics."""

    fourier: dict[str, list[BlockChange]]  # Δ log amplitude at the top frequency (paper, C5)
    tilt: dict[str, list[BlockChange]]  # top frequency relative to the lowest non-zero one
    variance: dict[str, list[BlockChange]]  # relative change of the variance in % (C7)


def block_changes(analyses: Mapping[str, FeatureAnalysis]) -> BlockChanges:
    """:func:`high_frequency_changes` (both references) and :func:`variance_changes` per model."""
    items = analyses.items()
    return BlockChanges(
        fourier={n: high_frequency_changes(a.fourier, n) for n, a in items},
        tilt={n: high_frequency_changes(a.fourier, n, reference="lowest") for n, a in items},
        variance={n: variance_changes(a.variance, a.fourier.sizes, n) for n, a in items},
    )


# ---------------------------------------------------------------------------------------------
# C6: band-limited noise, and the cues that explain it


@precompute_step
def noise_robustness(profile: str | Profile | None = None) -> dict[str, NoiseSweep]:
    """C6: accuracy under band-limited noise, every profile band × magnitude (paper Fig. 2b).

    Models of :data:`NOISE_FAMILIES`, ``analysis_test_images`` test images, band width 0.1π,
    RMS magnitudes in normalised pixel units (the data are standardised per channel, so 1.0 is
    noise as strong as the images' own per-pixel spread). The same white noise draw is filtered
    into every band.
    """
    prof = _profile(profile)
    models = chapter_models(prof, NOISE_FAMILIES)

    def compute() -> dict:
        start = time.perf_counter()
        images, labels, _ = load_test_images(prof)
        loader = DataLoader(TensorDataset(images, labels), batch_size=prof.train.batch_size)
        sweeps = {
            name: dataclasses.asdict(
                noise_sweep(
                    run.model, loader, prof.frequency.noise_centers, prof.frequency.noise_magnitudes
                )
            )
            for name, run in models.items()
        }
        return {"models": sweeps, "seconds": time.perf_counter() - start}

    entry = cached_result("ch03_noise", _key(prof, models, "noise"), compute)
    return {name: NoiseSweep(**d) for name, d in entry["models"].items()}


def texture_band(profile: str | Profile | None = None) -> tuple[float, float] | None:
    """Per-axis frequencies (units of π, the noise bands' max-norm) of the synthetic texture cue;
    None for data without one (CIFAR, folders).

    The gratings have Euclidean radius ``texture_frequency = (r0, r1)``
    (the profile's :class:`~course_lib.data.SyntheticConfig`, which the shared models train on);
    along the max-norm that the noise bands use, such a frequency lies between ``r / √2`` and
    ``r``.
    """
    prof = _profile(profile)
    if prof.data != "synthetic":
        return None
    low, high = prof.synthetic.texture_frequency
    return low / math.sqrt(2), high


def main_magnitude(profile: str | Profile | None = None) -> float:
    """The noise magnitude of the chapter's main C6 line plot: the largest swept one (the box
    and the heatmaps report every magnitude)."""
    return max(_profile(profile).frequency.noise_magnitudes)


def accuracy(model: nn.Module, images: Tensor, labels: Tensor, batch_size: int = 256) -> float:
    """Top-1 accuracy in percent (eval mode, no grad, the model's device; modes restored)."""
    device, hits = model_device(model), 0
    with eval_mode(model), torch.no_grad():
        for start in range(0, len(labels), batch_size):
            x = images[start : start + batch_size].to(device)
            y = labels[start : start + batch_size].to(device)
            hits += int((model(x).argmax(dim=1) == y).sum())
    return 100.0 * hits / len(labels)


@precompute_step
def cue_reliance(profile: str | Profile | None = None) -> dict[str, dict[str, float]]:
    """Accuracy (%) of every model on each cue-removal test set: ``{model: {cues: accuracy}}``.

    ``"low"`` keeps only the low-frequency colour layout ("shape"), ``"high"`` only the texture,
    ``"none"`` neither (chance level). A model that keeps its accuracy on ``"high"`` but not on
    ``"low"`` relies on the texture (texture-biased), and conversely. Empty for data without cue
    sets (CIFAR, image folders).
    """
    prof = _profile(profile)
    if prof.data != "synthetic":
        return {}
    models = chapter_models(prof)

    def compute() -> dict:
        start = time.perf_counter()
        sets = {cues: load_test_images(prof, cues=cues)[:2] for cues in CUE_SETS}
        result = {
            name: {cues: accuracy(run.model, *sets[cues]) for cues in CUE_SETS}
            for name, run in models.items()
        }
        return {"models": result, "seconds": time.perf_counter() - start}

    return cached_result("ch03_cues", _key(prof, models, "cues"), compute)["models"]


def step_seconds(profile: str | Profile | None = None) -> dict[str, float]:
    """Seconds each cached step took when it was computed (NaN for a step not computed yet)."""
    prof = _profile(profile)
    out = {}
    for kind, families, step in (
        ("ch03_features", FAMILIES, "features"),
        ("ch03_noise", NOISE_FAMILIES, "noise"),
        ("ch03_cues", FAMILIES, "cues"),
    ):
        key = _key(prof, chapter_models(prof, families), step)
        folder = entry_dir(kind, key)
        seconds = float("nan")
        if key_matches(folder, kind, key):
            with contextlib.suppress(CheckpointError):
                seconds = float(load_checkpoint(folder / "result.pt").get("seconds", seconds))
        out[step] = seconds
    return out


def describe_models(models: Mapping[str, TrainedModel]) -> str:
    """One line per trained model: parameters, epochs, final test error."""
    lines = []
    for name, run in models.items():
        params = sum(p.numel() for p in run.model.parameters()) / 1e6
        error = run.history.test_error[-1] if run.history.test_error else float("nan")
        lines.append(
            f"{name:<16} {params:5.2f} M parameters, {len(run.history.epoch)} epochs, "
            f"test error {error:5.1f} %"
        )
    return "\n".join(lines)


def prose_numbers(
    profile: str | Profile | None = None,
    analyses: Mapping[str, FeatureAnalysis] | None = None,
    sweeps: Mapping[str, NoiseSweep] | None = None,
    cues: Mapping[str, Mapping[str, float]] | None = None,
) -> dict[str, str]:
    """The chapter's numbers in prose, formatted, for ``myst_nb.glue`` (keys: what is given).

    Per-block means are ``f_<family>_<msa|mlp|conv|down>`` (Fourier, relative to DC), ``t_…``
    (tilt) and ``v_…`` (variance), each with a ``…_verb`` ("lower", "raise" or "barely change",
    within :data:`C5_MARGIN` / :data:`C7_MARGIN`) so that the prose follows the sign.
    """
    prof = _profile(profile)
    names = {family: prof.models[family] for family in FAMILIES}
    out: dict[str, str] = {}
    if analyses is not None:
        vit = analyses[names["vit"]].fourier
        out["grid"] = f"{vit.sizes[-1]}×{vit.sizes[-1]}"
        out["points"] = str(len(vit.delta[-1]))
        changes_ = block_changes(analyses)
        for label, changes, fmt in (
            ("f", changes_.fourier, "{:+.2f}"),
            ("t", changes_.tilt, "{:+.2f}"),
            ("v", changes_.variance, "{:+.0f} %"),
        ):
            margin = C7_MARGIN if label == "v" else C5_MARGIN
            for family, name in names.items():
                if name not in changes:
                    continue
                for category, value in mean_change_by_kind(changes[name]).items():
                    tag = {"MSA": "msa", "MLP": "mlp", "Conv": "conv"}.get(category, "down")
                    out[f"{label}_{family}_{tag}"] = fmt.format(value)
                    out[f"{label}_{family}_{tag}_verb"] = _verb(value, margin)
    if sweeps is not None:
        magnitude = main_magnitude(prof)
        out["magnitude"] = f"{magnitude:g}"
        out["magnitudes"] = ", ".join(f"{m:g}" for m in prof.frequency.noise_magnitudes)
        out["c6_margin"] = f"{C6_MARGIN:g}"
        for family in NOISE_FAMILIES:
            if names[family] in sweeps:
                drops = band_drops(sweeps[names[family]], magnitude)
                out[f"drop_{family}_high"] = f"{drops.high:.1f}"
                out[f"drop_{family}_low"] = f"{drops.low:.1f}"
                out[f"clean_{family}"] = f"{sweeps[names[family]].clean_accuracy:.1f}"
    for family, name in names.items():
        for cue, accuracy_ in (cues or {}).get(name, {}).items():
            out[f"cue_{family}_{cue}"] = f"{accuracy_:.0f}"
    return out


def _key(prof: Profile, models: Mapping[str, TrainedModel], step: str) -> dict:
    """Cache key: the trained runs (their cache folders hold the training key) and the inputs."""
    key = {
        "profile": prof.name,
        "runs": {name: run.folder.name for name, run in models.items()},
        "data": prof.data,
        "n_test": prof.n_test,
        "image_size": prof.frequency.image_size,
    }
    if step == "features":
        key["batch"] = prof.train.batch_size
    else:
        key["test_images"] = prof.analysis_test_images
    if step == "noise":
        key |= {
            "centers": prof.frequency.noise_centers,
            "magnitudes": prof.frequency.noise_magnitudes,
            "width": 0.1,
        }
    return key


# ---------------------------------------------------------------------------------------------
# Paper vs. this run


PAPER_FIG2B = {
    "centers": (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9),
    "resnet": (5.0, 8.8, 12.7, 10.7, 10.3, 10.1, 9.7, 13.6, 15.4),
    "vit": (5.5, 12.1, 14.9, 13.4, 11.6, 9.8, 6.3, 4.3, 4.8),
}
"""Accuracy drop (pp) of ResNet-50 and ViT-Ti per noise band, ≈ read from Fig. 2b (ImageNet)."""


@dataclass(frozen=True)
class BandDrops:
    """Mean accuracy drop (pp) over the noise bands below and above ½π, at one magnitude."""

    magnitude: float
    low: float  # bands whose centre is below ½π
    high: float  # bands whose centre is above ½π


def band_drops(sweep: NoiseSweep, magnitude: float | None = None) -> BandDrops:
    """Split a sweep at ½π: the mean drop over the low bands and over the high bands.

    ``magnitude`` picks a row of the sweep (default: the largest magnitude). A band centred at
    exactly ½π counts in neither half.
    """
    row = int(sweep.magnitudes.argmax()) if magnitude is None else _row(sweep, magnitude)
    return _split(sweep.centers.tolist(), sweep.drop[row].tolist(), float(sweep.magnitudes[row]))


def _split(centers: Sequence[float], drops: Sequence[float], magnitude: float) -> BandDrops:
    low = [d for c, d in zip(centers, drops, strict=True) if c < 0.5 - 1e-9]
    high = [d for c, d in zip(centers, drops, strict=True) if c > 0.5 + 1e-9]
    nan = float("nan")
    return BandDrops(
        magnitude, float(np.mean(low)) if low else nan, float(np.mean(high)) if high else nan
    )


_PAPER_RES = _split(PAPER_FIG2B["centers"], PAPER_FIG2B["resnet"], float("nan"))
_PAPER_VIT = _split(PAPER_FIG2B["centers"], PAPER_FIG2B["vit"], float("nan"))

PAPER = {
    "C5": "ResNet-50 rises stage by stage (≈ −6.6 → −1.0); ViT-Ti stays ≈ −2.2…−2.7, every "
    "MSA lowers it and MLPs raise it (≈ read from Fig. 8, ImageNet)",
    "C6": f"mean drop above ½π: ResNet-50 {_PAPER_RES.high:.1f}, ViT-Ti {_PAPER_VIT.high:.1f}; "
    f"below ½π: {_PAPER_RES.low:.1f}, {_PAPER_VIT.low:.1f} (means of values ≈ read from "
    "Fig. 2b, ImageNet, magnitude not stated)",
    "C7": "ViT-Ti ≈ 0.015 → 0.09, each MSA lowers it (e.g. 0.049 → 0.040); ResNet-50 grows "
    "within stages to ≈ 0.46, 0.77, 0.84 (≈ read from Fig. 9, CIFAR-100)",
}


C5_MARGIN = 0.05
"""Mean change of Δ log amplitude (natural log) that counts as lowering or raising (C5)."""
C6_MARGIN = 1.0
"""Percentage points by which one accuracy drop must exceed another to count as larger (C6)."""
C7_MARGIN = 5.0
"""Mean relative change of the variance (%) that counts as lowering or raising (C7)."""


def paper_comparison(
    analyses: Mapping[str, FeatureAnalysis],
    sweeps: Mapping[str, NoiseSweep],
    profile: str | Profile | None = None,
) -> list[Comparison]:
    """The rows of the "paper vs. this run" box, verdicts computed from the numbers.

    C5: the ViT's MSA sub-blocks lower the high-frequency Δ on average, its MLP sub-blocks raise
    it, and the ResNet's same-resolution Conv blocks raise it, each by more than
    :data:`C5_MARGIN`. C6, one row per swept magnitude
    (:func:`band_drops`): above ½π the ResNet loses more than the ViT; the ViT loses less above
    ½π than below; the ResNet loses more above ½π than below. "More" means by more than
    :data:`C6_MARGIN` points; all three hold for the paper's Fig. 2b. C7: MSA sub-blocks lower
    the variance, Conv blocks raise it (mean relative change, by more than :data:`C7_MARGIN` %).
    """
    prof = _profile(profile)
    resnet, vit = prof.models["resnet"], prof.models["vit"]
    changes = block_changes({n: analyses[n] for n in (resnet, vit)})
    fourier, variance = changes.fourier, changes.variance
    f_vit, f_res = mean_change_by_kind(fourier[vit]), mean_change_by_kind(fourier[resnet])
    v_vit, v_res = mean_change_by_kind(variance[vit]), mean_change_by_kind(variance[resnet])
    nan = float("nan")
    c5 = [
        f_vit.get("MSA", nan) < -C5_MARGIN,
        f_vit.get("MLP", nan) > C5_MARGIN,
        f_res.get("Conv", nan) > C5_MARGIN,
    ]
    c7 = [v_vit.get("MSA", nan) < -C7_MARGIN, v_res.get("Conv", nan) > C7_MARGIN]
    rows = [
        Comparison(
            "C5: MSAs low-pass, Convs high-pass (mean change of Δ log amplitude at the highest "
            "frequency per block)",
            PAPER["C5"],
            f"{vit}: {_means(f_vit, ('MSA', 'MLP'), '{:+.2f}')}; "
            f"{resnet}: {_means(f_res, ('Conv', DOWNSAMPLING), '{:+.2f}')}",
            verdict_from(c5),
        )
    ]
    if resnet in sweeps and vit in sweeps:
        for magnitude in sorted(sweeps[resnet].magnitudes.tolist()):
            d_res = band_drops(sweeps[resnet], magnitude)
            d_vit = band_drops(sweeps[vit], magnitude)
            c6 = [
                d_res.high > d_vit.high + C6_MARGIN,
                d_vit.high < d_vit.low - C6_MARGIN,
                d_res.high > d_res.low + C6_MARGIN,
            ]
            rows.append(
                Comparison(
                    f"C6 at RMS {magnitude:g}: ViT robust to high-frequency noise, ResNet not "
                    "(mean accuracy drop, pp)",
                    PAPER["C6"],
                    f"above ½π {resnet} {d_res.high:.1f}, {vit} {d_vit.high:.1f}; "
                    f"below ½π {d_res.low:.1f}, {d_vit.low:.1f}",
                    verdict_from(c6),
                )
            )
    rows.append(
        Comparison(
            "C7: MSAs reduce feature-map variance, Convs increase it (mean relative change per "
            "block)",
            PAPER["C7"],
            f"{vit}: {_means(v_vit, ('MSA', 'MLP'), '{:+.0f} %')}; "
            f"{resnet}: {_means(v_res, ('Conv', DOWNSAMPLING), '{:+.0f} %')}",
            verdict_from(c7),
        )
    )
    return rows


def comparisons(profile: str | Profile | None = None) -> list[Comparison]:
    """The chapter's "paper vs. this run" rows (C5, C6, C7) from the cached steps.

    Used by the chapter and by the closing summary of chapter 04: :func:`paper_comparison` of
    :func:`feature_analysis` and :func:`noise_robustness` (cached, so fast once they have run).
    """
    prof = _profile(profile)
    return paper_comparison(feature_analysis(prof), noise_robustness(prof), prof)


def _verb(value: float, margin: float) -> str:
    return "lower" if value < -margin else "raise" if value > margin else "barely change"


def _means(means: Mapping[str, float], categories: Sequence[str], fmt: str) -> str:
    """``"MSA -0.12, MLP +0.30"`` for the categories present in ``means``."""
    return ", ".join(f"{c} {fmt.format(means[c])}" for c in categories if c in means) or "—"


def _row(sweep: NoiseSweep, magnitude: float) -> int:
    matches = ((sweep.magnitudes - magnitude).abs() < 1e-6).nonzero()
    if len(matches) == 0:
        raise ValueError(f"magnitude {magnitude} not in the sweep {sweep.magnitudes.tolist()}")
    return int(matches[0])
