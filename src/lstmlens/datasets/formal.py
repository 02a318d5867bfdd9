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
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import InputError

__all__ = ["DFA", "START", "TOMITA_ALPHABET", "FormalSplits", "LabelledStrings", "balanced",
           "brackets_data", "brackets_dfa", "tomita", "tomita_data", "tomita_dfa"]

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

@dataclass
class LabelledStrings:
    """Strings with labels (1 = in the language, 0 = not)."""

    strings: list[str]
    labels: np.ndarray

    def __post_init__(self) -> None:
        self.labels = np.asarray(self.labels, dtype=np.int64).reshape(-1)
        if len(self.labels) != len(self.strings):
            raise InputError(f"{len(self.strings)} strings but {len(self.labels)} labels")

    def __len__(self) -> int:
        return len(self.strings)

    @property
    def lengths(self) -> np.ndarray:
        return np.array([len(s) for s in self.strings], dtype=np.int64)


@dataclass
class FormalSplits:
    """Train/validation/test strings of one language, and its DFA.

    ``train`` and ``validation`` hold lengths ``0..max_length``; ``test`` holds unseen strings
    of lengths ``1..2·max_length``. No validation or test string is a training string or a
    prefix of one (so a model may learn from every prefix of its training strings), and
    validation and test never repeat a string; train repeats the strings of a class the
    language has too few of (Tomita 1 and 2) so that both classes weigh the same.
    """

    train: LabelledStrings
    validation: LabelledStrings
    test: LabelledStrings
    language: str
    alphabet: str
    max_length: int
    dfa: DFA
    info: dict[str, Any] = field(default_factory=dict)


def _whole(name: str, v: Any, least: int, most: int) -> int:
    if isinstance(v, str) and v.strip().isdigit():
        v = int(v)
    if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or not least <= v <= most:
        raise InputError(f"{name} must be a whole number {least}..{most}, got {v!r}")
    return int(v)


def _mutate(p: str, op: str, alphabet: str, rnd: random.Random) -> str:
    """One edit of ``p``: replace a symbol by another, insert one, or delete one."""
    if op == "flip":
        i = rnd.randrange(len(p))
        return p[:i] + rnd.choice(alphabet.replace(p[i], "")) + p[i + 1:]
    if op == "insert":
        i = rnd.randrange(len(p) + 1)
        return p[:i] + rnd.choice(alphabet) + p[i:]
    i = rnd.randrange(len(p))
    return p[:i] + p[i + 1:]


def _sticky(length: int, alphabet: str, rnd: random.Random, repeat: float = 0.8) -> str:
    """A random string with long runs: each symbol repeats the last with ``repeat``."""
    out = [rnd.choice(alphabet)] if length else []
    while len(out) < length:
        out.append(out[-1] if rnd.random() < repeat else
                   rnd.choice(alphabet.replace(out[-1], "")))
    return "".join(out)


def _bucket(dfa: DFA, member: Callable[[str], bool], length: int, positive: bool, want: int,
            rnd: random.Random, tables: dict[bool, list[list[int]]],
            extra: Callable[[int, random.Random], str | None] | None) -> list[str]:
    """Up to ``want`` distinct strings of ``length`` with the given label: all of them when
    the language has few; else about a third with long runs of one symbol, for negatives a
    third near the boundary (one edit away from a member, or from ``extra``: too deep, ...),
    and uniformly drawn ones for the rest."""
    avail = tables[positive][length][dfa.start]
    if avail <= 4 * want:
        strings = dfa.enumerate(length, positive)
        rnd.shuffle(strings)
        return strings[:want]
    got: dict[str, None] = {}

    def near() -> str | None:
        ops = [op for op, n in (("flip", length), ("insert", length - 1),
                                ("delete", length + 1))
               if n >= 0 and length >= 1 and tables[True][n][dfa.start]]
        op = rnd.choice(ops + ["extra"] * (extra is not None) or [None])
        if op is None:
            return None
        if op == "extra":
            return extra(length, rnd)
        n = {"flip": length, "insert": length - 1, "delete": length + 1}[op]
        return _mutate(dfa.sample(n, rnd, True, tables[True]), op, dfa.alphabet, rnd)

    sources = [lambda: _sticky(length, dfa.alphabet, rnd)] + ([] if positive else [near])
    for i, source in enumerate(sources):
        for _ in range(10 * want):
            if len(got) >= (i + 1) * want // 3:
                break
            s = source()
            if s is not None and len(s) == length and member(s) == positive:
                got[s] = None
    for _ in range(30 * want):
        if len(got) >= want:
            break
        got[dfa.sample(length, rnd, positive, tables[positive])] = None
    return list(got)


