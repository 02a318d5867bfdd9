"""Train every application's reference model with default settings and tabulate its test
metrics beside the baselines computed in the same run (``make train-all``; about an hour on
2 cores — not part of ``make bench``)."""

from __future__ import annotations

import json
import time
from pathlib import Path

from rich.console import Console

from lstmlens.tasks import train_task

ROOT = Path(__file__).resolve().parent.parent
RUNS = [("speech", {}), ("digits", {}), ("sentiment", {}), ("planted", {}),
        ("textgen", {"corpus": "kjv"}), ("textgen", {"corpus": "code"}),
        ("translation", {}), ("timeseries", {"series": "co2"}),
        ("timeseries", {"series": "sunspots"}), ("brackets", {})] + [
    ("tomita", {"grammar": g}) for g in range(1, 8)]


def _fmt(d: dict) -> str:
    return ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                     for k, v in d.items() if isinstance(v, (int, float)))


def run(quick: bool = False) -> tuple[str, str]:
    lines = ["| task | options | test | baselines | training s |", "|---|---|---|---|---|"]
    console = Console(stderr=True)
    for task, opts in RUNS:
        name = task + "".join(f"-{v}" for v in opts.values())
        start = time.perf_counter()
        res = train_task(task, ROOT / "runs" / name, quick=quick, progress=False,
                         console=console, **opts)
        seconds = time.perf_counter() - start
        base = "; ".join(f"{k}: {_fmt(v)}" for k, v in res.metrics.get("baselines", {}).items())
        lines.append(f"| {task} | {json.dumps(opts) if opts else ''} | "
                     f"{_fmt(res.metrics.get('test', {}))} | {base} | {seconds:.0f} |")
    return "applications: reference models (default settings)", "\n".join(lines)
