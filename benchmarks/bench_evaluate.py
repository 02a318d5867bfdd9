"""``lstmlens.evaluate`` on the sentiment model: 500 sentences × 6 methods, batched.

The goal (issue 5): 500 sentences × 6 methods evaluated (explanations, faithfulness with
every ERASER bin and both curves, attention tests) in ≤ 5 minutes on 2 cores. The baseline
measured in the same run is the same evaluation done one sentence at a time (batch size 1),
on a sub-sample of the same sentences; the ratio compares sentences per second.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

import lstmlens
from lstmlens.modeldir import is_model_dir
from lstmlens.tasks import train_task

ROOT = Path(__file__).resolve().parent.parent
METHODS = ["cd", "lrp", "integrated_gradients", "occlusion", "saliency", "attention"]
GOAL_SECONDS = 300.0


def sentiment_model():
    """runs/evaluation/sentiment (trained here if missing), else the task's own run."""
    for run in (ROOT / "runs" / "evaluation" / "sentiment", ROOT / "runs" / "sentiment"):
        if is_model_dir(run):
            return lstmlens.load(run), run
    run = ROOT / "runs" / "evaluation" / "sentiment"
    train_task("sentiment", run, progress=False)
    return lstmlens.load(run), run


def _timed(model, n: int, batch_size: int):
    t = time.perf_counter()
    ev = lstmlens.evaluate(model, n=n, methods=METHODS, batch_size=batch_size, seed=0)
    return time.perf_counter() - t, ev


def run(quick: bool = False) -> tuple[str, str]:
    torch.manual_seed(0)
    model, path = sentiment_model()
    n, n_base = (100, 10) if quick else (500, 40)
    full_s, ev = _timed(model, n, 64)
    sub_s, _ = _timed(model, n_base, 64)  # the baseline's sentences, batched
    one_s, _ = _timed(model, n_base, 1)  # ... and one at a time
    lines = ["| run | sentences | methods | seconds | sentences/s | **ratio** | goal |",
             "|---|---|---|---|---|---|---|"]
    lines.append(f"| batched (64) | {n} | {len(METHODS)} + random | {full_s:,.1f} | "
                 f"{n / full_s:,.2f} | — | ≤ {GOAL_SECONDS:.0f} s for 500 "
                 f"({'met' if full_s <= GOAL_SECONDS or n < 500 else 'missed'}) |")
    lines.append(f"| batched (64), baseline's sample | {n_base} | {len(METHODS)} + random | "
                 f"{sub_s:,.1f} | {n_base / sub_s:,.2f} | **{one_s / sub_s:.1f}×** | "
                 f"faster than one at a time |")
    lines.append(f"| one sentence at a time (baseline) | {n_base} | {len(METHODS)} + random | "
                 f"{one_s:,.1f} | {n_base / one_s:,.2f} | 1.0× | |")
    split = ", ".join(f"{k} {v:.1f} s" for k, v in ev.seconds.items() if k != "total")
    lines += ["", f"Model `{path.relative_to(ROOT)}` (bidirectional attention LSTM, "
                  f"embedding {model.config.embedding_dim}, hidden {model.config.hidden_sizes}); "
                  f"checks: {', '.join(ev.settings['checks'])}; masking "
                  f"{ev.settings['masking']}; skipped: {sorted(ev.skipped) or 'none'}. "
                  f"Seconds per method in the batched run (explaining + faithfulness): "
                  f"{split}; the rest is the attention tests and the bootstrap."]
    return (f"evaluate ({n} sentences × {len(METHODS)} methods, sentiment model)",
            "\n".join(lines))
