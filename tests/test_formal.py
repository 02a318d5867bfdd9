"""Formal languages: DFAs against membership functions, generators, and a quick training.

The quick Tomita-4 run (16 units, 8 epochs, 1,034 training strings) reached 100% on the 673
held-out strings up to length 40 for seeds 0-4, in 3-6 s each on one thread; the test asks for
≥ 0.98 (the majority baseline is ≈ 0.5).
"""

from __future__ import annotations

import itertools
import json
import random

import numpy as np
import pytest
import torch

import lstmlens
from lstmlens import InputError
from lstmlens.datasets.formal import (
    DFA,
    balanced,
    brackets_dfa,
    tomita,
    tomita_dfa,
)
from lstmlens.datasets.formal_data import (
    brackets_data,
    tomita_data,
)
from lstmlens.models import LSTMClassifier
from lstmlens.tasks import train_task
from lstmlens.tasks.formal import (
    PrefixClassification,
    encode_strings,
    formal_tokenizer,
    prefix_labelled,
)

QUICK_ACCURACY = 0.98
GRAMMARS = range(1, 8)
# The minimal number of states (dead state included) of each Tomita grammar, counted by hand.
STATES = {1: 2, 2: 3, 3: 5, 4: 4, 5: 4, 6: 3, 7: 5}


def all_strings(alphabet: str, max_length: int):
    for n in range(max_length + 1):
        for t in itertools.product(alphabet, repeat=n):
            yield "".join(t)


def nerode_classes(member, alphabet: str, prefix_len: int, suffix_len: int) -> int:
    """Distinct rows of the table member(prefix + suffix): a lower bound on the states of
    any DFA of the language, computed from the membership function alone."""
    suffixes = list(all_strings(alphabet, suffix_len))
    return len({tuple(member(p + s) for s in suffixes)
                for p in all_strings(alphabet, prefix_len)})


@pytest.mark.parametrize("k", GRAMMARS)
def test_tomita_dfa_matches_membership_up_to_length_12(k):
    dfa, member = tomita_dfa(k), tomita(k)
    wrong = [s for s in all_strings("01", 12) if dfa.accepts(s) != member(s)]
    assert not wrong, wrong[:5]


@pytest.mark.parametrize("k", GRAMMARS)
def test_tomita_dfa_is_minimal(k):
    dfa = tomita_dfa(k)
    assert dfa.num_states == STATES[k] == len(dfa.labels)
    assert dfa.reachable() == set(range(dfa.num_states))
    assert all(len(c) == 1 for c in dfa.equivalence_classes())
    # the membership function alone needs as many states: the DFA is not too small either
    assert nerode_classes(tomita(k), "01", 5, 6) == dfa.num_states


def test_equivalence_classes_find_a_redundant_state():
    """The control for minimality: a copy of Tomita 4's start state must be found."""
    rows = [{"0": 1, "1": 4}, {"0": 2, "1": 0}, {"0": 3, "1": 0}, {"0": 3, "1": 3},
            {"0": 1, "1": 0}]
    dfa = DFA("01", tuple(rows), frozenset({0, 1, 2, 4}))
    assert sorted(map(sorted, dfa.equivalence_classes())) == [[0, 4], [1], [2], [3]]


def test_tomita_definitions_on_examples():
    assert tomita(1)("111") and not tomita(1)("101")
    assert tomita(2)("") and tomita(2)("1010") and not tomita(2)("0101")
    # 3: an odd 1-run followed later by an odd 0-run is rejected; even runs are fine
    assert not tomita(3)("10") and not tomita(3)("1001110") and tomita(3)("1100")
    assert tomita(3)("110100") and tomita(3)("0111") and tomita(3)("1001")
    assert not tomita(3)("1101000")  # 11 0 1 000: the odd run 1 is followed by 000
    assert not tomita(3)("100110")  # 1 00 11 0: "later", not only "immediately", counts
    assert tomita(4)("1001") and not tomita(4)("10001")
    assert tomita(5)("0101") and not tomita(5)("011")
    assert tomita(6)("0011") and tomita(6)("000") and not tomita(6)("01110")
    assert tomita(7)("0011001") and not tomita(7)("10101")


