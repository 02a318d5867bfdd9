"""Planted tokens: a classifier whose right answer is known to depend on a few words only.

The sentences of :mod:`lstmlens.datasets.planted` are neutral words with 1-3 planted
sentiment words whose majority polarity is the label. A one-layer LSTM learns the rule; its
model directory keeps the planted word lists and the generation settings in its meta, so
explanation methods can later be scored against the planted positions.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from rich.console import Console

from ..datasets.planted import NEUTRAL_WORDS, load_planted, neutral_words
from ..errors import InputError
from ..modeldir import save
from ..models import ClassifierConfig, LSTMClassifier
from ..textdata import encode_splits, fit_tokenizer
from ..training import evaluate, fit
from . import TaskResult, register_task

__all__ = ["train_planted"]


@register_task("planted")
def train_planted(
    out: str | Path, *, quick: bool = False, epochs: int | None = None, seed: int = 0,
    data: str | None = None, progress: bool = True, console: Console | None = None,
    vocabulary: str = "sentiment", n_neutral: int = 1000, n_train: int | None = None,
    hidden_size: int = 64, embedding_dim: int = 32,
) -> TaskResult:
    """Train a one-layer LSTM on planted-token sentences and save it to ``out``.

    Parameters
    ----------
    vocabulary : {"sentiment", "builtin"}
        Neutral words from the Rotten Tomatoes snippets (the ``n_neutral`` most frequent words
        outside the VADER lexicon; ``data`` may give the vaderSentiment sdist) or the built-in
        list of 197 words (no download).
    n_train : int, optional
        Training sentences (default 6,000; 2,000 with ``quick``). Validation and test sets
        have 1,000 and 2,000 sentences (300 and 1,000 with ``quick``).

    Examples
    --------
    >>> result = train_planted("runs/planted", quick=True)  # doctest: +SKIP
    >>> result.metrics["test"]["accuracy"] >= 0.99  # doctest: +SKIP
    True
    """
    console = console or Console()
    if vocabulary == "sentiment":
        vocab = neutral_words(n_neutral, data=data)
    elif vocabulary == "builtin":
        if data is not None:
            raise InputError("vocabulary='builtin' reads no data; drop data= or use "
                             "vocabulary='sentiment'")
        vocab = list(NEUTRAL_WORDS)
    else:
        raise InputError(f"vocabulary must be 'sentiment' or 'builtin', got {vocabulary!r}")
    n_val, n_test = (300, 1000) if quick else (1000, 2000)
    n_train = n_train or (2000 if quick else 6000)
    splits = load_planted(n_train, n_val, n_test, seed=seed, vocab=vocab)
    console.print(f"planted tokens: {n_train} train, {n_val} validation, {n_test} test "
                  f"sentences over {len(vocab)} neutral words ({vocabulary})")
    tok = fit_tokenizer(splits.train.texts, max_vocab=None)
    enc = encode_splits(splits, tok)
    torch.manual_seed(seed)
    model = LSTMClassifier(ClassifierConfig(num_classes=2, vocab_size=len(tok),
                                            embedding_dim=embedding_dim,
                                            hidden_sizes=[hidden_size]))
    history = fit(model, enc.train, enc.validation, seed=seed, progress=progress,
                  epochs=epochs or (6 if quick else 15), batch_size=64, lr=1e-2, patience=4)
    majority = int(np.bincount(enc.train.labels).argmax())
    metrics = {
        "test": evaluate(model, enc.test),
        "validation": evaluate(model, enc.validation),
        "baselines": {"majority": {"accuracy": float(np.mean(enc.test.labels == majority)),
                                   "class": majority}},
        "training": history.to_dict(),
    }
    settings = dict(splits.source)
    meta = {"task": "planted", "classes": list(splits.classes), "max_length":
            settings["max_length"], "planted": {"positive": settings["positive"],
                                                "negative": settings["negative"]},
            "generation": {**settings, "vocabulary": vocabulary, "neutral_words": vocab},
            "seed": seed, "quick": quick}
    save(model, out, metrics=metrics, tokenizer=tok.to_json(), meta=meta)
    model.meta, model.metrics, model.tokenizer = meta, metrics, tok
    console.print(f"test accuracy {metrics['test']['accuracy']:.4f} (majority "
                  f"{metrics['baselines']['majority']['accuracy']:.3f}); saved to {out}")
    return TaskResult(model=model, out=Path(out), metrics=metrics)
