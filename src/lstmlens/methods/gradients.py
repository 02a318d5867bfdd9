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


# steps="auto": Gauss–Legendre points, doubled until completeness holds for every sequence
AUTO_FIRST_STEPS, AUTO_MAX_STEPS, AUTO_TOLERANCE = 64, 1024, 1e-3
# Scaled inputs per forward and backward pass when the caller does not say (memory bound)
IG_BATCH = 4096


@register_method("integrated_gradients")
class IntegratedGradients(Method):
    """Integrated gradients (Captum) with Gauss–Legendre quadrature.

    Options: ``baseline`` ``"zero"`` (default), ``"pad"`` or ``"mean"``; ``steps``:
    ``"auto"`` (default: 64 points, doubled up to 1024 for the sequences whose
    completeness gap is still above 1e-3; ``params["steps_used"]`` says how many each
    sequence got) or a whole number of points for every sequence. ``delta`` is
    |Σ scores − (f(x) − f(baseline))| (completeness).
    """

    def explain(self, ctx: Context, baseline: str = "zero", steps: int | str = "auto",
                internal_batch_size: int | None = None):
        inp = ctx.model_input()
        base = baseline_for(ctx, baseline)
        B = inp.shape[0]
        if steps == "auto":
            n = AUTO_FIRST_STEPS
        elif isinstance(steps, int) and not isinstance(steps, bool) and steps >= 1:
            n = steps
        else:
            raise InputError(f"steps must be 'auto' or a whole number ≥ 1, got {steps!r}")
        rows = torch.arange(B)
        scores, delta = torch.empty_like(inp), torch.empty(B)
        used = torch.zeros(B, dtype=torch.long)
        while True:
            a, d = self._integrate(ctx, inp[rows], base[rows], rows, n, internal_batch_size)
            scores[rows], delta[rows], used[rows] = a, d, n
            if steps != "auto" or n >= AUTO_MAX_STEPS:
                break
            rows = rows[d > AUTO_TOLERANCE]  # only these need more points
            if len(rows) == 0:
                break
            n *= 2
        params = {"baseline": baseline, "steps": steps}
        if steps == "auto":
            params["steps_used"] = used.tolist()
        return ctx.reduce(scores), delta, params

    @staticmethod
    def _integrate(ctx: Context, inp: torch.Tensor, base: torch.Tensor, rows: torch.Tensor,
                   n: int, internal_batch_size: int | None):
        """Attributions and |completeness gap| of the sequences ``rows`` with n points."""
        lengths, target = ctx.lengths[rows], ctx.target[rows]
        if internal_batch_size is None and n * len(rows) > IG_BATCH:
            internal_batch_size = max(len(rows), IG_BATCH)
        ig = _captum().IntegratedGradients(lambda e: ctx.forward(e, lengths))
        with torch.backends.cudnn.flags(enabled=False):  # eval-mode backward through cuDNN
            a, delta = ig.attribute(inp, baselines=base, target=target, n_steps=n,
                                    method="gausslegendre", return_convergence_delta=True,
                                    internal_batch_size=internal_batch_size)
        return a.detach(), delta.detach().abs()
