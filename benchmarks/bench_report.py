"""Report generation time (issue goal: ≤ 30 s for a model on 2 cores).

Uses the reference models of ``make train-all`` (``runs/sentiment``, ``runs/textgen-code``,
``runs/brackets``) when they exist; otherwise trains each with quick settings into a
temporary directory and says so. The baseline, measured in the same run, is collecting the
corpus states alone (one trace of every gate) — the least any report over them must cost.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from rich.console import Console

from lstmlens.modeldir import load
from lstmlens.report import write_report
from lstmlens.states import collect_states, model_corpus
from lstmlens.tasks import train_task

ROOT = Path(__file__).resolve().parent.parent
MODELS = [("sentiment", "sentiment", {}), ("textgen-code", "textgen", {"corpus": "code"}),
          ("brackets", "brackets", {})]
N = 60  # the report's default corpus size (language models read 4 × as many pieces)


def _model_dir(name: str, task: str, opts: dict, scratch: Path) -> tuple[Path, str]:
    ref = ROOT / "runs" / name
    if (ref / "model.safetensors").exists():
        return ref, "reference model (make train-all)"
    out = scratch / name
    train_task(task, out, quick=True, progress=False, console=Console(stderr=True), **opts)
    return out, "trained here with --quick settings"


def run(quick: bool = False) -> tuple[str, str]:
    rows = ["| model | which | corpus sequences | collecting the corpus states (s) | report (s) | "
            "**report ÷ states** | goal ≤ 30 s |", "|---|---|---|---|---|---|---|"]
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        for name, task, opts in MODELS:
            model_dir, which = _model_dir(name, task, opts, scratch)
            model = load(model_dir)
            n = N * (4 if str((model.meta or {}).get("task", "")).startswith("textgen/") else 1)
            texts = model_corpus(model, n=n)
            start = time.perf_counter()
            collect_states(model, texts)
            t_trace = time.perf_counter() - start
            start = time.perf_counter()
            write_report(model_dir, scratch / f"{name}.html")
            t_report = time.perf_counter() - start
            rows.append(f"| {name} | {which} | {len(texts)} | {t_trace:.2f} | {t_report:.1f} | "
                        f"**{t_report / max(t_trace, 1e-9):.0f}×** | "
                        f"{'met' if t_report <= 30 else 'MISSED'} |")
    note = ("\n\nThe report holds the model card, every explanation method on one example, "
            "saturation, the top units for each feature, trajectories and the memory "
            "horizon; wall-clock seconds, one call each.")
    return "report generation (`lstmlens report`)", "\n".join(rows) + note
