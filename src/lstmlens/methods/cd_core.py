"""Contextual decomposition through every gate of stacked, bidirectional LSTMs, batched.

Murdoch, Liu & Yu (ICLR 2018); the equations are REFERENCES §3.2. Every row is one
(sequence, span) pair; all rows run together, step by step. A row's relevant part β is
exactly zero before its first relevant input, so each row is only computed from there on
(rows sorted by that step: the active rows are always a prefix). Where the relevant part
of the input is the true input masked by the span, its projection W·x is computed once per
sequence and split by the mask, instead of once per row.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from ..engine import reverse_within, trace_lstm
from ..weights import DIRECTIONS, layer_weights


def _activate3(z: torch.Tensor, H: int) -> torch.Tensor:
    """σ on the i and f blocks, tanh on the g block of (n, 3H) pre-activations, in place."""
    z[:, : 2 * H].sigmoid_()
    z[:, 2 * H:].tanh_()
    return z


def cd_direction(
    w, step_inputs: Callable[[int, torch.Tensor], tuple[torch.Tensor, torch.Tensor]],
    in_span: torch.Tensor, o: torch.Tensor, h_true: torch.Tensor, c_true: torch.Tensor,
    seq: torch.Tensor, start: torch.Tensor, bias_rule: str,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One layer and direction, in processing order, time-major.

    ``step_inputs(t, rows)`` gives the relevant and irrelevant input projections W·x (no
    bias) of ``rows`` at step t for the gates i, f, g, each (n, 3H); ``in_span`` (T, N)
    bool; ``o``, ``c_true`` (T, B, H) and ``h_true`` (T, B, P) from the true forward
    pass; ``seq`` (N,) each row's sequence; ``start`` (N,) each row's first relevant step.
    Returns β, γ hidden (T, N, P).
    """
    T, N = in_span.shape
    H, P = w.hidden_size, w.output_size
    order = torch.argsort(start, stable=True)
    n_active = torch.searchsorted(start[order], torch.arange(T, device=start.device),
                                  right=True)
    sseq = seq[order]
    bH = h_true.new_zeros(T, N, P)
    gH = h_true[:, sseq].clone()  # rows not started yet: γ is the whole true state
    bh, gh = h_true.new_zeros(N, P), h_true.new_zeros(N, P)
    bc, gc = h_true.new_zeros(N, H), h_true.new_zeros(N, H)
    Wh = w.w_hh.t()[:, : 3 * H]  # (P, 3H): o is not decomposed
    B3 = w.bias[: 3 * H]
    zB = _activate3(B3[None].clone(), H)[0]  # φ(B), (3H,)
    Zi, Zg = zB[:H], zB[2 * H:]
    Zf = zB[H:2 * H]
    span_sorted = in_span[:, order]
    n_prev = 0
    for t in range(T):
        n = int(n_active[t])
        if n == 0:
            continue
        if n > n_prev and t > 0:  # rows starting now: β = 0, γ = the true state at t−1
            gh[n_prev:n] = h_true[t - 1, sseq[n_prev:n]]
            gc[n_prev:n] = c_true[t - 1, sseq[n_prev:n]]
        n_prev = n
        ax, bx = step_inputs(t, order[:n])  # (n, 3H) each
        a = torch.addmm(ax, bh[:n], Wh)  # (n, 3H) relevant, no bias
        b = torch.addmm(bx, gh[:n], Wh)  # (n, 3H) irrelevant
        za = _activate3(a + B3, H)
        zb = _activate3(b + B3, H)
        zab = _activate3(a.add_(b).add_(B3), H)
        s = zab.sub_(zB)  # φ(a+b+B) − φ(B)
        dif = za.sub_(zb)  # φ(a+B) − φ(b+B)
        R = (s + dif).mul_(0.5)
        I = s.sub_(dif).mul_(0.5)
        Ri, Rf, Rg = R[:, :H], R[:, H:2 * H], R[:, 2 * H:]
        Ii, If, Ig = I[:, :H], I[:, H:2 * H], I[:, 2 * H:]
        bc_prev, gc_prev = bc[:n], gc[:n]
        new_bc = Ri * (Rg + Zg) + Zi * Rg + (Rf + Zf) * bc_prev
        new_gc = Ii * (Rg + Ig + Zg) + (Ri + Zi) * Ig + (Rf + If + Zf) * gc_prev + If * bc_prev
        bias_part = Zi * Zg  # (H,)
        if bias_rule == "code":
            m = span_sorted[t, :n, None].to(new_bc.dtype)  # (n, 1)
            new_bc.addcmul_(m, bias_part)
            new_gc.addcmul_(1.0 - m, bias_part)
        else:
            new_gc += bias_part
        tb, tg, tbg = torch.tanh(new_bc), torch.tanh(new_gc), torch.tanh(new_bc + new_gc)
        ot = o[t, sseq[:n]] * 0.5
        new_bh = ot * (tb + tbg - tg)
        new_gh = ot * (tg + tbg - tb)
        if w.w_hr is not None:
            new_bh, new_gh = new_bh @ w.w_hr.t(), new_gh @ w.w_hr.t()
        bc[:n], gc[:n], bh[:n], gh[:n] = new_bc, new_gc, new_bh, new_gh
        bH[t, :n], gH[t, :n] = new_bh, new_gh
    inv = torch.argsort(order)
    return bH[:, inv], gH[:, inv]


