"""One output token of a translation model, as something explanation methods can vary.

The encoder–decoder is not one chain embedding → LSTMs → pooling → linear head, so the exact
methods (CD, LRP, the cell decompositions) cannot follow it. The methods that only need a
differentiable function of the source embeddings can: :class:`Seq2SeqParts` is that function
for output position ``k`` of one source sentence — the logits ``(B, V)`` of the decoder at
step ``k`` given the teacher-forced prefix ``<bos> y_0 … y_{k−1}`` — with the interface the
generic methods use (``embed``, ``logits_from_embedded``, ``embedding``, ``input_kind``,
``model``). Its ``exact`` is ``False``: CD and LRP refuse it, saying why.

The output sentence is the model's own greedy translation, or a given one (teacher-forced).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .bleu_baseline import detokenize
from .errors import InputError
from .models.seq2seq import Memory, Seq2Seq, TokenizerPair, as_tokenizer_pair
from .tokenizers import UNK


class DecoderAttention:
    """The decoder's attention at output step ``k`` as a pooling of the encoder states.

    Called with the encoder's states ``h (B, S, D·He)`` and the source mask ``(B, S)``, it
    returns the context ``c_k (B, D·He)`` and the weights ``α_k (B, S)``; the decoder starts
    from ``state``, the bridge of the explained sentence's final encoder states.
    """

    def __init__(self, model: Seq2Seq, state: tuple[torch.Tensor, torch.Tensor],
                 tgt_in: torch.Tensor):
        self.model, self.state, self.tgt_in = model, state, tgt_in

    def __call__(self, h: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        B = h.shape[0]
        h = h.to(self.model.attn_key.weight.dtype)
        memory = Memory(h, self.model.attn_key(h), mask)
        state = tuple(s.expand(-1, B, -1).contiguous() for s in self.state)
        _, alpha = self.model.decode(memory, state, self.tgt_in.expand(B, -1))  # (B, k+1, S)
        a = alpha[:, -1]  # (B, S) the weights of step k
        return torch.bmm(a[:, None], h)[:, 0], a


class Seq2SeqParts:
    """Output position ``k`` of a :class:`Seq2Seq` for one source sentence.

    Parameters
    ----------
    model
        The translation model (in eval mode).
    src, lengths
        The source ids ``(1, S)`` and ``(1,)``.
    tgt_in
        ``(1, k + 1)``: ``<bos>`` and the output tokens before position ``k``.

    ``logits_from_embedded(e, lengths)`` gives the decoder's logits ``(B, V)`` at step ``k``
    from source embeddings ``e (B, S, E)`` (any batch of variations of the one sentence).
    """

    exact = False  # CD, LRP and the cell decompositions cannot follow an encoder–decoder
    input_kind = "tokens"
    outputs = "classes"

    def __init__(self, model: Seq2Seq, src: torch.Tensor, lengths: torch.Tensor,
                 tgt_in: torch.Tensor, labels: list[str] | None = None):
        self.model = model
        self.embedding = model.src_embedding
        self.embed = model.src_embedding
        self.lstms = [model.encoder]  # the LSTM that reads the source
        self.labels = labels
        self.tgt_in = tgt_in
        with torch.no_grad():
            _, state = model.encode(src, lengths)
        self.pooling = DecoderAttention(model, state, tgt_in)

    def logits_from_embedded(self, e: torch.Tensor, lengths: torch.Tensor | None = None
                             ) -> torch.Tensor:
        """Differentiable logits ``(B, V)`` of output step ``k`` from ``e (B, S, E)``."""
        B, S, _ = e.shape
        L = lengths if lengths is not None else torch.full((B,), S, dtype=torch.long)
        memory, state = self.model.encode_embedded(e, L)
        logits, _ = self.model.decode(memory, state, self.tgt_in.expand(B, -1))  # (B, k+1, V)
        return logits[:, -1]


@dataclass
class TranslationTarget:
    """What :func:`prepare_translation` gives ``explain``."""

    parts: Seq2SeqParts
    x: torch.Tensor  # (1, S) source ids
    lengths: torch.Tensor  # (1,)
    tokens: list[list[str]] | None
    target: torch.Tensor  # (1,) the output token's id
    logits: torch.Tensor  # (1, V) at output step k
    params: dict[str, Any]


def _pair(model: Seq2Seq) -> TokenizerPair | None:
    tok = getattr(model, "tokenizer", None)
    return None if tok is None else as_tokenizer_pair(tok)


def _source(model: Seq2Seq, tok: TokenizerPair | None, inputs: Any, lengths: Any):
    """Source ids ``(1, S)`` and the words shown for them."""
    if isinstance(inputs, (list, tuple)) and inputs and all(isinstance(t, str) for t in inputs):
        if len(inputs) != 1:
            raise InputError(f"a translation model is explained one source sentence at a time; "
                             f"got {len(inputs)}")
        inputs = inputs[0]
    if isinstance(inputs, str):
        if tok is None:
            raise InputError("this translation model has no tokenizers, so it cannot read "
                             "text; load it from its directory or pass source ids [S]")
        ids = tok.source.encode(inputs, max_length=model.config.max_source_length)
        if all(i == tok.source.unk_id for i in ids):
            raise InputError(f"none of the words of {inputs!r} are in the model's source "
                             f"vocabulary ({len(tok.source)} tokens)")
        return torch.tensor([ids]), [tok.source.split(inputs)[:len(ids)]]
    x = torch.as_tensor(np.asarray(inputs) if not isinstance(inputs, torch.Tensor) else inputs)
    if x.dim() == 1:
        x = x[None]
    if x.dim() != 2 or x.is_floating_point():
        raise InputError(f"a translation model takes a source sentence as text or token ids "
                         f"[S] / [1, S]; got {x.dtype} {tuple(x.shape)}")
    if x.shape[0] != 1:
        raise InputError(f"a translation model is explained one source sentence at a time; "
                         f"got {x.shape[0]}")
    if lengths is not None:
        n = int(torch.as_tensor(lengths).reshape(-1)[0])
        if not 1 <= n <= x.shape[1]:
            raise InputError(f"lengths must lie in 1..{x.shape[1]}, got {n}")
        x = x[:, :n]
    if x.shape[1] == 0:
        raise InputError("the source sentence is empty")
    V = model.config.src_vocab_size
    if int(x.min()) < 0 or int(x.max()) >= V:
        raise InputError(f"source token ids must lie in 0..{V - 1}")
    x = x.long()
    return x, ([tok.source.tokens(x[0].tolist())] if tok is not None else None)


def _output_ids(model: Seq2Seq, tok: TokenizerPair | None, src: torch.Tensor,
                translation: Any) -> list[int]:
    """The output ids ``y_0 … y_n`` to explain (ending with ``<eos>`` when the sentence ends)."""
    c = model.config
    if translation is None:
        from .decoding import greedy_decode
        hyp = greedy_decode(model, [src[0].tolist()])[0]
        return list(hyp.ids) + ([c.eos_id] if hyp.finished else [])
    if isinstance(translation, str):
        if tok is None:
            raise InputError("this model has no target tokenizer; give translation= as ids")
        return tok.target.encode(translation) + [c.eos_id]
    ids = [int(v) for v in torch.as_tensor(translation).reshape(-1).tolist()]
    if not ids:
        raise InputError("translation= is empty; give the output text or its ids")
    if min(ids) < 0 or max(ids) >= c.tgt_vocab_size:
        raise InputError(f"translation ids must lie in 0..{c.tgt_vocab_size - 1}")
    return ids if ids[-1] == c.eos_id else ids + [c.eos_id]


def prepare_translation(model: Seq2Seq, inputs: Any, lengths: Any = None, target: Any = None,
                        translation: Any = None) -> TranslationTarget:
    """Parts, source and target for output position ``target`` (default 0) of the model's
    greedy translation of ``inputs`` (or of ``translation``, teacher-forced)."""
    model.eval()
    tok = _pair(model)
    src, tokens = _source(model, tok, inputs, lengths)
    L = torch.tensor([src.shape[1]])
    out = _output_ids(model, tok, src, translation)
    words = tok.target.tokens(out) if tok is not None else [str(i) for i in out]
    t = torch.as_tensor(0 if target is None else target) \
        if not isinstance(target, (str, bytes)) else None
    if t is None or t.numel() != 1 or t.is_floating_point() or t.dtype == torch.bool:
        raise InputError(f"target is one output position (a whole number) of the "
                         f"translation {' '.join(words)!r}; got {target!r}")
    k = int(t.reshape(-1)[0])
    if not 0 <= k < len(out):
        raise InputError(f"target must be an output position in 0..{len(out) - 1} of the "
                         f"translation {' '.join(words)!r}; got {k}")
    tgt_in = torch.tensor([[model.config.bos_id, *out[:k]]])  # (1, k + 1)
    labels = list(tok.target.vocab) if tok is not None else None
    parts = Seq2SeqParts(model, src, L, tgt_in, labels)
    with torch.no_grad():
        logits = parts.logits_from_embedded(parts.embed(src), L).float()  # (1, V)
    text = detokenize([w for w in words if w != UNK and not (tok and w in tok.target.specials)])
    params = {"output_position": k, "output_token": words[k], "translation": text,
              "output_tokens": words, "teacher_forced": translation is not None}
    return TranslationTarget(parts, src, L, tokens, torch.tensor([out[k]]), logits, params)
