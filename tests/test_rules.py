"""Phrase rules (Murdoch & Szlam 2017): planted words recovered, matching and extraction
against plain references, scores against hand-computed values, the CLI and bad input."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score
from typer.testing import CliRunner

import lstmlens
from lstmlens.cli import app
from lstmlens.cli_rules import model_splits
from lstmlens.datasets.planted import NEGATIVE_WORDS, POSITIVE_WORDS
from lstmlens.errors import InputError, ModelError
from lstmlens.modeldir import save
from lstmlens.models import ClassifierConfig, LSTMClassifier
from lstmlens.rules import (
    PhraseRules,
    matches,
    phrases,
    unit_separation,
    wilson_lower_bound,
)
from lstmlens.tasks import train_task

runner = CliRunner()
PLANTED = {**{w: 1 for w in POSITIVE_WORDS}, **{w: 0 for w in NEGATIVE_WORDS}}


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """A small model that has learned the planted rule, and its data."""
    out = tmp_path_factory.mktemp("rules") / "planted"
    train_task("planted", out, quick=True, progress=False, vocabulary="builtin", n_train=1200,
               hidden_size=32, embedding_dim=16, epochs=6)
    model = lstmlens.load(out)
    train, test, labels = model_splits(model)
    assert model.metrics["test"]["accuracy"] > 0.95, model.metrics["test"]
    return out, model, train, test, labels


@pytest.fixture(scope="module")
def fitted(planted):
    _, model, train, _, _ = planted
    return PhraseRules().fit(model, train)


# -- the planted words are found -----------------------------------------------------------
def _check_recovers(rules: PhraseRules) -> None:
    singles = {r.pattern[0]: r.label for r in rules.rules_ if len(r.pattern) == 1}
    for word, label in PLANTED.items():
        assert singles.get(word) == label, (word, singles.get(word))
    for r in rules.rules_:  # every confident rule rests on a planted word of its own class
        if r.precision >= 0.75:
            assert any(PLANTED.get(w) == r.label for w in r.pattern), r


def test_rules_recover_the_planted_words(planted, fitted) -> None:
    _, model, _, test, labels = planted
    _check_recovers(fitted)
    first = fitted.rules_[:len(PLANTED)]  # the most specific rules are the planted words
    assert {r.pattern for r in first} == {(w,) for w in PLANTED}
    assert fitted.coverage(test) > 0.97
    assert fitted.fidelity(model, test) > 0.85
    assert fitted.score(test, labels) > 0.85
    assert fitted.classes_ == ["negative", "positive"]
    for r in fitted.rules_:
        assert r.support >= r.decided >= 0 and 0.6 <= r.precision <= 1
        assert r.extracted >= fitted.min_support


@pytest.mark.parametrize("method", ["cd", "grad_x_input", "cell_decomposition"])
def test_other_importance_methods_recover_them_too(planted, method) -> None:
    _, model, train, _, _ = planted
    rules = PhraseRules(method=method, min_support=5).fit(model, train[:600])
    _check_recovers(rules)


def test_sequential_covering_keeps_only_planted_rules(planted) -> None:
    _, model, train, test, _ = planted
    rules = PhraseRules(order="cover").fit(model, train)
    assert len(rules.rules_) >= len(PLANTED) - 1  # the last word may be left to the default
    for r in rules.rules_:
        assert any(PLANTED.get(w) == r.label for w in r.pattern), r
    assert rules.fidelity(model, test) > 0.85


def test_units_are_those_that_separate_matching_texts(planted, fitted) -> None:
    """The stored AUCs equal sklearn's on the final hidden state read from a trace."""
    _, model, train, _, _ = planted
    ids = [model.tokenizer.encode(t) for t in train]
    x, L = lstmlens.batching.pad_batch(ids)
    tr = lstmlens.trace(model, x, L)
    h = tr["lstms.0.layers.0.forward.hidden"][torch.arange(len(ids)), L - 1].numpy()
    for r in fitted.rules_[:3]:
        mask = np.array([matches(model.tokenizer.tokens(i), r.pattern, 3) for i in ids])
        assert mask.sum() == r.support
        for u in r.units:
            assert u["auc"] == pytest.approx(roc_auc_score(mask, h[:, u["unit"]]), abs=1e-3)
            diff = h[mask, u["unit"]].mean() - h[~mask, u["unit"]].mean()
            assert u["mean_difference"] == pytest.approx(diff, abs=1e-3)
        assert abs(r.units[0]["auc"] - 0.5) > 0.2  # a planted word moves some unit clearly


