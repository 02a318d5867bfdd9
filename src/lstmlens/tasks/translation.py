"""Translation: English → French Bible verses with an attention encoder–decoder LSTM.

The model (:class:`~lstmlens.models.seq2seq.Seq2Seq`) is trained with teacher forcing under a
time budget (``max_seconds``), the epoch with the best validation token accuracy is
kept, and corpus BLEU is measured on the fixed test pairs for greedy decoding and beam search,
beside the word-by-word IBM Model 1 dictionary baseline learned from the same training pairs.
"""

from __future__ import annotations

import copy
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console
from torch import nn

from ..bleu_baseline import WordDictionary, corpus_bleu
from ..datasets.translation import ParallelText, load_translation
from ..decoding import translate_batch
from ..errors import InputError
from ..modeldir import save
from ..models.seq2seq import (
    ParallelIds,
    Seq2Seq,
    Seq2SeqConfig,
    TeacherForcing,
    TokenizerPair,
)
from ..tokenizers import BOS, EOS, PAD, UNK, Tokenizer
from ..training import History, evaluate, seed_everything, train_step
from . import TaskResult, register_task

__all__ = ["bleu_scores", "fit_seq2seq", "train_translation"]


def _length_batches(data: ParallelIds, batch_size: int,
                    rng: np.random.Generator) -> list[np.ndarray]:
    """Shuffled batches of pairs of similar target length (less padding, same pairs)."""
    noisy = np.array([len(t) for t in data.target]) + rng.uniform(0, 2, len(data))
    order = np.argsort(noisy, kind="stable")
    chunks = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    return [chunks[k] for k in rng.permutation(len(chunks))]


def fit_seq2seq(model: nn.Module, train: ParallelIds, validation: ParallelIds | None = None, *,
                epochs: int = 100, batch_size: int = 32, lr: float = 2e-3,
                max_seconds: float | None = 300.0, clock: str = "cpu", patience: int = 6,
                clip: float = 1.0, label_smoothing: float = 0.1, seed: int = 0,
                progress: bool = True, console: Console | None = None) -> History:
    """Train with Adam under a time budget; keep the weights of the best validation epoch.

    Like :func:`lstmlens.training.fit` with the :class:`TeacherForcing` objective, plus
    ``max_seconds``: training stops after the batch that crosses the budget, and the part
    epoch is validated like a full one. ``clock="cpu"`` counts the CPU time of this process
    (all its threads), so the work done does not depend on other load on the machine; as
    training keeps at least one core busy, on an otherwise idle machine it ends within
    ``max_seconds`` of wall time too. ``clock="wall"`` counts wall time. Batches group
    pairs of similar target length; ``label_smoothing`` applies to the training gradient
    only (the reported losses are plain cross-entropy). The learning rate halves when
    validation token accuracy stalls for two epochs.

    Examples
    --------
    >>> history = fit_seq2seq(model, train_ids, val_ids, max_seconds=60)  # doctest: +SKIP
    """
    objective = TeacherForcing(label_smoothing)
    if len(train) == 0:
        raise InputError("the training set is empty")
    if epochs < 1 or batch_size < 1:
        raise InputError("epochs and batch_size must be ≥ 1")
    if max_seconds is not None and max_seconds <= 0:
        raise InputError(f"max_seconds must be > 0 (or None for no budget), got {max_seconds}")
    if clock not in ("cpu", "wall"):
        raise InputError(f"clock must be 'cpu' (process CPU time) or 'wall', got {clock!r}")
    now = time.process_time if clock == "cpu" else time.perf_counter
    rng = seed_everything(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="max", factor=0.5, patience=1)
    hist = History()
    best_key, best_state, bad = None, None, 0
    start, wall_start = now(), time.perf_counter()
    out_of_time = False
    for epoch in range(1, epochs + 1):
        model.train()
        sums = {"loss": 0.0, "token_accuracy": 0.0}
        seen = 0
        for idx in _length_batches(train, batch_size, rng):
            s, n = train_step(model, objective, objective.batch(train, idx), opt, clip)
            for k, v in s.items():
                sums[k] += float(v)
            seen += n
            if max_seconds is not None and now() - start > max_seconds:
                out_of_time = True
                break
        row: dict[str, float] = {"epoch": epoch, **{k: v / seen for k, v in sums.items()},
                                 "lr": opt.param_groups[0]["lr"],
                                 "seconds": time.perf_counter() - wall_start,
                                 f"{clock}_seconds": now() - start}
        if validation is not None and len(validation):
            v = evaluate(model, validation, objective)
            row.update({f"val_{k}": val for k, val in v.items()})
            sched.step(v["token_accuracy"])
            key = (v["token_accuracy"], -v["loss"])
            if best_key is None or key > best_key:
                best_key, best_state, bad = key, copy.deepcopy(model.state_dict()), 0
                hist.best_epoch = epoch
            else:
                bad += 1
        else:
            hist.best_epoch = epoch
        hist.epochs.append(row)
        if progress and console is not None:
            console.print(f"epoch {epoch:3d}  {row[f'{clock}_seconds']:6.0f} {clock} s  "
                          f"loss {row['loss']:.3f}  token acc {row['token_accuracy']:.3f}" +
                          (f"  val loss {row['val_loss']:.3f}  val token acc "
                           f"{row['val_token_accuracy']:.3f}" if "val_loss" in row else ""))
        if bad >= patience or out_of_time:
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    hist.seconds = time.perf_counter() - wall_start
    return hist


