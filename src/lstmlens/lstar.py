"""Automaton extraction by queries: Angluin's L* with the network as teacher (Weiss,
Goldberg & Yahav 2018).

Membership queries run the network on words. An equivalence query explores the network's
state space in parallel with the hypothesis, breadth first, through an abstraction: a
partition of the network's states into cells, refined as the exploration goes. Reaching a
cell that is already paired with another hypothesis state is a conflict; a suffix that tells
the two hypothesis states apart then either shows the hypothesis wrong (a counterexample) or
shows the partition too coarse (the cell is split between the states it merged, and the
exploration restarts). A network state whose decision differs from the hypothesis state's
is a counterexample at once. When the exploration finds nothing, the hypothesis is also
checked on sample strings; the shortest one it gets wrong is the counterexample.

The observation table follows Maler & Pnueli: every suffix of a counterexample joins the
columns, so rows of distinct access strings stay distinct and the table stays consistent.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Sequence

import numpy as np

from .automata import Automaton, shortest_difference
from .errors import InputError
from .recognizer import Recognizer

__all__ = ["LStarExtractor", "Partition"]


class Partition:
    """A partition of network states grown by splits: a tree whose leaves are the cells.

    A split divides one cell among groups of states by nearest group centroid, making sure
    that the two states that caused it land in different cells.
    """

    def __init__(self) -> None:
        self.splits: dict[tuple[int, ...], np.ndarray] = {}  # cell -> centroids (G, D)

    def cell(self, state: np.ndarray) -> tuple[int, ...]:
        """The leaf ``state`` (D,) falls in, as the path of child indices from the root."""
        path: tuple[int, ...] = ()
        while path in self.splits:
            centroids = self.splits[path]
            path += (int(np.argmin(((centroids - state) ** 2).sum(1))),)
        return path

    def split(self, cell: tuple[int, ...], groups: Sequence[np.ndarray],
              apart: tuple[np.ndarray, np.ndarray]) -> None:
        """Split leaf ``cell`` among ``groups`` (each (n_i, D)) by their centroids; if the two
        states ``apart`` would still share a cell, split between those two alone."""
        self.splits[cell] = np.stack([np.asarray(g).mean(0) for g in groups])
        if self.cell(apart[0]) == self.cell(apart[1]):
            self.splits[cell] = np.stack(apart)

    @property
    def n_cells(self) -> int:
        return 1 + sum(len(c) - 1 for c in self.splits.values())


class LStarExtractor:
    """Extract an automaton by L* with the network answering the queries.

    Parameters
    ----------
    time_limit
        Seconds; learning stops after this and keeps the best hypothesis so far.
    max_states
        Stop when a hypothesis grows beyond this many states.
    explore_limit
        Network states visited per abstraction exploration (one equivalence query).
    max_depth
        Longest word the exploration follows.

    Attributes
    ----------
    automaton_ : Automaton
        The hypothesis that agrees best with the network on the sample strings.
    counterexamples_ : list of str
        The counterexamples the equivalence queries returned, in order.
    finished_ : bool
        Whether the last equivalence query found no counterexample.
    membership_queries_ : int
        Distinct words the network classified.

    Examples
    --------
    >>> ex = LStarExtractor().fit(Recognizer(model), sample_words)  # doctest: +SKIP
    >>> ex.automaton_.n_states, ex.counterexamples_  # doctest: +SKIP
    """

    def __init__(self, time_limit: float = 45.0, max_states: int = 60,
                 explore_limit: int = 2000, max_depth: int = 64):
        self.time_limit, self.max_states = time_limit, max_states
        self.explore_limit, self.max_depth = explore_limit, max_depth

    # -- membership ------------------------------------------------------------------------
    def _member(self, words: Sequence[str]) -> list[bool]:
        todo = [w for w in dict.fromkeys(words) if w not in self._cache]
        if todo:
            for w, v in zip(todo, self._rec.accepts(todo), strict=True):
                self._cache[w] = bool(v)
        return [self._cache[w] for w in words]

    # -- the observation table -------------------------------------------------------------
    def _rows(self, prefixes: Sequence[str]) -> list[tuple[bool, ...]]:
        flat = self._member([p + e for p in prefixes for e in self._E])
        n = len(self._E)
        return [tuple(flat[i * n:(i + 1) * n]) for i in range(len(prefixes))]

    def _hypothesis(self) -> Automaton:
        """Close the table (add S·a rows that no S row matches), then read the DFA off it."""
        sigma = self._rec.alphabet
        while True:
            rows = dict(zip(self._S, self._rows(self._S), strict=True))
            index = {r: i for i, r in enumerate(rows.values())}
            ext = [s + a for s in self._S for a in sigma]
            missing = [w for w, r in zip(ext, self._rows(ext), strict=True) if r not in index]
            if not missing:
                break
            self._S.append(missing[0])
        ext_rows = dict(zip(ext, self._rows(ext), strict=True))
        table = [[index[ext_rows[s + a]] for a in sigma] for s in self._S]
        accepting = [i for i, s in enumerate(self._S) if rows[s][0]]  # E[0] is ""
        return Automaton.from_table(sigma, table, accepting, start=0,
                                    labels=[repr(s) for s in self._S])

    # -- equivalence -----------------------------------------------------------------------
    def _explore(self, hyp: Automaton) -> str | None:
        """Explore the network through the partition beside ``hyp``; a counterexample or
        ``None``. Restarts after each refinement of the partition."""
        while time.perf_counter() < self._deadline:
            found, restart = self._explore_once(hyp)
            if not restart:
                return found
        return None

    def _explore_once(self, hyp: Automaton) -> tuple[str | None, bool]:
        rec = self._rec
        paired: dict[tuple[int, ...], tuple[int, str, np.ndarray]] = {}
        seen: dict[tuple[int, ...], list[tuple[int, np.ndarray]]] = {}
        todo = deque([("", rec.initial, hyp.start)])
        visited = 0
        while todo and visited < self.explore_limit:
            word, state, q = todo.popleft()
            visited += 1
            if (rec.decide(state[None])[0] > 0.5) != (q in hyp.accepting):
                if self._member([word])[0] != hyp.accepts(word):
                    return word, False
            cell = self._partition.cell(state)
            seen.setdefault(cell, []).append((q, state))
            if cell in paired:
                q2, word2, state2 = paired[cell]
                if q2 == q:
                    continue
                suffix = shortest_difference(_from(hyp, q), _from(hyp, q2))
                for w in (word + suffix, word2 + suffix):
                    if self._member([w])[0] != hyp.accepts(w):
                        return w, False
                # the network tells the two apart as the hypothesis does: split the cell
                groups: dict[int, list[np.ndarray]] = {}
                for qq, ss in seen[cell]:
                    groups.setdefault(qq, []).append(ss)
                self._partition.split(cell, [np.stack(g) for g in groups.values()],
                                      apart=(state, state2))
                self.refinements_ += 1
                return None, True
            paired[cell] = (q, word, state)
            if len(word) >= self.max_depth:
                continue
            for a in rec.alphabet:
                todo.append((word + a, rec.step(state[None], a)[0], hyp.transitions[q][a]))
        return None, False

    def _sample_check(self, hyp: Automaton) -> str | None:
        wrong = [w for w, v in zip(self._sample, self._sample_labels, strict=True)
                 if hyp.accepts(w) != v]
        return min(wrong, key=lambda w: (len(w), w)) if wrong else None

    # -- learning --------------------------------------------------------------------------
    def fit(self, recognizer: Recognizer, sample: Sequence[str]) -> LStarExtractor:
        """Learn from the network; ``sample`` holds the strings of the sampling check."""
        t0 = time.perf_counter()
        self._deadline = t0 + self.time_limit
        self._rec, self._cache = recognizer, {}
        self._sample = recognizer.check_words(sample)
        if not self._sample:
            raise InputError("L* needs sample strings for its equivalence checks")
        self._sample_labels = self._member(self._sample)
        self._S, self._E = [""], [""]
        self._partition = Partition()
        self.counterexamples_: list[str] = []
        self.refinements_, self.finished_ = 0, False
        best: tuple[float, int, Automaton] | None = None
        while True:
            hyp = self._hypothesis()
            wrong = np.mean([hyp.accepts(w) != v for w, v in
                             zip(self._sample, self._sample_labels, strict=True)])
            if best is None or 1 - wrong >= best[0]:
                best = (float(1 - wrong), hyp.n_states, hyp)
            if hyp.n_states > self.max_states or time.perf_counter() > self._deadline:
                break
            ce = self._explore(hyp) or self._sample_check(hyp)
            if ce is None:
                self.finished_ = time.perf_counter() <= self._deadline
                break
            self.counterexamples_.append(ce)
            new = [ce[i:] for i in range(len(ce)) if ce[i:] not in self._E]
            if not new:  # cannot happen for a closed table (Maler & Pnueli); never loop
                break
            self._E += new
        self.sample_fidelity_, _, hyp = best
        self.automaton_ = hyp.minimise()
        self.membership_queries_ = len(self._cache)
        self.partition_cells_ = self._partition.n_cells
        return self


def _from(dfa: Automaton, q: int) -> Automaton:
    """The same automaton started in state ``q``."""
    return Automaton(dfa.alphabet, dfa.transitions, dfa.accepting, q)
