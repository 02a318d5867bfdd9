"""LayerWeights: one layer's weights by gate name, and reordered for the step loops."""

import torch

from lstmlens.weights import layer_weights


def test_sigmoids_first_puts_the_candidate_last():
    torch.manual_seed(0)
    lstm = torch.nn.LSTM(3, 5, num_layers=2, bidirectional=True)
    for k in range(2):
        for d in range(2):
            w = layer_weights(lstm, k, d)
            w_ih, w_hh, b = w.sigmoids_first()
            for j, name in enumerate(("input_gate", "forget_gate", "output_gate",
                                      "cell_candidate")):
                rows = slice(5 * j, 5 * (j + 1))
                g_ih, g_hh, g_b = w.gate(name)
                assert torch.equal(w_ih[rows], g_ih) and torch.equal(w_hh[rows], g_hh)
                assert torch.equal(b[rows], g_b)
