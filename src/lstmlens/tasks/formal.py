"""Formal languages: recognise a Tomita grammar (``tomita``) or balanced brackets (``brackets``).

A one-layer LSTM reads the start symbol ``^`` and then the string, one character per step,
and says whether the string is in the language. It trains on lengths ``0..N`` and is tested
on unseen strings up to ``2N`` long; the language's minimal DFA is saved in the model
directory's meta (``meta["dfa"]``) as the ground truth for automaton extraction.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console
from torch import nn

from ..batching import pad_batch
from ..datasets import SequenceData
from ..datasets.formal import (
    DFA,
    START,
)
from ..datasets.formal_data import (
    FormalSplits,
    LabelledStrings,
    brackets_data,
    tomita_data,
)
from ..errors import InputError
from ..modeldir import save
from ..models import ClassifierConfig, LSTMClassifier
from ..tokenizers import Tokenizer
from ..training import evaluate, fit, predict_logits
from . import TaskResult, register_task

__all__ = ["PrefixClassification", "PrefixLabelled", "encode_strings", "formal_tokenizer",
           "prefix_labelled", "train_brackets", "train_tomita"]

CLASSES = ["not in the language", "in the language"]

# Default settings (full) and the quick ones used by tests (a few seconds of training).
FULL = dict(per_length=100, test_per_length=50, hidden_size=32, embedding_dim=8, epochs=20,
            batch_size=32, lr=1e-2, patience=30, anneal_epochs=10)
QUICK = dict(per_length=30, test_per_length=15, hidden_size=16, embedding_dim=8, epochs=8,
             batch_size=32, lr=1e-2, patience=8, anneal_epochs=0)
# Which labels to learn from, measured with these settings: Tomita 5 and 6 (parity, counting
# mod 3) learn nothing beyond what the length's parity tells from whole-string labels (test
# accuracy 74% and 48%) but reach 100% with every prefix labelled; Tomita 3 and 7 generalise
# to longer strings better from whole-string labels (100% against 99.7% and 98.5%).
PREFIX_SUPERVISED = {5, 6}


def formal_tokenizer(alphabet: str) -> Tokenizer:
    """The character tokenizer of an alphabet plus the start symbol ``^`` (ids 2, 3, ...).

    Examples
    --------
    >>> formal_tokenizer("01").encode("^0110")
    [4, 2, 3, 3, 2]
    """
    if START in alphabet:
        raise InputError(f"the alphabet {alphabet!r} must not contain the start symbol {START!r}")
    return Tokenizer(level="char", lowercase=False, max_vocab=None).fit([alphabet + START])


def encode_strings(strings: LabelledStrings, tokenizer: Tokenizer) -> SequenceData:
    """Token ids of ``^`` + each string (so the empty string is one step), with labels.

    Examples
    --------
    >>> from lstmlens.datasets.formal_data import LabelledStrings
    >>> data = encode_strings(LabelledStrings(["", "01"], [1, 0]), formal_tokenizer("01"))
    >>> [x.tolist() for x in data.inputs]
    [[4], [4, 2, 3]]
    """
    inputs = [np.array(tokenizer.encode(START + s), dtype=np.int64) for s in strings.strings]
    return SequenceData(inputs, strings.labels)


def _length_metrics(model: torch.nn.Module, strings: LabelledStrings, data: SequenceData,
                    max_length: int) -> dict[str, Any]:
    """Accuracy overall, per class (balanced), on lengths ≤ N and > N, and per length."""
    pred = predict_logits(model, data).argmax(1).numpy()
    y, lengths = strings.labels, strings.lengths
    ok = pred == y
    out: dict[str, Any] = {"n": int(len(y)), "errors": int((~ok).sum())}
    recalls = [float(ok[y == c].mean()) for c in (0, 1) if (y == c).any()]
    out["balanced_accuracy"] = float(np.mean(recalls))
    for name, sel in ((f"accuracy_lengths_0_{max_length}", lengths <= max_length),
                      (f"accuracy_lengths_{max_length + 1}_{2 * max_length}",
                       lengths > max_length)):
        if sel.any():
            out[name] = float(ok[sel].mean())
    out["accuracy_by_length"] = {int(n): float(ok[lengths == n].mean())
                                 for n in np.unique(lengths)}
    return out


@dataclass
class PrefixLabelled:
    """Token ids of ``^`` + each string, its label, and the label of every prefix
    (``prefix_labels[i][t]``: is the string's first ``t`` symbols in the language)."""

    inputs: list[np.ndarray]
    labels: np.ndarray
    prefix_labels: list[np.ndarray]


def prefix_labelled(strings: LabelledStrings, tokenizer: Tokenizer, dfa: DFA) -> PrefixLabelled:
    """Encode ``strings`` and label every prefix with the language's DFA.

    Examples
    --------
    >>> from lstmlens.datasets.formal import tomita_dfa
    >>> from lstmlens.datasets.formal_data import LabelledStrings
    >>> data = prefix_labelled(LabelledStrings(["10"], [1]), formal_tokenizer("01"),
    ...                        tomita_dfa(2))
    >>> data.prefix_labels[0].tolist()
    [1, 0, 1]
    """
    enc = encode_strings(strings, tokenizer)
    prefix = [np.array([q in dfa.accepting for q in dfa.states(s)], dtype=np.int64)
              for s in strings.strings]
    return PrefixLabelled(enc.inputs, enc.labels, prefix)


class PrefixClassification:
    """Cross-entropy on the prediction after every prefix (a dense signal: counting
    languages such as Tomita 5 and 6 are learnt at once), accuracy on whole strings.

    The prediction after the last step is exactly the classifier's output, so the trained
    model is an ordinary :class:`LSTMClassifier` (``pooling="last"``).
    """

    monitor = "accuracy"
    higher_is_better = True

    def size(self, data: PrefixLabelled) -> int:
        return len(data.inputs)

    def batch(self, data: PrefixLabelled, idx: np.ndarray):
        x, lengths = pad_batch([data.inputs[i] for i in idx])  # (B, T), (B,)
        y, _ = pad_batch([data.prefix_labels[i] for i in idx], pad_value=-100)  # (B, T)
        return x, lengths, y

    def step(self, model: LSTMClassifier, batch):
        x, lengths, y = batch
        logits = model.head(model.encode(x, lengths))  # (B, T, 2)
        loss = nn.functional.cross_entropy(logits.flatten(0, 1), y.flatten(), ignore_index=-100)
        rows = torch.arange(len(lengths))
        correct = int((logits[rows, lengths - 1].argmax(1) == y[rows, lengths - 1]).sum())
        return loss, {"loss": loss.item() * len(lengths), "accuracy": correct}, len(lengths)


def _train_formal(splits: FormalSplits, out: str | Path, *, quick: bool, epochs: int | None,
                  seed: int, progress: bool, console: Console, meta: dict[str, Any],
                  settings: dict[str, Any]) -> TaskResult:
    s = {**(QUICK if quick else FULL), **{k: v for k, v in settings.items() if v is not None}}
    if epochs is not None:
        s["epochs"] = epochs
    if s["supervision"] not in ("prefixes", "strings"):
        raise InputError(f"supervision must be 'prefixes' or 'strings', got {s['supervision']!r}")
    try:
        s["hidden_size"], s["lr"] = int(str(s["hidden_size"])), float(s["lr"])
    except ValueError:
        s["hidden_size"] = s["lr"] = None
    if s["hidden_size"] is None or not 1 <= s["hidden_size"] <= 4096 or not 0 < s["lr"] < 1:
        raise InputError(f"hidden_size must be a whole number 1..4096 and lr a number in "
                         f"(0, 1); got {settings.get('hidden_size')!r} and "
                         f"{settings.get('lr')!r}")
    tok = formal_tokenizer(splits.alphabet)
    train, val, test = (encode_strings(x, tok) for x in (splits.train, splits.validation,
                                                          splits.test))
    n = splits.max_length
    console.print(f"{meta['language']}: {len(train)} train (lengths 0..{n}), {len(val)} "
                  f"validation, {len(test)} test strings (lengths 1..{2 * n}); minimal DFA "
                  f"{splits.dfa.num_states} states")
    torch.manual_seed(seed)
    model = LSTMClassifier(ClassifierConfig(
        num_classes=2, vocab_size=len(tok), embedding_dim=s["embedding_dim"],
        hidden_sizes=[s["hidden_size"]]))
    objective, fit_train, fit_val = None, train, val
    if s["supervision"] == "prefixes":
        objective = PrefixClassification()
        fit_train, fit_val = (prefix_labelled(x, tok, splits.dfa)
                              for x in (splits.train, splits.validation))
    stages = []  # the main run, then a few epochs at a tenth of the learning rate
    for i, (n_epochs, lr) in enumerate(((s["epochs"], s["lr"]),
                                        (s["anneal_epochs"], s["lr"] / 10))):
        if n_epochs:
            stages.append(fit(model, fit_train, fit_val, objective=objective, epochs=n_epochs,
                              batch_size=s["batch_size"], lr=lr, patience=s["patience"],
                              seed=seed + i, progress=progress).to_dict())
    history = {"stages": stages, "seconds": sum(h["seconds"] for h in stages)}
    test_metrics = {**evaluate(model, test), **_length_metrics(model, splits.test, test, n)}
    # the class most distinct training strings have (train repeats the rarer class's strings)
    distinct = dict(zip(splits.train.strings, splits.train.labels.tolist(), strict=True))
    majority = int(np.bincount(list(distinct.values()), minlength=2).argmax())
    y, lengths = splits.test.labels, splits.test.lengths
    baselines = {"majority": {
        "accuracy": float(np.mean(y == majority)),
        "balanced_accuracy": 0.5,  # a constant answer gets one class all right, the other none
        f"accuracy_lengths_0_{n}": float(np.mean(y[lengths <= n] == majority)),
        f"accuracy_lengths_{n + 1}_{2 * n}": float(np.mean(y[lengths > n] == majority)),
        "class": CLASSES[majority]}}
    metrics = {"test": test_metrics, "validation": evaluate(model, val),
               "baselines": baselines, "training": history}
    meta = {**meta, "classes": CLASSES, "alphabet": splits.alphabet, "start_symbol": START,
            "max_length": n, "dfa": splits.dfa.to_json(), "data": splits.info, "seed": seed,
            "settings": s}
    save(model, out, metrics=metrics, tokenizer=tok.to_json(), meta=meta)
    model.meta, model.metrics, model.tokenizer = meta, metrics, tok
    console.print(f"test accuracy {test_metrics['accuracy']:.4f} ({test_metrics['errors']} "
                  f"errors in {test_metrics['n']}); majority baseline "
                  f"{baselines['majority']['accuracy']:.4f}; {history['seconds']:.0f} s of "
                  "training")
    return TaskResult(model=model, out=Path(out), metrics=metrics)


def _no_data(name: str, data: str | None) -> None:
    if data is not None:
        raise InputError(f"the {name} task generates its own strings; it takes no data "
                         f"(got data={data!r})")


@register_task("tomita")
def train_tomita(
    out: str | Path, *, quick: bool = False, epochs: int | None = None, seed: int = 0,
    data: str | None = None, progress: bool = True, console: Console | None = None,
    grammar: int | str | None = None, max_length: int = 20, per_length: int | None = None,
    hidden_size: int | None = None, lr: float | None = None, supervision: str | None = None,
) -> TaskResult:
    """Train an LSTM to recognise Tomita grammar ``grammar`` (1..7) and save it to ``out``.

    Examples
    --------
    >>> from lstmlens.tasks import train_task
    >>> result = train_task("tomita", "runs/tomita4", grammar=4)  # doctest: +SKIP
    >>> result.metrics["test"]["accuracy"]  # doctest: +SKIP
    """
    console = console or Console()
    _no_data("tomita", data)
    if grammar is None:
        raise InputError("the tomita task needs the option grammar=1..7")
    q = QUICK if quick else FULL
    splits = tomita_data(grammar, max_length=max_length, per_length=per_length or q["per_length"],
                         test_per_length=q["test_per_length"], seed=seed)
    k = int(str(grammar).strip())  # tomita_data has checked it is 1..7
    if supervision is None:
        supervision = "prefixes" if k in PREFIX_SUPERVISED else "strings"
    meta = {"task": f"formal/tomita{k}", "language": f"Tomita grammar {k}", "grammar": k}
    return _train_formal(splits, out, quick=quick, epochs=epochs, seed=seed, progress=progress,
                         console=console, meta=meta,
                         settings={"hidden_size": hidden_size, "lr": lr,
                                   "supervision": supervision})


@register_task("brackets")
def train_brackets(
    out: str | Path, *, quick: bool = False, epochs: int | None = None, seed: int = 0,
    data: str | None = None, progress: bool = True, console: Console | None = None,
    max_length: int = 24, max_depth: int = 4, pairs: str = "()", per_length: int | None = None,
    hidden_size: int | None = None, lr: float | None = None, supervision: str | None = None,
) -> TaskResult:
    """Train an LSTM to recognise balanced brackets (``pairs`` ``"()"`` or ``"()[]"``) nested
    at most ``max_depth`` deep, and save it to ``out``.

    Examples
    --------
    >>> from lstmlens.tasks import train_task
    >>> result = train_task("brackets", "runs/brackets")  # doctest: +SKIP
    """
    console = console or Console()
    _no_data("brackets", data)
    q = QUICK if quick else FULL
    splits = brackets_data(max_length=max_length, max_depth=max_depth, pairs=pairs,
                           per_length=per_length or q["per_length"],
                           test_per_length=q["test_per_length"], seed=seed)
    meta = {"task": "formal/brackets", "language": f"balanced {pairs}, depth ≤ {max_depth}",
            "pairs": pairs, "max_depth": int(max_depth)}
    return _train_formal(splits, out, quick=quick, epochs=epochs, seed=seed, progress=progress,
                         console=console, meta=meta,
                         settings={"hidden_size": hidden_size, "lr": lr,
                                   "supervision": supervision or "strings"})


