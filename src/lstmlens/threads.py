"""Spread independent pieces of tensor work over Python threads, one torch thread each.

Loops of many small tensor operations (one LSTM step of a few hundred rows) gain little
from torch's intra-op threads: each operation is too small to split well. Independent
pieces of such work run faster side by side, one per core, since torch releases the GIL
inside every operation.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import torch

P = TypeVar("P")
R = TypeVar("R")


def map_threads(fn: Callable[[P], R], pieces: Sequence[P], workers: int | None = None
                ) -> list[R]:
    """``[fn(p) for p in pieces]``, on ``workers`` threads (default: torch's intra-op thread
    count) that each run torch on one thread; the caller's thread count is restored."""
    n_threads = torch.get_num_threads()
    workers = min(len(pieces), n_threads if workers is None else workers)
    if workers <= 1:
        return [fn(p) for p in pieces]

    def one_thread(p: P) -> R:
        torch.set_num_threads(1)
        return fn(p)

    torch.set_num_threads(1)
    try:
        with ThreadPoolExecutor(workers, thread_name_prefix="lstmlens-work") as pool:
            return list(pool.map(one_thread, pieces))
    finally:
        torch.set_num_threads(n_threads)
