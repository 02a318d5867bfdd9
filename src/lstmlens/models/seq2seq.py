"""Encoder–decoder LSTM with Bahdanau (additive) attention, for translation.

Source ids → embedding → ``encoder`` (a bidirectional ``nn.LSTM``) → states h_j. The
``decoder`` (an ``nn.LSTM``) reads the previous target token y_{t−1} and gives s_t; attention
scores every source position with Bahdanau et al.'s additive score

    e_tj = vᵀ tanh(W_s s_t + W_h h_j),   α_t = softmax_j(e_tj) over non-padding j,
    c_t = Σ_j α_tj h_j,   h̃_t = tanh(W_c [s_t; c_t]),   p(y_t | ...) = softmax(W_o h̃_t + b).

By default W_o is the target embedding matrix (tied, as suits small data sets).

By default (``input_feeding=False``) the query is the current decoder state s_t (the order
of Luong et al. 2015), so the teacher-forced decoder runs as **one** ``nn.LSTM`` call over
the whole target and ``lstmlens.trace`` shows it as one key, ``decoder``. With
``input_feeding=True`` the previous context c_{t−1} is also fed to the decoder (as in
Bahdanau et al.), which forces one call per step: trace keys ``decoder``, ``decoder@1``, ...
each of one step. Both LSTMs stay real ``nn.LSTM`` submodules. The encoder reads packed
sequences, so its trace masks source padding; the decoder reads the right-padded target as
is (padding cannot change earlier steps), so in a padded batch its trace marks every step
valid — mask it with ``tgt_in != 0``, or trace one sentence at a time.

To trace the model on its own translation, teacher-force that output:
``tgt_in = [[bos_id] + target ids]`` gives exactly the states the decoder had while decoding.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from ..batching import pad_batch
from ..errors import InputError, ModelError, ModelFormatError
from ..inputs import as_tensor, check_lengths
from ..tokenizers import BOS, EOS, Tokenizer
from .registry import register_model

__all__ = ["ParallelIds", "Seq2Seq", "Seq2SeqConfig", "TeacherForcing", "TokenizerPair",
           "as_tokenizer_pair", "tokenizers_from_json"]
PAIR_TYPE = "lstmlens-tokenizer-pair"


@dataclass
class TokenizerPair:
    """The source and target tokenizers of a translation model, saved as one JSON document.

    Examples
    --------
    >>> target = Tokenizer(specials=["<pad>", "<unk>", "<bos>", "<eos>"]).fit(["x y"])
    >>> pair = TokenizerPair(Tokenizer().fit(["a b"]), target)
    >>> tokenizers_from_json(pair.to_json()).target.vocab
    ['<pad>', '<unk>', '<bos>', '<eos>', 'x', 'y']
    """

    source: Tokenizer
    target: Tokenizer

    def to_json(self) -> dict[str, Any]:
        return {"type": PAIR_TYPE, "source": self.source.to_json(),
                "target": self.target.to_json()}


def tokenizers_from_json(doc: dict[str, Any]) -> TokenizerPair:
    """Read a ``{"type": "lstmlens-tokenizer-pair", "source": ..., "target": ...}`` document.

    Raises :class:`ModelFormatError` if it is not one, or if the target tokenizer lacks the
    ``<bos>``/``<eos>`` tokens a decoder needs.
    """
    if not isinstance(doc, dict) or doc.get("type") != PAIR_TYPE:
        raise ModelFormatError(f"tokenizer.json is not a {PAIR_TYPE!r} document (a translation "
                               "model saves its source and target tokenizers together)")
    if not isinstance(doc.get("source"), dict) or not isinstance(doc.get("target"), dict):
        raise ModelFormatError("tokenizer.json must hold 'source' and 'target' tokenizers")
    pair = TokenizerPair(Tokenizer.from_json(doc["source"]), Tokenizer.from_json(doc["target"]))
    if BOS not in pair.target.specials or EOS not in pair.target.specials:
        raise ModelFormatError("the target tokenizer in tokenizer.json lacks <bos>/<eos>")
    return pair


def as_tokenizer_pair(obj: Any) -> TokenizerPair:
    """A :class:`TokenizerPair` from itself, its JSON document, or ``{"source": Tokenizer,
    "target": Tokenizer}`` (what :func:`lstmlens.load` puts in ``model.tokenizer``).

    Examples
    --------
    >>> pair = as_tokenizer_pair(lstmlens.load("runs/translation").tokenizer)  # doctest: +SKIP
    """
    if isinstance(obj, TokenizerPair):
        return obj
    if isinstance(obj, dict) and isinstance(obj.get("source"), Tokenizer) \
            and isinstance(obj.get("target"), Tokenizer):
        return TokenizerPair(obj["source"], obj["target"])
    if isinstance(obj, dict):
        return tokenizers_from_json(obj)
    raise ModelFormatError(f"expected source and target tokenizers, got {type(obj).__name__}")


@dataclass
class Seq2SeqConfig:
    """Hyper-parameters of :class:`Seq2Seq`. Id 0 is padding on both sides."""

    src_vocab_size: int
    tgt_vocab_size: int
    bos_id: int = 2
    eos_id: int = 3
    embedding_dim: int = 128
    encoder_hidden_size: int = 128  # per direction
    encoder_layers: int = 1
    bidirectional: bool = True
    hidden_size: int = 256  # decoder
    attention_size: int = 128
    readout_size: int | None = None  # size of h̃; None: embedding_dim if tied, else hidden_size
    tie_embeddings: bool = True  # output layer W_o shares the target embedding matrix
    input_feeding: bool = False
    dropout: float = 0.3
    max_source_length: int = 100  # longest source (in tokens) translate() accepts

    def __post_init__(self) -> None:
        def whole(v: Any) -> bool:
            return isinstance(v, int) and not isinstance(v, bool)

        for name, least in (("src_vocab_size", 2), ("tgt_vocab_size", 4), ("embedding_dim", 1),
                            ("encoder_hidden_size", 1), ("encoder_layers", 1),
                            ("hidden_size", 1), ("attention_size", 1),
                            ("max_source_length", 1)):
            v = getattr(self, name)
            if not whole(v) or v < least:
                raise InputError(f"{name} must be a whole number ≥ {least}, got {v!r}")
        for name in ("bos_id", "eos_id"):
            v = getattr(self, name)
            if not whole(v) or not 0 < v < self.tgt_vocab_size:
                raise InputError(f"{name} must be a target id in 1..{self.tgt_vocab_size - 1}, "
                                 f"got {v!r}")
        if self.readout_size is None:
            self.readout_size = self.embedding_dim if self.tie_embeddings else self.hidden_size
        if not whole(self.readout_size) or self.readout_size < 1:
            raise InputError(f"readout_size must be a whole number ≥ 1, got "
                             f"{self.readout_size!r}")
        if self.tie_embeddings and self.readout_size != self.embedding_dim:
            raise InputError(f"tie_embeddings needs readout_size == embedding_dim, got "
                             f"{self.readout_size} and {self.embedding_dim}")
        if not isinstance(self.dropout, (int, float)) or not 0 <= self.dropout < 1:
            raise InputError(f"dropout must be a number in [0, 1), got {self.dropout!r}")


@dataclass
class Memory:
    """What the decoder attends to: encoder states, their projections and the padding mask."""

    states: torch.Tensor  # (B, S, D·He)
    keys: torch.Tensor  # (B, S, A): W_h h_j, computed once
    mask: torch.Tensor  # (B, S) True at real tokens

    def expand(self, index: torch.Tensor) -> Memory:
        return Memory(self.states[index], self.keys[index], self.mask[index])


@register_model("seq2seq")
class Seq2Seq(nn.Module):
    """Bidirectional LSTM encoder, LSTM decoder, Bahdanau attention.

    Examples
    --------
    >>> model = Seq2Seq(Seq2SeqConfig(src_vocab_size=50, tgt_vocab_size=60))
    >>> logits, attn = model(torch.randint(1, 50, (2, 7)), torch.tensor([7, 4]),
    ...                      torch.randint(1, 60, (2, 5)))
    >>> logits.shape, attn.shape
    (torch.Size([2, 5, 60]), torch.Size([2, 5, 7]))
    """

    def __init__(self, config: Seq2SeqConfig | dict[str, Any]):
        super().__init__()
        if isinstance(config, dict):
            known = set(Seq2SeqConfig.__dataclass_fields__)
            unknown = sorted(set(config) - known)
            if unknown:
                raise InputError(f"unknown seq2seq setting(s) {unknown}; accepted: "
                                 f"{sorted(known)}")
            try:
                config = Seq2SeqConfig(**config)
            except TypeError as e:
                raise InputError(f"seq2seq config is incomplete: {e}") from None
        elif not isinstance(config, Seq2SeqConfig):
            raise InputError(f"config must be a Seq2SeqConfig or a dict, got "
                             f"{type(config).__name__}")
        self.config = c = config
        D = 2 if c.bidirectional else 1
        enc_size = D * c.encoder_hidden_size
        self.src_embedding = nn.Embedding(c.src_vocab_size, c.embedding_dim, padding_idx=0)
        self.tgt_embedding = nn.Embedding(c.tgt_vocab_size, c.embedding_dim, padding_idx=0)
        self.encoder = nn.LSTM(c.embedding_dim, c.encoder_hidden_size, c.encoder_layers,
                               batch_first=True, bidirectional=c.bidirectional,
                               dropout=c.dropout if c.encoder_layers > 1 else 0.0)
        self.bridge_h = nn.Linear(enc_size, c.hidden_size)
        self.bridge_c = nn.Linear(enc_size, c.hidden_size)
        dec_in = c.embedding_dim + (enc_size if c.input_feeding else 0)
        self.decoder = nn.LSTM(dec_in, c.hidden_size, batch_first=True)
        self.attn_query = nn.Linear(c.hidden_size, c.attention_size, bias=False)  # W_s
        self.attn_key = nn.Linear(enc_size, c.attention_size)  # W_h (+ bias)
        self.attn_v = nn.Linear(c.attention_size, 1, bias=False)  # v
        self.combine = nn.Linear(c.hidden_size + enc_size, c.readout_size)  # W_c
        if c.tie_embeddings:  # W_o is tgt_embedding.weight (no second copy in the state dict)
            self.out = None
            self.out_bias = nn.Parameter(torch.zeros(c.tgt_vocab_size))
        else:
            self.out = nn.Linear(c.readout_size, c.tgt_vocab_size)  # W_o
        self.dropout = nn.Dropout(c.dropout)

    # -- pieces ------------------------------------------------------------------------
    def _check_ids(self, x: Any, what: str, vocab: int) -> torch.Tensor:
        x = as_tensor(x, what)
        if x.dim() != 2 or x.is_floating_point() or x.is_complex() or x.dtype == torch.bool:
            raise InputError(f"{what} must be token ids [batch, time], got {x.dtype} "
                             f"{tuple(x.shape)}")
        if x.shape[0] == 0 or x.shape[1] == 0:
            raise InputError(f"{what} is empty (shape {tuple(x.shape)})")
        if int(x.min()) < 0 or int(x.max()) >= vocab:
            raise InputError(f"{what} ids must lie in 0..{vocab - 1}")
        return x.long()

    def encode(self, src: torch.Tensor, lengths: torch.Tensor | None = None
               ) -> tuple[Memory, tuple[torch.Tensor, torch.Tensor]]:
        """Encoder states (zeros at padding) and the decoder's initial ``(h0, c0)``."""
        src = self._check_ids(src, "src", self.config.src_vocab_size)
        B, S = src.shape
        lengths = check_lengths(lengths, B, S) if lengths is not None \
            else torch.full((B,), S, dtype=torch.long)
        return self.encode_embedded(self.src_embedding(src), lengths)

    def encode_embedded(self, x: torch.Tensor, lengths: torch.Tensor
                        ) -> tuple[Memory, tuple[torch.Tensor, torch.Tensor]]:
        """:meth:`encode` from source embeddings ``x (B, S, E)`` and checked ``lengths``
        (differentiable in ``x``: explanation methods vary the embeddings)."""
        B, S, _ = x.shape
        x = self.dropout(x)  # (B, S, E)
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, (h_n, c_n) = self.encoder(packed)
        states, _ = pad_packed_sequence(out, batch_first=True, total_length=S)  # (B, S, D·He)
        D = 2 if self.config.bidirectional else 1
        h_last = h_n[-D:].transpose(0, 1).reshape(B, -1)  # (B, D·He): last layer, both dirs
        c_last = c_n[-D:].transpose(0, 1).reshape(B, -1)  # (B, D·He)
        h0 = torch.tanh(self.bridge_h(h_last))[None]  # (1, B, Hd)
        c0 = self.bridge_c(c_last)[None]  # (1, B, Hd)
        mask = torch.arange(S)[None, :] < lengths[:, None]  # (B, S)
        return Memory(states, self.attn_key(states), mask.to(states.device)), (h0, c0)

    def attend(self, s: torch.Tensor, memory: Memory) -> tuple[torch.Tensor, torch.Tensor]:
        """Context ``(B, T, D·He)`` and weights ``(B, T, S)`` for decoder states
        ``s (B, T, Hd)``."""
        q = self.attn_query(s)  # (B, T, A)
        e = self.attn_v(torch.tanh(q[:, :, None, :] + memory.keys[:, None])).squeeze(-1)
        e = e.masked_fill(~memory.mask[:, None, :], float("-inf"))  # (B, T, S)
        alpha = torch.softmax(e, dim=-1)  # (B, T, S)
        return torch.bmm(alpha, memory.states), alpha  # (B, T, D·He), (B, T, S)

    def readout(self, s: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, T, V)`` from decoder states and attention contexts."""
        h_tilde = self.dropout(torch.tanh(self.combine(torch.cat([s, context], -1))))  # (B, T, R)
        if self.out is None:
            return nn.functional.linear(h_tilde, self.tgt_embedding.weight, self.out_bias)
        return self.out(h_tilde)  # (B, T, V)

    def step(self, y_prev: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor],
             context: torch.Tensor | None, memory: Memory):
        """One decoder step for tokens ``y_prev (B,)``: logits ``(B, V)``, weights ``(B, S)``,
        the new LSTM state and context ``(B, D·He)`` (decoding and input feeding use it)."""
        x = self.dropout(self.tgt_embedding(y_prev[:, None]))  # (B, 1, E)
        if self.config.input_feeding:
            if context is None:
                context = memory.states.new_zeros(len(y_prev), memory.states.shape[-1])
            x = torch.cat([x, context[:, None]], dim=-1)  # (B, 1, E + D·He)
        s, state = self.decoder(x, state)  # (B, 1, Hd)
        ctx, alpha = self.attend(s, memory)  # (B, 1, D·He), (B, 1, S)
        return self.readout(s, ctx)[:, 0], alpha[:, 0], state, ctx[:, 0]  # (B, V), (B, S)

    # -- teacher forcing ---------------------------------------------------------------
    def forward(self, src: torch.Tensor, lengths: torch.Tensor | None = None,
                tgt_in: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Teacher-forced logits ``(B, T_tgt, V)`` and attention ``(B, T_tgt, T_src)``.

        ``src`` are source ids ``(B, T_src)`` with valid ``lengths``; ``tgt_in`` the target
        ids ``<bos> y_1 ... y_{n−1}`` right-padded with 0 — logits at step t predict y_{t+1}.
        Attention rows of padded target steps are still computed (mask them with ``tgt_in``).
        """
        if tgt_in is None:
            raise InputError("Seq2Seq.forward needs tgt_in, the target ids starting with <bos> "
                             "(teacher forcing); to translate text, use "
                             "lstmlens.decoding.translate(model, text)")
        tgt_in = self._check_ids(tgt_in, "tgt_in", self.config.tgt_vocab_size)
        memory, state = self.encode(src, lengths)
        if tgt_in.shape[0] != memory.states.shape[0]:
            raise InputError(f"src has {memory.states.shape[0]} sequences but tgt_in has "
                             f"{tgt_in.shape[0]}")
        return self.decode(memory, state, tgt_in)

    def decode(self, memory: Memory, state: tuple[torch.Tensor, torch.Tensor],
               tgt_in: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Teacher-forced logits ``(B, T, V)`` and attention ``(B, T, S)`` of checked target
        ids ``tgt_in (B, T)`` (starting with ``<bos>``), given the encoder's output."""
        if self.config.input_feeding:
            ctx, steps, alphas = None, [], []
            for t in range(tgt_in.shape[1]):
                logits, alpha, state, ctx = self.step(tgt_in[:, t], state, ctx, memory)
                steps.append(logits)
                alphas.append(alpha)
            return torch.stack(steps, 1), torch.stack(alphas, 1)  # (B, T, V), (B, T, S)
        # One call over the padded target: right padding cannot change the valid steps of a
        # unidirectional LSTM, and unpacked it trains about twice as fast as packed on CPU.
        x = self.dropout(self.tgt_embedding(tgt_in))  # (B, T, E)
        s, _ = self.decoder(x, state)  # (B, T, Hd)
        ctx, alpha = self.attend(s, memory)  # (B, T, D·He), (B, T, S)
        return self.readout(s, ctx), alpha

    def explainable_parts(self):
        """Refused: what a translation model explains depends on the sentence and the
        output position (see :mod:`lstmlens.seq2seq_parts`)."""
        raise ModelError("a translation model's parts depend on the source sentence and the "
                         "output token: explain it with lstmlens.explain(model, 'source "
                         "sentence', method=..., target=k) (output position k)")

    def config_dict(self) -> dict[str, Any]:
        return asdict(self.config)


@dataclass
class ParallelIds:
    """Token ids of sentence pairs: ``source[i]`` without specials, ``target[i]`` as
    ``<bos> ... <eos>``."""

    source: list[np.ndarray]
    target: list[np.ndarray]

    def __post_init__(self) -> None:
        if len(self.source) != len(self.target):
            raise InputError("source and target must have the same number of sentences")

    def __len__(self) -> int:
        return len(self.source)

    @classmethod
    def encode(cls, pairs: Any, tokenizers: TokenizerPair) -> ParallelIds:
        """Ids of ``(source text, target text)`` pairs (a list or a ``ParallelText``)."""
        pairs = pairs.pairs if hasattr(pairs, "pairs") else pairs
        src = [np.asarray(tokenizers.source.encode(s), np.int64) for s, _ in pairs]
        tgt = [np.asarray(tokenizers.target.encode(t, add_bos=True, add_eos=True), np.int64)
               for _, t in pairs]
        return cls(src, tgt)


class TeacherForcing:
    """Objective for :func:`lstmlens.training.fit`: token cross-entropy under teacher forcing.

    Metrics are per target token (``<eos>`` included, padding excluded): ``loss`` (the
    cross-entropy in nats, without smoothing), ``token_accuracy`` (the argmax is the reference
    token). Monitors ``token_accuracy``. With ``label_smoothing`` ε the gradient comes from
    (1 − ε)·NLL + ε·(mean over the vocabulary of −log p).
    """

    monitor = "token_accuracy"
    higher_is_better = True

    def __init__(self, label_smoothing: float = 0.0):
        if not isinstance(label_smoothing, (int, float)) or not 0 <= label_smoothing < 1:
            raise InputError(f"label_smoothing must be in [0, 1), got {label_smoothing!r}")
        self.label_smoothing = float(label_smoothing)

    def size(self, data: ParallelIds) -> int:
        return len(data)

    def batch(self, data: ParallelIds, idx: np.ndarray):
        src, lengths = pad_batch([data.source[i] for i in idx])  # (B, S), (B,)
        tgt, _ = pad_batch([data.target[i] for i in idx])  # (B, T + 1)
        return src, lengths, tgt[:, :-1], tgt[:, 1:]

    def step(self, model: nn.Module, batch):
        src, lengths, tgt_in, tgt_out = batch
        logits, _ = model(src, lengths, tgt_in)  # (B, T, V)
        mask = tgt_out != 0  # (B, T)
        n = int(mask.sum())
        logp = torch.log_softmax(logits, dim=-1)  # (B, T, V)
        nll = -logp.gather(-1, tgt_out[..., None])[..., 0]  # (B, T)
        nll = nll.masked_select(mask).mean()
        loss = nll
        if self.label_smoothing:
            smooth = -logp.mean(-1).masked_select(mask).mean()
            loss = (1 - self.label_smoothing) * nll + self.label_smoothing * smooth
        correct = int(((logits.argmax(-1) == tgt_out) & mask).sum())
        return loss, {"loss": nll.item() * n, "token_accuracy": correct}, n
