"""Run the benchmarks and write docs/benchmarks.md (``make bench``).

Every figure is a ratio against a baseline measured in the same run, on this machine.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from benchmarks.common import machine  # noqa: E402

# `make bench`; bench_store (`make bench-store`, ~10 min, ~15 GB of scratch in /tmp) and
# bench_tasks (`make train-all`, ~1 h) run on their own; bench_serve (~3 min) also with
# `make bench-serve`.
BENCHMARKS = ["bench_trace", "bench_explain", "bench_automata", "bench_evaluate", "bench_report",
              "bench_serve"]


def _sections(text: str) -> dict[str, str]:
    """The ``## ...`` sections of an existing benchmarks file, keyed by benchmark module."""
    out: dict[str, str] = {}
    for chunk in text.split("\n## ")[1:]:
        for line in chunk.splitlines():
            if line.startswith("`python benchmarks/run.py --only "):
                name = line.split("--only ", 1)[1].split()[0].rstrip("`")
                out[name] = "## " + chunk.rstrip() + "\n"
                break
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--only", nargs="*", default=BENCHMARKS)
    p.add_argument("--quick", action="store_true", help="few repeats (a smoke run)")
    p.add_argument("--threads", type=int, default=2, help="torch threads (the machine has 2)")
    p.add_argument("--out", default=str(ROOT / "docs" / "benchmarks.md"))
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    # Sections of benchmarks not run now are kept as they were, each with its own date.
    sections = _sections(out.read_text(encoding="utf-8")) if out.exists() else {}
    for name in args.only:
        mod = importlib.import_module(f"benchmarks.{name}")
        print(f"running {name} ...", flush=True)
        title, body = mod.run(quick=args.quick)
        print(body, flush=True)
        sections[name] = (f"## {title}\n\n`python benchmarks/run.py --only {name}`"
                          f"{' --quick' if args.quick else ''}\n\n"
                          f"Run on {dt.date.today().isoformat()}; {machine()}.\n\n{body}\n")
    order = BENCHMARKS + sorted(k for k in sections if k not in BENCHMARKS)
    head = (
        "# Benchmarks\n\n"
        "Written by `make bench` (trace and explanation speed) and `make train-all` (the "
        "applications' reference models). Each section names the command that rewrites it, "
        "the date and the machine.\n\n"
        "Each table compares against a baseline measured in the same run (these machines are "
        "noisy; read the ratios, not the milliseconds).\n\n"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(head + "\n".join(sections[k] for k in order if k in sections), encoding="utf-8")
    tmp.replace(out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
