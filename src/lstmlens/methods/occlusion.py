"""``occlusion``: leave-one-out (or a sliding window), batched, reusing the unchanged prefix.

Masking position t leaves every state before t as it was, so the LSTMs are restarted at t
from the true states at t − 1 and only the suffix is recomputed (unidirectional models;
a bidirectional model is recomputed whole, in batches).
"""

from __future__ import annotations

import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from ..engine import trace_lstm
from ..errors import InputError
from . import Context, Method, register_method
from .gradients import baseline_for


def _run(lstm, h, lengths, state):
    T = h.shape[1]
    packed = pack_padded_sequence(h, lengths.cpu(), batch_first=True, enforce_sorted=False)
    out, _ = lstm(packed, state)
    return pad_packed_sequence(out, batch_first=True, total_length=T)[0]


def _logits(ctx: Context, h: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    pooled, _ = ctx.parts.pool(h, lengths, ctx.parts.lstms[-1].bidirectional)
    return ctx.parts.head(pooled)


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
        # variants: (sequence, start, feature or -1)
        var = [(b, t, f) for b in range(B) for t in range(int(ctx.lengths[b]) - window + 1)
               for f in ([-1] if ctx.tokens_input else range(F))]
        if not var:
            raise InputError(f"window {window} is longer than every sequence")
        seq = torch.tensor([v[0] for v in var])
        start = torch.tensor([v[1] for v in var])
        feat = torch.tensor([v[2] for v in var])
        with torch.no_grad():
            full = self._full(ctx, inp, output)
            if any(lstm.bidirectional for lstm in ctx.parts.lstms):
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
        """Restart every LSTM at each variant's first masked step from the true states."""
        # the true pass: every layer's states, per LSTM module
        true_series, tops = [], []
        h = ctx.parts.embed(ctx.x if ctx.tokens_input else inp)  # (B, T, E)
        for lstm in ctx.parts.lstms:
            s = trace_lstm(lstm, h, ctx.lengths)
            true_series.append(s)
            h = s[f"layers.{lstm.num_layers - 1}.forward.hidden"]
            tops.append(h)
        out = torch.empty(len(seq))
        for t in torch.unique(start).tolist():
            idx = (start == t).nonzero().squeeze(1)
            rows = seq[idx]
            L = ctx.lengths[rows] - t
            x = inp[rows, t:]
            x = self._masked(x, base[rows, t:], start[idx], feat[idx], window,
                             torch.full_like(idx, t))
            h = x if ctx.tokens_input else ctx.parts.embed(x)
            for m, lstm in enumerate(ctx.parts.lstms):
                if t == 0:
                    state = None
                else:
                    s = true_series[m]
                    hs = [s[f"layers.{k}.forward.hidden"][rows, t - 1]
                          for k in range(lstm.num_layers)]
                    cs = [s[f"layers.{k}.forward.cell"][rows, t - 1]
                          for k in range(lstm.num_layers)]
                    state = (torch.stack(hs), torch.stack(cs))
                h = _run(lstm, h, L, state)
            full_h = torch.cat([tops[-1][rows, :t], h], 1) if t else h
            logits = _logits(ctx, full_h, ctx.lengths[rows])
            out[idx] = self._value(ctx, logits, rows, output)
        return out
