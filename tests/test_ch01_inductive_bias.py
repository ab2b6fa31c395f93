"""Chapter 01 (C1, C2): interaction ranges, final metrics, verdicts and the cached steps' plumbing.

Covers the chapter module, its records and prose (:mod:`course_lib.report.inductive_bias`), its
figures (:mod:`course_lib.plots.inductive_bias`) and its widget
(:mod:`course_lib.widgets.inductive_bias`).

No model is trained here: ``trained_model`` is replaced by a fake that records its arguments.
"""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import pytest
import torch
from matplotlib.figure import Figure

from course_lib.chapters import ch01_inductive_bias as ch01
from course_lib.chapters import precompute_steps
from course_lib.config import get_profile
from course_lib.data import get_dataset
from course_lib.experiments import TrainedModel
from course_lib.models import create_model
from course_lib.plots import log_scale
from course_lib.plots.inductive_bias import (
    interaction_mask,
    plot_final_metrics,
    plot_fit_vs_generalization,
    plot_fraction_sweep,
    plot_interaction_range,
)
from course_lib.report import architectures
from course_lib.report import cues as cues_report
from course_lib.report import inductive_bias as report
from course_lib.report.inductive_bias import RunRecord
from course_lib.samples import evaluation_loader
from course_lib.train import History
from course_lib.widgets.inductive_bias import (
    ModelGeometry,
    interaction_range_explorer,
    model_geometry,
)

SMOKE = get_profile("smoke")


def history(train_nll: float, test_nll: float, epochs: int = 2) -> History:
    h = History()
    for e in range(1, epochs + 1):
        h.append(
            epoch=e,
            train_nll=train_nll + (epochs - e),
            train_error=10.0 * train_nll,
            test_nll=test_nll,
            test_error=10.0 * test_nll,
            lr=0.0,
            seconds=1.5,
        )
    h.final_train_nll, h.final_train_error = train_nll, 10.0 * train_nll
    return h


def record(train_nll: float, test_nll: float) -> RunRecord:
    return RunRecord(model="m", parameters=10, history=history(train_nll, test_nll))


# --- interaction ranges: known answers ---------------------------------------------------------


@pytest.mark.parametrize("layers", [1, 2, 5])
def test_conv_receptive_field_grows_by_two_pixels_per_layer(layers):
    mask = interaction_mask("conv", image_size=32, position=(16, 16), layers=layers)
    assert mask.sum() == (2 * layers + 1) ** 2
    corner = interaction_mask("conv", image_size=32, position=(0, 0), layers=layers)
    assert corner.sum() == (layers + 1) ** 2  # clipped at the border


@pytest.mark.parametrize(
    ("layers", "rows", "cols"),
    [(1, (8, 20), (12, 24)), (2, (4, 24), (8, 28)), (4, (0, 32), (0, 32))],
)
def test_local_field_grows_by_the_neighbourhood_per_layer(layers, rows, cols):
    # position (13, 18) is token (3, 4) of the 8×8 grid; a 3×3 neighbourhood adds a token each
    # side per layer, so after four layers the field spans the whole grid
    mask = interaction_mask(
        "local", image_size=32, position=(13, 18), layers=layers, patch_size=4, neighbourhood=3
    )
    expected = torch.zeros(32, 32, dtype=torch.bool)
    expected[rows[0] : rows[1], cols[0] : cols[1]] = True
    assert torch.equal(mask, expected)


def test_local_window_shifts_inwards_at_the_border():
    mask = interaction_mask("local", image_size=32, position=(0, 0), patch_size=4, neighbourhood=3)
    expected = torch.zeros(32, 32, dtype=torch.bool)
    expected[0:12, 0:12] = True  # tokens 0..2 on each axis: k² tokens, as in the model
    assert torch.equal(mask, expected)


def test_global_attention_sees_everything_and_bad_inputs_raise():
    assert interaction_mask("global", image_size=16, position=(3, 4)).all()
    with pytest.raises(ValueError, match="kind"):
        interaction_mask("dilated", image_size=16, position=(0, 0))
    with pytest.raises(ValueError, match="outside"):
        interaction_mask("conv", image_size=16, position=(16, 0))
    with pytest.raises(ValueError, match="multiple"):
        interaction_mask("local", image_size=18, position=(0, 0), patch_size=4)


