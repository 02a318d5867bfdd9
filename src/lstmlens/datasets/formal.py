"""Formal languages: the seven Tomita grammars and balanced brackets, with their minimal DFAs.

Each language has two independent definitions: a membership function written from the
grammar's text (string operations, a regular expression, a stack) and a hand-built minimal
DFA (:class:`DFA`), the ground truth for automaton extraction. The tests check that the two
agree on every string up to length 12 and that no two DFA states are equivalent.

Tomita grammars over ``{0, 1}`` (Tomita 1982, with the definitions of Weiss, Goldberg and
Yahav 2018): 1 ``1*``; 2 ``(10)*``; 3 a string is rejected iff some maximal run of 1s of odd
length is followed, anywhere later, by a maximal run of 0s of odd length (so ``100110`` is
rejected; reading "immediately followed" instead gives another language); 4 no ``000``;
5 even number of 0s and even number of 1s; 6 ``(#0 − #1) ≡ 0 (mod 3)``; 7 ``0*1*0*1*``.
Brackets: balanced strings over ``()`` (or ``()[]``) whose nesting depth is at most
``max_depth``.

Strings are plain ``str``; the empty string is a member of every language here. A model
reads each string after a start symbol :data:`START` (``"^"``), so the empty string is the
one-step input ``"^"``.
"""

from __future__ import annotations

import itertools
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import InputError

__all__ = ["DFA", "START", "TOMITA_ALPHABET", "balanced", "brackets_dfa", "tomita",
           "tomita_dfa"]  # labelled data: lstmlens.datasets.formal_data

START = "^"
TOMITA_ALPHABET = "01"
BRACKET_PAIRS = ("()", "()[]")


@dataclass(frozen=True)
class DFA:
    """A complete deterministic finite automaton with states ``0..n-1``.

    Parameters
    ----------
    alphabet : str
        The input symbols, one character each.
    transitions : tuple of dict
        ``transitions[q][a]`` is the state reached from ``q`` on symbol ``a``.
    accepting : frozenset of int
        The accepting states.
    start : int
        The start state (0 in every DFA built here).
    labels : tuple of str
        What each state means, for people.

    Examples
    --------
    >>> dfa = tomita_dfa(4)
    >>> dfa.accepts("1001"), dfa.accepts("10001")
    (True, False)
    """

    alphabet: str
    transitions: tuple[dict[str, int], ...]
    accepting: frozenset[int]
    start: int = 0
    labels: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        n = len(self.transitions)
        for q, row in enumerate(self.transitions):
            if set(row) != set(self.alphabet) or not all(0 <= r < n for r in row.values()):
                raise InputError(f"state {q}: transitions {row} must map every symbol of "
                                 f"{self.alphabet!r} to a state in 0..{n - 1}")
        if not 0 <= self.start < n or not all(0 <= q < n for q in self.accepting):
            raise InputError(f"start and accepting states must lie in 0..{n - 1}")

    @property
    def num_states(self) -> int:
        return len(self.transitions)

    def run(self, s: str) -> int:
        """The state reached after reading ``s`` from the start state."""
        q = self.start
        for a in s:
            if a not in self.alphabet:
                raise InputError(f"symbol {a!r} is not in the alphabet {self.alphabet!r}")
            q = self.transitions[q][a]
        return q

    def states(self, s: str) -> list[int]:
        """The states visited reading ``s``: ``len(s) + 1`` of them, the start state first."""
        out = [self.start]
        for a in s:
            if a not in self.alphabet:
                raise InputError(f"symbol {a!r} is not in the alphabet {self.alphabet!r}")
            out.append(self.transitions[out[-1]][a])
        return out

    def accepts(self, s: str) -> bool:
        """Whether ``s`` is in the language."""
        return self.run(s) in self.accepting

    def counts(self, max_length: int, accepted: bool = True) -> list[list[int]]:
        """``counts[l][q]``: how many strings of length ``l`` lead from ``q`` to an accepting
        (``accepted=True``) or a rejecting state."""
        table = [[int((q in self.accepting) == accepted) for q in range(self.num_states)]]
        for _ in range(max_length):
            prev = table[-1]
            table.append([sum(prev[r] for r in row.values()) for row in self.transitions])
        return table

    def sample(self, length: int, rnd: random.Random, accepted: bool = True,
               table: list[list[int]] | None = None) -> str | None:
        """A string of ``length`` drawn uniformly from the accepted (or rejected) ones;
        ``None`` if there is none. Pass ``table = counts(≥ length, accepted)`` to reuse it."""
        table = table or self.counts(length, accepted)
        q, out = self.start, []
        if table[length][q] == 0:
            return None
        for rest in range(length, 0, -1):
            pick = rnd.randrange(table[rest][q])
            for a in self.alphabet:
                r = self.transitions[q][a]
                if pick < table[rest - 1][r]:
                    out.append(a)
                    q = r
                    break
                pick -= table[rest - 1][r]
        return "".join(out)

    def enumerate(self, length: int, accepted: bool = True) -> list[str]:
        """Every accepted (or rejected) string of ``length``, in alphabet order."""
        table = self.counts(length, accepted)
        out: list[str] = []

        def walk(q: int, prefix: str, rest: int) -> None:
            if rest == 0:
                out.append(prefix)
                return
            for a in self.alphabet:
                r = self.transitions[q][a]
                if table[rest - 1][r]:
                    walk(r, prefix + a, rest - 1)

        if table[length][self.start]:
            walk(self.start, "", length)
        return out

    def reachable(self) -> set[int]:
        """The states some string leads to."""
        seen, todo = {self.start}, [self.start]
        while todo:
            for r in self.transitions[todo.pop()].values():
                if r not in seen:
                    seen.add(r)
                    todo.append(r)
        return seen

    def equivalence_classes(self) -> list[set[int]]:
        """Moore's partition refinement: the classes of states no string tells apart.

        A DFA is minimal iff every state is reachable and every class has one state.
        """
        block = {q: int(q in self.accepting) for q in range(self.num_states)}
        while True:
            keys = {q: (block[q], *(block[self.transitions[q][a]] for a in self.alphabet))
                    for q in range(self.num_states)}
            ids = {k: i for i, k in enumerate(dict.fromkeys(keys.values()))}
            new = {q: ids[keys[q]] for q in keys}
            if len(ids) == len(set(block.values())):
                break
            block = new
        classes: dict[int, set[int]] = {}
        for q, b in block.items():
            classes.setdefault(b, set()).add(q)
        return list(classes.values())

    def to_json(self) -> dict[str, Any]:
        """A plain-JSON form: ``{"alphabet", "start", "accepting", "transitions", "labels"}``."""
        return {"alphabet": self.alphabet, "start": self.start,
                "accepting": sorted(self.accepting),
                "transitions": [dict(row) for row in self.transitions],
                "labels": list(self.labels)}

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> DFA:
        try:
            return cls(alphabet=doc["alphabet"], start=int(doc["start"]),
                       accepting=frozenset(int(q) for q in doc["accepting"]),
                       transitions=tuple({str(a): int(r) for a, r in row.items()}
                                         for row in doc["transitions"]),
                       labels=tuple(doc.get("labels", ())))
        except (KeyError, TypeError, AttributeError, ValueError) as e:
            raise InputError(f"not a DFA document (alphabet, start, accepting, "
                             f"transitions): {e}") from None


