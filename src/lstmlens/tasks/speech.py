"""Speech: speaker recognition on Japanese Vowels (12 LPC cepstra per frame, 9 speakers)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from rich.console import Console

from ..datasets import load_japanese_vowels
from ..modeldir import save
from ..models import ClassifierConfig, LSTMClassifier
from ..training import evaluate, fit
from . import TaskResult, register_task


@register_task("speech")
def train_speech(
    out: str | Path, *, quick: bool = False, epochs: int | None = None, seed: int = 0,
    data: str | None = None, progress: bool = True, console: Console | None = None,
    hidden_sizes: tuple[int, ...] = (128, 64),
) -> TaskResult:
    """Train the seed's §5 stacked LSTM (``LSTM(128) → LSTM(64) → Dense``) on Japanese
    Vowels and save it with test metrics and a majority baseline to ``out``."""
    console = console or Console()
    splits = load_japanese_vowels(data=data, seed=seed)
    console.print(f"Japanese Vowels: {len(splits.train)} train, {len(splits.validation)} "
                  f"validation, {len(splits.test)} test utterances; 12 LPC cepstra per frame, "
                  f"{len(splits.classes)} speakers")
    torch.manual_seed(seed)
    sizes = [32, 16] if quick else list(hidden_sizes)
    model = LSTMClassifier(ClassifierConfig(num_classes=len(splits.classes), input_size=12,
                                            hidden_sizes=sizes, standardize=True))
    model.fit_standardization(splits.train.inputs)
    history = fit(model, splits.train, splits.validation, seed=seed, progress=progress,
                  epochs=epochs or (8 if quick else 30))
    majority = int(np.bincount(splits.train.labels).argmax())
    metrics = {
        "test": evaluate(model, splits.test),
        "validation": evaluate(model, splits.validation),
        "baselines": {"majority": {"accuracy": float(np.mean(splits.test.labels == majority))}},
        "training": history.to_dict(),
    }
    meta = {"task": "speech/japanese_vowels", "classes": splits.classes,
            "feature_names": splits.feature_names, "data": splits.source, "seed": seed}
    save(model, out, metrics=metrics, meta=meta)
    model.meta, model.metrics = meta, metrics
    return TaskResult(model=model, out=Path(out), metrics=metrics)
