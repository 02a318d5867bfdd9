"""Train every application's reference model with default settings and tabulate its test
metrics beside the baselines computed in the same run (``make train-all``; about an hour on
2 cores — not part of ``make bench``)."""

from __future__ import annotations

import json
import os
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


def _flat(d: dict, prefix: str = "") -> dict[str, float]:
    out: dict[str, float] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            out[f"{prefix}{k}"] = v
    return out


def _fmt(d: dict) -> str:
    return ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                     for k, v in _flat(d).items()
                     if not k.endswith("seconds") and "by_length" not in k)


def _target(task: str, opts: dict, m: dict) -> str:
    """The issue's target for this task, and whether this run met it."""
    t, b = m.get("test", {}), m.get("baselines", {})
    if task in ("speech", "digits"):
        ok = t["accuracy"] >= 0.95
        s = f"accuracy ≥ 0.95: {t['accuracy']:.3f}"
        if task == "digits":
            s += f" (real recordings {m['real_recordings']['accuracy']:.2f}, reported)"
    elif task == "sentiment":
        ok, s = t["accuracy"] >= 0.75, f"accuracy ≥ 0.75: {t['accuracy']:.3f}"
    elif task == "planted":
        ok, s = t["accuracy"] >= 0.99, f"accuracy ≥ 0.99: {t['accuracy']:.3f}"
    elif task in ("tomita", "brackets"):
        ok, s = t["accuracy"] >= 0.999, f"accuracy ≥ 0.999 (lengths ≤ 2n): {t['accuracy']:.4f}"
    elif task == "textgen":
        kn = next(v for k, v in b.items() if k.startswith("kneser_ney"))
        val = m["validation"]["bits_per_char"]
        ok = val < kn["val_bits_per_char"]
        s = f"validation bpc {val:.3f} < 5-gram {kn['val_bits_per_char']:.3f}"
    elif task == "translation":
        bleu, base = t["greedy"]["bleu"], b["word_dictionary"]["bleu"]
        ok, s = bleu > base, f"BLEU {bleu:.1f} > dictionary {base:.1f}"
    elif task == "timeseries" and opts.get("series") == "co2":
        r = t["mae_ratio_to_seasonal_naive"]
        ok, s = r <= 0.8, f"MAE ÷ seasonal naive ≤ 0.8: {r:.3f}"
    else:
        return "none (reported)"
    return f"{'**met**' if ok else '**MISSED**'} — {s}"


def run(quick: bool = False) -> tuple[str, str]:
    lines = ["| task | options | target | test | baselines | wall s | CPU s | load |",
             "|---|---|---|---|---|---|---|---|"]
    console = Console(stderr=True)
    for task, opts in RUNS:
        name = task + "".join(f"-{v}" for v in opts.values())
        start, cpu = time.perf_counter(), time.process_time()
        res = train_task(task, ROOT / "runs" / name, quick=quick, progress=False,
                         console=console, **opts)
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
        base = "; ".join(f"{k}: {_fmt(v)}" for k, v in res.metrics.get("baselines", {}).items())
        lines.append(f"| {task} | {json.dumps(opts) if opts else ''} | "
                     f"{_target(task, opts, res.metrics)} | "
                     f"{_fmt(res.metrics.get('test', {}))} | {base} | {seconds:.0f} | {cpu:.0f} | "
                     f"{os.getloadavg()[0]:.1f} |")
        print(lines[-1], flush=True)
    note = ("\n\nwall s: data, baselines and training, wall clock; CPU s: this process's CPU "
            "time (torch at the thread count above), which other jobs on the machine do not "
            "inflate; load: the 1-minute load average when the task ended. textgen and "
            "translation train for a wall-clock budget (300 s), so on a loaded machine they "
            "get fewer steps.")
    return ("applications: reference models (default settings)", "\n".join(lines) + note)
