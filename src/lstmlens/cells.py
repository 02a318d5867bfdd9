"""Interpretable cells: per-token features and the units that track them.

Karpathy, Johnson & Fei-Fei (2015) found single LSTM cells that follow quotes, brackets and
line position. :func:`find_units` ranks every unit of the chosen series by how well its
value separates (AUC) or follows (Pearson correlation) a per-token feature; the features
here are registered by name (``FEATURES``) and any user array works as well.

Each feature says what holds *after reading* token ``t``, which is all the state at step
``t`` can know: the opening quote of a string literal is inside it, the closing one is not.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.stats import rankdata

from .errors import InputError
from .states import States

FEATURES: dict[str, Callable[[Sequence[str]], np.ndarray]] = {}


def register_feature(name: str):
    """Function decorator: a per-token feature ``tokens -> (T,) array`` known by name."""

    def deco(fn):
        FEATURES[name] = fn
        return fn

    return deco


@register_feature("inside_string")
def inside_string(tokens: Sequence[str]) -> np.ndarray:
    """1 while inside a Python string literal (quotes ``'``/``"``, triple quotes, escapes;
    ``#`` comments are not code), else 0. Tokens are characters (or pieces of text).

    Examples
    --------
    >>> inside_string(list("x = 'a#' # 'no'")).astype(int).tolist()
    [0, 0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0]
    """
    out = np.zeros(len(tokens))
    quote = ""  # the open delimiter: ', ", ''' or """; "" outside
    comment = escaped = False
    text = "".join(tokens)
    ends = np.cumsum([len(t) for t in tokens]) - 1  # last character of each token
    inside = np.zeros(len(text), dtype=bool)
    i = 0
    while i < len(text):
        ch = text[i]
        if comment:
            comment = ch != "\n"
        elif quote:
            inside[i] = True
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif text.startswith(quote, i):
                inside[i:i + len(quote)] = [True] * (len(quote) - 1) + [False]
                i += len(quote)
                quote = ""
                continue
            elif ch == "\n" and len(quote) == 1:  # an unterminated one-line string ends
                quote = ""
                inside[i] = False
        elif ch == "#":
            comment = True
        elif ch in "'\"":
            quote = ch * 3 if text.startswith(ch * 3, i) else ch
            inside[i:i + len(quote)] = True
            i += len(quote)
            continue
        i += 1
    if len(text):
        out[:] = inside[np.clip(ends, 0, None)]
    return out


@register_feature("bracket_depth")
def bracket_depth(tokens: Sequence[str], pairs: str = "()[]{}") -> np.ndarray:
    """How many brackets are open after each token (never below 0).

    Examples
    --------
    >>> bracket_depth(list("f(a[1])")).tolist()
    [0.0, 1.0, 1.0, 2.0, 2.0, 1.0, 0.0]
    """
    opening, closing = set(pairs[0::2]), set(pairs[1::2])
    depth, out = 0, np.zeros(len(tokens))
    for t, tok in enumerate(tokens):
        for ch in tok:
            if ch in opening:
                depth += 1
            elif ch in closing:
                depth = max(0, depth - 1)
        out[t] = depth
    return out


@register_feature("inside_brackets")
def inside_brackets(tokens: Sequence[str]) -> np.ndarray:
    """1 while at least one bracket is open."""
    return (bracket_depth(tokens) > 0).astype(float)


@register_feature("indentation")
def indentation(tokens: Sequence[str]) -> np.ndarray:
    """Leading spaces of the line each token is on (a tab counts 4)."""
    out = np.zeros(len(tokens))
    indent, at_start = 0, True
    for t, tok in enumerate(tokens):
        for ch in tok:
            if ch == "\n":
                indent, at_start = 0, True
            elif at_start and ch in " \t":
                indent += 4 if ch == "\t" else 1
            else:
                at_start = False
        out[t] = indent
    return out


@register_feature("position_in_line")
def position_in_line(tokens: Sequence[str]) -> np.ndarray:
    """Characters since the last newline (0 for the newline itself)."""
    out = np.zeros(len(tokens))
    pos = 0
    for t, tok in enumerate(tokens):
        for ch in tok:
            pos = 0 if ch == "\n" else pos + 1
        out[t] = pos
    return out


@register_feature("position")
def position(tokens: Sequence[str]) -> np.ndarray:
    """Index of each token in its sequence (0, 1, 2, …)."""
    return np.arange(len(tokens), dtype=float)


def lexicon_feature(tokens: Sequence[str], lexicon: dict[str, float]) -> np.ndarray:
    """The lexicon's score of each token (lower-cased), 0 where absent.

    Examples
    --------
    >>> lexicon_feature(["a", "Great", "film"], {"great": 3.1}).tolist()
    [0.0, 3.1, 0.0]
    """
    return np.array([float(lexicon.get(t.lower(), 0.0)) for t in tokens])


def vader_lexicon(data: str | None = None) -> dict[str, float]:
    """The VADER sentiment lexicon (word → mean valence in −4..4) from the pinned
    ``vaderSentiment`` sdist (downloaded once, or ``data``: the sdist file)."""
    from .datasets.fetch import fetch, read_member
    from .datasets.sentiment import LEXICON, SOURCE

    sdist = data if data is not None else fetch(SOURCE)
    lex = {}
    for line in read_member(sdist, LEXICON).decode("utf-8").splitlines():
        parts = line.split("\t")
        if len(parts) >= 2:
            try:
                lex[parts[0].lower()] = float(parts[1])
            except ValueError:
                continue
    return lex


@register_feature("sentiment")
def sentiment(tokens: Sequence[str]) -> np.ndarray:
    """VADER valence of each word (0 for words outside the lexicon)."""
    return lexicon_feature(tokens, _cached_vader())


@register_feature("sentiment_so_far")
def sentiment_so_far(tokens: Sequence[str]) -> np.ndarray:
    """Running sum of the VADER valence of the words read so far."""
    return np.cumsum(sentiment(tokens))


_VADER: dict[str, float] = {}


def _cached_vader() -> dict[str, float]:
    if not _VADER:
        _VADER.update(vader_lexicon())
    return _VADER


def feature_values(states: States, feature: str | Any) -> tuple[str, np.ndarray]:
    """A feature's name and flat ``(N,)`` values over the corpus: a registered name, a
    function ``tokens -> array``, per-sequence arrays or one flat array."""
    if isinstance(feature, str):
        if feature not in FEATURES:
            raise InputError(f"unknown feature {feature!r}; the features are "
                             f"{', '.join(sorted(FEATURES))}, or pass an array per sequence")
        fn = FEATURES[feature]
        return feature, states.check_feature([fn(t) for t in states.tokens], feature)
    if callable(feature):
        name = getattr(feature, "__name__", "feature")
        return name, states.check_feature([feature(t) for t in states.tokens], name)
    return "feature", states.check_feature(feature)


def auc_per_unit(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """ROC AUC of each column of ``x`` (N, H) as a score for the binary labels ``y`` (N,):
    the Mann–Whitney statistic with average ranks for ties."""
    pos = y > 0
    n1, n0 = int(pos.sum()), int((~pos).sum())
    if n1 == 0 or n0 == 0:
        raise InputError("the feature is constant over the corpus (all tokens in one class); "
                         "AUC needs both classes — use metric='correlation' or more text")
    ranks = rankdata(x, axis=0)  # (N, H) average ranks per unit
    return (ranks[pos].sum(0) - n1 * (n1 + 1) / 2) / (n1 * n0)


def correlation_per_unit(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pearson correlation of each column of ``x`` (N, H) with ``y`` (N,); 0 for constant
    units."""
    xc = x - x.mean(0)
    yc = y - y.mean()
    if not np.any(yc):
        raise InputError("the feature is constant over the corpus; correlation is undefined")
    denom = np.sqrt((xc ** 2).sum(0) * (yc ** 2).sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (xc * yc[:, None]).sum(0) / denom
    return np.nan_to_num(r)


@dataclass
class UnitScore:
    """One unit's score: ``key[index]``; ``sign`` −1 when the unit runs against the feature."""

    key: str
    index: int
    score: float  # AUC folded to ≥ 0.5, or |r|
    raw: float  # AUC or r as measured
    sign: int

    @property
    def name(self) -> str:
        return f"{self.key}[{self.index}]"


@dataclass
class UnitSearch:
    """Units ranked by how well they track a feature (best first)."""

    feature: str
    metric: str
    scores: list[UnitScore]
    positive_fraction: float | None  # for AUC: the share of tokens where the feature holds

    @property
    def best(self) -> UnitScore:
        return self.scores[0]

    def top(self, k: int = 10) -> list[UnitScore]:
        return self.scores[:k]

    def to_dict(self, k: int = 20) -> dict[str, Any]:
        return {"feature": self.feature, "metric": self.metric,
                "positive_fraction": self.positive_fraction,
                "units": [{"unit": s.name, "key": s.key, "index": s.index, "score": s.score,
                           "raw": s.raw, "sign": s.sign} for s in self.top(k)]}

    def to_html(self, k: int = 10) -> str:
        rows = "".join(f"<tr><td>{i + 1}</td><td>{html.escape(s.name)}</td>"
                       f"<td>{s.score:.3f}</td><td>{'+' if s.sign > 0 else '−'}</td></tr>"
                       for i, s in enumerate(self.top(k)))
        return (f"<table class='lstmlens-units'><caption>units tracking "
                f"{html.escape(self.feature)} ({html.escape(self.metric)})</caption><thead>"
                f"<tr><th>#</th><th>unit</th><th>{html.escape(self.metric)}</th><th>sign</th>"
                f"</tr></thead><tbody>{rows}</tbody></table>")

    def _repr_html_(self) -> str:
        return self.to_html()

    def __repr__(self) -> str:
        b = self.best
        return (f"<UnitSearch {self.feature}: best {b.name} {self.metric} {b.score:.3f} of "
                f"{len(self.scores)} units>")


def find_units(states: States, feature: str | Any, *, metric: str = "auc",
               series: str = "cell", keys: Sequence[str] | None = None) -> UnitSearch:
    """Rank every unit of ``series`` (all layers and directions) against a per-token feature.

    Parameters
    ----------
    states
        From :func:`lstmlens.collect_states`.
    feature
        A registered name (``inside_string``, ``bracket_depth``, ``inside_brackets``,
        ``indentation``, ``position_in_line``, ``sentiment``), a function of the tokens, or
        the values themselves (an array per sequence, or one flat array).
    metric
        ``"auc"`` (feature > 0 is the positive class; a unit scores ``max(AUC, 1 − AUC)``)
        or ``"correlation"`` (``|r|``).
    series
        Which series' units to rank (``cell`` is read as tanh(c), which leaves AUC and
        ranks unchanged); ``keys`` picks trace keys instead.

    Examples
    --------
    >>> found = find_units(states, "inside_string")  # doctest: +SKIP
    >>> found.best.name, round(found.best.score, 3)  # doctest: +SKIP
    ('lstms.0.layers.0.forward.cell[113]', 0.953)
    """
    if metric not in ("auc", "correlation"):
        raise InputError(f"metric must be 'auc' or 'correlation', got {metric!r}")
    name, y = feature_values(states, feature)
    chosen = [states.key(k) for k in keys] if keys is not None else states.keys(series)
    if not chosen:
        raise InputError(f"these states hold no {series!r} series")
    scores: list[UnitScore] = []
    for key in chosen:
        x = states.flat(key, scaled=True)  # (N, H)
        if metric == "auc":
            raw = auc_per_unit(x, y)
            folded = np.maximum(raw, 1 - raw)
            sign = np.where(raw >= 0.5, 1, -1)
        else:
            raw = correlation_per_unit(x, y)
            folded, sign = np.abs(raw), np.where(raw >= 0, 1, -1)
        scores += [UnitScore(key, int(u), float(folded[u]), float(raw[u]), int(sign[u]))
                   for u in range(x.shape[1])]
    scores.sort(key=lambda s: (-s.score, s.key, s.index))
    frac = float((y > 0).mean()) if metric == "auc" else None
    return UnitSearch(name, metric, scores, frac)


def unit_picture(states: States, found: UnitSearch, path: Any = None, *, rank: int = 0,
                 sequence: int | None = None, sequences: int = 1, max_lines: int = 14,
                 max_tokens: int = 800):
    """Text coloured by a ranked unit (times its sign, so red follows the feature); for a
    binary registered feature, the tokens where it holds are underlined. By default the
    ``sequences`` sequences where the feature varies most are shown, one after another."""
    from .heatmaps import plot_text
    if not 0 <= rank < len(found.scores):
        raise InputError(f"rank {rank} is out of range; {len(found.scores)} units were ranked")
    s = found.scores[rank]
    fn = FEATURES.get(found.feature)
    if sequence is None:
        spread = [float(np.ptp(fn(t))) if fn is not None else 0.0 for t in states.tokens]
        order = np.argsort([-(sp + min(len(t), max_tokens) / 1e5)
                            for sp, t in zip(spread, states.tokens, strict=True)],
                           kind="stable")
        if sequences > 1:
            return _pictures(states, found, s, fn, sorted(order[:sequences].tolist()), path,
                             max_lines, max_tokens)
        sequence = int(order[0])
    toks = states.tokens[sequence][:max_tokens]
    if all(t == f"t{i}" for i, t in enumerate(toks)):  # feature inputs: no text to colour
        from .heatmaps import plot_units_time
        top = found.top(8)
        vals = np.stack([states.sequence(u.key, sequence, scaled=True)[:max_tokens, u.index]
                         * u.sign for u in top], 1)  # (T, 8)
        return plot_units_time(vals, None, path, unit_names=[
            f"{u.key.rsplit('.', 2)[-2]} {u.index}" for u in top], label="value × sign",
            title=f"the {len(top)} units that best track {found.feature} ({found.metric}) "
                  f"on sequence {sequence}")
    v = states.sequence(s.key, sequence, scaled=True)[:max_tokens, s.index] * s.sign
    marks = (fn(states.tokens[sequence])[:max_tokens] > 0).astype(float) \
        if fn is not None and found.metric == "auc" else None
    title = (f"{s.name} on sequence {sequence}: {found.metric} {s.score:.3f} for "
             f"{found.feature}" + (" (underlined: feature holds)" if marks is not None else ""))
    label = ("tanh(cell)" if s.key.endswith(".cell") else s.key.rsplit(".", 1)[-1]) + \
        (" × −1" if s.sign < 0 else "")
    return plot_text(toks, v, path, title=title, marks=marks, max_lines=max_lines, label=label)


def _pictures(states: States, found: UnitSearch, s: UnitScore, fn: Any, seqs: list[int],
              path: Any, max_lines: int, max_tokens: int):
    """Several sequences, each on its own lines, coloured by one unit (blank between)."""
    from .heatmaps import plot_text
    toks: list[str] = []
    vals: list[float] = []
    marks: list[float] = []
    ends = []
    for i in seqs:
        t = states.tokens[i]
        toks += list(t)
        vals += list(states.sequence(s.key, i, scaled=True)[:, s.index] * s.sign)
        f = fn(t) if fn is not None else np.zeros(len(t))
        marks += list((f > 0).astype(float))
        ends.append(len(toks) - 1)
    binary = fn is not None and found.metric == "auc"
    title = (f"{s.name}: {found.metric} {s.score:.3f} for {found.feature}"
             + (" (underlined: feature holds)" if binary else "")
             + f"\nsequences {', '.join(map(str, seqs))} (grey lines separate them)")
    label = ("tanh(cell)" if s.key.endswith(".cell") else s.key.rsplit(".", 1)[-1]) + \
        (" × −1" if s.sign < 0 else "")
    return plot_text(toks[:max_tokens], np.array(vals[:max_tokens]), path, title=title,
                     marks=np.array(marks[:max_tokens]) if binary else None,
                     max_lines=max_lines, label=label, breaks=ends)
