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

BENCHMARKS = ["bench_trace", "bench_explain"]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--only", nargs="*", default=BENCHMARKS)
    p.add_argument("--quick", action="store_true", help="few repeats (a smoke run)")
    p.add_argument("--threads", type=int, default=2, help="torch threads (the machine has 2)")
    p.add_argument("--out", default=str(ROOT / "docs" / "benchmarks.md"))
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    sections = []
    for name in args.only:
        mod = importlib.import_module(f"benchmarks.{name}")
        print(f"running {name} ...", flush=True)
        title, body = mod.run(quick=args.quick)
        print(body, flush=True)
        sections.append(f"## {title}\n\n`python benchmarks/run.py --only {name}`\n\n{body}\n")
    head = (
        "# Benchmarks\n\n"
        f"Written by `make bench` on {dt.date.today().isoformat()}.\n\n"
        f"Machine: {machine()}.\n\n"
        "Each table compares against a baseline measured in the same run (these machines are "
        "noisy; read the ratios, not the milliseconds).\n\n"
    )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(head + "\n".join(sections), encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
