"""Checks and conversions of what users pass as sequences, lengths and initial states."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch.nn.utils.rnn import PackedSequence, pad_packed_sequence

from .errors import InputError


def as_dtype(dtype: Any) -> torch.dtype:
    """``torch.float32``/``torch.float64`` or their names; anything else is refused."""
    table = {"float32": torch.float32, "float64": torch.float64,
             torch.float32: torch.float32, torch.float64: torch.float64}
    try:
        known = dtype in table
    except TypeError:  # unhashable, e.g. a list
        known = False
    if not known:
        raise InputError(f"dtype must be float32 or float64, got {dtype!r}")
    return table[dtype]


def as_tensor(x: Any, what: str = "inputs") -> torch.Tensor:
    """A tensor from a tensor, a numpy array or nested lists; a ragged list is refused."""
    if isinstance(x, torch.Tensor):
        return x
    if isinstance(x, np.ndarray):
        if x.dtype == object:
            raise InputError(f"{what} is a ragged/object array; pad it and pass `lengths`")
        return torch.from_numpy(x)
    try:
        return torch.as_tensor(x)
    except (TypeError, ValueError, RuntimeError) as e:
        raise InputError(
            f"{what} must be a tensor, a numpy array or nested lists of numbers "
            f"(pad ragged sequences and pass `lengths`); got {type(x).__name__}: {e}"
        ) from None


def check_finite(x: torch.Tensor, what: str = "inputs") -> None:
    """Refuse NaN and inf, saying how many and where the first one is."""
    if not x.is_floating_point() or x.numel() == 0:
        return
    # One reduction pass: a NaN/inf anywhere makes the sum non-finite (an overflowing sum of
    # huge finite values only sends us to the exact check below).
    if bool(torch.isfinite(x.sum())) or bool(torch.isfinite(x).all()):
        return
    bad = (~torch.isfinite(x)).nonzero()
    first = tuple(int(i) for i in bad[0])
    raise InputError(
        f"{what} contain {len(bad)} NaN/inf value(s), the first at index {first}; "
        "only finite values are accepted"
    )


def check_lengths(lengths: Any, batch: int, steps: int) -> torch.Tensor:
    """``lengths`` as an int64 tensor ``(B,)`` with 1 ≤ length ≤ T, or a clear error."""
    lengths = as_tensor(lengths, "lengths")
    if lengths.is_floating_point() or lengths.dtype == torch.bool:
        if lengths.is_floating_point() and bool((lengths == lengths.round()).all()):
            lengths = lengths.long()
        else:
            raise InputError(f"lengths must be whole numbers, got dtype {lengths.dtype}")
    lengths = lengths.long().reshape(-1) if lengths.dim() == 0 else lengths.long()
    if lengths.dim() != 1 or lengths.shape[0] != batch:
        raise InputError(
            f"lengths must hold one length per sequence ({batch}), got shape "
            f"{tuple(lengths.shape)}"
        )
    if bool((lengths < 1).any()):
        raise InputError(f"lengths must be positive (≥ 1), got {lengths.tolist()}")
    if bool((lengths > steps).any()):
        raise InputError(
            f"lengths must not exceed the sequence length {steps}, got max "
            f"{int(lengths.max())}"
        )
    return lengths


def unpack(
    x: PackedSequence | torch.Tensor, batch_first: bool
) -> tuple[torch.Tensor, torch.Tensor | None, bool]:
    """Batch-major padded ``(B, T, F)`` inputs, lengths (or None) and whether it was unbatched."""
    if isinstance(x, PackedSequence):
        padded, lengths = pad_packed_sequence(x, batch_first=True)
        return padded, lengths, False
    if x.dim() == 2:  # unbatched (T, F), as nn.LSTM accepts it
        return x[None], None, True
    if x.dim() != 3:
        raise InputError(
            "sequence inputs must be 3-D [batch, time, features] (or [time, batch, features] "
            f"when batch_first=False), 2-D [time, features], or a PackedSequence; got shape "
            f"{tuple(x.shape)}"
        )
    return (x if batch_first else x.transpose(0, 1)), None, False