# -- plain references ----------------------------------------------------------------------
def _matches_reference(words, pattern, max_gap) -> bool:
    for pos in itertools.combinations(range(len(words)), len(pattern)):
        if all(words[p] == w for p, w in zip(pos, pattern, strict=True)) and all(
                b - a - 1 <= max_gap for a, b in itertools.pairwise(pos)):
            return True
    return False


def test_matching_with_gaps_equals_a_plain_reference() -> None:
    rng = np.random.default_rng(0)
    hits = 0
    for _ in range(3000):
        words = list(rng.choice(list("abcd"), size=rng.integers(0, 12)))
        pattern = tuple(rng.choice(list("abcd"), size=rng.integers(1, 5)))
        gap = int(rng.integers(0, 4))
        want = _matches_reference(words, pattern, gap)
        assert matches(words, pattern, gap) == want, (words, pattern, gap)
        hits += want
    assert 300 < hits < 2700  # both outcomes are exercised
    assert matches("not a very good film".split(), ("not", "good"), 2)
    assert not matches("not a very good film".split(), ("not", "good"), 1)
    assert not matches("good , not".split(), ("not", "good"), 3)  # order matters


def _phrases_reference(words, important, max_len, max_gap):
    out = set()
    for n in range(1, max_len + 1):
        for pos in itertools.combinations(sorted(important), n):
            inside = [p for p in important if pos[0] < p < pos[-1]]
            if len(inside) == max(n - 2, 0) and all(b - a - 1 <= max_gap
                                            for a, b in itertools.pairwise(pos)):
                out.add(tuple(words[p] for p in pos))  # runs of neighbouring important words
    return out


def test_extraction_equals_a_plain_reference() -> None:
    rng = np.random.default_rng(1)
    for _ in range(500):
        words = [f"w{i}" for i in range(int(rng.integers(1, 15)))]
        important = sorted(rng.choice(len(words), size=rng.integers(0, len(words) + 1),
                                      replace=False).tolist())
        max_len, gap = int(rng.integers(1, 5)), int(rng.integers(0, 4))
        got = {p for p, _ in phrases(words, important, max_len, gap)}
        assert got == _phrases_reference(words, important, max_len, gap)
    words = "the film is not at all good".split()
    assert {p for p, _ in phrases(words, [3, 6], 4, 3)} == {("not",), ("good",),
                                                            ("not", "good")}
    assert {p for p, _ in phrases(words, [3, 6], 4, 1)} == {("not",), ("good",)}


def test_unit_separation_equals_sklearn() -> None:
    rng = np.random.default_rng(2)
    states = rng.normal(size=(40, 6)).round(1)  # rounding makes ties
    mask = rng.random(40) < 0.3
    auc, diff = unit_separation(states, mask)
    for u in range(6):
        assert auc[u] == pytest.approx(roc_auc_score(mask, states[:, u]))
        assert diff[u] == pytest.approx(states[mask, u].mean() - states[~mask, u].mean())


def _wilson_reference(hits: int, n: int, z: float) -> float:
    """The lower root of (h/n − p)² = z² p (1 − p) / n, found by bisection on [0, h/n]."""
    share = hits / n
    lo, hi = 0.0, share
    for _ in range(200):
        mid = (lo + hi) / 2
        if (share - mid) ** 2 > z * z * mid * (1 - mid) / n:
            lo = mid  # still below the bound
        else:
            hi = mid
    return (lo + hi) / 2


