"""Trainable tasks: ``lstmlens train TASK`` finds each one here.

A task is one module with a function registered by ``@register_task("name")`` that trains a
model on its data set and saves a model directory whose ``metrics.json`` holds the test-split
metrics under ``"test"`` and the baselines computed in the same run under ``"baselines"``.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from ..errors import InputError

TASKS: dict[str, Callable[..., TaskResult]] = {}
# Modules that register tasks; imported lazily so that `import lstmlens` stays light.
_MODULES = ["speech", "sentiment", "planted", "textgen", "translation", "timeseries",
            "formal", "digits"]


@dataclass
class TaskResult:
    """What a training task produced: the model, where it was saved, and its metrics."""

    model: Any
    out: Path
    metrics: dict[str, Any] = field(default_factory=dict)


def register_task(name: str):
    """Decorator for ``train(out, *, quick, epochs, seed, data, progress, console, **options)``."""

    def deco(fn: Callable[..., TaskResult]) -> Callable[..., TaskResult]:
        TASKS[name] = fn
        return fn

    return deco


def _load_all() -> None:
    for mod in _MODULES:
        if importlib.util.find_spec(f"{__name__}.{mod}") is not None:  # being written
            importlib.import_module(f"{__name__}.{mod}")


def task_names() -> list[str]:
    _load_all()
    return sorted(TASKS)


def train_task(name: str, out: str | Path | None = None, *, quick: bool = False,
               epochs: int | None = None, seed: int = 0, data: str | None = None,
               progress: bool = True, console: Console | None = None,
               **options: Any) -> TaskResult:
    """Train the task ``name`` and save its model directory (default ``runs/<name>``)."""
    _load_all()
    if name not in TASKS:
        raise InputError(f"unknown task {name!r}; tasks are: {', '.join(sorted(TASKS))}")
    out = Path(out) if out is not None else Path("runs") / name
    return TASKS[name](out, quick=quick, epochs=epochs, seed=seed, data=data,
                       progress=progress, console=console or Console(), **options)
