"""One evaluate and one mode context: checked against a hand computation."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from course_lib.analysis.evaluation import accuracy, eval_mode, evaluate, model_mode, tensor_batches
from course_lib.config import as_profile, get_profile
from course_lib.data import DataSpec, make_loaders


def _model_and_data():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 5), nn.Dropout(0.5), nn.BatchNorm1d(5))
    images, labels = torch.randn(37, 3, 2, 2), torch.randint(0, 5, (37,))
    return model, images, labels


def test_evaluate_matches_a_hand_computation_in_eval_mode():
    model, images, labels = _model_and_data()
    model.train()
    metrics = evaluate(model, tensor_batches(images, labels, batch_size=8))
    model.eval()
    with torch.no_grad():
        logits = model(images)
    assert metrics.count == 37
    assert metrics.nll == pytest.approx(F.cross_entropy(logits, labels).item(), rel=1e-6)
    wrong = (logits.argmax(1) != labels).double().mean().item()
    assert metrics.error == pytest.approx(100 * wrong)
    assert accuracy(model, images, labels, batch_size=5) == pytest.approx(100 - metrics.error)


def test_evaluate_restores_each_modules_mode_and_rejects_empty_data():
    model, images, labels = _model_and_data()
    model.train()
    model[3].eval()  # a frozen BatchNorm inside a training model
    evaluate(model, [(images, labels)])
    assert model.training and model[2].training and not model[3].training
    with pytest.raises(ValueError, match="no images"):
        evaluate(model, [])


def test_mode_contexts_set_and_restore():
    model, _, _ = _model_and_data()
    model.eval()
    with model_mode(model, training=True):
        assert all(m.training for m in model.modules())
    assert not any(m.training for m in model.modules())
    model.train()
    with eval_mode(model):
        assert not any(m.training for m in model.modules())
    assert all(m.training for m in model.modules())


def test_profile_data_spec_is_passed_whole_to_make_loaders():
    profile = get_profile("smoke", n_train=48, n_test=16)
    assert as_profile(profile) is profile and as_profile("smoke").name == "smoke"
    spec = profile.data_spec(image_size=16)
    assert spec == DataSpec("synthetic", 48, 16, 16, profile.train.augment, profile.synthetic)
    train, test, info = make_loaders(spec, batch_size=16)
    images, _ = next(iter(train))
    assert images.shape == (16, 3, 16, 16) and len(test.dataset) == 16
    assert info.image_size == 16
