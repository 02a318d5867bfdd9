"""Occlusion with prefix reuse (one packed batch of suffixes) against plain re-runs."""

import dataclasses

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from lstmlens.explaining import explain
from lstmlens.methods.occlusion import Occlusion
from lstmlens.models import ClassifierConfig, LSTMClassifier
from lstmlens.parts import ModelParts, wrap


def _plain(parts, inp, lengths, target, window, feature=None):
    """Every variant masked and run whole, one at a time; windows averaged per step."""
    B, T = inp.shape[:2]
    out = torch.zeros(B, T) if feature is None else torch.zeros(B, T, inp.shape[-1])
    count = torch.zeros_like(out)
    with torch.no_grad():
        for b in range(B):
            L = int(lengths[b])
            e = inp[b:b + 1, :L]
            full = parts.logits_from_embedded(parts.embed(e) if feature else e)[0, target[b]]
            feats = range(inp.shape[-1]) if feature else [None]
            for t in range(L - window + 1):
                for f in feats:
                    m = e.clone()
                    if f is None:
                        m[:, t:t + window] = 0.0
                    else:
                        m[:, t:t + window, f] = 0.0
                    x = parts.embed(m) if feature else m
                    d = full - parts.logits_from_embedded(x)[0, target[b]]
                    idx = (b, slice(t, t + window)) if f is None else (b, slice(t, t + window), f)
                    out[idx] += d
                    count[idx] += 1
    return out / count.clamp_min(1)


@pytest.mark.parametrize("pooling,window", [("last", 1), ("attention", 2), ("last", 3)])
def test_suffix_reuse_equals_plain_reruns(pooling, window):
    torch.manual_seed(6)
    model = LSTMClassifier(ClassifierConfig(num_classes=3, vocab_size=30, embedding_dim=5,
                                            hidden_sizes=[7, 6], pooling=pooling)).eval()
    ids = torch.randint(1, 30, (3, 8))
    lengths = torch.tensor([8, 6, 4])
    for b, L in enumerate(lengths):
        ids[b, L:] = 0
    att = explain(model, ids, "occlusion", lengths=lengths, window=window)
    parts = model.explainable_parts()
    ref = _plain(parts, model.embed(ids).detach(), lengths, att.target, window)
    assert (att.scores - ref).abs().max() <= 1e-5


def test_stacked_projected_layers_in_one_module_and_features():
    torch.manual_seed(7)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = nn.LSTM(3, 5, num_layers=2, proj_size=4, batch_first=True)
            self.fc = nn.Linear(4, 2)

    parts = wrap(Net().eval(), lstm="lstm", head="fc")
    x = torch.randn(2, 6, 3)
    att = explain(parts, x, "occlusion", window=2)
    ref = _plain(parts, x, torch.tensor([6, 6]), att.target, 2, feature=True)
    assert att.scores.shape == (2, 6, 3)
    assert (att.scores - ref).abs().max() <= 1e-5


def test_parts_that_are_not_exact_rerun_whole(monkeypatch):
    torch.manual_seed(8)
    model = LSTMClassifier(ClassifierConfig(num_classes=2, vocab_size=30, embedding_dim=5,
                                            hidden_sizes=[6])).eval()
    ids = torch.randint(1, 30, (2, 7))
    reuse = explain(model, ids, "occlusion").scores

    @dataclasses.dataclass
    class Loose(ModelParts):
        exact = False

    p = model.explainable_parts()
    loose = Loose(**{f.name: getattr(p, f.name) for f in dataclasses.fields(ModelParts)})

    def refuse(*a, **k):
        raise AssertionError("prefix reuse used for parts that are not exact")

    monkeypatch.setattr(Occlusion, "_suffix", refuse)
    plain = explain(loose, ids, "occlusion").scores
    assert (plain - reuse).abs().max() <= 1e-5


@given(st.lists(st.integers(0, 9), min_size=1, max_size=6), st.integers(1, 4),
       st.one_of(st.none(), st.integers(1, 3)))
@settings(max_examples=100, deadline=None)
def test_variants_are_every_sequence_start_and_feature_in_order(lengths, window, features):
    from lstmlens.methods.occlusion import _variants
    want = [(b, t, f) for b, L in enumerate(lengths) for t in range(L - window + 1)
            for f in ([-1] if features is None else range(features))]
    seq, start, feat = _variants(torch.tensor(lengths), window, features)
    assert list(zip(seq.tolist(), start.tolist(), feat.tolist(), strict=True)) == want
