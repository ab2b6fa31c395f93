"""Chapter 04: AlterNet — the build-up rule, AlterNet vs. ResNet vs. ViT, lesions (claim C8).

Park & Kim 2022, Sec. 4: Convs and MSAs are complementary, so a ResNet whose stage-final blocks
are MSA blocks (AlterNet) beats both. Every function of a profile below is cached on disk
(:func:`course_lib.cache.cached_result`) and registered for ``python -m course_lib precompute``;
the trained models come from :func:`course_lib.experiments.trained_model`, shared with the other
chapters wherever the architecture is the same. :func:`course_summary` collects the verdicts of
every chapter's "paper vs. this run" box for the course's closing table.
"""

from __future__ import annotations

import dataclasses
import html
import importlib
import re
import statistics
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

from torch.utils.data import DataLoader, Subset

from course_lib.analysis.lesion import LesionResult, lesion_study
from course_lib.analysis.robustness import NoiseSweep, noise_sweep
from course_lib.cache import cached_result
from course_lib.chapters import precompute_step
from course_lib.config import Profile
from course_lib.data import get_dataset
from course_lib.experiments import TrainedModel, trained_model
from course_lib.models import create_model
from course_lib.report import VERDICTS, Comparison, verdict_from

FAMILIES = ("resnet", "local_vit", "vit", "alternet")  # the models compared in Fig. 12
LESION_FAMILIES = ("resnet", "alternet", "local_vit")  # Fig. 10b: ResNet, AlterNet and Swin
SPREAD_SEED = 1  # a second training seed of the ResNet measures the run-to-run noise
FAMILY_LABELS = {"resnet": "ResNet", "local_vit": "local ViT", "vit": "ViT", "alternet": "AlterNet"}
ANALYSIS_VERSION = 2  # bump when the computations below change, to invalidate cached results

# Paper numbers (PAPER_NOTES.md, "≈ read from" the figures).
PAPER_BUILDUP = (82.5, 83.5, 83.7, 83.8, 84.0)  # Fig. 12: accuracy with 0 … 4 MSAs, CIFAR-100
PAPER_BUILDUP_FIFTH = (83.2, 83.8)  # Fig. 12: a fifth MSA lowers it to this range
PAPER_ACCURACY = {"alternet": 84.0, "resnet": 82.5, "local_vit": 76.7, "vit": 66.5}  # Fig. 12
PAPER_CORRUPTED = {"alternet": 66.7, "resnet": 65.0, "local_vit": 60.0, "vit": 51.9}  # C-100-C
PAPER_MODELS = {"alternet": "AlterNet-50", "resnet": "ResNet-50", "local_vit": "Swin-Ti",
                "vit": "ViT-Ti"}  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Models and data


def buildup_steps(profile: Profile) -> list[tuple[int, ...]]:
    """MSA blocks per stage at each build-up step (``profile.alternet_buildup``).

    Default when the profile names none: the plain ResNet, then the profile's AlterNet.
    """
    if profile.alternet_buildup:
        return [tuple(step) for step in profile.alternet_buildup]
    resnet = create_model(profile.models["resnet"]).config
    alternet = create_model(profile.models["alternet"]).config
    return [(0,) * len(resnet.depths), tuple(alternet.msa_blocks)]


_LOADED: dict[tuple[str, str], TrainedModel] = {}


def shared_run(profile: Profile, family: str) -> TrainedModel:
    """``trained_model(family, profile=profile)``, kept in memory for the session.

    Loading a cached run rebuilds the profile's data (seconds on a laptop); the chapter's steps
    share the loaded models instead. They are in eval mode: do not train them further in place.
    """
    key = (repr(profile), family)
    if key not in _LOADED or not _LOADED[key].folder.exists():
        _LOADED[key] = trained_model(family, profile=profile)
    return _LOADED[key]


def buildup_model(profile: Profile, msa_blocks: Sequence[int]) -> TrainedModel:
    """The profile's ResNet with ``msa_blocks`` MSA blocks per stage, trained with its budget.

    The plain ResNet and a step that *is* the profile's AlterNet (same architecture) reuse the
    shared runs of ``trained_model("resnet")`` / ``trained_model("alternet")``; other steps train
    ``trained_model(<resnet name>, msa_blocks=...)`` once and cache it.
    """
    msa_blocks = tuple(int(n) for n in msa_blocks)
    resnet_name = profile.models["resnet"]
    if not any(msa_blocks):
        return shared_run(profile, "resnet")
    resnet = create_model(resnet_name).config
    alternet = create_model(profile.models["alternet"]).config
    if dataclasses.replace(resnet, msa_blocks=msa_blocks) == alternet:
        return shared_run(profile, "alternet")
    return trained_model(resnet_name, profile=profile, msa_blocks=msa_blocks)


