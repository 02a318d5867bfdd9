"""Contextual decomposition through every gate of stacked, bidirectional LSTMs, batched.

Murdoch, Liu & Yu (ICLR 2018); the equations are REFERENCES §3.2. Every row is one
(sequence, span) pair; all rows run together, step by step. Three facts keep the work small:

- a row's relevant part β is exactly zero before its first relevant input, so each row is
  only computed from there on (rows sorted by that step: the active rows are a prefix);
- the relevant and irrelevant parts always add up to the true forward pass (β + γ = h and
  β^c + γ^c = c, REFERENCES §3.2 step 2 gives R + I + Z = φ(a + b + B)), so only β is
  carried and γ = true − β; the irrelevant pre-activation is b + B = z − a with z the true
  pre-activation, one matrix product per step instead of two;
- where the relevant input is the true input masked by the span, its projection W·x is
  computed once per sequence and added only to the rows inside their span at that step.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from ..engine import reverse_within, trace_lstm
from ..weights import DIRECTIONS, layer_weights
from ..workspace import thread_workspace


def _activate3(z: torch.Tensor, H: int) -> torch.Tensor:
    """σ on the i and f blocks, tanh on the g block of (…, 3H) pre-activations, in place."""
    z[..., : 2 * H].sigmoid_()
    z[..., 2 * H:].tanh_()
    return z


def tanh_scale(H: int, like: torch.Tensor) -> torch.Tensor:
    """(3H,) ½ on the i and f columns, 1 on g: σ(x) = ½ + ½ tanh(x/2), so pre-activations
    scaled by this go through a single tanh for all three gates."""
    scale = like.new_ones(3 * H)
    scale[: 2 * H] = 0.5
    return scale


def step_table(w, x: torch.Tensor, h: torch.Tensor, gates: torch.Tensor, c: torch.Tensor,
               o: torch.Tensor) -> torch.Tensor:
    """What every row of a sequence needs at each step, in one tensor: (T, B, 9H).

    ``x`` (T, B, in) inputs, ``h`` (T, B, P) hidden, ``gates`` (T, B, 3H) the true i, f, g,
    ``c`` and ``o`` (T, B, H), all time-major in processing order. Columns: z + B with
    z = W x_t + V h_{t−1} + B the true pre-activation of i, f, g (3H), so that the
    irrelevant pre-activation is b + B = (z + B) − (a + B); ½(φ(z) − φ(B)) (3H); c_t;
    tanh c_t; ½ o_t (H each). The first block is scaled by :func:`tanh_scale`.
    """
    T, B, _ = x.shape
    H = w.hidden_size
    B3 = w.bias[: 3 * H]
    h_prev = torch.cat([h.new_zeros(1, B, h.shape[-1]), h[:-1]])  # (T, B, P)
    z = torch.addmm(2 * B3, x.reshape(T * B, -1), w.w_ih[: 3 * H].t())
    z.addmm_(h_prev.reshape(T * B, -1), w.w_hh[: 3 * H].t()).mul_(tanh_scale(H, z))
    zB = _activate3(B3[None].clone(), H)  # φ(B), (1, 3H)
    half_s = (gates.reshape(T * B, -1) - zB).mul_(0.5)
    return torch.cat([z, half_s, c.reshape(T * B, H), torch.tanh(c).reshape(T * B, H),
                      0.5 * o.reshape(T * B, H)], 1).view(T, B, 9 * H)


def grid_layout(seq: torch.Tensor, start: torch.Tensor, B: int):
    """Where each row lives while the rows are stepped: slots (S,), grouped by start.

    Returns ``slot_row`` (S,) the row in each slot (−1: an empty slot), ``slot_seq`` (S,)
    its sequence, ``group_start`` (G,) ascending, the group size m (S = G·m) and ``pos``
    (N,) each row's slot. When the rows fill a grid of (start, sequence) pairs, as the
    word-level maps do, a group holds one slot per sequence (m = B) and a step's true
    values broadcast over the groups instead of being gathered row by row; otherwise every
    row is its own group (m = 1).
    """
    N = len(seq)
    starts = torch.unique(start)
    key = start * B + seq
    if len(torch.unique(key)) == N and len(starts) * B <= 1.5 * N:
        g = torch.searchsorted(starts, start)
        pos = g * B + seq
        slot_row = torch.full((len(starts) * B,), -1, dtype=torch.long)
        slot_row[pos] = torch.arange(N)
        slot_seq = torch.arange(B).repeat(len(starts))
        return slot_row, slot_seq, starts, B, pos
    order = torch.argsort(start, stable=True)
    pos = torch.argsort(order)
    return order, seq[order], start[order], 1, pos


def cd_direction(
    w, table: torch.Tensor, in_span: torch.Tensor, seq: torch.Tensor, start: torch.Tensor,
    bias_rule: str, span_input: torch.Tensor | None = None,
    dense_input: Callable[[int, torch.Tensor], torch.Tensor] | None = None,
    read: torch.Tensor | None = None,
) -> torch.Tensor:
    """β hidden (N, T, P) of one layer and direction, in processing order, batch-major;
    with ``read`` (N,) only each row's β at that step, (N, P).

    ``table`` (T, B, 9H) from :func:`step_table`; ``in_span`` (T, N) bool, time-major;
    ``seq`` (N,) each row's sequence; ``start`` (N,) each row's first relevant step. The
    relevant input of a row is either the true input inside its span, with projections
    ``span_input`` (T, B, 3H) = W x (no bias), or ``dense_input(t, rows)`` (n, 3H); both
    scaled by :func:`tanh_scale`, as the table's pre-activations are.
    """
    T, N = in_span.shape
    H, P = w.hidden_size, w.output_size
    slot_row, slot_seq, group_start, m, pos = grid_layout(seq, start, table.shape[1])
    S = len(slot_row)
    rows = slot_row.clamp_min(0)  # an empty slot computes row 0's input; it is never read
    n_active = (m * torch.searchsorted(group_start, torch.arange(T), right=True)).tolist()
    span_slots = in_span[:, rows] & (slot_row >= 0)  # (T, S)
    scale = tanh_scale(H, table)
    Wh = w.w_hh.t()[:, : 3 * H] * scale  # (P, 3H): o is not decomposed
    B3 = w.bias[: 3 * H]
    zB = _activate3(B3[None].clone(), H)[0]  # φ(B), (3H,)
    B3 = B3 * scale
    quarter_half = 0.5 * scale  # ½[φ(u) − φ(v)] = ¼ or ½ × [tanh(u′) − tanh(v′)]
    Zi, Zf, Zg = zB[:H], zB[H:2 * H], zB[2 * H:]
    ZiZg = (Zi * Zg)[None]  # (1, H)
    whr = w.w_hr.t() if w.w_hr is not None else None
    # work space, reused from step to step and call to call (fresh memory costs page faults)
    work = thread_workspace("cd")

    def buf(name: str, *shape: int) -> torch.Tensor:
        return work.get(name, *shape, dtype=table.dtype, device=table.device)

    if read is None:
        out = table.new_empty(T, S, P)  # β, time-major; a slot's state at t−1 is out[t − 1]
        zero = buf("zero", S, P).zero_()  # the state before the first step
    else:
        bh, bh_next = buf("bh", S, P).zero_(), buf("bh_next", S, P).zero_()  # β, 2 buffers
        final = buf("final", S, P).zero_()
        slot_read = torch.where(slot_row >= 0, read[rows], -1)  # (S,)
    bc, bc_next = buf("bc", S, H).zero_(), buf("bc_next", S, H).zero_()  # β^c, 2 buffers
    a_buf, zb_buf, R_buf = (buf(name, S, 3 * H) for name in ("a", "zb", "R"))
    tg_buf = buf("tg", S, H)
    for t in range(T):
        n = n_active[t]
        if read is None:
            out[t, n:].zero_()  # not started: β = 0
            prev, dest = (out[t - 1] if t else zero), out[t]
        else:
            prev, dest = bh, bh_next
        if n == 0:
            continue
        k = n // m
        if m == 1:  # one row per group: gather the true values of each row's sequence
            tv = table[t].index_select(0, slot_seq[:n])[:, None]  # (n, 1, 9H)
        else:  # a group per start, a slot per sequence: broadcast
            tv = table[t][None]  # (1, B, 9H)
        z, half_s = tv[..., : 3 * H], tv[..., 3 * H:6 * H]  # z + B; ½(φ(z) − φ(B))
        c, tanh_c, half_o = tv[..., 6 * H:7 * H], tv[..., 7 * H:8 * H], tv[..., 8 * H:]
        inside = span_slots[t, :n].nonzero().squeeze(1)  # slots inside their span now
        if dense_input is not None:
            a = dense_input(t, rows[:n]).add_(B3).addmm_(prev[:n], Wh)
        else:
            a = torch.addmm(B3, prev[:n], Wh, out=a_buf[:n])  # (n, 3H) relevant a + B
            if span_input is not None and len(inside):
                a.index_add_(0, inside, span_input[t].index_select(0, slot_seq[inside]))
        a = a.view(k, m, 3 * H)
        # tanh of the scaled b + B = (z + B) − (a + B), and of a + B
        zb = torch.sub(z, a, out=zb_buf[:n].view(k, m, 3 * H)).tanh_()
        R = torch.addcmul(half_s, a.tanh_().sub_(zb), quarter_half,
                          out=R_buf[:n].view(k, m, 3 * H))
        Ri, Rf, Rg = R[..., :H], R[..., H:2 * H], R[..., 2 * H:]  # (k, m, H) each
        # β^c = R_i⊙(R_g+Z_g) + Z_i⊙R_g + (R_f+Z_f)⊙β^c_{t−1}
        new_bc = torch.add(Rg, Zg, out=bc_next[:n].view(k, m, H)).mul_(Ri).addcmul_(Rg, Zi)
        new_bc.addcmul_(Rf.add_(Zf), bc[:n].view(k, m, H))
        if bias_rule == "code" and len(inside):
            bc_next[:n].index_add_(0, inside, ZiZg.expand(len(inside), H))
        # β = o ⊙ ½[tanh β^c + tanh c − tanh(c − β^c)]
        tg = torch.sub(c, new_bc, out=tg_buf[:n].view(k, m, H)).tanh_()
        if whr is None:
            new_bh = torch.tanh(new_bc, out=dest[:n].view(k, m, H))
            new_bh.sub_(tg).add_(tanh_c).mul_(half_o)
        else:
            u = torch.tanh(new_bc).sub_(tg).add_(tanh_c).mul_(half_o)
            torch.mm(u.view(n, H), whr, out=dest[:n])
        bc, bc_next = bc_next, bc
        if read is not None:
            hits = (slot_read[:n] == t).nonzero().squeeze(1)
            final[hits] = dest[hits]
            bh, bh_next = bh_next, bh
    if read is not None:
        return final.index_select(0, pos)
    return out.index_select(1, pos).transpose(0, 1)


def first_relevant_step(on: torch.Tensor) -> torch.Tensor:
    """(N,) first time step where ``on`` (T, N) holds (T if never)."""
    T = on.shape[0]
    idx = torch.where(on, torch.arange(T, device=on.device)[:, None], T)
    return idx.min(0).values


def cd_lstm(
    lstm: nn.LSTM, x: torch.Tensor, xr: torch.Tensor | None, in_span: torch.Tensor,
    rows: torch.Tensor, lengths: torch.Tensor, bias_rule: str = "code",
    features: torch.Tensor | None = None, read: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Decompose one ``nn.LSTM`` (all layers, both directions).

    ``x`` (B, T, in) the true inputs of the B sequences. The relevant part of row r's inputs
    is ``xr[r]`` (N, T, in) when given; otherwise it is the true input at the steps of
    ``in_span`` (N, T) — only the input features where ``features`` (N, in) is true, when
    given. ``rows`` (N,) the sequence of each row; ``lengths`` (B,). Returns the top layer's
    β hidden states (N, T, D·P) in input order and its true hidden states (B, T, D·P); the
    irrelevant part γ is their difference. With ``read`` (N, D), only the top layer's β at
    those positions (one per direction) is kept: (N, D·P).
    """
    dtype = x.dtype
    series = trace_lstm(lstm, x, lengths, dtype=dtype)  # the true forward pass, every gate
    D = 2 if lstm.bidirectional else 1
    row_len = lengths[rows]
    T = x.shape[1]
    padded = bool((row_len < T).any())
    layer_x = x
    for k in range(lstm.num_layers):
        outs = []
        for d in range(D):
            w = layer_weights(lstm, k, d, dtype)
            pre = f"layers.{k}.{DIRECTIONS[d]}."
            H = w.hidden_size

            def proc(t: torch.Tensor, L: torch.Tensor, _d=d) -> torch.Tensor:
                """Input order (M, T, ...) → processing order, time-major (T, M, ...)."""
                return (t if _d == 0 else reverse_within(t, L)).transpose(0, 1)

            gates = torch.cat([series[pre + g] for g in
                               ("input_gate", "forget_gate", "cell_candidate")], -1)
            x_p = proc(layer_x, lengths)  # (T, B, in)
            table = step_table(w, x_p, proc(series[pre + "hidden"], lengths),
                               proc(gates, lengths), proc(series[pre + "cell"], lengths),
                               proc(series[pre + "output_gate"], lengths))
            span_p = proc(in_span, row_len)  # (T, N)
            W_t = w.w_ih[: 3 * H].t() * tanh_scale(H, x)  # (in, 3H): o is not decomposed
            span_input, dense_input = None, None
            if xr is None and features is None:  # the true input split by the span
                span_input = x_p @ W_t  # (T, B, 3H)
                on = span_p
            elif xr is None:  # only some features of the steps in the span

                def dense_input(t, idx, _x=x_p, _s=span_p, _W=W_t):
                    rel = _x[t].index_select(0, rows[idx]) * (features[idx] & _s[t, idx, None])
                    return rel @ _W
                on = span_p
            else:
                xr_p = proc(xr, row_len)  # (T, N, in)

                def dense_input(t, idx, _xr=xr_p, _W=W_t):
                    return _xr[t].index_select(0, idx) @ _W
                on = span_p | (xr_p != 0).any(-1)
            start = first_relevant_step(on)
            at = None
            if read is not None and k == lstm.num_layers - 1:  # processing step of the read
                at = read[:, d] if d == 0 else row_len - 1 - read[:, d]
            bH = cd_direction(w, table, span_p, rows, start, bias_rule, span_input,
                              dense_input, at)  # (N, T, P) processing order, or (N, P)
            if d == 1 and at is None:
                bH = reverse_within(bH, row_len)
            outs.append(bH)
        xr = torch.cat(outs, -1) if D == 2 else outs[0]
        if padded and xr.dim() == 3:  # nothing of a row lies beyond its length
            xr = xr * (torch.arange(T)[None, :] < row_len[:, None])[..., None]
        tops = [series[f"layers.{k}.{DIRECTIONS[d]}.hidden"] for d in range(D)]
        layer_x = torch.cat(tops, -1) if D == 2 else tops[0]
    return xr, layer_x