def test_wilson_bound_equals_a_plain_reference() -> None:
    for hits, n, z in [(3, 3, 1.0), (5, 9, 1.0), (290, 300, 1.0), (7, 10, 2.0), (0, 4, 1.0),
                       (10, 40, 0.5)]:
        assert wilson_lower_bound(hits, n, z) == pytest.approx(_wilson_reference(hits, n, z),
                                                               abs=1e-9)
    assert wilson_lower_bound(7, 10, 0.0) == pytest.approx(0.7)
    # a perfect rule seen 3 times ranks below a nearly perfect one seen 300 times
    assert wilson_lower_bound(3, 3, 1.0) < wilson_lower_bound(290, 300, 1.0)
    with pytest.raises(InputError, match="n > 0"):
        wilson_lower_bound(0, 0, 1.0)


def test_confidence_orders_rules_by_the_wilson_bound(planted, fitted) -> None:
    _, model, train, test, _ = planted
    keys = [(r.precision, r.support) for r in fitted.rules_]  # confidence 0: the paper's order
    assert keys == sorted(keys, key=lambda k: (-k[0], -k[1]))
    sure = PhraseRules(confidence=1.0, min_support=3).fit(model, train)
    bounds = [wilson_lower_bound(r.precision * r.support, r.support, 1.0) for r in sure.rules_]
    assert all(a >= b - 1e-12 for a, b in itertools.pairwise(bounds))
    # with min_support 3 chance phrases pass too; ordered by the bound, every one of them
    # comes after every planted word, while by the plain precision some come before
    def last_planted_before_chance(rules: PhraseRules) -> bool:
        where = {r.pattern: j for j, r in enumerate(rules.rules_)}
        chance = [j for j, r in enumerate(rules.rules_)
                  if not any(PLANTED.get(w) == r.label for w in r.pattern)]
        assert chance, "min_support 3 should let chance phrases through"
        return max(where[(w,)] for w in PLANTED) < min(chance)

    assert last_planted_before_chance(sure)
    assert not last_planted_before_chance(PhraseRules(min_support=3).fit(model, train))
    assert sure.fidelity(model, test) > 0.85
    again = PhraseRules.from_dict(json.loads(sure.to_json()))
    assert again.confidence == 1.0 and again.predict(test[:50]).tolist() == \
        sure.predict(test[:50]).tolist()


# -- the classifier against hand-computed values ---------------------------------------------
def _hand_rules(max_length=None) -> PhraseRules:
    rule = {"support": 10, "precision": 0.9, "extracted": 10, "importance": 1.0, "units": []}
    doc = {"type": "lstmlens-phrase-rules", "params": PhraseRules().get_params(),
           "classes": ["negative", "positive"], "default_index": 0,
           "tokenizer": {"level": "word", "lowercase": True}, "max_length": max_length,
           "rules": [{**rule, "pattern": ["superb", "film"], "label": 1,
                      "class_name": "positive"},
                     {**rule, "pattern": ["awful"], "label": 0, "class_name": "negative"},
                     {**rule, "pattern": ["superb"], "label": 1, "class_name": "positive"}]}
    return PhraseRules.from_dict(doc)


TEXTS = ["the superb old film", "Superb , but awful", "awful film , superb", "the film",
         "superb a b c d film", "Awful!"]


def test_predict_score_coverage_by_hand(planted) -> None:
    rules = _hand_rules()
    # 0: superb…film (gap 1); 1: superb…film? no → awful; 2: awful; 3: none → default 0;
    # 4: superb…film has 4 words between (> 3) → rule 2 'superb'; 5: awful
    assert rules.apply(TEXTS).tolist() == [0, 1, 1, -1, 2, 1]
    assert rules.predict(TEXTS).tolist() == [1, 0, 0, 0, 1, 0]
    assert rules.coverage(TEXTS) == pytest.approx(5 / 6)
    labels = [1, 1, 0, 1, 1, 0]  # right on 0, 2, 4, 5
    assert rules.score(TEXTS, labels) == pytest.approx(4 / 6)
    names = ["positive", "positive", "negative", "positive", "positive", "negative"]
    assert rules.score(TEXTS, names) == pytest.approx(4 / 6)
    _, model, _, _, _ = planted
    with torch.no_grad():
        own = [int(model(torch.tensor([model.tokenizer.encode(t)])).argmax())
               for t in TEXTS]  # the model one text at a time
    want = np.mean(np.array(own) == np.array([1, 0, 0, 0, 1, 0]))
    assert rules.fidelity(model, TEXTS) == pytest.approx(want)
    assert _hand_rules(max_length=3).apply(TEXTS).tolist()[0] == 2  # 'film' is cut off


