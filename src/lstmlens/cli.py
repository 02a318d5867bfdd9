"""The ``lstmlens`` command line: thin — parse arguments, call the library, print."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.markup import escape
from rich.table import Table

from .cli_common import _fail, _guard, app, err, out  # noqa: F401


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
    tok = getattr(model, "tokenizer", None)
    if not path.exists() and hasattr(tok, "encode"):  # text for a model with a tokenizer
        ids = tok.encode(spec, max_length=(getattr(model, "meta", None) or {}).get("max_length"))
        x = torch.tensor([ids])
        return (x, torch.tensor([len(ids)])), None
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
    task: Annotated[str, typer.Option(help="sentiment (default) or speech (the seed's §5 "
                                           "model on Japanese Vowels).")] = "sentiment",
    out_dir: Annotated[Path | None, typer.Option("--out", help="Where to save the model "
                                                 "(default runs/demo-TASK).")] = None,
    epochs: Annotated[int | None, typer.Option(min=1, help="Maximum training epochs.")] = None,
    quick: Annotated[bool, typer.Option(help="Small, fast settings.")] = False,
    seed: Annotated[int, typer.Option(help="Seed for splits, initialisation, batches.")] = 0,
    data: Annotated[str | None, typer.Option(help="Use this file or folder instead of the "
                                                  "pinned download (offline).")] = None,
) -> None:
    """The main job: train (or reuse) a real model, then show its gates and explanations."""
    def body():
        from .demo import run_demo
        from .errors import InputError
        if task not in ("sentiment", "speech"):
            raise InputError(f"demo --task must be sentiment or speech, got {task!r}")
        run_demo(out_dir, task=task, quick=quick, epochs=epochs, seed=seed, data=data,
                 console=out)
    _guard(body)


def _score_line(att, b: int = 0) -> str:
    """Tokens (or steps) coloured by score, as rich markup."""
    from rich.markup import escape as esc
    ts = att.token_scores()[b]
    L = int(att.lengths[b])
    vmax = float(ts[:L].abs().max()) or 1.0
    toks = att.tokens[b][:L] if att.tokens else [f"t{t}" for t in range(L)]
    parts = []
    for t, v in zip(toks, ts[:L].tolist(), strict=True):
        a = min(1.0, abs(v) / vmax)
        level = int(round(a * 4))
        colour = ["", "red3", "red1", "bold red1", "bold white on red3"][level] if v >= 0 else \
            ["", "blue3", "dodger_blue2", "bold dodger_blue1", "bold white on blue3"][level]
        parts.append(f"[{colour}]{esc(t)}[/]" if colour else esc(t))
    return " ".join(parts)


def _top_line(att, b: int = 0, k: int = 3) -> str:
    """The ``k`` strongest tokens (or steps) with their scores, as plain text: what the
    colours say, readable without a colour terminal. Classes rank the evidence for the
    target; forecasters (values) rank by size, since a forecast may fall."""
    import torch
    ts = att.token_scores()[b, :int(att.lengths[b])]
    order = torch.argsort(ts.abs() if att.outputs == "values" else ts, descending=True)[:k]
    toks = att.tokens[b] if att.tokens else [f"t{t}" for t in range(len(ts))]
    return ", ".join(f"{toks[t]!r} {float(ts[t]):+.3g}" if att.tokens else
                     f"{toks[t]} {float(ts[t]):+.3g}" for t in order.tolist())


def _forecast_window(model, spec: str):
    """A forecaster's window ``[1, T, F]``: ``history`` (the end of its training series, what
    ``lstmlens forecast`` continues), ``test:N`` / ``validation:N`` / ``train:N`` (the N-th
    forecast origin of that segment of its built-in series), or an .npy/.csv/.json file."""
    import torch

    from .errors import InputError
    c, meta = model.config, (getattr(model, "meta", None) or {})
    split, _, index = spec.partition(":")
    if spec == "history":
        if "history" not in meta:
            raise InputError("this model stores no history; give test:N or a window file")
        start = meta.get("history_start")
        values = np.asarray(meta["history"], dtype=np.float64)
        pos = None if start is None else float(start) + np.arange(len(values))
        return torch.from_numpy(model.features(values, pos)[None]), None
    if split in ("train", "validation", "test") and index.isdigit():
        from .datasets.timeseries import SERIES, load_series
        from .tasks.timeseries import window_origins
        series = meta.get("series")
        if series not in SERIES:
            raise InputError(f"this model records no built-in series to read {spec!r} from; "
                             "give the window as an .npy, .csv or .json file [time, features]")
        data = load_series(series)
        lo, hi = data.segment(split)
        origins = window_origins(lo, hi, c.window, c.horizon, inputs_inside=split == "train")
        if int(index) >= len(origins):
            raise InputError(f"{split} has {len(origins)} forecast origins; {spec!r} is out of "
                             "range")
        t = int(origins[int(index)])
        feats = model.features(data.values, data.position)[t - c.window:t]  # (W, F)
        return torch.from_numpy(feats[None]), None
    (x, lengths), _ = _read_input(model, spec)
    return x, lengths


def _explain_inputs(model, spec: str):
    """What ``explain`` reads for each kind of model: a translation model's source text, a
    forecaster's window, text for a model with a tokenizer (tokenized and checked by
    ``explain`` itself), else what ``predict`` reads (split:N or a file)."""
    from .errors import InputError
    from .models.forecaster import LSTMForecaster
    from .models.seq2seq import Seq2Seq
    if not spec.strip():  # "" would otherwise name the current directory as a file
        raise InputError("the input is empty; give text (token models), test:N / train:N / "
                         "validation:N, or an .npy/.csv/.json file [time, features]")
    if isinstance(model, Seq2Seq):
        return spec, None
    if isinstance(model, LSTMForecaster):
        return _forecast_window(model, spec)
    split, _, index = spec.partition(":")
    is_split = split in ("train", "validation", "test") and index.isdigit()
    if (hasattr(getattr(model, "tokenizer", None), "encode") and not is_split
            and not Path(spec).exists()):
        return spec, None  # text: explain() tokenizes and checks it as the Python API does
    (x, lengths), _ = _read_input(model, spec)
    return x, lengths


def _headline(model, a) -> str:
    """What was explained, in words."""
    from .models.language_model import CharLanguageModel
    k = int(a.target[0])
    if a.outputs == "values":
        value = float(a.prediction[0, k])
        return f"explaining output step {k} ({a.label(k)}): forecast {value:.4g}"
    p = f"(p = {float(a.prediction[0, k]):.3f})"
    if "output_position" in a.params:
        return (f"explaining output token {a.params['output_position']} "
                f"{a.params['output_token']!r} {p} of the translation "
                f"{a.params['translation']!r}")
    if isinstance(model, CharLanguageModel):
        return f"explaining the next character {a.label(k)!r} {p}"
    return f"explaining class {a.label(k)} {p}"


def _target_arg(target: str | None):
    """``--target``: a whole number is an index (class, output step or position), anything
    else a name (a class name, or the next character of a language model)."""
    if target is None:
        return None
    t = target.strip()
    return int(t) if t.lstrip("-").isdigit() else target


@app.command("explain")
def explain_cmd(
    model_dir: Annotated[Path, typer.Argument(help="A model directory.")],
    input: Annotated[str, typer.Argument(
        help="Text (token models; the prefix for a language model, the source sentence for "
             "a translation model), test:N / train:N / validation:N, history (forecasters), "
             "or an .npy/.csv/.json file [time, features]")],
    method: Annotated[str, typer.Option(help="Explanation method (see --all).")] = "cd",
    target: Annotated[str | None, typer.Option(
        help="What to explain: a class (index or name; default: predicted), a language "
             "model's next character, a forecaster's output step (default 0) or a "
             "translation's output position (default 0).")] = None,
    translation: Annotated[str | None, typer.Option(
        help="Translation models: explain this output sentence (teacher-forced) instead "
             "of the model's own translation.")] = None,
    all_methods: Annotated[bool, typer.Option("--all", help="Every method side by side.")
                           ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the attribution(s) as JSON.")
                       ] = False,
    html_file: Annotated[Path | None, typer.Option("--html", help="Write an HTML page.")
                         ] = None,
) -> None:
    """Which inputs made the model decide: tokens coloured by score (red for, blue against)."""
    def body():
        from .errors import ModelError
        from .explaining import explain
        from .methods import method_names
        from .modeldir import load
        model = load(model_dir)
        x, lengths = _explain_inputs(model, input)
        extra = {} if translation is None else {"translation": translation}
        names = method_names() if all_methods else [method]
        results, skipped = [], []
        for name in names:
            try:
                results.append(explain(model, x, name, target=_target_arg(target),
                                       lengths=lengths, **extra))
            except ModelError as e:
                if not all_methods:
                    raise
                skipped.append(f"{name}: {e}")
        if as_json:
            sys.stdout.write(json.dumps({"attributions": [a.to_dict() for a in results],
                                         "skipped": skipped}) + "\n")
        else:
            out.print(escape(_headline(model, results[0])), highlight=False)
            for a in results:
                delta = "" if a.delta is None else f"  [dim](delta {float(a.delta[0]):.1e})[/]"
                out.print(f"[bold]{a.method:>28}[/] {_score_line(a)}{delta}")
                out.print(f"{'top:':>28} {escape(_top_line(a))}", highlight=False)
            for s in skipped:
                out.print(f"[dim]skipped {escape(s)}[/]")
        if html_file is not None:
            page = "".join(a.to_html() for a in results)
            html_file.write_text(f"<!doctype html><meta charset='utf-8'><title>lstmlens "
                                 f"explain</title><body>{page}</body>", encoding="utf-8")
    _guard(body)


@app.command()
def generate(
    model_dir: Annotated[Path, typer.Argument(help="A language model directory.")],
    prompt: Annotated[str, typer.Option(help="Text to continue (empty: start a new line).")
                      ] = "",
    length: Annotated[int, typer.Option(min=1, help="Characters to generate.")] = 200,
    temperature: Annotated[float, typer.Option(help="Sampling temperature (0 = greedy).")
                           ] = 1.0,
    seed: Annotated[int | None, typer.Option(help="Seed for sampling.")] = None,
) -> None:
    """Continue a prompt with a character language model."""
    def body():
        from .modeldir import load
        from .models.language_model import generate as run
        text = run(load(model_dir), prompt, length=length, temperature=temperature, seed=seed)
        out.print(escape(prompt + text), highlight=False)
    _guard(body)


@app.command()
def forecast(
    model_dir: Annotated[Path, typer.Argument(help="A forecaster model directory.")],
    horizon: Annotated[int | None, typer.Option(min=1, help="Steps ahead (default: the "
                                                "trained horizon; longer is autoregressive).")
                       ] = None,
    history: Annotated[Path | None, typer.Option(help="A .csv or .npy series to continue "
                                                 "(default: the end of the training data).")
                       ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the values as JSON.")] = False,
) -> None:
    """Forecast the next values of a series."""
    def body():
        from .modeldir import load
        from .models.forecaster import forecast as run
        hist = None
        if history is not None:
            from .datasets.timeseries import load_series_file
            hist = load_series_file(history).values
        values = run(load(model_dir), hist, horizon)
        if as_json:
            sys.stdout.write(json.dumps({"forecast": [float(v) for v in values]}) + "\n")
        else:
            out.print(" ".join(f"{float(v):.4g}" for v in values))
    _guard(body)


@app.command()
def predict(
    model_dir: Annotated[Path, typer.Argument(help="A classifier model directory.")],
    input: Annotated[str, typer.Argument(
        help="Text (token models), test:N, a .wav file (digits), or an .npy/.csv/.json file "
             "[time, features]")],
) -> None:
    """The class probabilities of a classifier for one input."""
    def body():
        import torch

        from .modeldir import load
        model = load(model_dir)
        label = None
        if input.lower().endswith(".wav"):  # spoken digits: audio → MFCC frames → LSTM
            from .tasks.digits import predict_audio
            _, table = predict_audio(model, input)
            classes = list(table)
            probs = torch.tensor([table[c] for c in classes])
        else:
            (x, lengths), label = _read_input(model, input)
            with torch.no_grad():
                probs = torch.softmax(model(x, lengths), -1)[0]
            classes = model.meta.get("classes") or [str(i) for i in range(len(probs))]
        order = torch.argsort(probs, descending=True).tolist()
        for i in order[:5]:
            out.print(f"{escape(str(classes[i])):>20}  {float(probs[i]):.3f}")
        if label is not None:
            out.print(f"true class: {escape(str(classes[label]))}")
    _guard(body)


@app.command()
def translate(
    model_dir: Annotated[Path, typer.Argument(help="A translation model directory.")],
    text: Annotated[str, typer.Argument(help="English text to translate.")],
    beam: Annotated[int, typer.Option(min=1, help="Beam size (1 = greedy).")] = 5,
    truncate: Annotated[bool, typer.Option(help="Cut text longer than the model's limit.")
                        ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Tokens, score and attention.")
                       ] = False,
) -> None:
    """Translate with a seq2seq model; --json adds the attention weights of every word."""
    def body():
        from .decoding import translate as run
        from .modeldir import load
        result = run(load(model_dir), text, beam=beam, truncate=truncate)
        if as_json:
            doc = result.to_json()
            sys.stdout.write((doc if isinstance(doc, str) else json.dumps(doc)) + "\n")
        else:
            out.print(escape(result.text))
    _guard(body)


@app.command()
def train(
    task: Annotated[str, typer.Argument(help="sentiment, textgen, translation, speech, digits, "
                                             "timeseries, tomita, brackets or planted")],
    out_dir: Annotated[Path | None, typer.Option("--out", help="Model directory to write "
                                                 "(default runs/TASK).")] = None,
    data: Annotated[str | None, typer.Option(help="Use this file or folder instead of the "
                                                  "pinned download.")] = None,
    epochs: Annotated[int | None, typer.Option(min=1, help="Maximum epochs.")] = None,
    seed: Annotated[int, typer.Option(help="Seed for splits, initialisation, batches.")] = 0,
    quick: Annotated[bool, typer.Option(help="Small, fast settings (for tests).")] = False,
    grammar: Annotated[int | None, typer.Option(help="tomita: the grammar, 1..7.")] = None,
    corpus: Annotated[str | None, typer.Option(help="textgen: kjv or code.")] = None,
    series: Annotated[str | None, typer.Option(help="timeseries: co2, sunspots or a file.")
                      ] = None,
    horizon: Annotated[int | None, typer.Option(help="timeseries: steps to forecast.")] = None,
    max_seconds: Annotated[float | None, typer.Option(
        help="textgen, translation: training time budget in seconds.")] = None,
) -> None:
    """Train a reference model on real data and save its model directory."""
    def body():
        from .tasks import train_task
        options = {k: v for k, v in dict(grammar=grammar, corpus=corpus, series=series,
                                         horizon=horizon, max_seconds=max_seconds).items()
                   if v is not None}
        result = train_task(task, out_dir, quick=quick, epochs=epochs, seed=seed, data=data,
                            console=out, **options)
        test = result.metrics.get("test", {})
        out.print(f"saved {result.out}; test: " + json.dumps(test))
        for name, vals in result.metrics.get("baselines", {}).items():
            out.print(f"  baseline {name}: " + json.dumps(vals))
    _guard(body)


from .cli_evaluate import evaluate_cmd  # noqa: E402

app.command("evaluate")(evaluate_cmd)

from .cli_index import index_cmd  # noqa: E402

app.command("index")(index_cmd)


from .cli_rules import rules_cmd  # noqa: E402

app.command("rules")(rules_cmd)
from . import cli_automaton  # noqa: E402, F401  (registers `lstmlens automaton`)
from .cli_neurons import neurons_app, report_cmd  # noqa: E402  (`neurons`, `report`)

app.add_typer(neurons_app, name="neurons")
app.command("report")(report_cmd)
from . import cli_serve  # noqa: E402, F401  (registers `lstmlens serve`)

if __name__ == "__main__":
    app()
