"""Multi-step LSTM forecaster for one series: a window of past values → the next ``horizon``.

Each input step carries the value and, optionally, the seasonal phase as sin/cos of
``2π · position / cycle``. With ``relative=True`` (the default) the window's last value is
subtracted from the inputs and added back to the outputs, so the network models changes,
not levels, and a trend that leaves the training range stays forecastable. Inputs and targets
are then standardized with buffers fitted on the training windows; :meth:`forward` returns
forecasts in the series' own units.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from ..errors import InputError, ModelError
from ..inputs import as_tensor, check_finite, check_lengths
from .registry import register_model

__all__ = ["ForecasterConfig", "Forecasting", "LSTMForecaster", "WindowSet", "forecast"]


def _whole(v: Any, least: int) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= least


@dataclass
class ForecasterConfig:
    """Hyper-parameters of :class:`LSTMForecaster`.

    ``window`` is the number of past values the model was trained to read; ``cycle`` (in
    steps, e.g. 365.25 / 7 for weekly data) switches the sin/cos phase features on.
    """

    horizon: int = 1
    window: int = 24
    hidden_sizes: list[int] = field(default_factory=lambda: [64])
    cycle: float | None = None
    relative: bool = True
    dropout: float = 0.0

    def __post_init__(self) -> None:
        for name in ("horizon", "window"):
            if not _whole(getattr(self, name), 1):
                raise InputError(f"{name} must be a whole number ≥ 1, got "
                                 f"{getattr(self, name)!r}")
        if not isinstance(self.hidden_sizes, (list, tuple)) or not self.hidden_sizes or not all(
                _whole(h, 1) for h in self.hidden_sizes):
            raise InputError(f"hidden_sizes must be a non-empty list of whole numbers ≥ 1 "
                             f"(units per LSTM layer), got {self.hidden_sizes!r}")
        self.hidden_sizes = [int(h) for h in self.hidden_sizes]
        if self.cycle is not None and (isinstance(self.cycle, bool) or not isinstance(
                self.cycle, (int, float)) or not self.cycle > 0):
            raise InputError(f"cycle must be a positive number of steps or None, got "
                             f"{self.cycle!r}")
        if not isinstance(self.dropout, (int, float)) or not 0 <= self.dropout < 1:
            raise InputError(f"dropout must be a number in [0, 1), got {self.dropout!r}")

    @property
    def input_size(self) -> int:
        return 1 if self.cycle is None else 3


@dataclass
class WindowSet:
    """Sliding windows over one series: origin ``t`` reads ``features[t-window:t]`` and
    predicts ``values[t:t+horizon]``.

    ``features`` is ``(N, F)`` float32 (from :meth:`LSTMForecaster.features`); ``origins``
    the int64 forecast origins (see :func:`lstmlens.datasets.timeseries.window_origins`).
    """

    values: np.ndarray
    features: np.ndarray
    origins: np.ndarray
    window: int
    horizon: int

    def __post_init__(self) -> None:
        self.origins = np.asarray(self.origins, dtype=np.int64)
        n = len(self.values)
        if len(self.origins) and (self.origins.min() < self.window
                                  or self.origins.max() + self.horizon > n):
            raise InputError(f"origins must lie in [{self.window}, {n - self.horizon}] for a "
                             f"window of {self.window} and a horizon of {self.horizon}")

    def __len__(self) -> int:
        return len(self.origins)

    def arrays(self, idx: np.ndarray | slice = slice(None)) -> tuple[np.ndarray, np.ndarray]:
        """Inputs ``(B, window, F)`` and targets ``(B, horizon)`` of the selected origins."""
        t = self.origins[idx]
        x = self.features[t[:, None] - self.window + np.arange(self.window)]  # (B, W, F)
        y = self.values[t[:, None] + np.arange(self.horizon)]  # (B, horizon)
        return x, y


class Forecasting:
    """Training objective: MSE (or MAE) on standardized targets; ``mae`` in the series' units.

    Metrics per window are averaged over the horizon; ``mse`` is in squared units so that
    ``sqrt(mse)`` is the RMSE.
    """

    monitor = "mae"
    higher_is_better = False

    def __init__(self, loss: str = "mse"):
        if loss not in ("mse", "mae"):
            raise InputError(f"loss must be 'mse' or 'mae', got {loss!r}")
        self.loss = loss

    def size(self, data: WindowSet) -> int:
        return len(data)

    def batch(self, data: WindowSet, idx: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = data.arrays(idx)
        return torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y, dtype=torch.float64)

    def step(self, model: LSTMForecaster, batch: tuple[torch.Tensor, torch.Tensor]):
        x, y = batch
        z, level = model.forward_standardized(x)  # (B, horizon), (B,)
        z_true = model.standardize_targets(y, level).to(z.dtype)  # (B, horizon)
        diff = z - z_true
        loss = diff.pow(2).mean() if self.loss == "mse" else diff.abs().mean()
        with torch.no_grad():
            err = model.unstandardize(z, level).double() - y  # (B, horizon), series units
            sums = {"loss": loss.item() * len(y), "mae": float(err.abs().mean(1).sum()),
                    "mse": float(err.pow(2).mean(1).sum())}
        return loss, sums, len(y)


@register_model("forecaster")
class LSTMForecaster(nn.Module):
    """Stacked LSTM forecaster: window ``(B, T, F)`` → next ``horizon`` values ``(B, horizon)``.

    Examples
    --------
    >>> model = LSTMForecaster(ForecasterConfig(horizon=3, window=12))
    >>> model(torch.randn(2, 12, 1)).shape
    torch.Size([2, 3])
    """

    def __init__(self, config: ForecasterConfig | dict[str, Any]):
        super().__init__()
        if isinstance(config, dict):
            known = set(ForecasterConfig.__dataclass_fields__)
            unknown = sorted(set(config) - known)
            if unknown:
                raise InputError(f"unknown forecaster setting(s) {unknown}; accepted: "
                                 f"{sorted(known)}")
            config = ForecasterConfig(**config)
        elif not isinstance(config, ForecasterConfig):
            raise InputError(f"config must be a ForecasterConfig or a dict, got "
                             f"{type(config).__name__}")
        self.config = c = config
        F = c.input_size
        self.register_buffer("input_mean", torch.zeros(F))
        self.register_buffer("input_std", torch.ones(F))
        self.register_buffer("target_mean", torch.zeros(c.horizon))
        self.register_buffer("target_std", torch.ones(c.horizon))
        sizes = [F, *c.hidden_sizes]
        self.lstms = nn.ModuleList(nn.LSTM(a, b, batch_first=True)
                                   for a, b in zip(sizes[:-1], sizes[1:], strict=True))
        self.dropout = nn.Dropout(c.dropout)
        self.head = nn.Linear(sizes[-1], c.horizon)

    # -------------------------------------------------------------- features and scaling

    def features(self, values: np.ndarray, position: np.ndarray | None = None) -> np.ndarray:
        """Per-step inputs ``(N, F)`` float32: the value, then sin/cos of the seasonal phase.

        ``position`` is the time of each value in steps (needed when ``cycle`` is set).
        """
        v = np.asarray(values, dtype=np.float64)
        cols = [v]
        if self.config.cycle is not None:
            if position is None:
                raise InputError("this model uses seasonal-phase features: pass the position "
                                 "(time in steps) of every value")
            angle = 2 * np.pi * np.asarray(position, dtype=np.float64) / self.config.cycle
            cols += [np.sin(angle), np.cos(angle)]
        return np.stack(cols, axis=1).astype(np.float32)  # (N, F)

    def _level(self, x: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
        if not self.config.relative:
            return x.new_zeros(x.shape[0])
        last = (lengths - 1) if lengths is not None else torch.full(
            (x.shape[0],), x.shape[1] - 1, dtype=torch.long)
        return x[torch.arange(x.shape[0]), last.to(x.device), 0]  # (B,)

    def _relative(self, x: torch.Tensor, level: torch.Tensor) -> torch.Tensor:
        shift = torch.zeros_like(x)
        shift[..., 0] = level[:, None]
        return x - shift  # (B, T, F)

    def fit_standardization(self, windows: WindowSet) -> None:
        """Set the input and target mean/std buffers from the training windows."""
        if len(windows) == 0:
            raise InputError("fit_standardization needs at least one training window")
        x, y = windows.arrays()
        x = torch.as_tensor(x, dtype=torch.float64)  # (O, W, F)
        y = torch.as_tensor(y, dtype=torch.float64)  # (O, horizon)
        level = self._level(x, None)  # (O,)
        rel = self._relative(x, level).reshape(-1, x.shape[-1])  # (O·W, F)
        target = y - level[:, None]  # (O, horizon)
        self.input_mean.copy_(rel.mean(0))
        self.input_std.copy_(rel.std(0).nan_to_num(1.0).clamp_min(1e-6))
        self.target_mean.copy_(target.mean(0))
        self.target_std.copy_(target.std(0).nan_to_num(1.0).clamp_min(1e-6))

    def standardize_targets(self, y: torch.Tensor, level: torch.Tensor) -> torch.Tensor:
        """Targets ``(B, horizon)`` in the scale the network predicts."""
        mean, std = self.target_mean.to(y.dtype), self.target_std.to(y.dtype)
        return (y - level.to(y.dtype)[:, None] - mean) / std

    def unstandardize(self, z: torch.Tensor, level: torch.Tensor) -> torch.Tensor:
        """Network outputs ``(B, horizon)`` back to the series' units."""
        return level[:, None] + self.target_mean + self.target_std * z

    # ----------------------------------------------------------------------- forward

    def _check(self, x: Any, lengths: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
        x = as_tensor(x)
        F = self.config.input_size
        if x.dim() == 2 and F == 1:
            x = x.unsqueeze(-1)  # (B, T) → (B, T, 1)
        if x.dim() != 3 or x.shape[-1] != F or not x.is_floating_point():
            raise InputError(f"this forecaster takes float windows [batch, time, {F}] "
                             f"(value{', sin, cos of the phase' if F == 3 else ''}), got "
                             f"{x.dtype} {tuple(x.shape)}")
        if x.shape[0] == 0 or x.shape[1] == 0:
            raise InputError(f"inputs are empty (shape {tuple(x.shape)})")
        check_finite(x)
        if lengths is not None:
            lengths = check_lengths(lengths, x.shape[0], x.shape[1])
        return x.to(self.head.weight.dtype), lengths

    def forward_standardized(self, x: Any, lengths: Any = None
                             ) -> tuple[torch.Tensor, torch.Tensor]:
        """Standardized outputs ``(B, horizon)`` and the level ``(B,)`` they are relative to."""
        x, lengths = self._check(x, lengths)
        B, T, _ = x.shape
        level = self._level(x, lengths)  # (B,)
        h = (self._relative(x, level) - self.input_mean) / self.input_std  # (B, T, F)
        for i, lstm in enumerate(self.lstms):
            if i:
                h = self.dropout(h)
            if lengths is None:
                h, _ = lstm(h)  # (B, T, H)
            else:
                packed = pack_padded_sequence(h, lengths.cpu(), batch_first=True,
                                              enforce_sorted=False)
                out, _ = lstm(packed)
                h, _ = pad_packed_sequence(out, batch_first=True, total_length=T)
        last = (lengths - 1) if lengths is not None else torch.full((B,), T - 1)
        h_T = h[torch.arange(B), last.to(h.device)]  # (B, H) state at the last valid step
        return self.head(self.dropout(h_T)), level  # (B, horizon), (B,)

    def forward(self, x: Any, lengths: Any = None) -> torch.Tensor:
        """Forecasts ``(B, horizon)`` in the series' units for windows ``x`` ``(B, T, F)``."""
        z, level = self.forward_standardized(x, lengths)
        return self.unstandardize(z, level)

    # ----------------------------------------------------------------------- explaining

    def _embed_window(self, r: torch.Tensor) -> torch.Tensor:
        """Standardized LSTM inputs ``(B, T, F)`` of a window made relative to its last
        value. On a raw window the last step's value is subtracted first, so the same
        function reads raw windows too (on a relative window it subtracts 0)."""
        if self.config.relative:
            shift = torch.zeros_like(r)
            shift[..., 0] = r[:, -1:, 0]  # (B, T): the last value, 0 on a relative window
            r = r - shift
        return (r - self.input_mean.to(r.dtype)) / self.input_std.to(r.dtype)

    def _relative_window(self, x: torch.Tensor, lengths: torch.Tensor
                         ) -> tuple[torch.Tensor, torch.Tensor]:
        """Raw windows ``(B, T, F)`` → the window relative to its last valid value (zero at
        padded steps) and that value, the level ``(B,)`` the model adds to its forecast."""
        x, lengths = self._check(x, lengths)
        level = self._level(x, lengths)  # (B,)
        valid = (torch.arange(x.shape[1])[None, :] < lengths[:, None])[..., None]  # (B, T, 1)
        return self._relative(x, level) * valid, level

    def explainable_parts(self):
        """The forecast as explainable parts: relative, standardized window → LSTMs → the
        last state → one linear read-out **in the series' units**.

        The model's output is ``y_k = level + target_mean_k + target_std_k · (W_k h_T +
        b_k)``; the affine de-standardization is folded into the head (``W' = diag(std)
        W``, ``b' = std ⊙ b + mean``), so every method explains ``y_k − level``: the
        forecast's change from the window's last value, in the series' units (for
        ``relative=False`` the level is 0 and that is the forecast itself). Inputs are the
        window relative to that last value (``preprocess``), so a zero baseline is a flat
        window; the prediction is ``y``. The relative window's last value is 0 by
        construction; moving it away from 0 moves the whole window, as moving the last
        observation does (``embed`` subtracts it).
        """
        from ..parts import ModelParts
        W, b = self.head.weight.detach(), self.head.bias.detach()
        std, mean = self.target_std.to(W.dtype), self.target_mean.to(W.dtype)
        head = nn.Linear(W.shape[1], W.shape[0]).to(W.device, W.dtype)
        with torch.no_grad():
            head.weight.copy_(std[:, None] * W)  # (horizon, H)
            head.bias.copy_(std * b + mean)
        head.requires_grad_(False)
        labels = [f"t+{k + 1}" for k in range(self.config.horizon)]
        return ModelParts(self, self._embed_window, list(self.lstms), "last", head, None,
                          "features", "values", labels, self._relative_window)

    def config_dict(self) -> dict[str, Any]:
        return asdict(self.config)


def forecast(model: LSTMForecaster, history: np.ndarray | None = None,
             horizon: int | None = None, *, start: float | None = None) -> np.ndarray:
    """Forecast the values that follow ``history``.

    Parameters
    ----------
    model : LSTMForecaster
        A trained forecaster (``model.meta`` holds the end of its training data).
    history : np.ndarray, optional
        1-D past values, at least ``model.config.window`` of them (only the last ``window``
        are read). Default: the end of the series the model was trained on (its last
        ``window`` values, stored in ``model.meta["history"]``).
    horizon : int, optional
        Number of future values; default the trained horizon. A longer horizon is reached
        **autoregressively**: the model's own forecasts are appended to the history and fed
        back in, ``config.horizon`` values at a time, so errors compound.
    start : float, optional
        Position (time in steps) of ``history[0]``; required with a custom history when the
        model uses seasonal-phase features.

    Returns
    -------
    np.ndarray
        float64 ``(horizon,)``.

    Examples
    --------
    >>> model = lstmlens.load("runs/timeseries")  # doctest: +SKIP
    >>> forecast(model, horizon=104).shape  # doctest: +SKIP
    (104,)
    """
    if not isinstance(model, LSTMForecaster):
        raise ModelError(f"forecast takes an LSTMForecaster, got {type(model).__name__}")
    c = model.config
    meta = getattr(model, "meta", None) or {}
    if history is None:
        if "history" not in meta:
            raise InputError("this model stores no history (model.meta['history']); pass "
                             "history= with the last values of the series")
        history, start = np.asarray(meta["history"], dtype=np.float64), meta.get("history_start")
    elif c.cycle is not None and start is None:
        raise InputError("this model uses seasonal-phase features: pass start= (the position "
                         "in steps of history[0]; see model.meta['history_start'] for where "
                         "the stored history starts)")
    hist = np.asarray(as_tensor(history, "history").double().numpy())
    if hist.ndim != 1:
        raise InputError(f"history must be 1-D (one series), got shape {hist.shape}")
    if len(hist) < c.window:
        raise InputError(f"history has {len(hist)} values; this model reads windows of "
                         f"{c.window} past values")
    bad = ~np.isfinite(hist)
    if bad.any():
        raise InputError(f"history has {int(bad.sum())} NaN/inf value(s), the first at index "
                         f"{int(np.flatnonzero(bad)[0])}; only finite values are accepted")
    horizon = c.horizon if horizon is None else horizon
    if not _whole(horizon, 1):
        raise InputError(f"horizon must be a whole number ≥ 1, got {horizon!r}")
    offset = 0.0 if start is None else float(start)
    values = list(hist)
    model.eval()
    with torch.no_grad():
        while len(values) - len(hist) < horizon:
            n = len(values)
            pos = offset + np.arange(n - c.window, n, dtype=np.float64)
            x = model.features(np.asarray(values[-c.window:]), pos)[None]  # (1, W, F)
            values.extend(model(torch.as_tensor(x))[0].double().tolist())
    return np.asarray(values[len(hist): len(hist) + horizon], dtype=np.float64)
