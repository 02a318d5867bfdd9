"""Perturbation methods: ``shapley_sampling`` (own, batched) and ``kernel_shap`` (Captum).

Each token (or, for feature inputs, each step-feature pair) is one player; absent players
take the baseline (default: a zero embedding).

Shapley value sampling draws ``samples`` random player orders per sequence and credits each
player with the change of the target logit when it joins the players before it. Captum's
``ShapleyValueSampling`` runs one forward pass per order; here every coalition of every order
of every sequence of one length is stepped through the model in a few large batches, with
the orders drawn in Captum's sequence (``torch.randperm`` per sequence and sample from a
generator seeded with ``seed``), so the values are Captum's.
"""

from __future__ import annotations

import torch

from ..errors import InputError
from . import Context, Method, register_method
from .gradients import _captum, baseline_for

# at most this many input floats in one batch of coalitions
COALITION_CHUNK_ELEMENTS = 1 << 23


def _feature_mask(ctx: Context, inp: torch.Tensor) -> torch.Tensor:
    B, T, E = inp.shape
    if ctx.tokens_input:  # one player per position
        return torch.arange(T)[None, :, None].expand(B, T, E).contiguous()
    return torch.arange(T * E).view(1, T, E).expand(B, T, E).contiguous()


def _n_players(ctx: Context, L: int, E: int) -> int:
    return L if ctx.tokens_input else L * E


def _shapley_same_length(ctx: Context, x: torch.Tensor, base: torch.Tensor,
                         target: torch.Tensor, orders: torch.Tensor
                         ) -> tuple[torch.Tensor, torch.Tensor]:
    """Sampled Shapley values of sequences of one length ``L``, and f(x) − f(baseline).

    x, base: (G, L, E); target: (G,); orders: (G, S, n) player orders → (G, L, E), (G,).
    """
    G, L, E = x.shape
    S, n = orders.shape[1], orders.shape[2]
    rank = torch.empty_like(orders)  # rank[g, s, p]: where player p joins in order s
    rank.scatter_(2, orders, torch.arange(n).expand(G, S, n).contiguous())
    lengths = torch.full((1,), L, dtype=torch.long)

    def value(e: torch.Tensor, g: torch.Tensor) -> torch.Tensor:  # (N, L, E), (N,) → (N,)
        with torch.no_grad():
            out = ctx.forward(e, lengths.expand(e.shape[0]))  # (N, C)
        return out.gather(1, target[g][:, None])[:, 0].double()

    v = torch.empty(G, S, n + 1, dtype=torch.float64)  # value after k players joined
    v[:, :, 0] = value(base, torch.arange(G))[:, None]
    v[:, :, n] = value(x, torch.arange(G))[:, None]
    if n > 1:
        # coalitions (g, s, k): the first k players of order s, k = 1 .. n − 1
        g_all = torch.arange(G).repeat_interleave(S * (n - 1))
        s_all = torch.arange(S).repeat_interleave(n - 1).repeat(G)
        k_all = torch.arange(1, n).repeat(G * S)
        per = max(1, COALITION_CHUNK_ELEMENTS // (L * E))
        flat = torch.empty(g_all.shape[0], dtype=torch.float64)
        for a in range(0, g_all.shape[0], per):
            g, s, k = g_all[a:a + per], s_all[a:a + per], k_all[a:a + per]
            present = rank[g, s] < k[:, None]  # (N, n)
            present = present[:, :, None] if ctx.tokens_input else present.view(-1, L, E)
            flat[a:a + per] = value(torch.where(present, x[g], base[g]), g)
        v[:, :, 1:n] = flat.view(G, S, n - 1)
    gain = v[:, :, 1:] - v[:, :, :-1]  # (G, S, n): the j-th player to join in order s
    total = torch.zeros(G, n, dtype=torch.float64)
    total.scatter_add_(1, orders.reshape(G, S * n), gain.reshape(G, S * n))
    values = (total / S).float()  # (G, n)
    gain_all = v[:, 0, n] - v[:, 0, 0]  # (G,) what every order's contributions add up to
    return (values[:, :, None].expand(G, L, E) if ctx.tokens_input
            else values.view(G, L, E)), gain_all


def shapley_sampling(ctx: Context, inp: torch.Tensor, base: torch.Tensor, samples: int,
                     seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, T, E) sampled Shapley values of every player (zero past each sequence's end) and
    (B,) f(x) − f(baseline) of the target, in float64."""
    B, T, E = inp.shape
    gen = torch.Generator().manual_seed(seed)
    lengths = [int(v) for v in ctx.lengths]
    # Captum's draw order: one permutation per sample and sequence (none for one player)
    orders = [torch.stack([torch.randperm(n, generator=gen) for _ in range(samples)])
              if n > 1 else torch.zeros(samples, 1, dtype=torch.long)
              for n in (_n_players(ctx, L, E) for L in lengths)]
    out = torch.zeros_like(inp)
    gain = torch.zeros(B, dtype=torch.float64)
    for L in sorted(set(lengths)):
        idx = [b for b in range(B) if lengths[b] == L]
        vals, gain[idx] = _shapley_same_length(ctx, inp[idx, :L], base[idx, :L],
                                               ctx.target[idx],
                                               torch.stack([orders[b] for b in idx]))
        out[idx, :L] = vals
    return out, gain


def _check_samples(samples: int) -> None:
    if not isinstance(samples, int) or isinstance(samples, bool) or samples < 1:
        raise InputError(f"samples must be a positive integer, got {samples!r}")


class _Sampling(Method):
    captum_class = ""

    def explain(self, ctx: Context, samples: int = 25, baseline: str = "zero", seed: int = 0):
        _check_samples(samples)
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
class ShapleySampling(Method):
    """Shapley values estimated from ``samples`` random player orders (Captum's values,
    computed in large batches). ``delta``: |Σ scores − (f(x) − f(baseline))|, the
    efficiency law every order satisfies (so only rounding)."""

    def explain(self, ctx: Context, samples: int = 25, baseline: str = "zero", seed: int = 0):
        _check_samples(samples)
        inp = ctx.model_input()  # (B, T, E)
        a, gain = shapley_sampling(ctx, inp, baseline_for(ctx, baseline), samples, seed)
        scores = a[..., 0] if ctx.tokens_input else a  # a token's value is on every dim
        total = scores.double().sum(dim=tuple(range(1, scores.dim())))  # (B,)
        return scores.detach(), (total - gain).abs().float(), {
            "samples": samples, "baseline": baseline, "seed": seed}


@register_method("kernel_shap")
class KernelShap(_Sampling):
    """Kernel SHAP: a weighted linear fit over ``samples`` random coalitions (Captum)."""

    captum_class = "KernelShap"
