"""Perturbation methods through Captum: ``shapley_sampling`` and ``kernel_shap``.

Each token (or, for feature inputs, each step-feature pair) is one player; absent players
take the baseline (default: a zero embedding).
"""

from __future__ import annotations

import torch

from . import Context, Method, register_method
from .gradients import _captum, baseline_for


def _feature_mask(ctx: Context, inp: torch.Tensor) -> torch.Tensor:
    B, T, E = inp.shape
    if ctx.tokens_input:  # one player per position
        return torch.arange(T)[None, :, None].expand(B, T, E).contiguous()
    return torch.arange(T * E).view(1, T, E).expand(B, T, E).contiguous()


class _Sampling(Method):
    captum_class = ""

    def explain(self, ctx: Context, samples: int = 25, baseline: str = "zero", seed: int = 0):
        attr = _captum()
        inp = ctx.model_input()
        base = baseline_for(ctx, baseline)
        mask = _feature_mask(ctx, inp)
        torch.manual_seed(seed)
        outs = []
        for b in range(inp.shape[0]):  # one sequence at a time: players differ per length
            L = int(ctx.lengths[b])
            x, bl, m = inp[b:b + 1, :L], base[b:b + 1, :L], mask[b:b + 1, :L]
            lengths = ctx.lengths[b:b + 1]

            def f(e, _L=lengths):
                return ctx.forward(e, _L.expand(e.shape[0]))

            k = int(ctx.target[b])
            if int(m.max()) == 0:  # one player: its Shapley value is f(x) − f(baseline)
                with torch.no_grad():  # (kernel SHAP's regression is undefined for one)
                    gain = f(x)[0, k] - f(bl)[0, k]
                a = torch.full_like(x, float(gain))  # every coordinate is the one player
            else:
                algo = getattr(attr, self.captum_class)(f)
                with torch.no_grad():
                    a = algo.attribute(x, baselines=bl, target=k, feature_mask=m,
                                       n_samples=samples, perturbations_per_eval=64)
            full = torch.zeros_like(inp[b:b + 1])
            full[:, :L] = a
            outs.append(full)
        a = torch.cat(outs)
        # every embedding dimension of a token carries the token's value: keep one
        scores = a[..., 0] if ctx.tokens_input else a
        return scores.detach(), None, {"samples": samples, "baseline": baseline, "seed": seed}


@register_method("shapley_sampling")
class ShapleySampling(_Sampling):
    """Shapley values estimated from ``samples`` random player orders (Captum)."""

    captum_class = "ShapleyValueSampling"


@register_method("kernel_shap")
class KernelShap(_Sampling):
    """Kernel SHAP: a weighted linear fit over ``samples`` random coalitions (Captum)."""

    captum_class = "KernelShap"