# --- metrics, summaries and verdicts -----------------------------------------------------------


def test_final_metrics_are_measured_at_the_final_weights():
    h = history(train_nll=0.5, test_nll=0.8, epochs=3)
    h.final_train_nll = 0.45  # the fixed augmented pass, not the last epoch's running mean
    final = report.final_metrics(h)
    assert final.train_nll == 0.45 and final.test_nll == 0.8 and final.train_error == 5.0
    assert record(0.5, 0.8).final == report.final_metrics(history(0.5, 0.8))
    assert record(0.5, 0.8).train_seconds == pytest.approx(3.0)
    with pytest.raises(ValueError, match="no epochs"):
        report.final_metrics(History())


def test_architecture_summary_counts_the_registered_models():
    rows = architectures.architecture_summary(SMOKE)
    assert [r.family for r in rows] == ["resnet", "local_vit", "vit", "alternet"]
    for r in rows:
        model = create_model(r.model, image_size=SMOKE.image_size)
        assert r.parameters == sum(p.numel() for p in model.parameters())
        assert report.parameter_count(model) == r.parameters
    by_family = {r.family: r for r in rows}
    assert "all 64 tokens" in by_family["vit"].one_layer_mixes
    assert "3×3 tokens around each token" in by_family["local_vit"].one_layer_mixes
    glued = architectures.parameter_glue(rows)
    ratio = by_family["vit"].parameters / by_family["resnet"].parameters
    assert glued["vit_resnet_params"] in ("about equal", f"{ratio:.2g}× larger")
    assert ("not for lack of parameters" in glued["param_remark"]) == (ratio >= 0.95)
    table = architectures.format_summary(rows).splitlines()
    assert len(table) == 2 + len(rows)
    assert all(line == line.rstrip() for line in table)


def test_model_geometry_reads_the_profile_models():
    geometry = model_geometry(SMOKE)
    assert geometry == ModelGeometry(
        image_size=32, kernel=3, patch_size=4, local_patch_size=4, neighbourhood=3
    )


def test_order_text_sorts_ascending():
    text = report.order_text({"resnet": 0.4, "local_vit": 0.9, "vit": 0.6})
    assert text == "ResNet 0.4 < ViT 0.6 < local ViT 0.9"


def test_c1_verdicts_follow_the_seed_means():
    paper_like = {
        "resnet": [record(0.3, 0.5), record(0.35, 0.5)],
        "local_vit": [record(0.5, 0.6), record(0.6, 0.6)],
        "vit": [record(0.8, 0.85), record(0.9, 0.85)],
    }
    rows = ch01.c1_comparisons(paper_like)
    assert [r.verdict for r in rows] == ["reproduced", "reproduced", "reproduced"]
    assert "≈ read from Fig. 5a" in rows[0].paper
    assert "0.325 (0.300–0.350)" in rows[0].ours and "2 seed(s)" in rows[0].ours
    assert "a pair counts when its gap exceeds both families' ranges" in rows[0].ours
    # one seed of the local ViT above the ViT's mean: the means are still in order, but the
    # local-vs-global gap (0.1) is within the local ViT's range over seeds (0.5)
    paper_like["local_vit"][1] = record(1.0, 0.6)
    assert ch01.c1_comparisons(paper_like)[0].verdict == "partly"
    reversed_ = {
        "resnet": [record(0.8, 0.85)],
        "local_vit": [record(0.5, 0.6)],
        "vit": [record(0.3, 1.5)],
    }
    rows = ch01.c1_comparisons(reversed_)
    # train NLL reversed; test error 8.5, 6, 15: ends in order, inner pair not; the train-NLL
    # order (ViT < local < ResNet) is not the test-error order and their maxima differ
    assert [r.verdict for r in rows] == ["not reproduced", "partly", "not reproduced"]


