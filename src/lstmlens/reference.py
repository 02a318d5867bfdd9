"""The seed's LSTM (its §4), written literally, one sequence and one step at a time.

This module is the documentation of the math and the oracle of the tests; it is slow on
purpose. For each step t, with ``[h_{t-1}, x_t]`` the concatenation of the previous hidden
state and the input::

    f_t = σ(W_f·[h_{t−1}, x_t] + b_f)          forget gate
    i_t = σ(W_i·[h_{t−1}, x_t] + b_i)          input gate
    o_t = σ(W_o·[h_{t−1}, x_t] + b_o)          output gate
    g_t = tanh(W_c·[h_{t−1}, x_t] + b_c)       candidate cell ("c̃")
    c_t = f_t ⊙ c_{t−1} + i_t ⊙ g_t            cell state
    h_t = o_t ⊙ tanh(c_t)                      hidden state

With a projection (``proj_size > 0``), ``h_t = W_hr (o_t ⊙ tanh(c_t))``. A stacked LSTM feeds
the hidden states of layer k (both directions concatenated) as the inputs of layer k + 1; the
backward direction reads the sequence from its last step to its first.
"""

from __future__ import annotations

import torch
from torch import nn

from .weights import DIRECTIONS, layer_weights, num_directions


def lstm_step(
    x: torch.Tensor, h: torch.Tensor, c: torch.Tensor, w_ih: torch.Tensor, w_hh: torch.Tensor,
    bias: torch.Tensor, w_hr: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """One step of the seed's equations for one sequence.

    ``x`` is ``(in,)``, ``h`` ``(P or H,)``, ``c`` ``(H,)``; the weights are PyTorch's stacked
    ``(4H, ·)`` matrices (gate order i, f, g, o). Returns the six series for this step.
    """
    H = c.shape[0]
    hx = torch.cat([h, x])  # [h_{t-1}, x_t]
    W = torch.cat([w_hh, w_ih], dim=1)  # (4H, P + in): each gate's W acting on [h, x]
    W_i, W_f, W_c, W_o = (W[k * H:(k + 1) * H] for k in range(4))
    b_i, b_f, b_c, b_o = (bias[k * H:(k + 1) * H] for k in range(4))
    f = torch.sigmoid(W_f @ hx + b_f)
    i = torch.sigmoid(W_i @ hx + b_i)
    o = torch.sigmoid(W_o @ hx + b_o)
    g = torch.tanh(W_c @ hx + b_c)
    c_new = f * c + i * g
    h_new = o * torch.tanh(c_new)
    if w_hr is not None:
        h_new = w_hr @ h_new
    return {"input_gate": i, "forget_gate": f, "cell_candidate": g, "output_gate": o,
            "cell": c_new, "hidden": h_new}


def reference_trace(
    lstm: nn.LSTM, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None = None,
    dtype: torch.dtype = torch.float64,
) -> dict[str, torch.Tensor]:
    """Every series of every layer and direction of ``lstm`` for ONE sequence ``x`` ``(T, in)``.

    ``state`` is ``(h0, c0)`` shaped like ``nn.LSTM``'s for one sequence:
    ``(num_layers * directions, P or H)`` and ``(num_layers * directions, H)``. Keys are
    ``layers.{k}.{forward|backward}.{series}``; each value is ``(T, units)`` in input order.
    """
    x = x.detach().to(dtype)
    T = x.shape[0]
    D = num_directions(lstm)
    out: dict[str, torch.Tensor] = {}
    layer_input = x
    for k in range(lstm.num_layers):
        direction_outputs = []
        for d in range(D):
            w = layer_weights(lstm, k, d, dtype)
            if state is None:
                h = torch.zeros(w.output_size, dtype=dtype)
                c = torch.zeros(w.hidden_size, dtype=dtype)
            else:
                h = state[0][k * D + d].detach().to(dtype)
                c = state[1][k * D + d].detach().to(dtype)
            steps = range(T) if d == 0 else range(T - 1, -1, -1)
            per_step: dict[int, dict[str, torch.Tensor]] = {}
            for t in steps:
                s = lstm_step(layer_input[t], h, c, w.w_ih, w.w_hh, w.bias, w.w_hr)
                h, c = s["hidden"], s["cell"]
                per_step[t] = s
            for name in per_step[0]:
                series = [per_step[t][name] for t in range(T)]  # input order
                out[f"layers.{k}.{DIRECTIONS[d]}.{name}"] = torch.stack(series)
            direction_outputs.append(out[f"layers.{k}.{DIRECTIONS[d]}.hidden"])
        layer_input = torch.cat(direction_outputs, dim=1)
    return out
