"""Padding variable-length sequences into batches."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch

from .errors import InputError


def pad_batch(
    seqs: Sequence[np.ndarray | torch.Tensor | Sequence], pad_value: float = 0.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad sequences ``[T_i, ...]`` into ``([B, T_max, ...], lengths [B])``.

    Float arrays stay float32; integer token ids become int64.

    Examples
    --------
    >>> x, lengths = pad_batch([np.ones((3, 2)), np.ones((1, 2))])
    >>> tuple(x.shape), lengths.tolist()
    ((2, 3, 2), [3, 1])
    """
    if len(seqs) == 0:
        raise InputError("cannot make a batch of zero sequences")
    ts = []
    for i, s in enumerate(seqs):
        try:
            ts.append(torch.as_tensor(np.asarray(s)))
        except (TypeError, ValueError, RuntimeError) as e:
            raise InputError(f"sequence {i} is not an array of numbers [time, ...] "
                             f"({type(s).__name__}: {e})") from None
    for i, t in enumerate(ts):
        if t.dim() == 0 or t.shape[0] == 0:
            raise InputError(f"sequence {i} is empty; every sequence needs at least one step")
        if t.shape[1:] != ts[0].shape[1:]:
            raise InputError(f"sequence {i} has step shape {tuple(t.shape[1:])}, sequence 0 "
                             f"has {tuple(ts[0].shape[1:])}")
    # one float sequence makes the batch float (ints would truncate it)
    dtype = torch.float32 if any(t.is_floating_point() for t in ts) else torch.long
    lengths = torch.tensor([t.shape[0] for t in ts], dtype=torch.long)
    out = torch.full((len(ts), int(lengths.max()), *ts[0].shape[1:]), pad_value, dtype=dtype)
    for i, t in enumerate(ts):
        out[i, : t.shape[0]] = t
    return out, lengths


def batches(
    n: int, batch_size: int, rng: np.random.Generator | None = None
) -> Iterator[np.ndarray]:
    """Index arrays of consecutive batches of ``range(n)``, shuffled when ``rng`` is given."""
    order = rng.permutation(n) if rng is not None else np.arange(n)
    for start in range(0, n, batch_size):
        yield order[start:start + batch_size]