def test_c2_verdicts_follow_the_trend():
    sweep = {0.1: [record(0.2, 1.0)], 0.5: [record(0.6, 0.9)], 1.0: [record(0.5, 0.7)]}
    train_row, error_row = ch01.c2_comparisons(sweep)
    assert train_row.verdict == "not reproduced"  # 0.2 → 0.5 overall: more data, higher NLL
    assert error_row.verdict == "reproduced"  # test error 10 → 9 → 7
    assert "10%: 0.200, 50%: 0.600" in train_row.ours and "Fig. 5b" in train_row.paper
    assert "1 seed(s)" in train_row.ours and "ranges over seeds" not in train_row.ours


def test_c2_steps_must_beat_both_fractions_seed_ranges():
    sweep = {
        0.1: [record(0.9, 1.0), record(0.95, 1.0)],
        0.3: [record(0.7, 0.9), record(0.7, 0.9)],
        1.0: [record(0.675, 0.8), record(0.575, 0.8)],
    }
    # means 0.925, 0.7, 0.625 with ranges 0.05, 0, 0.1: the first step (0.225) is clear, the
    # second (0.075) is within the full data's range, the whole fall (0.3) is clear
    train_row, _ = ch01.c2_comparisons(sweep)
    assert train_row.verdict == "partly"  # the ends clear, the last step within noise
    assert "10%: 0.925 (0.900–0.950)" in train_row.ours and "2 seed(s)" in train_row.ours
    assert "a step counts when its gap exceeds both fractions' ranges" in train_row.ours
    sweep[1.0] = [record(0.6, 0.8), record(0.6, 0.8)]  # mean 0.6, no spread: every step clear
    assert ch01.c2_comparisons(sweep)[0].verdict == "reproduced"
    sweep[0.1] = [record(0.95, 1.0), record(0.25, 1.0)]  # mean 0.6, range 0.7: nothing clear
    assert ch01.c2_comparisons(sweep)[0].verdict == "not reproduced"


def test_c2_noise_remark_counts_the_clear_steps():
    sweep = {
        0.1: [record(0.9, 1.0), record(0.95, 1.0)],
        0.3: [record(0.7, 0.9), record(0.7, 0.9)],
        1.0: [record(0.675, 0.8), record(0.575, 0.8)],
    }
    remark = report.c2_noise_remark(sweep)
    assert "spans 0.05 (10%), 0 (30%), 0.1 (100%)" in remark
    assert "1 of the 2 steps between fractions falls by more" in remark
    one_seed = {f: runs[:1] for f, runs in sweep.items()}
    assert "cannot be weighed" in report.c2_noise_remark(one_seed)


# --- the cached steps call trained_model with the profile defaults -----------------------------


@pytest.fixture
def fake_trained_model(monkeypatch):
    calls = []

    def fake(family, *, profile, fraction=1.0, seed=0, **kwargs):
        calls.append((family, profile.name, fraction, kwargs | ({"seed": seed} if seed else {})))
        name = profile.models[family]
        h = history(1.0 + fraction, 1.5)
        return TrainedModel(name, create_model(name), h, None, 10, 32)

    monkeypatch.setattr(ch01, "trained_model", fake)
    return calls


def test_family_runs_uses_the_shared_models(fake_trained_model):
    runs = ch01.family_runs("smoke")
    assert list(runs) == ["resnet", "local_vit", "vit", "alternet"]
    assert all(kwargs == {} and f == 1.0 for _, _, f, kwargs in fake_trained_model)
    assert runs["vit"].model == "vit_tiny"
    assert runs["vit"].train_seconds == pytest.approx(3.0)
    assert "ViT: vit_tiny" in report.training_budget(runs)


