"""One training loop for every lstmlens model (seed §5: Adam, cross-entropy, accuracy)."""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import torch
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from torch import nn

from .batching import batches, pad_batch
from .errors import InputError


class Labelled(Protocol):
    inputs: list
    labels: np.ndarray


@dataclass
class History:
    """What ``fit`` did: one dict per epoch, the epoch kept, and the time taken."""

    epochs: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"epochs": self.epochs, "best_epoch": self.best_epoch, "seconds": self.seconds}


def seed_everything(seed: int) -> np.random.Generator:
    """Seed torch and return a numpy generator for shuffling."""
    torch.manual_seed(seed)
    return np.random.default_rng(seed)


def predict_logits(model: nn.Module, data: Labelled | list, batch_size: int = 256) -> torch.Tensor:
    """Logits ``[N, classes]`` for every sequence, in order, in eval mode."""
    seqs = data.inputs if hasattr(data, "inputs") else data
    model.eval()
    out = []
    with torch.no_grad():
        for idx in batches(len(seqs), batch_size):
            x, lengths = pad_batch([seqs[i] for i in idx])
            out.append(model(x, lengths))
    return torch.cat(out)


def evaluate(model: nn.Module, data: Labelled, batch_size: int = 256) -> dict[str, float]:
    """Accuracy and mean cross-entropy of ``model`` on ``data``."""
    if len(data.inputs) == 0:
        raise InputError("cannot evaluate on an empty data set")
    logits = predict_logits(model, data, batch_size)
    y = torch.as_tensor(data.labels, dtype=torch.long)
    loss = nn.functional.cross_entropy(logits, y).item()
    acc = (logits.argmax(1) == y).double().mean().item()
    return {"accuracy": acc, "loss": loss}


def fit(
    model: nn.Module,
    train: Labelled,
    validation: Labelled | None = None,
    *,
    epochs: int = 30,
    batch_size: int = 32,
    lr: float = 3e-3,
    patience: int = 8,
    clip: float = 1.0,
    seed: int = 0,
    progress: bool = True,
) -> History:
    """Train with Adam and cross-entropy; keep the weights of the best validation accuracy.

    Stops early when validation accuracy has not improved for ``patience`` epochs (ties are
    broken by the lower validation loss). The progress bar shows loss and accuracy.

    Examples
    --------
    >>> history = fit(model, splits.train, splits.validation, epochs=20)  # doctest: +SKIP
    """
    if len(train.inputs) == 0:
        raise InputError("the training set is empty")
    if epochs < 1 or batch_size < 1:
        raise InputError("epochs and batch_size must be ≥ 1")
    rng = seed_everything(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    y_all = torch.as_tensor(train.labels, dtype=torch.long)
    hist = History()
    best_key, best_state, bad = None, None, 0
    start = time.perf_counter()
    n_batches = -(-len(train.inputs) // batch_size)
    columns = [TextColumn("[bold]epoch {task.fields[epoch]}"), BarColumn(),
               TextColumn("{task.fields[status]}"), TimeElapsedColumn()]
    with Progress(*columns, disable=not progress, transient=False) as bar:
        task = bar.add_task("train", total=epochs * n_batches, epoch=0, status="")
        for epoch in range(1, epochs + 1):
            model.train()
            losses, correct, seen = [], 0, 0
            for idx in batches(len(train.inputs), batch_size, rng):
                x, lengths = pad_batch([train.inputs[i] for i in idx])
                y = y_all[idx]
                logits = model(x, lengths)
                loss = nn.functional.cross_entropy(logits, y)
                opt.zero_grad()
                loss.backward()
                if clip:
                    nn.utils.clip_grad_norm_(model.parameters(), clip)
                opt.step()
                losses.append(loss.item())
                correct += int((logits.argmax(1) == y).sum())
                seen += len(idx)
                bar.update(task, advance=1, epoch=epoch,
                           status=f"loss {np.mean(losses):.3f} acc {correct / seen:.3f}")
            row = {"epoch": epoch, "loss": float(np.mean(losses)), "accuracy": correct / seen}
            if validation is not None and len(validation.inputs):
                v = evaluate(model, validation)
                row.update(val_loss=v["loss"], val_accuracy=v["accuracy"])
                key = (v["accuracy"], -v["loss"])
                if best_key is None or key > best_key:
                    best_key, best_state, bad = key, copy.deepcopy(model.state_dict()), 0
                    hist.best_epoch = epoch
                else:
                    bad += 1
                bar.update(task, status=f"loss {row['loss']:.3f} acc {row['accuracy']:.3f} "
                                        f"val_acc {v['accuracy']:.3f}")
            else:
                hist.best_epoch = epoch
            hist.epochs.append(row)
            if bad >= patience:
                bar.update(task, completed=epochs * n_batches)
                break
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    hist.seconds = time.perf_counter() - start
    return hist
