"""``trace``: record every gate at every step of any LSTM, and the ``Trace`` that holds them."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence

from .engine import trace_lstm
from .errors import InputError, ModelError
from .inputs import as_dtype, as_tensor, check_finite, check_lengths, unpack
from .trace_result import Trace, TracedModule
from .weights import num_directions


def _check_state(lstm: nn.LSTM, state: Any, batch: int, unbatched: bool):
    if state is None:
        return None
    if not (isinstance(state, (tuple, list)) and len(state) == 2):
        raise InputError("state must be a pair (h0, c0) shaped like nn.LSTM's initial state")
    h0, c0 = (as_tensor(s, "state") for s in state)
    if unbatched and h0.dim() == 2:
        h0, c0 = h0[:, None], c0[:, None]
    L = lstm.num_layers * num_directions(lstm)
    want_h = (L, batch, lstm.proj_size or lstm.hidden_size)
    want_c = (L, batch, lstm.hidden_size)
    if tuple(h0.shape) != want_h or tuple(c0.shape) != want_c:
        raise InputError(
            f"state shapes must be h0 {want_h} and c0 {want_c}, got {tuple(h0.shape)} and "
            f"{tuple(c0.shape)}"
        )
    check_finite(h0, "h0")
    check_finite(c0, "c0")
    return h0, c0


def _trace_call(
    lstm: nn.LSTM, x: Any, lengths: Any, state: Any, dtype: torch.dtype, engine: str,
    name: str,
) -> TracedModule:
    """Check one call's inputs the way ``nn.LSTM`` would take them, then trace it."""
    packed_lengths = None
    check_finite(x.data if isinstance(x, PackedSequence) else as_tensor(x))
    if isinstance(x, PackedSequence):
        if lengths is not None:
            raise InputError("pass lengths either inside a PackedSequence or as `lengths`")
        x, packed_lengths, unbatched = unpack(x, lstm.batch_first)
    else:
        x = as_tensor(x)
        if not x.is_floating_point():
            raise InputError(
                f"an nn.LSTM takes float features, got dtype {x.dtype}; for token ids, trace "
                "the module that embeds them"
            )
        x, _, unbatched = unpack(x, lstm.batch_first)
    B, T, F = x.shape
    if B == 0 or T == 0:
        raise InputError(f"inputs are empty (batch {B}, time {T}); give at least one step")
    if F != lstm.input_size:
        raise InputError(
            f"inputs have {F} features per step but {name or 'the LSTM'} expects "
            f"input_size={lstm.input_size}"
        )
    if packed_lengths is not None:
        lengths = packed_lengths
    elif lengths is not None:
        lengths = check_lengths(lengths, B, T)
    state = _check_state(lstm, state, B, unbatched)
    series = trace_lstm(lstm, x, lengths, state, dtype=dtype, engine=engine)
    if lengths is None:
        mask = torch.ones(B, T, dtype=torch.bool)
        lengths = torch.full((B,), T, dtype=torch.long)
    else:
        lengths = lengths.cpu()
        mask = torch.arange(T)[None, :] < lengths[:, None]
    return TracedModule(
        name=name, series=series, mask=mask, lengths=lengths,
        num_layers=lstm.num_layers, bidirectional=lstm.bidirectional,
        hidden_size=lstm.hidden_size, proj_size=lstm.proj_size, input_size=lstm.input_size,
    )


@contextmanager
def _recording(model: nn.Module) -> Iterator[list[tuple[str, tuple, dict]]]:
    """Hooks on every nn.LSTM inside ``model``, removed on exit even if the forward raises;
    the model is put in eval mode and its modes restored afterwards."""
    calls: list[tuple[str, tuple, dict]] = []
    handles = []
    modes = {m: m.training for m in model.modules()}
    try:
        for name, m in model.named_modules():
            if isinstance(m, nn.LSTM):
                def hook(mod, args, kwargs, output, _name=name):
                    calls.append((_name, args, kwargs))
                handles.append(m.register_forward_hook(hook, with_kwargs=True))
        model.eval()
        yield calls
    finally:
        for h in handles:
            h.remove()
        for m, mode in modes.items():
            m.training = mode


