"""Spoken digits: audio → MFCC frames → LSTM → the word "zero" … "nine".

Trained on words synthesised by espeak-ng, scored on voice variants held out of training
(``"test"``) and, beside it, on real human recordings (``"real_recordings"``, the Asterisk
prompts by default, or a folder given as ``data``). Two baselines are computed in the same
run on the same sets: the majority class, and a nearest-centroid classifier on the mean MFCC
frame of each third of an utterance (a coarse, order-aware template without any recurrence).

Measured on the 2-core development machine (other jobs running, load 1.6-2.5), seed 0, full
setting (240/30/50 speakers = 2,400/300/500 utterances, 15 test variants never heard in
training): synthesis and features 25 s, training 74 s (10 epochs, 1 thread); held-out voices
0.990 (nearest centroid 0.904, majority 0.1); real recordings 7/10 (nearest centroid 6/10).
Choices (held-out accuracy): with 160 training speakers and no warp, one forward layer of 64
or 128 units reached 0.914 / 0.916, one bidirectional layer of 64 0.952 / 0.964 (two weight
seeds), the same with attention pooling 0.94; with 240 speakers the frequency warp of the
training speakers gave 0.990 against 0.980 without it (same speakers).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console
from torch import nn

from ..audio import FeatureSettings, mfcc_frames
from ..datasets.base import SequenceData
from ..datasets.digits import DIGIT_WORDS, load_digits, load_real_digits
from ..errors import InputError
from ..modeldir import load, save
from ..models import ClassifierConfig, LSTMClassifier
from ..training import evaluate, fit, predict_logits
from . import TaskResult, register_task

__all__ = ["NearestCentroid", "predict_audio", "segment_means", "train_digits"]

HIDDEN_SIZES = (64,)  # one bidirectional layer: see the module docstring for measurements
QUICK_HIDDEN = (32,)


def segment_means(x: np.ndarray, parts: int = 3) -> np.ndarray:
    """Mean frame of each of ``parts`` equal stretches of ``x`` ``[T, F]``, concatenated.

    Examples
    --------
    >>> segment_means(np.arange(6.0)[:, None], parts=3).tolist()
    [0.5, 2.5, 4.5]
    """
    bounds = np.linspace(0, len(x), parts + 1)
    out = []
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        lo = min(int(np.floor(a)), len(x) - 1)
        hi = max(int(np.ceil(b)), lo + 1)  # every stretch gets ≥ 1 frame, also when T < parts
        out.append(x[lo:hi].mean(axis=0))
    return np.concatenate(out)


class NearestCentroid:
    """Nearest class centroid on standardised :func:`segment_means` summaries.

    Examples
    --------
    >>> nc = NearestCentroid().fit(splits.train)  # doctest: +SKIP
    >>> nc.accuracy(splits.test)  # doctest: +SKIP
    0.83
    """

    def __init__(self, parts: int = 3):
        self.parts = parts

    def _summaries(self, data: SequenceData) -> np.ndarray:
        return np.stack([segment_means(x, self.parts) for x in data.inputs])  # (N, parts·F)

    def fit(self, data: SequenceData) -> NearestCentroid:
        z = self._summaries(data)
        self.mean_, self.std_ = z.mean(0), z.std(0) + 1e-6
        z = (z - self.mean_) / self.std_
        self.classes_ = np.unique(data.labels)
        self.centroids_ = np.stack([z[data.labels == c].mean(0) for c in self.classes_])
        return self

    def predict(self, data: SequenceData) -> np.ndarray:
        z = (self._summaries(data) - self.mean_) / self.std_
        d = ((z[:, None, :] - self.centroids_[None]) ** 2).sum(-1)  # (N, classes)
        return self.classes_[d.argmin(1)]

    def accuracy(self, data: SequenceData) -> float:
        return float(np.mean(self.predict(data) == data.labels))


def _real_report(model: nn.Module, real: SequenceData, paths: list[Path]) -> dict[str, Any]:
    probs = torch.softmax(predict_logits(model, real), dim=-1).numpy()  # (N, 10)
    pred = probs.argmax(1)
    scores = evaluate(model, real)
    return {
        **scores, "count": len(real),
        "predictions": [{"file": os.fspath(p), "truth": DIGIT_WORDS[t],
                         "predicted": DIGIT_WORDS[k], "probability": round(float(q[k]), 4)}
                        for p, t, k, q in zip(paths, real.labels, pred, probs, strict=True)],
    }


@register_task("digits")
def train_digits(
    out: str | Path, *, quick: bool = False, epochs: int | None = None, seed: int = 0,
    data: str | None = None, progress: bool = True, console: Console | None = None,
    hidden_sizes: tuple[int, ...] | None = None, bidirectional: bool = True,
    sizes: tuple[int, int, int] | None = None, augment: bool = True, workers: int = 2,
    threads: int | None = 1,
) -> TaskResult:
    """Train an LSTM on synthesised spoken digits and score it on held-out voices and on real
    recordings; save the model directory with metrics and baselines to ``out``.

    Parameters
    ----------
    out : path
        Model directory to write.
    quick : bool
        Small data and model for tests (a few hundred utterances, seconds).
    epochs : int, optional
        Training epochs (default 10 quick, 25 full; early stopping on validation accuracy
        with patience 5).
    seed : int
        Seed of the voice plan, the initial weights and the batch order.
    data : path, optional
        Folder of real recordings to score (``0.wav`` … ``9.wav`` or ``zero.wav`` …); default
        the Asterisk prompts of ``asterisk-core-sounds-en-wav``.
    hidden_sizes : tuple of int, optional
        Units of each LSTM layer (default ``(32,)`` quick, ``(64,)`` full).
    bidirectional : bool
        Read each utterance in both directions (better on held-out voices).
    sizes : (int, int, int), optional
        Synthetic speakers for train/validation/test (each says the ten words once).
    augment : bool
        Random frequency warp of each training speaker's features (vocal-tract-length
        augmentation); held-out and real speech is never warped.
    workers : int
        espeak-ng processes at once.
    threads : int or None
        torch threads while training (the previous number is restored afterwards); ``None``
        leaves it alone. One thread is fastest for this small model: the full setting trained
        in 72 s with 1 thread and 257 s with 2 on the 2-core development machine.

    Examples
    --------
    >>> result = train_digits("runs/digits", quick=True)  # doctest: +SKIP
    >>> result.metrics["test"]["accuracy"] > 0.5  # doctest: +SKIP
    True
    """
    console = console or Console()
    features = FeatureSettings()
    t0 = time.perf_counter()
    splits = load_digits(quick=quick, seed=seed, sizes=sizes, features=features,
                         workers=workers, augment=augment,
                         report=console.print if progress else None)
    real, paths = load_real_digits(data, features)
    data_seconds = time.perf_counter() - t0
    console.print(f"spoken digits: {len(splits.train)} train, {len(splits.validation)} "
                  f"validation, {len(splits.test)} test utterances (held-out voice variants); "
                  f"{len(real)} real recordings; {features.n_features} features per 10 ms frame")
    torch.manual_seed(seed)
    default_sizes = QUICK_HIDDEN if quick else HIDDEN_SIZES
    sizes_h = [int(h) for h in (hidden_sizes or default_sizes)]
    model = LSTMClassifier(ClassifierConfig(
        num_classes=len(DIGIT_WORDS), input_size=features.n_features, hidden_sizes=sizes_h,
        bidirectional=bidirectional, standardize=True))
    model.fit_standardization(splits.train.inputs)
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(max(1, int(threads)))
    try:
        history = fit(model, splits.train, splits.validation, seed=seed, progress=progress,
                      epochs=epochs or (10 if quick else 25), lr=3e-3, batch_size=32,
                      patience=5)
    finally:
        torch.set_num_threads(before)
    majority = int(np.bincount(splits.train.labels).argmax())
    centroid = NearestCentroid().fit(splits.train)
    metrics = {
        "test": evaluate(model, splits.test),
        "real_recordings": _real_report(model, real, paths),
        "validation": evaluate(model, splits.validation),
        "baselines": {
            "majority": {"accuracy": float(np.mean(splits.test.labels == majority)),
                         "real_recordings_accuracy": float(np.mean(real.labels == majority))},
            "nearest_centroid_segment_means": {
                "accuracy": centroid.accuracy(splits.test),
                "real_recordings_accuracy": centroid.accuracy(real)},
        },
        "training": history.to_dict(),
        "data_seconds": data_seconds,
        "synthesis_seconds": splits.source["synthesis_seconds"],
        "synthesis_cached": splits.source["synthesis_cached"],
    }
    meta = {"task": "digits/espeak-ng", "classes": list(DIGIT_WORDS),
            "feature_names": splits.feature_names, "features": features.to_dict(),
            "data": {**{k: v for k, v in splits.source.items() if k != "cache"},
                     "real_recordings": [os.fspath(p) for p in paths]},
            "seed": seed, "quick": quick, "augment": augment}
    save(model, out, metrics=metrics, meta=meta)
    model.meta, model.metrics = meta, metrics
    console.print(f"held-out voices accuracy {metrics['test']['accuracy']:.3f}, real recordings "
                  f"{metrics['real_recordings']['accuracy']:.3f} ({len(real)} files)")
    return TaskResult(model=model, out=Path(out), metrics=metrics)


def predict_audio(model: nn.Module | str | os.PathLike[str],
                  wav_path: str | os.PathLike[str]) -> tuple[str, dict[str, float]]:
    """Recognise the digit word spoken in a WAV file with a model trained by ``digits``.

    Parameters
    ----------
    model : nn.Module or path
        A model from :func:`train_digits` or :func:`lstmlens.load` (its ``meta`` holds the
        class names and feature settings), or the path of its model directory.
    wav_path : path
        An integer-PCM WAV file (any rate; it is resampled like the training audio).

    Returns
    -------
    (str, dict)
        The predicted word and the probability of every word.

    Examples
    --------
    >>> word, probs = predict_audio("runs/digits", "seven.wav")  # doctest: +SKIP
    >>> word, round(probs["seven"], 2)  # doctest: +SKIP
    ('seven', 0.98)
    """
    if isinstance(model, (str, os.PathLike)):
        model = load(model)
    meta = getattr(model, "meta", None) or {}
    if "features" not in meta or "classes" not in meta:
        raise InputError("this model has no audio feature settings in its meta; predict_audio "
                         "takes a model trained by `lstmlens train digits`")
    features = FeatureSettings.from_dict(meta["features"])
    x = torch.from_numpy(mfcc_frames(wav_path, settings=features))[None]  # (1, T, F)
    model.eval()
    with torch.no_grad():
        probs = torch.softmax(model(x), dim=-1)[0]  # (classes,)
    classes = list(meta["classes"])
    return classes[int(probs.argmax())], {c: float(p) for c, p in zip(classes, probs, strict=True)}
