"""Is attention explanation? The tests of Jain & Wallace and Wiegreffe & Pinter (REFERENCES §5).

For an attention-pooled classifier (logits = W · Σ_t α_t h_t + b), per sentence:

- Kendall τ between α and gradient importance (τ_g; ‖∂ logit_ŷ / ∂ e_t‖, the ``saliency``
  method) and leave-one-out importance (τ_loo; |p(ŷ | x) − p(ŷ | x without token t)|, which
  is the total variation distance of the output for two classes);
- the median, over random permutations of α among the valid steps, of the total variation
  distance TVD(p, p') = ½ Σ_c |p_c − p'_c| of the output (hidden states kept as they are);
- a uniform-attention baseline: α_t = 1/L, its TVD from the output and its accuracy;
- the standard deviation of α across models trained with different seeds (given variants).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from scipy.stats import kendalltau
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from .faithfulness import Masker
from .parts import parts_of


def top_states(parts: Any, e: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """``(B, T, H·D)`` outputs of the top LSTM from first-LSTM inputs ``e`` (B, T, E)."""
    T = e.shape[1]
    h = e
    with torch.no_grad():
        for lstm in parts.lstms:
            packed = pack_padded_sequence(h, lengths.cpu(), batch_first=True,
                                          enforce_sorted=False)
            h = pad_packed_sequence(lstm(packed)[0], batch_first=True, total_length=T)[0]
    return h


def _tvd(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    return 0.5 * (p - q).abs().sum(-1)


def has_attention(model: Any) -> bool:
    return not isinstance(parts_of(model).pooling, str)


def attention_weights(model: Any, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """``(B, T)`` attention weights of ``model`` on token ids ``x``."""
    parts = parts_of(model)
    with torch.no_grad():
        h = top_states(parts, parts.embed(x).float(), lengths)
        mask = torch.arange(x.shape[1])[None, :] < lengths[:, None]
        return parts.pooling(h, mask)[1]


def _kendall(a: np.ndarray, b: np.ndarray) -> float:
    if len(a) < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(kendalltau(a, b).statistic)


def attention_report(model: Any, sample: Any, target: np.ndarray,
                     scores: dict[str, list[np.ndarray]], *, ci: Callable,
                     permutations: int = 100, seed: int = 0, variants: Any = None,
                     batch_size: int = 64) -> dict[str, Any]:
    """The attention tests on every sentence of ``sample``; for a model without attention
    only ``{"skipped": reason}``."""
    from .evaluation import _batches, _padded, explain_sample
    if not has_attention(model):
        return {"skipped": "the model has no attention (its pooling is the last state)"}
    parts = parts_of(model)
    n = len(sample)
    grad = scores.get("saliency") or explain_sample(model, sample, "saliency", target,
                                                    batch_size)
    per = {k: np.full(n, np.nan) for k in ("tau_gradient", "tau_loo", "tvd_permuted",
                                           "tvd_uniform", "max_attention", "uniform_correct",
                                           "correct", "attention_std_across_seeds")}
    tau_methods = {m: np.full(n, np.nan) for m in scores if m != "attention"}
    gen = torch.Generator().manual_seed(seed)
    others = list(getattr(variants, "seeds", None) or [])
    for rows in _batches(sample, batch_size):
        x, L = _padded(sample, rows)
        B, T = x.shape
        tgt = torch.as_tensor(target[rows])
        with torch.no_grad():
            e = parts.embed(x).float()  # (B, T, E)
            h = top_states(parts, e, L)  # (B, T, H)
            mask = torch.arange(T)[None, :] < L[:, None]  # (B, T)
            pooled, alpha = parts.pooling(h, mask)  # (B, H), (B, T)
            p = torch.softmax(parts.head(pooled), -1)  # (B, C)
            # permutations of α among the valid steps: sort random keys, padding last
            keys = torch.rand(B, permutations, T, generator=gen)
            keys = keys.masked_fill(~mask[:, None, :], 2.0)
            idx = keys.argsort(-1)  # (B, P, T)
            a_perm = alpha[:, None, :].expand(-1, permutations, -1).gather(2, idx)
            p_perm = torch.softmax(parts.head(torch.einsum("bpt,bth->bph", a_perm, h)), -1)
            tvd_perm = _tvd(p_perm, p[:, None, :]).median(1).values  # (B,)
            uni = mask.float() / L[:, None].float()  # (B, T)
            p_uni = torch.softmax(parts.head(torch.einsum("bt,bth->bh", uni, h)), -1)
            alphas = [alpha] + [attention_weights(v, x, L) for v in others]
        # leave-one-out: every valid token removed in turn
        loo_rows, loo_keep = [], []
        for j in range(B):
            for t in range(int(L[j])):
                k = np.ones(T, bool)
                k[t] = False
                loo_rows.append(j)
                loo_keep.append(k)
        masker = Masker(parts, e, L, tgt, "remove")
        p_loo = masker.probabilities(np.asarray(loo_rows), np.stack(loo_keep))
        pos = 0
        for j, r in enumerate(rows):
            Lj = int(L[j])
            a = alpha[j, :Lj].numpy()
            loo = np.abs(float(p[j, tgt[j]]) - p_loo[pos:pos + Lj])
            pos += Lj
            per["tau_gradient"][r] = _kendall(a, np.abs(grad[r]))
            per["tau_loo"][r] = _kendall(a, loo)
            per["tvd_permuted"][r] = float(tvd_perm[j])
            per["tvd_uniform"][r] = float(_tvd(p_uni[j], p[j]))
            per["max_attention"][r] = float(a.max())
            if sample.labels is not None:
                per["correct"][r] = float(int(p[j].argmax()) == sample.labels[r])
                per["uniform_correct"][r] = float(int(p_uni[j].argmax()) == sample.labels[r])
            if others:
                stack = torch.stack([al[j, :Lj] for al in alphas]).numpy()  # (M, L)
                per["attention_std_across_seeds"][r] = float(stack.std(0).mean())
            for m in tau_methods:
                tau_methods[m][r] = _kendall(a, np.abs(scores[m][r]))
    out: dict[str, Any] = {k: ci(v) for k, v in per.items()
                           if k not in ("correct", "uniform_correct",
                                        "attention_std_across_seeds")}
    out["permutations"] = permutations
    if sample.labels is not None:
        out["accuracy"] = ci(per["correct"])
        out["accuracy_uniform_attention"] = ci(per["uniform_correct"])
    out["attention_std_across_seeds"] = (ci(per["attention_std_across_seeds"]) if others
                                         else None)
    out["seed_models"] = len(others) + 1 if others else None
    out["tau_with_methods"] = {m: ci(v) for m, v in tau_methods.items()}
    return out