def test_fraction_sweep_trains_every_fraction_at_every_seed(fake_trained_model):
    profile = get_profile("smoke", seeds=(0, 3))
    sweep = ch01.fraction_sweep(profile)
    assert list(sweep) == sorted(SMOKE.data_fractions)
    assert all(len(runs) == 2 for runs in sweep.values())
    assert [(fam, f, kw) for fam, _, f, kw in fake_trained_model] == [
        ("vit", f, kw) for f in sorted(SMOKE.data_fractions) for kw in ({}, {"seed": 3})
    ]
    budget = report.training_budget(sweep, profile.seeds)
    assert "ViT on 25%, seed 0" in budget and "ViT on 25%, seed 3" in budget
    assert "ViT on 25%, seed 1" in report.training_budget(sweep)  # numbered without seeds
    assert "ViT on 25%:" in report.training_budget(ch01.fraction_sweep(SMOKE))  # one seed
    assert "ViT on 25%, 50% of the data at seed(s) 0, 3" in report.training_plan(
        get_profile("smoke", seeds=(0, 3), data_fractions=(0.25, 0.5, 1.0))
    )


def test_seed_runs_train_every_seed_of_the_profile(fake_trained_model):
    runs = ch01.seed_runs(get_profile("smoke", seeds=(0, 3)))
    assert list(runs) == list(ch01.C1_FAMILIES) and all(len(r) == 2 for r in runs.values())
    assert [(fam, kw) for fam, _, _, kw in fake_trained_model][:2] == [
        ("resnet", {}),
        ("resnet", {"seed": 3}),
    ]


def test_cue_reliance_tests_the_c1_families_at_seed_0(fake_trained_model):
    profile = get_profile("smoke", n_test=40, analysis_test_images=20)
    cues = ch01.cue_reliance(profile, refresh=True)
    assert [(family, kw) for family, _, _, kw in fake_trained_model] == [
        (f, {}) for f in ch01.C1_FAMILIES
    ]
    assert set(cues.models) == {profile.models[f] for f in ch01.C1_FAMILIES}
    assert all(set(acc) == {"both", "low", "high", "none"} for acc in cues.models.values())
    assert (cues.chance, cues.images) == (10.0, 20)
    assert ch01.cue_reliance(get_profile("gpu")).models == {}  # CIFAR: no cue sets, no training


def test_image_fit_evaluates_every_c1_family_at_every_seed_on_unaugmented_images(
    fake_trained_model,
):
    profile = get_profile("smoke", n_train=60, seeds=(0, 2))
    fit = ch01.image_fit(profile, refresh=True)
    assert [(family, kw) for family, _, _, kw in fake_trained_model] == [
        (f, kw) for f in ch01.C1_FAMILIES for kw in ({}, {"seed": 2})
    ]
    assert set(fit.models) == {profile.models[f] for f in ch01.C1_FAMILIES}
    assert fit.images == 60 and all(len(runs) == 2 for runs in fit.models.values())
    assert all(m.count == 60 and 0 < m.nll < 5 for runs in fit.models.values() for m in runs)
    # the images as they are, in fixed order: the dataset's own first images, unaugmented
    images, labels = next(iter(evaluation_loader(profile, train=True)))
    dataset, _ = get_dataset("synthetic", train=True, n=60, synthetic_config=profile.synthetic)
    assert torch.equal(images, dataset.tensors[0][: len(images)])
    assert torch.equal(labels, dataset.tensors[1][: len(labels)])


CUES = {
    "resnet_tiny": {"both": 72.0, "low": 20.0, "high": 70.0, "none": 10.0},
    "local_vit_tiny": {"both": 33.0, "low": 30.0, "high": 10.0, "none": 10.0},
    "vit_tiny": {"both": 29.0, "low": 28.0, "high": 11.0, "none": 10.0},
}


def test_cue_reading_says_when_the_families_learned_different_cues():
    text = cues_report.cue_reading(CUES, SMOKE, 10.0, 1000)
    assert "The ResNet scores 70 % on texture-only images" in text
    assert (
        "do not read the same cues above chance (the ResNet: the texture and the layout; "
        "the local ViT and the ViT: the layout)"
    ) in text
    layout = {name: {**acc, "high": 10.0, "low": 60.0} for name, acc in CUES.items()}
    same = cues_report.cue_reading(layout, SMOKE, 10.0, 1000)
    assert "do not" not in same and "All three read the layout above chance" in same
    chance = {name: dict.fromkeys(acc, 10.0) for name, acc in CUES.items()}
    assert "No family reads a single cue" in cues_report.cue_reading(chance, SMOKE, 10.0, 1000)
    assert "no cue-removal test sets" in cues_report.cue_reading({}, SMOKE, 10.0, 0)


