"""The ``lstmlens`` command line: thin — parse arguments, call the library, print."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from . import __version__

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Open up LSTM networks: every gate at every step, and why they decide.")
err = Console(stderr=True)
out = Console()


def _fail(message: str) -> None:
    # escape: messages name shapes like "[batch, time, 12]", which rich would take as markup
    one_line = " ".join(str(message).split())
    err.print(f"[bold red]error:[/] {escape(one_line)}", highlight=False, soft_wrap=True)
    raise typer.Exit(1)


def _guard(fn):
    """Run a command body; expected errors become one line on stderr and exit code 1."""
    from .datasets import DataUnavailableError
    from .errors import LstmlensError
    try:
        return fn()
    except (LstmlensError, DataUnavailableError, OSError) as e:
        _fail(str(e))
    except KeyboardInterrupt:
        _fail("interrupted")
    except Exception as e:  # a bug: still one line, never a traceback
        _fail(f"unexpected {type(e).__name__}: {e} (this is a bug in lstmlens; please report it)")


def _version(value: bool) -> None:
    if value:
        out.print(f"lstmlens {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """lstmlens command line."""


def _read_input(model, spec: str):
    """Inputs ``[1, T, F]`` and lengths from ``split:N`` or an .npy/.csv/.json file."""
    import torch

    from .batching import pad_batch
    from .errors import InputError
    split, _, index = spec.partition(":")
    if split in ("train", "validation", "test") and index.isdigit():
        task = (getattr(model, "meta", None) or {}).get("task")
        if task != "speech/japanese_vowels":
            raise InputError(f"this model records no data set I can read {spec!r} from; "
                             "pass an .npy, .csv or .json file of [time, features]")
        from .datasets import load_japanese_vowels
        data = getattr(load_japanese_vowels(seed=model.meta.get("seed", 0)), split)
        if int(index) >= len(data):
            raise InputError(f"{split} split has {len(data)} sequences; {spec!r} is out of range")
        return pad_batch([data.inputs[int(index)]]), int(data.labels[int(index)])
    path = Path(spec)
    if not path.exists():
        raise InputError(f"input {spec!r} is neither a file nor train:N / validation:N / test:N")
    if path.suffix not in (".npy", ".csv", ".json"):
        raise InputError(f"{path.name}: unknown file type {path.suffix or '(none)'!r}; input "
                         "files must be .npy, .csv or .json")
    try:
        if path.suffix == ".npy":
            arr = np.load(path, allow_pickle=False)
        elif path.suffix == ".csv":
            arr = np.loadtxt(path, delimiter=",", ndmin=2)
        else:
            arr = np.asarray(json.loads(path.read_text()), dtype=np.float64)
    except (ValueError, OSError) as e:
        raise InputError(f"cannot read {path}: {e}") from None
    arr = np.asarray(arr, dtype=np.float32)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3:
        raise InputError(f"{path.name} holds shape {arr.shape}; give [time, features]")
    x = torch.from_numpy(arr)
    return (x, torch.full((x.shape[0],), x.shape[1], dtype=torch.long)), None


@app.command()
def inspect(model_dir: Annotated[Path, typer.Argument(help="A model directory.")]) -> None:
    """Architecture, sizes and metrics of a model directory."""
    def body():
        from torch import nn

        from .modeldir import load
        model = load(model_dir)
        n_params = sum(p.numel() for p in model.parameters())
        t = Table(title=f"{model_dir} — {model.kind}, {n_params:,} parameters",
                  title_justify="left")
        t.add_column("module")
        t.add_column("type")
        t.add_column("shape")
        for name, m in model.named_modules():
            if isinstance(m, nn.LSTM):
                shape = (f"{m.input_size} → {m.hidden_size} units × {m.num_layers} layer(s)"
                         + (", bidirectional" if m.bidirectional else "")
                         + (f", proj {m.proj_size}" if m.proj_size else ""))
            elif isinstance(m, nn.Linear):
                shape = f"{m.in_features} → {m.out_features}"
            elif isinstance(m, nn.Embedding):
                shape = f"{m.num_embeddings} tokens × {m.embedding_dim}"
            else:
                continue
            t.add_row(name, type(m).__name__, shape)
        out.print(t)
        meta = model.meta
        if meta.get("task"):
            out.print(f"task: {meta['task']}; classes: {', '.join(meta.get('classes', []))}")
        for split, vals in (model.metrics or {}).items():
            if isinstance(vals, dict) and split != "training":
                out.print(f"{split}: " + json.dumps(vals))
    _guard(body)


@app.command("trace")
def trace_cmd(
    model_dir: Annotated[Path, typer.Argument(help="A model directory.")],
    input: Annotated[str, typer.Argument(
        help="test:N / train:N / validation:N, or an .npy, .csv or .json file [time, features]"
    )],
    as_json: Annotated[bool, typer.Option("--json", help="Print the whole trace as JSON.")] = False,
    dtype: Annotated[str, typer.Option(help="float32 or float64")] = "float32",
) -> None:
    """Record every gate at every step of one input and summarise them."""
    def body():
        import torch

        from .console import print_gates
        from .modeldir import load
        from .tracing import trace
        model = load(model_dir)
        (x, lengths), label = _read_input(model, input)
        tr = trace(model, x, lengths, dtype=dtype)
        probs = torch.softmax(tr.output, -1)
        classes = model.meta.get("classes") or [str(i) for i in range(probs.shape[-1])]
        if as_json:
            doc = json.loads(tr.to_json())
            doc["prediction"] = [{"class": classes[int(p.argmax())],
                                  "probabilities": [round(float(v), 6) for v in p]}
                                 for p in probs]
            sys.stdout.write(json.dumps(doc) + "\n")
            return
        k = int(probs[0].argmax())
        truth = f", true {classes[label]}" if label is not None else ""
        out.print(f"{input}: {int(lengths[0])} steps; predicted {classes[k]} "
                  f"({float(probs[0, k]):.1%}){truth}")
        print_gates(tr, out)
    _guard(body)


@app.command()
def demo(
    out_dir: Annotated[Path, typer.Option("--out", help="Where to save the model.")] = Path(
        "runs/demo-speech"),
    epochs: Annotated[int, typer.Option(min=1, help="Maximum training epochs.")] = 30,
    seed: Annotated[int, typer.Option(help="Seed for splits, initialisation, batches.")] = 0,
    data: Annotated[str | None, typer.Option(
        help="The sktime wheel or a folder with the JapaneseVowels .ts files (offline).")] = None,
) -> None:
    """The main job: train the seed's §5 LSTM on Japanese Vowels and show its gates."""
    def body():
        from .demo import run_demo
        run_demo(out_dir, epochs=epochs, seed=seed, data=data, console=out)
    _guard(body)


if __name__ == "__main__":
    app()
