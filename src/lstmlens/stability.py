"""Stability and data dependence (seed §8): do explanations survive retraining?

Variant models share the evaluated model's architecture and tokenizer (so token ids, and
explanations, line up) and are retrained with :func:`lstmlens.fit` on the data set the
model's meta records: with other seeds, on each half of the training data, and on permuted
labels (the data-randomisation test of :mod:`lstmlens.sanity`). Agreement of two models'
explanations of one sentence is the Spearman rank correlation of their scores.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.stats import spearmanr

from .errors import InputError, ModelError
from .textdata import TextData, TextSplits, encode_texts, model_tokenizer


def task_splits(model: Any) -> TextSplits:
    """The train / validation / test texts of the data set recorded in ``model.meta``
    (the planted-token and sentiment tasks)."""
    meta = getattr(model, "meta", None) or {}
    task = meta.get("task")
    if task == "planted":
        from .datasets.planted import load_planted
        g = meta["generation"]
        keys = ("positive", "negative", "min_length", "max_length", "max_planted")
        return load_planted(g["n"]["train"], g["n"]["validation"], g["n"]["test"],
                            seed=g["seed"], vocab=g["neutral_words"],
                            **{k: g[k] for k in keys})
    if task == "sentiment":
        from .tasks.sentiment import load_text_splits
        d = meta.get("data", {})
        if "path" in d:
            return load_text_splits(d["path"], seed=meta.get("seed", 0),
                                    text_column=d.get("text_column", "text"),
                                    label_column=d.get("label_column", "label"))
        return load_text_splits(None, source=d.get("corpus", "movies"),
                                seed=meta.get("seed", 0))
    raise InputError(f"this model's meta records no data set lstmlens can reload (task "
                     f"{task!r}); pass the texts yourself (data=..., --data FILE)")


@dataclass
class Variants:
    """Retrained copies of a model: ``seeds`` (other seeds, all the data), ``halves``
    (two disjoint halves of the training data), ``permuted`` (labels shuffled)."""

    seeds: list[Any] = field(default_factory=list)
    halves: list[Any] = field(default_factory=list)
    permuted: Any = None
    info: dict[str, Any] = field(default_factory=dict)


def train_copy(model: Any, train: TextData, *, seed: int, epochs: int, lr: float,
               batch_size: int = 64) -> tuple[Any, float]:
    """A freshly initialised model of ``model``'s architecture trained on ``train``;
    returns it and its training accuracy."""
    import torch

    from .training import evaluate as accuracy_of
    from .training import fit
    tok = model_tokenizer(model)
    max_len = (getattr(model, "meta", None) or {}).get("max_length")
    data = encode_texts(train, tok, max_len)
    new = copy.deepcopy(model)
    # derived, so that seed s never repeats the initialisation of a model trained with seed s
    torch.manual_seed(int(np.random.SeedSequence([seed, 0x57AB]).generate_state(1)[0]))
    for mod in new.modules():
        if mod is not new and hasattr(mod, "reset_parameters"):
            mod.reset_parameters()
    fit(new, data, None, epochs=epochs, lr=lr, seed=seed, batch_size=batch_size,
        progress=False)
    return new.eval(), float(accuracy_of(new, data)["accuracy"])


def train_variants(model: Any, train: TextData | None = None, *, seeds: Sequence[int] = (1, 2),
                   halves: bool = True, permuted: bool = True, epochs: int | None = None,
                   lr: float | None = None, seed: int = 0, permuted_texts: int | None = 2000
                   ) -> Variants:
    """Retrain ``model``'s architecture as :class:`Variants` (quick settings by default).

    Parameters
    ----------
    train
        Training texts; default the training split recorded in the model's meta.
    epochs
        Epochs per model (default 3; the permuted-label model gets 3× as many, as it must
        memorise).
    lr
        Learning rate (default the one in the model's meta, else 1e-2).
    permuted_texts
        The permuted-label model is trained on at most this many texts (a random subset),
        so that it can memorise its labels in few epochs; ``None``: all of them.

    Examples
    --------
    >>> v = train_variants(lstmlens.load("runs/planted"), seeds=(1,), epochs=2)  # doctest: +SKIP
    """
    meta = getattr(model, "meta", None) or {}
    train = train if train is not None else task_splits(model).train
    if len(train) < 4 or train.labels is None:
        raise InputError("retraining variants needs at least 4 labelled training texts")
    epochs = epochs or 3
    lr = lr or (meta.get("training") or {}).get("lr") or 1e-2
    v = Variants(info={"epochs": epochs, "lr": lr, "train_texts": len(train)})
    for s in seeds:
        m, acc = train_copy(model, train, seed=s, epochs=epochs, lr=lr)
        v.seeds.append(m)
        v.info.setdefault("seed_train_accuracy", []).append(acc)
    rng = np.random.default_rng(seed)
    if halves:
        order = rng.permutation(len(train))
        for j, part in enumerate((order[: len(order) // 2], order[len(order) // 2:])):
            m, acc = train_copy(model, train.subset(np.sort(part)), seed=seed + 10 + j,
                                epochs=epochs, lr=lr)
            v.halves.append(m)
            v.info.setdefault("half_train_accuracy", []).append(acc)
    if permuted:
        keep = np.arange(len(train))
        if permuted_texts is not None and len(train) > permuted_texts:
            keep = np.sort(rng.choice(len(train), size=permuted_texts, replace=False))
        part = train.subset(keep)
        shuffled = TextData(part.texts, rng.permutation(part.labels), list(train.classes))
        v.info["permuted_texts"] = len(part)
        v.permuted, acc = train_copy(model, shuffled, seed=seed + 20, epochs=3 * epochs, lr=lr)
        v.info["permuted_train_accuracy"] = acc
    return v


def rank_agreement(a: Sequence[np.ndarray], b: Sequence[np.ndarray],
                   absolute: bool = False) -> np.ndarray:
    """Per-sentence Spearman ρ of two score lists (NaN where undefined: < 3 tokens or a
    constant score vector).

    Examples
    --------
    >>> float(rank_agreement([np.array([1., 2., 3.])], [np.array([10., 20., 30.])])[0])
    1.0
    """
    out = np.full(len(a), np.nan)
    for i, (x, y) in enumerate(zip(a, b, strict=True)):
        if absolute:
            x, y = np.abs(x), np.abs(y)
        if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
            continue
        out[i] = spearmanr(x, y).statistic
    return out


def stability_report(sample: Any, target: np.ndarray, scores: dict[str, list[np.ndarray]],
                     variants: Variants, *, ci: Callable, seed: int = 0,
                     batch_size: int = 64, options: dict[str, dict[str, Any]] | None = None
                     ) -> dict[str, Any]:
    """Agreement of each method between the seed models and between the half-data models.

    ``seeds`` is the mean over pairs of seed models (the evaluated model included) of the
    per-sentence Spearman ρ; ``halves`` the ρ between the two half-data models. Every model
    explains the evaluated model's predicted class.
    """
    from .evaluation import explain_sample
    seed_models = list(variants.seeds)
    if not seed_models and not variants.halves:
        raise InputError("the stability check needs variant models (seeds or halves)")
    out: dict[str, Any] = {"methods": {}, "models": {"seeds": len(seed_models) + 1,
                                                     "halves": len(variants.halves)},
                           "training": variants.info}
    for m, base in scores.items():
        def expl(model, k, m=m):  # k: a distinct seed for each model's random ranking
            return explain_sample(model, sample, m, target, batch_size, seed + 1 + k,
                                  (options or {}).get(m))
        try:
            runs = [base] + [expl(v, k) for k, v in enumerate(seed_models)]
            halves = [expl(v, 10 + k) for k, v in enumerate(variants.halves)]
        except ModelError as e:
            out["methods"][m] = {"skipped": str(e)}
            continue
        pairs = [rank_agreement(runs[i], runs[j]) for i in range(len(runs))
                 for j in range(i + 1, len(runs))]
        with warnings.catch_warnings():  # a sentence undefined in every pair stays NaN
            warnings.simplefilter("ignore", RuntimeWarning)
            seeds_rho = (np.nanmean(np.stack(pairs), 0) if pairs
                         else np.full(len(sample), np.nan))
        halves_rho = (rank_agreement(halves[0], halves[1]) if len(halves) == 2
                      else np.full(len(sample), np.nan))
        out["methods"][m] = {"seeds": ci(seeds_rho), "halves": ci(halves_rho)}
    return out
