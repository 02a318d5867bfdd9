"""Spread independent pieces of tensor work over Python threads, one torch thread each.

Loops of many small tensor operations (one LSTM step of a few hundred rows) gain little
from torch's intra-op threads: each operation is too small to split well. Independent
pieces of such work run faster side by side, one per core, since torch releases the GIL
inside every operation.

The threads are made once and kept (a new thread's first torch call costs milliseconds,
as much as a whole small piece of work); a process forked from this one makes its own.
Inside a piece, ``map_threads`` runs its pieces one after another: a piece already has
its core.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import torch

P = TypeVar("P")
R = TypeVar("R")

_POOLS: dict[int, ThreadPoolExecutor] = {}
_LOCK = threading.Lock()
_INSIDE = threading.local()  # set on the pool's threads


def _start_worker() -> None:
    _INSIDE.worker = True
    torch.set_num_threads(1)


def _pool(workers: int) -> ThreadPoolExecutor:
    with _LOCK:
        pool = _POOLS.get(workers)
        if pool is None:
            pool = _POOLS[workers] = ThreadPoolExecutor(
                workers, thread_name_prefix="lstmlens-work", initializer=_start_worker)
        return pool


def _forget_pools() -> None:  # in a forked child: the parent's threads do not exist there
    global _LOCK
    _POOLS.clear()
    _LOCK = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pools)


def map_threads(fn: Callable[[P], R], pieces: Sequence[P], workers: int | None = None
                ) -> list[R]:
    """``[fn(p) for p in pieces]``, on ``workers`` threads (default: torch's intra-op thread
    count) that each run torch on one thread; the caller's thread count is restored.
    Called from inside a piece, it runs the pieces one after another."""
    n_threads = torch.get_num_threads()
    workers = min(len(pieces), n_threads if workers is None else workers)
    if workers <= 1 or getattr(_INSIDE, "worker", False):
        return [fn(p) for p in pieces]

    def one_thread(p: P) -> R:
        if torch.get_num_threads() != 1:
            torch.set_num_threads(1)
        return fn(p)

    torch.set_num_threads(1)
    try:
        return list(_pool(workers).map(one_thread, pieces))
    finally:
        torch.set_num_threads(n_threads)
