"""Queries over a corpus store: hypothesis matching, top contexts, saturation.

Hypothesis matching follows LSTMVis (Strobelt et al.): select the units that stay above a
threshold over a span of interest (:func:`select_units`), then find every span of the corpus
where those units are on together (:func:`match`). Matches are maximal runs inside one
document, ranked by the fraction of the selected units on (mean over the span), then by how
close their length is to the query's, then by position. Reading the selected units from the
store's unit-major index (``by_unit/``) touches only those units, so a query over millions
of steps reads a few MB and runs vectorised in numpy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import InputError


def _check_key(store, key: str) -> None:
    if key not in store.series_keys:
        import difflib
        close = difflib.get_close_matches(key, store.series_keys, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise InputError(f"no series {key!r} in this store{hint} (see store.keys())")


def _units(store, key: str, units: Any) -> np.ndarray:
    _check_key(store, key)
    u = np.atleast_1d(np.asarray(units))
    U = store.units[key]
    if u.size == 0 or u.dtype.kind not in "iu" or u.ndim != 1:
        raise InputError(f"units must be one or more unit numbers, got {units!r}")
    if int(u.min()) < 0 or int(u.max()) >= U:
        raise InputError(f"units must lie in 0..{U - 1} ({key} has {U} units), got "
                         f"{u.tolist()}")
    return np.unique(u.astype(np.int64))


def unit_values(store, key: str, units: Any) -> np.ndarray:
    """``[len(units), N]`` values of some units over the whole store (float32)."""
    _check_key(store, key)
    u = _units(store, key, units)
    index = store.by_unit(key)
    if index is not None:
        out = np.empty((len(u), store.n_tokens), np.float32)
        for i, unit in enumerate(u.tolist()):  # row by row: one inner chunk per shard each
            out[i] = index[unit, :]
        return out
    arr = store[key]  # token-major: read chunk by chunk, keep the selected columns
    out = np.empty((len(u), store.n_tokens), np.float32)
    K = store.chunk_tokens
    for a in range(0, store.n_tokens, K):
        out[:, a:a + K] = np.asarray(arr[a:a + K], np.float32)[:, u].T
    return out


def select_units(store, key: str, start: int, end: int, threshold: float = 0.0
                 ) -> np.ndarray:
    """Units of ``key`` above ``threshold`` at every step of ``[start, end)`` (LSTMVis select).

    Examples
    --------
    >>> store.select("lstms.0.layers.1.forward.cell", 120, 126, 0.3)  # doctest: +SKIP
    array([  3,  17, 101])
    """
    _check_key(store, key)
    if not (0 <= start < end <= store.n_tokens):
        raise InputError(f"span [{start}, {end}) must lie inside 0..{store.n_tokens} and be "
                         "non-empty")
    vals = np.asarray(store[key][start:end], np.float32)  # (span, U)
    return np.flatnonzero((vals > threshold).all(0))


@dataclass
class Matches:
    """Spans where the selected units are on; arrays sorted best first."""

    start: np.ndarray  # (M,) first step
    end: np.ndarray  # (M,) one past the last step
    document: np.ndarray  # (M,)
    score: np.ndarray  # (M,) mean fraction of the selected units on
    total: int  # matches before ``top`` was applied
    units: np.ndarray
    threshold: float

    def __len__(self) -> int:
        return len(self.start)

    def to_list(self, store=None, context: int = 0) -> list[dict[str, Any]]:
        out = []
        for i in range(len(self)):
            item = {"start": int(self.start[i]), "end": int(self.end[i]),
                    "document": int(self.document[i]), "score": float(self.score[i])}
            if store is not None:
                a, b = int(self.start[i]), int(self.end[i])
                ids = np.asarray(store["tokens"][max(0, a - context):b + context])
                item["tokens"] = store.token_strings(ids)
            out.append(item)
        return out


def match(store, key: str, units: Any, threshold: float = 0.0, *, min_units: int | None = None,
          min_length: int = 1, max_length: int | None = None, length: int | None = None,
          top: int | None = 100) -> Matches:
    """Every span where at least ``min_units`` of ``units`` exceed ``threshold`` together.

    Parameters
    ----------
    units
        The hypothesis: unit numbers of series ``key`` (e.g. from :func:`select_units`).
    min_units
        How many of them must be on at a step (default all).
    min_length, max_length
        Accepted span lengths in steps.
    length
        The query span's length; ties in score are ranked by closeness to it.
    top
        Keep the best ``top`` matches (``None``: all).
    """
    u = _units(store, key, units)
    k = len(u)
    need = k if min_units is None else int(min_units)
    if not 1 <= need <= k:
        raise InputError(f"min_units must lie in 1..{k}, got {min_units!r}")
    if min_length < 1 or (max_length is not None and max_length < min_length):
        raise InputError("need 1 ≤ min_length ≤ max_length")
    vals = unit_values(store, key, u)  # (k, N)
    count = (vals > threshold).sum(0, dtype=np.int32)  # (N,) selected units on per step
    on = (count >= need) & store.valid_steps()  # (N,)
    N = len(on)
    first = np.zeros(N, bool)  # steps that open a document
    first[store.doc_starts[:-1]] = True
    prev_on = np.concatenate([[False], on[:-1]])
    next_on = np.concatenate([on[1:], [False]])
    next_first = np.concatenate([first[1:], [True]])
    starts = np.flatnonzero(on & (~prev_on | first))
    ends = np.flatnonzero(on & (~next_on | next_first)) + 1
    lens = ends - starts
    keep = lens >= min_length
    if max_length is not None:
        keep &= lens <= max_length
    starts, ends, lens = starts[keep], ends[keep], lens[keep]
    csum = np.concatenate([[0], np.cumsum(count, dtype=np.int64)])
    score = (csum[ends] - csum[starts]) / (lens * k)
    closeness = np.abs(lens - (length if length is not None else 0))
    order = np.lexsort((starts, closeness, -score))
    if top is not None:
        order = order[:top]
    starts, ends = starts[order], ends[order]
    return Matches(starts, ends, store.document_of(starts), score[order], int(keep.sum()),
                   u, float(threshold))


def top_contexts(store, key: str, unit: int, k: int = 10, window: int = 5
                 ) -> list[dict[str, Any]]:
    """The ``k`` steps where ``unit`` of ``key`` is highest, each with ``window`` tokens of
    its document on either side.

    Examples
    --------
    >>> store.top_contexts("lstms.0.layers.0.forward.cell", unit=7, k=3)  # doctest: +SKIP
    [{'step': 812, 'document': 40, 'value': 2.98, 'tokens': [...], 'at': 5}, ...]
    """
    if k < 1:
        raise InputError(f"k must be ≥ 1, got {k}")
    vals = unit_values(store, key, [unit])[0]  # (N,)
    vals[~store.valid_steps()] = -np.inf
    k = min(k, len(vals))
    best = np.argpartition(-vals, k - 1)[:k]
    best = best[np.lexsort((best, -vals[best]))]
    out = []
    for t in best.tolist():
        if not np.isfinite(vals[t]):
            break
        d = int(store.document_of(t))
        s, e = int(store.doc_starts[d]), int(store.doc_starts[d + 1])
        a, b = max(s, t - window), min(e, t + window + 1)
        ids = np.asarray(store["tokens"][a:b])
        out.append({"step": t, "document": d, "value": float(vals[t]),
                    "tokens": store.token_strings(ids) or ids.tolist(), "at": t - a})
    return out


@dataclass
class Saturation:
    """Per unit: fraction of steps below ``low`` (left-saturated) and above ``high``."""

    left: np.ndarray  # (U,)
    right: np.ndarray  # (U,)
    low: float
    high: float
    steps: int

    def summary(self) -> dict[str, float]:
        return {"mean_left": float(self.left.mean()), "mean_right": float(self.right.mean()),
                "units_mostly_saturated": int(((self.left + self.right) > 0.9).sum())}


def saturation(store, key: str, low: float = 0.1, high: float = 0.9) -> Saturation:
    """Saturation statistics of a gate (Karpathy et al. 2015), over the finished chunks.

    The default thresholds use counts recorded at indexing time; others scan the series.
    """
    from .store_index import SAT_HIGH, SAT_LOW
    _check_key(store, key)
    done = store.chunks_done
    K, N = store.chunk_tokens, store.n_tokens
    steps = int(sum(min(K, N - c * K) for c in np.flatnonzero(done)))
    if steps == 0:
        raise InputError("no chunk of this store is finished yet")
    name = f"saturation/{key}"
    if (low, high) == (SAT_LOW, SAT_HIGH) and name in store.group:
        counts = np.asarray(store.group[name][:], np.int64)[done].sum(0)  # (2, U)
    else:
        arr = store[key]
        counts = np.zeros((2, store.units[key]), np.int64)
        for c in np.flatnonzero(done):
            v = np.asarray(arr[c * K:(c + 1) * K], np.float32)
            counts += np.stack([(v < low).sum(0), (v > high).sum(0)])
    return Saturation(counts[0] / steps, counts[1] / steps, low, high, steps)
