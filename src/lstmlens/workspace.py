"""Named scratch buffers reused from one call to the next.

A tensor of more than a few hundred kilobytes is fresh memory from the operating system
each time it is made (glibc maps it, or gives the heap back when it is freed), and the
first write to each of its pages costs a page fault: for loops of small LSTM steps that
is a third of the run. A :class:`Workspace` keeps such buffers and hands out views of them.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import torch

R = TypeVar("R")
MEMO_SIZE = 256  # memoised views at most (the memo is cleared when full)
# What a thread's workspace keeps at most (per owner: LRP's forward series, CD's step
# buffers); beyond it, a call's buffers are fresh memory and are not kept.
KEEP_BYTES = 64 << 20


class Workspace:
    """Buffers by name, grown when needed and reused; views of them are handed out, so a
    view is only valid until the same name is asked for again.

    ``limit``: bytes kept at most. A request that would go past it gets fresh memory that is
    not kept (a rare, large call does not pin its memory for the life of the thread).
    """

    def __init__(self, limit: int | None = None) -> None:
        self.limit = limit
        self._bufs: dict[str, torch.Tensor] = {}
        self._memo: dict[tuple, Any] = {}
        self._ptrs: set[int] = set()  # the buffers' storage addresses

    @property
    def kept_bytes(self) -> int:
        return sum(b.numel() * b.element_size() for b in self._bufs.values())

    def get(self, name: str, *shape: int, dtype: torch.dtype = torch.float32,
            device: torch.device | str | None = None) -> torch.Tensor:
        """A tensor of ``shape`` (uninitialised) backed by the buffer ``name``."""
        n = math.prod(shape)
        device = torch.device("cpu") if device is None else torch.device(device)
        buf = self._bufs.get(name)
        if buf is None or buf.numel() < n or buf.dtype != dtype or buf.device != device:
            if self.limit is not None:
                others = self.kept_bytes - (0 if buf is None else
                                            buf.numel() * buf.element_size())
                if others + n * dtype.itemsize > self.limit:
                    return torch.empty(shape, dtype=dtype, device=device)  # not kept
            buf = self._bufs[name] = torch.empty(n, dtype=dtype, device=device)
            self._ptrs = {b.untyped_storage().data_ptr() for b in self._bufs.values()}
            self._memo.clear()  # views of the buffer replaced would keep it alive
        return buf[:n].view(*shape)

    def memo(self, tag: str, base: torch.Tensor, make: Callable[[torch.Tensor], R]) -> R:
        """``make(base)``, kept and given again for a later ``base`` that is the same view of
        the same buffer: for lists of per-step views, which cost a microsecond each to make.
        ``base`` not in one of this workspace's buffers: ``make(base)``, not kept."""
        if base.untyped_storage().data_ptr() not in self._ptrs:
            return make(base)
        key = (tag, base.data_ptr(), tuple(base.shape), base.stride(), base.dtype)
        hit = self._memo.get(key)
        if hit is None:
            if len(self._memo) >= MEMO_SIZE:
                self._memo.clear()
            hit = self._memo[key] = make(base)
        return hit

    def clear(self) -> None:
        self._bufs.clear()
        self._memo.clear()
        self._ptrs.clear()


_LOCAL = threading.local()


def thread_workspace(owner: str) -> Workspace:
    """The calling thread's workspace for ``owner``, keeping at most ``KEEP_BYTES`` (made
    on first use, freed with the thread)."""
    spaces = getattr(_LOCAL, "spaces", None)
    if spaces is None:
        spaces = _LOCAL.spaces = {}
    work = spaces.get(owner)
    if work is None:
        work = spaces[owner] = Workspace(KEEP_BYTES)
    return work