def _generate(name: str, dfa: DFA, member: Callable[[str], bool], max_length: int,
              per_length: int, test_per_length: int, seed: int,
              extra: Callable[[int, random.Random], str | None] | None = None,
              val_frac: float = 0.1, test_frac: float = 0.1) -> FormalSplits:
    rnd = random.Random(f"lstmlens-formal:{name}:{seed}")
    top = 2 * max_length
    tables = {flag: dfa.counts(top + 1, flag) for flag in (True, False)}
    pool = per_length / (1 - val_frac - test_frac)  # train strings + their val/test share

    def quota(length: int, label: int) -> int:
        """Strings wanted: a class absent at some lengths (odd lengths of Tomita 5,
        brackets) gets more at the others, so that each range stays balanced."""
        lo, hi, base = (0, max_length, pool) if length <= max_length else \
            (max_length + 1, top, test_per_length)
        present = sum(tables[bool(label)][n][dfa.start] > 0 for n in range(lo, hi + 1))
        return int(np.ceil(base * (hi - lo + 1) / max(present, 1)))

    parts: dict[str, list[tuple[str, int]]] = {"train": [], "validation": [], "test": []}
    for length in range(top + 1):
        few = sum(tables[f][length][dfa.start] for f in (True, False)) <= 16
        for label in (1, 0):
            strings = _bucket(dfa, member, length, bool(label), quota(length, label), rnd,
                              tables, extra)
            if length > max_length:
                parts["test"] += [(s, label) for s in strings]
                continue
            n_val = n_test = 0
            if not few:  # all strings of the shortest lengths train the model
                n_val = int(val_frac * len(strings) + rnd.random())
                n_test = int(test_frac * len(strings) + rnd.random())
            parts["validation"] += [(s, label) for s in strings[:n_val]]
            parts["test"] += [(s, label) for s in strings[n_val:n_val + n_test]]
            parts["train"] += [(s, label) for s in strings[n_val + n_test:]]
    for rows in parts.values():  # labels come from the membership function, not the DFA
        bad = [s for s, y in rows if member(s) != bool(y)]
        if bad:  # cannot happen while the tests pass; never hand out wrong labels
            raise RuntimeError(f"internal error: the {name} DFA and membership function "
                               f"disagree on {bad[:3]}")
    # a model may be trained on every prefix of its strings: keep those out of val/test too
    seen = {s[:i] for s, _ in parts["train"] for i in range(len(s) + 1)}
    for split in ("validation", "test"):
        parts[split] = [(s, y) for s, y in parts[split] if s not in seen]
    train = parts["train"]
    by_class = {y: [r for r in train if r[1] == y] for y in (0, 1)}
    small, large = sorted(by_class.values(), key=len)
    if small and len(small) < len(large):  # repeat the rarer class's strings in train only
        train = large + [small[i % len(small)] for i in range(len(large))]
    rnd.shuffle(train)
    parts["train"] = train

    def labelled(rows: list[tuple[str, int]]) -> LabelledStrings:
        return LabelledStrings([s for s, _ in rows], np.array([y for _, y in rows], np.int64))

    splits = {k: labelled(v) for k, v in parts.items()}
    info = {"per_length": per_length, "test_per_length": test_per_length, "seed": seed,
            "sizes": {k: {"positive": int(v.labels.sum()), "negative": int((v.labels == 0).sum()),
                          "distinct": len(set(v.strings))} for k, v in splits.items()}}
    return FormalSplits(splits["train"], splits["validation"], splits["test"], language=name,
                        alphabet=dfa.alphabet, max_length=max_length, dfa=dfa, info=info)