def bleu_scores(model: Seq2Seq, tokenizers: TokenizerPair, data: ParallelText, beam: int = 5,
                examples: int = 5) -> dict[str, Any]:
    """Corpus BLEU of ``data`` translated greedily, by beam search, and greedily without
    copying unknown words (``greedy_no_copy``); plus a few example translations.

    Sources longer than the model's limit are truncated (none are, within one data set).

    Examples
    --------
    >>> bleu_scores(model, pair, splits.test)["greedy"]["bleu"]  # doctest: +SKIP
    19.01
    """
    out: dict[str, Any] = {}
    hyps: dict[str, list[str]] = {}
    for name, b, copy_unknown in (("greedy", 1, True), (f"beam{beam}", beam, True),
                                  ("greedy_no_copy", 1, False)):
        t0 = time.perf_counter()
        res = translate_batch(model, data.source, beam=b, tokenizers=tokenizers, truncate=True,
                              copy_unknown=copy_unknown)
        hyps[name] = [r.text for r in res]
        out[name] = {**corpus_bleu(hyps[name], data.target),
                     "mean_score": sum(r.score for r in res) / len(res),
                     "seconds": time.perf_counter() - t0}
    out["examples"] = [{"source": data.source[i], "reference": data.target[i],
                        **{name: hyps[name][i] for name in hyps}}
                       for i in range(min(examples, len(data)))]
    return out


def _subset(p: ParallelText, n: int) -> ParallelText:
    return ParallelText(p.source[:n], p.target[:n], p.refs[:n])


