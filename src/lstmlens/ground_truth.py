"""Ground truth on the planted-token task: do a method's top tokens hit the planted ones?

A sentence of :mod:`lstmlens.datasets.planted` has k planted words that alone decide its
label. Ranking the tokens by |score| (a planted word that argues against the label matters
as much as one for it), precision@k is the share of the k top-ranked tokens that are planted,
and the mean rank is the average rank (1 = top) of the planted tokens. A random ranking has
expected precision k/L and expected mean rank (L + 1)/2.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .errors import InputError


def planted_words(meta: dict | None) -> set[str]:
    """The planted word sets of a planted-task model's meta (empty for other models)."""
    planted = (meta or {}).get("planted") or {}
    return set(planted.get("positive", [])) | set(planted.get("negative", []))


def planted_mask(tokens: Sequence[str], words: set[str]) -> np.ndarray:
    """``(L,)`` True where a token is one of the planted ``words``."""
    return np.array([t in words for t in tokens], dtype=bool)


def _ranks(scores: np.ndarray) -> np.ndarray:
    """Rank of each position by |score|, 1 = largest (ties keep their order)."""
    order = np.argsort(-np.abs(np.asarray(scores, dtype=np.float64)), kind="stable")
    ranks = np.empty(len(order), dtype=np.int64)
    ranks[order] = np.arange(1, len(order) + 1)
    return ranks


def planted_scores(scores: Sequence[np.ndarray], masks: Sequence[np.ndarray]
                   ) -> dict[str, np.ndarray]:
    """Per-sentence precision@k, mean rank of the planted tokens, and their chance values.

    Sentences without a planted token get NaN (they are left out of the means).

    Examples
    --------
    >>> r = planted_scores([np.array([0.1, -2.0, 0.3])], [np.array([False, True, False])])
    >>> float(r["precision"][0]), float(r["mean_rank"][0])
    (1.0, 1.0)
    """
    if len(scores) != len(masks):
        raise InputError(f"need one planted mask per sentence: {len(scores)} score arrays, "
                         f"{len(masks)} masks")
    n = len(scores)
    out = {k: np.full(n, np.nan) for k in ("precision", "mean_rank", "chance_precision",
                                           "chance_mean_rank")}
    for b, (s, m) in enumerate(zip(scores, masks, strict=True)):
        m = np.asarray(m, dtype=bool)
        if len(s) != len(m):
            raise InputError(f"sentence {b}: {len(s)} scores but {len(m)} mask entries")
        k, L = int(m.sum()), len(m)
        if k == 0:
            continue
        r = _ranks(s)
        out["precision"][b] = float((r[m] <= k).sum()) / k
        out["mean_rank"][b] = float(r[m].mean())
        out["chance_precision"][b] = k / L
        out["chance_mean_rank"][b] = (L + 1) / 2
    return out
