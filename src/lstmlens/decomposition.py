"""``decompose``: how much of a prediction each phrase accounts for (contextual decomposition).

For a phrase S (inclusive ``(start, end)`` positions), the logits split exactly into a part
due to S (``relevant``) and the rest (``irrelevant``): ``relevant + irrelevant = logits −
head bias``. Equations: REFERENCES §3.2; the work happens in ``methods/cd_core.py``.
"""

from __future__ import annotations

import copy
import html
import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .errors import InputError
from .inputs import as_dtype
from .methods.cd_core import cd_lstm
from .parts import ModelParts, parts_of


@dataclass
class Decomposition:
    """Relevant and irrelevant logits of each span, ``[n_spans, n_classes]`` each."""

    spans: list[tuple[int, int, int]]  # (sequence, start, end), inclusive
    relevant: torch.Tensor
    irrelevant: torch.Tensor
    logits: torch.Tensor  # (n_spans, n_classes) the model's logits of each span's sequence
    bias: torch.Tensor  # (n_classes,)
    bias_rule: str = "code"
    rows: torch.Tensor | None = None  # (n_spans,) the sequence of each span

    @property
    def delta(self) -> float:
        """max |relevant + irrelevant − (logits − bias)|: how far CD misses conservation."""
        full = self.relevant + self.irrelevant
        return float((full - (self.logits - self.bias)).abs().max())

    def to_json(self) -> str:
        return json.dumps({"spans": self.spans, "relevant": self.relevant.tolist(),
                           "irrelevant": self.irrelevant.tolist(),
                           "logits": self.logits.tolist(), "bias": self.bias.tolist(),
                           "bias_rule": self.bias_rule, "delta": self.delta})

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><td>{html.escape(str(s))}</td><td>{html.escape(str([round(v, 4) for v in r]))}"
            f"</td></tr>" for s, r in zip(self.spans, self.relevant.tolist(), strict=True))
        return f"<table><tr><th>span</th><th>relevant</th></tr>{rows}</table>"


def _whole(v: Any) -> bool:
    if isinstance(v, torch.Tensor):
        return v.dim() == 0 and not v.is_floating_point() and v.dtype != torch.bool
    return isinstance(v, int | np.integer) and not isinstance(v, bool)


def normalise_spans(spans: Any, lengths: torch.Tensor, single: bool) -> list[tuple[int, int, int]]:
    """``[(start, end)]`` for one sequence or ``[(seq, start, end)]`` → checked triples."""
    out = []
    for sp in spans:
        if not all(_whole(v) for v in sp):
            raise InputError(f"span positions must be whole numbers, got {tuple(sp)}")
        sp = tuple(int(v) for v in sp)
        if single and len(sp) == 2:
            sp = (0, *sp)
        if len(sp) != 3:
            raise InputError(f"a span is (start, end) for one sequence or (sequence, start, "
                             f"end) for a batch; got {sp}")
        b, s, e = sp
        if not 0 <= b < len(lengths):
            raise InputError(f"span {sp} names sequence {b}; there are {len(lengths)}")
        if s > e:
            raise InputError(f"span {sp} is reversed: start {s} > end {e} (ends are inclusive)")
        if s < 0 or e >= int(lengths[b]):
            raise InputError(f"span {sp} lies outside sequence {b} of length {int(lengths[b])}"
                             f" (valid positions 0..{int(lengths[b]) - 1})")
        out.append((b, s, e))
    if not out:
        raise InputError("give at least one span")
    return out


