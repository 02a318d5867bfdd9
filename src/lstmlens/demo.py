"""The main job (``make demo``): train a real model, then open it up.

By default the sentiment model of the seed's §6 (Rotten Tomatoes sentences): test accuracy
beside its baselines, the gates of an example sentence and which words decided it, by
contextual decomposition and LRP. ``--task speech`` runs the seed's §5 model on Japanese
Vowels instead. A model trained earlier with the same settings is reused.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch
from rich.console import Console
from rich.markup import escape

from .console import print_gates
from .modeldir import is_model_dir, load
from .tasks import train_task
from .tracing import trace

EXAMPLE = "a gripping , beautifully acted film that never lets you go"


def _trained(task: str, out: Path, *, quick: bool, epochs: int | None, seed: int,
             data: str | None, progress: bool, console: Console):
    """Reuse ``out`` when it holds this task's model trained with the same settings."""
    if is_model_dir(out) and data is None and epochs is None:
        model = load(out)
        meta = model.meta
        if meta.get("seed") == seed and bool(meta.get("quick", False)) == quick and \
                str(meta.get("task", "")).startswith(task.replace("speech", "speech/")):
            console.print(f"reusing the model in {out} (delete it to retrain)")
            return model
    return train_task(task, out, quick=quick, epochs=epochs, seed=seed, data=data,
                      progress=progress, console=console).model


def _words(att, console: Console) -> None:
    scores = att.token_scores()[0]
    vmax = float(scores.abs().max()) or 1.0
    parts = []
    for tok, v in zip(att.tokens[0], scores.tolist(), strict=True):
        level = min(3, int(abs(v) / vmax * 4))
        style = (["", "red3", "red1", "bold red1"] if v >= 0 else
                 ["", "blue3", "dodger_blue2", "bold dodger_blue1"])[level]
        parts.append(f"[{style}]{escape(tok)}[/]" if style else escape(tok))
    console.print(f"  {att.method:>4}: " + " ".join(parts))


def run_demo(out: str | Path | None = None, *, task: str = "sentiment", quick: bool = False,
             epochs: int | None = None, seed: int = 0, data: str | None = None,
             progress: bool = True, console: Console | None = None) -> dict:
    """Train (or reuse) the demo model, report test accuracy and open one example."""
    from .explaining import explain

    console = console or Console()
    start = time.perf_counter()
    out = Path(out) if out is not None else Path("runs") / f"demo-{task}"
    model = _trained(task, out, quick=quick, epochs=epochs, seed=seed, data=data,
                     progress=progress, console=console)
    m = model.metrics
    base = ", ".join(f"{k} {v['accuracy']:.1%}" for k, v in m.get("baselines", {}).items()
                     if isinstance(v, dict) and "accuracy" in v)
    console.print(f"[bold]test accuracy {m['test']['accuracy']:.1%}[/] (baselines: {base}); "
                  f"model in {out}")
    if task == "speech":
        from .batching import pad_batch
        from .datasets import load_japanese_vowels
        splits = load_japanese_vowels(data=data, seed=seed)
        x, lengths = pad_batch(splits.test.inputs[:1])
        label = f"test utterance 0 ({int(lengths[0])} frames)"
    else:
        ids = model.tokenizer.encode(EXAMPLE)
        x, lengths = torch.tensor([ids]), torch.tensor([len(ids)])
        label = f"“{EXAMPLE}”"
    tr = trace(model, x, lengths)
    probs = torch.softmax(tr.output if not isinstance(tr.output, tuple) else tr.output[0],
                          -1)[0]
    k = int(probs.argmax())
    classes = model.meta.get("classes") or [str(i) for i in range(len(probs))]
    console.print(f"{escape(label)}: predicted [bold]{escape(classes[k])}[/] ({probs[k]:.1%})")
    print_gates(tr, console, title="its gates (mean over steps; fraction of values "
                                   "< 0.1 | > 0.9)")
    if task != "speech":
        console.print("which words decided it (red: for, blue: against):")
        for method in ("cd", "lrp"):
            _words(explain(model, x, method, lengths=lengths), console)
    seconds = time.perf_counter() - start
    example = "test:0" if task == "speech" else '"your sentence"'
    console.print(f"done in {seconds:.0f} s; next: lstmlens explain {out} {example} --all   |"
                  f"   lstmlens trace {out} {example}")
    from .report import write_report
    report = write_report(out, out / "report.html")
    console.print(f"report (one HTML file, opens offline): {report}")
    console.print(f"browse it: lstmlens serve {out}   (then open http://127.0.0.1:8000/)")
    return {"test_accuracy": m["test"]["accuracy"], "seconds": seconds, "out": str(out),
            "report": str(report)}
