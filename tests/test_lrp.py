"""LRP through the LSTM's gates against a slow reference, and its conservation axiom."""

import numpy as np
import pytest
import torch
from lrp_reference import lrp_reference
from torch import nn

from lstmlens.methods.lrp_core import lrp_parts
from lstmlens.models import ClassifierConfig, LSTMClassifier
from lstmlens.parts import wrap


class Net(nn.Module):
    def __init__(self, layers=1, bidirectional=False):
        super().__init__()
        self.emb = nn.Embedding(30, 6)
        self.lstm = nn.LSTM(6, 7, num_layers=layers, bidirectional=bidirectional,
                            batch_first=True)
        self.fc = nn.Linear(7 * (2 if bidirectional else 1), 3)

    def forward(self, ids):
        return self.fc(self.lstm(self.emb(ids))[0][:, -1])


@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("s", [0.0, 1.0])
def test_matches_slow_reference(layers, s):
    torch.manual_seed(layers)
    net = Net(layers).eval()
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
