"""``cell_decomposition`` and ``additive_cell_decomposition`` (Murdoch & Szlam, ICLR 2017).

REFERENCES §3.4, in logit units for class k (W_k the head's row):

- multiplicative: score_j = W_k (o_T ⊙ (tanh c_j − tanh c_{j−1})); exp(score_j) is word j's
  multiplicative contribution, and Σ_j score_j = W_k h_T.
- additive: c_T = Σ_i e_i with e_i = (Π_{j>i} f_j) i_i g_i, and score_j = W_k (o_T ⊙
  (tanh Σ_{i≤j} e_i − tanh Σ_{i<j} e_i)): later forget gates discount early words.

Both read the top LSTM layer of a unidirectional model with last-state pooling; ``delta``
is |Σ scores − W_k h_T|.
"""

from __future__ import annotations

import torch

from ..engine import trace_lstm
from . import Context, Method, register_method


class _CellMethod(Method):
    def unsupported(self, ctx: Context) -> str | None:
        if not getattr(ctx.parts, "exact", True):
            return ("the cell decompositions cannot explain the encoder–decoder's output: they "
                    "read the cell of the one LSTM whose last state feeds a linear head, and "
                    "the output token comes from the decoder and its attention over the "
                    "source (use integrated_gradients, occlusion or shapley_sampling)")
        top = ctx.parts.lstms[-1]
        if top.bidirectional:
            return "the cell decompositions follow one direction; its top LSTM is bidirectional"
        if top.proj_size:
            return "its top LSTM has a projection (h_T is not o_T ⊙ tanh c_T)"
        if ctx.parts.pooling not in ("last", "final"):
            return "it pools with attention; the cell decompositions read the last state"
        return None

    def _top(self, ctx: Context):
        with torch.no_grad():
            h = ctx.parts.embed(ctx.x).to(ctx.dtype)
            for lstm in ctx.parts.lstms:
                s = trace_lstm(lstm, h, ctx.lengths, dtype=ctx.dtype)
                k = lstm.num_layers - 1
                h = s[f"layers.{k}.forward.hidden"]
        k = ctx.parts.lstms[-1].num_layers - 1
        return {n: s[f"layers.{k}.forward.{n}"] for n in
                ("input_gate", "forget_gate", "cell_candidate", "output_gate", "cell", "hidden")}

    def _finish(self, ctx: Context, cum: torch.Tensor, s: dict) -> tuple:
        """cum (B, T, H): the cell built from steps ≤ j; scores from tanh differences."""
        B, T, _ = cum.shape
        rows = torch.arange(B)
        last = ctx.lengths - 1
        o_T = s["output_gate"][rows, last]  # (B, H)
        Wk = ctx.parts.head.weight.to(ctx.dtype)[ctx.target]  # (B, H)
        th = torch.tanh(cum)
        prev = torch.cat([torch.zeros_like(th[:, :1]), th[:, :-1]], 1)
        scores = ((th - prev) * (o_T * Wk)[:, None, :]).sum(-1)  # (B, T)
        mask = torch.arange(T)[None, :] < ctx.lengths[:, None]
        scores = scores * mask
        h_T = s["hidden"][rows, last]
        delta = (scores.sum(1) - (Wk * h_T).sum(-1)).abs()
        if not ctx.tokens_input:  # one score per step: all of its features together
            scores = scores[..., None].expand(-1, -1, ctx.x.shape[-1]) / ctx.x.shape[-1]
        return scores, delta


@register_method("cell_decomposition")
class CellDecomposition(_CellMethod):
    """Differences of tanh(c_j) read through o_T (multiplicative in probability space)."""

    def explain(self, ctx: Context):
        s = self._top(ctx)
        B, T, _ = s["cell"].shape
        # beyond a sequence's end the cell stays at c_{T}: steps past the end add nothing
        last = (ctx.lengths - 1)[:, None, None].expand(-1, T, s["cell"].shape[-1])
        t = torch.arange(T)[None, :, None]
        cum = torch.where(t <= last, s["cell"], s["cell"].gather(1, last))
        return (*self._finish(ctx, cum, s), {})


@register_method("additive_cell_decomposition")
class AdditiveCellDecomposition(_CellMethod):
    """c_T split into each step's update discounted by the later forget gates."""

    def explain(self, ctx: Context):
        s = self._top(ctx)
        f, i, g = s["forget_gate"], s["input_gate"], s["cell_candidate"]  # (B, T, H)
        B, T, H = f.shape
        mask = (torch.arange(T)[None, :] < ctx.lengths[:, None])[..., None]
        f = torch.where(mask, f, torch.ones_like(f))  # past the end: nothing is forgotten
        # discount_i = Π_{j = i+1..T} f_j, from a reversed cumulative product (only shrinks)
        rev = torch.cumprod(f.flip(1), 1).flip(1)  # Π_{j ≥ i} f_j
        discount = torch.cat([rev[:, 1:], torch.ones_like(rev[:, :1])], 1)
        e = discount * i * g * mask  # (B, T, H)
        cum = torch.cumsum(e, 1)
        return (*self._finish(ctx, cum, s), {})
