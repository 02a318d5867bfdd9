"""Gradient methods through Captum: ``saliency``, ``grad_x_input``, ``integrated_gradients``.

Token models are explained through their embeddings (scores summed over the embedding
dimension; saliency takes the norm), feature models through their raw input features.
"""

from __future__ import annotations

import torch

from ..errors import InputError
from . import Context, Method, register_method


def _captum():
    try:
        import captum.attr as attr
    except ImportError:  # pragma: no cover - captum is a core dependency
        raise InputError("this method needs Captum: pip install captum") from None
    return attr


def baseline_for(ctx: Context, baseline: str) -> torch.Tensor:
    """The reference input: ``zero`` (embedding/features), ``pad`` (the PAD token's
    embedding) or ``mean`` (the mean input vector over the batch's valid steps)."""
    inp = ctx.model_input()
    if baseline == "zero":
        return torch.zeros_like(inp)
    if baseline == "pad":
        if ctx.parts.embedding is None:
            raise InputError("baseline 'pad' needs a token model; use 'zero' or 'mean'")
        pad = ctx.parts.embedding.weight[ctx.parts.embedding.padding_idx or 0].detach()
        return pad.expand_as(inp).clone()
    if baseline == "mean":
        mask = torch.arange(inp.shape[1])[None, :] < ctx.lengths[:, None]
        return inp[mask].mean(0).expand_as(inp).clone()
    raise InputError(f"baseline must be 'zero', 'pad' or 'mean', got {baseline!r}")


class _Gradient(Method):
    def _run(self, ctx: Context, cls_name: str, **kw):
        attr = _captum()
        inp = ctx.model_input().requires_grad_(True)
        with torch.backends.cudnn.flags(enabled=False):  # eval-mode backward through cuDNN
            algo = getattr(attr, cls_name)(lambda e: ctx.forward(e))
            return algo.attribute(inp, target=ctx.target, **kw)


@register_method("saliency")
class Saliency(_Gradient):
    """|∂ logit / ∂ input|: the L2 norm over the embedding for tokens, per feature otherwise."""

    def explain(self, ctx: Context):
        g = self._run(ctx, "Saliency", abs=False).detach()
        scores = g.norm(dim=-1) if ctx.tokens_input else g.abs()
        return scores, None, {}


@register_method("grad_x_input")
class GradientTimesInput(_Gradient):
    """Gradient × input, summed over the embedding dimension for tokens."""

    def explain(self, ctx: Context):
        return ctx.reduce(self._run(ctx, "InputXGradient").detach()), None, {}


@register_method("integrated_gradients")
class IntegratedGradients(Method):
    """Integrated gradients (Captum) with Gauss–Legendre quadrature.

    Options: ``baseline`` ``"zero"`` (default), ``"pad"`` or ``"mean"``; ``steps`` (50);
    ``delta`` is |Σ scores − (f(x) − f(baseline))| (completeness).
    """

    def explain(self, ctx: Context, baseline: str = "zero", steps: int = 50,
                internal_batch_size: int | None = None):
        attr = _captum()
        inp = ctx.model_input()
        base = baseline_for(ctx, baseline)
        ig = attr.IntegratedGradients(lambda e: ctx.forward(e))
        with torch.backends.cudnn.flags(enabled=False):
            a, delta = ig.attribute(inp, baselines=base, target=ctx.target, n_steps=steps,
                                    method="gausslegendre", return_convergence_delta=True,
                                    internal_batch_size=internal_batch_size)
        return ctx.reduce(a.detach()), delta.detach().abs(), {"baseline": baseline,
                                                              "steps": steps}
