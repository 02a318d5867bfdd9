"""Tests for lstmlens.ngram: interpolated Kneser–Ney against hand values and a slow reference."""

from __future__ import annotations

import bisect
import math
import time
from collections import Counter
from functools import lru_cache

import numpy as np
import pytest

from lstmlens.errors import InputError
from lstmlens.ngram import KneserNeyLM


def _markov_text(n: int, V: int, seed: int) -> np.ndarray:
    """A random text with structure: each symbol depends on the previous two."""
    rng = np.random.default_rng(seed)
    cdf = rng.dirichlet(np.full(V, 0.3), size=(V, V)).cumsum(-1).tolist()  # (V, V, V)
    u = rng.random(n).tolist()
    out = [0, 1]
    for i in range(2, n):
        out.append(min(bisect.bisect(cdf[out[-2]][out[-1]], u[i]), V - 1))
    return np.array(out)


# ----------------------------------------------------------------- a slow reference


class ReferenceKN:
    """Interpolated Kneser–Ney straight from Chen & Goodman's equations, with dicts."""

    def __init__(self, text: list[int], order: int, V: int, discount: str | float):
        self.order, self.V = order, V
        self.tables: dict[int, Counter] = {}
        for k in range(1, order + 1):
            grams = [tuple(text[i:i + k]) for i in range(len(text) - k + 1)]
            if k == order:
                self.tables[k] = Counter(grams)  # raw counts
            else:  # continuation: distinct symbols before each k-gram
                longer = {tuple(text[i:i + k + 1]) for i in range(len(text) - k)}
                self.tables[k] = Counter(g[1:] for g in longer)
        self.D = {k: self._discounts(self.tables[k], discount) for k in self.tables}

    @staticmethod
    def _discounts(counts: Counter, discount: str | float) -> tuple[float, float, float]:
        if discount != "modified":
            return (discount,) * 3
        n = Counter(counts.values())
        # the documented fallbacks when a count of counts is zero: Y = 1/2, D_r = D_{r−1}
        y = n[1] / (n[1] + 2 * n[2]) if n[1] + 2 * n[2] else 0.5
        d = [1 - 2 * y * n[2] / n[1] if n[1] else y]
        d.append(2 - 3 * y * n[3] / n[2] if n[2] else d[0])
        d.append(3 - 4 * y * n[4] / n[3] if n[3] else d[1])
        return tuple(min(max(v, 1e-3), r + 1) for r, v in enumerate(d))

    def prob(self, k: int, h: tuple[int, ...], w: int) -> float:
        if k == 0:
            return 1 / self.V
        followers = {g[-1]: c for g, c in self.tables[k].items() if g[:-1] == h}
        total = sum(followers.values())
        if total == 0:
            return self.prob(k - 1, h[1:], w)

        def d(c: int) -> float:
            return 0.0 if c == 0 else self.D[k][min(c, 3) - 1]

        gamma = sum(d(c) for c in followers.values()) / total
        c = followers.get(w, 0)
        return max(c - d(c), 0) / total + gamma * self.prob(k - 1, h[1:], w)

    def p(self, history: list[int], w: int) -> float:
        h = tuple(history[-(self.order - 1):]) if self.order > 1 else ()
        return self.prob(len(h) + 1, h, w)


# ----------------------------------------------------------------- hand-computed values


def test_hand_computed_bigram_values():
    # text a b c a b (a=0, b=1, c=2), one unseen symbol d=3, order 2, fixed D = 0.5.
    # bigram counts ab:2 bc:1 ca:1; continuation counts of a, b, c: 1 each (total 3).
    # P1(a|b|c) = (1 − .5)/3 + (.5·3/3)·1/4 = 7/24,   P1(d) = 1/8
    # γ(a) = .5·1/2 = 1/4:  P(b|a) = 1.5/2 + 7/96 = 79/96,  P(a|a) = 7/96,  P(d|a) = 1/32
    # γ(b) = .5:            P(c|b) = .5 + .5·7/24 = 31/48
    lm = KneserNeyLM(order=2, discount=0.5).fit([0, 1, 2, 0, 1], vocab_size=4)
    np.testing.assert_allclose(lm.distribution([0]), [7 / 96, 79 / 96, 7 / 96, 1 / 32],
                               rtol=1e-12)
    np.testing.assert_allclose(lm.distribution([1])[2], 31 / 48, rtol=1e-12)
    np.testing.assert_allclose(lm.distribution([3]), [7 / 24, 7 / 24, 7 / 24, 1 / 8],
                               rtol=1e-12)  # context d never seen: the unigram level
    np.testing.assert_allclose(lm.distribution([]), [7 / 24, 7 / 24, 7 / 24, 1 / 8],
                               rtol=1e-12)
    want = -(math.log2(79 / 96) + math.log2(31 / 48)) / 2
    assert lm.bits_per_char([0, 1, 2]) == pytest.approx(want, rel=1e-12)


def test_modified_discounts_follow_counts_of_counts():
    text = _markov_text(3000, 6, seed=1)
    lm = KneserNeyLM(order=3).fit(text, vocab_size=6)
    ref = ReferenceKN(text.tolist(), 3, 6, "modified")
    for k in (1, 2, 3):
        np.testing.assert_allclose(lm.discounts_[k - 1], ref.D[k], rtol=1e-12)
    assert np.all(lm.discounts_ > 0) and np.all(lm.discounts_ <= [1, 2, 3])


