"""``attention``: the model's own attention weights over its inputs."""

from __future__ import annotations

import torch

from . import Context, Method, register_method


@register_method("attention")
class Attention(Method):
    """α_t of an attention-pooled model (no conservation law: ``delta`` is None)."""

    def unsupported(self, ctx: Context) -> str | None:
        if ctx.parts.pooling in ("last", "final"):
            return "it has no attention (its pooling is the last state)"
        return None

    def explain(self, ctx: Context):
        with torch.no_grad():
            e = ctx.parts.embed(ctx.x)
            h = e
            B, T = ctx.x.shape[:2]
            from ..engine import trace_lstm
            for lstm in ctx.parts.lstms:
                s = trace_lstm(lstm, h, ctx.lengths)
                top = lstm.num_layers - 1
                dirs = ("forward", "backward")[: 2 if lstm.bidirectional else 1]
                h = torch.cat([s[f"layers.{top}.{d}.hidden"] for d in dirs], -1)
            mask = torch.arange(T)[None, :] < ctx.lengths[:, None]
            _, alpha = ctx.parts.pooling(h, mask)
        scores = alpha if ctx.tokens_input else alpha[..., None].expand(-1, -1, ctx.x.shape[-1])
        return scores, None, {}
