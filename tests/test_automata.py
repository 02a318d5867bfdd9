"""Automata: DFA operations against brute force, and extraction from LSTMs.

The strongest extraction test uses an LSTM whose weights are set by hand so that it runs a
known DFA exactly (one unit per (previous state, symbol) pair, saturated gates): both
methods must give back exactly that DFA's language, at any length.
"""

from __future__ import annotations

import itertools
import json
import random
import shutil
import xml.etree.ElementTree as ET

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import lstmlens
from lstmlens import InputError, ModelError
from lstmlens.automata import Automaton, disagreement_count, shortest_difference
from lstmlens.cli import app
from lstmlens.datasets.formal import START, brackets_dfa, tomita_dfa
from lstmlens.extraction import extract_automaton
from lstmlens.models import ClassifierConfig, LSTMClassifier
from lstmlens.recognizer import Recognizer
from lstmlens.tasks.formal import formal_tokenizer


def words(alphabet: str, max_length: int):
    for n in range(max_length + 1):
        for t in itertools.product(alphabet, repeat=n):
            yield "".join(t)


def random_dfa(rnd: random.Random, n: int, alphabet: str = "ab") -> Automaton:
    rows = [[rnd.randrange(n) for _ in alphabet] for _ in range(n)]
    acc = [q for q in range(n) if rnd.random() < 0.4]
    return Automaton.from_table(alphabet, rows, acc)


def brute_classes(dfa: Automaton) -> int:
    """Reachable states grouped by their answers on every suffix of length < n: the
    number of Nerode classes, i.e. the minimal DFA's size."""
    n = dfa.n_states
    suffixes = list(words(dfa.alphabet, n))
    reach = {dfa.run(w) for w in words(dfa.alphabet, n)}

    def accepts_from(q: int, s: str) -> bool:
        for a in s:
            q = dfa.transitions[q][a]
        return q in dfa.accepting

    return len({tuple(accepts_from(q, s) for s in suffixes) for q in reach})


# -- DFA operations ------------------------------------------------------------------------

def test_minimise_against_brute_force():
    rnd = random.Random(0)
    for trial in range(40):
        dfa = random_dfa(rnd, rnd.randint(1, 7), "ab" if trial % 2 else "abc")
        small = dfa.minimise()
        assert small.n_states == brute_classes(dfa)
        for w in words(dfa.alphabet, dfa.n_states + 2):
            assert small.accepts(w) == dfa.accepts(w)
        assert small.is_minimal() and small.minimise() == small


@pytest.mark.parametrize("k", range(1, 8))
def test_minimise_recovers_tomita_from_a_blown_up_copy(k):
    true = Automaton.of(tomita_dfa(k))
    n = true.n_states
    # two copies of every state, transitions crossing between copies: same language
    rows = [[true.transitions[q % n][a] + n * ((q + i) % 2) for i, a in enumerate("01")]
            for q in range(2 * n)]
    big = Automaton.from_table("01", rows, [q for q in range(2 * n) if q % n in true.accepting])
    assert big.n_states == 2 * n
    assert big.minimise().n_states == n
    assert big.minimise() == true.minimise()  # BFS numbering: the same minimal DFA
    assert true.is_minimal()


def test_equivalence_and_difference_against_brute_force():
    rnd = random.Random(1)
    for _ in range(80):
        a, b = random_dfa(rnd, rnd.randint(1, 5)), random_dfa(rnd, rnd.randint(1, 5))
        bound = a.n_states + b.n_states  # words shorter than this decide equivalence
        diff = [w for w in words("ab", bound) if a.accepts(w) != b.accepts(w)]
        assert a.equivalent(b) == (not diff)
        got = a.difference(b)
        assert got == (diff[0] if diff else None)  # shortest, then alphabet order
        assert shortest_difference(b, a) == got
        for n in (0, 3, 6):
            assert disagreement_count(a, b, n) == sum(
                a.accepts(w) != b.accepts(w) for w in words("ab", n))
        assert a.agreement(b, 4) == pytest.approx(
            np.mean([a.accepts(w) == b.accepts(w) for w in words("ab", 4)]))


