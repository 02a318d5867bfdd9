"""Gradient methods through Captum: ``saliency``, ``grad_x_input``, ``integrated_gradients``.

Token models are explained through their embeddings (scores summed over the embedding
dimension; saliency takes the norm), feature models through their raw input features.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch

from ..errors import InputError
from . import Context, Method, register_method
from .ig_adaptive import IG_BATCH, adaptive_integrated_gradients


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


def double_forward(ctx: Context) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None:
    """``ctx.forward`` on a float64 copy of the model (the user's model is left as it is),
    or None where the copy does not compute in float64 or disagrees with the model."""
    try:
        parts = copy.deepcopy(ctx.parts)
        for m in (parts.model, *parts.lstms, parts.head, parts.pooling, parts.embedding):
            if isinstance(m, torch.nn.Module):
                m.double()

        def forward(inp: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
            e = inp if ctx.tokens_input else parts.embed(inp)
            return parts.logits_from_embedded(e, lengths)  # (N, C)

        with torch.no_grad():
            out = forward(ctx.model_input().double(), ctx.lengths)  # (B, C)
    except (RuntimeError, TypeError, AttributeError, copy.Error):
        return None
    if out.dtype != torch.float64 or not torch.allclose(out.float(), ctx.logits.float(),
                                                         rtol=1e-3, atol=1e-3):
        return None
    return forward


# steps="auto": adaptive composite Gauss–Legendre (ig_adaptive): one segment of
# AUTO_FIRST_STEPS points, then bisection with AUTO_SEGMENT_STEPS points per half
AUTO_FIRST_STEPS, AUTO_SEGMENT_STEPS = 64, 16
AUTO_TOLERANCE, AUTO_BUDGET = 1e-3, 4096


@register_method("integrated_gradients")
class IntegratedGradients(Method):
    """Integrated gradients (Captum) with Gauss–Legendre quadrature.

    Options: ``baseline`` ``"zero"`` (default), ``"pad"`` or ``"mean"``; ``steps``:
    ``"auto"`` (default) or a whole number of points for one Gauss–Legendre rule over the
    whole path (exactly Captum's ``IntegratedGradients(method="gausslegendre")``).

    ``"auto"`` is adaptive composite quadrature (``ig_adaptive``): 64 points over the whole
    path, and for the sequences whose completeness gap is still above ``tolerance``
    (default 1e-3) the path is split into segments, each checked against its own
    completeness law (f at its ends), and the worst are bisected (16 points per half) until
    the segments' |gaps| sum to at most ``tolerance`` or ``budget`` (default 4096) gradient
    evaluations are spent. Those sequences are integrated in float64 (on a copy of the
    model): a path's steep parts can be narrower than float32 resolves. ``params`` then
    holds, per sequence, ``steps_used`` (gradient evaluations), ``segments``, ``gap`` (the
    completeness gap), ``segment_gaps`` (Σ of the segments' own |gaps|) and ``float64``.
    ``delta`` is |Σ scores − (f(x) − f(baseline))|.
    """

    def explain(self, ctx: Context, baseline: str = "zero", steps: int | str = "auto",
                internal_batch_size: int | None = None, tolerance: float = AUTO_TOLERANCE,
                budget: int = AUTO_BUDGET):
        inp = ctx.model_input()
        base = baseline_for(ctx, baseline)
        if not (steps == "auto" or (isinstance(steps, int) and not isinstance(steps, bool)
                                    and steps >= 1)):
            raise InputError(f"steps must be 'auto' or a whole number ≥ 1, got {steps!r}")
        params = {"baseline": baseline, "steps": steps}
        if steps != "auto":
            scores, delta = self._integrate(ctx, inp, base, steps, internal_batch_size)
            return ctx.reduce(scores), delta, params
        number = isinstance(tolerance, int | float) and not isinstance(tolerance, bool)
        if not (number and tolerance > 0):
            raise InputError(f"tolerance must be a number > 0, got {tolerance!r}")
        whole = isinstance(budget, int) and not isinstance(budget, bool)
        if not (whole and budget >= AUTO_FIRST_STEPS):
            raise InputError(f"budget must be a whole number ≥ {AUTO_FIRST_STEPS} gradient "
                             f"evaluations, got {budget!r}")
        res = adaptive_integrated_gradients(
            ctx.forward, inp, base, ctx.target, ctx.lengths, first_points=AUTO_FIRST_STEPS,
            points=AUTO_SEGMENT_STEPS, tol=float(tolerance), budget=budget,
            refine=lambda: double_forward(ctx), internal_batch_size=internal_batch_size)
        params.update(steps_used=res.evaluations, segments=res.segments,
                      gap=res.delta.tolist(), segment_gaps=res.segment_gaps,
                      float64=res.float64, tolerance=float(tolerance), budget=budget)
        return ctx.reduce(res.attributions), res.delta, params

    @staticmethod
    def _integrate(ctx: Context, inp: torch.Tensor, base: torch.Tensor, n: int,
                   internal_batch_size: int | None):
        """Attributions and |completeness gap| of every sequence with n points (Captum)."""
        if internal_batch_size is None and n * inp.shape[0] > IG_BATCH:
            internal_batch_size = max(inp.shape[0], IG_BATCH)
        ig = _captum().IntegratedGradients(lambda e: ctx.forward(e))
        with torch.backends.cudnn.flags(enabled=False):  # eval-mode backward through cuDNN
            a, delta = ig.attribute(inp, baselines=base, target=ctx.target, n_steps=n,
                                    method="gausslegendre", return_convergence_delta=True,
                                    internal_batch_size=internal_batch_size)
        return a.detach(), delta.detach().abs()
