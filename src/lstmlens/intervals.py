"""Seeded percentile-bootstrap intervals of a mean (every figure of ``evaluate`` has one)."""

from __future__ import annotations

import math

import numpy as np

from .errors import InputError


def bootstrap_mean(values: np.ndarray | list[float], *, resamples: int = 2000,
                   level: float = 0.95, seed: int = 0) -> dict[str, float | int]:
    """Mean of ``values`` with a percentile-bootstrap interval.

    NaN values (a measure undefined for an item, e.g. a rank correlation of a constant
    vector) are dropped; ``n`` says how many values were used.

    Returns
    -------
    dict
        ``{"value", "ci_low", "ci_high", "n"}``; the interval is ``(value, value)`` for one
        value and everything is NaN for none.

    Examples
    --------
    >>> r = bootstrap_mean([1.0, 2.0, 3.0, 4.0], seed=0)
    >>> r["value"], r["ci_low"] <= 2.5 <= r["ci_high"]
    (2.5, True)
    """
    if not 0 < level < 1:
        raise InputError(f"level must be in (0, 1), got {level}")
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[~np.isnan(v)]
    n = len(v)
    if n == 0:
        return {"value": math.nan, "ci_low": math.nan, "ci_high": math.nan, "n": 0}
    mean = float(v.mean())
    if n == 1:
        return {"value": mean, "ci_low": mean, "ci_high": mean, "n": 1}
    rng = np.random.default_rng(seed)
    means = np.empty(resamples)
    step = max(1, 2_000_000 // n)  # resamples per block, to bound memory
    for s in range(0, resamples, step):
        k = min(step, resamples - s)
        means[s:s + k] = v[rng.integers(0, n, size=(k, n))].mean(1)
    lo, hi = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return {"value": mean, "ci_low": float(lo), "ci_high": float(hi), "n": n}


def separated(a: dict[str, float], b: dict[str, float]) -> bool:
    """True when the intervals of ``a`` lies wholly above that of ``b``."""
    return bool(a["ci_low"] > b["ci_high"])