def test_json_dot_and_svg():
    aut = Automaton.of(tomita_dfa(3))
    again = Automaton.from_json(json.loads(json.dumps(aut.to_json())))
    assert again == aut and isinstance(again, Automaton)
    dot = aut.to_dot()
    for q, row in enumerate(aut.transitions):
        assert f"{q} -> {row['0']}" in dot and f"{q} -> {row['1']}" in dot
    assert dot.count("doublecircle") == len(aut.accepting)
    svg = ET.fromstring(aut.to_svg(engine="own"))
    circles = svg.findall(".//{http://www.w3.org/2000/svg}circle")
    assert len(circles) == aut.n_states + len(aut.accepting)
    html = aut._repr_html_()
    assert "<svg" in html and "5 states" in html
    if shutil.which("dot") is None:
        with pytest.raises(InputError, match="Graphviz"):
            aut.to_svg(engine="graphviz")
    with pytest.raises(InputError, match="engine"):
        aut.to_svg(engine="fancy")
    with pytest.raises(InputError, match="different alphabets"):
        aut.equivalent(Automaton.of(brackets_dfa(2)))


# -- an LSTM that runs a DFA exactly -------------------------------------------------------

def exact_lstm(dfa, big: float = 20.0) -> LSTMClassifier:
    """An LSTMClassifier running ``dfa`` after the start symbol: unit (p, b) is on (h ≈
    tanh 1) iff the last symbol read is b and the state before it was p; one more unit is
    on right after the start symbol."""
    sigma = dfa.alphabet
    tok = formal_tokenizer(sigma)
    pairs = [(p, b) for p in range(dfa.num_states) for b in sigma]
    H, V = len(pairs) + 1, len(tok)
    start_unit = len(pairs)
    model = LSTMClassifier(ClassifierConfig(num_classes=2, vocab_size=V, embedding_dim=V,
                                            hidden_sizes=[H]))
    lstm = model.lstms[0]
    on = float(np.tanh(1.0))
    with torch.no_grad():
        model.embedding.weight.copy_(torch.eye(V))  # one-hot symbols
        for p in (lstm.weight_ih_l0, lstm.weight_hh_l0, lstm.bias_ih_l0, lstm.bias_hh_l0):
            p.zero_()
        i, f, g, o = (slice(k * H, (k + 1) * H) for k in range(4))  # PyTorch gate order
        w_ih, w_hh, bias = lstm.weight_ih_l0, lstm.weight_hh_l0, lstm.bias_ih_l0
        for u, (p, b) in enumerate(pairs):
            w_ih[i][u, tok.id(b)] = big
            for v, (p2, b2) in enumerate(pairs):
                if dfa.transitions[p2][b2] == p:
                    w_hh[i][u, v] = big / on
            if p == dfa.start:
                w_hh[i][u, start_unit] = big / on
            bias[i][u] = -1.5 * big
        w_ih[i][start_unit, tok.id(START)] = big
        bias[i][start_unit] = -0.5 * big
        bias[f] = -big  # forget everything
        bias[g] = big  # candidate 1
        bias[o] = big  # output gate open
        model.head.weight.zero_()
        model.head.bias.zero_()
        for u, (p, b) in enumerate(pairs):
            model.head.weight[1, u] = big if dfa.transitions[p][b] in dfa.accepting else -big
        model.head.weight[1, start_unit] = big if dfa.start in dfa.accepting else -big
    model.tokenizer = tok
    model.meta = {"alphabet": sigma, "start_symbol": START, "max_length": 8,
                  "dfa": dfa.to_json()}
    return model.eval()


def test_exact_lstm_runs_its_dfa():
    dfa = tomita_dfa(3)
    rec = Recognizer(exact_lstm(dfa))
    ws = list(words("01", 9)) + ["0110" * 10, "1" * 41 + "0"]
    assert rec.accepts(ws).tolist() == [dfa.accepts(w) for w in ws]


@pytest.mark.parametrize("method", ["quantize", "lstar"])
@pytest.mark.parametrize("dfa", [tomita_dfa(3), tomita_dfa(5), brackets_dfa(2)],
                         ids=["tomita3", "tomita5", "brackets2"])
