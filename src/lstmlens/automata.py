"""``Automaton``: the DFA that automaton extraction returns, with minimisation, equivalence
checks and drawings.

:class:`Automaton` extends the ground-truth :class:`lstmlens.datasets.formal.DFA` (same
fields, same JSON) with what a reader of an extracted automaton needs: Hopcroft
minimisation, exact language equivalence through the product automaton (with the shortest
word that tells two automata apart), agreement counts up to a length, Graphviz DOT, an SVG
drawing (Graphviz when ``dot`` is installed, else a layered layout of its own) and
``_repr_html_`` for notebooks.
"""

from __future__ import annotations

import html
import math
import shutil
import subprocess
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .datasets.formal import DFA
from .errors import InputError

__all__ = ["Automaton", "disagreement_count", "shortest_difference"]


@dataclass(frozen=True)
class Automaton(DFA):
    """A complete DFA over one-character symbols, states ``0..n-1``.

    Examples
    --------
    >>> a = Automaton.from_table("01", [(1, 0), (1, 1)], accepting=[0])  # Tomita 1: 1*
    >>> a.accepts("111"), a.accepts("101"), a.n_states
    (True, False, 2)
    >>> a.equivalent(a.minimise())
    True
    """

    @classmethod
    def from_table(cls, alphabet: str, rows: Iterable[Iterable[int]], accepting: Iterable[int],
                   start: int = 0, labels: Iterable[str] = ()) -> Automaton:
        """Build from ``rows[q][i]`` = the state reached from ``q`` on ``alphabet[i]``."""
        table = tuple({a: int(r) for a, r in zip(alphabet, row, strict=True)} for row in rows)
        return cls(alphabet, table, frozenset(int(q) for q in accepting), int(start),
                   tuple(labels))

    @classmethod
    def of(cls, dfa: DFA) -> Automaton:
        """The same DFA as an :class:`Automaton`."""
        if isinstance(dfa, Automaton):
            return dfa
        if not isinstance(dfa, DFA):
            raise InputError(f"expected a DFA, got {type(dfa).__name__}")
        return cls(dfa.alphabet, dfa.transitions, dfa.accepting, dfa.start, dfa.labels)

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Automaton:
        return cls.of(DFA.from_json(doc))

    @property
    def n_states(self) -> int:
        """The number of states (the dead state included)."""
        return len(self.transitions)

    # -- minimisation ------------------------------------------------------------------
    def trim(self) -> Automaton:
        """The same language with only reachable states, renumbered in breadth-first order."""
        order, index = [self.start], {self.start: 0}
        for q in order:  # order grows while we walk it: a BFS
            for a in self.alphabet:
                r = self.transitions[q][a]
                if r not in index:
                    index[r] = len(order)
                    order.append(r)
        rows = tuple({a: index[self.transitions[q][a]] for a in self.alphabet} for q in order)
        labels = tuple(self.labels[q] for q in order) if len(self.labels) == self.n_states \
            else ()
        return Automaton(self.alphabet, rows, frozenset(index[q] for q in order
                                                        if q in self.accepting), 0, labels)

    def minimise(self) -> Automaton:
        """The minimal DFA of the same language (Hopcroft's partition refinement).

        Unreachable states are dropped first; states are renumbered in breadth-first order
        from the start, so two minimal DFAs of one language come out identical.
        """
        dfa = self.trim()
        n, sigma = dfa.n_states, dfa.alphabet
        inverse = {a: [[] for _ in range(n)] for a in sigma}  # inverse[a][r]: q with δ(q,a)=r
        for q, row in enumerate(dfa.transitions):
            for a, r in row.items():
                inverse[a][r].append(q)
        acc = set(dfa.accepting)
        blocks = [b for b in (acc, set(range(n)) - acc) if b]
        block_of = [0] * n
        for i, b in enumerate(blocks):
            for q in b:
                block_of[q] = i
        # Hopcroft: the smaller of the two initial blocks suffices as the first splitter
        work = deque((min(range(len(blocks)), key=lambda i: len(blocks[i])), a) for a in sigma)
        queued = set(work)
        while work:
            splitter, a = work.popleft()
            queued.discard((splitter, a))
            pre = {q for r in blocks[splitter] for q in inverse[a][r]}  # X = δ⁻¹(splitter, a)
            touched: dict[int, set[int]] = {}
            for q in pre:
                touched.setdefault(block_of[q], set()).add(q)
            for i, inside in touched.items():
                if len(inside) == len(blocks[i]):
                    continue
                outside = blocks[i] - inside
                blocks[i] = inside
                j = len(blocks)
                blocks.append(outside)
                for q in outside:
                    block_of[q] = j
                for b in sigma:
                    if (i, b) in queued:
                        work.append((j, b))
                        queued.add((j, b))
                    else:  # enough to queue the smaller half
                        k = i if len(inside) <= len(outside) else j
                        work.append((k, b))
                        queued.add((k, b))
        rows = [{a: block_of[dfa.transitions[next(iter(b))][a]] for a in sigma} for b in blocks]
        merged = Automaton(sigma, tuple(rows),
                           frozenset(i for i, b in enumerate(blocks) if next(iter(b)) in acc),
                           block_of[dfa.start])
        return merged.trim()

    def is_minimal(self) -> bool:
        return self.minimise().n_states == self.n_states

    # -- comparison --------------------------------------------------------------------
    def _check_alphabet(self, other: DFA) -> None:
        if set(other.alphabet) != set(self.alphabet):
            raise InputError(f"cannot compare automata over different alphabets "
                             f"{self.alphabet!r} and {other.alphabet!r}")

    def difference(self, other: DFA) -> str | None:
        """The shortest word (first in alphabet order) accepted by exactly one of the two;
        ``None`` when they accept the same language."""
        self._check_alphabet(other)
        return shortest_difference(self, other)

    def equivalent(self, other: DFA) -> bool:
        """Whether both accept exactly the same words, of every length."""
        return self.difference(other) is None

    def agreement(self, other: DFA, max_length: int) -> float:
        """The fraction of all words of length ``0..max_length`` on which both agree."""
        self._check_alphabet(other)
        total = sum(len(self.alphabet) ** n for n in range(max_length + 1))
        return 1.0 - disagreement_count(self, other, max_length) / total

    # -- drawing -----------------------------------------------------------------------
    def _edges(self) -> dict[tuple[int, int], str]:
        """Transitions grouped by (from, to), their symbols joined by commas."""
        edges: dict[tuple[int, int], list[str]] = {}
        for q, row in enumerate(self.transitions):
            for a in self.alphabet:
                edges.setdefault((q, row[a]), []).append(a)
        return {k: ",".join(v) for k, v in edges.items()}

    def _label(self, q: int) -> str:
        return self.labels[q] if len(self.labels) == self.n_states and self.labels[q] else \
            f"q{q}"

    def to_dot(self, name: str = "automaton") -> str:
        """Graphviz DOT: double circles accept, an arrow from nowhere marks the start."""
        def quote(s: str) -> str:
            return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'

        lines = [f"digraph {quote(name)} {{", "  rankdir=LR;", '  node [shape=circle];',
                 '  __start [shape=point, label=""];', f"  __start -> {self.start};"]
        for q in range(self.n_states):
            shape = "doublecircle" if q in self.accepting else "circle"
            lines.append(f"  {q} [shape={shape}, label={quote(self._label(q))}];")
        for (q, r), symbols in self._edges().items():
            lines.append(f"  {q} -> {r} [label={quote(symbols)}];")
        lines.append("}")
        return "\n".join(lines) + "\n"

    def to_svg(self, engine: str = "auto") -> str:
        """An SVG drawing: Graphviz ``dot`` (``engine="graphviz"``, or ``"auto"`` when it is
        installed) or lstmlens's own layered layout (``"own"``)."""
        if engine not in ("auto", "graphviz", "own"):
            raise InputError(f"engine must be 'auto', 'graphviz' or 'own', got {engine!r}")
        dot = shutil.which("dot") if engine != "own" else None
        if engine == "graphviz" and dot is None:
            raise InputError("Graphviz `dot` is not installed; use engine='own' or 'auto'")
        if dot is not None:
            try:
                done = subprocess.run([dot, "-Tsvg"], input=self.to_dot(), text=True,
                                      capture_output=True, timeout=30, check=True)
                svg = done.stdout
                return svg[svg.index("<svg"):] if "<svg" in svg else svg
            except (OSError, subprocess.SubprocessError):
                if engine == "graphviz":
                    raise
        return _own_svg(self)

    def _repr_html_(self) -> str:
        return (f"<div><b>Automaton</b>: {self.n_states} states, alphabet "
                f"{html.escape(repr(self.alphabet))}, {len(self.accepting)} accepting"
                f"{self.to_svg()}</div>")