@pytest.mark.parametrize("pairs", ["()", "()[]"])
def test_brackets_dfa_matches_membership(pairs):
    depth = 3
    dfa = brackets_dfa(depth, pairs)
    n = 12 if pairs == "()" else 8
    wrong = [s for s in all_strings(pairs, n) if dfa.accepts(s) != balanced(s, depth, pairs)]
    assert not wrong, wrong[:5]
    assert all(len(c) == 1 for c in dfa.equivalence_classes())
    assert dfa.reachable() == set(range(dfa.num_states))
    assert dfa.num_states == (depth + 2 if pairs == "()" else 2 ** (depth + 1))
    assert balanced("([])[]", pairs="()[]") and not balanced("([)]", pairs="()[]")


def test_dfa_json_round_trip_and_uniform_sampling():
    dfa = tomita_dfa(3)
    again = DFA.from_json(json.loads(json.dumps(dfa.to_json())))
    assert again == dfa
    rnd = random.Random(0)
    draws = [dfa.sample(6, rnd, accepted=False) for _ in range(4000)]
    rejected = dfa.enumerate(6, accepted=False)
    assert set(draws) == set(rejected) and not any(map(tomita(3), draws))
    counts = np.array([draws.count(s) for s in rejected])
    assert counts.min() > 0.4 * counts.mean()  # roughly uniform over the rejected strings


@pytest.fixture(scope="module")
def small_sets():
    return {k: tomita_data(k, max_length=10, per_length=20, test_per_length=10, seed=1)
            for k in GRAMMARS}


@pytest.mark.parametrize("k", GRAMMARS)
def test_generator_properties(small_sets, k):
    data = small_sets[k]
    member = tomita(k)
    splits = {"train": data.train, "validation": data.validation, "test": data.test}
    for name, split in splits.items():
        assert [member(s) for s in split.strings] == split.labels.astype(bool).tolist(), name
    # no string in two splits; validation and test never repeat a string
    sets = {name: set(split.strings) for name, split in splits.items()}
    for a, b in itertools.combinations(sets, 2):
        assert not sets[a] & sets[b], (a, b)
    prefixes = {s[:i] for s in data.train.strings for i in range(len(s) + 1)}
    assert not prefixes & (sets["validation"] | sets["test"])  # nor a prefix of one
    for name in ("validation", "test"):
        assert len(sets[name]) == len(splits[name])
    assert data.train.lengths.max() <= 10 and data.validation.lengths.max() <= 10
    assert data.test.lengths.max() == 20
    assert set(range(11, 21)) <= set(data.test.lengths.tolist())
    assert data.train.labels.sum() * 2 == len(data.train)  # balanced
    if k not in (1, 2):  # 1 and 2 have only ~one member per length
        assert 0.4 <= data.test.labels.mean() <= 0.6
    assert "" in data.train.strings  # the empty string is trained on


def test_generator_is_seeded():
    a, b = (tomita_data(6, max_length=8, per_length=10, test_per_length=5, seed=3)
            for _ in range(2))
    c = tomita_data(6, max_length=8, per_length=10, test_per_length=5, seed=4)
    assert a.train.strings == b.train.strings and a.test.strings == b.test.strings
    assert a.test.strings != c.test.strings


def test_sparse_languages_get_near_boundary_negatives():
    data = tomita_data(1, max_length=10, per_length=20, test_per_length=10, seed=0)
    negatives = [s for s, y in zip(data.test.strings, data.test.labels, strict=True) if not y]
    one_zero = [s for s in negatives if s.count("0") == 1]
    assert len(one_zero) >= 0.2 * len(negatives)  # not just random strings full of 0s
    brackets = brackets_data(max_length=12, max_depth=3, per_length=20, test_per_length=10)
    deep = [s for s, y in zip(brackets.test.strings, brackets.test.labels, strict=True)
            if not y and balanced(s)]
    assert deep, "balanced strings nested too deep are among the negatives"
    assert 0.4 <= brackets.test.labels.mean() <= 0.6


def test_encoding_prefixes_the_start_symbol():
    tok = formal_tokenizer("01")
    data = encode_strings(tomita_data(4, max_length=4, per_length=5, test_per_length=2).train,
                          tok)
    assert all(x[0] == tok.id("^") for x in data.inputs)
    assert min(len(x) for x in data.inputs) == 1  # the empty string is one step


