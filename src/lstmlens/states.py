"""``States``: the series of a traced model over a corpus, one array per sequence.

Neuron analyses (saturation, interpretable cells, hypothesis matching, probes, trajectories)
read the same thing: for every sequence of a corpus, its tokens and, per trace key, the
values of every unit at every valid step. :func:`collect_states` traces a model on a corpus
in batches and keeps only the valid steps.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from .errors import InputError
from .trace_result import Trace
from .weights import SERIES


@dataclass
class States:
    """Per trace key, the values of every unit at every valid step of each sequence.

    ``series[key][i]`` is ``(T_i, units)`` for sequence ``i``; ``tokens[i]`` its ``T_i``
    tokens (``"t0", "t1", …`` for feature inputs).
    """

    tokens: list[list[str]]
    series: dict[str, list[np.ndarray]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.tokens:
            raise InputError("the corpus is empty; give at least one sequence")

    # -- reading -----------------------------------------------------------------------
    def keys(self, series: str | None = None) -> list[str]:
        """Trace keys, optionally only those of one series (``"cell"``, ``"forget_gate"``)."""
        return [k for k in self.series if series is None or k.rsplit(".", 1)[-1] == series]

    def key(self, key: str | None = None, series: str = "cell") -> str:
        """Resolve a key: ``None`` means the top layer's forward ``series``; a full key or a
        unique suffix (``"layers.0.forward.cell"``) is accepted."""
        if key is None:
            keys = [k for k in self.keys(series) if ".backward." not in k]
            if not keys:
                raise InputError(f"these states hold no {series!r} series; they hold "
                                 f"{sorted({k.rsplit('.', 1)[-1] for k in self.series})}")
            return keys[-1]
        if key in self.series:
            return key
        hits = [k for k in self.series if k.endswith("." + key)]
        if len(hits) == 1:
            return hits[0]
        raise InputError(f"no single series {key!r} in these states; the keys are: "
                         f"{', '.join(self.series)}")

    def units(self, key: str) -> int:
        return int(self.series[self.key(key)][0].shape[1])

    @property
    def lengths(self) -> list[int]:
        return [len(t) for t in self.tokens]

    @property
    def num_steps(self) -> int:
        return int(sum(self.lengths))

    def sequence(self, key: str, i: int, scaled: bool = False) -> np.ndarray:
        """``(T_i, units)`` values of sequence ``i`` (``scaled``: tanh of a cell state)."""
        k = self.key(key)
        if not 0 <= i < len(self.tokens):
            raise InputError(f"sequence {i} is out of range; the corpus has "
                             f"{len(self.tokens)} sequences (0..{len(self.tokens) - 1})")
        v = self.series[k][i]
        return np.tanh(v) if scaled and k.endswith(".cell") else v

    def flat(self, key: str, scaled: bool = False) -> np.ndarray:
        """``(N, units)``: every valid step of every sequence, in corpus order."""
        k = self.key(key)
        v = np.concatenate(self.series[k], axis=0)
        return np.tanh(v) if scaled and k.endswith(".cell") else v

    def flat_tokens(self) -> list[str]:
        return [t for seq in self.tokens for t in seq]

    def positions(self) -> tuple[np.ndarray, np.ndarray]:
        """``(sequence index, position)`` of every flat step, each ``(N,)``."""
        seq = np.concatenate([np.full(n, i) for i, n in enumerate(self.lengths)])
        pos = np.concatenate([np.arange(n) for n in self.lengths])
        return seq, pos

    def check_feature(self, feature: Any, name: str = "feature") -> np.ndarray:
        """A per-token feature as a flat ``(N,)`` float array: one array per sequence (each
        as long as its tokens) or one flat array of all ``N`` steps."""
        if isinstance(feature, np.ndarray | torch.Tensor) and np.ndim(feature) == 1:
            arr = np.asarray(feature, dtype=np.float64)
            if len(arr) != self.num_steps:
                raise InputError(f"{name} has {len(arr)} values but the corpus has "
                                 f"{self.num_steps} tokens; give one value per token")
        else:
            parts = list(feature)
            if len(parts) != len(self.tokens):
                raise InputError(f"{name} has {len(parts)} sequences but the corpus has "
                                 f"{len(self.tokens)}; give one array per sequence")
            for i, (p, toks) in enumerate(zip(parts, self.tokens, strict=True)):
                if np.ndim(p) != 1 or len(p) != len(toks):
                    raise InputError(f"{name} of sequence {i} has shape {np.shape(p)} but the "
                                     f"sequence has {len(toks)} tokens; give one value per "
                                     "token")
            arr = np.concatenate([np.asarray(p, dtype=np.float64) for p in parts])
        if not np.isfinite(arr).all():
            raise InputError(f"{name} holds NaN or infinite values")
        return arr

    @classmethod
    def from_trace(cls, trace: Trace, tokens: Sequence[Sequence[str]] | None = None,
                   series: Sequence[str] | None = None) -> States:
        """The valid steps of a :class:`Trace` (tokens ``t0, t1, …`` when not given)."""
        lengths = [int(n) for n in trace.lengths]
        if tokens is None:
            tokens = [[f"t{t}" for t in range(n)] for n in lengths]
        tokens = [list(t) for t in tokens]
        if [len(t) for t in tokens] != lengths:
            raise InputError(f"tokens have lengths {[len(t) for t in tokens]} but the trace's "
                             f"sequences have {lengths}")
        out: dict[str, list[np.ndarray]] = {}
        for key, v in trace.items():
            if series is not None and key.rsplit(".", 1)[-1] not in series:
                continue
            lens = trace.module_of(key).lengths.tolist()
            arr = v.detach().cpu().float().numpy()  # (B, T, units)
            out[key] = [arr[b, :n] for b, n in enumerate(lens)]
        return cls(tokens=tokens, series=out)

    def extend(self, other: States) -> None:
        """Append another batch of sequences (same keys)."""
        if self.series and set(other.series) != set(self.series):
            raise InputError("cannot join states with different keys")
        self.tokens.extend(other.tokens)
        for k, v in other.series.items():
            self.series.setdefault(k, []).extend(v)

    def __repr__(self) -> str:
        return (f"<States {len(self.tokens)} sequences, {self.num_steps} steps, "
                f"{len(self.series)} series>")


def encode_inputs(model: Any, inputs: Sequence[Any]) -> tuple[list[Any], list[list[str]]]:
    """Per sequence, what the model reads (id list or ``(T, F)`` array) and its tokens.

    Text needs the model's tokenizer; a formal-language model gets its start symbol first,
    as in training; a sentiment model's ``max_length`` cuts longer texts.
    """
    if isinstance(inputs, str) or not isinstance(inputs, Sequence | np.ndarray):
        raise InputError("give a list of sequences (texts, id lists or [time, features] "
                         "arrays), not a single one")
    if len(inputs) == 0:
        raise InputError("the corpus is empty; give at least one sequence")
    meta = getattr(model, "meta", None) or {}
    tok = getattr(model, "tokenizer", None)
    seqs, tokens = [], []
    for i, item in enumerate(inputs):
        if isinstance(item, str):
            if tok is None or not hasattr(tok, "encode"):
                raise InputError("this model has no tokenizer, so it cannot read text; give "
                                 "id lists or [time, features] arrays")
            text = meta.get("start_symbol", "") + item
            ids = tok.encode(text, max_length=meta.get("max_length") if not meta.get(
                "start_symbol") else None, truncate=True)
            seqs.append(ids)
            tokens.append(tok.split(text)[:len(ids)] if tok.level == "char" else tok.tokens(ids))
            continue
        arr = np.asarray(item)
        if arr.ndim == 1 and np.issubdtype(arr.dtype, np.integer):
            seqs.append(arr.astype(np.int64).tolist())
            tokens.append(tok.tokens(seqs[-1]) if tok is not None and hasattr(tok, "tokens")
                          else [str(v) for v in seqs[-1]])
        elif arr.ndim == 2 and np.issubdtype(arr.dtype, np.floating):
            seqs.append(arr.astype(np.float32))
            tokens.append([f"t{t}" for t in range(arr.shape[0])])
        else:
            raise InputError(f"sequence {i} has shape {arr.shape} and dtype {arr.dtype}; give "
                             "text, an integer id list or a float [time, features] array")
        if len(seqs[-1]) == 0:
            raise InputError(f"sequence {i} is empty")
    return seqs, tokens


def collect_states(model: Any, inputs: Sequence[Any], *, series: Sequence[str] | None = None,
                   batch_size: int = 32) -> States:
    """Trace ``model`` on a corpus and keep every valid step.

    Parameters
    ----------
    model
        An lstmlens model or any module :func:`lstmlens.trace` takes with ``lengths=``.
    inputs
        Texts (models with a tokenizer), token-id lists or ``[time, features]`` arrays.
    series
        Keep only these series (default all six: gates, ``cell``, ``hidden``).

    Examples
    --------
    >>> st = collect_states(model, ["def f(x):\\n    return 'a'\\n"])  # doctest: +SKIP
    >>> st.flat("cell").shape  # (N, units)  # doctest: +SKIP
    """
    from .batching import pad_batch
    from .tracing import trace

    if series is not None:
        bad = sorted(set(series) - set(SERIES))
        if bad:
            raise InputError(f"unknown series {bad}; the series are {', '.join(SERIES)}")
    seqs, tokens = encode_inputs(model, inputs)
    states: States | None = None
    for a in range(0, len(seqs), batch_size):
        x, lengths = pad_batch(seqs[a:a + batch_size])  # (B, T) ids or (B, T, F)
        tr = trace(model, x, lengths)
        part = States.from_trace(tr, tokens[a:a + batch_size], series)
        if states is None:
            states = part
        else:
            states.extend(part)
    assert states is not None
    return states


def as_states(obj: Any, tokens: Sequence[Sequence[str]] | None = None) -> States:
    """``States`` from ``States`` or a :class:`Trace`."""
    if isinstance(obj, States):
        return obj
    if isinstance(obj, Trace):
        return States.from_trace(obj, tokens)
    raise InputError(f"give States (lstmlens.collect_states) or a Trace, got "
                     f"{type(obj).__name__}")


@functools.lru_cache(maxsize=2)
def _validation_text(corpus: str) -> str:
    """The validation text of a textgen corpus, as ``lstmlens train textgen`` splits it
    (read once per process: reading the standard library takes seconds)."""
    from .datasets.corpora import load_kjv, load_python_source
    return (load_python_source(seed=0) if corpus == "code" else load_kjv()).validation


def model_corpus(model: Any, n: int = 100, chars: int | None = None) -> list[Any]:
    """Up to ``n`` held-out sequences of the data a reference model was trained on, read
    from its recorded task: test texts (sentiment), test strings (formal languages), test
    utterances (speech), or ``chars``-character pieces of validation text (character
    language models; each piece starts at the beginning of a line, so that features such
    as "inside a string literal" start in a known state; in Python source, outside any
    string literal). By default a piece is as long as
    the chunks the model was trained on from a zero state (``seq_len``, unless it was
    trained statefully), since that is how far its states were taught to carry."""
    meta = getattr(model, "meta", None) or {}
    task = str(meta.get("task", ""))
    seed = int(meta.get("seed", 0) or 0)
    if task.startswith("textgen/"):
        if chars is None:
            chars = 400 if meta.get("stateful") else int(meta.get("seq_len", 400))
        if chars < 1:
            raise InputError(f"chars must be ≥ 1, got {chars}")
        from .datasets.corpora import FILE_SEPARATOR
        text = _validation_text(str(meta.get("corpus", "kjv")))
        pieces = []
        code = meta.get("corpus") == "code"
        for doc in text.split(FILE_SEPARATOR):
            if code:  # start outside string literals, so per-token features start right
                from .cells import inside_string
                inside = inside_string(list(doc))
            seen = -1
            for a in range(0, max(1, len(doc) - chars // 2), chars):
                start = doc.rfind("\n", 0, a) + 1 if a else 0
                while code and 0 < start < len(doc) and inside[start - 1]:
                    start = doc.find("\n", start) + 1 or len(doc)
                piece = doc[start:start + chars]
                if start > seen and piece.strip():
                    pieces.append(piece)
                    seen = start
        step = max(1, len(pieces) // n)
        return pieces[::step][:n]
    if task == "sentiment" or task.startswith("sentiment"):
        from .datasets.sentiment import load_sentiment
        corpus = (meta.get("data") or {}).get("corpus", "movies")
        return list(load_sentiment(corpus, seed=seed).test.texts[:n])
    if task.startswith("formal/"):
        from .datasets.formal_data import brackets_data, tomita_data
        if task == "formal/brackets":
            splits = brackets_data(max_length=int(meta.get("max_length", 24)),
                                   max_depth=int(meta.get("max_depth", 4)),
                                   pairs=meta.get("pairs", "()"), per_length=10,
                                   test_per_length=5, seed=seed)
        else:
            splits = tomita_data(int(meta.get("grammar", 1)), max_length=int(meta.get(
                "max_length", 20)), per_length=10, test_per_length=5, seed=seed)
        strings = [s for s in splits.test.strings if s]
        step = max(1, len(strings) // n)
        return strings[::step][:n]
    if task == "speech/japanese_vowels":
        from .datasets import load_japanese_vowels
        return list(load_japanese_vowels(seed=seed).test.inputs[:n])
    raise InputError(f"this model records no task whose data I can read (task {task!r}); "
                     "give a corpus of texts or sequences")
