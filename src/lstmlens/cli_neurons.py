"""``lstmlens neurons ...`` and ``lstmlens report``: thin commands over the neuron analyses.

``cli.py`` mounts :data:`neurons_app` and :func:`report_cmd`; the library does the work.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

neurons_app = typer.Typer(add_completion=False, no_args_is_help=True,
                          help="Units and gates: saturation, interpretable cells, "
                               "hypothesis matching.")


def _cli():
    from . import cli_common  # the shared consoles and error guard
    return cli_common


def _corpus(model, corpus: Path | None, n: int) -> list:
    """Texts of a file (one per line; character models: pieces of ~400 characters), or the
    model's own held-out data."""
    from .errors import InputError
    from .states import model_corpus
    if corpus is None:
        return model_corpus(model, n=n)
    try:
        text = corpus.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"cannot read corpus {corpus}: {e}") from None
    tok = getattr(model, "tokenizer", None)
    if getattr(tok, "level", "word") == "char" and not (model.meta or {}).get("start_symbol"):
        pieces = [text[a:a + 400] for a in range(0, len(text), 400)]
    else:
        pieces = [line for line in text.splitlines() if line.strip()]
    pieces = [p for p in pieces if p.strip()][:n]
    if not pieces:
        raise InputError(f"corpus {corpus} is empty")
    return pieces


