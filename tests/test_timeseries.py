"""Tests for time-series forecasting: loaders, windows, baselines, the forecaster, the task."""

from __future__ import annotations

import io
import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from rich.console import Console

import lstmlens
from lstmlens.datasets.fetch import ChecksumError, DataUnavailableError
from lstmlens.datasets.timeseries import (
    SOURCE,
    SeriesData,
    chronological_boundaries,
    interpolate_missing,
    load_series,
    load_series_file,
)
from lstmlens.errors import InputError, ModelError
from lstmlens.models.forecaster import (
    ForecasterConfig,
    Forecasting,
    LSTMForecaster,
    WindowSet,
    forecast,
)
from lstmlens.models.registry import build_model
from lstmlens.tasks.timeseries import (
    naive_forecast,
    predict_windows,
    score,
    seasonal_naive_forecast,
    train_timeseries,
    window_origins,
)
from lstmlens.training import evaluate

QUIET = Console(file=io.StringIO())


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """These small LSTMs gain nothing from a second thread, and on a shared, busy machine
    two spinning threads made training up to 50x slower; restore the setting afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def ts_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache filled once per session by the real pip download of the statsmodels wheel."""
    root = tmp_path_factory.mktemp("ts-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LSTMLENS_CACHE", str(root))
        load_series("co2")  # downloads, checks the sha256, writes processed/co2-*.npz
    return root


@pytest.fixture
def cached(ts_cache: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LSTMLENS_CACHE", str(ts_cache))
    return ts_cache


def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: object, **kwargs: object) -> None:
        raise AssertionError("subprocess.run called: the network would have been used")

    monkeypatch.setattr(subprocess, "run", fail)


# --------------------------------------------------------------------------- real data


@pytest.mark.slow
def test_co2_loader(cached: Path) -> None:
    co2 = load_series("co2")
    assert len(co2) == 2284 and co2.n_filled == 59 and co2.missing.sum() == 59
    assert np.isfinite(co2.values).all() and co2.period == 52
    assert str(co2.index[0]) == "1958-03-29" and str(co2.index[-1]) == "2001-12-29"
    assert (np.diff(co2.index).astype(int) == 7).all()  # weekly, no gaps in the dates
    # every filled value lies on the straight line between its observed neighbours
    obs = np.flatnonzero(~co2.missing)
    for i in np.flatnonzero(co2.missing)[:10]:
        lo, hi = obs[obs < i].max(), obs[obs > i].min()
        w = (i - lo) / (hi - lo)
        assert co2.values[i] == pytest.approx((1 - w) * co2.values[lo] + w * co2.values[hi])
    assert co2.source["requirement"] == "statsmodels==0.15.0"
    assert co2.source["filled_missing"] == 59


