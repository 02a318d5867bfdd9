"""phrase_hierarchy (hierarchical phrase interactions) against a plain agglomeration over the
slow CD reference, and its conservation at the top of the hierarchy."""

import json

import numpy as np
import pytest
import torch
from cd_reference import cd_reference
from user_net import UserNet, scaled

from lstmlens.errors import InputError
from lstmlens.interactions import PhraseMerge, phrase_hierarchy
from lstmlens.models import ClassifierConfig, LSTMClassifier
from lstmlens.parts import wrap
from lstmlens.tokenizers import Tokenizer


def slow_hierarchy(net, ids, k):
    """Greedy agglomeration written plainly: every level rescores every adjacent pair with
    the float64 CD reference, one span at a time, and joins the largest |interaction|."""
    emb = net.emb(ids).detach().double().numpy()
    W = net.fc.weight.detach().double().numpy()

    def score(s, e):
        rel, _ = cd_reference([net.lstm], emb, W, s, e)
        return rel[k] - (rel.sum() - rel[k]) / (len(rel) - 1)

    phrases, merges = [(t, t) for t in range(len(ids))], []
    while len(phrases) > 1:
        best = None
        for i in range(len(phrases) - 1):
            a, b = phrases[i], phrases[i + 1]
            joined = score(a[0], b[1])
            gain = joined - score(*a) - score(*b)
            if best is None or abs(gain) > abs(best[0]):
                best = (gain, i, joined)
        _, i, joined = best
        merges.append((phrases[i], phrases[i + 1], joined))
        phrases[i:i + 2] = [(phrases[i][0], phrases[i + 1][1])]
    return merges


@pytest.mark.parametrize("layers,bidir", [(1, False), (2, True)])
def test_matches_plain_agglomeration(layers, bidir):
    torch.manual_seed(3 + layers)
    net = scaled(UserNet(20, 5, 6, layers, bidir)).eval()
    ids = torch.randint(1, 20, (7,))
    parts = wrap(net, embedding="emb", lstm="lstm", head="fc")
    h = phrase_hierarchy(parts, ids, target=2, dtype="float64")
    ref = slow_hierarchy(net, ids, 2)
    assert len(h.merges) == len(ids) - 1 == len(ref)
    for m, (left, right, joined) in zip(h.merges, ref, strict=True):
        assert (m.left, m.right) == (left, right)
        assert abs(m.score - joined) <= 1e-8
    # the top of the hierarchy is the whole sequence, which accounts for the whole margin
    with torch.no_grad():
        z = (net(ids[None].long()) - net.fc.bias)[0].double()  # logits − bias
    margin = float(z[2] - (z.sum() - z[2]) / 2)
    assert h.merges[-1].span == (0, len(ids) - 1)
    assert abs(h.merges[-1].score - margin) <= 1e-5
    assert h.score_kind == "margin" and h.delta <= 1e-10


def test_merge_arithmetic_and_flips():
    m = PhraseMerge(1, (0, 0), (1, 1), left_score=-1.0, right_score=0.5, score=0.8)
    assert m.span == (0, 1) and abs(m.interaction - 1.3) < 1e-12 and m.flips
    assert not PhraseMerge(1, (0, 0), (1, 1), -1.0, 0.5, -0.9).flips


def test_text_json_html_and_errors():
    tok = Tokenizer("word").fit(["a fine film", "<b>dull</b> film"])
    torch.manual_seed(0)
    model = LSTMClassifier(ClassifierConfig(num_classes=2, vocab_size=len(tok), embedding_dim=4,
                                            hidden_sizes=[5])).eval()
    model.tokenizer, model.meta = tok, {"classes": ["negative", "positive"]}
    h = phrase_hierarchy(model, "<b>dull</b> film", target="positive")
    assert h.target_name == "positive" and h.tokens[0] == "<"
    doc = json.loads(h.to_json())
    assert len(doc["merges"]) == len(h.tokens) - 1
    assert np.allclose(doc["word_scores"], h.word_scores.numpy())
    html = h._repr_html_()
    assert "&lt;" in html and "<b>" not in html
    assert h.to_text().count("\n") == len(h.merges) - 1
    with pytest.raises(InputError, match="one sequence at a time"):
        phrase_hierarchy(model, ["a fine film", "a dull film"])
    with pytest.raises(InputError, match="empty"):
        phrase_hierarchy(model, torch.empty(0, dtype=torch.long))
    with pytest.raises(InputError, match="target must lie"):
        phrase_hierarchy(model, "a fine film", target=2)