@register_task("translation")
def train_translation(
    out: str | Path, *, quick: bool = False, epochs: int | None = None, seed: int = 0,
    data: str | None = None, progress: bool = True, console: Console | None = None,
    max_seconds: float | None = None, clock: str = "cpu", beam: int = 5, max_words: int = 15,
    batch_size: int = 32, lr: float = 2e-3, label_smoothing: float = 0.1,
    input_feeding: bool = False,
) -> TaskResult:
    """Train the English → French attention model on KJV/Louis Segond verse pairs, measure
    test BLEU (greedy and beam) beside the IBM Model 1 word-by-word baseline, save to ``out``.

    The default trains for at most ``max_seconds=300`` seconds of ``clock`` ("cpu": this
    process's CPU time, so the result does not depend on other load; "wall": wall time).
    ``quick`` trains a small model for 12 epochs on the first 1,000 training pairs and tests
    on the first 200 test pairs (no time budget unless ``max_seconds`` is given).

    Examples
    --------
    >>> result = train_translation("runs/translation")  # doctest: +SKIP
    >>> result.metrics["test"]["greedy"]["bleu"] > result.metrics["baselines"][
    ...     "word_dictionary"]["bleu"]  # doctest: +SKIP
    True
    """
    console = console or Console()
    splits = load_translation(data=data, seed=seed, max_words=max_words)
    train, validation, test = splits.train, splits.validation, splits.test
    if quick:
        train, validation, test = _subset(train, 1000), _subset(validation, 150), \
            _subset(test, 200)
    console.print(f"Bible verses (KJV → Louis Segond), ≤ {max_words} words: {len(train)} "
                  f"train, {len(validation)} validation, {len(test)} test pairs "
                  f"(of {splits.stats['kept']} kept, {splits.stats['aligned']} aligned)")
    # Words seen once become <unk> on both sides: the model learns to pass unknown names
    # through <unk>, and decoding copies the source word that <unk> attends to.
    tokenizers = TokenizerPair(
        Tokenizer("word", max_vocab=None, min_count=2).fit(train.source),
        Tokenizer("word", max_vocab=None, min_count=2,
                  specials=[PAD, UNK, BOS, EOS]).fit(train.target))
    longest = max(len(tokenizers.source.split(s)) for s in train.source)
    size = dict(embedding_dim=64, encoder_hidden_size=64, hidden_size=128, attention_size=64) \
        if quick else {}
    config = Seq2SeqConfig(
        src_vocab_size=len(tokenizers.source), tgt_vocab_size=len(tokenizers.target),
        bos_id=tokenizers.target.id(BOS), eos_id=tokenizers.target.id(EOS),
        input_feeding=input_feeding, max_source_length=longest, **size)
    torch.manual_seed(seed)
    model = Seq2Seq(config)
    budget = max_seconds if max_seconds is not None else (None if quick else 300.0)
    load_before = os.getloadavg()[0]
    history = fit_seq2seq(
        model, ParallelIds.encode(train, tokenizers), ParallelIds.encode(validation, tokenizers),
        epochs=epochs or (12 if quick else 100), batch_size=batch_size, lr=lr,
        max_seconds=budget, clock=clock, label_smoothing=label_smoothing, seed=seed,
        progress=progress, console=console)
    training = {**history.to_dict(), "max_seconds": budget, "clock": clock,
                "cpu_threads": torch.get_num_threads(),
                "load_average": [load_before, os.getloadavg()[0]]}
    console.print(f"trained {len(history.epochs)} epochs in {history.seconds:.0f} s wall "
                  f"(best: epoch {history.best_epoch})")
    t0 = time.perf_counter()
    dictionary = WordDictionary().fit(train.pairs)
    baseline = corpus_bleu([dictionary.translate(s) for s in test.source], test.target)
    baseline["seconds"] = time.perf_counter() - t0
    objective = TeacherForcing()
    metrics = {
        "test": {**bleu_scores(model, tokenizers, test, beam=beam),
                 **evaluate(model, ParallelIds.encode(test, tokenizers), objective)},
        "baselines": {"word_dictionary": baseline},
        "validation": evaluate(model, ParallelIds.encode(validation, tokenizers), objective),
        "training": training,
    }
    t = metrics["test"]
    console.print(f"test BLEU: greedy {t['greedy']['bleu']:.2f}, beam {beam} "
                  f"{t[f'beam{beam}']['bleu']:.2f}; word-by-word dictionary "
                  f"{baseline['bleu']:.2f}")
    meta = {"task": "translation/bible_en_fr", "source_language": "en",
            "target_language": "fr", "data": splits.source,
            "split_sizes": {"train": len(train), "validation": len(validation),
                            "test": len(test)},
            "max_source_length": longest, "seed": seed, "quick": quick,
            "bleu": "sacrebleu corpus BLEU, lower-cased, 13a tokens, one reference"}
    save(model, out, metrics=metrics, tokenizer=tokenizers.to_json(), meta=meta)
    model.meta, model.metrics, model.tokenizer = meta, metrics, tokenizers
    return TaskResult(model=model, out=Path(out), metrics=metrics)
