"""``lstmlens evaluate``: how far each explanation method can be trusted (thin: parse, call
:func:`lstmlens.evaluate`, print and write)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from .cli_common import _guard, err, out


def _names(spec: str | None, what: str) -> list[str] | None:
    if spec is None:
        return None
    names = [s.strip() for s in spec.split(",") if s.strip()]
    if not names:
        from .errors import InputError
        raise InputError(f"--{what} is empty; give names separated by commas")
    return names


def evaluate_cmd(
    model_dir: Annotated[Path, typer.Argument(help="A text model directory.")],
    data: Annotated[Path | None, typer.Option(
        help="Texts: a .csv/.tsv/.jsonl file (text, label) or a .txt file (one a line); "
             "default the model's own test split.")] = None,
    methods: Annotated[str | None, typer.Option(
        help="Comma-separated methods, or 'all' (default: cd, lrp, integrated_gradients, "
             "occlusion, saliency, grad_x_input, attention). A random ranking is always "
             "added.")] = None,
    n: Annotated[int, typer.Option("--n", min=1, help="Sentences to evaluate (seeded "
                                                      "sample).")] = 500,
    seed: Annotated[int, typer.Option(help="Seed of the sample, random ranking, "
                                           "bootstrap.")] = 0,
    masking: Annotated[str, typer.Option(help="How tokens are hidden: remove, pad, unk or "
                                              "zero.")] = "remove",
    checks: Annotated[str, typer.Option(
        help="Comma-separated: faithfulness, ground_truth, attention, sanity, stability "
             "(the last two retrain models).")] = "faithfulness,ground_truth,attention",
    json_file: Annotated[Path | None, typer.Option("--json", help="Write the JSON here.")
                         ] = None,
    out_dir: Annotated[Path | None, typer.Option(
        "--out", help="Write evaluation.json/.csv/.html and PNG plots to this folder.")
    ] = None,
) -> None:
    """Faithfulness, ground truth, attention and sanity tests of explanation methods."""
    def body():
        from .evaluation import evaluate
        from .methods import method_names
        from .modeldir import load
        names = _names(methods, "methods")
        if names == ["all"]:
            names = method_names()
        model = load(model_dir)
        ev = evaluate(model, None if data is None else data, methods=names, n=n, seed=seed,
                      masking=masking, checks=_names(checks, "checks"),
                      progress=lambda msg: err.print(f"[dim]{escape(msg)}[/]"))
        for note in ev.notes:
            out.print(f"[yellow]note:[/] {escape(note)}")
        cols = [k for k in ("comprehensiveness_aopc", "sufficiency_aopc", "deletion_auc",
                            "insertion_auc", "planted_precision", "sanity_spearman",
                            "stability_spearman")
                if any(k in f for f in ev.methods.values())]
        table = Table(title=f"{ev.settings['n']} sentences, masking {ev.settings['masking']}"
                            " (value [95% interval])")
        table.add_column("method")
        for k in cols:
            table.add_column(k)
        for m, figs in ev.methods.items():
            table.add_row(m, *[escape(_cell(figs.get(k))) for k in cols])
        out.print(table)
        for m, why in ev.skipped.items():
            out.print(f"[dim]skipped {escape(m)}: {escape(why)}[/]")
        if ev.sanity:
            for m, r in ev.sanity["methods"].items():
                if "verdict" in r:
                    out.print(f"sanity {escape(m)}: {escape(r['verdict'])}")
        if json_file is not None:
            json_file.write_text(ev.to_json(), encoding="utf-8")
            out.print(f"wrote {escape(str(json_file))}")
        if out_dir is not None:
            files = ev.save(out_dir)
            out.print(f"wrote {', '.join(escape(str(f)) for f in files)}")
    _guard(body)


def _cell(fig) -> str:
    if not fig or fig.get("value") is None or fig["value"] != fig["value"]:
        return "—"
    return f"{fig['value']:.3f} [{fig['ci_low']:.3f}, {fig['ci_high']:.3f}]"
