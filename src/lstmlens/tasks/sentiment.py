"""Sentiment: positive/negative sentences (Rotten Tomatoes snippets, tweets, or one's own file).

A word tokenizer is fitted on the training split, an :class:`LSTMClassifier` reads the token
ids (bidirectional, attention pooling, dropout) and is trained with :func:`lstmlens.fit`;
during training a share of the words is replaced by ``<unk>`` (word dropout), which keeps the
model from leaning on rare words. Two baselines are computed in the same run: the training
majority class and a bag-of-words logistic regression (scikit-learn).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console
from torch import nn

from ..datasets.sentiment import load_sentiment
from ..datasets.userdata import FORMATS, load_text_file
from ..errors import InputError
from ..modeldir import save
from ..models import ClassifierConfig, LSTMClassifier
from ..textdata import (
    TextSplits,
    encode_splits,
    fit_tokenizer,
    predict_text,
    split_text_data,
    stratified_indices,
)
from ..training import Classification, evaluate, fit
from . import TaskResult, register_task

__all__ = ["TokenDropout", "bag_of_words_baseline", "load_text_splits", "majority_baseline",
           "predict_text", "train_sentiment"]

TOKEN_PATTERN = r"[\w']+|[^\w\s]"  # the word tokenizer's own pattern, for the baseline too


class TokenDropout(Classification):
    """Classification whose training batches have a share ``rate`` of their words replaced
    by ``<unk>`` (word dropout); evaluation batches are left as they are.

    Examples
    --------
    >>> fit(model, train, val, objective=TokenDropout(0.25, unk_id=1))  # doctest: +SKIP
    """

    def __init__(self, rate: float, unk_id: int = 1, seed: int = 0):
        if not 0.0 <= rate < 1.0:
            raise InputError(f"word dropout must be in [0, 1), got {rate}")
        self.rate, self.unk_id = rate, unk_id
        self.generator = torch.Generator().manual_seed(seed)

    def step(self, model: nn.Module, batch):
        x, lengths, y = batch  # (B, T), (B,), (B,)
        if model.training and self.rate > 0:
            drop = torch.rand(x.shape, generator=self.generator) < self.rate  # (B, T)
            x = x.masked_fill(drop & (x != 0), self.unk_id)
        return super().step(model, (x, lengths, y))


def load_text_splits(data: str | Path | None = None, *, source: str = "movies", seed: int = 0,
                     text_column: str = "text", label_column: str = "label",
                     classes: list[str] | None = None) -> TextSplits:
    """The sentiment corpus, or a user's labelled CSV/TSV/JSONL file split 80/10/10.

    ``data`` may be ``None`` (fetch the pinned vaderSentiment sdist), that sdist's path or a
    directory of its ground-truth files, or a ``.csv``/``.tsv``/``.jsonl`` file of one's own.

    Examples
    --------
    >>> splits = load_text_splits("my_reviews.csv", text_column="review")  # doctest: +SKIP
    """
    if data is not None and Path(data).suffix.lower() in FORMATS:
        if FORMATS[Path(data).suffix.lower()] == "txt":
            raise InputError(f"{data}: a .txt file has no labels; a classifier needs a "
                             ".csv/.tsv/.jsonl file with a text and a label column")
        table = load_text_file(data, text_column=text_column, label_column=label_column,
                               classes=classes)
        if len(table.classes) < 2:
            raise InputError(f"{data}: every row has the label {table.classes}; a classifier "
                             "needs at least two classes")
        counts = np.bincount(table.labels, minlength=len(table.classes))
        few = [c for c, k in zip(table.classes, counts, strict=True) if k < 3]
        if few:
            raise InputError(f"{data}: classes {few} have fewer than 3 texts; each class needs "
                             "at least one text in each of train, validation and test")
        info = {"name": f"user file {Path(data).name}", "path": str(Path(data).resolve()),
                "format": table.extras["format"], "text_column": text_column,
                "label_column": label_column, "rows": len(table),
                "class_counts": {c: int(k) for c, k in zip(table.classes, counts, strict=True)},
                "split": {"fractions": [0.8, 0.1, 0.1], "seed": seed, "stratified": True}}
        return split_text_data(table, (0.8, 0.1, 0.1), seed, info)
    return load_sentiment(source, data=data, seed=seed)


def majority_baseline(train_labels: np.ndarray, test_labels: np.ndarray) -> dict[str, float]:
    """Accuracy of always answering the most frequent training class."""
    majority = int(np.bincount(train_labels).argmax())
    return {"accuracy": float(np.mean(test_labels == majority)), "class": majority}


def bag_of_words_baseline(splits: TextSplits, lowercase: bool = True, C: float = 1.0
                          ) -> dict[str, float]:
    """Bag-of-words (word counts, the tokenizer's pattern) logistic regression fitted on the
    training split; accuracy on validation and test.

    Examples
    --------
    >>> bag_of_words_baseline(load_sentiment("movies"))  # doctest: +SKIP
    {'accuracy': 0.78..., 'val_accuracy': 0.76..., ...}
    """
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.linear_model import LogisticRegression

    vec = CountVectorizer(lowercase=lowercase, token_pattern=TOKEN_PATTERN)
    X = vec.fit_transform(splits.train.texts)  # (N, V) sparse counts
    clf = LogisticRegression(C=C, max_iter=2000).fit(X, splits.train.labels)
    return {"accuracy": float(clf.score(vec.transform(splits.test.texts), splits.test.labels)),
            "val_accuracy": float(clf.score(vec.transform(splits.validation.texts),
                                            splits.validation.labels)),
            "C": C, "vocabulary": len(vec.vocabulary_)}


def _settings(quick: bool) -> dict[str, Any]:
    if quick:  # a smoke run: a small model on at most 3,000 training texts
        return {"embedding_dim": 32, "hidden_sizes": [32], "epochs": 4, "max_vocab": 5000,
                "word_dropout": 0.1, "max_train": 3000, "lr": 1e-2}
    return {"embedding_dim": 128, "hidden_sizes": [64], "epochs": 10, "max_vocab": 20000,
            "word_dropout": 0.25, "max_train": None, "lr": 2e-3}


@register_task("sentiment")
def train_sentiment(
    out: str | Path, *, quick: bool = False, epochs: int | None = None, seed: int = 0,
    data: str | None = None, progress: bool = True, console: Console | None = None,
    source: str = "movies", text_column: str = "text", label_column: str = "label",
    max_length: int = 100, max_vocab: int | None = None, min_count: int = 2,
    word_dropout: float | None = None, dropout: float = 0.5, batch_size: int = 64,
    lr: float | None = None, patience: int = 3,
) -> TaskResult:
    """Train a bidirectional attention LSTM sentiment classifier and save it to ``out``.

    ``data``: ``None`` (the pinned vaderSentiment sdist, ``source`` = ``"movies"`` or
    ``"tweets"``), that sdist's path, or one's own ``.csv``/``.tsv``/``.jsonl`` file with
    ``text_column`` and ``label_column``. Texts longer than ``max_length`` tokens are cut for
    training; the limit is stored in the model's meta.

    Examples
    --------
    >>> result = train_sentiment("runs/sentiment", quick=True)  # doctest: +SKIP
    >>> result.metrics["test"]["accuracy"] > result.metrics["baselines"]["majority"]["accuracy"]
    ... # doctest: +SKIP
    True
    """
    console = console or Console()
    st = _settings(quick)
    splits = load_text_splits(data, source=source, seed=seed, text_column=text_column,
                              label_column=label_column)
    if st["max_train"] is not None and len(splits.train) > st["max_train"]:
        share = st["max_train"] / len(splits.train)
        keep, _ = stratified_indices(splits.train.labels, (share, 1 - share), seed)
        splits.train = splits.train.subset(keep)
    console.print(f"{splits.source.get('name', 'text data')}: {len(splits.train)} train, "
                  f"{len(splits.validation)} validation, {len(splits.test)} test texts; "
                  f"classes {splits.classes}")
    tok = fit_tokenizer(splits.train.texts, max_vocab=max_vocab or st["max_vocab"],
                        min_count=min_count)
    enc = encode_splits(splits, tok, max_length)
    n_cut = int(sum(len(tok.split(t)) > max_length for t in splits.train.texts))
    torch.manual_seed(seed)
    config = ClassifierConfig(num_classes=len(splits.classes), vocab_size=len(tok),
                              embedding_dim=st["embedding_dim"],
                              hidden_sizes=list(st["hidden_sizes"]), bidirectional=True,
                              pooling="attention", dropout=dropout)
    model = LSTMClassifier(config)
    rate = st["word_dropout"] if word_dropout is None else word_dropout
    lr = lr or st["lr"]
    history = fit(model, enc.train, enc.validation, seed=seed, progress=progress,
                  objective=TokenDropout(rate, tok.unk_id, seed), epochs=epochs or st["epochs"],
                  batch_size=batch_size, lr=lr, patience=patience)
    console.print(f"trained {len(history.epochs)} epochs in {history.seconds:.0f} s "
                  f"(best epoch {history.best_epoch})")
    start = time.perf_counter()
    bow = bag_of_words_baseline(splits)
    bow["seconds"] = time.perf_counter() - start
    metrics = {
        "test": evaluate(model, enc.test),
        "validation": evaluate(model, enc.validation),
        "baselines": {"majority": majority_baseline(enc.train.labels, enc.test.labels),
                      "bag_of_words_logreg": bow},
        "training": history.to_dict(),
    }
    meta = {"task": "sentiment", "classes": list(splits.classes), "data": splits.source,
            "max_length": max_length, "seed": seed, "quick": quick,
            "train_texts": len(splits.train),
            "training": {"word_dropout": rate, "batch_size": batch_size, "lr": lr,
                         "patience": patience, "min_count": min_count,
                         "train_texts_cut": n_cut}}
    save(model, out, metrics=metrics, tokenizer=tok.to_json(), meta=meta)
    model.meta, model.metrics, model.tokenizer = meta, metrics, tok
    console.print(f"test accuracy {metrics['test']['accuracy']:.3f} (majority "
                  f"{metrics['baselines']['majority']['accuracy']:.3f}, bag-of-words "
                  f"{bow['accuracy']:.3f}); saved to {out}")
    return TaskResult(model=model, out=Path(out), metrics=metrics)

