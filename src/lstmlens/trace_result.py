"""``Trace``: every series of every traced LSTM, by readable key, with views for people."""

from __future__ import annotations

import difflib
import html
import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .weights import DIRECTIONS, SERIES

SIGMOID_GATES = ("input_gate", "forget_gate", "output_gate")


@dataclass
class TracedModule:
    """The series of one ``nn.LSTM`` call: keys ``layers.{k}.{direction}.{series}``."""

    name: str
    series: dict[str, torch.Tensor]  # each (B, T, units), zeros at padded steps
    mask: torch.Tensor  # (B, T) bool
    lengths: torch.Tensor  # (B,)
    num_layers: int
    bidirectional: bool
    hidden_size: int
    proj_size: int
    input_size: int

    def final_state(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(h_n, c_n)`` in ``nn.LSTM``'s layout ``(layers * directions, B, ·)``."""
        B = self.mask.shape[0]
        last = (self.lengths - 1).to(torch.long)
        rows = torch.arange(B)
        hs, cs = [], []
        for k in range(self.num_layers):
            for d in DIRECTIONS[: 2 if self.bidirectional else 1]:
                at = last if d == "forward" else torch.zeros_like(last)
                hs.append(self.series[f"layers.{k}.{d}.hidden"][rows, at])
                cs.append(self.series[f"layers.{k}.{d}.cell"][rows, at])
        return torch.stack(hs), torch.stack(cs)


class _View:
    """Attribute/index access to a key prefix: ``trace.layers[0].forward.cell``."""

    def __init__(self, trace: Trace, prefix: str):
        self._trace, self._prefix = trace, prefix

    def _step(self, part: str) -> Any:
        key = f"{self._prefix}.{part}" if self._prefix else part
        return self._trace._walk(key)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return self._step(name)

    def __getitem__(self, part: int | str) -> Any:
        return self._step(str(part))

    def keys(self) -> list[str]:
        return [k for k in self._trace.keys() if k.startswith(self._prefix + ".")]

    def __dir__(self) -> list[str]:
        n = len(self._prefix) + 1
        return sorted({k[n:].split(".")[0] for k in self.keys()})

    def __repr__(self) -> str:
        return f"<Trace view {self._prefix!r}: {len(self.keys())} series>"


class Trace:
    """Every gate at every step of the traced LSTMs.

    Keys read ``layers.{k}.{forward|backward}.{series}`` for a bare ``nn.LSTM`` and
    ``{module}.layers.{k}...`` inside a larger module (``{module}@{n}`` for its n-th call
    after the first). Series: ``input_gate``, ``forget_gate``, ``cell_candidate``,
    ``output_gate``, ``cell``, ``hidden``, each ``[batch, time, units]`` in input order
    (the backward direction aligned to input positions) with zeros at padded steps. With a
    projection (``proj_size = P``) ``hidden`` has P units, the module's own output.
    """

    def __init__(self, modules: dict[str, TracedModule], output: Any = None):
        self.modules = modules
        self.output = output  # what the traced module returned (None for a bare nn.LSTM)
        self._series: dict[str, torch.Tensor] = {}
        for name, m in modules.items():
            for k, v in m.series.items():
                self._series[f"{name}.{k}" if name else k] = v

    # -- mapping --------------------------------------------------------------------
    def keys(self) -> list[str]:
        return list(self._series)

    def items(self):
        return self._series.items()

    def __iter__(self):
        return iter(self._series)

    def __len__(self) -> int:
        return len(self._series)

    def __contains__(self, key: object) -> bool:
        return key in self._series

    def __getitem__(self, key: str) -> torch.Tensor:
        if key in self._series:
            return self._series[key]
        close = difflib.get_close_matches(key, self.keys(), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise KeyError(f"no series {key!r} in this trace{hint} (see trace.keys())")

    def _walk(self, key: str) -> Any:
        if key in self._series:
            return self._series[key]
        if any(k.startswith(key + ".") for k in self._series):
            return _View(self, key)
        raise AttributeError(f"no series or group {key!r} in this trace (see trace.keys())")

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or name in ("modules", "output"):
            raise AttributeError(name)
        return self._walk(name)

    # -- masks and shapes -----------------------------------------------------------
    def module_of(self, key: str) -> TracedModule:
        """The traced module a key belongs to."""
        for name in sorted(self.modules, key=len, reverse=True):
            if not name or key == name or key.startswith(name + "."):
                return self.modules[name]
        raise KeyError(key)

    @property
    def mask(self) -> torch.Tensor:
        """``[batch, time]`` valid steps of the first traced LSTM (see ``mask_of``)."""
        return next(iter(self.modules.values())).mask

    @property
    def lengths(self) -> torch.Tensor:
        return next(iter(self.modules.values())).lengths

    def mask_of(self, key: str) -> torch.Tensor:
        return self.module_of(key).mask

    def final_state(self, module: str = "") -> tuple[torch.Tensor, torch.Tensor]:
        """``(h_n, c_n)`` of one traced module, in ``nn.LSTM``'s layout."""
        name = module if module in self.modules else next(iter(self.modules))
        return self.modules[name].final_state()

    # -- conversions ----------------------------------------------------------------
    def numpy(self) -> dict[str, np.ndarray]:
        """Every series as a numpy array, by key."""
        return {k: v.detach().cpu().numpy() for k, v in self._series.items()}

    def to_json(self, keys: list[str] | None = None, decimals: int | None = 6) -> str:
        """JSON with ``series`` (key → nested lists ``[B][T][units]``), masks and lengths."""
        chosen = keys if keys is not None else self.keys()
        series = {}
        for k in chosen:
            a = self[k].detach().cpu().double().numpy()
            series[k] = (np.round(a, decimals) if decimals is not None else a).tolist()
        return json.dumps({
            "series": series,
            "modules": {name or "": {"mask": m.mask.tolist(), "lengths": m.lengths.tolist(),
                                     "num_layers": m.num_layers,
                                     "bidirectional": m.bidirectional,
                                     "hidden_size": m.hidden_size, "proj_size": m.proj_size}
                        for name, m in self.modules.items()},
        })

    def summary(self) -> list[dict[str, Any]]:
        """One row per module, layer and direction: mean of each series over valid steps and,
        per sigmoid gate, the fractions of values left- (< 0.1) and right-saturated (> 0.9)."""
        rows = []
        for name, m in self.modules.items():
            valid = m.mask  # (B, T)
            for k in range(m.num_layers):
                for d in DIRECTIONS[: 2 if m.bidirectional else 1]:
                    row: dict[str, Any] = {"module": name, "layer": k, "direction": d,
                                           "units": m.hidden_size,
                                           "steps": int(valid.sum())}
                    for s in SERIES:
                        v = m.series[f"layers.{k}.{d}.{s}"][valid.to(m.series[
                            f"layers.{k}.{d}.{s}"].device)]  # (N, units)
                        row[f"{s}_mean"] = float(v.mean())
                        if s == "cell":
                            row["cell_abs_mean"] = float(v.abs().mean())
                        if s in SIGMOID_GATES:
                            row[f"{s}_below_0.1"] = float((v < 0.1).double().mean())
                            row[f"{s}_above_0.9"] = float((v > 0.9).double().mean())
                    rows.append(row)
        return rows

    def __repr__(self) -> str:
        mods = ", ".join(
            f"{n or 'lstm'}: {m.num_layers} layer(s) × {2 if m.bidirectional else 1} "
            f"direction(s), {m.hidden_size} units"
            for n, m in self.modules.items()
        )
        B, T = self.mask.shape
        return f"<Trace batch={B} time={T} {len(self)} series; {mods}>"

    def _repr_html_(self) -> str:
        cols = ["module", "layer", "direction", "units"] + [f"{g}_mean" for g in SERIES] + [
            f"{g}_above_0.9" for g in SIGMOID_GATES]
        head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
        body = []
        for r in self.summary():
            cells = []
            for c in cols:
                v = r[c]
                cells.append(f"<td>{v:.3f}</td>" if isinstance(v, float)
                             else f"<td>{html.escape(str(v))}</td>")
            body.append("<tr>" + "".join(cells) + "</tr>")
        return (f"<div><p>{html.escape(repr(self))}</p><table><thead><tr>{head}</tr></thead>"
                f"<tbody>{''.join(body)}</tbody></table></div>")
