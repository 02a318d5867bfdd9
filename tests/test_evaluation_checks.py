"""Sanity checks, attention tests and stability on a tiny attention classifier whose answers
are known: randomising a layer changes exactly that layer; attention ignores the head;
uniform attention cannot be permuted; identical models agree perfectly."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import lstmlens
from lstmlens.attention_tests import attention_report, top_states
from lstmlens.errors import ModelError
from lstmlens.evaluation import load_sample
from lstmlens.intervals import bootstrap_mean
from lstmlens.models import ClassifierConfig, LSTMClassifier
from lstmlens.sanity import layers_top_down, randomised
from lstmlens.stability import Variants, rank_agreement, train_variants
from lstmlens.textdata import TextData, fit_tokenizer

WORDS = "the a film story good bad great awful plot actor scene was is very not".split()


def _texts(n: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, size=int(rng.integers(4, 12)))) for _ in range(n)]


@pytest.fixture(scope="module")
def model() -> LSTMClassifier:
    tok = fit_tokenizer(_texts(50, 0))
    torch.manual_seed(0)
    m = LSTMClassifier(ClassifierConfig(num_classes=2, vocab_size=len(tok), embedding_dim=8,
                                        hidden_sizes=[6, 5], bidirectional=True,
                                        pooling="attention")).eval()
    m.tokenizer, m.meta = tok, {"task": "toy", "max_length": None}
    return m


def _ci(v, s=0):
    return bootstrap_mean(v, resamples=300, seed=s)


def _params(m) -> dict[str, dict[str, torch.Tensor]]:
    return {n: {k: p.detach().clone() for k, p in mod.named_parameters()}
            for n, mod in layers_top_down(m)}


def test_randomisation_changes_exactly_the_named_layers(model) -> None:
    names = [n for n, _ in layers_top_down(model)]
    assert names == ["head", "attention", "lstms.1", "lstms.0", "embedding"]
    before = _params(model)
    for k in range(len(names)):  # cascading: the top k + 1 layers
        after = _params(randomised(model, names[: k + 1], seed=k))
        for i, n in enumerate(names):
            changed = [not torch.equal(after[n][p], before[n][p]) for p in before[n]]
            assert all(changed) if i <= k else not any(changed), (k, n)
    for n in names:  # independent: one layer at a time
        after = _params(randomised(model, [n]))
        assert [x for x in names if any(not torch.equal(after[x][p], before[x][p])
                                        for p in before[x])] == [n]
    # the model itself is untouched
    assert all(torch.equal(_params(model)[n][p], before[n][p]) for n in names
               for p in before[n])
    with pytest.raises(ModelError, match="unknown layer"):
        randomised(model, ["decoder"])


def test_sanity_report_knows_attention_ignores_the_head(model) -> None:
    texts = _texts(30, 1)
    ev = lstmlens.evaluate(model, texts, methods=["lrp", "attention"], n=30,
                           checks=("sanity",), variants=Variants(), resamples=300)
    s = ev.sanity
    assert s["layers"] == ["head", "attention", "lstms.1", "lstms.0", "embedding"]
    att, lrp, rnd = (s["methods"][m] for m in ("attention", "lrp", "random"))
    head_only = {tuple(r["layers"]): r for r in att["independent"]}[("head",)]
    assert head_only["spearman"]["value"] == pytest.approx(1.0)  # α does not read the head
    lrp_head = {tuple(r["layers"]): r for r in lrp["independent"]}[("head",)]
    assert lrp_head["spearman"]["value"] < 0.99
    assert len(att["cascading"]) == 5 and att["permuted_labels"] is None
    assert rnd["passed"] and abs(rnd["spearman"]["value"]) < 0.3
    assert ev.methods["lrp"]["sanity_spearman"] == lrp["spearman"]
    assert isinstance(lrp["passed"], bool) and lrp["verdict"].split(":")[0] in ("passes",
                                                                                 "fails")


def test_attention_tests_against_a_direct_computation(model) -> None:
    texts = _texts(12, 2)
    sample = load_sample(model, texts, n=None)
    parts = model.explainable_parts()
    target = np.zeros(len(sample), dtype=np.int64)
    r = attention_report(model, sample, target, {}, ci=_ci, permutations=20)
    for k in ("tau_gradient", "tau_loo"):
        assert -1 <= r[k]["value"] <= 1 and r[k]["n"] == 12
    # uniform attention's output change, one sentence at a time, straight from the model
    tvd = []
    for ids in sample.ids:
        x = torch.tensor(ids)[None]
        with torch.no_grad():
            h = top_states(parts, model.embed(x), torch.tensor([len(ids)]))[0]  # (L, H)
            p = torch.softmax(model(x), -1)[0]
            q = torch.softmax(model.head(h.mean(0)), -1)
        tvd.append(0.5 * float((p - q).abs().sum()))
    assert r["tvd_uniform"]["value"] == pytest.approx(np.mean(tvd), abs=1e-6)
    # attention made uniform: permuting it changes nothing
    flat = randomised(model, [])
    with torch.no_grad():
        flat.attention.score.weight.zero_()
    r = attention_report(flat, sample, target, {}, ci=_ci, permutations=20)
    assert r["tvd_permuted"]["value"] == pytest.approx(0.0, abs=1e-6)
    assert r["tvd_uniform"]["value"] == pytest.approx(0.0, abs=1e-6)
    assert np.isnan(r["tau_gradient"]["value"])  # constant α: τ undefined, never 0


def test_stability_of_identical_models_is_perfect(model) -> None:
    same = randomised(model, [])  # an exact copy
    ev = lstmlens.evaluate(model, _texts(20, 3), methods=["lrp"], checks=("stability",),
                           variants=Variants(seeds=[same], halves=[same, same]),
                           resamples=300)
    lrp = ev.stability["methods"]["lrp"]
    assert lrp["seeds"]["value"] == pytest.approx(1.0) == lrp["halves"]["value"]
    assert ev.methods["lrp"]["stability_spearman"]["value"] == pytest.approx(1.0)
    assert abs(ev.stability["methods"]["random"]["seeds"]["value"]) < 0.4
    assert rank_agreement([np.array([1.0, 2.0, 3.0])], [np.array([3.0, 2.0, 1.0])])[0] == -1
    assert np.isnan(rank_agreement([np.ones(4)], [np.arange(4.0)])[0])


def test_variants_are_retrained(model) -> None:
    rng = np.random.default_rng(4)
    train = TextData(_texts(40, 4), rng.integers(0, 2, size=40), ["negative", "positive"])
    v = train_variants(model, train, seeds=(1,), epochs=1)
    assert len(v.seeds) == 1 and len(v.halves) == 2 and v.permuted is not None
    w = [m.head.weight for m in (model, v.seeds[0], *v.halves, v.permuted)]
    assert all(not torch.equal(a, b) for i, a in enumerate(w) for b in w[i + 1:])
    assert 0 <= v.info["permuted_train_accuracy"] <= 1 and v.info["train_texts"] == 40
