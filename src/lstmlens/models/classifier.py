"""The stacked-LSTM sequence classifier, built like the seed's §5 Keras example.

The seed's model is ``LSTM(128, return_sequences=True) → LSTM(64) → Dense(10, softmax)``:
:class:`LSTMClassifier` with ``hidden_sizes=(128, 64)``. Each stacked LSTM is its own
``nn.LSTM`` (``lstms.0``, ``lstms.1``, ...) so sizes may differ between layers, as in Keras.
Models return logits; ``predict_proba`` applies the softmax.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from ..errors import InputError
from ..inputs import as_tensor, check_finite, check_lengths
from .registry import register_model


@dataclass
class ClassifierConfig:
    """Hyper-parameters of :class:`LSTMClassifier`.

    Exactly one of ``input_size`` (float features per step) and ``vocab_size`` (token ids,
    0 is padding) is set.
    """

    num_classes: int
    input_size: int | None = None
    vocab_size: int | None = None
    embedding_dim: int = 64
    hidden_sizes: list[int] = field(default_factory=lambda: [128, 64])
    bidirectional: bool = False
    pooling: str = "last"  # "last" or "attention"
    dropout: float = 0.0
    standardize: bool = False  # features: subtract a stored mean, divide by a stored std

    def __post_init__(self) -> None:
        def whole(v: Any) -> bool:
            return isinstance(v, int) and not isinstance(v, bool)

        if isinstance(self.hidden_sizes, (str, bytes)) or not isinstance(
                self.hidden_sizes, (list, tuple)) or not all(whole(h) for h in self.hidden_sizes):
            raise InputError(f"hidden_sizes must be a list of whole numbers (units per LSTM "
                             f"layer), got {self.hidden_sizes!r}")
        self.hidden_sizes = [int(h) for h in self.hidden_sizes]
        if (self.input_size is None) == (self.vocab_size is None):
            raise InputError("set exactly one of input_size (features) and vocab_size (tokens)")
        for name, least in (("num_classes", 2), ("input_size", 1), ("vocab_size", 2),
                            ("embedding_dim", 1)):
            v = getattr(self, name)
            if v is not None and (not whole(v) or v < least):
                raise InputError(f"{name} must be a whole number ≥ {least}, got {v!r}")
        if self.pooling not in ("last", "attention"):
            raise InputError(f"pooling must be 'last' or 'attention', got {self.pooling!r}")
        if not self.hidden_sizes or min(self.hidden_sizes) < 1:
            raise InputError("need at least one LSTM layer of ≥ 1 unit")
        if not isinstance(self.dropout, (int, float)) or not 0 <= self.dropout < 1:
            raise InputError(f"dropout must be a number in [0, 1), got {self.dropout!r}")


class AdditiveAttention(nn.Module):
    """Bahdanau-style pooling: α = softmax_t(vᵀ tanh(W h_t + b)) over valid steps."""

    def __init__(self, size: int, attention_size: int | None = None):
        super().__init__()
        self.proj = nn.Linear(size, attention_size or size)
        self.score = nn.Linear(attention_size or size, 1, bias=False)

    def forward(self, h: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        e = self.score(torch.tanh(self.proj(h))).squeeze(-1)  # (B, T)
        e = e.masked_fill(~mask, float("-inf"))
        alpha = torch.softmax(e, dim=1)  # (B, T)
        return torch.einsum("bt,bth->bh", alpha, h), alpha  # (B, H), (B, T)


@register_model("classifier")
class LSTMClassifier(nn.Module):
    """Stacked LSTM sequence classifier: (embedding) → LSTMs → last state / attention → linear.

    Examples
    --------
    >>> model = LSTMClassifier(ClassifierConfig(num_classes=10, input_size=100))
    >>> model(torch.randn(2, 7, 100)).shape
    torch.Size([2, 10])
    """

    def __init__(self, config: ClassifierConfig | dict[str, Any]):
        super().__init__()
        if isinstance(config, dict):
            known = set(ClassifierConfig.__dataclass_fields__)
            unknown = sorted(set(config) - known)
            if unknown:
                raise InputError(f"unknown classifier setting(s) {unknown}; accepted: "
                                 f"{sorted(known)}")
            try:
                config = ClassifierConfig(**config)
            except TypeError as e:  # a required setting (num_classes) is missing
                raise InputError(f"classifier config is incomplete: {e}") from None
        elif not isinstance(config, ClassifierConfig):
            raise InputError(f"config must be a ClassifierConfig or a dict, got "
                             f"{type(config).__name__}")
        self.config = config
        c = config
        if c.vocab_size is not None:
            self.embedding = nn.Embedding(c.vocab_size, c.embedding_dim, padding_idx=0)
            size = c.embedding_dim
        else:
            self.embedding = None
            size = c.input_size
        if c.standardize and c.input_size is not None:
            self.register_buffer("input_mean", torch.zeros(c.input_size))
            self.register_buffer("input_std", torch.ones(c.input_size))
        D = 2 if c.bidirectional else 1
        layers = []
        for h in c.hidden_sizes:
            layers.append(nn.LSTM(size, h, batch_first=True, bidirectional=c.bidirectional))
            size = h * D
        self.lstms = nn.ModuleList(layers)
        self.dropout = nn.Dropout(c.dropout)
        self.attention = AdditiveAttention(size) if c.pooling == "attention" else None
        self.head = nn.Linear(size, c.num_classes)

    @property
    def input_kind(self) -> str:
        return "tokens" if self.embedding is not None else "features"

    def check_inputs(self, x: torch.Tensor) -> None:
        """Refuse inputs of the wrong kind or shape, saying what this model takes."""
        c = self.config
        if self.embedding is not None:
            if x.dim() != 2 or x.is_floating_point() or x.is_complex() or x.dtype == torch.bool:
                raise InputError(f"this model takes token ids [batch, time], got "
                                 f"{x.dtype} {tuple(x.shape)}")
            if x.numel() and (int(x.min()) < 0 or int(x.max()) >= c.vocab_size):
                raise InputError(f"token ids must lie in 0..{c.vocab_size - 1}")
        elif x.dim() != 3 or x.shape[-1] != c.input_size or not x.is_floating_point():
            raise InputError(f"this model takes float features [batch, time, {c.input_size}], "
                             f"got {x.dtype} {tuple(x.shape)}")
        if x.shape[0] == 0 or x.shape[1] == 0:
            raise InputError(f"inputs are empty (shape {tuple(x.shape)})")
        check_finite(x)

    def encode(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Hidden states of the last LSTM layer, (B, T, H·D), zeros at padded steps."""
        B, T = x.shape[:2]
        h = self.embed(x)  # (B, T, E)
        for i, lstm in enumerate(self.lstms):
            if i:
                h = self.dropout(h)
            if lengths is None:
                h, _ = lstm(h)
            else:
                packed = pack_padded_sequence(h, lengths.cpu(), batch_first=True,
                                              enforce_sorted=False)
                out, _ = lstm(packed)
                h, _ = pad_packed_sequence(out, batch_first=True, total_length=T)
        return h  # (B, T, H·D)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None,
                return_attention: bool = False):
        """Logits (B, classes); with ``return_attention`` also the weights (B, T)."""
        x = as_tensor(x)
        self.check_inputs(x)
        if x.is_floating_point():  # float64 or float16 features: compute in the model's dtype
            x = x.to(self.head.weight.dtype)
        B, T = x.shape[:2]
        if lengths is not None:
            lengths = check_lengths(lengths, B, T)
        h = self.dropout(self.encode(x, lengths))  # (B, T, H·D)
        ar = torch.arange(T, device=h.device)
        L = lengths.to(h.device) if lengths is not None else torch.full((B,), T, device=h.device)
        mask = ar[None, :] < L[:, None]  # (B, T)
        alpha = None
        if self.attention is not None:
            pooled, alpha = self.attention(h, mask)
        else:
            Hd = self.config.hidden_sizes[-1]
            last = h[torch.arange(B), L - 1, :Hd]  # forward direction at the last valid step
            pooled = torch.cat([last, h[:, 0, Hd:]], dim=1) if self.config.bidirectional \
                else last  # backward direction has read the whole sequence at step 0
        logits = self.head(pooled)
        return (logits, alpha) if return_attention else logits

    def fit_standardization(self, inputs: list) -> None:
        """Set the stored feature mean and std from training sequences ``[T_i, F]``."""
        if not self.config.standardize:
            raise InputError("this model was built with standardize=False")
        if len(inputs) == 0:
            raise InputError("fit_standardization needs at least one training sequence")
        x = torch.cat([torch.as_tensor(a, dtype=torch.float32) for a in inputs])  # (N, F)
        if x.dim() != 2 or x.shape[1] != self.config.input_size:
            raise InputError(f"fit_standardization takes sequences [time, "
                             f"{self.config.input_size}], got frames {tuple(x.shape)}")
        check_finite(x, "standardization inputs")
        self.input_mean.copy_(x.mean(0))
        # one frame has no spread: keep the std at 1 rather than storing NaN
        std = x.std(0) if x.shape[0] > 1 else torch.ones_like(x[0])
        self.input_std.copy_(std.clamp_min(1e-6))

    def predict_proba(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        with torch.no_grad():
            return torch.softmax(self(x, lengths), dim=-1)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The first LSTM's inputs (B, T, E): embedded tokens or standardized features."""
        if self.embedding is not None:
            return self.embedding(x)
        if self.config.standardize:
            return (x - self.input_mean) / self.input_std
        return x

    def explainable_parts(self):
        """The parts exact explanation methods follow (see :mod:`lstmlens.parts`)."""
        from ..parts import ModelParts
        return ModelParts(self, self.embed, list(self.lstms),
                          "final" if self.attention is None else self.attention, self.head,
                          self.embedding, self.input_kind)

    def config_dict(self) -> dict[str, Any]:
        return asdict(self.config)