def test_steps_are_registered():
    steps = precompute_steps()
    assert "ch01_inductive_bias.family_runs" in steps
    assert "ch01_inductive_bias.fraction_sweep" in steps
    assert "ch01_inductive_bias.seed_runs" in steps
    assert "ch01_inductive_bias.cue_reliance" in steps
    assert "ch01_inductive_bias.image_fit" in steps


# --- figures and the widget --------------------------------------------------------------------


def test_figures_draw():
    finals = {f: record(0.5, 0.6).final for f in ("resnet", "local_vit", "vit")}
    sweep = {0.25: [record(0.4, 0.9), record(0.5, 0.9)], 1.0: [record(0.5, 0.6)]}
    figures = [
        plot_final_metrics(finals),
        plot_fraction_sweep(sweep),
        plot_interaction_range(torch.rand(3, 32, 32), layers=2),
        plot_fit_vs_generalization({"vit": list(finals.values())}, ch01.PAPER_FIG5A, sweep),
    ]
    assert all(isinstance(fig, Figure) for fig in figures)
    assert len(figures[1].axes) == 3
    plt.close("all")


def test_fraction_sweep_draws_every_test_point_of_a_sparsely_tested_run():
    # a small-data run is tested only at the full run's step counts: NaN in between
    sparse = record(0.4, 0.9)
    sparse.history.epoch.extend([3, 4])
    sparse.history.train_nll.extend([0.4, 0.4])
    sparse.history.test_nll[:] = [math.nan, 0.9, math.nan, 0.8]
    fig = plot_fraction_sweep({0.5: [sparse], 1.0: [record(0.5, 0.6)]}, log_nll=True)
    test_lines = [line for line in fig.axes[0].lines if line.get_linestyle() == "--"]
    assert [line.get_ydata().tolist() for line in test_lines] == [[0.9, 0.8], [0.6, 0.6]]
    assert test_lines[0].get_xdata().tolist() == [1.0, 2.0]  # epochs 2 and 4 of a half run
    plt.close("all")


def test_log_scale_labels_ticks_in_plain_numbers():
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1.1, 2.3])
    log_scale(ax)
    fig.canvas.draw()
    labels = [t.get_text() for t in ax.get_yticklabels(minor=True) if t.get_text()]
    assert ax.get_yscale() == "log" and "1.4" in labels and "2" in labels
    assert not any("10" in label or "×" in label for label in labels)
    plt.close("all")


def test_explorer_static_and_interactive():
    fig = interaction_range_explorer(SMOKE, interactive=False)
    assert isinstance(fig, Figure)
    ui = interaction_range_explorer(SMOKE, interactive=True)
    assert ui.__class__.__name__ == "VBox"
    plt.close("all")


def test_readings_follow_the_numbers():
    final = {"resnet": record(0.3, 0.5).final, "local_vit": record(0.5, 0.6).final}
    final["vit"] = record(0.8, 0.85).final
    assert "rank the three families alike" in report.c1_reading(final)
    final["local_vit"] = record(0.2, 0.6).final  # train order swaps ResNet and local ViT
    assert "the other two swap places" in report.c1_reading(final)
    final["vit"] = record(0.1, 0.9).final  # lowest train NLL, highest test error
    assert "belong to different models" in report.c1_reading(final)
    paper_like = {0.1: [record(0.9, 1.0)], 0.3: [record(0.7, 0.8)], 1.0: [record(0.5, 0.6)]}
    reading = report.c2_reading(paper_like)
    assert "train NLL falls at every step" in reading and "as in the paper" in reading
    # seed means decide: 0.3's mean (1.0) is above 0.1's, so the train NLL only falls overall
    paper_like[0.3] = [record(1.3, 0.8), record(0.7, 0.8)]
    assert "train NLL falls overall" in report.c2_reading(paper_like)
    fits_small = {0.1: [record(0.1, 1.0)], 0.3: [record(0.3, 0.8)], 1.0: [record(0.5, 0.6)]}
    reading = report.c2_reading(fits_small)
    assert "train NLL rises at every step" in reading and "unlike in the paper" in reading
    assert "test error falls at every step" in reading


