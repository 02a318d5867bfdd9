"""One training loop for every lstmlens model (seed §5: Adam, a loss, a metric, early stopping).

What differs between tasks — how a batch is built, the loss, the metrics — is an
:class:`Objective`; classification (cross-entropy, accuracy) is the default. Other model
kinds bring their own objective (next-token bits per character, forecast MAE, ...).
"""

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


class Objective(Protocol):
    """How to train and score one kind of model.

    ``step`` returns the mean loss of the batch (to back-propagate), the *sums* of each
    metric over the batch, and the number of items those sums are over.
    """

    monitor: str  # the validation metric that picks the best epoch
    higher_is_better: bool

    def size(self, data: Any) -> int: ...

    def batch(self, data: Any, idx: np.ndarray) -> Any: ...

    def step(self, model: nn.Module, batch: Any) -> tuple[torch.Tensor, dict[str, float], int]: ...


class Classification:
    """Sequences with one label each: cross-entropy loss, accuracy."""

    monitor = "accuracy"
    higher_is_better = True

    def size(self, data: Any) -> int:
        return len(data.inputs)

    def batch(self, data: Any, idx: np.ndarray):
        x, lengths = pad_batch([data.inputs[i] for i in idx])
        return x, lengths, torch.as_tensor(np.asarray(data.labels)[idx], dtype=torch.long)

    def step(self, model: nn.Module, batch):
        x, lengths, y = batch
        logits = model(x, lengths)
        if len(y) and (int(y.min()) < 0 or int(y.max()) >= logits.shape[-1]):
            raise InputError(f"labels must lie in 0..{logits.shape[-1] - 1} (the model's "
                             f"classes), got {int(y.min())}..{int(y.max())}")
        loss = nn.functional.cross_entropy(logits, y)
        correct = int((logits.argmax(1) == y).sum())
        return loss, {"loss": loss.item() * len(y), "accuracy": correct}, len(y)


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


def predict_logits(model: nn.Module, data: Any, batch_size: int = 256) -> torch.Tensor:
    """Logits ``[N, classes]`` of a classifier for every sequence, in order, in eval mode."""
    seqs = data.inputs if hasattr(data, "inputs") else data
    model.eval()
    out = []
    with torch.no_grad():
        for idx in batches(len(seqs), batch_size):
            x, lengths = pad_batch([seqs[i] for i in idx])
            out.append(model(x, lengths))
    return torch.cat(out)


def evaluate(model: nn.Module, data: Any, objective: Objective | None = None,
             batch_size: int = 256) -> dict[str, float]:
    """Mean of each metric of ``objective`` (default: loss and accuracy) over ``data``."""
    objective = objective or Classification()
    n_items = objective.size(data)
    if n_items == 0:
        raise InputError("cannot evaluate on an empty data set")
    model.eval()
    sums: dict[str, float] = {}
    count = 0
    with torch.no_grad():
        for idx in batches(n_items, batch_size):
            _, s, n = objective.step(model, objective.batch(data, idx))
            for k, v in s.items():
                sums[k] = sums.get(k, 0.0) + float(v)
            count += n
    return {k: v / count for k, v in sums.items()}


def train_step(model: nn.Module, objective: Any, batch: Any, opt: torch.optim.Optimizer,
               clip: float | None) -> tuple[dict[str, Any], int]:
    """One optimisation step on ``batch``: the objective's loss, backward, optional gradient
    clipping, update. Returns the objective's summed statistics and the items it counted."""
    loss, stats, n = objective.step(model, batch)
    opt.zero_grad()
    loss.backward()
    if clip:
        nn.utils.clip_grad_norm_(model.parameters(), clip)
    opt.step()
    return stats, n


def fit(
    model: nn.Module,
    train: Any,
    validation: Any | None = None,
    *,
    objective: Objective | None = None,
    epochs: int = 30,
    batch_size: int = 32,
    lr: float = 3e-3,
    patience: int = 8,
    clip: float = 1.0,
    seed: int = 0,
    progress: bool = True,
) -> History:
    """Train with Adam; keep the weights of the best validation score.

    Stops early when the objective's monitored validation metric has not improved for
    ``patience`` epochs (ties are broken by the lower validation loss). The progress bar shows
    loss and metric.

    Examples
    --------
    >>> history = fit(model, splits.train, splits.validation, epochs=20)  # doctest: +SKIP
    """
    objective = objective or Classification()
    n_items = objective.size(train)
    if n_items == 0:
        raise InputError("the training set is empty")
    if epochs < 1 or batch_size < 1:
        raise InputError("epochs and batch_size must be ≥ 1")
    rng = seed_everything(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    hist = History()
    best_key, best_state, bad = None, None, 0
    sign = 1.0 if objective.higher_is_better else -1.0
    mon = objective.monitor
    start = time.perf_counter()
    n_batches = -(-n_items // batch_size)
    columns = [TextColumn("[bold]epoch {task.fields[epoch]}"), BarColumn(),
               TextColumn("{task.fields[status]}"), TimeElapsedColumn()]
    with Progress(*columns, disable=not progress, transient=False) as bar:
        task = bar.add_task("train", total=epochs * n_batches, epoch=0, status="")
        for epoch in range(1, epochs + 1):
            model.train()
            sums: dict[str, float] = {}
            seen = 0
            for idx in batches(n_items, batch_size, rng):
                s, n = train_step(model, objective, objective.batch(train, idx), opt, clip)
                for k, v in s.items():
                    sums[k] = sums.get(k, 0.0) + float(v)
                seen += n
                bar.update(task, advance=1, epoch=epoch,
                           status=f"loss {sums['loss'] / seen:.3f} {mon} {sums[mon] / seen:.3f}")
            row = {"epoch": epoch, **{k: v / seen for k, v in sums.items()}}
            if validation is not None and objective.size(validation):
                v = evaluate(model, validation, objective)
                row.update({f"val_{k}": val for k, val in v.items()})
                key = (sign * v[mon], -v["loss"])
                if best_key is None or key > best_key:
                    best_key, best_state, bad = key, copy.deepcopy(model.state_dict()), 0
                    hist.best_epoch = epoch
                else:
                    bad += 1
                bar.update(task, status=f"loss {row['loss']:.3f} {mon} {row[mon]:.3f} "
                                        f"val_{mon} {v[mon]:.3f}")
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
