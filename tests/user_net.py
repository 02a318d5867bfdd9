"""A user's own PyTorch module for the exact-method tests: ``fc(lstm(emb(ids))[0][:, -1])``,
read at the last step, explained through ``lstmlens.wrap``."""

import torch
from torch import nn


class UserNet(nn.Module):
    """Embedding → ``nn.LSTM`` → linear head on the last step (3 outputs by default)."""

    def __init__(self, vocab: int, emb: int, hidden: int, layers: int = 1,
                 bidirectional: bool = False, proj: int = 0, bias: bool = True,
                 outputs: int = 3):
        super().__init__()
        self.emb = nn.Embedding(vocab, emb)
        self.lstm = nn.LSTM(emb, hidden, num_layers=layers, bidirectional=bidirectional,
                            proj_size=proj, bias=bias, batch_first=True)
        self.fc = nn.Linear((proj or hidden) * (2 if bidirectional else 1), outputs)

    def forward(self, ids):
        return self.fc(self.lstm(self.emb(ids))[0][:, -1])


def scaled(model: nn.Module, s: float = 1.5) -> nn.Module:
    """``model`` with every parameter multiplied by ``s`` in place (steeper gates)."""
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(s)
    return model
