"""``lrp``: layer-wise relevance propagation through the gates (ε-rule, signal-take-all)."""

from __future__ import annotations

import torch

from ..workspace import thread_workspace
from . import Context, Method, register_method
from .lrp_core import LRPForward, lrp_forward, lrp_parts


@register_method("lrp")
class LRP(Method):
    """Relevance of each input (Arras et al. 2017; REFERENCES §3.3).

    Options: ``eps`` (default 0.001) and ``bias_factor`` (default 0; with 1 the relevance of
    the inputs plus the initial state adds up to the target logit, and ``delta`` measures
    how far it misses).
    """

    def __init__(self) -> None:
        self._forward: LRPForward | None = None

    def unsupported(self, ctx: Context) -> str | None:
        if not getattr(ctx.parts, "exact", True):
            return ("LRP cannot explain the encoder–decoder's output: it propagates relevance "
                    "back through one chain of LSTMs from a linear head, and the output token "
                    "also passes through the decoder LSTM and its attention over the source "
                    "(use integrated_gradients, occlusion or shapley_sampling)")
        return None

    def forward_logits(self, parts, x: torch.Tensor, lengths: torch.Tensor,
                       dtype: torch.dtype) -> torch.Tensor | None:
        """The model's logits (B, C) from LRP's own forward pass, kept for :meth:`explain`
        (so ``explain`` runs the model once); None for models LRP cannot follow."""
        if not getattr(parts, "exact", True):
            return None
        # the series are kept per thread and reused by the next call (fresh memory costs
        # a page fault per 4 kB)
        self._forward = lrp_forward(parts, x, lengths, dtype, work=thread_workspace("lrp"))
        return self._forward.logits

    def explain(self, ctx: Context, eps: float = 1e-3, bias_factor: float = 0.0):
        fwd = self._forward
        if fwd is None or fwd.x is not ctx.x or fwd.logits.dtype != ctx.dtype:
            fwd = None
        R, initial, score = lrp_parts(ctx.parts, ctx.x, ctx.lengths, ctx.target, eps,
                                      bias_factor, ctx.dtype, forward=fwd,
                                      per_dimension=not ctx.tokens_input)
        self._forward = None
        delta = (R.sum((1, 2)) + initial - score).abs()
        return ctx.reduce(R), delta, {"eps": eps, "bias_factor": bias_factor}