@pytest.mark.slow
def test_sunspots_and_offline_cache(cached: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _no_network(monkeypatch)  # the wheel is cached: no pip call
    sun = load_series("sunspots")
    assert len(sun) == 309 and sun.n_filled == 0 and sun.period == 11
    assert sun.index[0] == 1700 and sun.index[-1] == 2008
    assert (cached / "processed").is_dir()
    again = load_series("co2")  # from the processed npz
    assert again.n_filled == 59


@pytest.mark.slow
def test_data_argument(cached: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _no_network(monkeypatch)
    wheel = cached / "downloads" / SOURCE.filename
    by_wheel = load_series("co2", cache_dir=tmp_path / "c", data=wheel)
    (tmp_path / "csvs").mkdir()
    from lstmlens.datasets.fetch import read_member

    (tmp_path / "csvs" / "co2.csv").write_bytes(
        read_member(wheel, "statsmodels/datasets/co2/co2.csv"))
    by_dir = load_series("co2", cache_dir=tmp_path / "c", data=tmp_path / "csvs")
    assert np.array_equal(by_wheel.values, by_dir.values)
    bad = tmp_path / "bad.whl"
    bad.write_bytes(b"not a wheel")
    with pytest.raises(ChecksumError, match="sha256 mismatch"):
        load_series("co2", cache_dir=tmp_path / "c", data=bad)
    with pytest.raises(DataUnavailableError, match="without sunspots.csv"):
        load_series("sunspots", cache_dir=tmp_path / "c", data=tmp_path / "csvs")
    with pytest.raises(InputError, match="unknown series"):
        load_series("nile")


# ------------------------------------------------------------------ splits and windows


def test_chronological_splits() -> None:
    a, b = chronological_boundaries(2284)
    assert (a, b) == (2284 - 343 - 343, 2284 - 343)
    s = SeriesData("toy", np.arange(100.0), np.arange(100), np.arange(100.0),
                   np.zeros(100, bool), chronological_boundaries(100))
    parts = [s.train, s.validation, s.test]
    assert np.array_equal(np.concatenate(parts), s.values)  # in time order, nothing shuffled
    assert s.train.max() < s.validation.min() and s.validation.max() < s.test.min()
    with pytest.raises(InputError, match="too short"):
        s.check_fits(window=70, horizon=5)
    with pytest.raises(InputError, match="test has 15"):
        s.check_fits(window=10, horizon=20)


@pytest.mark.parametrize("n,window,horizon", [(100, 10, 5), (60, 7, 1), (300, 33, 11)])
def test_windows_never_straddle_a_boundary(n: int, window: int, horizon: int) -> None:
    a, b = chronological_boundaries(n)
    train = window_origins(0, a, window, horizon, inputs_inside=True)
    assert (train - window >= 0).all() and (train + horizon <= a).all()
    assert len(train) == a - window - horizon + 1  # and none is missing
    for lo, hi in ((a, b), (b, n)):
        o = window_origins(lo, hi, window, horizon)
        assert (o >= lo).all() and (o + horizon <= hi).all() and (o - window >= 0).all()
        assert len(o) == hi - lo - horizon + 1


def test_baselines_by_hand() -> None:
    # two seasons of 4 and a bit: y = 10, 11, 12, 13, 20, 21, 22, 23, 30, 31
    y = np.array([10, 11, 12, 13, 20, 21, 22, 23, 30, 31], dtype=float)
    sn = seasonal_naive_forecast(y, np.array([8, 6]), horizon=6, period=4)
    assert sn.tolist() == [[20, 21, 22, 23, 20, 21], [12, 13, 20, 21, 12, 13]]
    assert naive_forecast(y, np.array([8, 6]), 3).tolist() == [[23] * 3, [21] * 3]
    with pytest.raises(InputError, match="origin"):
        seasonal_naive_forecast(y, np.array([2]), 2, period=4)
    s = score(np.array([[1.0, 2.0], [0.0, 0.0]]), np.array([[2.0, 2.0], [0.0, 3.0]]))
    assert s["mae"] == 1.0 and s["rmse"] == pytest.approx(np.sqrt(10 / 4))
    assert s["mae_by_step"] == [0.5, 1.5]


def test_interpolation() -> None:
    assert interpolate_missing(np.array([0.0, np.nan, np.nan, 3.0])).tolist() == [0, 1, 2, 3]
    t = np.array([0.0, 1.0, 4.0])  # interpolation is in time, not in index
    assert interpolate_missing(np.array([0.0, np.nan, 4.0]), t)[1] == 1.0
    with pytest.raises(InputError, match="start or end"):
        interpolate_missing(np.array([np.nan, 1.0]))


# ------------------------------------------------------------------------ users' files


def test_user_csv(tmp_path: Path) -> None:
    f = tmp_path / "sales.csv"
    f.write_text("day,units,price\n" + "".join(f"d{i},{i % 7},{1.5 * i}\n" for i in range(60)))
    s = load_series_file(f, column="units", period=7)
    assert len(s) == 60 and s.values[:8].tolist() == [0, 1, 2, 3, 4, 5, 6, 0]
    assert s.period == 7 and s.source["sha256"]
    assert load_series_file(f, column=2).values[2] == 3.0
    with pytest.raises(InputError, match="2 numeric column"):
        load_series_file(f)
    with pytest.raises(InputError, match="no column 'sold'"):
        load_series_file(f, column="sold")
    plain = tmp_path / "plain.csv"
    plain.write_text("\n".join(str(v) for v in np.linspace(0, 1, 50)) + "\n")  # no header
    assert load_series_file(plain).values[-1] == 1.0
    with pytest.raises(InputError, match="too short for a window of 40 plus a horizon of 5"):
        load_series_file(plain, window=40, horizon=5)


def test_user_missing_and_bad_values(tmp_path: Path) -> None:
    f = tmp_path / "gaps.csv"
    f.write_text("value\n1\n2\n\n4\nNaN\n6\n" + "".join(f"{i}\n" for i in range(7, 40)))
    with pytest.raises(InputError, match=r"2 missing \(NaN\) value\(s\), the first at index 2"):
        load_series_file(f)
    s = load_series_file(f, interpolate=True)
    assert s.values[:6].tolist() == [1, 2, 3, 4, 5, 6] and s.n_filled == 2
    f.write_text("value\n1\n2\ninf\n4\n" + "".join(f"{i}\n" for i in range(5, 40)))
    with pytest.raises(InputError, match="1 infinite value.*index 2"):
        load_series_file(f, interpolate=True)
    f.write_text("value\n1\n2\nabc\n")
    with pytest.raises(InputError, match="line 4.*'abc' is not a number"):
        load_series_file(f)
    with pytest.raises(InputError, match="is not a file"):
        load_series_file(tmp_path / "nothing.csv")


def test_user_npy(tmp_path: Path) -> None:
    np.save(tmp_path / "a.npy", np.arange(40, dtype=np.float32))
    np.save(tmp_path / "col.npy", np.arange(40.0)[:, None])
    np.save(tmp_path / "two.npy", np.zeros((40, 2)))
    np.save(tmp_path / "obj.npy", np.array([1.0, "x"], dtype=object), allow_pickle=True)
    np.save(tmp_path / "nan.npy", np.r_[np.arange(30.0), np.nan, np.arange(9.0)])
    assert load_series_file(tmp_path / "a.npy").values.dtype == np.float64
    assert len(load_series_file(tmp_path / "col.npy")) == 40
    with pytest.raises(InputError, match=r"1-D series .* shape \(40, 2\)"):
        load_series_file(tmp_path / "two.npy")
    with pytest.raises(InputError, match="unpickling"):
        load_series_file(tmp_path / "obj.npy")
    with pytest.raises(InputError, match="first at index 30"):
        load_series_file(tmp_path / "nan.npy")


# ------------------------------------------------------------------------- the model


def _toy(cycle: float | None = None, horizon: int = 3, window: int = 12) -> LSTMForecaster:
    torch.manual_seed(0)
    return LSTMForecaster(ForecasterConfig(horizon=horizon, window=window, hidden_sizes=[8, 6],
                                           cycle=cycle))


def test_model_shapes_registry_and_trace() -> None:
    model = _toy(cycle=4.0)
    x = torch.randn(5, 12, 3)
    assert model(x).shape == (5, 3)
    again = build_model("forecaster", model.config_dict())
    assert isinstance(again, LSTMForecaster) and again.config == model.config
    tr = lstmlens.trace(model, x)
    assert tr["lstms.0.layers.0.forward.forget_gate"].shape == (5, 12, 8)
    assert tr["lstms.1.layers.0.forward.hidden"].shape == (5, 12, 6)
    # padded windows give the same forecast as the unpadded shorter ones
    pad = torch.cat([x[:2, :9], torch.zeros(2, 3, 3)], dim=1)
    assert torch.allclose(model(pad, lengths=[9, 9]), model(x[:2, :9]), atol=1e-6)
    with pytest.raises(InputError, match=r"\[batch, time, 3\]"):
        model(torch.randn(2, 12, 1))
    with pytest.raises(InputError, match="unknown forecaster setting"):
        LSTMForecaster({"horizon": 2, "units": 3})
    with pytest.raises(InputError, match="horizon must be"):
        ForecasterConfig(horizon=0)


def test_standardization_and_objective() -> None:
    rng = np.random.default_rng(0)
    y = np.cumsum(rng.normal(0.5, 1.0, 200)) + 100.0
    model = _toy()
    ws = WindowSet(y, model.features(y), window_origins(0, 200, 12, 3, inputs_inside=True),
                   12, 3)
    model.fit_standardization(ws)
    x, target = ws.arrays()
    change = target - x[:, -1, :1]  # targets relative to the window's last value
    assert np.allclose(model.target_mean.numpy(), change.mean(0), atol=1e-4)
    with torch.no_grad():  # a zero head forecasts the last value plus the mean change
        model.head.weight.zero_()
        model.head.bias.zero_()
        out = model(torch.as_tensor(x[:4]))
    assert np.allclose(out.numpy(), x[:4, -1, :1] + change.mean(0), atol=1e-3)
    # the objective's mean MAE equals the MAE of the predictions
    assert evaluate(model, ws, Forecasting())["mae"] == pytest.approx(
        score(predict_windows(model, ws), target)["mae"], rel=1e-5)


def test_forecast_and_autoregression() -> None:
    model = _toy(horizon=3, window=12)
    hist = np.sin(np.arange(30) / 3.0) + 10
    direct = forecast(model, hist)
    assert direct.shape == (3,)
    long = forecast(model, hist, horizon=8)
    assert long.shape == (8,) and np.allclose(long[:3], direct)
    # the next block is the forecast from the history extended by the model's own forecast
    assert np.allclose(long[3:6], forecast(model, np.r_[hist, direct]), atol=1e-5)
    with pytest.raises(InputError, match="history has 5 values; this model reads windows of 12"):
        forecast(model, hist[:5])
    bad = hist.copy()
    bad[[4, 7]] = np.nan
    with pytest.raises(InputError, match="2 NaN/inf value.*first at index 4"):
        forecast(model, bad)
    with pytest.raises(InputError, match="1-D"):
        forecast(model, hist[None])
    with pytest.raises(InputError, match="horizon must be"):
        forecast(model, hist, horizon=0)
    with pytest.raises(InputError, match="stores no history"):
        forecast(model)
    with pytest.raises(InputError, match="start="):
        forecast(_toy(cycle=4.0), hist)
    assert forecast(_toy(cycle=4.0), hist, start=0).shape == (3,)
    with pytest.raises(ModelError):
        forecast(torch.nn.LSTM(1, 2), hist)  # type: ignore[arg-type]


# -------------------------------------------------------------------------- the task


def test_task_on_a_user_file(tmp_path: Path) -> None:
    t = np.arange(240)
    y = 5 * np.sin(2 * np.pi * t / 12) + 0.05 * t + np.random.default_rng(1).normal(0, .3, 240)
    np.save(tmp_path / "seasonal.npy", y)
    res = train_timeseries(tmp_path / "run", quick=True, series=str(tmp_path / "seasonal.npy"),
                           period=12, horizon=4, window=24, progress=False, console=QUIET)
    m = res.metrics
    assert set(m["baselines"]) == {"naive", "seasonal_naive"}
    assert m["test"]["origins"] == 36 - 4 + 1 and m["test"]["horizon"] == 4
    loaded = lstmlens.load(tmp_path / "run")
    assert np.allclose(forecast(loaded), forecast(res.model))
    again = train_timeseries(tmp_path / "run2", quick=True, series=tmp_path / "seasonal.npy",
                             period=12, horizon=4, window=24, progress=False, console=QUIET)
    assert again.metrics["test"] == m["test"]  # seeded: the same run gives the same figures
    assert loaded.meta["history_start"] == 240 - 24
    from typer.testing import CliRunner

    from lstmlens.cli import app
    r = CliRunner().invoke(app, ["forecast", str(tmp_path / "run"), "--json"])
    assert r.exit_code == 0, r.output
    assert np.allclose(json.loads(r.stdout)["forecast"], forecast(loaded), atol=1e-6)
    r = CliRunner().invoke(app, ["forecast", str(tmp_path / "run"), "--history", "nope.csv"])
    assert r.exit_code == 1 and "not a file" in r.output
    with pytest.raises(InputError, match="period"):
        train_timeseries(tmp_path / "r2", quick=True, series=str(tmp_path / "seasonal.npy"),
                         phase=True, progress=False, console=QUIET)


@pytest.mark.slow
def test_quick_co2_beats_both_baselines(cached: Path, tmp_path: Path) -> None:
    # Measured with these quick settings (16 units, 6 epochs): MAE 0.59 ppmv, 0.35 x the
    # seasonal-naive MAE and 0.22 x the naive MAE. The thresholds leave room for other
    # CPUs and BLAS builds but fail for a model no better than the baselines.
    res = train_timeseries(tmp_path / "co2", quick=True, progress=False, console=QUIET)
    test, base = res.metrics["test"], res.metrics["baselines"]
    assert test["origins"] == 343 - 52 + 1
    assert test["mae"] < 0.5 * base["naive"]["mae"]
    assert test["mae"] < 0.8 * base["seasonal_naive"]["mae"]
    assert res.metrics["test"]["mae_ratio_to_seasonal_naive"] < 0.8
    assert lstmlens.load(tmp_path / "co2").meta["history_end"] == "2001-12-29"
    assert forecast(res.model, horizon=60).shape == (60,)
