"""``lstmlens automaton MODEL_DIR``: a DFA extracted from a recogniser (thin)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from .cli_common import _guard, app, out


@app.command("automaton")
def automaton_cmd(
    model_dir: Annotated[Path, typer.Argument(help="A model directory of a binary classifier "
                                              "over symbols (lstmlens train tomita/brackets).")],
    method: Annotated[str, typer.Option(help="quantize (k-means over hidden states) or lstar "
                                             "(L* with the network as teacher).")
                      ] = "quantize",
    alphabet: Annotated[str | None, typer.Option(help="The symbols (default: the model's).")
                        ] = None,
    time_limit: Annotated[float, typer.Option(min=1, help="Seconds the learning may take.")
                          ] = 45.0,
    seed: Annotated[int, typer.Option(help="Seed for random strings and k-means.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")
                       ] = False,
    svg: Annotated[Path | None, typer.Option("--svg", help="Write a drawing of the automaton "
                                             "(SVG) to this file.")] = None,
) -> None:
    """Extract a finite automaton from a recogniser: fidelity, truth, separating units."""
    def body():
        from .extraction import extract_automaton
        from .modeldir import load
        result = extract_automaton(load(model_dir), alphabet, method=method,
                                   time_limit=time_limit, seed=seed)
        if svg is not None:
            svg.write_text(result.automaton.to_svg(), encoding="utf-8")
        if as_json:
            sys.stdout.write(result.to_json() + "\n")
            return
        out.print(escape(result.summary()), highlight=False)
        aut = result.automaton
        t = Table(title=f"{aut.n_states} states over {aut.alphabet!r} (start q{aut.start})",
                  title_justify="left")
        t.add_column("state")
        t.add_column("accepts")
        for a in aut.alphabet:
            t.add_column(f"on {a}")
        t.add_column("hidden units that separate it best (AUC)")
        for q, units in enumerate(result.state_units):
            best = ", ".join(f"{u['unit']} ({u['auc']:.2f})" for u in units)
            t.add_row(f"q{q}", "yes" if q in aut.accepting else "no",
                      *(f"q{aut.transitions[q][a]}" for a in aut.alphabet), escape(best))
        out.print(t)
        if result.counterexamples:
            out.print("network and automaton disagree on: "
                      + escape(", ".join(repr(w) for w in result.counterexamples[:10])))
        if svg is not None:
            out.print(f"wrote {escape(str(svg))}")
    _guard(body)
