"""Layer-wise relevance propagation through the LSTM's gates (Arras et al. 2017), batched.

REFERENCES §3.3: the ε-rule on every weighted sum, with ``z`` the full forward
pre-activation and ``N`` its number of inputs; the gates pass nothing
("signal-take-all"): relevance flows from h_t to c_t, then into f_t ⊙ c_{t−1} and
i_t ⊙ g_t, and from g_t's pre-activation into x_t and h_{t−1}.
"""

from __future__ import annotations

import torch
from torch import nn

from ..engine import reverse_within, trace_lstm
from ..weights import DIRECTIONS, layer_weights


def _stab(z: torch.Tensor, eps: float) -> torch.Tensor:
    """z + ε·sgn(z), with sgn(0) = +1."""
    return (z >= 0).to(z.dtype).mul_(2 * eps).add_(z).sub_(eps)


def eps_linear(x: torch.Tensor, W: torch.Tensor, b: torch.Tensor | None, z: torch.Tensor,
               R: torch.Tensor, N: int, eps: float, bias_factor: float) -> torch.Tensor:
    """ε-rule for z = x Wᵀ + b: relevance of the inputs ``x`` (B, in) from ``R`` (B, out).

    R_i = Σ_j [x_i w_ji + s (b_j + ε sgn z_j) / N] / (z_j + ε sgn z_j) · R_j
    """
    q = R / _stab(z, eps)  # (B, out)
    out = x * (q @ W)  # (B, in)
    if bias_factor:
        out = out + bias_factor * _share(z, b, q, eps) / N
    return out


def _share(z: torch.Tensor, b: torch.Tensor | None, q: torch.Tensor, eps: float) -> torch.Tensor:
    """Σ_j (b_j + ε sgn z_j) q_j, (B, 1): what the ε-rule spreads evenly over the inputs."""
    sgn = torch.where(z >= 0, 1.0, -1.0).to(z.dtype)
    return (((b if b is not None else 0.0) + eps * sgn) * q).sum(-1, keepdim=True)


def lrp_direction(w, x: torch.Tensor, h_prev: torch.Tensor, gates: dict[str, torch.Tensor],
                  R_above: torch.Tensor, eps: float, bias_factor: float):
    """One layer and direction, processing order, time-major.

    ``x`` (T, B, in), ``h_prev`` (T, B, P) = h_{t−1}; ``gates`` i, f, g, o, c, c_prev
    (T, B, H); ``R_above`` (T, B, P) relevance arriving on each h_t from above. Returns the
    relevance of the inputs (T, B, in) and of the initial state (h0 (B, P), c0 (B, H)).
    """
    T, B, n_in = x.shape
    H, P = w.hidden_size, w.output_size
    Wg_x, Wg_h, Bg = w.w_ih[2 * H:3 * H], w.w_hh[2 * H:3 * H], w.bias[2 * H:3 * H]
    W_cat = torch.cat([Wg_x, Wg_h], 1)  # (H, in + P): g's weights on [x_t, h_{t−1}]
    zg = x @ Wg_x.t() + h_prev @ Wg_h.t() + Bg  # (T, B, H) candidate pre-activation
    c = gates["c"]
    # everything that does not depend on the relevance, for all steps at once
    fc = gates["f"] * gates["c_prev"]  # (T, B, H)
    ig = gates["i"] * gates["g"]
    stab_c, stab_g = _stab(c, eps), _stab(zg, eps)
    xh = torch.cat([x, h_prev], -1)  # (T, B, in + P)
    N_c, N_g = 2 * H, n_in + P
    m = gates["o"] * torch.tanh(c) if w.w_hr is not None else None
    Rx = torch.empty_like(x)
    Rh = x.new_zeros(B, P)
    Rc = x.new_zeros(B, H)
    for t in range(T - 1, -1, -1):
        Rh = Rh + R_above[t]
        if m is not None:  # h_t = W_hr m_t, m_t = o ⊙ tanh(c_t)
            Rh = eps_linear(m[t], w.w_hr, None, m[t] @ w.w_hr.t(), Rh, H, eps, bias_factor)
        Rc = Rc + Rh  # the output gate gets nothing; tanh passes relevance through
        q = Rc / stab_c[t]  # c_t = f ⊙ c_{t−1} + i ⊙ g: identity weights
        Rg, Rc = ig[t] * q, fc[t] * q
        if bias_factor:
            spread = bias_factor * _share(c[t], None, q, eps) / N_c
            Rg, Rc = Rg + spread, Rc + spread
        qg = Rg / stab_g[t]  # g's pre-activation: z_g = W_gx x_t + W_gh h_{t−1} + b_g
        r = xh[t] * (qg @ W_cat)  # (B, in + P)
        if bias_factor:
            r = r + bias_factor * _share(zg[t], Bg, qg, eps) / N_g
        Rx[t], Rh = r[:, :n_in], r[:, n_in:]
    return Rx, Rh, Rc


