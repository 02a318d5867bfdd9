"""Hypothesis matching with LSTMVis's semantics (Strobelt et al. 2017).

A person selects a span of one text and a threshold ℓ (0.3 by default, on tanh-scaled
states). The selected cells are those ≥ ℓ at every step of the span (optionally also < ℓ
just before and/or just after it). A match is a maximal run of steps in a corpus sequence
where (at least ``min_overlap``, by default all) selected cells are on at every step. Each
run is scored by the cells on throughout it, ``A``: matches are ranked by the largest
overlap ``|A ∩ C|`` with the selection ``C``, then the smallest union ``|A ∪ C|`` (fewest
other cells also on: the most specific phrase), then the longest phrase; the top 50 are
kept.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import InputError
from .states import States

THRESHOLD = 0.3
TOP = 50


@dataclass
class Match:
    """One phrase ``tokens[start:end]`` of corpus sequence ``sequence``."""

    sequence: int
    start: int
    end: int  # exclusive
    overlap: int  # selected cells on throughout the phrase
    union: int  # |cells on throughout ∪ selected cells|
    text: str = ""

    @property
    def length(self) -> int:
        return self.end - self.start

    def rank_key(self) -> tuple[int, int, int, int, int]:
        return (-self.overlap, self.union, -self.length, self.sequence, self.start)


@dataclass
class Hypothesis:
    """A selection (cells on over a span) and the phrases of a corpus that match it."""

    key: str
    span: tuple[int, int]
    threshold: float
    cells: list[int]
    matches: list[Match] = field(default_factory=list)
    selected_text: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "span": list(self.span), "threshold": self.threshold,
                "selected_text": self.selected_text, "cells": self.cells,
                "matches": [{"sequence": m.sequence, "start": m.start, "end": m.end,
                             "overlap": m.overlap, "union": m.union, "length": m.length,
                             "text": m.text} for m in self.matches]}

    def to_html(self) -> str:
        rows = "".join(
            f"<tr><td>{m.sequence}</td><td>{m.start}:{m.end}</td><td>{m.overlap}</td>"
            f"<td>{m.union}</td><td><code>{html.escape(m.text)}</code></td></tr>"
            for m in self.matches)
        return (f"<div class='lstmlens-hypothesis'><p>{len(self.cells)} cells of "
                f"{html.escape(self.key)} ≥ {self.threshold} over "
                f"<code>{html.escape(self.selected_text)}</code>: {self.cells}</p>"
                "<table><thead><tr><th>sequence</th><th>span</th><th>overlap</th><th>union</th>"
                f"<th>phrase</th></tr></thead><tbody>{rows}</tbody></table></div>")

    def _repr_html_(self) -> str:
        return self.to_html()


def parse_span(spec: str) -> tuple[int, int]:
    """``"a:b"`` → ``(a, b)``, the half-open token range ``[a, b)``."""
    a, sep, b = str(spec).partition(":")
    try:
        if not sep:
            raise ValueError
        return int(a), int(b)
    except ValueError:
        raise InputError(f"span must be a:b (two whole numbers, b exclusive), got {spec!r}"
                         ) from None


def select_cells(values: np.ndarray, span: tuple[int, int], threshold: float = THRESHOLD, *,
                 off_before: bool = False, off_after: bool = False) -> list[int]:
    """Cells ≥ ``threshold`` at every step of ``span`` of one sequence ``values`` (T, H),
    optionally < ``threshold`` at the step just before / just after the span.

    Examples
    --------
    >>> v = np.array([[0.0, 0.5], [0.6, 0.7], [0.5, 0.8], [0.0, 0.9]])
    >>> select_cells(v, (1, 3)), select_cells(v, (1, 3), off_after=True)
    ([0, 1], [0])
    """
    v = np.asarray(values)
    T = v.shape[0]
    a, b = span
    if not 0 <= a < b <= T:
        raise InputError(f"span {a}:{b} is outside the text, which has {T} tokens; give "
                         f"0 ≤ a < b ≤ {T}")
    on = (v[a:b] >= threshold).all(0)  # (H,)
    if off_before and a > 0:
        on &= v[a - 1] < threshold
    if off_after and b < T:
        on &= v[b] < threshold
    return np.flatnonzero(on).tolist()


def _runs(flags: np.ndarray) -> list[tuple[int, int]]:
    """Maximal runs ``[s, e)`` of True in a 1-D boolean array."""
    d = np.diff(np.concatenate([[0], flags.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(d == 1).tolist(), np.flatnonzero(d == -1).tolist(),
                    strict=True))


def find_matches(states: States, cells: list[int], *, key: str | None = None,
                 threshold: float = THRESHOLD, min_overlap: int | None = None,
                 min_length: int = 1, top: int = TOP) -> list[Match]:
    """The phrases of the corpus where the selected ``cells`` are on, ranked as LSTMVis
    ranks them (overlap ↓, union ↑, length ↓; then corpus order)."""
    if not cells:
        raise InputError("no cells are selected (none is ≥ the threshold over the whole span); "
                         "lower the threshold or choose a shorter span")
    k = states.key(key)
    H = states.units(k)
    bad = [c for c in cells if not 0 <= c < H]
    if bad:
        raise InputError(f"cell(s) {bad} out of range; {k} has {H} units (0..{H - 1})")
    need = len(cells) if min_overlap is None else min_overlap
    if not 1 <= need <= len(cells):
        raise InputError(f"min_overlap must be 1..{len(cells)} (the number of selected "
                         f"cells), got {min_overlap}")
    C = np.zeros(H, dtype=bool)
    C[cells] = True
    found: list[Match] = []
    for i in range(len(states.tokens)):
        on = states.sequence(k, i, scaled=True) >= threshold  # (T, H)
        for s, e in _runs(on[:, C].sum(1) >= need):
            if e - s < min_length:
                continue
            A = on[s:e].all(0)  # (H,) cells on throughout the phrase
            found.append(Match(i, s, e, int((A & C).sum()), int((A | C).sum()),
                               "".join(states.tokens[i][s:e]) if _chars(states)
                               else " ".join(states.tokens[i][s:e])))
    found.sort(key=Match.rank_key)
    return found[:top]


def _chars(states: States) -> bool:
    return all(len(t) <= 1 for t in states.tokens[0][:50])


def match_hypothesis(states: States, sequence: int, span: tuple[int, int], *,
                     key: str | None = None, threshold: float = THRESHOLD,
                     off_before: bool = False, off_after: bool = False,
                     min_overlap: int | None = None, min_length: int = 1, top: int = TOP
                     ) -> Hypothesis:
    """Select the cells on over ``span`` of corpus sequence ``sequence`` and find where the
    same cells switch on across the corpus.

    Examples
    --------
    >>> st = collect_states(model, [query, *corpus], series=["cell"])  # doctest: +SKIP
    >>> hyp = match_hypothesis(st, 0, (5, 12), threshold=0.3)  # doctest: +SKIP
    >>> hyp.cells, hyp.matches[0].text  # doctest: +SKIP
    """
    k = states.key(key)
    v = states.sequence(k, sequence, scaled=True)
    cells = select_cells(v, span, threshold, off_before=off_before, off_after=off_after)
    toks = states.tokens[sequence][span[0]:span[1]]
    hyp = Hypothesis(k, tuple(span), threshold, cells,
                     selected_text="".join(toks) if _chars(states) else " ".join(toks))
    if cells:
        hyp.matches = find_matches(states, cells, key=k, threshold=threshold,
                                   min_overlap=min_overlap, min_length=min_length, top=top)
    return hyp
