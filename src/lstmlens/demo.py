"""The main job: train the seed's §5 model on real speech data and open it up."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
from rich.console import Console

from .batching import pad_batch
from .console import print_gates
from .datasets import load_japanese_vowels
from .modeldir import save
from .models import ClassifierConfig, LSTMClassifier
from .tracing import trace
from .training import evaluate, fit


def train_speech(
    out: str | Path, *, epochs: int = 30, seed: int = 0, hidden_sizes=(128, 64),
    data: str | None = None, progress: bool = True, console: Console | None = None,
) -> LSTMClassifier:
    """Train the seed's §5 stacked LSTM on Japanese Vowels (speaker of 12-coefficient frames)
    and save it, with test metrics and a majority baseline, to the directory ``out``."""
    console = console or Console()
    splits = load_japanese_vowels(data=data, seed=seed)
    console.print(f"Japanese Vowels: {len(splits.train)} train, {len(splits.validation)} "
                  f"validation, {len(splits.test)} test utterances; 12 LPC cepstra per frame, "
                  f"{len(splits.classes)} speakers")
    torch.manual_seed(seed)
    model = LSTMClassifier(ClassifierConfig(num_classes=len(splits.classes), input_size=12,
                                            hidden_sizes=list(hidden_sizes), standardize=True))
    model.fit_standardization(splits.train.inputs)
    history = fit(model, splits.train, splits.validation, epochs=epochs, seed=seed,
                  progress=progress)
    test = evaluate(model, splits.test)
    majority = int(np.bincount(splits.train.labels).argmax())
    metrics = {
        "test": test,
        "validation": evaluate(model, splits.validation),
        "baselines": {"majority": {"accuracy": float(np.mean(splits.test.labels == majority))}},
        "training": history.to_dict(),
    }
    meta = {"task": "speech/japanese_vowels", "classes": splits.classes,
            "feature_names": splits.feature_names, "data": splits.source, "seed": seed}
    save(model, out, metrics=metrics, meta=meta)
    model.meta, model.metrics = meta, metrics
    return model


def run_demo(out: str | Path = "runs/demo-speech", *, epochs: int = 30, seed: int = 0,
             data: str | None = None, progress: bool = True,
             console: Console | None = None) -> dict:
    """Train, report test accuracy, and print the gates of one test utterance."""
    console = console or Console()
    start = time.perf_counter()
    model = train_speech(out, epochs=epochs, seed=seed, data=data, progress=progress,
                         console=console)
    m = model.metrics
    console.print(f"[bold]test accuracy {m['test']['accuracy']:.1%}[/] "
                  f"(majority baseline {m['baselines']['majority']['accuracy']:.1%}); "
                  f"model saved to {out}")
    splits = load_japanese_vowels(data=data, seed=seed)
    x, lengths = pad_batch(splits.test.inputs[:1])
    tr = trace(model, x, lengths)
    probs = torch.softmax(tr.output, -1)[0]
    k = int(probs.argmax())
    console.print(f"test utterance 0: {int(lengths[0])} frames, true "
                  f"{splits.classes[splits.test.labels[0]]}, predicted {splits.classes[k]} "
                  f"({probs[k]:.1%})")
    print_gates(tr, console, title="gates of test utterance 0 (mean over frames; fraction "
                                    "of values < 0.1 | > 0.9)")
    seconds = time.perf_counter() - start
    console.print(f"done in {seconds:.0f} s; try: lstmlens inspect {out}   |   "
                  f"lstmlens trace {out} test:0")
    return {"test_accuracy": m["test"]["accuracy"], "seconds": seconds, "out": str(out)}