def first_relevant_step(on: torch.Tensor) -> torch.Tensor:
    """(N,) first time step where ``on`` (T, N) holds (T if never)."""
    T = on.shape[0]
    idx = torch.where(on, torch.arange(T, device=on.device)[:, None], T)
    return idx.min(0).values


def cd_lstm(
    lstm: nn.LSTM, x: torch.Tensor, xr: torch.Tensor | None, in_span: torch.Tensor,
    rows: torch.Tensor, lengths: torch.Tensor, bias_rule: str = "code",
    features: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Decompose one ``nn.LSTM`` (all layers, both directions).

    ``x`` (B, T, in) the true inputs of the B sequences. The relevant part of row r's inputs
    is ``xr[r]`` (N, T, in) when given; otherwise it is the true input at the steps of
    ``in_span`` (N, T) — only the input features where ``features`` (N, in) is true, when
    given. ``rows`` (N,) the sequence of each row; ``lengths`` (B,). Returns the top layer's
    β and γ hidden states (N, T, D·P) in input order and its true hidden states (B, T, D·P).
    """
    dtype = x.dtype
    series = trace_lstm(lstm, x, lengths, dtype=dtype)  # the true forward pass, every gate
    D = 2 if lstm.bidirectional else 1
    row_len = lengths[rows]
    T = x.shape[1]
    valid = (torch.arange(T)[None, :] < row_len[:, None])[..., None]  # (N, T, 1)
    layer_x = x
    for k in range(lstm.num_layers):
        outs_b, outs_g = [], []
        for d in range(D):
            w = layer_weights(lstm, k, d, dtype)
            pre = f"layers.{k}.{DIRECTIONS[d]}."

            def proc(t: torch.Tensor, L: torch.Tensor, _d=d) -> torch.Tensor:
                """Input order (M, T, ...) → processing order, time-major (T, M, ...)."""
                return (t if _d == 0 else reverse_within(t, L)).transpose(0, 1)

            o = proc(series[pre + "output_gate"], lengths)
            h_true = proc(series[pre + "hidden"], lengths)
            c_true = proc(series[pre + "cell"], lengths)
            span_p = proc(in_span, row_len)  # (T, N)
            W_t = w.w_ih[: 3 * w.hidden_size].t()  # (in, 3H): o is not decomposed
            P_x = proc(layer_x, lengths) @ W_t  # (T, B, 3H) each sequence's projection
            if xr is None:  # the true input split by the span
                if features is None:
                    def step_inputs(t, idx, _P=P_x, _s=span_p):
                        full = _P[t, rows[idx]]
                        ar = full * _s[t, idx, None]
                        return ar, full - ar
                else:
                    x_p = proc(layer_x, lengths)  # (T, B, in)

                    def step_inputs(t, idx, _x=x_p, _s=span_p, _P=P_x, _W=W_t):
                        rel = _x[t, rows[idx]] * (features[idx] & _s[t, idx, None])
                        ar = rel @ _W
                        return ar, _P[t, rows[idx]] - ar
                on = span_p
            else:
                xr_p = proc(xr, row_len)  # (T, N, in)

                def step_inputs(t, idx, _xr=xr_p, _P=P_x, _W=W_t):
                    ar = _xr[t, idx] @ _W
                    return ar, _P[t, rows[idx]] - ar
                on = span_p | (xr_p != 0).any(-1)
            start = first_relevant_step(on)
            bH, gH = cd_direction(w, step_inputs, span_p, o, h_true, c_true, rows, start,
                                  bias_rule)
            bH, gH = bH.transpose(0, 1), gH.transpose(0, 1)  # (N, T, P) processing order
            if d == 1:
                bH, gH = reverse_within(bH, row_len), reverse_within(gH, row_len)
            outs_b.append(bH * valid)
            outs_g.append(gH * valid)
        xr = torch.cat(outs_b, -1) if D == 2 else outs_b[0]
        xi = torch.cat(outs_g, -1) if D == 2 else outs_g[0]
        tops = [series[f"layers.{k}.{DIRECTIONS[d]}.hidden"] for d in range(D)]
        layer_x = torch.cat(tops, -1) if D == 2 else tops[0]
    return xr, xi, layer_x
