"""The main job: train the seed's §5 model on real speech data and open it up."""

from __future__ import annotations

import time
from pathlib import Path

import torch
from rich.console import Console

from .batching import pad_batch
from .console import print_gates
from .datasets import load_japanese_vowels
from .tasks import train_task
from .tracing import trace


def run_demo(out: str | Path = "runs/demo-speech", *, epochs: int = 30, seed: int = 0,
             data: str | None = None, progress: bool = True,
             console: Console | None = None) -> dict:
    """Train, report test accuracy, and print the gates of one test utterance."""
    console = console or Console()
    start = time.perf_counter()
    model = train_task("speech", out, epochs=epochs, seed=seed, data=data, progress=progress,
                       console=console).model
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
