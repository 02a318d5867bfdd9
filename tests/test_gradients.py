"""Integrated gradients: completeness at default settings, and Captum's numbers.

The default (``steps="auto"``) is adaptive composite Gauss–Legendre quadrature along the
path (``methods/ig_adaptive.py``); a whole number of steps is one Gauss–Legendre rule over
the whole path, exactly Captum's.
"""

import numpy as np
import pytest
import torch
from captum.attr import IntegratedGradients

from lstmlens.errors import InputError
from lstmlens.explaining import explain
from lstmlens.methods.ig_adaptive import adaptive_integrated_gradients, integrate_segments
from lstmlens.models import ClassifierConfig, LSTMClassifier


def _scaled_model(scale: float):
    torch.manual_seed(0)
    model = LSTMClassifier(ClassifierConfig(num_classes=2, vocab_size=30, embedding_dim=5,
                                            hidden_sizes=[8])).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(scale)
    torch.manual_seed(0)
    return model, torch.randint(1, 30, (4, 10))


@pytest.fixture(scope="module")
def sharp():
    """A model whose path integral is rough enough that 64 points miss completeness."""
    return _scaled_model(6)


@pytest.fixture(scope="module")
def spiky():
    """Large weights: gates saturate abruptly along the path, so the integrand has narrow
    spikes that one Gauss–Legendre rule of 64 to 1024 points misses (1024: gap 2e-2)."""
    return _scaled_model(15)


def _completeness_gap(model, ids, att):
    """|Σ scores − (f(x) − f(0))|, from the model's own forward pass (not trusted)."""
    with torch.no_grad():
        e = model.embed(ids)
        parts = model.explainable_parts()
        diff = parts.logits_from_embedded(e) - parts.logits_from_embedded(0 * e)
    diff = diff[torch.arange(ids.shape[0]), att.target]
    return (att.scores.sum(1) - diff).abs()


def test_default_steps_meet_completeness(sharp):
    model, ids = sharp
    fixed = explain(model, ids, "integrated_gradients", steps=64)
    assert float(fixed.delta.max()) > 1e-3  # 64 points are not enough here
    auto = explain(model, ids, "integrated_gradients")
    assert float(auto.delta.max()) <= 1e-3
    assert float(_completeness_gap(model, ids, auto).max()) <= 1e-3
    p = auto.params
    assert p["steps"] == "auto" and all(len(p[k]) == 4 for k in ("steps_used", "segments", "gap"))
    assert torch.allclose(torch.tensor(p["gap"]), auto.delta)
    # the smooth sequences stop after the first rule: exactly Captum's 64 points
    done = [b for b in range(4) if p["segments"][b] == 1]
    rough = [b for b in range(4) if p["segments"][b] > 1]
    assert done and rough
    assert all(p["steps_used"][b] == 64 for b in done)
    assert all(p["steps_used"][b] > 64 for b in rough)
    for b in done:
        assert (auto.scores[b] - fixed.scores[b]).abs().max() == 0


