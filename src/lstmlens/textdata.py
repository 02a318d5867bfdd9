"""Text data sets: texts with labels, their splits, and their conversion to token sequences.

Every text loader (the sentiment corpora, the planted-token task, users' own files) returns
:class:`TextData`; :func:`encode_texts` turns one into the :class:`~lstmlens.datasets.SequenceData`
that :func:`lstmlens.fit` trains on, through a :class:`~lstmlens.tokenizers.Tokenizer` fitted
on the training texts only. :func:`predict_text` is the way back: raw strings in, class
probabilities out, with clear errors for text the model cannot read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from .batching import batches, pad_batch
from .datasets.base import SequenceData, Splits
from .errors import InputError, ModelError
from .tokenizers import Tokenizer

__all__ = [
    "TextData",
    "TextSplits",
    "encode_splits",
    "encode_texts",
    "fit_tokenizer",
    "model_tokenizer",
    "predict_text",
    "split_text_data",
    "stratified_indices",
]


@dataclass
class TextData:
    """Texts, one integer label each (or none), and per-text extras.

    Parameters
    ----------
    texts : list of str
        The texts.
    labels : np.ndarray or None
        Class index per text, int64 ``[N]``; ``None`` for unlabelled text (language models).
    classes : list of str
        ``classes[k]`` names label ``k`` (empty when unlabelled).
    extras : dict
        Per-text lists or arrays of length ``N`` (ratings, line numbers, planted positions)
        under their names, plus anything else under other names (settings); :meth:`subset`
        keeps the per-text ones aligned.

    Examples
    --------
    >>> d = TextData(["a good film", "a bad film"], np.array([1, 0]), ["negative", "positive"])
    >>> len(d), d.subset([1]).texts
    (2, ['a bad film'])
    """

    texts: list[str]
    labels: np.ndarray | None = None
    classes: list[str] = field(default_factory=list)
    extras: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.texts = list(self.texts)
        bad = [i for i, t in enumerate(self.texts) if not isinstance(t, str)]
        if bad:
            raise InputError(f"texts must be strings; item {bad[0]} is "
                             f"{type(self.texts[bad[0]]).__name__}")
        if self.labels is not None:
            self.labels = np.asarray(self.labels, dtype=np.int64)
            if self.labels.shape != (len(self.texts),):
                raise InputError(f"labels must be 1-D with one entry per text: got shape "
                                 f"{self.labels.shape} for {len(self.texts)} texts")
            if self.classes and len(self.labels) and (
                    self.labels.min() < 0 or self.labels.max() >= len(self.classes)):
                raise InputError(f"labels must lie in 0..{len(self.classes) - 1} "
                                 f"(one per class of {self.classes})")

    def __len__(self) -> int:
        return len(self.texts)

    def _per_text(self) -> list[str]:
        return [k for k, v in self.extras.items()
                if isinstance(v, (list, np.ndarray)) and len(v) == len(self.texts)]

    def subset(self, indices: Sequence[int] | np.ndarray) -> TextData:
        """The texts at ``indices`` (in that order), with their labels and per-text extras."""
        idx = np.asarray(indices, dtype=np.int64)
        extras = dict(self.extras)
        for k in self._per_text():
            v = self.extras[k]
            extras[k] = v[idx] if isinstance(v, np.ndarray) else [v[i] for i in idx]
        return TextData([self.texts[i] for i in idx],
                        None if self.labels is None else self.labels[idx],
                        list(self.classes), extras)


@dataclass
class TextSplits:
    """Train/validation/test :class:`TextData` of one data set, with class names and provenance.

    Examples
    --------
    >>> from lstmlens.datasets.sentiment import load_sentiment
    >>> splits = load_sentiment("movies")  # doctest: +SKIP
    >>> splits.classes, len(splits.train)  # doctest: +SKIP
    (['negative', 'positive'], 8452)
    """

    train: TextData
    validation: TextData
    test: TextData
    classes: list[str]
    source: dict[str, Any] = field(default_factory=dict)


def stratified_indices(labels: np.ndarray, fractions: Sequence[float], seed: int
                       ) -> list[np.ndarray]:
    """Split ``range(len(labels))`` into parts of the given fractions, class by class.

    Each class is shuffled with ``seed`` and cut at the rounded cumulative fractions, so every
    part keeps the class balance. The parts are returned as sorted index arrays.

    Examples
    --------
    >>> parts = stratified_indices(np.array([0] * 10 + [1] * 10), (0.8, 0.1, 0.1), seed=0)
    >>> [len(p) for p in parts]
    [16, 2, 2]
    """
    fr = np.asarray(fractions, dtype=np.float64)
    if fr.ndim != 1 or len(fr) < 2 or (fr < 0).any() or abs(fr.sum() - 1.0) > 1e-9:
        raise InputError(f"fractions must be ≥ 0 and sum to 1, got {list(fractions)}")
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    parts: list[list[np.ndarray]] = [[] for _ in fr]
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        cuts = np.floor(np.cumsum(fr) * len(idx) + 0.5).astype(np.int64)
        for k, (a, b) in enumerate(zip(np.r_[0, cuts[:-1]], cuts, strict=True)):
            parts[k].append(idx[a:b])
    return [np.sort(np.concatenate(p)) if p else np.zeros(0, np.int64) for p in parts]


def split_text_data(data: TextData, fractions: Sequence[float] = (0.8, 0.1, 0.1),
                    seed: int = 0, source: dict[str, Any] | None = None) -> TextSplits:
    """Seeded stratified train/validation/test split of one labelled :class:`TextData`.

    Examples
    --------
    >>> d = TextData(["good", "bad"] * 10, np.array([1, 0] * 10), ["negative", "positive"])
    >>> s = split_text_data(d, seed=0)
    >>> len(s.train), len(s.validation), len(s.test)
    (16, 2, 2)
    """
    if data.labels is None:
        raise InputError("cannot split unlabelled texts into stratified splits; give labels")
    if len(fractions) != 3:
        raise InputError(f"give three fractions (train, validation, test), got {fractions}")
    train, val, test = stratified_indices(data.labels, fractions, seed)
    empty = [n for n, p in zip(("train", "validation", "test"), (train, val, test), strict=True)
             if len(p) == 0]
    if empty:
        raise InputError(f"{len(data)} texts are too few: the {', '.join(empty)} split(s) "
                         f"would be empty with fractions {list(fractions)}")
    return TextSplits(data.subset(train), data.subset(val), data.subset(test),
                      list(data.classes), dict(source or {}))


def fit_tokenizer(texts: Sequence[str], level: str = "word", max_vocab: int | None = 20000,
                  min_count: int = 1, lowercase: bool = True) -> Tokenizer:
    """A :class:`Tokenizer` fitted on ``texts`` (the training split only, never the test split).

    Examples
    --------
    >>> tok = fit_tokenizer(["a good film", "a bad film"])
    >>> tok.tokens(tok.encode("a good plot"))
    ['a', 'good', '<unk>']
    """
    if len(texts) == 0:
        raise InputError("cannot fit a tokenizer on zero texts")
    return Tokenizer(level=level, lowercase=lowercase, max_vocab=max_vocab,
                     min_count=min_count).fit(texts)


def encode_texts(data: TextData, tokenizer: Tokenizer, max_length: int | None = None,
                 truncate: bool = True) -> SequenceData:
    """Token-id sequences (int64 ``[T_i]``) and labels of ``data``, ready for ``fit``.

    Texts longer than ``max_length`` tokens keep their first ``max_length`` tokens when
    ``truncate`` (the default for training data), else raise. A text without any token is an
    error that names it.

    Examples
    --------
    >>> d = TextData(["a good film", "bad"], np.array([1, 0]))
    >>> seq = encode_texts(d, fit_tokenizer(d.texts))
    >>> seq.lengths.tolist()
    [3, 1]
    """
    if data.labels is None:
        raise InputError("encode_texts needs labelled texts")
    inputs = []
    for i, text in enumerate(data.texts):
        try:
            ids = tokenizer.encode(text, max_length=max_length, truncate=truncate)
        except InputError as e:
            raise InputError(f"text {i} ({text[:40]!r}): {e}") from None
        inputs.append(np.asarray(ids, dtype=np.int64))
    return SequenceData(inputs, data.labels)


def encode_splits(splits: TextSplits, tokenizer: Tokenizer, max_length: int | None = None
                  ) -> Splits:
    """:func:`encode_texts` on all three splits; ``feature_names`` is ``["token"]``."""
    enc = [encode_texts(d, tokenizer, max_length) for d in
           (splits.train, splits.validation, splits.test)]
    return Splits(*enc, classes=list(splits.classes), feature_names=["token"],
                  source=dict(splits.source))


def model_tokenizer(model: nn.Module) -> Tokenizer:
    """The :class:`Tokenizer` of a loaded or freshly trained text model.

    Accepts ``model.tokenizer`` as a :class:`Tokenizer` or as its JSON dict.
    """
    tok = getattr(model, "tokenizer", None)
    if isinstance(tok, dict):
        tok = Tokenizer.from_json(tok)
    if not isinstance(tok, Tokenizer):
        raise ModelError("this model has no tokenizer (it takes features, not text); "
                         "predict_text needs a model trained on text")
    return tok


def predict_text(model: nn.Module, texts: str | Sequence[str], *, truncate: bool = False,
                 max_length: int | None = None, batch_size: int = 256) -> np.ndarray:
    """Class probabilities ``[N, classes]`` of a text classifier for raw strings.

    Parameters
    ----------
    model : nn.Module
        A token classifier with ``model.tokenizer`` (as after :func:`lstmlens.load`).
    texts : str or sequence of str
        One text or several.
    truncate : bool
        Texts longer than the model's limit (``model.meta["max_length"]``) are an error that
        states the limit, unless ``truncate`` keeps their first tokens.
    max_length : int, optional
        Overrides the limit stored in the model's meta.

    Raises
    ------
    InputError
        A text is empty, has only words the model does not know, or is too long.

    Examples
    --------
    >>> model = lstmlens.load("runs/sentiment")  # doctest: +SKIP
    >>> predict_text(model, ["a gorgeous, witty film"]).round(2)  # doctest: +SKIP
    array([[0.03, 0.97]], dtype=float32)
    """
    tok = model_tokenizer(model)
    if isinstance(texts, str):
        texts = [texts]
    texts = list(texts)
    if not texts:
        raise InputError("no texts given; pass one string or a list of strings")
    limit = max_length if max_length is not None else \
        (getattr(model, "meta", None) or {}).get("max_length")
    seqs = []
    for i, text in enumerate(texts):
        where = f"text {i}" if len(texts) > 1 else "the text"
        if not isinstance(text, str):
            raise InputError(f"{where} is a {type(text).__name__}; give strings")
        if not tok.split(text):
            raise InputError(f"{where} is empty (no words); give at least one word")
        try:
            ids = tok.encode(text, max_length=limit, truncate=truncate)
        except InputError as e:
            raise InputError(f"{where}: {e}" if len(texts) > 1 else str(e)) from None
        if all(t == tok.unk_id for t in ids):
            raise InputError(f"{where} ({text[:60]!r}) has only words this model does not know "
                             f"(its vocabulary has {len(tok)} tokens); nothing to judge")
        seqs.append(np.asarray(ids, dtype=np.int64))
    model.eval()
    out = []
    with torch.no_grad():
        for idx in batches(len(seqs), batch_size):
            x, lengths = pad_batch([seqs[i] for i in idx])  # (B, T), (B,)
            out.append(torch.softmax(model(x, lengths), dim=-1))  # (B, C)
    return torch.cat(out).numpy()