def describe_architecture(name: str, image_size: int = 32, **overrides) -> str:
    """One line per stage of a registered ResNet/AlterNet: feature-map size and block kinds.

    ``describe_architecture("alternet_mini")`` → ``"stage 1 (32×32, width 16): Conv Conv"``, …
    """
    model = create_model(name, image_size=image_size, **overrides)
    lines, side = [], image_size
    for s, stage in enumerate(model.stages):
        side = side if s == 0 else (side + 1) // 2
        kinds = " ".join("MSA" if block.feature_kind == "msa" else "Conv" for block in stage)
        width = model.config.widths[s]
        lines.append(f"stage {s + 1} ({side}×{side}, width {width}): {kinds}")
    return "\n".join(lines)


def evaluation_loader(profile: Profile, n: int | None = None) -> DataLoader:
    """The profile's test set (its first ``n`` images if given), in fixed order."""
    dataset, _ = get_dataset(
        profile.data, train=False, n=profile.n_test, image_size=profile.image_size,
        synthetic_config=profile.synthetic,
    )  # fmt: skip
    if n is not None and n < len(dataset):
        dataset = Subset(dataset, range(n))
    return DataLoader(dataset, batch_size=profile.train.batch_size, shuffle=False)


def _run_summary(run: TrainedModel) -> dict:
    """Final metrics of a trained run (test accuracy in %, NLL in nats) and its cost."""
    h = run.history
    seconds = statistics.fmean(h.seconds) if h.seconds else float("nan")
    return {
        "name": run.name,
        "params": sum(p.numel() for p in run.model.parameters()),
        "test_accuracy": 100.0 - h.test_error[-1],
        "test_nll": h.test_nll[-1],
        "train_nll": h.train_nll[-1],
        "epochs": h.epoch[-1],
        "seconds_per_epoch": seconds,
    }


def _key(profile: Profile, **extra) -> dict:
    """Everything a chapter result depends on: data, models, training recipe, and ``extra``."""
    return {
        "profile": profile.name,
        "data": profile.data,
        "n_train": profile.n_train,
        "n_test": profile.n_test,
        "image_size": profile.image_size,
        "models": profile.models,
        "train": dataclasses.asdict(profile.train),
        "analysis_version": ANALYSIS_VERSION,
        **extra,
    }


# ---------------------------------------------------------------------------------------------
# Cached computations


@precompute_step
def build_up(profile: Profile) -> dict:
    """Train every build-up step (paper Sec. 4, Fig. 12) and return its final metrics.

    Also trains the plain ResNet with a second seed (:data:`SPREAD_SEED`): the difference
    between its two seeds is the run-to-run noise against which each step is judged
    (:func:`seed_spread`). Returns ``{"steps": [msa_blocks, ...], "runs": [run summary, ...],
    "resnet_second_seed": run summary}``, the steps in build-up order.
    """
    steps = buildup_steps(profile)

    def compute() -> dict:
        runs = [_run_summary(buildup_model(profile, step)) for step in steps]
        second = _run_summary(trained_model("resnet", profile=profile, seed=SPREAD_SEED))
        return {"steps": [list(step) for step in steps], "runs": runs, "resnet_second_seed": second}

    key = _key(profile, steps=steps, spread_seed=SPREAD_SEED)
    return cached_result("ch04_buildup", key, compute)