def cd_rows(parts: ModelParts, x: torch.Tensor, lengths: torch.Tensor, rows: torch.Tensor,
            in_span: torch.Tensor, features: torch.Tensor | None, dtype: torch.dtype,
            bias_rule: str = "code", spans: list | None = None) -> Decomposition:
    """CD of many rows at once. Row r decomposes sequence ``rows[r]`` with the steps where
    ``in_span[r]`` (N, T) is true relevant — only the input features where ``features[r]``
    (N, E) is true, when given. ``x`` is the raw model input batch, already checked."""
    if bias_rule not in ("code", "paper"):
        raise InputError(f"bias_rule must be 'code' (the whole sequence accounts for the "
                         f"whole prediction) or 'paper', got {bias_rule!r}")
    with torch.no_grad():
        emb = parts.embed(x).to(dtype)  # (B, T, E)
        B, T, _ = emb.shape
        bidir = parts.lstms[-1].bidirectional
        read = None  # last/final pooling reads one position per direction of the top layer
        if parts.pooling in ("last", "final"):
            last = lengths[rows] - 1
            read = torch.stack([last, last if parts.pooling == "last" else 0 * last], 1)
        h, xr = emb, None  # the first LSTM's relevant input: the true input in the span
        for i, lstm in enumerate(parts.lstms):
            top = i == len(parts.lstms) - 1
            xr, h = cd_lstm(lstm, h, xr, in_span, rows, lengths, bias_rule,
                            features if i == 0 else None, read if top else None)
            # β (N, T, ·) or, read at the pooled positions, (N, ·); true h (B, T, ·)
        W = parts.head.weight.detach().to(dtype)  # (C, H·D)
        bias = (parts.head.bias.detach().to(dtype) if parts.head.bias is not None
                else torch.zeros(W.shape[0], dtype=dtype))
        if parts.pooling in ("last", "final"):
            pb = xr  # (N, H·D) β at the pooled positions
            pooled_true, _ = parts.pool(h, lengths, bidir)
            pg = pooled_true[rows] - pb  # γ = h − β
        else:  # attention weights come from the true forward pass, as the output gates do
            att = parts.pooling
            if next(att.parameters()).dtype != dtype:
                att = copy.deepcopy(att).to(dtype)
            mask = torch.arange(T)[None, :] < lengths[:, None]
            pooled_true, alpha = att(h, mask)  # alpha (B, T)
            a = alpha.to(dtype)[rows][..., None]
            pb = (a * xr).sum(1)  # (N, H·D)
            pg = pooled_true[rows] - pb  # γ = h − β, and Σ α (β + γ) = pooled
        logits = pooled_true @ W.t() + bias  # (B, C)
        return Decomposition(spans or [], pb @ W.t(), pg @ W.t(), logits[rows], bias,
                             bias_rule, rows)


def decompose(model: Any, inputs: Any, spans: Any, lengths: Any = None, *,
              dtype: Any = torch.float32, bias_rule: str = "code") -> Decomposition:
    """Contextual decomposition of ``model``'s logits into each span and the rest.

    Parameters
    ----------
    model
        An lstmlens model or :func:`lstmlens.wrap` of a user's module.
    inputs
        Token ids ``[T]`` / ``[B, T]`` (or features ``[T, F]`` / ``[B, T, F]``).
    spans
        Inclusive ``(start, end)`` pairs for one sequence, or ``(sequence, start, end)``.
    bias_rule
        ``"code"`` (default: bias products inside the span count for it, so the whole
        sequence accounts for the whole prediction) or ``"paper"`` (always irrelevant).

    Examples
    --------
    >>> d = decompose(model, ids, [(0, 0), (2, 4)])  # doctest: +SKIP
    >>> d.relevant.shape  # [n_spans, n_classes]  # doctest: +SKIP
    """
    from .explaining import prepare
    parts = parts_of(model)
    dtype = as_dtype(dtype)
    # one sequence: a text, ids [T] or features [T, F] (then spans may omit the sequence)
    single = isinstance(inputs, str) or (not isinstance(inputs, list | tuple) and torch.as_tensor(
        inputs).dim() == (1 if parts.input_kind == "tokens" else 2))
    _, x, L, _ = prepare(model, inputs, lengths)  # checks ids, features, text and lengths
    if parts.preprocess is not None:  # as explain does: e.g. the forecaster's relative window
        x, _ = parts.preprocess(x, L)
    spans = normalise_spans(spans, L, single)
    rows = torch.tensor([s[0] for s in spans], dtype=torch.long)
    pos = torch.arange(x.shape[1])[None, :]
    in_span = (pos >= torch.tensor([s[1] for s in spans])[:, None]) & (
        pos <= torch.tensor([s[2] for s in spans])[:, None])  # (N, T)
    return cd_rows(parts, x, L, rows, in_span, None, dtype, bias_rule, spans)