def _product_step(a: DFA, b: DFA, pair: tuple[int, int], s: str) -> tuple[int, int]:
    return a.transitions[pair[0]][s], b.transitions[pair[1]][s]


def shortest_difference(a: DFA, b: DFA) -> str | None:
    """The shortest word on which ``a`` and ``b`` disagree (BFS over the product
    automaton, symbols in ``a``'s alphabet order); ``None`` if none exists."""
    start = (a.start, b.start)
    parent: dict[tuple[int, int], tuple[tuple[int, int], str] | None] = {start: None}
    todo = deque([start])
    while todo:
        pair = todo.popleft()
        if (pair[0] in a.accepting) != (pair[1] in b.accepting):
            word = []
            while parent[pair] is not None:
                pair, s = parent[pair]
                word.append(s)
            return "".join(reversed(word))
        for s in a.alphabet:
            nxt = _product_step(a, b, pair, s)
            if nxt not in parent:
                parent[nxt] = (pair, s)
                todo.append(nxt)
    return None


def disagreement_count(a: DFA, b: DFA, max_length: int) -> int:
    """How many words of length ``0..max_length`` exactly one of ``a`` and ``b`` accepts
    (dynamic programming over the product automaton, no enumeration)."""
    counts = {(a.start, b.start): 1}
    total = 0
    for n in range(max_length + 1):
        total += sum(c for (p, q), c in counts.items()
                     if (p in a.accepting) != (q in b.accepting))
        if n == max_length:
            break
        nxt: dict[tuple[int, int], int] = {}
        for pair, c in counts.items():
            for s in a.alphabet:
                r = _product_step(a, b, pair, s)
                nxt[r] = nxt.get(r, 0) + c
        counts = nxt
    return total