def test_scale_remark_says_when_the_task_is_solved():
    easy = {f: record(0.01, 0.02).final for f in ch01.C1_FAMILIES}  # test error 0.2 %
    assert "easy for all of them" in report.c1_scale_remark(easy)
    hard = {f: record(2.0, 2.1).final for f in ch01.C1_FAMILIES}  # test error 21 %
    assert "far from solved" in report.c1_scale_remark(hard)


def test_local_vit_remark_places_the_local_model():
    final = {"resnet": record(0.1, 0.2).final, "vit": record(0.3, 0.4).final}
    for train, expected in ((0.2, "between"), (0.5, "above the ViT"), (0.05, "below")):
        final["local_vit"] = record(train, 0.3).final
        assert expected in report.local_vit_remark(final)


def test_train_nll_at_reads_the_same_share_of_every_run():
    runs = {"a": record(0.3, 0.5), "b": record(0.6, 0.9)}  # two epochs: 1.3 then 0.3, ...
    assert report.train_nll_at(runs, 0.4) == (1, {"a": 1.3, "b": 1.6})
    assert report.train_nll_at(runs, 1.0) == (2, {"a": 0.3, "b": 0.6})


def test_comparisons_gives_the_whole_box(fake_trained_model):
    rows = ch01.comparisons("smoke")
    assert [r.claim[:3] for r in rows] == ["C1:", "C1:", "C1:", "C2:", "C2:"]
    assert all(r.verdict in ("reproduced", "partly", "not reproduced") for r in rows)


# --- what the notebook glues into its text -----------------------------------------------------


def test_glue_values_follow_the_numbers():
    # two epochs each: running train NLL 1 + x, then x; two seeds of each family
    by_seed = {
        "resnet": [record(0.3, 0.5), record(0.3, 0.5)],
        "local_vit": [record(0.5, 0.6), record(0.7, 0.6)],
        "vit": [record(0.8, 0.85), record(0.8, 0.85)],
    }
    glued = report.c1_glue(by_seed)
    assert glued["c1_train_order"] == "ResNet 0.3 < local ViT 0.6 < ViT 0.8"
    assert glued["c1_test_order"] == "ResNet 5 < local ViT 6 < ViT 8.5"
    assert glued["c1_vit_resnet_ratio"] == "2.7× larger" and glued["c1_seeds"] == "2 seeds"
    assert glued["c1_early_epoch"] == 1
    assert glued["c1_early_order"] == "ResNet 1.3 < local ViT 1.5 < ViT 1.8"
    assert "rank the three families alike" in glued["c1_reading"]
    sweep = {0.25: [record(0.1, 1.0), record(0.3, 1.0)], 1.0: [record(0.5, 0.6)] * 2}
    glued = report.c2_glue(sweep)
    assert glued["c2_small"] == "25%" and glued["c2_small_epochs"] == 2
    assert glued["c2_train_values"] == "0.200 (0.100–0.300) (25%), 0.500 (0.500–0.500) (100%)"
    assert glued["c2_seeds"] == "2 seeds"
    assert "unlike in the paper" in glued["c2_reading"]


def test_every_glued_name_of_the_notebook_is_produced():
    import json
    import re
    from pathlib import Path

    notebook = Path(__file__).parents[1] / "notebooks" / "01_inductive_bias.ipynb"
    cells = json.loads(notebook.read_text())["cells"]
    text = "".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    used = set(re.findall(r"\{glue:text\}`(\w+)`", text))
    code = "".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    by_seed = {f: [record(0.3, 0.5)] for f in ch01.C1_FAMILIES}
    produced = (
        architectures.parameter_glue(architectures.architecture_summary(SMOKE)).keys()
        | report.c1_glue(by_seed).keys()
        | report.c2_glue({0.5: [record(0.2, 0.3)], 1.0: [record(0.3, 0.4)]}).keys()
        | set(re.findall(r'glue\("(\w+)"', code))  # glued by name in the notebook itself
    )
    assert used and used <= produced
