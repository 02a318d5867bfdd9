"""Translate text with a :class:`~lstmlens.models.seq2seq.Seq2Seq`: greedy and beam search.

Every hypothesis is scored by its length-normalised log-probability under the model,

    score(y) = Σ_t log p(y_t | y_<t, x) / |y|^alpha,

with ``|y|`` counting the final ``<eos>`` (``alpha = 1``: the mean log-probability per token).
Greedy decoding (``beam=1``) runs batched over sentences. Beam search keeps ``beam`` live
hypotheses per sentence and stops when ``beam`` of them have ended; it returns the best by
(ended, score) among those and the greedy hypothesis, so its score is never below greedy's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from .batching import pad_batch
from .bleu_baseline import detokenize
from .errors import InputError, ModelError
from .models.seq2seq import Seq2Seq, TokenizerPair, as_tokenizer_pair
from .tokenizers import UNK

__all__ = ["Hypothesis", "Translation", "beam_search", "greedy_decode", "trace_inputs",
           "translate", "translate_batch"]


@dataclass
class Translation:
    """One translated sentence.

    Attributes
    ----------
    text : str
        The output, detokenised (lower-case if the target tokenizer lower-cases).
    tokens : list of str
        Output tokens, without ``<bos>``/``<eos>``; an ``<unk>`` replaced by the source word
        it attends to most when ``copy_unknown``.
    source_tokens : list of str
        The source words the model read (one attention column each).
    attention : np.ndarray
        ``[len(tokens), len(source_tokens)]``: row t is where the model looked to emit token t.
    score : float
        Length-normalised log-probability (see the module docstring).
    log_prob : float
        Total log-probability of the tokens (and ``<eos>`` when ``finished``).
    finished : bool
        Whether the model ended the sentence before ``max_length``.
    ids : list of int
        Target ids of ``tokens`` as the model produced them (``<unk>`` kept).
    """

    text: str
    tokens: list[str]
    source_tokens: list[str]
    attention: np.ndarray
    score: float
    log_prob: float
    finished: bool
    ids: list[int] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"text": self.text, "tokens": self.tokens, "source_tokens": self.source_tokens,
                "attention": self.attention.tolist(), "score": self.score,
                "log_prob": self.log_prob, "finished": self.finished, "ids": self.ids}


@dataclass
class Hypothesis:
    """A decoded id sequence with its total log-probability (see :class:`Translation`)."""

    ids: list[int]  # output ids without <bos>/<eos>
    log_prob: float
    finished: bool
    attention: np.ndarray  # (len(ids), S)

    def score(self, alpha: float = 1.0) -> float:
        """Length-normalised log-probability."""
        return self.log_prob / max(1, len(self.ids) + self.finished) ** alpha

    def key(self, alpha: float) -> tuple[bool, float]:
        return self.finished, self.score(alpha)


def _check_model(model: Any) -> Seq2Seq:
    if not isinstance(model, Seq2Seq):
        raise ModelError(f"translation needs a seq2seq model, got {type(model).__name__}")
    return model


def _default_max_length(n_src: int) -> int:
    return 2 * n_src + 10


@torch.no_grad()
def greedy_decode(model: Seq2Seq, sources: Sequence[Sequence[int]],
                  max_length: int | None = None) -> list[Hypothesis]:
    """Greedy hypotheses for source id lists, decoded together as one batch.

    Examples
    --------
    >>> hyps = greedy_decode(model, [[5, 9, 4], [7]])  # doctest: +SKIP
    """
    model = _check_model(model)
    model.eval()
    c = model.config
    src, lengths = pad_batch([np.asarray(s, dtype=np.int64) for s in sources])  # (B, S), (B,)
    B = len(sources)
    limits = torch.tensor([max_length or _default_max_length(len(s)) for s in sources])
    memory, state = model.encode(src, lengths)
    y = torch.full((B,), c.bos_id, dtype=torch.long)
    ctx = None
    done = torch.zeros(B, dtype=torch.bool)
    ended = torch.zeros(B, dtype=torch.bool)
    total = torch.zeros(B, dtype=torch.float64)
    out_ids: list[torch.Tensor] = []
    out_attn: list[torch.Tensor] = []
    n_out = torch.zeros(B, dtype=torch.long)  # tokens emitted, <eos> excluded
    for t in range(int(limits.max())):
        logits, alpha, state, ctx = model.step(y, state, ctx, memory)  # (B, V), (B, S)
        logp = torch.log_softmax(logits, dim=-1)  # (B, V)
        y = logp.argmax(-1)  # (B,)
        live = ~done
        total += torch.where(live, logp.gather(1, y[:, None])[:, 0].double(), 0.0)
        is_eos = (y == c.eos_id) & live
        ended |= is_eos
        n_out += (live & ~is_eos).long()
        out_ids.append(y)
        out_attn.append(alpha)
        done |= is_eos | (t + 1 >= limits)
        if bool(done.all()):
            break
    ids = torch.stack(out_ids, 1)  # (B, T_out)
    attn = torch.stack(out_attn, 1)  # (B, T_out, S)
    return [Hypothesis(ids[b, :n_out[b]].tolist(), float(total[b]), bool(ended[b]),
                 attn[b, :n_out[b], :lengths[b]].numpy().copy()) for b in range(B)]


@torch.no_grad()
def beam_search(model: Seq2Seq, source: Sequence[int], beam: int = 5,
                max_length: int | None = None, alpha: float = 1.0) -> Hypothesis:
    """Best hypothesis of a length-normalised beam search for one source id list.

    With ``beam=1`` this is greedy decoding, computed by the beam code.

    Examples
    --------
    >>> hyp = beam_search(model, [5, 9, 4], beam=5)  # doctest: +SKIP
    """
    model = _check_model(model)
    if isinstance(beam, bool) or not isinstance(beam, int) or beam < 1:
        raise InputError(f"beam must be a whole number ≥ 1, got {beam!r}")
    model.eval()
    c = model.config
    S = len(source)
    limit = max_length or _default_max_length(S)
    memory, state = model.encode(torch.as_tensor([list(source)], dtype=torch.long))
    scores = torch.zeros(1, dtype=torch.float64)  # (n,) cumulative log-probs of live hyps
    tokens = torch.zeros(1, 0, dtype=torch.long)  # (n, t)
    attns = torch.zeros(1, 0, S)  # (n, t, S)
    y = torch.full((1,), c.bos_id, dtype=torch.long)
    ctx = None
    finished: list[Hypothesis] = []
    for _ in range(limit):
        logits, alpha_t, state, ctx = model.step(y, state, ctx, memory)  # (n, V), (n, S)
        logp = torch.log_softmax(logits, dim=-1).double()  # (n, V)
        V = logp.shape[1]
        cand = (scores[:, None] + logp).flatten()  # (n·V,)
        top = torch.topk(cand, min(2 * beam, cand.numel()))
        keep_parent, keep_tok, keep_score = [], [], []
        for s, i in zip(top.values.tolist(), top.indices.tolist(), strict=True):
            parent, tok = divmod(i, V)
            if tok == c.eos_id:
                finished.append(Hypothesis(tokens[parent].tolist(), s, True,
                                     attns[parent].numpy().copy()))
            else:
                keep_parent.append(parent)
                keep_tok.append(tok)
                keep_score.append(s)
                if len(keep_parent) == beam:
                    break
        if len(finished) >= beam or not keep_parent:
            break
        idx = torch.tensor(keep_parent)
        tokens = torch.cat([tokens[idx], torch.tensor(keep_tok)[:, None]], 1)  # (n, t+1)
        attns = torch.cat([attns[idx], alpha_t[idx][:, None]], 1)  # (n, t+1, S)
        scores = torch.tensor(keep_score, dtype=torch.float64)
        state = (state[0][:, idx], state[1][:, idx])
        ctx = ctx[idx]
        memory = memory.expand(idx)
        y = torch.tensor(keep_tok)
    else:  # max_length reached: the live hypotheses compete unfinished
        finished += [Hypothesis(tokens[k].tolist(), float(scores[k]), False,
                                attns[k].numpy().copy()) for k in range(len(scores))]
    return max(finished, key=lambda h: h.key(alpha))


def _tokenizers(model: Seq2Seq, tokenizers: TokenizerPair | None) -> TokenizerPair:
    tok = tokenizers if tokenizers is not None else getattr(model, "tokenizer", None)
    if isinstance(tok, dict):
        tok = as_tokenizer_pair(tok)
    if not isinstance(tok, TokenizerPair):
        raise ModelError("the model has no source/target tokenizers: load it from a model "
                         "directory (lstmlens.load) or pass tokenizers=TokenizerPair(src, tgt)")
    return tok


def _source_ids(tok: TokenizerPair, text: str, limit: int, truncate: bool) -> list[int]:
    if not isinstance(text, str):
        raise InputError(f"text must be a string, got {type(text).__name__}")
    ids = tok.source.encode(text, max_length=limit, truncate=truncate)
    if all(i == tok.source.unk_id for i in ids):
        raise InputError(f"none of the words of {text!r} are in the model's source vocabulary "
                         f"({len(tok.source)} tokens); give text in the training language")
    return ids


def translate_batch(model: Seq2Seq, texts: Sequence[str], beam: int = 1,
                    max_length: int | None = None, *, tokenizers: TokenizerPair | None = None,
                    truncate: bool = False, alpha: float = 1.0, copy_unknown: bool = True,
                    batch_size: int = 64) -> list[Translation]:
    """Translate several texts (greedy in batches; beam search sentence by sentence).

    Parameters
    ----------
    model : Seq2Seq
        A trained model; its tokenizers come from ``model.tokenizer`` unless given.
    texts : sequence of str
        Source sentences, each at most ``model.config.max_source_length`` tokens.
    beam : int
        1 for greedy decoding, more for beam search.
    max_length : int, optional
        Most output tokens (default ``2 · source tokens + 10``).
    truncate : bool
        Cut sources longer than the limit instead of refusing them.
    alpha : float
        Length-normalisation exponent of the score.
    copy_unknown : bool
        Replace each output ``<unk>`` by the source word with the largest attention weight in
        that step (names are often rare words, copied unchanged); otherwise ``<unk>`` stays
        in ``tokens`` and is left out of ``text``.

    Examples
    --------
    >>> [t.text for t in translate_batch(model, ["And the LORD spake unto Moses, saying,",
    ...                                          "The king loved the woman."])]  # doctest: +SKIP
    ["l'éternel parla à moïse, et dit:", "le roi salomon s'est le roi la femme."]
    """
    model = _check_model(model)
    tok = _tokenizers(model, tokenizers)
    if isinstance(beam, bool) or not isinstance(beam, int) or beam < 1:
        raise InputError(f"beam must be a whole number ≥ 1, got {beam!r}")
    if max_length is not None and (isinstance(max_length, bool) or
                                   not isinstance(max_length, int) or max_length < 1):
        raise InputError(f"max_length must be a whole number ≥ 1, got {max_length!r}")
    if isinstance(texts, str):
        raise InputError("texts must be a list of strings; use translate() for one text")
    sources = [_source_ids(tok, t, model.config.max_source_length, truncate) for t in texts]
    if not sources:
        return []
    hyps: list[Hypothesis] = []
    for start in range(0, len(sources), batch_size):
        hyps += greedy_decode(model, sources[start:start + batch_size], max_length)
    if beam > 1:
        hyps = [max(beam_search(model, s, beam, max_length, alpha), g, key=lambda h: h.key(alpha))
                for s, g in zip(sources, hyps, strict=True)]
    out = []
    for text, src, h in zip(texts, sources, hyps, strict=True):
        words = tok.target.tokens(h.ids)
        source_words = tok.source.split(text)[:len(src)]
        if copy_unknown:  # <unk> → the source word it attends to most (Luong et al., 2015)
            words = [source_words[int(h.attention[t].argmax())] if i == tok.target.unk_id
                     else w for t, (i, w) in enumerate(zip(h.ids, words, strict=True))]
        out.append(Translation(
            text=detokenize([w for w in words if w != UNK]), tokens=words,
            source_tokens=source_words, attention=h.attention,
            score=h.score(alpha), log_prob=h.log_prob, finished=h.finished, ids=list(h.ids)))
    return out


def translate(model: Seq2Seq, text: str, beam: int = 1, max_length: int | None = None, *,
              tokenizers: TokenizerPair | None = None, truncate: bool = False,
              alpha: float = 1.0, copy_unknown: bool = True) -> Translation:
    """Translate one text: greedy for ``beam=1``, length-normalised beam search above.

    Empty text, text with no known word, or text longer than
    ``model.config.max_source_length`` tokens (unless ``truncate``) raise :class:`InputError`.
    Arguments as for :func:`translate_batch`.

    Examples
    --------
    >>> model = lstmlens.load("runs/translation")  # doctest: +SKIP
    >>> t = translate(model, "And the LORD spake unto Moses, saying,", beam=5)  # doctest: +SKIP
    >>> t.text, t.attention.shape  # doctest: +SKIP
    ("l'éternel parla à moïse, et dit:", (8, 9))
    """
    return translate_batch(model, [text], beam, max_length, tokenizers=tokenizers,
                           truncate=truncate, alpha=alpha, copy_unknown=copy_unknown)[0]


def trace_inputs(model: Seq2Seq, text: str, translation: Translation | None = None, *,
                 beam: int = 1, tokenizers: TokenizerPair | None = None,
                 truncate: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(src (1, S), lengths (1,), tgt_in (1, T))`` that replay a translation of ``text``.

    Teacher forcing with ``tgt_in = <bos> + the output ids`` reproduces the decoder states of
    decoding, so ``lstmlens.trace(model, src, lengths, tgt_in=tgt_in)`` shows every gate of
    the encoder and of the decoder while it wrote its translation (step t emitted output t,
    the last step ``<eos>``). ``translation`` defaults to ``translate(model, text, beam)``.

    Examples
    --------
    >>> src, lengths, tgt_in = trace_inputs(model, "And God said")  # doctest: +SKIP
    >>> tr = lstmlens.trace(model, src, lengths, tgt_in=tgt_in)  # doctest: +SKIP
    >>> tr["decoder.layers.0.forward.forget_gate"].shape  # doctest: +SKIP
    torch.Size([1, 4, 256])
    """
    model = _check_model(model)
    tok = _tokenizers(model, tokenizers)
    if translation is None:
        translation = translate(model, text, beam, tokenizers=tok, truncate=truncate)
    src = _source_ids(tok, text, model.config.max_source_length, truncate)
    tgt = [model.config.bos_id] + list(translation.ids)
    return (torch.tensor([src], dtype=torch.long), torch.tensor([len(src)]),
            torch.tensor([tgt], dtype=torch.long))