# -- own SVG layout ------------------------------------------------------------------------

_R, _DX, _DY, _PAD = 22, 120, 80, 40


def _own_svg(dfa: Automaton) -> str:
    """States in columns by breadth-first depth from the start; edges as quadratic curves
    (bent to one side so that opposite edges do not overlap), self-loops as arcs on top."""
    depth = {dfa.start: 0}
    order = [dfa.start]
    for q in order:
        for a in dfa.alphabet:
            r = dfa.transitions[q][a]
            if r not in depth:
                depth[r] = depth[q] + 1
                order.append(r)
    for q in range(dfa.n_states):  # unreachable states: one column after the last
        if q not in depth:
            depth[q] = max(depth.values()) + 1
            order.append(q)
    columns: dict[int, list[int]] = {}
    for q in order:
        columns.setdefault(depth[q], []).append(q)
    tallest = max(len(c) for c in columns.values())
    pos = {}
    for d, qs in columns.items():
        top = (tallest - len(qs)) * _DY / 2
        for i, q in enumerate(qs):
            pos[q] = (_PAD + 30 + d * _DX + _R, _PAD + top + i * _DY + _R)
    width = _PAD * 2 + 30 + (len(columns) - 1) * _DX + 2 * _R
    height = _PAD * 2 + (tallest - 1) * _DY + 2 * _R
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" '
             f'height="{height:.0f}" viewBox="0 0 {width:.0f} {height:.0f}" '
             'font-family="sans-serif" font-size="12">',
             '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
             'markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z"/></marker></defs>']
    sx, sy = pos[dfa.start]
    parts.append(f'<line x1="{sx - _R - 28:.1f}" y1="{sy:.1f}" x2="{sx - _R:.1f}" '
                 f'y2="{sy:.1f}" stroke="black" marker-end="url(#arrow)"/>')
    for (q, r), symbols in dfa._edges().items():
        label = html.escape(symbols)
        x1, y1 = pos[q]
        if q == r:
            parts.append(f'<path d="M{x1 - 10:.1f},{y1 - _R + 3:.1f} C{x1 - 25:.1f},'
                         f'{y1 - _R - 30:.1f} {x1 + 25:.1f},{y1 - _R - 30:.1f} '
                         f'{x1 + 10:.1f},{y1 - _R + 3:.1f}" fill="none" stroke="black" '
                         'marker-end="url(#arrow)"/>')
            parts.append(f'<text x="{x1:.1f}" y="{y1 - _R - 26:.1f}" '
                         f'text-anchor="middle">{label}</text>')
            continue
        x2, y2 = pos[r]
        dx, dy = x2 - x1, y2 - y1
        dist = math.hypot(dx, dy)
        nx, ny = -dy / dist, dx / dist  # left normal: the edge back bends the other way
        bend = 18 + 0.08 * dist
        cx, cy = (x1 + x2) / 2 + nx * bend, (y1 + y2) / 2 + ny * bend
        # start and end on the circles, pointing towards the control point
        a1 = math.atan2(cy - y1, cx - x1)
        a2 = math.atan2(cy - y2, cx - x2)
        px, py = x1 + _R * math.cos(a1), y1 + _R * math.sin(a1)
        ex, ey = x2 + _R * math.cos(a2), y2 + _R * math.sin(a2)
        parts.append(f'<path d="M{px:.1f},{py:.1f} Q{cx:.1f},{cy:.1f} {ex:.1f},{ey:.1f}" '
                     'fill="none" stroke="black" marker-end="url(#arrow)"/>')
        mx, my = (px + 2 * cx + ex) / 4, (py + 2 * cy + ey) / 4  # the curve's midpoint
        parts.append(f'<text x="{mx + nx * 8:.1f}" y="{my + ny * 8 + 4:.1f}" '
                     f'text-anchor="middle">{label}</text>')
    for q, (x, y) in pos.items():
        fill = "#e8f3e8" if q in dfa.accepting else "#f6f6f6"
        parts.append(f'<g><title>{html.escape(dfa._label(q))}</title>'
                     f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{_R}" fill="{fill}" '
                     'stroke="black"/>')
        if q in dfa.accepting:
            parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{_R - 4}" fill="none" '
                         'stroke="black"/>')
        parts.append(f'<text x="{x:.1f}" y="{y + 4:.1f}" text-anchor="middle">q{q}</text></g>')
    parts.append("</svg>")
    return "\n".join(parts)
