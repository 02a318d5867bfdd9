"""A character language model: embedding → stacked LSTMs → a softmax over the characters.

The model predicts the next character at every step, like Karpathy's char-rnn. Training
uses the :class:`NextCharacter` objective: fixed-length chunks of text at random offsets
(or, with ``TextData(streams=...)``, parallel contiguous streams whose state is carried
from chunk to chunk, i.e. truncated back-propagation through time). Evaluation walks the
whole text in parallel streams carrying the state, and reports bits per character.
:func:`generate` samples text from a trained model.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from ..errors import InputError
from ..inputs import check_lengths
from ..tokenizers import Tokenizer
from .registry import register_model

State = list[tuple[torch.Tensor, torch.Tensor]]  # per LSTM: h, c each (1, B, H)


def _whole(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


@dataclass
class LanguageModelConfig:
    """Hyper-parameters of :class:`CharLanguageModel` (id 0 is padding)."""

    vocab_size: int
    embedding_dim: int = 64
    hidden_sizes: list[int] = field(default_factory=lambda: [256])
    dropout: float = 0.0

    def __post_init__(self) -> None:
        if isinstance(self.hidden_sizes, (str, bytes)) or not isinstance(
                self.hidden_sizes, (list, tuple)) or not all(_whole(h) for h in self.hidden_sizes):
            raise InputError(f"hidden_sizes must be a list of whole numbers (units per LSTM "
                             f"layer), got {self.hidden_sizes!r}")
        self.hidden_sizes = [int(h) for h in self.hidden_sizes]
        if not self.hidden_sizes or min(self.hidden_sizes) < 1:
            raise InputError("need at least one LSTM layer of ≥ 1 unit")
        for name, least in (("vocab_size", 3), ("embedding_dim", 1)):
            v = getattr(self, name)
            if not _whole(v) or v < least:
                raise InputError(f"{name} must be a whole number ≥ {least}, got {v!r}")
        if not isinstance(self.dropout, (int, float)) or not 0 <= self.dropout < 1:
            raise InputError(f"dropout must be a number in [0, 1), got {self.dropout!r}")


@register_model("language_model")
class CharLanguageModel(nn.Module):
    """Character LM: embedding → stacked ``nn.LSTM`` (``lstms.0``, ``lstms.1``…) → linear.

    Examples
    --------
    >>> model = CharLanguageModel(LanguageModelConfig(vocab_size=40, hidden_sizes=[32]))
    >>> model(torch.randint(2, 40, (3, 10))).shape
    torch.Size([3, 10, 40])
    """

    def __init__(self, config: LanguageModelConfig | dict[str, Any]):
        super().__init__()
        if isinstance(config, dict):
            known = set(LanguageModelConfig.__dataclass_fields__)
            unknown = sorted(set(config) - known)
            if unknown:
                raise InputError(f"unknown language_model setting(s) {unknown}; accepted: "
                                 f"{sorted(known)}")
            try:
                config = LanguageModelConfig(**config)
            except TypeError as e:  # vocab_size missing
                raise InputError(f"language_model config is incomplete: {e}") from None
        elif not isinstance(config, LanguageModelConfig):
            raise InputError(f"config must be a LanguageModelConfig or a dict, got "
                             f"{type(config).__name__}")
        self.config = c = config
        self.embedding = nn.Embedding(c.vocab_size, c.embedding_dim, padding_idx=0)
        sizes = [c.embedding_dim, *c.hidden_sizes]
        self.lstms = nn.ModuleList(nn.LSTM(a, b, batch_first=True)
                                   for a, b in zip(sizes[:-1], sizes[1:], strict=True))
        self.dropout = nn.Dropout(c.dropout)
        self.head = nn.Linear(c.hidden_sizes[-1], c.vocab_size)

    def check_inputs(self, ids: torch.Tensor) -> None:
        """Refuse anything but token ids ``[batch, time]`` inside the vocabulary."""
        if not isinstance(ids, torch.Tensor) or ids.dim() != 2 or ids.is_floating_point() \
                or ids.is_complex() or ids.dtype == torch.bool:
            what = f"{ids.dtype} {tuple(ids.shape)}" if isinstance(ids, torch.Tensor) else \
                type(ids).__name__
            raise InputError(f"a language model takes character ids [batch, time] as an "
                             f"integer tensor, got {what}")
        if ids.shape[0] == 0 or ids.shape[1] == 0:
            raise InputError(f"inputs are empty (shape {tuple(ids.shape)})")
        if int(ids.min()) < 0 or int(ids.max()) >= self.config.vocab_size:
            raise InputError(f"character ids must lie in 0..{self.config.vocab_size - 1}")

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor | None = None,
                state: State | None = None, return_state: bool = False):
        """Next-character logits ``(B, T, V)`` after each step.

        Parameters
        ----------
        ids : torch.Tensor
            ``(B, T)`` character ids.
        lengths : torch.Tensor, optional
            ``(B,)`` valid steps (right padding); the returned state is then taken at each
            sequence's last valid step. Logits at padded steps are meaningless.
        state : list of (h, c), optional
            One ``(h, c)`` pair per LSTM, each ``(1, B, H)``, e.g. from a previous call.
        return_state : bool
            Also return the state after the last (valid) step.
        """
        if not isinstance(ids, torch.Tensor):
            ids = torch.as_tensor(np.asarray(ids))
        self.check_inputs(ids)
        B, T = ids.shape
        if lengths is not None:
            lengths = check_lengths(lengths, B, T)
        if state is not None and (len(state) != len(self.lstms) or any(
                h.shape != (1, B, lstm.hidden_size) or c.shape != h.shape
                for (h, c), lstm in zip(state, self.lstms, strict=False))):
            raise InputError(f"state must hold one (h, c) pair per LSTM ({len(self.lstms)}), "
                             f"each shaped (1, {B}, hidden size)")
        x = self.embedding(ids)  # (B, T, E)
        new_state: State = []
        for i, lstm in enumerate(self.lstms):
            hx = state[i] if state is not None else None
            if i:
                x = self.dropout(x)
            if lengths is None:
                x, (h, c) = lstm(x, hx)  # (B, T, H)
            else:
                packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True,
                                              enforce_sorted=False)
                out, (h, c) = lstm(packed, hx)
                x, _ = pad_packed_sequence(out, batch_first=True, total_length=T)
            new_state.append((h, c))
        logits = self.head(self.dropout(x))  # (B, T, V)
        return (logits, new_state) if return_state else logits

    def explainable_parts(self):
        """The next-token prediction after a prefix as explainable parts: embedding →
        LSTMs → the state at the prefix's last character → the head (logits over the
        vocabulary). Dropout is off in evaluation, so it is no part."""
        from ..parts import ModelParts
        tok = getattr(self, "tokenizer", None)
        labels = list(tok.vocab) if tok is not None and len(tok) == self.config.vocab_size \
            else None
        return ModelParts(self, self.embedding, list(self.lstms), "last", self.head,
                          self.embedding, "tokens", "classes", labels)

    def config_dict(self) -> dict[str, Any]:
        return asdict(self.config)


# --------------------------------------------------------------------------- data, objective


@dataclass
class TextData:
    """Encoded text for the :class:`NextCharacter` objective.

    Parameters
    ----------
    ids : np.ndarray
        ``(N,)`` character ids of the whole text.
    streams : int, optional
        ``None``: train on chunks at random offsets (the items are chunks). A number ``S``:
        cut the ``N − 1`` (input, target) pairs into ``S`` contiguous streams of nearly equal
        length, read chunk by chunk with the LSTM state carried over (the items are chunk
        columns, walked in order); used to evaluate on the whole text and for stateful
        training.

    Examples
    --------
    >>> TextData(np.arange(10) % 5, streams=2).ids.shape
    (10,)
    """

    ids: np.ndarray
    streams: int | None = None

    def __post_init__(self) -> None:
        self.ids = np.asarray(self.ids)
        if self.ids.ndim != 1 or not np.issubdtype(self.ids.dtype, np.integer):
            raise InputError(f"TextData takes a 1-D array of character ids, got "
                             f"{self.ids.dtype} {self.ids.shape}")
        self.ids = self.ids.astype(np.int64, copy=False)
        if len(self.ids) < 2:
            raise InputError("the text needs at least 2 characters (one input, one target)")
        if self.streams is not None and (not _whole(self.streams) or self.streams < 1):
            raise InputError(f"streams must be a whole number ≥ 1 or None, got {self.streams!r}")
        self._layout: tuple[np.ndarray, np.ndarray] | None = None

    def stream_layout(self) -> tuple[np.ndarray, np.ndarray]:
        """Inputs and targets ``(S, L)``: stream ``s`` continues where ``s − 1`` ends.

        Streams differ in length by at most one; the shorter ones end with target ``-1``.
        Every one of the ``N − 1`` targets appears exactly once.
        """
        if self._layout is None:
            n = len(self.ids) - 1
            S = min(self.streams or 1, n)
            lens = np.full(S, n // S)
            lens[: n % S] += 1
            L = int(lens[0])
            x = np.zeros((S, L), dtype=np.int64)
            y = np.full((S, L), -1, dtype=np.int64)
            start = 0
            for s, m in enumerate(lens):
                x[s, :m] = self.ids[start:start + m]
                y[s, :m] = self.ids[start + 1:start + m + 1]
                start += m
            self._layout = (x, y)
        return self._layout


class NextCharacter:
    """Objective for :func:`lstmlens.training.fit`/``evaluate``: predict the next character.

    Loss is the mean cross-entropy in nats; ``bits_per_char`` is the same in bits
    (``loss / ln 2``), the monitored metric (lower is better).

    Parameters
    ----------
    seq_len : int
        Characters per chunk (the truncated-BPTT length).
    seed : int
        Seed of the random chunk offsets.

    Examples
    --------
    >>> from lstmlens.training import evaluate
    >>> model = CharLanguageModel(LanguageModelConfig(vocab_size=6, hidden_sizes=[8]))
    >>> data = TextData(np.arange(200) % 4 + 2, streams=4)
    >>> sorted(evaluate(model, data, NextCharacter(seq_len=16)))
    ['bits_per_char', 'loss']
    """

    monitor = "bits_per_char"
    higher_is_better = False

    def __init__(self, seq_len: int = 128, seed: int = 0):
        if not _whole(seq_len) or seq_len < 1:
            raise InputError(f"seq_len must be a whole number ≥ 1, got {seq_len!r}")
        self.seq_len = seq_len
        self.rng = np.random.default_rng(seed)
        # per stream data set: (the data, the column that continues, the state after it)
        self._carry: dict[int, tuple[TextData, int, State]] = {}

    def size(self, data: TextData) -> int:
        T = self.seq_len
        if data.streams is None:
            n = len(data.ids) // T - 1
            if n < 1:
                raise InputError(f"the text ({len(data.ids)} characters) is too short for "
                                 f"chunks of {T}; need at least {2 * T}")
            return n
        return -(-data.stream_layout()[0].shape[1] // T)

    def batch(self, data: TextData, idx: np.ndarray):
        T = self.seq_len
        idx = np.asarray(idx, dtype=np.int64)
        if data.streams is None:  # chunk i starts in [i·T, i·T + T), all shifted alike
            starts = idx * T + int(self.rng.integers(T))
            pos = starts[:, None] + np.arange(T + 1)  # (B, T + 1)
            seq = torch.as_tensor(data.ids[pos])
            return "chunks", seq[:, :-1], seq[:, 1:], None
        return "streams", None, None, (data, np.sort(idx))

    def step(self, model: nn.Module, batch) -> tuple[torch.Tensor, dict[str, float], int]:
        kind, x, y, stream = batch
        if kind == "chunks":
            logits = model(x)  # (B, T, V)
            loss = nn.functional.cross_entropy(logits.flatten(0, 1), y.flatten())
            n = y.numel()
        else:
            loss, n = self._stream_step(model, *stream)
        total = loss.item() * n
        return loss, {"loss": total, "bits_per_char": total / math.log(2)}, n

    def _stream_step(self, model: nn.Module, data: TextData,
                     cols: np.ndarray) -> tuple[torch.Tensor, int]:
        """Summed loss over the chunk columns ``cols``; state flows between consecutive ones."""
        X, Y = data.stream_layout()
        T = self.seq_len
        total = torch.zeros(())
        count = 0
        for c in cols:
            state = None
            carry = self._carry.get(id(data))
            if carry is not None and carry[0] is data and carry[1] == c:
                state = carry[2]
            x = torch.as_tensor(X[:, c * T:(c + 1) * T])  # (S, T)
            y = torch.as_tensor(Y[:, c * T:(c + 1) * T])  # (S, T)
            logits, state = model(x, state=state, return_state=True)  # (S, T, V)
            total = total + nn.functional.cross_entropy(
                logits.flatten(0, 1), y.flatten(), ignore_index=-1, reduction="sum")
            count += int((y >= 0).sum())
            state = [(h.detach(), cc.detach()) for h, cc in state]  # truncated BPTT
            self._carry[id(data)] = (data, int(c) + 1, state)
        return total / max(count, 1), count


# --------------------------------------------------------------------------- generation


def encode_text(tokenizer: Tokenizer, text: str) -> np.ndarray:
    """Character ids of ``text`` as an int64 array, fast (unknown characters → unk id).

    Examples
    --------
    >>> tok = Tokenizer("char", lowercase=False, max_vocab=None).fit(["abc"])
    >>> encode_text(tok, "cab?").tolist() == tok.encode("cab?")
    True
    """
    if tokenizer.level != "char":
        raise InputError(f"a character language model needs a char tokenizer, got "
                         f"{tokenizer.level!r}")
    if not text:
        return np.zeros(0, dtype=np.int64)
    codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    uniq, inverse = np.unique(codes, return_inverse=True)
    table = np.array([tokenizer.id(chr(int(u))) for u in uniq], dtype=np.int64)
    return table[inverse]


def _tokenizer_of(model: nn.Module, tokenizer: Tokenizer | dict | None) -> Tokenizer:
    tok = tokenizer if tokenizer is not None else getattr(model, "tokenizer", None)
    if isinstance(tok, dict):
        tok = Tokenizer.from_json(tok)
    if not isinstance(tok, Tokenizer):
        raise InputError("the model has no tokenizer; pass tokenizer= (the char tokenizer it "
                         "was trained with) or load the model from its directory")
    return tok


def generate(model: nn.Module, prompt: str = "", length: int = 200, temperature: float = 1.0,
             seed: int | None = None, tokenizer: Tokenizer | dict | None = None) -> str:
    """Sample ``length`` characters that continue ``prompt``.

    Parameters
    ----------
    model : CharLanguageModel
        A trained model; its ``tokenizer`` (set by :func:`lstmlens.load`) is used unless
        ``tokenizer`` is given.
    prompt : str
        Text to continue; every character must be in the vocabulary. ``""`` starts from a
        newline.
    length : int
        Characters to generate (≥ 0).
    temperature : float
        Divides the logits before sampling; ``0`` means greedy (always the most likely
        character); negative or non-finite values are an error.
    seed : int, optional
        Seed of the sampler; the same seed gives the same text. ``None``: torch's global RNG.

    Returns
    -------
    str
        The generated continuation only (without the prompt). Padding and unknown-character
        ids are never sampled.

    Examples
    --------
    >>> net = lstmlens.load("runs/textgen")  # doctest: +SKIP
    >>> generate(net, "And God said", length=40, temperature=0.8, seed=0)  # doctest: +SKIP
    ', Let the waters be gathered together...'
    """
    if not isinstance(model, CharLanguageModel):
        raise InputError(f"generate needs a CharLanguageModel, got {type(model).__name__}")
    tok = _tokenizer_of(model, tokenizer)
    if not isinstance(prompt, str):
        raise InputError(f"prompt must be a string, got {type(prompt).__name__}")
    if not _whole(length) or length < 0:
        raise InputError(f"length must be a whole number ≥ 0, got {length!r}")
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or \
            not math.isfinite(temperature) or temperature < 0:
        raise InputError(f"temperature must be a finite number ≥ 0 (0 = greedy), got "
                         f"{temperature!r}")
    text = prompt or "\n"
    unknown = sorted({ch for ch in text if ch not in tok._index or ch in tok.specials})
    if unknown:
        raise InputError(f"the prompt holds characters this model never saw: "
                         f"{', '.join(map(repr, unknown))}; it knows "
                         f"{len(tok) - len(tok.specials)} characters")
    gen = torch.Generator().manual_seed(seed) if seed is not None else None
    banned = torch.tensor([tok.id(s) for s in tok.specials])
    was_training = model.training
    model.eval()
    out: list[int] = []
    try:
        with torch.no_grad():
            ids = torch.as_tensor(encode_text(tok, text))[None, :]  # (1, T)
            logits, state = model(ids, return_state=True)  # (1, T, V)
            for _ in range(length):
                z = logits[0, -1].double()  # (V,)
                z[banned] = -math.inf
                if temperature == 0:
                    nxt = int(z.argmax())
                else:
                    p = torch.softmax(z / temperature, dim=0)
                    nxt = int(torch.multinomial(p, 1, generator=gen))
                out.append(nxt)
                logits, state = model(torch.tensor([[nxt]]), state=state, return_state=True)
    finally:
        model.train(was_training)
    return tok.decode(out)