@precompute_step
def family_comparison(profile: Profile) -> dict:
    """AlterNet vs. ResNet, local ViT and ViT: accuracy, NLL, and accuracy under noise.

    The robustness column stands in for the paper's CIFAR-100-C: the mean accuracy over every
    noise band of chapter 03 (``profile.frequency.noise_centers``) at the profile's strongest noise
    magnitude (the weaker ones barely move a trained model on the synthetic data, and each
    costs as much), on the first ``profile.analysis_test_images`` test images. Returns
    ``{family: run summary | {"noise": NoiseSweep as a dict}}``.
    """
    magnitude = max(profile.frequency.noise_magnitudes)
    key = _key(
        profile,
        noise_centers=profile.frequency.noise_centers,
        noise_magnitude=magnitude,
        noise_images=profile.analysis_test_images,
    )

    def compute() -> dict:
        loader = evaluation_loader(profile, profile.analysis_test_images)
        out = {}
        for family in FAMILIES:
            run = shared_run(profile, family)
            sweep = noise_sweep(run.model, loader, profile.frequency.noise_centers, [magnitude])
            out[family] = _run_summary(run) | {"noise": dataclasses.asdict(sweep)}
        return out

    return cached_result("ch04_families", key, compute)


@precompute_step
def lesions(profile: Profile) -> dict:
    """Lesion study (paper Fig. 10b) of the trained ResNet, AlterNet and local ViT.

    Each residual unit is removed alone (:mod:`course_lib.analysis.lesion`) and the accuracy
    measured on the first ``profile.analysis_test_images`` test images (the images of the
    noise test). Returns ``{family: LesionResult as a dict}``.
    """
    n = profile.analysis_test_images

    def compute() -> dict:
        loader = evaluation_loader(profile, n)
        return {
            family: dataclasses.asdict(lesion_study(shared_run(profile, family).model, loader))
            for family in LESION_FAMILIES
        }

    return cached_result("ch04_lesions", _key(profile, families=LESION_FAMILIES, images=n), compute)


def noise_sweeps(comparison: dict) -> dict[str, NoiseSweep]:
    """The :class:`NoiseSweep` of each model in a :func:`family_comparison` result, by name."""
    return {r["name"]: NoiseSweep(**r["noise"]) for r in comparison.values()}


def lesion_results(result: dict) -> dict[str, LesionResult]:
    """The :class:`LesionResult` of each family in a :func:`lesions` result."""
    return {family: LesionResult(**d) for family, d in result.items()}


# ---------------------------------------------------------------------------------------------
# Tables and checks derived from the results


@dataclass(frozen=True)
class BuildUpRow:
    """One step of the build-up: what changed and whether it helped."""

    step: int
    msa_blocks: tuple[int, ...]
    name: str
    test_accuracy: float
    test_nll: float
    change: str  # e.g. "+1 MSA in stage 3"
    helped: bool | None  # better than the previous step (see `better`); None for the ResNet
    beyond_noise: bool | None  # the change exceeds the ResNet's seed spread (`significant`)


def better(a: dict, b: dict) -> bool:
    """Whether run ``a`` beats run ``b``: higher test accuracy, or, on a tie, lower test NLL.

    The tie-break matters when a test set is saturated (both models at 100 %): accuracy then
    cannot tell the models apart, the NLL still can.
    """
    if a["test_accuracy"] != b["test_accuracy"]:
        return a["test_accuracy"] > b["test_accuracy"]
    return a["test_nll"] < b["test_nll"]


def seed_spread(result: dict) -> dict[str, float]:
    """Run-to-run noise from a :func:`build_up` result: ``|seed 0 − seed 1|`` of the ResNet's
    test accuracy (``"test_accuracy"``, pp) and test NLL (``"test_nll"``)."""
    a, b = result["runs"][0], result["resnet_second_seed"]
    return {k: abs(a[k] - b[k]) for k in ("test_accuracy", "test_nll")}


def significant(a: dict, b: dict, spread: dict[str, float]) -> bool:
    """Whether runs ``a`` and ``b`` differ by more than the seed ``spread``, in the metric that
    :func:`better` decides by (accuracy, or the NLL when the accuracies tie)."""
    metric = "test_accuracy" if a["test_accuracy"] != b["test_accuracy"] else "test_nll"
    return abs(a[metric] - b[metric]) > spread[metric]


def buildup_rows(result: dict) -> list[BuildUpRow]:
    """The :func:`build_up` result as rows, each with the change it made and whether it helped."""
    spread = seed_spread(result)
    rows, previous = [], None
    for i, (step, run) in enumerate(zip(result["steps"], result["runs"], strict=True)):
        step = tuple(step)
        helped = None if previous is None else better(run, previous[1])
        beyond = None if previous is None else significant(run, previous[1], spread)
        rows.append(
            BuildUpRow(
                step=i,
                msa_blocks=step,
                name=run["name"],
                test_accuracy=run["test_accuracy"],
                test_nll=run["test_nll"],
                change=_describe_change(previous[0] if previous else None, step),
                helped=helped,
                beyond_noise=beyond,
            )
        )
        previous = (step, run)
    return rows