# ----------------------------------------------------------------- against the reference


@pytest.mark.parametrize("discount", ["modified", 0.75])
@pytest.mark.parametrize("order", [1, 3, 5])
def test_matches_slow_reference(order, discount):
    V = 7
    text = _markov_text(2500, V - 1, seed=order)  # symbol V−1 never occurs
    lm = KneserNeyLM(order=order, discount=discount).fit(text, vocab_size=V)
    ref = ReferenceKN(text.tolist(), order, V, discount)
    cached = lru_cache(maxsize=None)(lambda h, w: ref.p(list(h), w))
    rng = np.random.default_rng(0)
    probe = np.concatenate([text[:40], rng.integers(0, V, 60)])  # seen and novel contexts
    got = 2.0 ** lm.log2_probs(probe)
    want = [cached(tuple(probe[max(0, t - order + 1):t]), int(probe[t]))
            for t in range(1, len(probe))]
    np.testing.assert_allclose(got, want, rtol=1e-10)


# ----------------------------------------------------------------- properties


def test_distributions_sum_to_one_for_random_contexts():
    V = 40
    text = _markov_text(20000, 30, seed=2)
    lm = KneserNeyLM(order=5).fit(text, vocab_size=V)
    rng = np.random.default_rng(3)
    for n_ctx in (0, 1, 2, 4, 4, 4, 6):
        for _ in range(10):
            if rng.random() < 0.5 and n_ctx:  # a context that occurs in the text
                t = int(rng.integers(n_ctx, len(text)))
                ctx = text[t - n_ctx:t]
            else:
                ctx = rng.integers(0, V, n_ctx)
            p = lm.distribution(ctx)
            assert p.shape == (V,) and np.all(p > 0)
            assert abs(p.sum() - 1.0) < 1e-9


def test_unseen_context_backs_off_to_shorter_one():
    text = _markov_text(5000, 5, seed=4)
    lm = KneserNeyLM(order=5).fit(text, vocab_size=8)
    unseen = [7, 6, 7, 6]  # symbols 5..7 never occur, so no context holding them was seen
    np.testing.assert_array_equal(lm.distribution(unseen), lm.distribution([]))
    seen3 = text[100:103].tolist()
    np.testing.assert_allclose(lm.distribution([7, *seen3]), lm.distribution(seen3),
                               rtol=1e-14)
    # the full seen context sharpens the prediction of what actually followed it
    ctx, nxt = text[200:204].tolist(), int(text[204])
    assert lm.distribution(ctx)[nxt] > lm.distribution([])[nxt]


def test_higher_order_helps_on_structured_text_and_scoring_is_fast():
    text = _markov_text(60000, 20, seed=5)
    train, held = text[:50000], text[50000:]
    bpc = {n: KneserNeyLM(order=n).fit(train, vocab_size=20).bits_per_char(held)
           for n in (1, 3)}
    assert bpc[3] < bpc[1] - 0.3 and bpc[1] < math.log2(20)
    big = np.tile(text, 4)[:200_000]
    lm = KneserNeyLM(order=5).fit(big, vocab_size=20)
    start = time.perf_counter()
    lp = lm.log2_probs(big)
    assert time.perf_counter() - start < 15.0  # ≈ 1 s on an idle 2-core machine
    assert lp.shape == (len(big) - 1,) and np.all(np.isfinite(lp)) and np.all(lp <= 0)


def test_block_scoring_equals_one_pass():
    text = _markov_text(3000, 6, seed=6)
    lm = KneserNeyLM(order=4).fit(text, vocab_size=6)
    np.testing.assert_array_equal(lm.log2_probs(text, block=97), lm.log2_probs(text))


# ----------------------------------------------------------------- errors


@pytest.mark.parametrize("kwargs", [{"order": 0}, {"order": 2.5}, {"discount": 1.5},
                                    {"discount": 0}, {"discount": "absolute"}])
def test_bad_settings_are_refused(kwargs):
    with pytest.raises(InputError):
        KneserNeyLM(**kwargs)


def test_bad_fit_and_query_inputs_are_refused():
    with pytest.raises(InputError, match="not fitted"):
        KneserNeyLM().bits_per_char([1, 2, 3])
    with pytest.raises(InputError, match="at least 2"):
        KneserNeyLM().fit([3])
    with pytest.raises(InputError, match="integer ids"):
        KneserNeyLM().fit([0.5, 1.5])
    with pytest.raises(InputError, match="vocab_size"):
        KneserNeyLM().fit([0, 5, 2], vocab_size=3)
    with pytest.raises(InputError, match="too large"):
        KneserNeyLM(order=12).fit([0, 1, 2], vocab_size=100_000)
    lm = KneserNeyLM(order=3).fit([0, 1, 2, 0, 1, 2], vocab_size=3)
    with pytest.raises(InputError, match="targets"):
        lm.log2_probs([0, 1, 5])
    with pytest.raises(InputError, match="at least 2"):
        lm.bits_per_char([1])
