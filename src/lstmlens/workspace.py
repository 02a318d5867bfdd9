"""Named scratch buffers reused from one call to the next.

A tensor of more than a few hundred kilobytes is fresh memory from the operating system
each time it is made (glibc maps it, or gives the heap back when it is freed), and the
first write to each of its pages costs a page fault: for loops of small LSTM steps that
is a third of the run. A :class:`Workspace` keeps such buffers and hands out views of them.
"""

from __future__ import annotations

import math
import threading

import torch


class Workspace:
    """Buffers by name, grown when needed and reused; views of them are handed out, so a
    view is only valid until the same name is asked for again.

    ``limit``: bytes kept at most. A request that would go past it gets fresh memory that is
    not kept (a rare, large call does not pin its memory for the life of the thread).
    """

    def __init__(self, limit: int | None = None) -> None:
        self.limit = limit
        self._bufs: dict[str, torch.Tensor] = {}

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
        return buf[:n].view(*shape)

    def get_typed(self, name: str, dtype: torch.dtype, *shape: int) -> torch.Tensor:
        return self.get(name, *shape, dtype=dtype)

    def clear(self) -> None:
        self._bufs.clear()


_LOCAL = threading.local()


def thread_workspace(owner: str, limit: int | None = None) -> Workspace:
    """The calling thread's workspace for ``owner`` (made on first use, freed with the
    thread)."""
    spaces = getattr(_LOCAL, "spaces", None)
    if spaces is None:
        spaces = _LOCAL.spaces = {}
    work = spaces.get(owner)
    if work is None:
        work = spaces[owner] = Workspace(limit)
    return work
