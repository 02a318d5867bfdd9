"""Faithfulness measures against plain hand-computed references on toy models whose output is
a known function of which tokens are present; bootstrap intervals; planted ground truth."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.stats import bootstrap
from torch import nn

from lstmlens.errors import InputError
from lstmlens.faithfulness import BINS, Masker, faithfulness
from lstmlens.ground_truth import planted_mask, planted_scores
from lstmlens.intervals import bootstrap_mean


class ToyParts:
    """logit₁ − logit₀ = Σ_t w(token_t) ("sum") or the mean over present steps ("mean");
    each token's 1-d embedding is its weight w, PAD (id 0) has w = 0."""

    def __init__(self, weights: list[float], pool: str = "sum"):
        self.embedding = nn.Embedding(len(weights), 1, padding_idx=0)
        with torch.no_grad():
            self.embedding.weight[:, 0] = torch.tensor(weights)
        self.pool = pool

    def logits_from_embedded(self, e: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        mask = torch.arange(e.shape[1])[None, :] < lengths[:, None]  # (B, T)
        s = (e[..., 0] * mask).sum(1)  # (B,)
        if self.pool == "mean":
            s = s / lengths
        return torch.stack([torch.zeros_like(s), s], -1)  # (B, 2)


WEIGHTS = [0.0, -0.3, 2.0, -1.5, 0.7, 0.1, -0.2, 1.2, 0.4, -0.8, 0.05]  # id 1 plays <unk>
SENTENCES = [[2, 3, 4, 5, 6, 7, 8, 9, 10, 2, 5, 6], [4, 9, 2], [7, 3, 10, 6, 8]]


def _sigmoid(v: float) -> float:
    return 1 / (1 + math.exp(-v))


def _reference(sentences, scores, masking: str, pool: str, unk_weight: float):
    """The four measures, one sentence and one perturbation at a time, from REFERENCES §6."""
    def prob(w_kept: list[float], n_masked: int, L: int) -> float:
        if masking == "remove":
            vals = w_kept if w_kept else [0.0]  # nothing left: one PAD token
        else:
            fill = unk_weight if masking == "unk" else 0.0
            vals = w_kept + [fill] * n_masked
        s = sum(vals)
        return _sigmoid(s / len(vals) if pool == "mean" else s)

    out = {"comprehensiveness_aopc": [], "sufficiency_aopc": [], "deletion_auc": [],
           "insertion_auc": []}
    for ids, sc in zip(sentences, scores, strict=True):
        w = [WEIGHTS[i] for i in ids]
        L = len(w)
        order = sorted(range(L), key=lambda t: (-sc[t], t))  # highest score first
        full = prob(w, 0, L)

        def without(top, w=w, L=L):
            return prob([w[t] for t in range(L) if t not in top], len(top), L)

        def only(top, w=w, L=L):
            return prob([w[t] for t in range(L) if t in top], L - len(top), L)

        comp = suff = 0.0
        for b in BINS:
            k = min(L, max(1, math.floor(b * L + 0.5)))
            top = set(order[:k])
            comp += full - without(top)
            suff += full - only(top)
        out["comprehensiveness_aopc"].append(comp / (len(BINS) + 1))
        out["sufficiency_aopc"].append(suff / (len(BINS) + 1))
        dele, ins = [], []
        for j in range(11):
            top = set(order[: math.floor(j / 10 * L + 0.5)])
            dele.append(without(top))
            ins.append(only(top))
        out["deletion_auc"].append(sum((dele[j] + dele[j + 1]) / 2 * 0.1 for j in range(10)))
        out["insertion_auc"].append(sum((ins[j] + ins[j + 1]) / 2 * 0.1 for j in range(10)))
    return out


def _masker(parts: ToyParts, masking: str, sentences=SENTENCES) -> Masker:
    L = torch.tensor([len(s) for s in sentences])
    x = torch.zeros(len(sentences), int(L.max()), dtype=torch.long)
    for b, s in enumerate(sentences):
        x[b, :len(s)] = torch.tensor(s)
    with torch.no_grad():
        e = parts.embedding(x)  # (B, T, 1)
    return Masker(parts, e, L, torch.ones(len(sentences), dtype=torch.long), masking,
                  unk_id=1, chunk=7)  # a small chunk: the chunking is exercised too


@pytest.mark.parametrize("pool", ["sum", "mean"])
@pytest.mark.parametrize("masking", ["remove", "zero", "pad", "unk"])
def test_measures_match_the_hand_computed_reference(masking: str, pool: str) -> None:
    rng = np.random.default_rng(0)
    scores = [rng.normal(size=len(s)) for s in SENTENCES]
    got = faithfulness(_masker(ToyParts(WEIGHTS, pool), masking), scores)
    want = _reference(SENTENCES, scores, masking, pool, WEIGHTS[1])
    for k, v in want.items():
        np.testing.assert_allclose(got[k], v, atol=1e-6, err_msg=k)


def test_removal_differs_from_zeroing_when_length_matters() -> None:
    scores = [np.arange(len(s), dtype=float) for s in SENTENCES]
    rem = faithfulness(_masker(ToyParts(WEIGHTS, "mean"), "remove"), scores)
    zero = faithfulness(_masker(ToyParts(WEIGHTS, "mean"), "zero"), scores)
    assert not np.allclose(rem["deletion_auc"], zero["deletion_auc"])


def test_the_perfect_ranking_beats_a_random_one() -> None:
    rng = np.random.default_rng(1)
    sentences = [list(rng.integers(2, len(WEIGHTS), size=int(rng.integers(6, 20))))
                 for _ in range(60)]
    parts = ToyParts(WEIGHTS)
    perfect = [np.array([WEIGHTS[i] for i in s]) for s in sentences]  # the true evidence
    noise = [rng.random(len(s)) for s in sentences]
    good = faithfulness(_masker(parts, "remove", sentences), perfect)
    bad = faithfulness(_masker(parts, "remove", sentences), noise)
    assert good["comprehensiveness_aopc"].mean() > bad["comprehensiveness_aopc"].mean() + 0.05
    assert good["sufficiency_aopc"].mean() < bad["sufficiency_aopc"].mean() - 0.05
    assert good["deletion_auc"].mean() < bad["deletion_auc"].mean()
    assert good["insertion_auc"].mean() > bad["insertion_auc"].mean()
    # with a linear model the perfect ranking is optimal for every sentence
    assert (good["comprehensiveness_aopc"] >= bad["comprehensiveness_aopc"] - 1e-9).all()


def test_bad_masking_and_scores_are_refused() -> None:
    parts = ToyParts(WEIGHTS)
    with pytest.raises(InputError, match="masking must be one of"):
        _masker(parts, "blank")
    with pytest.raises(InputError, match="scores for"):
        faithfulness(_masker(parts, "zero"), [np.zeros(2), np.zeros(3), np.zeros(5)])
    with pytest.raises(InputError, match="one score array per sequence"):
        faithfulness(_masker(parts, "zero"), [np.zeros(12)])


# ---------------------------------------------------------------------------- intervals


def test_bootstrap_interval_is_seeded_and_agrees_with_scipy() -> None:
    v = np.random.default_rng(2).exponential(size=200)
    a = bootstrap_mean(v, seed=3)
    assert a == bootstrap_mean(v, seed=3)
    assert a["value"] == pytest.approx(v.mean())
    assert a["ci_low"] < a["value"] < a["ci_high"]
    ref = bootstrap((v,), np.mean, confidence_level=0.95, method="percentile",
                    n_resamples=4000, random_state=0).confidence_interval
    assert a["ci_low"] == pytest.approx(ref.low, abs=0.03)
    assert a["ci_high"] == pytest.approx(ref.high, abs=0.03)
    wide = bootstrap_mean(v[:20], seed=3)
    assert wide["ci_high"] - wide["ci_low"] > a["ci_high"] - a["ci_low"]


def test_bootstrap_drops_undefined_values() -> None:
    r = bootstrap_mean([1.0, np.nan, 3.0])
    assert r["n"] == 2 and r["value"] == 2.0
    assert math.isnan(bootstrap_mean([np.nan])["value"])
    assert bootstrap_mean([5.0])["ci_low"] == 5.0


# ---------------------------------------------------------------------------- ground truth


def test_planted_precision_and_rank_by_magnitude() -> None:
    masks = [planted_mask("the superb film was awful".split(), {"superb", "awful"}),
             planted_mask("a b c d".split(), {"superb"})]
    scores = [np.array([0.1, 3.0, 0.2, 0.0, -2.0]),  # both planted on top by |score|
              np.array([1.0, 2.0, 3.0, 4.0])]  # no planted token: left out
    r = planted_scores(scores, masks)
    assert r["precision"][0] == 1.0 and r["mean_rank"][0] == 1.5
    assert math.isnan(r["precision"][1])
    assert r["chance_precision"][0] == pytest.approx(2 / 5)
    assert r["chance_mean_rank"][0] == 3.0
    # |score| order: the, superb, awful, film, was — top 2 holds one planted word
    worse = planted_scores([np.array([5.0, 1.0, 0.2, 0.0, -0.5])], masks[:1])
    assert worse["precision"][0] == 0.5
    assert worse["mean_rank"][0] == pytest.approx((2 + 3) / 2)
