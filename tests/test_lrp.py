"""LRP through the LSTM's gates against a slow reference, and its conservation axiom."""

import numpy as np
import pytest
import torch
from lrp_reference import lrp_reference
from user_net import UserNet

from lstmlens.methods.lrp_core import lrp_parts
from lstmlens.models import ClassifierConfig, LSTMClassifier
from lstmlens.parts import wrap


@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("s", [0.0, 1.0])
def test_matches_slow_reference(layers, s):
    torch.manual_seed(layers)
    net = UserNet(30, 6, 7, layers).eval()
    parts = wrap(net, embedding="emb", lstm="lstm", head="fc")
    ids = torch.randint(1, 30, (3, 8))
    lengths = torch.tensor([8, 8, 8])
    target = torch.tensor([0, 2, 1])
    R, initial, score = lrp_parts(parts, ids, lengths, target, bias_factor=s,
                                  dtype=torch.float64)
    words = R.sum(-1)
    for b in range(3):
        emb = net.emb(ids[b]).detach().double().numpy()
        ref_words, ref_init, ref_score = lrp_reference(
            net.lstm, emb, net.fc.weight.detach().double().numpy(),
            net.fc.bias.detach().double().numpy(), int(target[b]), s=s)
        assert np.abs(words[b].numpy() - ref_words).max() <= 1e-8
        assert abs(float(initial[b]) - ref_init) <= 1e-8
        assert abs(float(score[b]) - ref_score) <= 1e-10


@pytest.mark.parametrize("pooling,bidir", [("last", False), ("final", True),
                                           ("attention", True)])
def test_conservation_with_bias_factor_one(pooling, bidir):
    torch.manual_seed(2)
    model = LSTMClassifier(ClassifierConfig(num_classes=3, vocab_size=30, embedding_dim=6,
                                            hidden_sizes=[7, 5], bidirectional=bidir,
                                            pooling="attention" if pooling == "attention"
                                            else "last")).eval()
    ids = torch.randint(1, 30, (4, 9))
    lengths = torch.tensor([9, 6, 3, 1])
    for b, L in enumerate(lengths):
        ids[b, L:] = 0
    target = torch.tensor([0, 1, 2, 0])
    R, initial, score = lrp_parts(model.explainable_parts(), ids, lengths, target,
                                  bias_factor=1.0, dtype=torch.float64)
    total = R.sum((1, 2)) + initial
    assert (total - score).abs().max() <= 1e-6
    with torch.no_grad():
        logits = model(ids, lengths).double()
    assert (score - logits[torch.arange(4), target]).abs().max() <= 1e-5
    padded = torch.arange(9)[None, :] >= lengths[:, None]
    assert R.abs().sum(-1)[padded].max() == 0  # nothing flows to padding


def _padded_model_and_ids(bidir=True, pooling="last"):
    torch.manual_seed(3)
    model = LSTMClassifier(ClassifierConfig(num_classes=3, vocab_size=30, embedding_dim=6,
                                            hidden_sizes=[7, 5], bidirectional=bidir,
                                            pooling=pooling)).eval()
    ids = torch.randint(1, 30, (4, 9))
    lengths = torch.tensor([9, 6, 3, 1])
    for b, L in enumerate(lengths):
        ids[b, L:] = 0
    return model, ids, lengths


@pytest.mark.parametrize("pooling", ["last", "attention"])
@pytest.mark.parametrize("s", [0.0, 1.0])
def test_word_sums_equal_summed_input_relevance(pooling, s):
    """explain's word scores (Σ_j q_j (W x)_j, no per-dimension product) equal the
    per-dimension relevance summed over the embedding; its prediction comes from LRP's own
    forward pass and equals the model's."""
    from lstmlens.explaining import explain
    model, ids, lengths = _padded_model_and_ids(pooling=pooling)
    a = explain(model, ids, "lrp", lengths=lengths, bias_factor=s, dtype=torch.float64)
    R, initial, _ = lrp_parts(model.explainable_parts(), ids, lengths, a.target,
                              bias_factor=s, dtype=torch.float64)
    assert (a.scores - R.sum(-1)).abs().max() <= 1e-10
    with torch.no_grad():
        want = torch.softmax(model(ids, lengths), -1)
    assert (a.prediction - want).abs().max() <= 1e-5
    if s:
        assert float(a.delta.max()) <= 1e-6


