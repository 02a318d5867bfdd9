"""Labelled strings of the formal languages: seeded, balanced generators with held-out lengths.

Training strings have lengths up to N; the test set holds every length up to 2N. The
languages and their minimal DFAs are in :mod:`lstmlens.datasets.formal`.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import InputError
from .formal import (
    _MEMBERSHIP,
    DFA,
    _depth,
    _grammar,
    _pairs,
    balanced,
    brackets_dfa,
    tomita_dfa,
)


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