def lrp_lstm(lstm: nn.LSTM, x: torch.Tensor, lengths: torch.Tensor, R_out: torch.Tensor,
             eps: float, bias_factor: float, series: dict[str, torch.Tensor] | None = None):
    """Relevance of the inputs (B, T, in) of one ``nn.LSTM`` from ``R_out`` (B, T, D·P) on
    its top layer's outputs; also the total relevance that reached initial states (B,).
    ``series`` is the LSTM's trace on ``x`` when already computed."""
    if series is None:
        series = trace_lstm(lstm, x, lengths, dtype=x.dtype)
    D = 2 if lstm.bidirectional else 1
    layer_inputs = [x]
    for k in range(lstm.num_layers - 1):
        layer_inputs.append(torch.cat([series[f"layers.{k}.{DIRECTIONS[d]}.hidden"]
                                       for d in range(D)], -1))
    R = R_out
    initial = x.new_zeros(x.shape[0])
    for k in range(lstm.num_layers - 1, -1, -1):
        R_in = torch.zeros_like(layer_inputs[k])
        for d in range(D):
            w = layer_weights(lstm, k, d, x.dtype)
            P = w.output_size

            def proc(t: torch.Tensor, _d=d) -> torch.Tensor:
                return (t if _d == 0 else reverse_within(t, lengths)).transpose(0, 1)

            pre = f"layers.{k}.{DIRECTIONS[d]}."
            c = proc(series[pre + "cell"])
            h = proc(series[pre + "hidden"])
            gates = {"i": proc(series[pre + "input_gate"]), "f": proc(series[pre + "forget_gate"]),
                     "g": proc(series[pre + "cell_candidate"]),
                     "o": proc(series[pre + "output_gate"]), "c": c,
                     "c_prev": torch.cat([torch.zeros_like(c[:1]), c[:-1]])}
            h_prev = torch.cat([torch.zeros_like(h[:1]), h[:-1]])
            Rx, Rh0, Rc0 = lrp_direction(w, proc(layer_inputs[k]), h_prev, gates,
                                         proc(R[..., d * P:(d + 1) * P]), eps, bias_factor)
            Rx = Rx.transpose(0, 1)
            R_in += Rx if d == 0 else reverse_within(Rx, lengths)
            initial += Rh0.sum(-1) + Rc0.sum(-1)
        R = R_in
    return R, initial


def lrp_parts(parts, x: torch.Tensor, lengths: torch.Tensor, target: torch.Tensor,
              eps: float = 1e-3, bias_factor: float = 0.0, dtype: torch.dtype = torch.float32):
    """LRP of the ``target`` logit (B,) of a model described by ``parts``.

    Returns the relevance of each step's input vector (B, T, E), the relevance that reached
    the initial states (B,), and the target logits (B,). With ``bias_factor=1`` the two
    relevances add up to the target logit (conservation).
    """
    import copy

    with torch.no_grad():
        emb = parts.embed(x).to(dtype)  # (B, T, E)
        B, T, _ = emb.shape
        # the true forward pass, module by module
        inputs, traces, h = [emb], [], emb
        for lstm in parts.lstms:
            series = trace_lstm(lstm, h, lengths, dtype=dtype)
            traces.append(series)
            D = 2 if lstm.bidirectional else 1
            top = lstm.num_layers - 1
            h = torch.cat([series[f"layers.{top}.{DIRECTIONS[d]}.hidden"] for d in range(D)], -1)
            inputs.append(h)
        W = parts.head.weight.to(dtype)
        b = parts.head.bias.to(dtype) if parts.head.bias is not None else None
        bidir = parts.lstms[-1].bidirectional
        rows = torch.arange(B)
        mask = torch.arange(T)[None, :] < lengths[:, None]
        if parts.pooling in ("last", "final"):
            pooled, _ = parts.pool(h, lengths, bidir)
        else:
            att = parts.pooling
            if next(att.parameters()).dtype != dtype:
                att = copy.deepcopy(att).to(dtype)
            pooled, alpha = att(h, mask)  # (B, H·D), (B, T)
        logits = pooled @ W.t() + (b if b is not None else 0.0)  # (B, C)
        R_logits = torch.zeros_like(logits)
        R_logits[rows, target] = logits[rows, target]
        R_pooled = eps_linear(pooled, W, b, logits, R_logits, pooled.shape[-1], eps, bias_factor)
        R_h = torch.zeros_like(h)  # (B, T, H·D)
        if parts.pooling == "last":
            R_h[rows, lengths - 1] = R_pooled
        elif parts.pooling == "final":
            Hd = h.shape[-1] // (2 if bidir else 1)
            R_h[rows, lengths - 1, :Hd] = R_pooled[:, :Hd]
            if bidir:
                R_h[:, 0, Hd:] = R_pooled[:, Hd:]
        else:  # pooled_u = Σ_t α_t h_{t,u}: ε-rule over the T terms of each unit
            terms = alpha[..., None] * h  # (B, T, H·D)
            q = R_pooled / _stab(pooled, eps)  # (B, H·D)
            R_h = terms * q[:, None, :]
            if bias_factor:
                sgn = torch.where(pooled >= 0, 1.0, -1.0).to(dtype)
                share = bias_factor * eps * sgn * q / lengths[:, None].to(dtype)  # (B, H·D)
                R_h = R_h + share[:, None, :] * mask[..., None]
        initial = emb.new_zeros(B)
        for m in range(len(parts.lstms) - 1, -1, -1):
            R_h, init = lrp_lstm(parts.lstms[m], inputs[m], lengths, R_h, eps, bias_factor,
                                 traces[m])
            initial = initial + init
        return R_h, initial, logits[rows, target]