def test_fast_path_equals_general_path():
    """The bias_factor = 0 loop (one running relevance, buffers reused) gives what the
    general loop gives with bias_factor = 0."""
    from lstmlens.methods import lrp_core
    model, ids, lengths = _padded_model_and_ids()
    parts = model.explainable_parts()
    runs = [lrp_core.lrp_forward(parts, ids, lengths, torch.float64) for _ in range(2)]
    torch.manual_seed(0)
    for d in range(2):
        passes = [r.layers[0][0][d] for r in runs]
        T, P, B = passes[0].h.shape
        arrivals = [torch.randn(P, B, dtype=torch.float64) if t % 3 == 0 else None
                    for t in range(T)]
        general, initial = lrp_core._relevance(passes[0], arrivals, 1e-3, 0.0, True)
        fast = lrp_core._relevance_fast(passes[1], arrivals, 1e-3, True)
        assert (general - fast).abs().max() <= 1e-10
        assert initial.abs().max() == 0  # zero initial states get nothing at bias_factor 0


def test_projected_lstm_conserves_and_predicts():
    torch.manual_seed(4)
    net = UserNet(30, 6, 7, layers=2, proj=4).eval()
    parts = wrap(net, embedding="emb", lstm="lstm", head="fc")
    ids = torch.randint(1, 30, (3, 8))
    lengths = torch.full((3,), 8)
    target = torch.tensor([2, 0, 1])
    R, initial, score = lrp_parts(parts, ids, lengths, target, bias_factor=1.0,
                                  dtype=torch.float64)
    assert (R.sum((1, 2)) + initial - score).abs().max() <= 1e-6
    with torch.no_grad():
        assert (score.float() - net(ids)[torch.arange(3), target]).abs().max() <= 1e-5
    R0, _, _ = lrp_parts(parts, ids, lengths, target, dtype=torch.float64)
    assert torch.isfinite(R0).all() and R0.abs().sum() > 0


def test_sign_of_zero_is_plus_one():
    from lstmlens.methods.lrp_core import _stab
    z = torch.tensor([0.0, -0.0, -2.0, 3.0], dtype=torch.float64)
    assert _stab(z, 1e-3).tolist() == [1e-3, 1e-3, -2.001, 3.001]


def test_repeated_explanations_reuse_memory_without_mixing_results():
    """``explain`` keeps LRP's forward series in a per-thread workspace: a second call (on
    other sentences, a bidirectional 2-layer model) reuses the memory, and neither the
    first result nor a fresh-memory rerun changes."""
    from lstmlens.explaining import explain
    from lstmlens.workspace import thread_workspace
    model, ids, _ = _padded_model_and_ids()
    work = thread_workspace("lrp")
    first = explain(model, ids, "lrp")
    kept = first.scores.clone()
    kept_bytes = work.kept_bytes
    assert kept_bytes > 0
    other = explain(model, ids.flip(1), "lrp")
    assert work.kept_bytes == kept_bytes  # the same buffers again
    assert torch.equal(first.scores, kept)
    work.clear()
    again = explain(model, ids.flip(1), "lrp")  # fresh memory
    assert torch.equal(other.scores, again.scores)
    assert torch.equal(explain(model, ids, "lrp").scores, kept)


def test_buffers_over_the_limit_are_fresh_and_give_the_same_scores():
    from lstmlens.explaining import explain
    from lstmlens.workspace import KEEP_BYTES, thread_workspace
    model, ids, _ = _padded_model_and_ids()
    work = thread_workspace("lrp")
    kept = explain(model, ids, "lrp").scores
    work.clear()
    work.limit = 600  # room for a few small buffers only
    try:
        fresh = explain(model, ids, "lrp").scores
        assert 0 < work.kept_bytes <= 600
    finally:
        work.limit = KEEP_BYTES
    assert torch.equal(kept, fresh)
