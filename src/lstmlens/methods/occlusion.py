"""``occlusion``: leave-one-out (or a sliding window), batched, reusing the unchanged prefix.

Masking position t leaves every state before t as it was, so a variant starting at t
begins from the true states at t − 1 and only its suffix is computed. All variants are
stepped together through absolute time: at step s only the variants with t ≤ s are
active (about half the work of re-running every variant whole), and each sequence's
input projection W x_s + b is computed once and shared by all its variants. The variants
are dealt to one piece of work per torch thread, run side by side with one torch thread
each (:func:`lstmlens.threads.map_threads`): one step's operations are too small for
torch to split well over threads. Bidirectional
models, and parts that are not a plain chain of LSTMs into a head (``exact = False``),
are re-run whole, in batches, through ``ctx.forward``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..engine import trace_lstm
from ..errors import InputError
from ..threads import map_threads
from ..weights import layer_weights
from . import Context, Method, register_method
from .cd_core import grid_layout
from .gradients import baseline_for

# Variants stepped together: at most this many floats in one chunk's stored states.
SUFFIX_CHUNK_ELEMENTS = 1 << 25
# Below this many variant-steps the variants run as one piece of work (no threads)
SPLIT_MIN_STEPS = 1 << 14


@dataclass(frozen=True)
class _Weights:
    """One layer's weights, transposed for ``x @ W``, gates reordered to i, f, o, g so that
    one σ call covers the three sigmoid gates."""

    w_ih_t: torch.Tensor  # (in, 4H)
    w_hh_t: torch.Tensor  # (P, 4H)
    bias: torch.Tensor  # (4H,)
    w_hr_t: torch.Tensor | None  # (H, P)
    H: int
    P: int


def _sigmoids_first(w) -> _Weights:
    H = w.hidden_size
    order = torch.cat([torch.arange(2 * H), torch.arange(3 * H, 4 * H),
                       torch.arange(2 * H, 3 * H)])
    return _Weights(w.w_ih[order].t().contiguous(), w.w_hh[order].t().contiguous(),
                    w.bias[order], None if w.w_hr is None else w.w_hr.t().contiguous(), H,
                    w.output_size)


def _variants(lengths: torch.Tensor, window: int, features: int | None):
    """Every variant as (sequence, start, feature or −1), each (V,): sequence by sequence,
    start by start, then feature by feature (``features`` None: whole steps)."""
    n = (lengths.long() - window + 1).clamp_min(0)  # (B,) starts per sequence
    seq = torch.repeat_interleave(torch.arange(len(n)), n)
    start = torch.arange(len(seq)) - torch.repeat_interleave(n.cumsum(0) - n, n)
    if features is None:
        return seq, start, torch.full_like(seq, -1)
    return (seq.repeat_interleave(features), start.repeat_interleave(features),
            torch.arange(features).repeat(len(seq)))


@register_method("occlusion")
class Occlusion(Method):
    """f(x)[target] − f(x with inputs replaced by a baseline)[target].

    Options: ``window`` (1 = leave-one-out; w > 1 slides a window of w steps and gives
    each step the mean over the windows covering it, as Captum's ``Occlusion`` does),
    ``baseline`` ``"zero"`` (default), ``"pad"`` or ``"mean"``, ``output`` ``"logit"``
    (default) or ``"probability"``. Feature inputs are occluded one (step, feature) at a
    time.
    """

    def explain(self, ctx: Context, window: int = 1, baseline: str = "zero",
                output: str = "logit", chunk: int = 512):
        if window < 1:
            raise InputError(f"window must be ≥ 1, got {window}")
        if output not in ("logit", "probability"):
            raise InputError(f"output must be 'logit' or 'probability', got {output!r}")
        inp = ctx.model_input()  # (B, T, E) embeddings or features
        base = baseline_for(ctx, baseline)
        B, T, E = inp.shape
        F = 1 if ctx.tokens_input else E
        seq, start, feat = _variants(ctx.lengths, window, None if ctx.tokens_input else F)
        if not len(seq):
            raise InputError(f"window {window} is longer than every sequence")
        with torch.no_grad():
            full = self._full(ctx, inp, output)
            if (not getattr(ctx.parts, "exact", True)
                    or any(lstm.bidirectional for lstm in ctx.parts.lstms)):
                out = self._recompute(ctx, inp, base, seq, start, feat, window, output, chunk)
            else:
                out = self._suffix(ctx, inp, base, seq, start, feat, window, output)
        diff = full[seq] - out  # (V,)
        scores = torch.zeros(B, T, F)
        counts = torch.zeros(B, T, F)
        fi = feat.clamp_min(0)
        for k in range(window):
            scores.index_put_((seq, start + k, fi), diff, accumulate=True)
            counts.index_put_((seq, start + k, fi), torch.ones_like(diff), accumulate=True)
        scores = scores / counts.clamp_min(1)
        scores = scores[..., 0] if ctx.tokens_input else scores
        return scores, None, {"window": window, "baseline": baseline, "output": output}

    @staticmethod
    def _value(ctx, logits, rows, output):
        if output == "probability":
            logits = torch.softmax(logits, -1)
        return logits[torch.arange(len(rows)), ctx.target[rows]]

    def _full(self, ctx, inp, output):
        return self._value(ctx, ctx.logits, torch.arange(inp.shape[0]), output)

    def _masked(self, x, base, start, feat, window, offset):
        """Replace steps start..start+window−1 (feature feat, or all when −1) of x (V, T, E)."""
        V, T, E = x.shape
        t = torch.arange(T)[None, :] + offset[:, None]  # absolute positions (V, T)
        on = (t >= start[:, None]) & (t < start[:, None] + window)  # (V, T)
        on = on[..., None].expand(V, T, E).clone()
        has_f = feat >= 0
        if has_f.any():
            fmask = torch.zeros(V, E, dtype=torch.bool)
            fmask[has_f, feat[has_f]] = True
            fmask[~has_f] = True
            on &= fmask[:, None, :]
        return torch.where(on, base, x)

    def _recompute(self, ctx, inp, base, seq, start, feat, window, output, chunk):
        outs = []
        for i in range(0, len(seq), chunk):
            s, st, f = seq[i:i + chunk], start[i:i + chunk], feat[i:i + chunk]
            x = self._masked(inp[s], base[s], st, f, window, torch.zeros_like(st))
            logits = ctx.forward(x, ctx.lengths[s])
            outs.append(self._value(ctx, logits, s, output))
        return torch.cat(outs)

    def _suffix(self, ctx, inp, base, seq, start, feat, window, output):
        """Restart the LSTMs at each variant's first masked step from the true states."""
        parts = ctx.parts
        e = parts.embed(ctx.x if ctx.tokens_input else inp)  # (B, T, E) true LSTM inputs
        layers, h = [], e
        for lstm in parts.lstms:  # the true pass: every layer's states
            s = trace_lstm(lstm, h, ctx.lengths)
            for k in range(lstm.num_layers):
                layers.append((_sigmoids_first(layer_weights(lstm, k, 0)),
                               s[f"layers.{k}.forward.hidden"], s[f"layers.{k}.forward.cell"]))
            h = s[f"layers.{lstm.num_layers - 1}.forward.hidden"]
        w0 = layers[0][0]
        B, T, E = e.shape
        # W x + b of the true inputs, time-major (T, B, 4H)
        proj_t = torch.addmm(w0.bias, e.transpose(0, 1).reshape(T * B, E),
                             w0.w_ih_t).view(T, B, -1)
        per_chunk = max(1, SUFFIX_CHUNK_ELEMENTS // (T * max(w.P for w, _, _ in layers)))
        # start groups dealt round-robin to one piece per torch thread (each piece gets
        # early and late starts alike, so equal work); a piece runs in chunks of variants
        # that begin together
        g = torch.searchsorted(torch.unique(start), start)
        # below SPLIT_MIN_STEPS variant-steps, too little work to gain from threads
        n = (1 if len(seq) * T < SPLIT_MIN_STEPS
             else min(torch.get_num_threads(), int(g.max()) + 1))
        pieces = [idx[torch.argsort(start[idx], stable=True)]
                  for idx in ((g % n == k).nonzero().squeeze(1) for k in range(n))]

        def run(idx: torch.Tensor) -> torch.Tensor:
            vals = torch.empty(len(idx))
            for a in range(0, len(idx), per_chunk):
                sl = idx[a:a + per_chunk]
                logits = self._step_variants(ctx, inp, base, layers, e, proj_t, seq[sl],
                                             start[sl], feat[sl], window)
                vals[a:a + per_chunk] = self._value(ctx, logits, seq[sl], output)
            return vals

        out = torch.empty(len(seq))
        for idx, vals in zip(pieces, map_threads(run, pieces), strict=True):
            out[idx] = vals
        return out

    @staticmethod
    def _step_variants(ctx, inp, base, layers, e, proj_t, seq, start, feat, window):
        """Logits (V, C) of V variants; ``e`` (B, T, E) the true LSTM inputs and ``proj_t``
        (T, B, 4H) = W x + b of them, gates in the order i, f, o, g (see
        :func:`_sigmoids_first`).

        Slots are sorted by start, so at each step the active variants are a prefix of the
        slots and those inside their occluded window a contiguous range of it: every step
        works on slices (no index search), in buffers made once (fresh memory costs page
        faults), with the input projection accumulated straight into the gate buffer.
        """
        parts = ctx.parts
        T = inp.shape[1]
        slot_row, slot_seq, group_start, m, pos = grid_layout(seq, start, inp.shape[0])
        S = len(slot_row)
        rows = slot_row.clamp_min(0)  # an empty slot runs row 0's variant; it is never read
        # each slot's occluded inputs (S, w, E) and the change they make to W x + b
        seq_s, at = seq[rows], start[rows, None] + torch.arange(window)[None, :]  # (S, w)
        masked = base[seq_s[:, None], at]
        if not ctx.tokens_input:  # one feature of the step, then the model's own embed
            keep = torch.ones(S, 1, inp.shape[-1], dtype=torch.bool)
            keep[torch.arange(S), 0, feat[rows]] = False
            masked = parts.embed(torch.where(keep, inp[seq_s[:, None], at], masked))
        change = (masked - e[seq_s[:, None], at]).reshape(S * window, -1)
        proj_w = torch.mm(change, layers[0][0].w_ih_t).view(S, window, -1)  # (S, w, 4H)
        steps = torch.arange(T)
        n_active = (m * torch.searchsorted(group_start, steps, right=True)).tolist()
        # slots [n_past[s], n_active[s]) started within the window: their input is occluded
        n_past = (m * torch.searchsorted(group_start, steps - window, right=True)).tolist()
        # an empty slot's start: its group's (keeps its offset inside the window)
        slot_start = start[rows] if m == 1 else group_start.repeat_interleave(m)
        hs = [proj_t.new_zeros(S, w.P) for w, _, _ in layers]
        cs = [proj_t.new_zeros(S, w.H) for w, _, _ in layers]
        gs = [proj_t.new_empty(S, 4 * w.H) for w, _, _ in layers]
        top = layers[-1][1]  # (B, T, P) the true top states
        keep_all = parts.pooling not in ("last", "final")
        seq_top = proj_t.new_empty(T, S, top.shape[-1]) if keep_all else None
        pooled = proj_t.new_zeros(S, top.shape[-1])
        slot_last = torch.where(slot_row >= 0, ctx.lengths[slot_seq] - 1, -1)  # read there
        reads = {int(t): (slot_last == t).nonzero().squeeze(1)
                 for t in torch.unique(slot_last).tolist() if t >= 0}
        for s in range(T):
            n = n_active[s]
            if n == 0:
                if keep_all:
                    seq_top[s] = top[slot_seq, s]
                continue
            k_new = slice(n_active[s - 1] if s else 0, n)
            for (_, h_true, c_true), h, c in zip(layers, hs, cs, strict=True):
                if s > 0:  # variants starting now: the true state at s − 1
                    h[k_new] = h_true[slot_seq[k_new], s - 1]
                    c[k_new] = c_true[slot_seq[k_new], s - 1]
            x = None
            for li, ((w, _, _), h, c, gb) in enumerate(zip(layers, hs, cs, gs, strict=True)):
                H = w.H
                g = gb[:n]  # (n, 4H) gates i, f, o, g
                if li == 0:
                    if m == 1:
                        torch.index_select(proj_t[s], 0, slot_seq[:n], out=g)
                    else:
                        g.view(n // m, m, -1).copy_(proj_t[s])
                    a = n_past[s]
                    if window == 1:
                        g[a:n] += proj_w[a:n, 0]
                    else:
                        g[a:n] += proj_w[torch.arange(a, n), s - slot_start[a:n]]
                else:
                    torch.addmm(w.bias, x, w.w_ih_t, out=g)
                g.addmm_(h[:n], w.w_hh_t)
                g[:, : 3 * H].sigmoid_()
                g[:, 3 * H:].tanh_()
                c[:n].mul_(g[:, H:2 * H]).addcmul_(g[:, :H], g[:, 3 * H:])  # f c + i g
                if w.w_hr_t is None:  # h = o ⊙ tanh c, straight into the state
                    torch.tanh(c[:n], out=h[:n]).mul_(g[:, 2 * H:3 * H])
                else:
                    torch.mm(torch.tanh(c[:n]).mul_(g[:, 2 * H:3 * H]), w.w_hr_t, out=h[:n])
                x = h[:n]
            if s in reads:
                pooled[reads[s]] = x[reads[s]]
            if keep_all:
                seq_top[s, :n] = x
                seq_top[s, n:] = top[slot_seq[n:], s]
        if keep_all:  # the whole top sequence of each variant
            full = seq_top.index_select(1, pos).transpose(0, 1)  # (V, T, P)
            pooled_v, _ = parts.pool(full, ctx.lengths[seq], False)
        else:
            pooled_v = pooled.index_select(0, pos)
        return parts.head(pooled_v)
