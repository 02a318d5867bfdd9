"""``extract_automaton``: a DFA read out of a recurrent classifier over symbols, with how
faithful it is to the network, how close to the true language, and which hidden units mark
each of its states.

Fidelity is agreement with the network on held-out strings up to twice the training length
(REFERENCES §7); accuracy is agreement with the true labels. For models trained by
``lstmlens train tomita`` / ``brackets`` the strings come from the task's own generator
(train strings to run the network on, validation strings to choose, the test split held
out) and the grammar's minimal DFA is the truth; for other models, random strings.
"""

from __future__ import annotations

import html
import json
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from .automata import Automaton, disagreement_count, shortest_difference
from .errors import InputError
from .lstar import LStarExtractor
from .quantize import QuantizedExtractor, prefix_states
from .recognizer import Recognizer

__all__ = ["AutomatonExtraction", "extract_automaton", "separating_units"]

METHODS = ("quantize", "lstar")
TRUTH_LENGTH = 12  # "the same language": all strings up to this length


@dataclass
class AutomatonExtraction:
    """An extracted automaton and how it relates to the network and to the truth.

    Attributes
    ----------
    automaton : Automaton
        The minimal DFA extracted.
    method : str
        ``"quantize"`` or ``"lstar"``.
    fidelity : float
        Agreement with the network on the held-out strings.
    fidelity_by_length : dict
        The same on lengths ``0..N`` and ``N+1..2N`` (``N`` = training length).
    accuracy : float or None
        Agreement with the true labels of the held-out strings, when known.
    truth : Automaton or None
        The language's minimal DFA, when the model records it.
    matches_truth : bool or None
        Same language as ``truth`` on every string up to length 12.
    truth_difference : str or None
        The shortest word on which the automaton and the truth differ (any length).
    counterexamples : list of str
        Held-out strings where network and automaton disagree, shortest first (≤ 20).
    query_counterexamples : list of str
        L*: the counterexamples its equivalence queries returned.
    state_units : list of list of dict
        For each state, the hidden units that best separate the network states mapped to it
        from the rest (largest mean difference): unit, AUC, mean inside and outside.
    seconds : float
        Wall time of the extraction (network runs included).
    details : dict
        Method specifics: k and fidelity per k (quantize); rounds, queries (lstar).
    """

    automaton: Automaton
    method: str
    fidelity: float
    fidelity_by_length: dict[str, float]
    n_heldout: int
    max_length: int
    accuracy: float | None
    truth: Automaton | None
    matches_truth: bool | None
    truth_difference: str | None
    counterexamples: list[str]
    query_counterexamples: list[str]
    state_units: list[list[dict[str, Any]]]
    seconds: float
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "automaton": self.automaton.to_json(),
                "n_states": self.automaton.n_states, "fidelity": self.fidelity,
                "fidelity_by_length": self.fidelity_by_length, "n_heldout": self.n_heldout,
                "max_length": self.max_length, "accuracy": self.accuracy,
                "truth": self.truth.to_json() if self.truth is not None else None,
                "matches_truth": self.matches_truth, "truth_length": TRUTH_LENGTH,
                "truth_difference": self.truth_difference,
                "counterexamples": self.counterexamples,
                "query_counterexamples": self.query_counterexamples,
                "state_units": self.state_units, "seconds": self.seconds,
                "details": self.details}

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    def summary(self) -> str:
        """A few lines for people."""
        lines = [f"{self.method}: {self.automaton.n_states} states; fidelity "
                 f"{self.fidelity:.4f} on {self.n_heldout} held-out strings (lengths up to "
                 f"{2 * self.max_length}); {self.seconds:.1f} s"]
        if self.accuracy is not None:
            lines.append(f"accuracy against the true labels {self.accuracy:.4f}")
        if self.matches_truth is not None:
            lines.append("same language as the true minimal DFA on all strings up to length "
                         f"{TRUTH_LENGTH}" if self.matches_truth else
                         f"differs from the true minimal DFA, first on "
                         f"{self.truth_difference!r}")
        return "\n".join(lines)

    def to_html(self) -> str:
        rows = []
        for q, units in enumerate(self.state_units):
            best = ", ".join(f"{u['unit']} (AUC {u['auc']:.2f})" for u in units)
            accepts = "yes" if q in self.automaton.accepting else "no"
            rows.append(f"<tr><td>q{q}</td><td>{accepts}</td><td>{html.escape(best)}</td></tr>")
        return (f"<div><pre>{html.escape(self.summary())}</pre>{self.automaton.to_svg()}"
                "<table><tr><th>state</th><th>accepts</th><th>units that separate it best"
                f"</th></tr>{''.join(rows)}</table></div>")

    def _repr_html_(self) -> str:
        return self.to_html()


