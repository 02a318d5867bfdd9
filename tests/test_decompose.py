"""lstmlens.decompose (contextual decomposition) against a slow reference and its axioms."""

import numpy as np
import pytest
import torch
from cd_reference import cd_reference
from user_net import UserNet, scaled

import lstmlens
from lstmlens.decomposition import decompose
from lstmlens.errors import InputError
from lstmlens.models import ClassifierConfig, LSTMClassifier
from lstmlens.parts import wrap


@pytest.mark.parametrize("layers,bidir,proj", [(1, False, 0), (2, False, 0), (1, True, 0),
                                                (2, True, 0), (1, False, 4), (2, True, 3)])
@pytest.mark.parametrize("bias_rule", ["code", "paper"])
def test_matches_slow_reference(layers, bidir, proj, bias_rule):
    torch.manual_seed(layers * 10 + bidir + proj)
    net = scaled(UserNet(30, 6, 7, layers, bidir, proj)).eval()
    ids = torch.randint(1, 30, (9,))
    parts = wrap(net, embedding="emb", lstm="lstm", head="fc")
    spans = [(0, 0), (3, 3), (2, 5), (0, 8), (8, 8)]
    d = decompose(parts, ids, spans, dtype="float64", bias_rule=bias_rule)
    emb = net.emb(ids).detach().double().numpy()
    W_out = net.fc.weight.detach().double().numpy()
    for i, (s, e) in enumerate(spans):
        rel, irr = cd_reference([net.lstm], emb, W_out, s, e, bias_rule=bias_rule)
        assert np.abs(d.relevant[i].numpy() - rel).max() <= 1e-8
        assert np.abs(d.irrelevant[i].numpy() - irr).max() <= 1e-8
    with torch.no_grad():
        logits = net(ids[None]).double()[0]
    assert (d.logits[0] - logits).abs().max() <= 1e-5


def test_conservation_float32_and_whole_sentence():
    torch.manual_seed(0)
    net = scaled(UserNet(30, 6, 7, 2, True)).eval()
    parts = wrap(net, embedding="emb", lstm="lstm", head="fc")
    ids = torch.randint(1, 30, (4, 12))
    spans = [(b, t, t) for b in range(4) for t in range(12)] + [(b, 0, 11) for b in range(4)]
    d = decompose(parts, ids, spans)
    assert d.relevant.dtype == torch.float32 and d.relevant.shape == (52, 3)
    assert d.delta <= 1e-5  # relevant + irrelevant = logits − bias
    whole = d.irrelevant[-4:]
    assert whole.abs().max() <= 1e-5  # with the code's bias rule, γ_T = 0 for the sentence
    paper = decompose(parts, ids, spans[-4:], bias_rule="paper")
    assert paper.irrelevant.abs().max() > 1e-3  # the paper's rule leaves bias terms in γ


def test_classifier_with_attention_and_variable_lengths():
    torch.manual_seed(1)
    model = scaled(LSTMClassifier(ClassifierConfig(num_classes=2, vocab_size=25,
                                                   embedding_dim=5, hidden_sizes=[6, 4],
                                                   bidirectional=True, pooling="attention")))
    model.eval()
    ids = torch.randint(1, 25, (3, 8))
    lengths = torch.tensor([8, 5, 3])
    ids[1, 5:] = 0
    ids[2, 3:] = 0
    spans = [(0, 2, 4), (1, 0, 4), (2, 1, 1), (1, 4, 4)]
    d = decompose(model, ids, spans, lengths=lengths, dtype="float64")
    with torch.no_grad():
        logits, alpha = model(ids, lengths, return_attention=True)
    assert (d.logits - logits.double()[[0, 1, 2, 1]]).abs().max() <= 1e-5
    assert d.delta <= 1e-10
    assert d.irrelevant[1].abs().max() <= 1e-10  # the whole of sequence 1
    W_out = model.head.weight.detach().double().numpy()
    for i, (b, s, e) in enumerate(spans):
        L = int(lengths[b])
        emb = model.embedding(ids[b, :L]).detach().double().numpy()
        rel, irr = cd_reference(list(model.lstms), emb, W_out, s, e, pooling="attention",
                                alpha=alpha[b, :L].double().numpy())
        assert np.abs(d.relevant[i].numpy() - rel).max() <= 1e-8


def test_span_errors():
    net = UserNet(30, 6, 7).eval()
    parts = wrap(net, embedding="emb", lstm="lstm", head="fc")
    ids = torch.randint(1, 30, (6,))
    for bad, msg in [([(3, 2)], "reversed"), ([(0, 6)], "outside"), ([(-1, 2)], "outside"),
                     ([], "at least one"), ([(0, 1, 2, 3)], "span is")]:
        with pytest.raises(InputError, match=msg):
            decompose(parts, ids, bad)
    with pytest.raises(lstmlens.ModelError, match="no submodule"):
        wrap(net, embedding="embedding", lstm="lstm", head="fc")


def test_text_input_and_bad_ids_and_positions(tmp_path):
    from neurons_helpers import word_classifier
    model = lstmlens.load(word_classifier(tmp_path / "clf"))
    text = "a good film , not boring"
    ids = torch.tensor(model.tokenizer.encode(text))
    by_text = decompose(model, text, [(1, 1), (3, 5)])
    by_ids = decompose(model, ids, [(1, 1), (3, 5)])
    torch.testing.assert_close(by_text.relevant, by_ids.relevant)
    with pytest.raises(InputError, match="token ids must lie in"):
        decompose(model, torch.tensor([1, 10**6]), [(0, 0)])
    with pytest.raises(InputError, match="whole numbers"):
        decompose(model, text, [(0.5, 2)])
    with pytest.raises(InputError, match="empty"):
        decompose(model, "", [(0, 0)])
