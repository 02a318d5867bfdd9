"""Contextual decomposition through every gate of stacked, bidirectional LSTMs, batched.

Murdoch, Liu & Yu (ICLR 2018); the equations are REFERENCES §3.2. Every row is one
(sequence, span) pair; all rows run together, step by step. A row's relevant part β is
exactly zero before its span starts, so each row is only computed from its first step
with a relevant input on (about half the work for word-level maps).
"""

from __future__ import annotations

import torch
from torch import nn

from ..engine import reverse_within, trace_lstm
from ..weights import DIRECTIONS, layer_weights


def _split(phi, a: torch.Tensor, b: torch.Tensor, B: torch.Tensor):
    """Shapley-style linearisation of φ(a + b + B) into relevant, irrelevant and bias parts."""
    zB, zab = phi(B), phi(a + b + B)
    za, zb = phi(a + B), phi(b + B)
    R = 0.5 * (za - zB + zab - zb)
    I = 0.5 * (zb - zB + zab - za)
    return R, I, zB.expand_as(R)


def cd_direction(
    w, xr: torch.Tensor, xi: torch.Tensor, in_span: torch.Tensor, o: torch.Tensor,
    h_true: torch.Tensor, c_true: torch.Tensor, start: torch.Tensor, bias_rule: str,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One layer and direction, in processing order, time-major.

    ``xr``/``xi`` (T, N, in) relevant/irrelevant inputs; ``in_span`` (T, N) bool; ``o``,
    ``c_true`` (T, N, H) and ``h_true`` (T, N, P) from the true forward pass; ``start`` (N,)
    the first step of each row with a relevant input. Returns β and γ hidden (T, N, P).
    """
    T, N, _ = xr.shape
    H, P = w.hidden_size, w.output_size
    order = torch.argsort(start, stable=True)
    inv = torch.argsort(order)
    xr, xi, in_span, o = xr[:, order], xi[:, order], in_span[:, order], o[:, order]
    h_true, c_true, start = h_true[:, order], c_true[:, order], start[order]
    n_active = torch.searchsorted(start, torch.arange(T, device=start.device), right=True)
    bH = xr.new_zeros(T, N, P)
    gH = h_true.clone()  # rows not started yet: γ is the whole true state
    bh, gh = xr.new_zeros(N, P), xr.new_zeros(N, P)
    bc, gc = xr.new_zeros(N, H), xr.new_zeros(N, H)
    Wx, Wh = w.w_ih.t(), w.w_hh.t()  # (in, 4H), (P, 4H)
    Bi, Bf, Bg = w.bias[:H], w.bias[H:2 * H], w.bias[2 * H:3 * H]
    n_prev = 0
    for t in range(T):
        n = int(n_active[t])
        if n == 0:
            continue
        if n > n_prev and t > 0:  # rows starting now: β = 0, γ = the true state at t-1
            gh[n_prev:n] = h_true[t - 1, n_prev:n]
            gc[n_prev:n] = c_true[t - 1, n_prev:n]
        n_prev = n
        a = xr[t, :n] @ Wx + bh[:n] @ Wh  # (n, 4H) relevant pre-activation, no bias
        b = xi[t, :n] @ Wx + gh[:n] @ Wh  # (n, 4H) irrelevant pre-activation
        Ri, Ii, Zi = _split(torch.sigmoid, a[:, :H], b[:, :H], Bi)
        Rf, If, Zf = _split(torch.sigmoid, a[:, H:2 * H], b[:, H:2 * H], Bf)
        Rg, Ig, Zg = _split(torch.tanh, a[:, 2 * H:3 * H], b[:, 2 * H:3 * H], Bg)
        bc_prev, gc_prev = bc[:n], gc[:n]
        new_bc = Ri * (Rg + Zg) + Zi * Rg + (Rf + Zf) * bc_prev
        new_gc = Ii * (Rg + Ig + Zg) + (Ri + Zi) * Ig + (Rf + If + Zf) * gc_prev + If * bc_prev
        bias_part = Zi * Zg  # (n, H)
        if bias_rule == "code":
            s = in_span[t, :n, None]
            new_bc = new_bc + torch.where(s, bias_part, 0.0)
            new_gc = new_gc + torch.where(s, 0.0, bias_part)
        else:
            new_gc = new_gc + bias_part
        tb, tg, tbg = torch.tanh(new_bc), torch.tanh(new_gc), torch.tanh(new_bc + new_gc)
        ot = o[t, :n]
        new_bh = ot * 0.5 * (tb + tbg - tg)
        new_gh = ot * 0.5 * (tg + tbg - tb)
        if w.w_hr is not None:
            new_bh, new_gh = new_bh @ w.w_hr.t(), new_gh @ w.w_hr.t()
        bc[:n], gc[:n], bh[:n], gh[:n] = new_bc, new_gc, new_bh, new_gh
        bH[t, :n], gH[t, :n] = new_bh, new_gh
    return bH[:, inv], gH[:, inv]


def first_relevant_step(xr: torch.Tensor, in_span: torch.Tensor) -> torch.Tensor:
    """(N,) first time step where a row has a relevant input or lies in its span (T if none)."""
    T = xr.shape[0]
    on = in_span | (xr != 0).any(-1)  # (T, N)
    idx = torch.where(on, torch.arange(T, device=xr.device)[:, None], T)
    return idx.min(0).values


def cd_lstm(
    lstm: nn.LSTM, x: torch.Tensor, xr: torch.Tensor, in_span: torch.Tensor,
    rows: torch.Tensor, lengths: torch.Tensor, bias_rule: str = "code",
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Decompose one ``nn.LSTM`` (all layers, both directions).

    ``x`` (B, T, in) the true inputs of the B sequences; ``xr`` (N, T, in) the relevant part
    of each row's inputs (``x[rows] - xr`` is the irrelevant part); ``in_span`` (N, T) bool;
    ``rows`` (N,) the sequence of each row; ``lengths`` (B,). Returns the top layer's β and
    γ hidden states (N, T, D·P) in input order, and its true hidden states (B, T, D·P).
    """
    dtype = x.dtype
    series = trace_lstm(lstm, x, lengths, dtype=dtype)  # the true forward pass, every gate
    D = 2 if lstm.bidirectional else 1
    row_len = lengths[rows]
    xi = x[rows] - xr  # (N, T, in)
    for k in range(lstm.num_layers):
        outs_b, outs_g = [], []
        for d in range(D):
            w = layer_weights(lstm, k, d, dtype)
            pre = f"layers.{k}.{DIRECTIONS[d]}."

            def proc(t: torch.Tensor, L: torch.Tensor, _d=d) -> torch.Tensor:
                """Input order (N, T, ...) → processing order, time-major (T, N, ...)."""
                return (t if _d == 0 else reverse_within(t, L)).transpose(0, 1)

            o = proc(series[pre + "output_gate"], lengths)[:, rows]
            h_true = proc(series[pre + "hidden"], lengths)[:, rows]
            c_true = proc(series[pre + "cell"], lengths)[:, rows]
            xr_p, xi_p = proc(xr, row_len), proc(xi, row_len)
            span_p = proc(in_span, row_len)
            start = first_relevant_step(xr_p, span_p)
            bH, gH = cd_direction(w, xr_p, xi_p, span_p, o, h_true, c_true, start, bias_rule)
            bH, gH = bH.transpose(0, 1), gH.transpose(0, 1)  # (N, T, P) processing order
            if d == 1:
                bH, gH = reverse_within(bH, row_len), reverse_within(gH, row_len)
            valid = (torch.arange(bH.shape[1], device=bH.device)[None, :]
                     < row_len[:, None])[..., None]  # (N, T, 1)
            bH, gH = bH * valid, gH * valid
            outs_b.append(bH)
            outs_g.append(gH)
        xr = torch.cat(outs_b, -1)
        xi = torch.cat(outs_g, -1)
    top = lstm.num_layers - 1
    h_top = torch.cat([series[f"layers.{top}.{DIRECTIONS[d]}.hidden"] for d in range(D)], -1)
    return xr, xi, h_top
