"""Integrated gradients: completeness at default settings, and Captum's numbers."""

import pytest
import torch

from lstmlens.errors import InputError
from lstmlens.explaining import explain
from lstmlens.models import ClassifierConfig, LSTMClassifier


@pytest.fixture(scope="module")
def sharp():
    """A model whose path integral is rough enough that 64 points miss completeness."""
    torch.manual_seed(0)
    model = LSTMClassifier(ClassifierConfig(num_classes=2, vocab_size=30, embedding_dim=5,
                                            hidden_sizes=[8])).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(6)
    torch.manual_seed(0)
    return model, torch.randint(1, 30, (4, 10))


def test_default_steps_meet_completeness(sharp):
    model, ids = sharp
    fixed = explain(model, ids, "integrated_gradients", steps=64)
    assert float(fixed.delta.max()) > 1e-3  # 64 points are not enough here
    auto = explain(model, ids, "integrated_gradients")
    assert float(auto.delta.max()) <= 1e-3
    used = auto.params["steps_used"]
    assert auto.params["steps"] == "auto" and len(used) == 4
    assert min(used) == 64 and max(used) > 64  # only the rough sequences got more points
    # a sequence that needed n points equals a plain run with n points
    b = used.index(max(used))
    one = explain(model, ids[b:b + 1], "integrated_gradients", steps=max(used))
    assert (one.scores[0] - auto.scores[b]).abs().max() <= 1e-6
    # sum of scores vs f(x) − f(baseline), checked here rather than trusted from Captum
    with torch.no_grad():
        e = model.embed(ids)
        parts = model.explainable_parts()
        gap = (parts.logits_from_embedded(e) - parts.logits_from_embedded(0 * e))
    gap = gap[torch.arange(4), auto.target]
    assert (auto.scores.sum(1) - gap).abs().max() <= 1e-3


def test_explicit_steps_and_bad_steps(sharp):
    from captum.attr import IntegratedGradients

    model, ids = sharp
    a = explain(model, ids, "integrated_gradients", steps=32)
    assert a.params["steps"] == 32 and "steps_used" not in a.params
    parts = model.explainable_parts()
    emb = model.embed(ids).detach()
    ref = IntegratedGradients(lambda e: parts.logits_from_embedded(e)).attribute(
        emb, baselines=torch.zeros_like(emb), target=a.target, n_steps=32,
        method="gausslegendre")
    assert (a.scores - ref.sum(-1)).abs().max() <= 1e-6
    for bad in (0, "many", 2.5, True):
        with pytest.raises(InputError, match="steps must be"):
            explain(model, ids, "integrated_gradients", steps=bad)