def test_extraction_recovers_the_exact_network_dfa(method, dfa):
    model = exact_lstm(dfa)
    r = extract_automaton(model, method=method, time_limit=20, seed=0)
    assert r.automaton.equivalent(dfa)  # exactly the same language, every length
    assert r.automaton.n_states == dfa.num_states
    assert r.fidelity == 1.0 and r.matches_truth is True and r.truth_difference is None
    assert r.accuracy == 1.0 and r.counterexamples == []
    assert r.n_heldout > 100 and r.max_length == 8
    # a state reached by one (state, symbol) pair only: its unit separates it perfectly
    rec = Recognizer(model)
    pairs = [(p, b) for p in range(dfa.num_states) for b in dfa.alphabet]
    for q, units in enumerate(r.state_units):
        into = [u for u, (p, b) in enumerate(pairs)
                if r.automaton.run(_access(dfa, p) + b) == q]
        into += [len(pairs)] if q == r.automaton.start else []  # the start symbol's unit
        # one of the units into q is on (tanh 1) in a share ≥ 1/len(into) of q's states,
        # never elsewhere: the best mean difference is at least tanh(1) / len(into)
        top = units[0]
        assert abs(top["mean_in"] - top["mean_out"]) >= np.tanh(1) / len(into) - 1e-3
        if len(into) == 1:
            assert top["index"] == into[0] and top["auc"] == 1.0
    assert rec.unit_names()[0] == "lstms.0.hidden[0]"
    doc = json.loads(r.to_json())
    assert doc["n_states"] == dfa.num_states and doc["method"] == method
    assert "<svg" in r._repr_html_()


def _access(dfa, p: int) -> str:
    """A word leading ``dfa`` to state ``p`` (BFS)."""
    for w in words(dfa.alphabet, dfa.num_states):
        if dfa.run(w) == p:
            return w
    raise AssertionError(f"state {p} unreachable")


def test_extraction_without_task_data_uses_random_strings():
    dfa = tomita_dfa(4)
    model = exact_lstm(dfa)
    model.meta = {"start_symbol": START}  # no alphabet, no truth, no data
    with pytest.raises(InputError, match="alphabet="):
        extract_automaton(model)
    r = extract_automaton(model, "01", method="lstar", max_length=6, time_limit=20)
    assert r.truth is None and r.matches_truth is None and r.accuracy is None
    assert r.fidelity == 1.0 and r.automaton.equivalent(dfa)
    r = extract_automaton(model, "01", test_strings=["000", "0010", "1"], max_length=6,
                          time_limit=20)
    assert r.n_heldout == 3 and r.fidelity == 1.0


def test_extraction_with_a_task_but_no_data_settings():
    dfa = tomita_dfa(4)
    model = exact_lstm(dfa)  # a hand-made directory: the task is named, its data is not
    model.meta = {**model.meta, "task": "formal/tomita", "grammar": 4}
    r = extract_automaton(model, "01", method="lstar", max_length=6, time_limit=20)
    assert r.fidelity == 1.0 and r.automaton.equivalent(dfa)


# -- bad input -----------------------------------------------------------------------------

def test_bad_models_and_inputs():
    model = exact_lstm(tomita_dfa(2))
    with pytest.raises(InputError, match="does not match the model's vocabulary"):
        extract_automaton(model, alphabet="012")
    with pytest.raises(InputError, match="repeats"):
        extract_automaton(model, alphabet="00")
    with pytest.raises(InputError, match="method"):
        extract_automaton(model, method="magic")
    with pytest.raises(InputError, match="not a string over the alphabet"):
        extract_automaton(model, test_strings=["01", "0a1"])
    three = LSTMClassifier(ClassifierConfig(num_classes=3, vocab_size=5, hidden_sizes=[4]))
    three.tokenizer = model.tokenizer
    with pytest.raises(ModelError, match="binary classifier"):
        extract_automaton(three, alphabet="01")
    feats = LSTMClassifier(ClassifierConfig(num_classes=2, input_size=3, hidden_sizes=[4]))
    with pytest.raises(ModelError, match="float features"):
        extract_automaton(feats, alphabet="01")
    bi = LSTMClassifier(ClassifierConfig(num_classes=2, vocab_size=5, hidden_sizes=[4],
                                         bidirectional=True))
    bi.tokenizer = model.tokenizer
    with pytest.raises(ModelError, match="one-direction"):
        extract_automaton(bi, alphabet="01")
    with pytest.raises(ModelError, match="LSTMClassifier"):
        extract_automaton(torch.nn.LSTM(3, 4), alphabet="01")
    bare = LSTMClassifier(ClassifierConfig(num_classes=2, vocab_size=5, hidden_sizes=[4]))
    with pytest.raises(ModelError, match="tokenizer"):
        extract_automaton(bare, alphabet="01")


# -- a trained model, and the command line -------------------------------------------------

@pytest.fixture(scope="module")
def tomita_dir(tmp_path_factory):
    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("automata") / "tomita4"
    from lstmlens.tasks import train_task
    train_task("tomita", out, grammar=4, quick=True, max_length=8, per_length=10, epochs=4,
               progress=False)
    return out