def separating_units(recognizer: Recognizer, automaton: Automaton, prefixes: Sequence[str],
                     states: np.ndarray, top: int = 3) -> list[list[dict[str, Any]]]:
    """For each automaton state, the hidden units whose values best tell the network states
    of prefixes that reach it from all the others.

    Units are ordered by ``|mean inside − mean outside|`` (hidden values share one scale,
    −1..1), then by ``|AUC − 0.5|``; the AUC of the unit's value for "reaches this state"
    (Mann–Whitney, from ranks) says how cleanly one threshold on it would separate them.
    """
    from scipy.stats import rankdata
    hidden = recognizer.hidden(states)  # (P, U)
    names = recognizer.unit_names()
    where = np.array([automaton.run(p) for p in prefixes])  # (P,)
    ranks = rankdata(hidden, axis=0)  # (P, U)
    out: list[list[dict[str, Any]]] = []
    for q in range(automaton.n_states):
        inside = where == q
        n1, n0 = int(inside.sum()), int((~inside).sum())
        if n1 == 0 or n0 == 0:
            out.append([])
            continue
        auc = (ranks[inside].sum(0) - n1 * (n1 + 1) / 2) / (n1 * n0)  # (U,)
        m1, m0 = hidden[inside].mean(0), hidden[~inside].mean(0)  # (U,)
        order = np.lexsort((-np.abs(auc - 0.5), -np.abs(m1 - m0)))[:top]
        out.append([{"unit": names[j], "index": int(j), "auc": round(float(auc[j]), 4),
                     "mean_in": round(float(m1[j]), 4), "mean_out": round(float(m0[j]), 4),
                     "n_in": n1} for j in order])
    return out


def _task_splits(model: torch.nn.Module, alphabet: str):
    """The model's own train/validation/test strings, if it records a formal task."""
    meta = getattr(model, "meta", None) or {}
    task, info = str(meta.get("task", "")), meta.get("data") or {}
    if not task.startswith("formal/") or set(meta.get("alphabet", "")) != set(alphabet):
        return None
    from .datasets.formal_data import brackets_data, tomita_data
    try:  # a hand-made model directory may record the task without its data settings
        kw = dict(max_length=int(meta["max_length"]), per_length=int(info["per_length"]),
                  test_per_length=int(info["test_per_length"]), seed=int(info["seed"]))
        if task == "formal/brackets":
            return brackets_data(max_depth=int(meta["max_depth"]), pairs=meta["pairs"], **kw)
        return tomita_data(int(meta["grammar"]), **kw)
    except (KeyError, TypeError, ValueError):
        return None  # then strings are generated over the alphabet, as for any recogniser


def _random_words(alphabet: str, lo: int, hi: int, n: int, rnd: random.Random) -> list[str]:
    """``n`` words, half uniform, half with long runs of one symbol, lengths ``lo..hi``."""
    out = []
    for i in range(n):
        length = rnd.randint(lo, hi)
        if i % 2 == 0:
            out.append("".join(rnd.choice(alphabet) for _ in range(length)))
            continue
        w = [rnd.choice(alphabet)] if length else []
        while len(w) < length:
            w.append(w[-1] if rnd.random() < 0.8 else rnd.choice(alphabet))
        out.append("".join(w))
    return out


def _augmented(words: list[str], alphabet: str, top: int, n: int, rnd: random.Random
               ) -> list[str]:
    """Longer words near the training distribution: concatenations of 2–4 training words,
    or one training word inserted into another (which nests brackets deeper), cut at
    ``top``; half of them with one symbol changed."""
    out = []
    for i in range(n):
        if i % 4 < 2:
            w = "".join(rnd.choice(words) for _ in range(rnd.randint(2, 4)))[:top]
        else:
            outer = rnd.choice(words)
            j = rnd.randint(0, len(outer))
            w = (outer[:j] + rnd.choice(words) + outer[j:])[:top]
        if i % 2 and w:
            j = rnd.randrange(len(w))
            w = w[:j] + rnd.choice(alphabet) + w[j + 1:]
        out.append(w)
    return out


def _all_words(alphabet: str, max_words: int) -> list[str]:
    out, layer = [""], [""]
    while len(out) + len(layer) * len(alphabet) <= max_words:
        layer = [w + a for w in layer for a in alphabet]
        out += layer
    return out