def _describe_change(before: tuple[int, ...] | None, after: tuple[int, ...]) -> str:
    if before is None:
        return "plain ResNet" if not any(after) else f"start: MSA blocks {after}"
    parts = []
    for stage, (a, b) in enumerate(zip(before, after, strict=True), start=1):
        if b > a:
            parts.append(f"+{b - a} MSA in stage {stage}")
        elif b < a:
            parts.append(f"−{a - b} MSA in stage {stage}")
    return ", ".join(parts) or "no change"


def helped_mark(row: BuildUpRow) -> str:
    """ "✅ yes", "❌ no" or "≈ within seed noise (better/worse)" for a build-up row."""
    if row.helped is None:
        return ""
    if not row.beyond_noise:
        return f"≈ within seed noise ({'better' if row.helped else 'worse'})"
    return "✅ yes" if row.helped else "❌ no"


def buildup_table_html(result: dict) -> str:
    """The build-up as an HTML table: step, MSA blocks per stage, change, accuracy, NLL, helped;
    and the ResNet's second seed, whose difference from the first is the noise floor."""
    rows = [
        (str(r.step), str(r.msa_blocks), r.change, r.test_accuracy, r.test_nll, helped_mark(r))
        for r in buildup_rows(result)
    ]
    second = result["resnet_second_seed"]
    rows.append(
        ("—", str(rows[0][1]), f"plain ResNet, seed {SPREAD_SEED} (noise floor)",
         second["test_accuracy"], second["test_nll"], "")
    )  # fmt: skip
    body = "".join(
        f"<tr><td>{step}</td><td>{html.escape(msa)}</td><td>{html.escape(change)}</td>"
        f"<td>{acc:.2f}</td><td>{nll:.4f}</td><td>{mark}</td></tr>"
        for step, msa, change, acc, nll, mark in rows
    )
    head = (
        "<tr><th>step</th><th>MSA blocks per stage</th><th>change</th>"
        "<th>test accuracy (%)</th><th>test NLL</th><th>helped?</th></tr>"
    )
    return f"<table><thead>{head}</thead><tbody>{body}</tbody></table>"


def family_table_html(comparison: dict) -> str:
    """AlterNet vs. the others: parameters, accuracy, NLL, accuracy under noise, training speed."""
    head = (
        "<tr><th>model</th><th>parameters</th><th>test accuracy (%)</th><th>test NLL</th>"
        "<th>train NLL</th><th>mean accuracy under noise (%)</th><th>s / epoch</th></tr>"
    )
    body = "".join(
        f"<tr><td>{FAMILY_LABELS[f]} (<code>{html.escape(r['name'])}</code>)</td>"
        f"<td>{r['params']:,}</td><td>{r['test_accuracy']:.2f}</td><td>{r['test_nll']:.4f}</td>"
        f"<td>{r['train_nll']:.4f}</td><td>{mean_noisy_accuracy(r):.1f}</td>"
        f"<td>{r['seconds_per_epoch']:.1f}</td></tr>"
        for f, r in comparison.items()
    )
    return f"<table><thead>{head}</thead><tbody>{body}</tbody></table>"


def mean_noisy_accuracy(family_result: dict) -> float:
    """Mean accuracy (%) over every noise band of the sweep: our stand-in for CIFAR-100-C."""
    return float(family_result["noise"]["accuracy"].mean())


def lesion_summary(result: LesionResult) -> dict[str, float]:
    """Numbers the paper reads off Fig. 10b: drops of the first/second half, per kind, largest."""
    drop = result.drop.tolist()
    half = len(drop) // 2
    by_kind = {
        kind: statistics.fmean(d for d, k in zip(drop, result.kinds, strict=True) if k == kind)
        for kind in sorted(set(result.kinds))
    }
    largest = max(range(len(drop)), key=drop.__getitem__)
    return {
        "first_half": statistics.fmean(drop[: max(half, 1)]),
        "second_half": statistics.fmean(drop[half:]),
        "largest": drop[largest],
        "largest_index": largest,
        **{f"mean_{kind}": value for kind, value in by_kind.items()},
    }