def tomita_data(grammar: int, *, max_length: int = 20, per_length: int = 100,
                test_per_length: int = 50, seed: int = 0) -> FormalSplits:
    """Labelled strings of Tomita grammar ``grammar`` (1..7), balanced per length.

    For each length and class: every string when the language has few (Tomita 1 and 2);
    otherwise about a third with long runs of one symbol, for negatives a third one edit
    (replace, insert, delete) away from a member, and the rest drawn uniformly from the
    DFA's strings of that length and class. All strings of lengths 0..4 are in train.

    Parameters
    ----------
    grammar
        1..7.
    max_length
        ``N``: train and validation strings have lengths ``0..N``; the test set also holds
        every length ``N+1..2N``.
    per_length
        Training strings per class and length (fewer where the language has fewer).
    test_per_length
        Test strings per class for each length ``N+1..2N``.
    seed
        The same seed gives the same strings.

    Examples
    --------
    >>> data = tomita_data(4, max_length=10, per_length=20, test_per_length=10)
    >>> int(data.test.lengths.max()), data.dfa.num_states
    (20, 4)
    """
    k = _grammar(grammar)
    max_length = _whole("max_length", max_length, 2, 64)
    per_length = _whole("per_length", per_length, 1, 100_000)
    test_per_length = _whole("test_per_length", test_per_length, 1, 100_000)
    return _generate(f"tomita{k}", tomita_dfa(k), _MEMBERSHIP[k], max_length, per_length,
                     test_per_length, seed)


def _too_deep(max_depth: int, pairs: str, top: int) -> Callable[[int, random.Random], str | None]:
    """A sampler of balanced strings nested deeper than ``max_depth`` (uniform in shape)."""
    cap = top // 2 + 1
    rows = []  # state 2h + r: height h, r = whether the height ever passed max_depth
    for h in range(cap + 1):
        for r in (0, 1):
            up = 2 * (h + 1) + (r or h + 1 > max_depth) if h < cap else 2 * cap + 2
            down = 2 * (h - 1) + r if h else 2 * cap + 2
            rows.append({"(": up, ")": down})
    rows.append({"(": 2 * cap + 2, ")": 2 * cap + 2})
    shapes = DFA("()", tuple(rows), frozenset({1}))
    table = shapes.counts(top + 1)
    opening, closing = pairs[0::2], pairs[1::2]

    def sample(length: int, rnd: random.Random) -> str | None:
        shape = shapes.sample(length, rnd, True, table)
        if shape is None:
            return None
        out, stack = [], []
        for c in shape:  # give every matched pair a random bracket type
            if c == "(":
                stack.append(rnd.randrange(len(opening)))
                out.append(opening[stack[-1]])
            else:
                out.append(closing[stack.pop()])
        return "".join(out)

    return sample


def brackets_data(*, max_length: int = 24, max_depth: int = 4, pairs: str = "()",
                  per_length: int = 100, test_per_length: int = 50,
                  seed: int = 0) -> FormalSplits:
    """Labelled bracket strings: balanced and at most ``max_depth`` deep, or not.

    Negatives mix strings one edit away from a member, balanced strings nested too deep,
    strings with long runs, and uniform non-members. ``max_depth`` is 1..16 (``"()[]"``
    has ``2^(max_depth+1)`` DFA states). Other parameters as in :func:`tomita_data`.

    Examples
    --------
    >>> data = brackets_data(max_length=8, max_depth=3, per_length=10, test_per_length=5)
    >>> data.alphabet, int(data.test.lengths.max())
    ('()', 16)
    """
    pairs, max_depth = _pairs(pairs), _depth(max_depth)
    max_length = _whole("max_length", max_length, 2, 64)
    per_length = _whole("per_length", per_length, 1, 100_000)
    test_per_length = _whole("test_per_length", test_per_length, 1, 100_000)

    def member(s: str) -> bool:
        return balanced(s, max_depth, pairs)

    return _generate(f"brackets{pairs}-depth{max_depth}", brackets_dfa(max_depth, pairs), member,
                     max_length, per_length, test_per_length, seed,
                     extra=_too_deep(max_depth, pairs, 2 * max_length))