# -- Tomita grammars ---------------------------------------------------------------------

def _grammar(k: Any) -> int:
    if isinstance(k, str) and k.strip().isdigit():
        k = int(k)
    if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or not 1 <= k <= 7:
        raise InputError(f"Tomita grammar must be a whole number 1..7, got {k!r}")
    return int(k)


def _binary(s: str) -> str:
    if not isinstance(s, str) or not set(s) <= set(TOMITA_ALPHABET):
        raise InputError(f"Tomita strings are made of 0 and 1 only, got {s!r}")
    return s


def _tomita3(s: str) -> bool:
    armed = False  # an odd run of 1s has ended
    for sym, run in itertools.groupby(s):
        odd = len(list(run)) % 2 == 1
        if sym == "1" and odd:
            armed = True
        elif sym == "0" and odd and armed:
            return False
    return True


_MEMBERSHIP: dict[int, Callable[[str], bool]] = {
    1: lambda s: "0" not in s,
    2: lambda s: s == "10" * (len(s) // 2),
    3: _tomita3,
    4: lambda s: "000" not in s,
    5: lambda s: s.count("0") % 2 == 0 and s.count("1") % 2 == 0,
    6: lambda s: (s.count("0") - s.count("1")) % 3 == 0,
    7: lambda s: re.fullmatch("0*1*0*1*", s) is not None,
}

# (transitions as "next state on 0, next state on 1" per state, accepting, labels)
_TOMITA_DFAS: dict[int, tuple[list[tuple[int, int]], set[int], list[str]]] = {
    1: ([(1, 0), (1, 1)], {0}, ["only 1s so far", "dead: saw a 0"]),
    2: ([(2, 1), (0, 2), (2, 2)], {0}, ["(10)* so far", "(10)*1: expects 0", "dead"]),
    3: ([(0, 1), (2, 0), (3, 4), (2, 3), (4, 4)], {0, 1, 3},
        ["no odd 1-run ended; not in an odd 1-run", "inside an odd 1-run, none ended before",
         "an odd 1-run ended; inside an odd 0-run", "an odd 1-run ended; not in an odd 0-run",
         "dead: odd 0-run after odd 1-run"]),
    4: ([(1, 0), (2, 0), (3, 0), (3, 3)], {0, 1, 2},
        ["no trailing 0", "one trailing 0", "two trailing 0s", "dead: saw 000"]),
    5: ([(1, 2), (0, 3), (3, 0), (2, 1)], {0},
        ["even 0s, even 1s", "odd 0s, even 1s", "even 0s, odd 1s", "odd 0s, odd 1s"]),
    6: ([(1, 2), (2, 0), (0, 1)], {0},
        ["#0 − #1 ≡ 0 (mod 3)", "#0 − #1 ≡ 1 (mod 3)", "#0 − #1 ≡ 2 (mod 3)"]),
    7: ([(0, 1), (2, 1), (2, 3), (4, 3), (4, 4)], {0, 1, 2, 3},
        ["in 0*", "in 0*1*", "in 0*1*0*", "in 0*1*0*1*", "dead: a second 10"]),
}


def tomita(k: int) -> Callable[[str], bool]:
    """The membership function of Tomita grammar ``k`` (1..7), written from its definition.

    Examples
    --------
    >>> tomita(2)("1010"), tomita(2)("1001")
    (True, False)
    """
    member = _MEMBERSHIP[_grammar(k)]

    def accepts(s: str) -> bool:
        return member(_binary(s))

    accepts.__name__ = f"tomita{k}"
    return accepts


def tomita_dfa(k: int) -> DFA:
    """The minimal complete DFA of Tomita grammar ``k`` (1..7); state 0 is the start.

    Examples
    --------
    >>> tomita_dfa(5).num_states, tomita_dfa(5).to_json()["transitions"][0]
    (4, {'0': 1, '1': 2})
    """
    rows, accepting, labels = _TOMITA_DFAS[_grammar(k)]
    return DFA(TOMITA_ALPHABET, tuple({"0": z, "1": o} for z, o in rows), frozenset(accepting),
               labels=tuple(labels))


# -- balanced brackets -------------------------------------------------------------------

def _pairs(pairs: str) -> str:
    if pairs not in BRACKET_PAIRS:
        raise InputError(f"bracket pairs must be one of {BRACKET_PAIRS}, got {pairs!r}")
    return pairs


def _depth(max_depth: Any) -> int:
    if not isinstance(max_depth, (int, np.integer)) or isinstance(max_depth, bool) \
            or not 1 <= max_depth <= 16:
        raise InputError(f"max_depth must be a whole number 1..16, got {max_depth!r}")
    return int(max_depth)


def balanced(s: str, max_depth: int | None = None, pairs: str = "()") -> bool:
    """Whether every bracket of ``s`` is closed by its partner, in order, nesting at most
    ``max_depth`` deep (``None``: no limit).

    Examples
    --------
    >>> balanced("(()())"), balanced("(()"), balanced("((()))", max_depth=2)
    (True, False, False)
    """
    _pairs(pairs)
    if not isinstance(s, str) or not set(s) <= set(pairs):
        raise InputError(f"bracket strings are made of {pairs!r} only, got {s!r}")
    closing = {pairs[i + 1]: pairs[i] for i in range(0, len(pairs), 2)}
    stack: list[str] = []
    for c in s:
        if c in closing:
            if not stack or stack.pop() != closing[c]:
                return False
        else:
            stack.append(c)
            if max_depth is not None and len(stack) > max_depth:
                return False
    return not stack


def brackets_dfa(max_depth: int = 4, pairs: str = "()") -> DFA:
    """The minimal DFA of balanced brackets nested at most ``max_depth`` deep.

    A state is the stack of open brackets (its label); the last state is the dead state.
    ``"()"`` gives ``max_depth + 2`` states, ``"()[]"`` gives ``2^(max_depth+1)``.

    Examples
    --------
    >>> dfa = brackets_dfa(2)
    >>> dfa.num_states, dfa.accepts("(())()"), dfa.accepts("((()))")
    (4, True, False)
    """
    max_depth, pairs = _depth(max_depth), _pairs(pairs)
    opening, closing = pairs[0::2], pairs[1::2]
    stacks = [""]
    for depth in range(max_depth):
        stacks += [s + o for s in stacks if len(s) == depth for o in opening]
    index = {s: i for i, s in enumerate(stacks)}
    dead = len(stacks)
    rows = []
    for s in stacks:
        row = {o: index.get(s + o, dead) for o in opening}
        row.update({c: index[s[:-1]] if s and s[-1] == o else dead
                    for o, c in zip(opening, closing, strict=True)})
        rows.append(row)
    rows.append({a: dead for a in pairs})
    labels = tuple(f"open: {s!r}" for s in stacks) + ("dead",)
    return DFA(pairs, tuple(rows), frozenset({0}), labels=labels)


# -- labelled data -------------------------------------------------------------------------
