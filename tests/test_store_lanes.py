"""Documents packed into lanes (the corpus store's pass for language models): the packing,
and every series of every document against ``lstmlens.trace`` of that document alone."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import lstmlens
from lstmlens.models import ClassifierConfig, LSTMClassifier
from lstmlens.models.language_model import CharLanguageModel, LanguageModelConfig
from lstmlens.parts import parts_of
from lstmlens.store_chunk import _lstm_names
from lstmlens.store_lanes import MAX_LANES, Workspace, lanes_apply, plan_lanes, trace_lanes


@given(st.lists(st.integers(1, 60), min_size=1, max_size=300))
@settings(max_examples=200, deadline=None)
def test_plan_places_every_document_once_without_overlap(lens):
    lens = np.asarray(lens)
    lane, start, B, T = plan_lanes(lens)
    assert 1 <= B <= MAX_LANES and B <= max(1, lens.sum() // lens.max())
    assert T == int((start + lens).max()) and T >= lens.max()
    busy = np.zeros((B, T), np.int64)
    for d in range(len(lens)):
        assert 0 <= lane[d] < B and start[d] >= 0
        busy[lane[d], start[d]:start[d] + lens[d]] += 1
    assert busy.max() == 1 and busy.sum() == lens.sum()  # each step of each lane used once
    # longest-processing-time packing: no lane ends later than the average plus the longest
    assert T <= lens.sum() / B + lens.max()


def _lm(layers, torch_seed=0):
    torch.manual_seed(torch_seed)
    return CharLanguageModel(LanguageModelConfig(vocab_size=11, embedding_dim=5,
                                                 hidden_sizes=layers)).eval()


@pytest.mark.parametrize("layers", [[7], [7, 4], [6, 6, 3]])
def test_every_series_equals_the_document_traced_alone(layers):
    model = _lm(layers)
    parts = parts_of(model)
    rng = np.random.default_rng(1)
    lens = rng.integers(1, 40, 57)
    lens[5] = 90  # one long document: several short ones share a lane after it
    doc_s = np.concatenate([[0], np.cumsum(lens)])
    toks = torch.from_numpy(rng.integers(1, 11, int(lens.sum())))
    lane, start, B, T = plan_lanes(lens)
    assert B > 1 and len(set(lane.tolist())) < len(lens)  # lanes hold several documents
    got: dict[str, torch.Tensor] = {}
    sel_from, n = 13, int(lens.sum()) - 40  # a stretch cutting documents at both ends
    with torch.no_grad():
        top = trace_lanes(parts, _lstm_names(model), toks, doc_s, sel_from, n, Workspace(),
                          lambda key, v: got.__setitem__(key, v.clone()))
    assert len(got) == 6 * len(layers)
    for d in range(len(lens)):
        a, b = max(doc_s[d], sel_from), min(doc_s[d + 1], sel_from + n)
        if a >= b:
            continue
        tr = lstmlens.trace(model, toks[doc_s[d]:doc_s[d + 1]][None])
        for key, v in got.items():
            want = tr[key][0, a - doc_s[d]:b - doc_s[d]]
            torch.testing.assert_close(v[a - sel_from:b - sel_from], want, atol=1e-6,
                                       rtol=1e-5, msg=key)
        top_key = f"{_lstm_names(model)[id(parts.lstms[-1])]}.layers.0.forward.hidden"
        torch.testing.assert_close(top[a - sel_from:b - sel_from],
                                   tr[top_key][0, a - doc_s[d]:b - doc_s[d]], atol=1e-6,
                                   rtol=1e-5)


def test_workspace_is_reused_and_grown():
    w = Workspace()
    a = w.get("g", 4, 5)
    b = w.get("g", 2, 3)
    assert a.data_ptr() == b.data_ptr()  # smaller: the same memory
    c = w.get("g", 10, 10)
    assert c.shape == (10, 10) and c.numel() == 100


def test_lanes_serve_forward_language_models_only():
    assert lanes_apply(_lm([4, 4]), parts_of(_lm([4, 4])))
    clf = LSTMClassifier(ClassifierConfig(num_classes=2, vocab_size=9, embedding_dim=3,
                                          hidden_sizes=[4]))
    assert not lanes_apply(clf, parts_of(clf))  # one prediction per document: padded batches