def test_extraction_from_a_trained_model(tomita_dir):
    model = lstmlens.load(tomita_dir)
    r = lstmlens.extract_automaton(model, method="quantize", time_limit=10,
                                   ks=(2, 3, 4, 5, 6, 8))
    assert r.truth is not None and r.truth.equivalent(tomita_dfa(4))
    assert r.details["k"] in (2, 3, 4, 5, 6, 8)
    # fidelity against a slow reference: the network on one string at a time
    from lstmlens.extraction import _task_splits
    held = _task_splits(model, "01").test.strings
    assert r.n_heldout == len(held)
    tok = model.tokenizer
    agree = []
    with torch.no_grad():
        for w in held:
            logits = model(torch.tensor([tok.encode(START + w)]))[0]
            agree.append(bool(logits[1] > logits[0]) == r.automaton.accepts(w))
    assert r.fidelity == pytest.approx(np.mean(agree))
    assert len(r.state_units) == r.automaton.n_states


def test_cli_automaton(tomita_dir, tmp_path):
    runner = CliRunner()
    svg = tmp_path / "a.svg"
    res = runner.invoke(app, ["automaton", str(tomita_dir), "--method", "lstar", "--json",
                              "--svg", str(svg), "--time-limit", "3"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["method"] == "lstar" and 0 <= doc["fidelity"] <= 1
    assert doc["n_states"] == len(doc["automaton"]["transitions"])
    assert ET.fromstring(svg.read_text()).tag.endswith("svg")
    res = runner.invoke(app, ["automaton", str(tomita_dir), "--time-limit", "3"])
    assert res.exit_code == 0 and "fidelity" in res.stdout and "hidden units" in res.stdout
    bad = runner.invoke(app, ["automaton", str(tomita_dir), "--alphabet", "ab"])
    assert bad.exit_code == 1 and "does not match the model's vocabulary" in bad.output
    assert "Traceback" not in bad.output and len(bad.output.strip().splitlines()) == 1
    bad = runner.invoke(app, ["automaton", str(tomita_dir), "--method", "magic"])
    assert bad.exit_code == 1 and "method" in bad.output


def test_partition_splits_between_groups():
    from lstmlens.lstar import Partition
    part = Partition()
    a, b, c = np.array([0.0, 0.0]), np.array([1.0, 0.0]), np.array([0.0, 5.0])
    assert part.cell(a) == part.cell(b) == () and part.n_cells == 1
    part.split((), [a[None], np.stack([b, c])], apart=(a, c))
    assert part.cell(a) != part.cell(c) and part.n_cells == 2
    # b is nearer a's centroid than its own group's; the split still parts a and b
    fresh = Partition()
    fresh.split((), [a[None], np.stack([b, c])], apart=(a, b))
    assert fresh.cell(a) != fresh.cell(b)
    assert part.cell(a) == part.cell(b)  # nearest centroid: b went with a
    part.split(part.cell(a), [a[None], b[None]], apart=(a, b))
    assert len({part.cell(a), part.cell(b), part.cell(c)}) == 3 and part.n_cells == 3


def test_lstar_reports_its_queries():
    from lstmlens.lstar import LStarExtractor
    dfa = tomita_dfa(4)
    rec = Recognizer(exact_lstm(dfa))
    ex = LStarExtractor(time_limit=20).fit(rec, ["", "000", "1000", "0100"])
    assert ex.finished_ and ex.automaton_.equivalent(dfa)
    for ce in ex.counterexamples_:  # each counterexample is a word the network decides
        assert rec.accepts([ce])[0] == dfa.accepts(ce)
    assert ex.counterexamples_ and ex.membership_queries_ > 0
    with pytest.raises(InputError, match="sample"):
        LStarExtractor().fit(rec, [])


def test_probe_decisions_match_the_network_on_longer_words(tomita_dir):
    from lstmlens.quantize import QuantizedExtractor, probe_decisions
    rec = Recognizer(lstmlens.load(tomita_dir))
    ws = ["", "0", "1001", "0001"]
    states = np.stack([s[-1] for s in rec.states(ws)])
    got = probe_decisions(rec, states, 2)  # suffixes 0, 1, 00, 01, 10, 11
    suffixes = ["0", "1", "00", "01", "10", "11"]
    want = rec.accepts([w + v for w in ws for v in suffixes]).reshape(len(ws), -1)
    assert ((got > 0.5) == want).all()
    for bad in (dict(ks=()), dict(features="cells"), dict(probe_length=-1)):
        with pytest.raises(InputError):
            QuantizedExtractor(**bad)