def extract_automaton(model: torch.nn.Module, alphabet: str | None = None,
                      method: str = "quantize", *, strings: Sequence[str] | None = None,
                      test_strings: Sequence[str] | None = None, max_length: int | None = None,
                      time_limit: float = 45.0, seed: int = 0,
                      **options: Any) -> AutomatonExtraction:
    """Extract a DFA from a binary LSTM classifier over symbols.

    Parameters
    ----------
    model
        An :class:`lstmlens.LSTMClassifier` over a character alphabet (e.g. a model
        directory from ``lstmlens train tomita --grammar 3``, loaded with ``lstmlens.load``).
    alphabet
        Its symbols (default: ``model.meta["alphabet"]``).
    method
        ``"quantize"`` (k-means over hidden states) or ``"lstar"`` (L* with the network as
        teacher).
    strings
        Strings to run the network on (default: the task's training strings, else random).
    test_strings
        Held-out strings for fidelity (default: the task's test split, else random strings
        up to twice the training length).
    max_length
        The training length ``N`` (default ``model.meta["max_length"]``, else 10).
    time_limit
        Seconds the learning may take (the best automaton so far is kept).
    seed
        For the random strings and k-means.
    **options
        Passed to :class:`QuantizedExtractor` or :class:`LStarExtractor`.

    Returns
    -------
    AutomatonExtraction

    Examples
    --------
    >>> result = extract_automaton(lstmlens.load("runs/automata/tomita4-seed0"))  # doctest: +SKIP
    >>> result.automaton.n_states, result.fidelity, result.matches_truth  # doctest: +SKIP
    (4, 1.0, True)
    """
    t0 = time.perf_counter()
    if method not in METHODS:
        raise InputError(f"method must be one of {METHODS}, got {method!r}")
    rec = Recognizer(model, alphabet)
    sigma = rec.alphabet
    splits = _task_splits(model, sigma)
    N = int(max_length or rec.max_length or (splits.max_length if splits else 10))
    if N < 1:
        raise InputError(f"max_length must be ≥ 1, got {max_length!r}")
    rnd = random.Random(f"lstmlens-automaton:{seed}")
    if strings is not None:
        train = list(dict.fromkeys(rec.check_words(strings)))
    elif splits is not None:
        train = list(dict.fromkeys(splits.train.strings))
    else:
        train = list(dict.fromkeys(_all_words(sigma, 1024) + _random_words(sigma, 0, N, 1000,
                                                                           rnd)))
    if not train:
        raise InputError("strings is empty; give some strings to run the network on")
    # choose (k, or L*'s sampling check) on strings up to 2N, labelled by the network only
    check = (list(splits.validation.strings) if splits is not None else []) + \
        _random_words(sigma, 0, 2 * N, 1000, rnd) + _augmented(train, sigma, 2 * N, 1000, rnd)
    check = list(dict.fromkeys(check))
    truth_labels = None
    if test_strings is not None:
        held = rec.check_words(test_strings)
    elif splits is not None:
        held, truth_labels = list(splits.test.strings), splits.test.labels.astype(bool)
    else:
        rnd_test = random.Random(f"lstmlens-automaton-test:{seed}")
        seen = set(train) | set(check)
        held = [w for w in dict.fromkeys(_random_words(sigma, 1, 2 * N, 2000, rnd_test))
                if w not in seen]
    if not held:
        raise InputError("test_strings is empty; give held-out strings to measure fidelity")

    if method == "quantize":
        ex = QuantizedExtractor(seed=seed, time_limit=time_limit, **options).fit(rec, train,
                                                                                 check)
        details = {"k": ex.k_, "fidelity_by_k": ex.fidelity_by_k_,
                   "validation_fidelity": ex.validation_fidelity_,
                   "network_states": ex.n_states_seen_}
        queries: list[str] = []
    else:
        ex = LStarExtractor(time_limit=time_limit, max_depth=2 * N, **options).fit(rec, check)
        details = {"finished": ex.finished_, "membership_queries": ex.membership_queries_,
                   "partition_cells": ex.partition_cells_, "refinements": ex.refinements_,
                   "sample_fidelity": ex.sample_fidelity_}
        queries = list(ex.counterexamples_)
    aut: Automaton = ex.automaton_
    net = rec.accepts(held)
    got = np.array([aut.accepts(w) for w in held])
    agree = got == net
    lengths = np.array([len(w) for w in held])
    by_length = {f"0..{N}": lengths <= N, f"{N + 1}..{2 * N}": lengths > N}
    truth = None
    meta_dfa = (getattr(model, "meta", None) or {}).get("dfa")
    if meta_dfa and set(meta_dfa.get("alphabet", "")) == set(sigma):
        truth = Automaton.from_json(meta_dfa)
    if truth is not None and truth_labels is None:
        truth_labels = np.array([truth.accepts(w) for w in held])
    prefixes, states = (ex.prefixes_, ex.states_) if method == "quantize" else \
        prefix_states(rec, train)
    units = separating_units(rec, aut, prefixes, states)
    return AutomatonExtraction(
        automaton=aut, method=method, fidelity=float(agree.mean()),
        fidelity_by_length={k: float(agree[m].mean()) for k, m in by_length.items() if m.any()},
        n_heldout=len(held), max_length=N,
        accuracy=None if truth_labels is None else float(np.mean(got == truth_labels)),
        truth=truth,
        matches_truth=None if truth is None else
        disagreement_count(aut, truth, TRUTH_LENGTH) == 0,
        truth_difference=None if truth is None else shortest_difference(aut, truth),
        counterexamples=sorted((w for w, ok in zip(held, agree, strict=True) if not ok),
                               key=lambda w: (len(w), w))[:20],
        query_counterexamples=queries,
        state_units=units, seconds=time.perf_counter() - t0, details=details)