def comparisons(profile: Profile) -> list[Comparison]:
    """The rows of chapter 04's "paper vs. this run" box (claim C8), verdicts from the numbers."""
    result = build_up(profile)
    buildup, spread = buildup_rows(result), seed_spread(result)
    families = family_comparison(profile)
    lesion = lesion_results(lesions(profile))
    acc = {f: r["test_accuracy"] for f, r in families.items()}
    noisy = {f: mean_noisy_accuracy(r) for f, r in families.items()}
    order = sorted(FAMILIES, key=lambda f: -PAPER_ACCURACY[f])

    def listing(values: dict[str, float], paper: bool = False) -> str:
        names = PAPER_MODELS if paper else FAMILY_LABELS
        return ", ".join(f"{names[f]} {values[f]:.1f}" for f in order)

    def beats(a: dict, b: dict) -> bool:
        return better(a, b) and significant(a, b, spread)

    noise = (
        f"; seed spread of the ResNet {spread['test_accuracy']:.2f} pp / NLL "
        f"{spread['test_nll']:.4f}"
    )
    best = max(buildup, key=lambda r: (r.test_accuracy, -r.test_nll))
    alt = families["alternet"]
    rows = [
        Comparison(
            "C8: AlterNet is more accurate than ResNet and ViT (test accuracy %, NLL on ties; "
            "beyond seed noise)",
            f"{listing(PAPER_ACCURACY, paper=True)} (CIFAR-100, ≈ read from Fig. 12)",
            ", ".join(
                f"{FAMILY_LABELS[f]} {acc[f]:.2f} / NLL {families[f]['test_nll']:.4f}"
                for f in order
            )
            + noise,
            verdict_from([beats(alt, families["resnet"]), beats(alt, families["vit"])]),
        ),
        Comparison(
            "C8: build-up rule — MSAs at stage ends add accuracy (NLL on ties; beyond seed "
            "noise), up to a point",
            " → ".join(f"{a:.1f}" for a in PAPER_BUILDUP)
            + f" % for 0…4 MSAs; a 5th: {PAPER_BUILDUP_FIFTH[0]}–{PAPER_BUILDUP_FIFTH[1]} % "
            "(≈ read from Fig. 12)",
            " → ".join(f"{r.test_accuracy:.2f}" for r in buildup)
            + " % (NLL "
            + " → ".join(f"{r.test_nll:.4f}" for r in buildup)
            + ") for MSA blocks "
            + " → ".join(str(r.msa_blocks) for r in buildup)
            + noise,
            verdict_from(
                [
                    len(buildup) > 1 and bool(buildup[1].helped and buildup[1].beyond_noise),
                    best.step > 0 and beats(result["runs"][best.step], result["runs"][0]),
                ]
            ),
        ),
        Comparison(
            "C8: AlterNet is the most robust (mean accuracy under corruption/noise, %)",
            f"{listing(PAPER_CORRUPTED, paper=True)} (CIFAR-100-C, ≈ read from Fig. 12)",
            listing(noisy) + " (band-limited noise, mean over all bands)",
            verdict_from([noisy["alternet"] > noisy["resnet"], noisy["alternet"] > noisy["vit"]]),
        ),
    ]
    res, alt, loc = (lesion_summary(lesion[f]) for f in ("resnet", "alternet", "local_vit"))
    rows += [
        Comparison(
            "C8: lesion — in a ResNet the early units matter most (accuracy drop, pp)",
            "first unit ≈ 13.7, then ≈ 7.3, 4.7 … down to ≈ 2.2 (≈ read from Fig. 10b)",
            f"mean drop first half {res['first_half']:.1f} vs. second half "
            f"{res['second_half']:.1f}; per unit "
            + ", ".join(f"{d:.1f}" for d in lesion["resnet"].drop.tolist()),
            verdict_from([res["first_half"] > res["second_half"]]),
        ),
        Comparison(
            "C8: lesion — in AlterNet the MSAs at stage ends matter most (accuracy drop, pp)",
            "Swin: largest drops at stage-end MSAs ≈ 1.96, 1.44, 1.88 (≈ read from Fig. 10b)",
            f"AlterNet mean drop MSA {alt.get('mean_msa', float('nan')):.1f} vs. Conv "
            f"{alt.get('mean_conv', float('nan')):.1f}; largest: "
            f"{lesion['alternet'].kinds[alt['largest_index']]} unit "
            f"{lesion['alternet'].names[alt['largest_index']]} ({alt['largest']:.1f})",
            verdict_from(
                [
                    alt.get("mean_msa", float("-inf")) > alt.get("mean_conv", float("inf")),
                    lesion["alternet"].kinds[alt["largest_index"]] == "msa",
                ]
            ),
        ),
        Comparison(
            "C8: lesion — no single unit of a Swin-like model matters much (largest drop, pp)",
            "Swin ≤ ≈ 2 vs. ResNet ≈ 13.7 (≈ read from Fig. 10b)",
            f"local ViT {loc['largest']:.1f} vs. ResNet {res['largest']:.1f}",
            verdict_from([loc["largest"] < res["largest"]]),
        ),
    ]
    return rows