def test_spike_needs_adaptive_segments(spiky):
    model, ids = spiky
    for n in (64, 512):  # one rule over the whole path misses (1024 is slow to set up)
        assert float(explain(model, ids, "integrated_gradients", steps=n).delta.max()) > 1e-3
    auto = explain(model, ids, "integrated_gradients")
    assert float(_completeness_gap(model, ids, auto).max()) <= 1e-3
    assert float(auto.delta.max()) <= 1e-3
    p = auto.params
    assert max(p["steps_used"]) <= p["budget"] and min(p["segments"]) > 1
    assert all(p["float64"])  # refined in float64, on a copy: the model stays float32
    assert all(q.dtype == torch.float32 for q in model.parameters())
    # and the scores are right, not only their sum: a float64 reference, a composite
    # rule of 64 segments × 64 points (4096), plain slow code
    m64 = LSTMClassifier(model.config).double().eval()
    m64.load_state_dict(model.state_dict())
    p64 = m64.explainable_parts()
    e = model.embed(ids).detach().double()  # (B, T, E)
    nodes, weights = (torch.tensor(v, dtype=torch.float64)
                      for v in np.polynomial.legendre.leggauss(64))
    ref = torch.zeros_like(e)
    B, T, _ = e.shape
    for k in range(64):
        t = ((nodes + 1) / 2 + k) / 64  # (64,) points of segment k
        x = (t[:, None, None, None] * e).reshape(64 * B, T, -1).requires_grad_(True)
        out = p64.logits_from_embedded(x).reshape(64, B, -1)[:, torch.arange(B), auto.target]
        g = torch.autograd.grad(out.sum(), x)[0].reshape(64, B, T, -1)
        ref += (weights[:, None, None, None] / 128 * g).sum(0) * e
    assert (auto.scores.double() - ref.sum(-1)).abs().max() <= 1e-3
    assert max(p["segment_gaps"]) <= 1e-3


def test_segments_add_up_to_the_whole_path(sharp):
    model, ids = sharp
    parts = model.explainable_parts()
    e = model.embed(ids).detach()  # (B, T, E)
    L = torch.full((4,), ids.shape[1])
    target = explain(model, ids, "integrated_gradients", steps=8).target
    fwd = parts.logits_from_embedded

    def ig(a, b, n):  # IG of the segment x(a) → x(b) of the path from 0 to e
        return integrate_segments(fwd, a * e, b * e, target, L, n)

    whole = ig(0.0, 1.0, 256)
    cuts = [0.0, 0.3, 0.5, 0.55, 1.0]
    pieces = sum(ig(a, b, 128) for a, b in zip(cuts, cuts[1:], strict=False))
    assert (pieces - whole).abs().max() <= 1e-4
    # a segment is IG with the segment's start as baseline: same as Captum called so
    direct = IntegratedGradients(lambda x: fwd(x, L.repeat(x.shape[0] // 4))).attribute(
        0.5 * e, baselines=0.3 * e, target=target, n_steps=16, method="gausslegendre")
    assert (ig(0.3, 0.5, 16) - direct).abs().max() == 0


def test_explicit_steps_and_bad_steps(sharp):
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
    for bad in (0, -1e-3, "small", True):
        with pytest.raises(InputError, match="tolerance must be"):
            explain(model, ids, "integrated_gradients", tolerance=bad)
    for bad in (10, 2.5e3, True):
        with pytest.raises(InputError, match="budget must be"):
            explain(model, ids, "integrated_gradients", budget=bad)


def test_float32_refinement_without_a_float64_copy(spiky):
    model, ids = spiky
    parts = model.explainable_parts()
    e = model.embed(ids).detach()  # (B, T, E)
    target = explain(model, ids, "integrated_gradients", steps=8).target
    L = torch.full((4,), ids.shape[1])
    res = adaptive_integrated_gradients(parts.logits_from_embedded, e, 0 * e, target, L,
                                        refine=lambda: None)
    assert not any(res.float64) and min(res.segments) > 1
    assert res.attributions.dtype == torch.float32
    with torch.no_grad():
        diff = (parts.logits_from_embedded(e) - parts.logits_from_embedded(0 * e))[
            torch.arange(4), target]
    gap = (res.attributions.double().flatten(1).sum(1) - diff.double()).abs()
    assert torch.allclose(gap.float(), res.delta, atol=1e-5)
    assert float(res.delta.max()) <= 1e-3


def test_budget_caps_the_work(spiky):
    model, ids = spiky
    a = explain(model, ids, "integrated_gradients", budget=128)
    assert max(a.params["steps_used"]) <= 128
    assert float(a.delta.max()) > 1e-3  # honest: the gap says it did not converge
    assert torch.allclose(_completeness_gap(model, ids, a), a.delta, atol=1e-4)
