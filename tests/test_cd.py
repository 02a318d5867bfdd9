"""Word-level contextual decomposition (``explain(..., "cd")``) against the slow reference.

The word-level maps step all (sentence, word) rows as a grid, one group per start step;
``decompose`` with arbitrary spans steps them one row per group. Both must equal the plain
reference, for stacked, bidirectional and projected LSTMs, each pooling and bias rule.
"""

import pytest
import torch
from cd_reference import cd_reference
from user_net import UserNet, scaled

from lstmlens.decomposition import decompose
from lstmlens.explaining import explain
from lstmlens.models import ClassifierConfig, LSTMClassifier
from lstmlens.parts import wrap


def _check(att, lstms, emb_of, W_out, lengths, pooling, bias_rule, alpha=None):
    for b, L in enumerate(lengths.tolist()):
        emb = emb_of(b, L)
        k = int(att.target[b])
        for t in range(L):
            rel, _ = cd_reference(lstms, emb, W_out, t, t, pooling=pooling, bias_rule=bias_rule,
                                  alpha=None if alpha is None else alpha[b, :L])
            assert abs(float(att.scores[b, t]) - rel[k]) <= 1e-8
        assert (att.scores[b, L:] == 0).all()


@pytest.mark.parametrize("layers,bidir,proj,bias", [(1, False, 0, True), (2, True, 0, True),
                                                    (2, False, 3, False), (1, True, 4, True)])
@pytest.mark.parametrize("bias_rule", ["code", "paper"])
def test_word_level_matches_reference(layers, bidir, proj, bias, bias_rule):
    torch.manual_seed(layers * 7 + bidir + proj)
    net = scaled(UserNet(30, 5, 6, layers, bidir, proj, bias)).eval()
    parts = wrap(net, embedding="emb", lstm="lstm", head="fc")
    ids = torch.randint(1, 30, (3, 7))
    att = explain(parts, ids, "cd", dtype="float64", bias_rule=bias_rule)
    W_out = net.fc.weight.detach().double().numpy()
    _check(att, [net.lstm], lambda b, L: net.emb(ids[b, :L]).detach().double().numpy(), W_out,
           torch.tensor([7, 7, 7]), "last", bias_rule)
    assert float(att.delta.max()) <= 1e-10


@pytest.mark.parametrize("bias_rule", ["code", "paper"])
def test_word_level_variable_lengths_attention_float32_conservation(bias_rule):
    torch.manual_seed(4)
    model = scaled(LSTMClassifier(ClassifierConfig(num_classes=2, vocab_size=25,
                                                   embedding_dim=5, hidden_sizes=[6, 4],
                                                   bidirectional=True, pooling="attention")))
    model.eval()
    ids = torch.randint(1, 25, (3, 8))
    lengths = torch.tensor([8, 5, 3])
    for b, L in enumerate(lengths):
        ids[b, L:] = 0
    att = explain(model, ids, "cd", lengths=lengths, dtype="float64", bias_rule=bias_rule)
    with torch.no_grad():
        _, alpha = model(ids, lengths, return_attention=True)
    W_out = model.head.weight.detach().double().numpy()
    _check(att, list(model.lstms),
           lambda b, L: model.embedding(ids[b, :L]).detach().double().numpy(), W_out, lengths,
           "attention", bias_rule, alpha.double().numpy())
    f32 = explain(model, ids, "cd", lengths=lengths, bias_rule=bias_rule)
    assert float(f32.delta.max()) <= 1e-5  # relevant + irrelevant = logits − bias


def test_final_state_pooling_and_grid_equals_rows():
    """h_n pooling reads the backward half at position 0; the grid and the one-row-per-group
    layouts give the same numbers."""
    torch.manual_seed(5)
    net = scaled(UserNet(30, 5, 6, 2, True, 0, True)).eval()
    parts = wrap(net, embedding="emb", lstm="lstm", head="fc", pooling="final")
    ids = torch.randint(1, 30, (2, 6))
    lengths = torch.tensor([6, 4])
    ids[1, 4:] = 0
    att = explain(parts, ids, "cd", lengths=lengths, dtype="float64")
    W_out = net.fc.weight.detach().double().numpy()
    _check(att, [net.lstm], lambda b, L: net.emb(ids[b, :L]).detach().double().numpy(), W_out,
           lengths, "final", "code")
    # the same unigram spans plus a repeated start: one row per group
    spans = [(b, t, t) for b in range(2) for t in range(int(lengths[b]))] + [(0, 0, 2)]
    d = decompose(parts, ids, spans, lengths=lengths, dtype="float64")
    rows = torch.tensor([s[0] for s in spans[:-1]])
    got = d.relevant[torch.arange(len(rows)), att.target[rows]]
    want = att.scores[rows, torch.tensor([s[1] for s in spans[:-1]])]
    assert (got - want).abs().max() <= 1e-12


@pytest.mark.parametrize("pooling", ["last", "attention"])
def test_repeated_calls_reuse_buffers_without_stale_values(pooling):
    """The per-step buffers are kept per thread between calls; a call after a larger one
    (stale values beyond its rows) gives exactly what it gives in a fresh process state."""
    from lstmlens.workspace import thread_workspace
    torch.manual_seed(6)
    model = LSTMClassifier(ClassifierConfig(num_classes=3, vocab_size=25, embedding_dim=5,
                                            hidden_sizes=[6], bidirectional=True,
                                            pooling=pooling)).eval()
    small = torch.randint(1, 25, (2, 5))
    big = torch.randint(1, 25, (6, 11))
    thread_workspace("cd").clear()
    first = explain(model, small, "cd").scores.clone()
    explain(model, big, "cd")  # fills the buffers with other values
    again = explain(model, small, "cd").scores
    assert torch.equal(first, again)