def test_prefix_objective_scores_what_the_classifier_outputs():
    data = tomita_data(5, max_length=6, per_length=5, test_per_length=2)
    tok = formal_tokenizer("01")
    labelled = prefix_labelled(data.train, tok, data.dfa)
    i = data.train.strings.index("0110") if "0110" in data.train.strings else 0
    s = data.train.strings[i]
    assert labelled.prefix_labels[i].tolist() == [int(tomita(5)(s[:t])) for t in
                                                   range(len(s) + 1)]
    model = LSTMClassifier(dict(num_classes=2, vocab_size=len(tok), embedding_dim=4,
                                hidden_sizes=[8]))
    objective = PrefixClassification()
    x, lengths, y = objective.batch(labelled, np.arange(len(labelled.inputs)))
    loss, sums, n = objective.step(model, (x, lengths, y))
    logits = model(x, lengths)
    assert n == len(lengths) and torch.isfinite(loss)
    expected = int((logits.argmax(1) == torch.as_tensor(labelled.labels)).sum())
    assert sums["accuracy"] == expected


@pytest.mark.parametrize("bad", [0, 8, -1, True, 2.5, "seven", None])
def test_bad_grammar_is_refused(bad, tmp_path):
    with pytest.raises(InputError, match="1..7"):
        train_task("tomita", tmp_path / "m", grammar=bad, quick=True, progress=False)
    if bad is not None:
        with pytest.raises(InputError, match="1..7"):
            tomita_dfa(bad)


def test_bad_options_are_refused(tmp_path):
    with pytest.raises(InputError, match="0 and 1"):
        tomita(4)("0120")
    with pytest.raises(InputError, match="not in the alphabet"):
        tomita_dfa(4).accepts("ab")
    with pytest.raises(InputError, match="max_length"):
        tomita_data(4, max_length=1)
    with pytest.raises(InputError, match="pairs"):
        brackets_data(pairs="{}")
    with pytest.raises(InputError, match="max_depth"):
        brackets_dfa(0)
    with pytest.raises(InputError, match="no data"):
        train_task("tomita", tmp_path / "m", grammar=4, data="x.csv", progress=False)


@pytest.mark.slow
def test_quick_tomita_training_generalises_to_twice_the_length(tmp_path):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a 16-unit LSTM gains nothing from a second thread
    try:
        result = train_task("tomita", tmp_path / "t4", grammar=4, quick=True, progress=False)
    finally:
        torch.set_num_threads(threads)
    test = result.metrics["test"]
    assert test["accuracy"] >= QUICK_ACCURACY, test
    assert test["accuracy_lengths_21_40"] >= QUICK_ACCURACY, test
    majority = result.metrics["baselines"]["majority"]["accuracy"]
    assert majority < 0.6 < test["accuracy"]

    model = lstmlens.load(tmp_path / "t4")
    assert model.meta["grammar"] == 4
    assert DFA.from_json(model.meta["dfa"]) == tomita_dfa(4)
    tok = formal_tokenizer("01")
    loaded = model.tokenizer  # a Tokenizer (or its JSON, from older lstmlens.load)
    assert (loaded.to_json() if hasattr(loaded, "to_json") else loaded) == tok.to_json()
    x = torch.tensor([tok.encode("^1001"), tok.encode("^1000")])
    assert model(x).argmax(1).tolist() == [1, 0]
    tr = lstmlens.trace(model, x, torch.tensor([5, 5]))
    assert tr["lstms.0.layers.0.forward.cell"].shape == (2, 5, 16)


@pytest.mark.slow
def test_quick_brackets_training(tmp_path):
    """Quick brackets runs reached 0.969-0.996 on held-out strings up to length 48 (seeds
    0-3, ≈ 5 s each); the test asks for ≥ 0.95 against a majority baseline of ≈ 0.5."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        result = train_task("brackets", tmp_path / "b", quick=True, progress=False)
    finally:
        torch.set_num_threads(threads)
    assert result.metrics["test"]["accuracy"] >= 0.95, result.metrics["test"]
    assert result.metrics["baselines"]["majority"]["accuracy"] < 0.6
    model = lstmlens.load(tmp_path / "b")
    assert (model.meta["pairs"], model.meta["max_depth"], model.meta["max_length"]) == \
        ("()", 4, 24)
    assert DFA.from_json(model.meta["dfa"]) == brackets_dfa(4, "()")
