"""Terminal views of traces (rich): the gate summary table."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from .trace_result import SIGMOID_GATES, Trace


def gate_table(trace: Trace, title: str = "gates") -> Table:
    """One column per module, layer and direction; rows: each gate's mean over valid steps and
    the fractions of its values below 0.1 and above 0.9 (saturation), then |c| and h."""
    rows = trace.summary()
    t = Table(title=title, title_justify="left")
    t.add_column("")
    for r in rows:
        name = (r["module"] + " ") if r["module"] else ""
        t.add_column(f"{name}L{r['layer']} {r['direction'][:3]}\n{r['units']} units",
                     justify="right")
    for g in SIGMOID_GATES:
        label = g.replace("_", " ")
        t.add_row(f"{label} mean", *[f"{r[g + '_mean']:.3f}" for r in rows])
        t.add_row("  < 0.1 | > 0.9",
                  *[f"{r[g + '_below_0.1']:.0%} | {r[g + '_above_0.9']:.0%}" for r in rows])
    t.add_row("cell candidate mean", *[f"{r['cell_candidate_mean']:+.3f}" for r in rows])
    t.add_row("|cell| mean", *[f"{r['cell_abs_mean']:.3f}" for r in rows])
    t.add_row("hidden mean", *[f"{r['hidden_mean']:+.3f}" for r in rows])
    return t


def print_gates(trace: Trace, console: Console | None = None, title: str = "gates") -> None:
    (console or Console()).print(gate_table(trace, title))
