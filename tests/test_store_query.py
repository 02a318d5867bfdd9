"""Queries over a corpus store, each against a plain, slow reference over the stored values."""

import numpy as np
import pytest
import torch

from lstmlens.errors import InputError
from lstmlens.modeldir import save
from lstmlens.models.language_model import CharLanguageModel, LanguageModelConfig
from lstmlens.store_index import index_corpus
from lstmlens.store_query import unit_values
from lstmlens.tokenizers import Tokenizer

pytest.importorskip("zarr")


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("q")
    rng = np.random.default_rng(1)
    lines = ["".join(rng.choice(list("ab(c)d "), rng.integers(2, 30))).strip() or "a"
             for _ in range(200)]
    (root / "c.txt").write_text("\n".join(lines) + "\n")
    torch.manual_seed(3)
    tok = Tokenizer("char").fit(lines)
    lm = CharLanguageModel(LanguageModelConfig(vocab_size=len(tok), embedding_dim=5,
                                               hidden_sizes=[12]))
    save(lm, root / "lm", tokenizer=tok)
    return index_corpus(root / "lm", root / "c.txt", root / "s.zarr", chunk_tokens=128)


KEY = "lstms.0.layers.0.forward.hidden"


def _slow_runs(store, key, units, thr, need):
    """Maximal runs of steps, inside one document, where ≥ need of the units exceed thr."""
    v = np.asarray(store[key][:], np.float32)
    runs = []
    for d in range(store.n_docs):
        s, e = int(store.doc_starts[d]), int(store.doc_starts[d + 1])
        t = s
        while t < e:
            if sum(v[t, u] > thr for u in units) >= need:
                a = t
                while t < e and sum(v[t, u] > thr for u in units) >= need:
                    t += 1
                frac = np.mean([[v[i, u] > thr for u in units] for i in range(a, t)])
                runs.append((a, t, d, frac))
            else:
                t += 1
    return runs


def test_match_equals_slow_reference(store):
    for units, thr, need in (([1, 4], 0.0, None), ([0, 2, 5, 7], 0.05, 2), ([3], -0.1, None)):
        m = store.match(KEY, units, thr, min_units=need, top=None, length=3)
        ref = _slow_runs(store, KEY, units, thr, need or len(units))
        assert m.total == len(ref) == len(m) and len(ref) > 5
        got = {(int(a), int(b)): (int(d), float(s))
               for a, b, d, s in zip(m.start, m.end, m.document, m.score, strict=True)}
        assert got == {(a, b): (d, pytest.approx(f)) for a, b, d, f in ref}
        # ranked by score, then closeness to the query length, then position
        keys = [(-s, abs((b - a) - 3), a) for a, b, s in zip(m.start, m.end, m.score,
                                                              strict=True)]
        assert keys == sorted(keys)
    m = store.match(KEY, [1, 4], 0.0, min_length=2, max_length=4, top=5)
    assert len(m) <= 5 and all(2 <= b - a <= 4 for a, b in zip(m.start, m.end, strict=True))
    items = m.to_list(store)
    assert items[0]["tokens"] == store.token_strings(
        np.asarray(store["tokens"][items[0]["start"]:items[0]["end"]]))


def test_select_then_match_finds_the_span(store):
    v = np.asarray(store[KEY][:], np.float32)
    found = 0
    for d in range(0, store.n_docs, 40):
        a = int(store.doc_starts[d]) + 1
        b = a + 3
        if b > store.doc_starts[d + 1]:
            continue
        sel = store.select(KEY, a, b, 0.0)
        assert sel.tolist() == [u for u in range(v.shape[1]) if (v[a:b, u] > 0).all()]
        if len(sel):
            m = store.match(KEY, sel, 0.0, top=None)
            assert any(s <= a and b <= e for s, e in zip(m.start, m.end, strict=True))
            found += 1
    assert found >= 2


def test_top_contexts_and_unit_index(store):
    v = np.asarray(store[KEY][:], np.float32)
    assert store.by_unit(KEY) is not None  # the unit-major index of hidden states
    assert store.by_unit("lstms.0.layers.0.forward.forget_gate") is None
    np.testing.assert_array_equal(np.asarray(store.by_unit(KEY)[:], np.float32), v.T)
    np.testing.assert_array_equal(unit_values(store, KEY, [2, 9]), v[:, [2, 9]].T)
    # a series without a unit-major index reads the token-major array the same way
    g = "lstms.0.layers.0.forward.forget_gate"
    np.testing.assert_array_equal(unit_values(store, g, [5]),
                                  np.asarray(store[g][:], np.float32)[:, [5]].T)
    top = store.top_contexts(KEY, unit=6, k=4, window=2)
    order = sorted(range(len(v)), key=lambda t: (-v[t, 6], t))[:4]
    assert [c["step"] for c in top] == order
    for c in top:
        d = c["document"]
        s, e = int(store.doc_starts[d]), int(store.doc_starts[d + 1])
        lo = max(s, c["step"] - 2)
        assert c["tokens"] == store.token_strings(
            np.asarray(store["tokens"][lo:min(e, c["step"] + 3)]))
        assert c["tokens"][c["at"]] == store.token_strings([store["tokens"][c["step"]]])[0]


def test_saturation_equals_direct_count(store):
    for name in ("input_gate", "forget_gate", "output_gate"):
        key = f"lstms.0.layers.0.forward.{name}"
        v = np.asarray(store[key][:], np.float32)
        sat = store.saturation(key)
        np.testing.assert_allclose(sat.left, (v < 0.1).mean(0))
        np.testing.assert_allclose(sat.right, (v > 0.9).mean(0))
        other = store.saturation(key, low=0.3, high=0.6)  # not precomputed: a scan
        np.testing.assert_allclose(other.right, (v > 0.6).mean(0))
        assert sat.steps == store.n_tokens


def test_query_errors(store):
    with pytest.raises(InputError, match="units must lie in 0..11"):
        store.match(KEY, [12], 0.0)
    with pytest.raises(InputError, match="no series"):
        store.match("lstms.0.layers.0.forward.hiden", [1], 0.0)
    with pytest.raises(InputError, match="min_units"):
        store.match(KEY, [1, 2], 0.0, min_units=3)
    with pytest.raises(InputError, match="span"):
        store.select(KEY, 10, 10)
    with pytest.raises(KeyError, match="did you mean"):
        store["lstms.0.layers.0.forward.cel"]


def test_saturation_counts_of_float16_equal_float32_comparisons():
    """The recorded counts compare float16 bit patterns; every float16 value (but NaN) and
    every block size gives the float32 comparison's count."""
    from lstmlens.store_chunk import SAT_HIGH, SAT_LOW, saturation_counts
    every = np.arange(2**16, dtype=np.uint16).view(np.float16)
    every = every[~np.isnan(every)]
    rng = np.random.default_rng(0)
    for n in (1, 254, 255, 256, 3000, len(every)):
        v = every[:n, None] if n == len(every) else rng.choice(every, (n, 3))
        v32 = v.astype(np.float32)
        want = np.stack([(v32 < np.float32(SAT_LOW)).sum(0), (v32 > np.float32(SAT_HIGH)).sum(0)])
        np.testing.assert_array_equal(saturation_counts(v), want)
        np.testing.assert_array_equal(saturation_counts(v32), want)
