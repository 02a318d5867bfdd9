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


def _inv_stab_(z: torch.Tensor, eps: float) -> torch.Tensor:
    """1 / (z + ε·sgn z), sgn(0) = +1, in ``z``'s own storage: the ε-rule's per-output
    factor without a fresh buffer (fresh memory costs page faults)."""
    positive = z.ge(0)
    return z.sub_(eps).add_(positive, alpha=2 * eps).reciprocal_()


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


def lrp_direction(w, x: torch.Tensor, h: torch.Tensor, gates: dict[str, torch.Tensor],
                  R_above: torch.Tensor, eps: float, bias_factor: float):
    """One layer and direction, processing order, time-major.

    ``x`` (T, B, in), ``h`` (T, B, P); ``gates`` i, f, g, o, c (T, B, H); ``R_above``
    (T, B, P) relevance arriving on each h_t from above. Returns the relevance of the
    inputs (T, B, in) and of the initial state (h0 (B, P), c0 (B, H)).

    Only R_h and R_c run backwards through time; everything that does not depend on the
    relevance is computed for all steps first, and the inputs' relevance, which nothing
    later needs, in one product after the loop. Large temporaries are few and reused
    (fresh memory costs page faults).
    """
    T, B, n_in = x.shape
    H, P = w.hidden_size, w.output_size
    Wg_x, Wg_h, Bg = w.w_ih[2 * H:3 * H], w.w_hh[2 * H:3 * H], w.bias[2 * H:3 * H]
    c = gates["c"]
    # g's pre-activation z_g = W_gx x_t + W_gh h_{t−1} + b_g, (T, B, H); h_{−1} = 0
    zg = torch.addmm(Bg, x.reshape(T * B, n_in), Wg_x.t()).view(T, B, H)
    if T > 1:
        zg[1:].view(-1, H).addmm_(h[:-1].reshape(-1, P), Wg_h.t())
    N_c, N_g = 2 * H, n_in + P
    if bias_factor:  # the ε-rule's spread needs z and q apart
        inv_c = _stab(c, eps).reciprocal_()  # 1 / (c + ε sgn c)
        inv_g = _stab(zg, eps).reciprocal_()
        ig = gates["i"] * gates["g"]
        fc = torch.zeros_like(c)
        fc[1:] = gates["f"][1:] * c[:-1]  # f ⊙ c_{t−1}, c_{−1} = 0
        Q_g = torch.empty_like(zg)
    else:
        # c_t = f ⊙ c_{t−1} + i ⊙ g with identity weights: R_c[t−1] = K_c R_c[t] and the
        # candidate's pre-activation gets q_g = K_g R_c[t]; K_g's storage then holds q_g
        K_c = _inv_stab_(c.clone(), eps)  # (T, B, H)
        Q_g = _inv_stab_(zg, eps).mul_(K_c).mul_(gates["i"]).mul_(gates["g"])
        K_c[0].zero_()
        K_c[1:].mul_(gates["f"][1:]).mul_(c[:-1])
    m = gates["o"] * torch.tanh(c) if w.w_hr is not None else None
    # steps where relevance comes in (two reductions, no temporary of R_above's size)
    arriving = (R_above.amax(dim=(1, 2)).ne(0) | R_above.amin(dim=(1, 2)).ne(0)).tolist()
    share_g = x.new_zeros(T, B, 1) if bias_factor else None  # spread over the N_g inputs
    Rh = x.new_zeros(B, P)
    Rc = x.new_zeros(B, H)
    for t in range(T - 1, -1, -1):
        if arriving[t]:
            Rh = Rh + R_above[t]
        if m is not None:  # h_t = W_hr m_t, m_t = o ⊙ tanh(c_t)
            Rh = eps_linear(m[t], w.w_hr, None, m[t] @ w.w_hr.t(), Rh, H, eps, bias_factor)
        Rc = Rc + Rh  # the output gate gets nothing; tanh passes relevance through
        if bias_factor:
            q = Rc * inv_c[t]
            spread = bias_factor * _share(c[t], None, q, eps) / N_c
            torch.mul(ig[t] * q + spread, inv_g[t], out=Q_g[t])
            Rc = torch.addcmul(spread, fc[t], q)
            share_g[t] = bias_factor * _share(zg[t], Bg, Q_g[t], eps) / N_g
        else:
            Q_g[t].mul_(Rc)
            Rc = K_c[t] * Rc
        if t > 0:
            Rh = (Q_g[t] @ Wg_h).mul_(h[t - 1])  # (B, P)
        else:
            Rh = x.new_zeros(B, P)  # h_{−1} = 0
        if bias_factor:
            Rh += share_g[t]
    Rx = (Q_g.view(T * B, H) @ Wg_x).view(T, B, n_in).mul_(x)  # (T, B, in)
    if bias_factor:
        Rx += share_g
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
        R_in = None
        for d in range(D):
            w = layer_weights(lstm, k, d, x.dtype)
            P = w.output_size

            def proc(t: torch.Tensor, _d=d) -> torch.Tensor:
                return (t if _d == 0 else reverse_within(t, lengths)).transpose(0, 1)

            pre = f"layers.{k}.{DIRECTIONS[d]}."
            gates = {"i": proc(series[pre + "input_gate"]), "f": proc(series[pre + "forget_gate"]),
                     "g": proc(series[pre + "cell_candidate"]),
                     "o": proc(series[pre + "output_gate"]), "c": proc(series[pre + "cell"])}
            Rx, Rh0, Rc0 = lrp_direction(w, proc(layer_inputs[k]), proc(series[pre + "hidden"]),
                                         gates, proc(R[..., d * P:(d + 1) * P]), eps,
                                         bias_factor)
            Rx = Rx.transpose(0, 1)  # (B, T, in)
            if d == 1:
                Rx = reverse_within(Rx, lengths)
            R_in = Rx if R_in is None else R_in + Rx
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
