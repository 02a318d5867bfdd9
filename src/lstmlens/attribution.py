"""``Attribution``: the one result type of every explanation method."""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from typing import Any

import torch


def _colour(v: float, vmax: float) -> str:
    """Red for positive, blue for negative evidence, white at zero."""
    a = 0.0 if vmax == 0 else min(1.0, abs(v) / vmax)
    return f"rgba(220,50,47,{a:.2f})" if v >= 0 else f"rgba(38,139,210,{a:.2f})"


@dataclass
class Attribution:
    """Scores of each input position (and feature) for one target per sequence.

    ``scores`` is ``[B, T]`` for token inputs and ``[B, T, F]`` for feature inputs (series,
    speech frames), zero at padded steps. ``delta`` says how far the scores miss the method's
    own conservation law (``None`` where the method has none). ``prediction`` holds the
    model's class probabilities, or, for ``outputs == "values"`` (forecasters), its output
    values themselves.
    """

    scores: torch.Tensor
    method: str
    target: torch.Tensor  # (B,) class (or output step) explained
    prediction: torch.Tensor  # (B, C) probabilities of the model, or its output values
    lengths: torch.Tensor  # (B,)
    tokens: list[list[str]] | None = None
    params: dict[str, Any] = field(default_factory=dict)
    delta: torch.Tensor | None = None  # (B,)
    classes: list[str] | None = None
    outputs: str = "classes"  # or "values": prediction holds values, not probabilities

    def __post_init__(self) -> None:
        T = self.scores.shape[1]
        pad = torch.arange(T)[None, :] >= self.lengths[:, None]  # (B, T)
        if pad.any():
            self.scores = self.scores.masked_fill(
                pad.view(*pad.shape, *([1] * (self.scores.dim() - 2))), 0.0)

    def token_scores(self) -> torch.Tensor:
        """``[B, T]``: per-feature scores summed over features where there are any."""
        return self.scores if self.scores.dim() == 2 else self.scores.sum(-1)

    def label(self, k: int) -> str:
        """The name of output ``k``: its class, token or step name, else the index."""
        return self.classes[k] if self.classes and k < len(self.classes) else str(k)

    def to_dict(self) -> dict[str, Any]:
        out = []
        for b in range(self.scores.shape[0]):
            L = int(self.lengths[b])
            item = {"target": self.label(int(self.target[b])),
                    "target_index": int(self.target[b]),
                    ("values" if self.outputs == "values" else "probabilities"):
                        [float(p) if self.outputs == "values" else round(float(p), 6)
                         for p in self.prediction[b]],
                    "scores": self.scores[b, :L].double().tolist()}
            if self.tokens is not None:
                item["tokens"] = self.tokens[b][:L]
            if self.delta is not None:
                item["delta"] = float(self.delta[b])
            out.append(item)
        return {"method": self.method, "params": self.params, "items": out}

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    def to_html(self) -> str:
        """Tokens coloured by score (escaped: a token such as ``<script>`` is shown as text)."""
        parts = [f"<div class='lstmlens-attribution'><b>{html.escape(self.method)}</b>"]
        ts = self.token_scores()
        for b in range(ts.shape[0]):
            L = int(self.lengths[b])
            vmax = float(ts[b, :L].abs().max()) if L else 0.0
            toks = self.tokens[b][:L] if self.tokens is not None else [str(t) for t in range(L)]
            spans = "".join(
                f"<span title='{float(v):.4g}' style='background:{_colour(float(v), vmax)};"
                f"padding:1px 2px;margin:1px'>{html.escape(t)}</span>"
                for t, v in zip(toks, ts[b, :L], strict=True))
            k = int(self.target[b])
            value = (f"value = {float(self.prediction[b, k]):.4g}" if self.outputs == "values"
                     else f"p = {float(self.prediction[b, k]):.3f}")
            head = f"target {html.escape(self.label(k))} ({value})"
            parts.append(f"<p>{head}<br>{spans}</p>")
        parts.append("</div>")
        return "".join(parts)

    def _repr_html_(self) -> str:
        return self.to_html()

    def __repr__(self) -> str:
        return (f"<Attribution {self.method} scores={tuple(self.scores.shape)} "
                f"target={self.target.tolist()}>")
