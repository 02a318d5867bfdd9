"""``Recognizer``: a binary LSTM classifier over symbols seen as a string acceptor.

Automaton extraction asks three things of a network: does it accept a word (membership),
what state is it in after each prefix (quantisation), and where does one symbol take a
given state (exploring its state space). A state is the concatenation over LSTM layers of
``[h_k, c_k]``; the network accepts a prefix when its classifier head, reading the last
layer's ``h``, gives class 1 ("in the language") the larger logit.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import torch

from .errors import InputError, ModelError
from .tracing import trace

__all__ = ["Recognizer"]

_CHUNK = 1024


@contextmanager
def _evaluating(model: torch.nn.Module) -> Iterator[None]:
    """Eval mode and no gradients inside; the modules' own modes restored on exit."""
    modes = {m: m.training for m in model.modules()}
    try:
        model.eval()
        with torch.no_grad():
            yield
    finally:
        for m, mode in modes.items():
            m.training = mode


class Recognizer:
    """The network as a string acceptor, with its states.

    Parameters
    ----------
    model
        An :class:`lstmlens.LSTMClassifier` with two classes, token inputs, a character
        tokenizer (``model.tokenizer``), ``pooling="last"`` and one direction — what
        ``lstmlens train tomita`` / ``brackets`` make. Class 1 means "accept".
    alphabet
        The symbols, one character each (default ``model.meta["alphabet"]``); each must be
        in the model's vocabulary.

    Examples
    --------
    >>> rec = Recognizer(lstmlens.load("runs/automata/tomita4-seed0"))  # doctest: +SKIP
    >>> rec.accepts(["0101", "1000"])  # doctest: +SKIP
    array([ True, False])
    """

    def __init__(self, model: torch.nn.Module, alphabet: str | None = None):
        from .models import LSTMClassifier
        if not isinstance(model, LSTMClassifier):
            raise ModelError(f"automaton extraction reads an LSTMClassifier over symbols (as "
                             f"`lstmlens train tomita` or `brackets` make); got "
                             f"{type(model).__name__}")
        c = model.config
        if c.num_classes != 2:
            raise ModelError(f"automaton extraction needs a binary classifier (accept or "
                             f"reject); this model has {c.num_classes} classes")
        if model.embedding is None:
            raise ModelError("automaton extraction needs a model over symbols (token ids); "
                             "this model reads float features")
        if c.bidirectional or c.pooling != "last":
            raise ModelError("automaton extraction needs a one-direction LSTM whose decision "
                             "reads the last state (pooling='last', not bidirectional); this "
                             f"model has bidirectional={c.bidirectional}, pooling={c.pooling!r}")
        tok = getattr(model, "tokenizer", None)
        if tok is None or getattr(tok, "level", None) != "char":
            raise ModelError("automaton extraction needs the model's character tokenizer "
                             "(model.tokenizer, saved in its model directory) to map symbols "
                             "to ids; this model has none")
        meta = getattr(model, "meta", None) or {}
        self.model, self.tokenizer = model, tok
        self.start_symbol = str(meta.get("start_symbol") or "")
        if alphabet is None:
            alphabet = meta.get("alphabet")
            if not alphabet:
                raise InputError("this model records no alphabet; pass alphabet= (a string "
                                 "of its symbols, e.g. '01')")
        self.alphabet = self._check_alphabet(alphabet)
        self.symbol_ids = {a: tok.id(a) for a in self.alphabet}
        self.max_length = meta.get("max_length")
        self.sizes = list(c.hidden_sizes)
        self.state_size = 2 * sum(self.sizes)
        self.initial = self._initial()  # (D,)

    def _check_alphabet(self, alphabet: object) -> str:
        tok = self.tokenizer
        symbols = [t for t in tok.vocab if t not in tok.specials and t != self.start_symbol]
        accepted = f"the model's symbols are {''.join(symbols)!r}"
        if not isinstance(alphabet, str) or not alphabet:
            raise InputError(f"alphabet must be a non-empty string of symbols; {accepted}")
        if len(set(alphabet)) != len(alphabet):
            raise InputError(f"alphabet {alphabet!r} repeats a symbol")
        unknown = [a for a in alphabet if a not in symbols]
        if unknown:
            raise InputError(f"alphabet {alphabet!r} does not match the model's vocabulary: "
                             f"{''.join(unknown)!r} unknown to it; {accepted}")
        return alphabet

    def check_words(self, words: Sequence[str]) -> list[str]:
        """The words as a list, refusing any symbol outside the alphabet."""
        if isinstance(words, str):
            raise InputError("give a list of words, not one string")
        out = list(words)
        for w in out:
            if not isinstance(w, str) or not set(w) <= set(self.alphabet):
                raise InputError(f"word {w!r} is not a string over the alphabet "
                                 f"{self.alphabet!r}")
        return out

    # -- whole words -------------------------------------------------------------------
    def _encode(self, words: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Token ids of start symbol + word, right-padded: (B, T), lengths (B,)."""
        lengths = [len(self.start_symbol) + len(w) for w in words]
        T = max(1, max(lengths))
        x = torch.zeros(len(words), T, dtype=torch.long)
        prefix = [self.tokenizer.id(self.start_symbol)] if self.start_symbol else []
        for i, w in enumerate(words):
            ids = prefix + [self.symbol_ids[a] for a in w]
            x[i, :len(ids)] = torch.tensor(ids, dtype=torch.long)
        return x, torch.tensor(lengths, dtype=torch.long)

    def accepts(self, words: Sequence[str]) -> np.ndarray:
        """Whether the network accepts each word: bool (B,)."""
        words = self.check_words(words)
        out = np.zeros(len(words), dtype=bool)
        order = sorted(range(len(words)), key=lambda i: len(words[i]))
        empty = [i for i in order if not words[i]] if not self.start_symbol else []
        if empty:  # no step to run: the head reads the zero state
            out[empty] = self.decide(np.zeros((1, self.state_size), np.float32))[0] > 0.5
        rest = [i for i in order if words[i] or self.start_symbol]
        with _evaluating(self.model):
            for k in range(0, len(rest), _CHUNK):
                idx = rest[k:k + _CHUNK]
                x, lengths = self._encode([words[i] for i in idx])
                logits = self.model(x, lengths)  # (B, 2)
                out[idx] = (logits[:, 1] > logits[:, 0]).numpy()
        return out

    def states(self, words: Sequence[str]) -> list[np.ndarray]:
        """The state after every prefix of each word, recorded with :func:`lstmlens.trace`:
        one array ``(len(word) + 1, D)`` per word, the empty prefix first."""
        words = self.check_words(words)
        out: list[np.ndarray] = [np.empty(0)] * len(words)
        order = sorted(range(len(words)), key=lambda i: len(words[i]))
        skip = len(self.start_symbol)
        for k in range(0, len(order), _CHUNK):
            idx = order[k:k + _CHUNK]
            batch = [words[i] for i in idx]
            if not self.start_symbol and not any(batch):
                series = np.zeros((len(idx), 0, self.state_size), np.float32)
            else:
                x, lengths = self._encode(batch)
                tr = trace(self.model, x, lengths.clamp_min(1))
                parts = []
                for j in range(len(self.sizes)):
                    for name in ("hidden", "cell"):
                        parts.append(tr[f"lstms.{j}.layers.0.forward.{name}"])  # (B, T, H)
                series = torch.cat(parts, -1).numpy()  # (B, T, D)
            for b, i in enumerate(idx):
                n = len(words[i])
                s = series[b, max(skip - 1, 0):skip + n]  # (n + 1, D) with a start symbol
                if not skip:
                    s = np.concatenate([np.zeros((1, self.state_size), np.float32),
                                        series[b, :n]])
                out[i] = s
        return out

    # -- single steps ------------------------------------------------------------------
    def _initial(self) -> np.ndarray:
        if not self.start_symbol:
            return np.zeros(self.state_size, np.float32)
        return self.states([""])[0][0]

    def step(self, states: np.ndarray, symbol: str) -> np.ndarray:
        """The states reached from ``states`` (N, D) on one ``symbol``: (N, D)."""
        if symbol not in self.symbol_ids:
            raise InputError(f"symbol {symbol!r} is not in the alphabet {self.alphabet!r}")
        s = torch.as_tensor(np.asarray(states, np.float32))  # (N, D)
        N = s.shape[0]
        out, at = [], 0
        with _evaluating(self.model):
            x = self.model.embedding(torch.full((N, 1), self.symbol_ids[symbol]))  # (N, 1, E)
            for H, lstm in zip(self.sizes, self.model.lstms, strict=True):
                h0, c0 = s[:, at:at + H], s[:, at + H:at + 2 * H]  # (N, H) each
                x, (h, c) = lstm(x, (h0[None].contiguous(), c0[None].contiguous()))
                out += [h[0], c[0]]
                at += 2 * H
        return torch.cat(out, -1).numpy()  # (N, D)

    def decide(self, states: np.ndarray) -> np.ndarray:
        """The probability of "accept" (class 1) in each state (N, D): (N,)."""
        H = self.sizes[-1]
        at = self.state_size - 2 * H
        h = torch.as_tensor(np.asarray(states, np.float32))[:, at:at + H]  # (N, H) last layer
        with _evaluating(self.model):
            return torch.softmax(self.model.head(h), -1)[:, 1].numpy()

    def hidden(self, states: np.ndarray) -> np.ndarray:
        """The hidden units ``h`` of every layer (N, ΣH), without the cells."""
        parts, at = [], 0
        for H in self.sizes:
            parts.append(np.asarray(states)[:, at:at + H])
            at += 2 * H
        return np.concatenate(parts, -1)

    def cells(self, states: np.ndarray) -> np.ndarray:
        """The cells ``c`` of every layer (N, ΣH)."""
        parts, at = [], 0
        for H in self.sizes:
            parts.append(np.asarray(states)[:, at + H:at + 2 * H])
            at += 2 * H
        return np.concatenate(parts, -1)

    def unit_names(self) -> list[str]:
        """Names of the hidden units in :meth:`hidden`'s order: ``layer k unit j``."""
        return [f"lstms.{k}.hidden[{j}]" for k, H in enumerate(self.sizes) for j in range(H)]
