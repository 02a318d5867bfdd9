"""``cd``: contextual decomposition, word by word (unigram spans), exact and batched."""

from __future__ import annotations

import torch

from ..decomposition import cd_rows
from . import Context, Method, register_method


@register_method("cd")
class ContextualDecomposition(Method):
    """Each position's relevant logit of the target class (REFERENCES §3.2).

    Options: ``bias_rule`` ``"code"`` (default) or ``"paper"``. For feature inputs every
    (step, feature) is its own phrase and bias products always count as irrelevant, so the
    scores of a step's features add up without counting its bias F times.
    """

    def unsupported(self, ctx: Context) -> str | None:
        if not getattr(ctx.parts, "exact", True):
            return ("contextual decomposition cannot explain the encoder–decoder's output: it "
                    "follows one chain of LSTMs into a linear head, and the output token also "
                    "passes through the decoder LSTM and its attention over the source (use "
                    "integrated_gradients, occlusion or shapley_sampling)")
        return None

    def explain(self, ctx: Context, bias_rule: str = "code"):
        B, T = ctx.x.shape[:2]
        rows, starts = [], []
        for b in range(B):
            for t in range(int(ctx.lengths[b])):
                rows.append(b)
                starts.append(t)
        rows_t, starts_t = torch.tensor(rows), torch.tensor(starts)
        in_span = torch.arange(T)[None, :] == starts_t[:, None]  # (N, T)
        if ctx.tokens_input:
            d = cd_rows(ctx.parts, ctx.x, ctx.lengths, rows_t, in_span, None, ctx.dtype,
                        bias_rule)
            scores = torch.zeros(B, T, dtype=ctx.dtype)
            scores[rows_t, starts_t] = d.relevant[torch.arange(len(rows)), ctx.target[rows_t]]
        else:
            F = ctx.x.shape[-1]
            rows_f = rows_t.repeat_interleave(F)
            span_f = in_span.repeat_interleave(F, 0)
            feat = torch.arange(F).repeat(len(rows))
            select = torch.zeros(len(rows_f), F, dtype=torch.bool)
            select[torch.arange(len(rows_f)), feat] = True
            d = cd_rows(ctx.parts, ctx.x, ctx.lengths, rows_f, span_f, select, ctx.dtype,
                        "paper")
            scores = torch.zeros(B, T, F, dtype=ctx.dtype)
            rel = d.relevant[torch.arange(len(rows_f)), ctx.target[rows_f]]
            scores[rows_f, starts_t.repeat_interleave(F), feat] = rel
            bias_rule = "paper"
        # conservation: relevant + irrelevant = logits − bias, for every row
        full = d.relevant + d.irrelevant - (d.logits - d.bias)  # (N, C)
        delta = torch.zeros(B, dtype=ctx.dtype).scatter_reduce_(
            0, d.rows, full.abs().amax(1), "amax")
        return scores, delta, {"bias_rule": bias_rule}