def test_json_round_trip(planted, fitted) -> None:
    _, _, _, test, _ = planted
    doc = json.loads(fitted.to_json())
    assert doc["rules"][0]["pattern"] and "support" in doc["rules"][0]
    again = PhraseRules.from_dict(doc)
    assert np.array_equal(again.predict(test[:200]), fitted.predict(test[:200]))


def test_html_lists_the_rules_escaped(fitted) -> None:
    page = fitted._repr_html_(top=5)
    first = fitted.rules_[0]
    assert page.count("<tr>") == 1 + min(5, len(fitted.rules_))
    assert f"<td>{first.support}</td>" in page and first.pattern[0] in page
    evil = PhraseRules.from_dict(json.loads(fitted.to_json()))
    evil.rules_[0].pattern = ("<script>",)
    assert "<script>" not in evil._repr_html_() and "&lt;script&gt;" in evil._repr_html_()


# -- the command line ----------------------------------------------------------------------
def test_cli_prints_rules_and_json(planted) -> None:
    out, *_ = planted
    r = runner.invoke(app, ["rules", str(out), "--top", "12"])
    assert r.exit_code == 0, r.output
    assert "support" in r.stdout and "precision" in r.stdout and "fidelity" in r.stdout
    assert sum(w in r.stdout for w in PLANTED) >= 10
    r = runner.invoke(app, ["rules", str(out), "--top", "3", "--json", "--confidence", "1"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["params"]["confidence"] == 1.0
    assert len(doc["rules"]) == 3 and doc["n_rules"] >= 12
    assert doc["test"]["fidelity"] > 0.85 and doc["rules"][0]["pattern"][0] in PLANTED


def test_cli_bad_input_is_one_line(planted, tmp_path) -> None:
    out, *_ = planted
    feats = save(LSTMClassifier(ClassifierConfig(num_classes=2, input_size=3,
                                                 hidden_sizes=[4])), tmp_path / "feats")
    cases = [(["rules", str(out), "--method", "nope"], "unknown importance method"),
             (["rules", str(out), "--min-support", "100000"], "lower min_support"),
             (["rules", str(feats)], "classifier of words")]
    for args, msg in cases:
        r = runner.invoke(app, args)
        assert r.exit_code == 1, r.output
        assert msg in " ".join(r.output.split()) and "Traceback" not in r.output


def test_bad_input(planted) -> None:
    _, model, train, _, _ = planted
    with pytest.raises(InputError, match="unknown importance method"):
        PhraseRules(method="nope").fit(model, train)
    with pytest.raises(InputError, match="order must be"):
        PhraseRules(order="random").fit(model, train)
    for bad in (-1.0, True, "1"):
        with pytest.raises(InputError, match="confidence must be a number ≥ 0"):
            PhraseRules(confidence=bad).fit(model, train)
    with pytest.raises(InputError, match="list of strings"):
        PhraseRules().fit(model, "one text")
    with pytest.raises(InputError, match="no phrase rule passes.*lower min_support"):
        PhraseRules(min_support=10**6).fit(model, train[:300])
    with pytest.raises(InputError, match="not fitted"):
        PhraseRules().predict(["a film"])
    with pytest.raises(InputError, match="2 labels for 6 texts"):
        _hand_rules().score(TEXTS, [0, 1])
    with pytest.raises(InputError, match="unknown class names"):
        _hand_rules().score(TEXTS, ["good"] * 6)
    with pytest.raises(ModelError, match="does not describe its parts"):
        PhraseRules().fit(torch.nn.LSTM(3, 4), train)
