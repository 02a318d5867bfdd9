"""trace() against the plain fused nn.LSTM forward, side by side in one run.

T=50, E=64, H=128, batches 1, 32 and 256 (issue: goal ≤ 2× at batch 1, ≤ 1.5× at 256, and no
call — the first included — over 2 s). Also times a 2-layer bidirectional LSTM.
"""

from __future__ import annotations

import torch

import lstmlens

from .common import interleaved, timed

T, E, H = 50, 64, 128
BATCHES = (1, 32, 256)


def _cases():
    torch.manual_seed(0)
    yield "1 layer", torch.nn.LSTM(E, H, batch_first=True).eval()
    yield "2 layers, bidirectional", torch.nn.LSTM(E, H, num_layers=2, bidirectional=True,
                                                   batch_first=True).eval()


def _measure(lstm: torch.nn.LSTM, x: torch.Tensor, reps: int) -> tuple[dict, float]:
    """Median seconds of the fused forward and of trace (each engine), and the first call."""
    first = timed(lambda: lstmlens.trace(lstm, x))  # before any warm-up at this shape

    def fused():
        with torch.no_grad():
            lstm(x)

    fns = {"fused": fused, "trace": lambda: lstmlens.trace(lstm, x),
           "loop": lambda: lstmlens.trace(lstm, x, engine="loop"),
           "recompute": lambda: lstmlens.trace(lstm, x, engine="recompute")}
    return interleaved(fns, repeats=reps), first


def run(quick: bool = False) -> tuple[str, str]:
    rows = []
    worst_first = 0.0
    for name, lstm in _cases():
        for B in BATCHES:
            reps = 5 if quick else (40 if B < 256 else 15)
            med, first = _measure(lstm, torch.randn(B, T, E), reps)
            worst_first = max(worst_first, first)
            rows.append((name, B, med, first))
    lines = [
        "| LSTM | batch | fused forward (ms) | trace (ms) | **trace ÷ fused** | "
        "loop engine ÷ fused | recompute engine ÷ fused | first trace call (ms) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, B, m, first in rows:
        f = m["fused"]
        lines.append(
            f"| {name} | {B} | {f * 1e3:.2f} | {m['trace'] * 1e3:.2f} | "
            f"**{m['trace'] / f:.2f}** | {m['loop'] / f:.2f} | {m['recompute'] / f:.2f} | "
            f"{first * 1e3:.1f} |"
        )
    lines.append("")
    lines.append(f"Slowest first call (no warm-up, no compilation): {worst_first * 1e3:.0f} ms. "
                 "Goals: trace ÷ fused ≤ 2 at batch 1 and ≤ 1.5 at batch 256 (1 layer); "
                 "no call over 2 s. Medians of interleaved runs; `trace` chooses its engine "
                 "by batch × units.")
    title = f"trace vs fused nn.LSTM (T={T}, E={E}, H={H}, float32, no grad)"
    return title, "\n".join(lines)
