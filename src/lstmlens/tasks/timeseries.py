"""Time-series forecasting: co2 (weekly), sunspots (yearly) or a user's own series.

The model reads a window of past values and predicts the next ``horizon`` values at once.
It is scored by rolling origin over the test segment (every origin whose ``horizon`` targets
lie in the test segment), next to the naive (last value) and seasonal-naive (value one
season earlier) forecasts on the very same origins.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console

from ..datasets.timeseries import (
    SERIES,
    SeriesData,
    load_series,
    load_series_file,
)
from ..errors import InputError
from ..modeldir import save
from ..models.forecaster import ForecasterConfig, Forecasting, LSTMForecaster, WindowSet
from ..training import fit
from . import TaskResult, register_task

__all__ = ["DEFAULTS", "naive_forecast", "predict_windows", "score", "seasonal_naive_forecast",
           "train_timeseries", "window_origins"]

# Defaults per built-in series (horizon = one season). For sunspots, absolute levels and the
# phase inputs gave the lowest validation MAE (mean of 3 seeds over relative × phase × size).
# A user's series gets horizon = period (or 1), a window of two periods (at least 24 steps),
# relative inputs, and phase inputs when a period is given.
DEFAULTS: dict[str, dict[str, Any]] = {
    "co2": {"horizon": 52, "window": 104, "hidden_sizes": [64], "phase": True,
            "relative": True, "epochs": 40},
    "sunspots": {"horizon": 11, "window": 33, "hidden_sizes": [64], "phase": True,
                 "relative": False, "epochs": 60},
}


# ------------------------------------------------------------------ windows and baselines


def window_origins(start: int, stop: int, window: int, horizon: int, *,
                   inputs_inside: bool = False, stride: int = 1) -> np.ndarray:
    """Forecast origins ``t`` whose targets ``values[t:t+horizon]`` lie in ``[start, stop)``.

    The inputs of origin ``t`` are ``values[t-window:t]``. They always lie in the past; with
    ``inputs_inside=True`` (training windows) they must lie inside ``[start, stop)`` too.

    Examples
    --------
    >>> window_origins(0, 10, window=3, horizon=2, inputs_inside=True).tolist()
    [3, 4, 5, 6, 7, 8]
    >>> window_origins(10, 14, window=3, horizon=2).tolist()
    [10, 11, 12]
    """
    first = max(start + window if inputs_inside else start, window)
    return np.arange(first, stop - horizon + 1, stride, dtype=np.int64)


def naive_forecast(values: np.ndarray, origins: np.ndarray, horizon: int) -> np.ndarray:
    """The last value before each origin, repeated: ``(len(origins), horizon)``.

    Examples
    --------
    >>> naive_forecast(np.arange(6.0), np.array([3, 4]), 2).tolist()
    [[2.0, 2.0], [3.0, 3.0]]
    """
    values = np.asarray(values, dtype=np.float64)
    return np.repeat(values[np.asarray(origins) - 1][:, None], horizon, axis=1)


def seasonal_naive_forecast(values: np.ndarray, origins: np.ndarray, horizon: int,
                            period: int) -> np.ndarray:
    """The value one season earlier: ŷ[t+k] = y[t − period + (k mod period)], ``(O, horizon)``.

    Only values before each origin are used, so horizons beyond one period repeat the last
    observed season.

    Examples
    --------
    >>> seasonal_naive_forecast(np.arange(8.0), np.array([4]), 3, period=2).tolist()
    [[2.0, 3.0, 2.0]]
    """
    origins = np.asarray(origins, dtype=np.int64)
    if period < 1 or (len(origins) and origins.min() < period):
        raise InputError(f"seasonal-naive needs period ≥ 1 and every origin ≥ period ({period})")
    k = np.arange(horizon)
    idx = origins[:, None] - period + (k[None, :] % period)  # (O, horizon)
    return np.asarray(values, dtype=np.float64)[idx]


def predict_windows(model: LSTMForecaster, windows: WindowSet,
                    batch_size: int = 512) -> np.ndarray:
    """Forecasts ``(len(windows), horizon)`` of ``model`` for every origin, in eval mode."""
    model.eval()
    out = []
    with torch.no_grad():
        for s in range(0, len(windows), batch_size):
            x, _ = windows.arrays(slice(s, s + batch_size))
            out.append(model(torch.as_tensor(x)).double().numpy())
    return np.concatenate(out) if out else np.zeros((0, windows.horizon))


def score(pred: np.ndarray, truth: np.ndarray) -> dict[str, Any]:
    """MAE, RMSE (over all origins and steps) and the MAE at each step ahead.

    Examples
    --------
    >>> score(np.array([[1.0, 2.0]]), np.array([[1.0, 4.0]]))["mae"]
    1.0
    """
    err = np.asarray(pred, dtype=np.float64) - np.asarray(truth, dtype=np.float64)  # (O, h)
    return {"mae": float(np.abs(err).mean()), "rmse": float(np.sqrt((err ** 2).mean())),
            "mae_by_step": [float(v) for v in np.abs(err).mean(0)]}


def _series(series: str, data: str | None, column: str | int | None, period: int | None,
            interpolate: bool) -> SeriesData:
    if series in SERIES:
        if column is not None or interpolate or period is not None:
            raise InputError("column, period and interpolate apply to your own series files, "
                             f"not to the built-in series {series!r}")
        return load_series(series, data=data)
    if not Path(series).expanduser().is_file():
        raise InputError(f"series must be one of {sorted(SERIES)} or the path of a CSV/.npy "
                         f"file, got {series!r}")
    if data is not None:
        raise InputError("data= is the statsmodels wheel for the built-in series; a series "
                         "file is read directly")
    return load_series_file(series, column, interpolate=interpolate, period=period)


@register_task("timeseries")
def train_timeseries(
    out: str | Path, *, quick: bool = False, epochs: int | None = None, seed: int = 0,
    data: str | None = None, progress: bool = True, console: Console | None = None,
    series: str | os.PathLike[str] = "co2", horizon: int | None = None, window: int | None = None,
    hidden_sizes: list[int] | None = None, phase: bool | None = None,
    relative: bool | None = None,
    column: str | int | None = None, period: int | None = None, interpolate: bool = False,
    loss: str = "mse", batch_size: int = 32, lr: float = 3e-3, patience: int = 8,
) -> TaskResult:
    """Train an LSTM forecaster on ``series`` and save it with rolling-origin test metrics.

    ``series`` is ``"co2"``, ``"sunspots"`` or a CSV/.npy path (then ``column``, ``period``
    and ``interpolate`` apply). ``phase`` adds sin/cos seasonal-phase inputs (default on
    for co2). ``quick`` trains a small model for a few epochs (tests, smoke runs).

    Examples
    --------
    >>> result = train_timeseries("runs/co2", series="co2")  # doctest: +SKIP
    >>> result.metrics["test"]["mae_ratio_to_seasonal_naive"]  # doctest: +SKIP
    """
    console = console or Console()
    series = os.fspath(series)
    data_ = _series(series, data, column, period, interpolate)
    d = DEFAULTS.get(series, {"horizon": data_.period or 1,
                              "window": max(24, 2 * (data_.period or 1)), "hidden_sizes": [32],
                              "phase": data_.period is not None, "relative": True,
                              "epochs": 40})
    horizon = d["horizon"] if horizon is None else horizon
    window = d["window"] if window is None else window
    phase = d["phase"] if phase is None else phase
    relative = d["relative"] if relative is None else relative
    if phase and data_.cycle is None:
        raise InputError("phase features need a seasonal period: pass period=")
    data_.check_fits(window, horizon)
    sizes = [16] if quick and hidden_sizes is None else list(hidden_sizes or d["hidden_sizes"])
    epochs = epochs or (6 if quick else d["epochs"])
    a, b = data_.boundaries
    console.print(f"{data_.source.get('name', data_.name)}: {len(data_)} values "
                  f"({data_.n_filled} missing filled), train {a}, validation {b - a}, "
                  f"test {len(data_) - b}; window {window}, horizon {horizon}")

    torch.manual_seed(seed)
    model = LSTMForecaster(ForecasterConfig(horizon=horizon, window=window, hidden_sizes=sizes,
                                            cycle=data_.cycle if phase else None,
                                            relative=relative))
    feats = model.features(data_.values, data_.position)  # (N, F)

    def windows(segment: str, inside: bool = False) -> WindowSet:
        lo, hi = data_.segment(segment)
        origins = window_origins(lo, hi, window, horizon, inputs_inside=inside)
        return WindowSet(data_.values, feats, origins, window, horizon)

    train, val, test = windows("train", inside=True), windows("validation"), windows("test")
    model.fit_standardization(train)
    history = fit(model, train, val, objective=Forecasting(loss), epochs=epochs,
                  batch_size=batch_size, lr=lr, patience=patience, seed=seed,
                  progress=progress)

    truth = test.arrays()[1]  # (O, horizon)
    metrics_test = score(predict_windows(model, test), truth)
    baselines = {"naive": score(naive_forecast(data_.values, test.origins, horizon), truth)}
    if data_.period:
        sn = seasonal_naive_forecast(data_.values, test.origins, horizon, data_.period)
        baselines["seasonal_naive"] = score(sn, truth)
        metrics_test["mae_ratio_to_seasonal_naive"] = (
            metrics_test["mae"] / baselines["seasonal_naive"]["mae"])
    metrics_test["mae_ratio_to_naive"] = metrics_test["mae"] / baselines["naive"]["mae"]
    metrics_test.update(origins=len(test), horizon=horizon)
    metrics = {"test": metrics_test, "baselines": baselines,
               "validation": score(predict_windows(model, val), val.arrays()[1]),
               "training": history.to_dict()}
    last = data_.index[-1]
    meta = {"task": f"timeseries/{data_.name}", "series": data_.name, "unit": data_.unit,
            "window": window, "horizon": horizon, "period": data_.period,
            "boundaries": list(data_.boundaries), "history": data_.values[-window:].tolist(),
            "history_start": float(data_.position[-window]), "history_end": str(last),
            "step": data_.source.get("step", "step"), "filled_missing": data_.n_filled,
            "data": {k: v for k, v in data_.source.items() if k != "path"}
            | ({"file": os.path.basename(data_.source["path"])} if "path" in data_.source
               else {}), "seed": seed}
    save(model, out, metrics=metrics, meta=meta)
    model.meta, model.metrics = meta, metrics
    line = (f"test MAE {metrics_test['mae']:.3f} {data_.unit} over {len(test)} origins; "
            f"naive {baselines['naive']['mae']:.3f}")
    if "seasonal_naive" in baselines:
        line += (f", seasonal-naive {baselines['seasonal_naive']['mae']:.3f} (ratio "
                 f"{metrics_test['mae_ratio_to_seasonal_naive']:.3f})")
    console.print(line)
    return TaskResult(model=model, out=Path(out), metrics=metrics)