def _accepts(fn: Any, name: str) -> bool:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return name in params or any(p.kind == p.VAR_KEYWORD for p in params.values())


def trace(
    model: Any,
    inputs: Any,
    lengths: Any = None,
    *,
    state: Any = None,
    dtype: Any = torch.float32,
    engine: str = "auto",
    **forward_kwargs: Any,
) -> Trace:
    """Record every gate at every step of ``model`` run on ``inputs``.

    Parameters
    ----------
    model
        A ``torch.nn.LSTM``; any ``torch.nn.Module`` that calls LSTM layers (every
        ``nn.LSTM`` it calls is recorded, by submodule name); an lstmlens model; or a live
        Keras 3 model (converted with :func:`lstmlens.from_keras`).
    inputs
        What the model takes: for an ``nn.LSTM`` float features ``[B, T, F]`` (``[T, B, F]``
        if ``batch_first=False``), ``[T, F]``, or a ``PackedSequence``.
    lengths
        Valid steps per sequence ``[B]`` (right padding); passed to a module's forward as
        ``lengths=``.
    state
        Initial ``(h0, c0)`` of an ``nn.LSTM``, in its layout.
    dtype
        ``torch.float32`` (default) or ``torch.float64``.
    engine
        ``"auto"``, ``"loop"`` or ``"recompute"``: two exact ways to the same numbers.

    Returns
    -------
    Trace
        ``trace["layers.0.forward.forget_gate"]`` is ``[B, T, units]`` in input order.

    Examples
    --------
    >>> lstm = torch.nn.LSTM(12, 32, batch_first=True)
    >>> tr = trace(lstm, torch.randn(4, 20, 12), lengths=[20, 18, 9, 3])
    >>> tr.layers[0].forward.forget_gate.shape
    torch.Size([4, 20, 32])
    """
    dtype = as_dtype(dtype)
    if type(model).__module__.split(".")[0] == "keras":
        from .keras_import import from_keras
        model = from_keras(model)
    if isinstance(model, nn.LSTM):
        traced = _trace_call(model, inputs, lengths, state, dtype, engine, "")
        return Trace({"": traced}, output=None)
    if not isinstance(model, nn.Module):
        raise ModelError(
            f"trace takes a torch.nn.LSTM, a torch.nn.Module containing one, or a Keras model; "
            f"got {type(model).__name__}"
        )
    lstms = [n for n, m in model.named_modules() if isinstance(m, nn.LSTM)]
    if not lstms:
        raise ModelError(
            f"{type(model).__name__} contains no torch.nn.LSTM submodule; lstmlens traces "
            "nn.LSTM layers (GRU, RNN and LSTMCell loops are not LSTM layers it can record)"
        )
    if state is not None:
        raise InputError("state= applies to a bare nn.LSTM; pass a module's state through "
                         "its own forward arguments")
    if isinstance(inputs, torch.Tensor) and inputs.numel() == 0:
        raise InputError(f"inputs are empty (shape {tuple(inputs.shape)})")
    if isinstance(inputs, torch.Tensor):
        check_finite(inputs)
    if lengths is not None:
        if not _accepts(model.forward, "lengths"):
            raise InputError(
                f"{type(model).__name__}.forward takes no `lengths`; pass padded inputs or a "
                "PackedSequence the way the module expects them"
            )
        forward_kwargs["lengths"] = lengths
    with _recording(model) as calls, torch.no_grad():
        output = model(inputs, **forward_kwargs)
    if not calls:
        raise ModelError(
            f"{type(model).__name__} has nn.LSTM submodules ({', '.join(lstms)}) but its "
            "forward called none of them on these inputs"
        )
    traced: dict[str, TracedModule] = {}
    seen: dict[str, int] = {}
    for name, args, kwargs in calls:
        lstm = model.get_submodule(name)
        x = args[0] if args else kwargs.get("input")
        hx = args[1] if len(args) > 1 else kwargs.get("hx")
        k = seen.get(name, 0)
        seen[name] = k + 1
        key = name if k == 0 else f"{name}@{k}"
        traced[key] = _trace_call(lstm, x, None, hx, dtype, engine, key)
    return Trace(traced, output=output)