# ---------------------------------------------------------------------------------------------
# The course's closing summary


CLAIMS = {
    "C1": "Weak inductive bias: train NLL Conv < local MSA < global MSA (underfitting)",
    "C2": "More data lowers ViT's train NLL",
    "C3": "MSAs flatten the loss landscape (small Hessian eigenvalues)",
    "C4": "ViTs have negative Hessian eigenvalues on small data",
    "C5": "MSAs are low-pass filters, Convs high-pass",
    "C6": "ViTs are robust to high-frequency noise, ResNets are not",
    "C7": "MSAs reduce feature-map variance, Convs increase it",
    "C8": "Conv and MSA are complementary: AlterNet beats both",
}
CHAPTERS = {  # chapter module -> (notebook, claims it measures)
    "ch01_inductive_bias": ("01_inductive_bias", ("C1", "C2")),
    "ch02_loss_landscape": ("02_loss_landscape", ("C3", "C4")),
    "ch03_frequency": ("03_frequency", ("C5", "C6", "C7")),
    "ch04_alternet": ("04_alternet", ("C8",)),
}
_CLAIM_ID = re.compile(r"^\s*(C\d+)")


@dataclass(frozen=True)
class ClaimVerdict:
    """One line of the closing summary: a claim, where it was measured, the combined verdict."""

    claim: str  # "C1" … "C8"
    statement: str
    chapter: str  # notebook name
    verdict: str | None  # "reproduced", "partly", "not reproduced"; None if not available
    rows: tuple[Comparison, ...]  # the chapter box's rows for this claim
    note: str = ""  # why the verdict is not available, if it is not


def combine_verdicts(verdicts: Sequence[str]) -> str:
    """One verdict from several rows: all reproduced → reproduced, none → not, else partly."""
    if verdicts and all(v == "reproduced" for v in verdicts):
        return "reproduced"
    if verdicts and all(v == "not reproduced" for v in verdicts):
        return "not reproduced"
    return "partly"


def chapter_comparisons(module_name: str, profile: Profile) -> list[Comparison]:
    """The "paper vs. this run" rows of one chapter module (``"ch01_inductive_bias"`` …).

    Every chapter module defines ``comparisons(profile)``, built from its cached steps.
    Raises ``ModuleNotFoundError`` if the chapter does not exist and ``AttributeError`` if it
    defines no ``comparisons``.
    """
    module = importlib.import_module(f"course_lib.chapters.{module_name}")
    comparisons_ = getattr(module, "comparisons", None)
    if not callable(comparisons_):
        raise AttributeError(f"{module_name} defines no comparisons(profile)")
    return list(comparisons_(profile))


