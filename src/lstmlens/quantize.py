"""Automaton extraction by quantisation (Omlin & Giles 1996; Wang et al. 2018).

Run the network on strings and record its state after every prefix and every one-symbol
extension of a prefix; cluster the states with k-means (on the hidden units ``h`` by
default: the cells of a trained network often grow with the string's length, which spreads
one automaton state over many clusters), together with the network's decisions after each
short suffix read from the state; each cluster is a state of the automaton. A
cluster accepts when most of its network states do; its transition on a symbol goes to the
cluster most of its states reach when the network reads that symbol (every recorded state
is stepped, so no transition is missing). The result is minimised (Hopcroft). ``k`` is the
one whose automaton agrees best with the network on validation strings (the smallest on
ties).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np

from .automata import Automaton
from .errors import InputError
from .recognizer import Recognizer

__all__ = ["QuantizedExtractor", "prefix_states"]

DEFAULT_KS = (2, 3, 4, 5, 6, 7, 8, 10, 12, 14, 16, 20, 24, 28, 32, 40, 48, 56, 64)


def prefix_states(recognizer: Recognizer, words: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """Every distinct prefix of ``words`` (the empty one first) and the network's state
    after it: prefixes (P,), states (P, D)."""
    states = recognizer.states(words)
    seen: dict[str, np.ndarray] = {}
    for w, s in zip(words, states, strict=True):
        for t in range(len(w) + 1):
            if w[:t] not in seen:
                seen[w[:t]] = s[t]
    prefixes = sorted(seen, key=lambda p: (len(p), p))
    return prefixes, np.stack([seen[p] for p in prefixes])


def probe_decisions(recognizer: Recognizer, states: np.ndarray, length: int) -> np.ndarray:
    """The network's probability of accepting after each suffix of length ``1..length``
    read from each state: (N, |Σ| + |Σ|² + ... + |Σ|^length)."""
    out, level = [], [np.asarray(states, np.float32)]
    for _ in range(length):
        level = [recognizer.step(s, a) for s in level for a in recognizer.alphabet]
        out += [recognizer.decide(s)[:, None] for s in level]
    return np.concatenate(out, -1) if out else np.zeros((len(states), 0), np.float32)


class QuantizedExtractor:
    """Extract an automaton by clustering the network's states (k-means).

    Parameters
    ----------
    ks
        The numbers of clusters to try, in increasing order.
    max_fit_states
        At most this many states train k-means (a random sample); all are then assigned.
    target
        Stop trying larger ``k`` once validation fidelity reaches this.
    time_limit
        Seconds; no larger ``k`` is tried after this (the best so far is kept).
    features
        ``"hidden"`` (``h`` of every layer) or ``"state"`` (``h`` and ``tanh c``): what
        is clustered.
    probe_length
        Also cluster on what the network decides after every suffix up to this long, read
        from the state (its near future: states that look alike but will answer differently
        fall apart); 0: hidden values only; ``None``: the longest up to 4 with at most
        40 suffixes (4 for two symbols, 3 for three, 2 for four).
    seed
        For the sample and k-means.

    Attributes
    ----------
    automaton_ : Automaton
        The minimised automaton of the chosen ``k``.
    k_ : int
        The chosen number of clusters.
    fidelity_by_k_ : dict
        Validation fidelity and minimised size for every ``k`` tried.
    centres_ : ndarray (k, U)
        The cluster centres.
    clusters_ : Automaton
        The automaton before minimisation (one state per cluster).
    prefixes_, states_ : list of str, ndarray (P, D)
        The distinct prefixes of the strings and the network's state after each.

    Examples
    --------
    >>> ex = QuantizedExtractor().fit(Recognizer(model), train_words, val_words)  # doctest: +SKIP
    >>> ex.automaton_.n_states, ex.k_  # doctest: +SKIP
    """

    def __init__(self, ks: Sequence[int] = DEFAULT_KS, max_fit_states: int = 8000,
                 target: float = 1.0, time_limit: float = 45.0, features: str = "hidden",
                 probe_length: int | None = None, seed: int = 0):
        if features not in ("hidden", "state"):
            raise InputError(f"features must be 'hidden' or 'state', got {features!r}")
        if not ks or any(not isinstance(k, (int, np.integer)) or k < 1 for k in ks):
            raise InputError(f"ks must be whole numbers ≥ 1, got {ks!r}")
        self.ks = sorted(int(k) for k in ks)
        self.max_fit_states = max_fit_states
        self.target = target
        self.time_limit = time_limit
        self.features = features
        if probe_length is not None and (not isinstance(probe_length, int)
                                         or not 0 <= probe_length <= 8):
            raise InputError(f"probe_length must be a whole number 0..8 or None, got "
                             f"{probe_length!r}")
        self.probe_length = probe_length
        self.seed = seed

    def fit(self, recognizer: Recognizer, words: Sequence[str],
            validation: Sequence[str]) -> QuantizedExtractor:
        """Cluster the states of every prefix of ``words``; choose ``k`` on ``validation``."""
        from sklearn.cluster import KMeans
        t0 = time.perf_counter()
        words, validation = recognizer.check_words(words), recognizer.check_words(validation)
        if not words or not validation:
            raise InputError("quantisation needs some strings to run the network on and some "
                             "validation strings to choose k")
        self.prefixes_, self.states_ = prefix_states(recognizer, words)  # (P,), (P, D)
        # the clustered states: every prefix and every one-symbol extension of one (so that
        # states the network reaches only off the strings, like a dead state, have clusters)
        known = set(self.prefixes_)
        ext = [(i, a) for i, p in enumerate(self.prefixes_) for a in recognizer.alphabet
               if p + a not in known]
        states = np.concatenate([self.states_] + [
            recognizer.step(self.states_[[i for i, b in ext if b == a]], a)
            for a in recognizer.alphabet])  # (P + X, D)
        accept = recognizer.decide(states) > 0.5  # (P + X,)

        probes, n = self.probe_length, len(recognizer.alphabet)
        if probes is None:
            probes = max([0] + [L for L in range(1, 5) if sum(n ** i for i in
                                                              range(1, L + 1)) <= 40])

        def view(s: np.ndarray) -> np.ndarray:
            parts = [recognizer.hidden(s)]
            if self.features == "state":
                parts.append(np.tanh(recognizer.cells(s)))
            if probes:
                parts.append(probe_decisions(recognizer, s, probes))
            return np.concatenate(parts, -1)

        after = {a: view(recognizer.step(states, a)) for a in recognizer.alphabet}  # (P, U)
        initial, states = view(recognizer.initial[None]), view(states)
        want = recognizer.accepts(validation)
        rng = np.random.default_rng(self.seed)
        fit_rows = rng.permutation(len(states))[:self.max_fit_states]
        self.fidelity_by_k_: dict[int, dict[str, float]] = {}
        best = None
        # repeated states (a saturated network revisits the same points) fit once, weighted
        points, weight = np.unique(states[fit_rows].round(5), axis=0, return_counts=True)
        ks = sorted({min(k, len(points)) for k in self.ks})
        for k in ks:
            km = KMeans(n_clusters=k, n_init=2, random_state=self.seed).fit(
                points, sample_weight=weight)
            clusters = self._automaton(recognizer.alphabet, km.cluster_centers_, states,
                                       accept, after, initial)
            aut = clusters.minimise()
            got = np.array([aut.accepts(w) for w in validation])
            fid = float(np.mean(got == want))
            self.fidelity_by_k_[k] = {"fidelity": fid, "n_states": aut.n_states}
            if best is None or fid > best[0]:
                best = (fid, k, aut, clusters, km.cluster_centers_)
            if best[0] >= self.target or time.perf_counter() - t0 > self.time_limit:
                break
        self.validation_fidelity_, self.k_, self.automaton_, self.clusters_, self.centres_ = best
        self.n_states_seen_ = len(states)
        return self

    @staticmethod
    def _automaton(alphabet: str, centres: np.ndarray, states: np.ndarray, accept: np.ndarray,
                   after: dict[str, np.ndarray], initial: np.ndarray) -> Automaton:
        """One state per cluster (nearest centre): majority acceptance and transitions."""
        from sklearn.metrics import pairwise_distances_argmin
        k = len(centres)
        label = pairwise_distances_argmin(states, centres)  # (P,)
        nxt = {a: pairwise_distances_argmin(after[a], centres) for a in alphabet}  # (P,)
        accepting, rows = [], []
        for q in range(k):
            members = label == q
            if not members.any():  # an empty cluster: self-loops, never reached
                rows.append([q] * len(alphabet))
                continue
            if accept[members].mean() > 0.5:
                accepting.append(q)
            rows.append([int(np.bincount(nxt[a][members], minlength=k).argmax())
                         for a in alphabet])
        start = int(pairwise_distances_argmin(initial, centres)[0])
        return Automaton.from_table(alphabet, rows, accepting, start=start)
