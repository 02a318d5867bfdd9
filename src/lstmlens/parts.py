"""The parts of an explainable model: input → stacked LSTMs → pooling → linear head.

Exact methods (contextual decomposition, LRP) follow a prediction through each part, so
they need to know them. lstmlens models describe themselves; a user's module is described
with :func:`wrap`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from .errors import ModelError


@dataclass
class ModelParts:
    """``embed(x) → lstms → pool → head``; ``pooling`` is ``"last"`` or an attention module.

    ``embed`` maps the model's raw inputs ``[B, T]`` (token ids) or ``[B, T, F]`` (features)
    to the first LSTM's inputs ``[B, T, E]``; ``embedding`` is the ``nn.Embedding`` when
    there is one (for baselines such as the PAD token).

    ``outputs`` says what the head gives: ``"classes"`` (logits; the prediction is their
    softmax) or ``"values"`` (numbers such as a forecast; the prediction is the values
    themselves). ``labels`` names the head's outputs (class names, or the vocabulary of a
    language model). ``preprocess(x, lengths) -> (inputs, offset)``, when given, turns the
    user's raw inputs into what the methods vary and returns what the model adds to the
    head's read-out outside the LSTM path (the forecaster's level, ``(B,)``): the model's
    output is ``head(...) + offset``.
    """

    model: nn.Module
    embed: Callable[[torch.Tensor], torch.Tensor]
    lstms: list[nn.LSTM]
    pooling: Any  # "last", "final" or a module returning (pooled, weights) from (h, mask)
    head: nn.Linear
    embedding: nn.Embedding | None = None
    input_kind: str = "tokens"  # or "features"
    outputs: str = "classes"  # or "values"
    labels: list[str] | None = None
    preprocess: Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]] \
        | None = None
    # every part is one the exact methods (CD, LRP) can follow
    exact: ClassVar[bool] = True

    def __post_init__(self) -> None:
        if self.outputs not in ("classes", "values"):
            raise ModelError(f"outputs must be 'classes' or 'values', got {self.outputs!r}")

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Logits through the parts alone (used to check a wrap against the module)."""
        from .engine import trace_lstm  # local: engine imports nothing from here
        h = self.embed(x)
        for lstm in self.lstms:
            series = trace_lstm(lstm, h, lengths)
            D = 2 if lstm.bidirectional else 1
            top = lstm.num_layers - 1
            h = torch.cat([series[f"layers.{top}.{d}.hidden"]
                           for d in ("forward", "backward")[:D]], -1)
        return self.head(self.pool(h, lengths, self.lstms[-1].bidirectional)[0])

    def logits_from_embedded(self, e: torch.Tensor, lengths: torch.Tensor | None = None
                             ) -> torch.Tensor:
        """Differentiable logits (B, C) from the first LSTM's inputs ``e`` (B, T, E), through
        the model's own ``nn.LSTM`` modules (packed when lengths differ)."""
        from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
        B, T, _ = e.shape
        h = e
        for lstm in self.lstms:
            if lengths is None or bool((lengths == T).all()):
                h, _ = lstm(h)
            else:
                packed = pack_padded_sequence(h, lengths.cpu(), batch_first=True,
                                              enforce_sorted=False)
                h, _ = pad_packed_sequence(lstm(packed)[0], batch_first=True, total_length=T)
        return self.head(self.pool(h, lengths, self.lstms[-1].bidirectional)[0])

    def pool(self, h: torch.Tensor, lengths: torch.Tensor | None, bidirectional: bool):
        """Pooled state (B, H·D) and attention weights (B, T) or None."""
        B, T, _ = h.shape
        L = lengths if lengths is not None else torch.full((B,), T)
        if self.pooling == "last":  # the output sequence at the last valid step
            return h[torch.arange(B), L - 1], None
        if self.pooling == "final":  # the final states h_n: backward half at step 0
            Hd = h.shape[-1] // (2 if bidirectional else 1)
            last = h[torch.arange(B), L - 1, :Hd]
            return (torch.cat([last, h[:, 0, Hd:]], 1) if bidirectional else last), None
        return self.pooling(h, torch.arange(T)[None, :] < L[:, None])  # mask (B, T)


def _get(module: nn.Module, name: str | None, what: str) -> Any:
    if name is None:
        return None
    try:
        return module.get_submodule(name)
    except AttributeError:
        names = [n for n, _ in module.named_modules() if n]
        raise ModelError(f"{type(module).__name__} has no submodule {name!r} for {what}; "
                         f"its submodules are: {', '.join(names[:20])}") from None


def wrap(module: nn.Module, *, embedding: str | None = None, lstm: str | list[str] = "lstm",
         head: str = "fc", pooling: str = "last", outputs: str = "classes") -> ModelParts:
    """Name the parts of a user's ``embedding → LSTM(s) → linear`` module.

    Parameters
    ----------
    module
        The user's model, e.g. computing ``fc(lstm(emb(ids))[0][:, -1])``.
    embedding
        Submodule name of the ``nn.Embedding`` (``None`` for float feature inputs).
    lstm
        Submodule name(s) of the ``nn.LSTM``\\ s, applied in this order.
    head
        Submodule name of the final ``nn.Linear``.
    pooling
        ``"last"`` (the LSTM's output sequence at the last valid step, as in
        ``lstm(x)[0][:, -1]``), ``"final"`` (its final states ``h_n``: for a bidirectional
        LSTM the forward half at the last step and the backward half at the first), or the
        name of an attention submodule returning ``(pooled, weights)`` from ``(h, mask)``.
    outputs
        ``"classes"`` (the head gives logits) or ``"values"`` (a regression head: the
        prediction is its output, not a softmax; the default target is output 0).

    Examples
    --------
    >>> parts = wrap(net, embedding="emb", lstm="lstm", head="fc")  # doctest: +SKIP
    >>> lstmlens.explain(parts, ids, method="cd")  # doctest: +SKIP
    """
    emb = _get(module, embedding, "embedding")
    if emb is not None and not isinstance(emb, nn.Embedding):
        raise ModelError(f"{embedding!r} is a {type(emb).__name__}, not an nn.Embedding")
    names = [lstm] if isinstance(lstm, str) else list(lstm)
    lstms = [_get(module, n, "lstm") for n in names]
    for n, m in zip(names, lstms, strict=True):
        if not isinstance(m, nn.LSTM):
            raise ModelError(f"{n!r} is a {type(m).__name__}, not an nn.LSTM")
        if not m.batch_first:
            raise ModelError(f"{n!r} has batch_first=False; lstmlens explains batch-first "
                             "LSTMs (inputs [batch, time, features])")
    fc = _get(module, head, "head")
    if not isinstance(fc, nn.Linear):
        raise ModelError(f"{head!r} is a {type(fc).__name__}; the head must be one nn.Linear "
                         "(exact methods decompose a linear read-out)")
    pool = pooling if pooling in ("last", "final") else _get(module, pooling, "pooling")
    embed = emb if emb is not None else (lambda x: x)
    return ModelParts(module, embed, lstms, pool, fc, emb,
                      "tokens" if emb is not None else "features", outputs)


def parts_of(model: Any) -> ModelParts:
    """The parts of an lstmlens model, or of a :class:`ModelParts` itself."""
    if isinstance(model, ModelParts):
        return model
    describe = getattr(model, "explainable_parts", None)
    if describe is None:
        raise ModelError(
            f"{type(model).__name__} does not describe its parts; wrap it first: "
            "lstmlens.wrap(module, embedding=..., lstm=..., head=...)"
        )
    return describe()