def course_summary(profile: Profile) -> list[ClaimVerdict]:
    """The verdict of every claim C1–C8, from the rows of every chapter's box.

    Rows come from :func:`chapter_comparisons` (cached computations, so this is fast once the
    chapters have run). A row belongs to the claim its ``claim`` text starts with ("C3: ...");
    several rows of one claim are combined with :func:`combine_verdicts`. The claims of a
    chapter that is missing, or whose rows cannot be computed, get ``verdict=None`` and a
    ``note`` saying why (with a warning): the closing table never hides a failure, nor does one
    chapter's failure stop this one.
    """
    rows_by_claim: dict[str, list[Comparison]] = {c: [] for c in CLAIMS}
    notes: dict[str, str] = {}
    for module_name, (notebook, claims) in CHAPTERS.items():
        try:
            rows = chapter_comparisons(module_name, profile)
        except ModuleNotFoundError as err:
            if err.name != f"course_lib.chapters.{module_name}":
                raise  # the chapter exists but one of its imports is broken
            notes.update(dict.fromkeys(claims, f"chapter {notebook} is not part of this build"))
            continue
        except Exception as err:  # another chapter's failure must not break the course's end
            if module_name == "ch04_alternet":
                raise
            message = f"{notebook}: {type(err).__name__}: {err}"
            warnings.warn(f"closing summary: no verdict from {message}", stacklevel=2)
            notes.update(dict.fromkeys(claims, f"could not collect the verdict ({message})"))
            continue
        for row in rows:
            match = _CLAIM_ID.match(row.claim)
            if match and match.group(1) in rows_by_claim:
                rows_by_claim[match.group(1)].append(row)
    summary = []
    for claim, statement in CLAIMS.items():
        chapter = next(nb for nb, claims in CHAPTERS.values() if claim in claims)
        rows = rows_by_claim[claim]
        note = notes.get(claim, "" if rows else "the chapter's box has no row for this claim")
        verdict = combine_verdicts([r.verdict for r in rows]) if rows and not note else None
        summary.append(ClaimVerdict(claim, statement, chapter, verdict, tuple(rows), note))
    return summary


def course_summary_html(summary: Sequence[ClaimVerdict], profile: str) -> str:
    """The closing table: claim, statement, chapter, verdict and how many checks it combines."""
    body = []
    for s in summary:
        verdict = VERDICTS[s.verdict] if s.verdict else "— not available"
        detail = s.note or "; ".join(
            f"{VERDICTS[r.verdict]} {r.claim.split(':', 1)[-1].strip()}" for r in s.rows
        )
        body.append(
            f"<tr><td><b>{s.claim}</b></td><td>{html.escape(s.statement)}</td>"
            f"<td><code>{s.chapter}</code></td><td>{verdict}</td>"
            f"<td>{html.escape(detail)}</td></tr>"
        )
    note = (
        "<em>smoke profile: tiny models and data; these verdicts only show that the code runs.</em>"
        if profile == "smoke"
        else f"<em>{html.escape(profile)} profile.</em>"
    )
    head = (
        "<tr><th>claim</th><th>statement</th><th>chapter</th><th>verdict</th>"
        "<th>the checks behind it</th></tr>"
    )
    return (
        f'<div class="paper-vs-run"><table><thead>{head}</thead><tbody>{"".join(body)}</tbody>'
        f"</table><p>{note}</p></div>"
    )


# ---------------------------------------------------------------------------------------------
# Figures (thin wrappers, so the notebook cells stay one line)


def figure_buildup(profile: Profile):
    """Accuracy and NLL over the build-up steps, beside the paper's Fig. 12."""
    from course_lib.plots.alternet import plot_buildup

    result = build_up(profile)
    rows, second = buildup_rows(result), result["resnet_second_seed"]
    return plot_buildup(
        [r.msa_blocks for r in rows],
        [r.test_accuracy for r in rows],
        [r.test_nll for r in rows],
        helped=[r.helped if r.beyond_noise else None for r in rows],
        reference=(second["test_accuracy"], second["test_nll"]),
        paper_accuracy=PAPER_BUILDUP,
        paper_extra=PAPER_BUILDUP_FIFTH,
    )


def figure_families(profile: Profile):
    """AlterNet vs. ResNet, local ViT and ViT: our accuracy, NLL, accuracy under noise; paper's."""
    from course_lib.plots.alternet import plot_family_comparison

    result = family_comparison(profile)
    metrics = {
        "Test accuracy (%)": {f: r["test_accuracy"] for f, r in result.items()},
        "Test NLL (nats)": {f: r["test_nll"] for f, r in result.items()},
        "Accuracy under noise (%)": {f: mean_noisy_accuracy(r) for f, r in result.items()},
    }
    paper = {"accuracy": PAPER_ACCURACY, "CIFAR-100-C": PAPER_CORRUPTED}
    return plot_family_comparison(FAMILY_LABELS, metrics, paper)


def figure_lesions(profile: Profile):
    """Accuracy drop per removed unit of ResNet, AlterNet and local ViT (Fig. 10b)."""
    from course_lib.plots.alternet import plot_lesions

    results = lesion_results(lesions(profile))
    titles = {
        f: f"{FAMILY_LABELS[f]}\nclean accuracy {r.clean_accuracy:.2f} %"
        for f, r in results.items()
    }
    return plot_lesions(results, titles)