@neurons_app.command("match")
def match_cmd(
    model_dir: Annotated[Path, typer.Argument(help="A model directory.")],
    text: Annotated[str, typer.Option(help="The text to select a span of.")],
    span: Annotated[str, typer.Option(help="Token range a:b (b exclusive) of --text.")],
    threshold: Annotated[float, typer.Option(help="A cell is on at ≥ this (tanh-scaled).")
                         ] = 0.3,
    off_before: Annotated[bool, typer.Option(help="Cells must be off just before the span.")
                          ] = False,
    off_after: Annotated[bool, typer.Option(help="Cells must be off just after the span.")
                         ] = False,
    layer: Annotated[str | None, typer.Option(help="Trace key of the states (default: the "
                                              "top layer's forward cell).")] = None,
    corpus: Annotated[Path | None, typer.Option(help="A text file to search (default: the "
                                                "model's held-out data).")] = None,
    sequences: Annotated[int, typer.Option(min=1, help="Corpus sequences to read.")] = 200,
    top: Annotated[int, typer.Option(min=1, help="Matches to show.")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """LSTMVis hypothesis matching: the cells on over a span, and where else they switch on."""
    cli = _cli()

    def body():
        from .matching import match_hypothesis, parse_span
        from .modeldir import load
        from .states import collect_states
        model = load(model_dir)
        a, b = parse_span(span)
        texts = [text, *_corpus(model, corpus, sequences)]
        states = collect_states(model, texts, series=["cell", "hidden"])
        hyp = match_hypothesis(states, 0, (a, b), key=layer, threshold=threshold,
                               off_before=off_before, off_after=off_after, top=top + 1)
        hyp.matches = [m for m in hyp.matches if m.sequence != 0 or (m.start, m.end) != (a, b)
                       ][:top]
        if as_json:
            sys.stdout.write(json.dumps(hyp.to_dict()) + "\n")
            return
        cli.out.print(f"{len(hyp.cells)} cells of {hyp.key} ≥ {threshold} over "
                      f"{escape(repr(hyp.selected_text))}: {hyp.cells}")
        if not hyp.cells:
            cli.out.print("no cell is on over the whole span; lower --threshold or shorten "
                          "--span")
        for m in hyp.matches:
            where = "query" if m.sequence == 0 else f"seq {m.sequence - 1}"
            cli.out.print(f"{where:>9} {m.start:>4}:{m.end:<4} overlap {m.overlap:>3} union "
                          f"{m.union:>3}  {escape(repr(m.text))}", highlight=False)
    cli._guard(body)


@neurons_app.command("search")
def search_cmd(
    model_dir: Annotated[Path, typer.Argument(help="A model directory.")],
    feature: Annotated[str, typer.Option(help="inside_string, bracket_depth, "
                                         "inside_brackets, indentation, position_in_line, "
                                         "position or sentiment.")] = "inside_string",
    metric: Annotated[str, typer.Option(help="auc or correlation.")] = "auc",
    series: Annotated[str, typer.Option(help="Series whose units to rank.")] = "cell",
    corpus: Annotated[Path | None, typer.Option(help="A text file (default: the model's "
                                                "held-out data).")] = None,
    sequences: Annotated[int, typer.Option(min=1, help="Corpus sequences to read.")] = 100,
    top: Annotated[int, typer.Option(min=1, help="Units to show.")] = 10,
    png: Annotated[Path | None, typer.Option(help="Write the best unit's picture here.")
                   ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the ranking as JSON.")] = False,
) -> None:
    """Rank units by how well they track a per-token feature (AUC or correlation)."""
    cli = _cli()

    def body():
        from .cells import find_units, unit_picture
        from .heatmaps import text_rich
        from .modeldir import load
        from .states import collect_states
        model = load(model_dir)
        states = collect_states(model, _corpus(model, corpus, sequences), series=[series])
        found = find_units(states, feature, metric=metric, series=series)
        if png is not None:
            unit_picture(states, found, path=png)
        if as_json:
            sys.stdout.write(json.dumps(found.to_dict(top)) + "\n")
            return
        cli.out.print(f"units tracking {feature} over {states.num_steps:,} steps ({metric}):")
        for i, s in enumerate(found.top(top), 1):
            cli.out.print(f"{i:>3}. {s.name:<40} {s.score:.3f} ({'+' if s.sign > 0 else '−'})")
        b = found.best  # the best unit coloured over the start of the first sequence
        v = states.sequence(b.key, 0, scaled=True)[:300, b.index] * b.sign
        cli.out.print(f"{escape(b.name)} over sequence 0 (red high, blue low):")
        cli.out.print(text_rich(states.tokens[0][:300], v), highlight=False)
        if png is not None:
            cli.out.print(f"picture of the best unit: {png}")
    cli._guard(body)


@neurons_app.command("saturation")
def saturation_cmd(
    model_dir: Annotated[Path, typer.Argument(help="A model directory.")],
    corpus: Annotated[Path | None, typer.Option(help="A text file (default: the model's "
                                                "held-out data).")] = None,
    sequences: Annotated[int, typer.Option(min=1, help="Corpus sequences to read.")] = 100,
    png: Annotated[Path | None, typer.Option(help="Write the scatter plot here.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print fractions as JSON.")] = False,
) -> None:
    """Per gate and layer, how often units are nearly closed (< 0.1) or open (> 0.9)."""
    cli = _cli()

    def body():
        from rich.table import Table

        from .modeldir import load
        from .saturation import saturation
        from .states import collect_states
        model = load(model_dir)
        sat = saturation(collect_states(model, _corpus(model, corpus, sequences),
                                        series=["input_gate", "forget_gate", "output_gate"]))
        if png is not None:
            sat.plot(png)
        if as_json:
            sys.stdout.write(json.dumps(sat.to_dict()) + "\n")
            return
        t = Table(title=f"gate saturation over {sat.steps:,} steps", title_justify="left")
        for c in ("layer", "gate", "steps < 0.1", "steps > 0.9", "units mostly < 0.1",
                  "units mostly > 0.9"):
            t.add_column(c, overflow="fold")
        for r in sat.summary():
            t.add_row(r["layer"], r["gate"].replace("_", " "), f"{r['left_mean']:.1%}",
                      f"{r['right_mean']:.1%}", str(r["units_left_over_half"]),
                      str(r["units_right_over_half"]))
        cli.out.print(t)
    cli._guard(body)


def report_cmd(
    model_dir: Annotated[Path, typer.Argument(help="A model directory.")],
    out_file: Annotated[Path, typer.Option("--out", help="The HTML file to write.")
                        ] = Path("report.html"),
    corpus: Annotated[Path | None, typer.Option(help="A text file to analyse (default: the "
                                                "model's held-out data).")] = None,
    sequences: Annotated[int, typer.Option(min=1, help="Corpus sequences to analyse.")] = 60,
) -> None:
    """One self-contained HTML report: model card, explanations, units, horizon, rules."""
    cli = _cli()

    def body():
        from .modeldir import load
        from .report import write_report
        texts = None if corpus is None else _corpus(load(model_dir), corpus, sequences)
        path = write_report(model_dir, out_file, corpus=texts, n=sequences)
        cli.out.print(f"wrote {path}")
    cli._guard(body)
