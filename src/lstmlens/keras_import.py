"""Convert a Keras 3 LSTM model into an equivalent ``torch.nn.Module``.

``from_keras(path_or_model)`` takes a ``.keras`` file or a live ``keras.Model``
(Sequential or Functional) and returns a :class:`KerasModule` (float32, eval mode)
whose ``forward(x)`` reproduces ``model(x)`` / ``model.predict(x)``.

Supported layers: ``InputLayer``, ``Embedding`` (``mask_zero``), ``Masking``,
``LSTM`` (tanh / sigmoid only), ``Bidirectional(LSTM)`` (merge modes concat, sum, mul,
ave, None), ``Dropout`` (identity at inference) and ``Dense`` (linear, softmax,
sigmoid, relu, tanh). Anything else raises :class:`KerasImportError`.

Module naming
-------------
Each Keras layer becomes one wrapper module registered on the root under its Keras
name made into a Python identifier (``re.sub(r"\\W", "_", name)``; a leading digit or
a Python keyword gets a ``_``; a clash with an attribute of the root gets ``_1``,
``_2``...). Every Keras LSTM is a real ``torch.nn.LSTM`` at ``<name>.lstm``:

* ``LSTM`` named ``lstm_1``            -> ``lstm_1.lstm`` (unidirectional)
* ``Bidirectional`` named ``bidi``     -> ``bidi.lstm`` (``bidirectional=True``) when
  both halves have the same units / bias and the usual directions; otherwise
  ``bidi.forward_layer.lstm`` and ``bidi.backward_layer.lstm``.

Every wrapper's ``forward(x, mask)`` returns ``(outputs, masks)``, two lists. The
converted model itself takes only ``x``. A bare ``go_backwards`` LSTM hands its
``nn.LSTM`` the time-reversed input, so that module's steps run in Keras's processing
order; a fused ``Bidirectional`` hands it the input in its original order.

Weights: ``weight_ih_l0 = kernel.T``, ``weight_hh_l0 = recurrent_kernel.T``,
``bias_ih_l0 = bias``, ``bias_hh_l0 = 0`` (Keras i,f,c,o = torch i,f,g,o).

Masks (as in ``keras/src/backend/torch/rnn.py::rnn``, the loop used whenever a mask
is present): a masked step is skipped, the state carried over. ``go_backwards`` flips
the whole padded sequence and its mask before the loop, and a bare LSTM returns its
sequence in that processing (reversed) order while its output mask stays the input
mask. At a masked step the sequence output is the previous output (zeros before the
first unmasked step) or zeros when ``zero_output_for_mask`` is set, which
``Bidirectional`` forces for ``return_sequences=True``; it flips its backward half
back. Here the unmasked steps of each row are gathered to the front and the
``nn.LSTM`` is called with a ``PackedSequence`` of them (a row with no unmasked step is
packed with length 1 and its results replaced by Keras's zeros); without a mask it is
called with the padded tensor. ``.h5`` and pickle files are refused: only ``.keras``
archives, loaded with ``safe_mode=True``.
"""

from __future__ import annotations

import json
import keyword
import os
import re
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

__all__ = ["KerasImportError", "KerasModule", "KerasLSTM", "KerasBidirectional", "from_keras"]

SUPPORTED_LAYERS = ("InputLayer", "Embedding", "Masking", "LSTM", "Bidirectional(LSTM)",
                    "Dropout", "Dense")
_DENSE_ACTIVATIONS = ("linear", "softmax", "sigmoid", "relu", "tanh")
_MERGE_MODES = ("concat", "sum", "mul", "ave", None)

Outputs = tuple[list[Tensor], list[Tensor | None]]


class KerasImportError(ValueError):
    """A Keras model, file or layer that :func:`from_keras` cannot convert."""


def _describe(layer: Any) -> str:
    import keras

    kind = "layer" if isinstance(layer, keras.Layer) else "operation"
    return f"{kind} {getattr(layer, 'name', '?')!r} ({type(layer).__name__})"


def _unsupported(layer: Any, what: str = "is not supported") -> KerasImportError:
    return KerasImportError(
        f"{_describe(layer)} {what}; lstmlens.from_keras supports "
        f"{', '.join(SUPPORTED_LAYERS)}."
    )


def _np(variable: Any) -> Tensor:
    import keras

    return torch.from_numpy(np.array(keras.ops.convert_to_numpy(variable), dtype=np.float32))


class KerasDense(nn.Module):
    """Keras ``Dense``: ``nn.Linear`` on the last axis plus an activation; keeps the mask."""

    def __init__(self, layer: Any) -> None:
        super().__init__()
        cfg = layer.get_config()
        act = cfg.get("activation", "linear")
        if act not in _DENSE_ACTIVATIONS:
            raise KerasImportError(
                f"{_describe(layer)}: activation={act!r} is not supported; Dense accepts "
                f"{', '.join(_DENSE_ACTIVATIONS)}."
            )
        if getattr(layer, "quantization_mode", None):
            raise _unsupported(layer, "is quantized, which is not supported")
        kernel = _np(layer.kernel)  # (in, out)
        self.activation = act
        self.linear = nn.Linear(kernel.shape[0], kernel.shape[1], bias=bool(cfg["use_bias"]))
        with torch.no_grad():
            self.linear.weight.copy_(kernel.T)
            if self.linear.bias is not None:
                self.linear.bias.copy_(_np(layer.bias))

    def forward(self, x: Tensor, mask: Tensor | None) -> Outputs:
        y = self.linear(x)  # (..., out)
        if self.activation == "softmax":
            y = torch.softmax(y, dim=-1)
        elif self.activation != "linear":
            y = getattr(torch, self.activation)(y)
        return [y], [mask]


class KerasEmbedding(nn.Module):
    """Keras ``Embedding``; with ``mask_zero`` it emits the mask ``tokens != 0``."""

    def __init__(self, layer: Any) -> None:
        super().__init__()
        if getattr(layer, "quantization_mode", None):
            raise _unsupported(layer, "is quantized, which is not supported")
        weight = _np(layer.embeddings)  # (V, E)
        self.mask_zero = bool(layer.get_config().get("mask_zero", False))
        self.embedding = nn.Embedding(weight.shape[0], weight.shape[1], _weight=weight)

    def forward(self, x: Tensor, mask: Tensor | None) -> Outputs:
        tokens = x.long()  # (B, T)
        return [self.embedding(tokens)], [tokens != 0 if self.mask_zero else None]


class KerasMasking(nn.Module):
    """Keras ``Masking``: zero the masked steps and emit ``any(x != mask_value, -1)``."""

    def __init__(self, layer: Any) -> None:
        super().__init__()
        self.mask_value = float(layer.get_config().get("mask_value", 0.0))

    def forward(self, x: Tensor, mask: Tensor | None) -> Outputs:
        keep = (x != self.mask_value).any(dim=-1)  # (B, T)
        return [torch.where(keep.unsqueeze(-1), x, torch.zeros_like(x))], [keep]


class KerasDropout(nn.Module):
    """Keras ``Dropout`` at inference: the identity; keeps the mask."""

    def forward(self, x: Tensor, mask: Tensor | None) -> Outputs:
        return [x], [mask]


def _check_lstm(layer: Any) -> dict[str, Any]:
    if type(layer).__name__ != "LSTM":
        raise _unsupported(layer)
    cfg = layer.get_config()
    for key, accepted in (("activation", "tanh"), ("recurrent_activation", "sigmoid")):
        if cfg.get(key, accepted) != accepted:
            raise KerasImportError(
                f"{_describe(layer)}: {key}={cfg.get(key)!r} is not supported; lstmlens "
                f"implements LSTM with {key}={accepted!r} only."
            )
    if cfg.get("stateful", False):
        raise _unsupported(layer, "is stateful=True, which is not supported")
    return cfg


def _set_lstm_weights(lstm: nn.LSTM, layer: Any, suffix: str = "") -> None:
    cell = layer.cell
    with torch.no_grad():
        getattr(lstm, f"weight_ih_l0{suffix}").copy_(_np(cell.kernel).T)  # (4H, in)
        getattr(lstm, f"weight_hh_l0{suffix}").copy_(_np(cell.recurrent_kernel).T)  # (4H, H)
        if lstm.bias:
            getattr(lstm, f"bias_ih_l0{suffix}").copy_(_np(cell.bias))  # (4H,)
            getattr(lstm, f"bias_hh_l0{suffix}").zero_()


def _run_lstm(lstm: nn.LSTM, x: Tensor, mask: Tensor | None,
              zero_output: bool) -> tuple[Tensor, Tensor, Tensor]:
    """Run ``lstm`` over ``x`` (B, T, F) skipping masked steps as Keras does.

    Returns the sequence (B, T, D*H) in the order of ``x``, and h, c (D, B, H).
    """
    if mask is None:
        seq, (h, c) = lstm(x)  # (B, T, D*H), (D, B, H)
        return seq, h, c
    mask = mask.to(torch.bool)  # (B, T)
    B, T, F = x.shape
    lengths = mask.sum(dim=1)  # (B,)
    order = torch.argsort((~mask).to(torch.int8), dim=1, stable=True)  # (B, T) kept first
    packed_x = x.gather(1, order.unsqueeze(-1).expand(B, T, F))  # (B, T, F)
    packed = pack_padded_sequence(packed_x, lengths.clamp(min=1).cpu(), batch_first=True,
                                  enforce_sorted=False)
    out, (h, c) = lstm(packed)
    compact, _ = pad_packed_sequence(out, batch_first=True, total_length=T)  # (B, T, D*H)
    empty = (lengths == 0).view(1, B, 1)
    h = h.masked_fill(empty, 0.0)  # (D, B, H)
    c = c.masked_fill(empty, 0.0)
    count = mask.long().cumsum(dim=1)  # (B, T) unmasked steps seen so far
    src = (count - 1).clamp(min=0).unsqueeze(-1).expand(B, T, compact.shape[-1])
    seq = compact.gather(1, src)  # (B, T, D*H) output carried over masked steps
    keep = (count > 0) & mask if zero_output else count > 0  # (B, T)
    return seq * keep.unsqueeze(-1).to(seq.dtype), h, c


class KerasLSTM(nn.Module):
    """Keras ``LSTM``; the recurrence is the ``nn.LSTM`` at ``self.lstm``."""

    def __init__(self, layer: Any) -> None:
        super().__init__()
        cfg = _check_lstm(layer)
        kernel_shape = tuple(layer.cell.kernel.shape)  # (in, 4H)
        self.units = int(cfg["units"])
        self.return_sequences = bool(cfg.get("return_sequences", False))
        self.return_state = bool(cfg.get("return_state", False))
        self.go_backwards = bool(cfg.get("go_backwards", False))
        self.zero_output_for_mask = bool(getattr(layer, "zero_output_for_mask", False))
        self.lstm = nn.LSTM(kernel_shape[0], self.units, batch_first=True,
                            bias=bool(cfg.get("use_bias", True)))
        _set_lstm_weights(self.lstm, layer)

    def run(self, x: Tensor, mask: Tensor | None) -> tuple[Tensor, Tensor, Tensor]:
        """Return (output, h, c): output (B, T, H) in processing order or (B, H)."""
        if self.go_backwards:
            x = x.flip(1)  # (B, T, F) processing order
            mask = None if mask is None else mask.flip(1)
        seq, h, c = _run_lstm(self.lstm, x, mask, self.zero_output_for_mask)
        if self.return_sequences:
            return seq, h[0], c[0]
        last = h[0]  # (B, H)
        if self.zero_output_for_mask and mask is not None:
            last = last * mask[:, -1:].to(last.dtype)  # Keras zeroes a masked last step
        return last, h[0], c[0]

    def forward(self, x: Tensor, mask: Tensor | None) -> Outputs:
        y, h, c = self.run(x, mask)
        out_mask = mask if self.return_sequences else None
        if self.return_state:
            return [y, h, c], [out_mask, None, None]
        return [y], [out_mask]


class KerasBidirectional(nn.Module):
    """Keras ``Bidirectional(LSTM)``: one ``nn.LSTM(bidirectional=True)`` at ``self.lstm``
    when both halves match, else ``forward_layer.lstm`` and ``backward_layer.lstm``."""

    def __init__(self, layer: Any) -> None:
        super().__init__()
        fwd, bwd = layer.forward_layer, layer.backward_layer
        try:
            fcfg, bcfg = _check_lstm(fwd), _check_lstm(bwd)
        except KerasImportError as err:
            raise KerasImportError(f"{_describe(layer)}: {err}") from err
        self.merge_mode = layer.merge_mode
        if self.merge_mode not in _MERGE_MODES:
            raise _unsupported(layer, f"has merge_mode={self.merge_mode!r}")
        self.return_sequences = bool(fcfg.get("return_sequences", False))
        self.return_state = bool(fcfg.get("return_state", False))
        self.units = int(fcfg["units"])
        fused = (fcfg["units"] == bcfg["units"] and fcfg["use_bias"] == bcfg["use_bias"]
                 and not fcfg["go_backwards"] and bcfg["go_backwards"])
        if fused:
            self.lstm = nn.LSTM(int(fwd.cell.kernel.shape[0]), self.units, batch_first=True,
                                bias=bool(fcfg["use_bias"]), bidirectional=True)
            _set_lstm_weights(self.lstm, fwd)
            _set_lstm_weights(self.lstm, bwd, "_reverse")
        else:
            self.forward_layer = KerasLSTM(fwd)
            self.backward_layer = KerasLSTM(bwd)
            for half in (self.forward_layer, self.backward_layer):
                half.return_state = False
                half.zero_output_for_mask = self.return_sequences

    def forward(self, x: Tensor, mask: Tensor | None) -> Outputs:
        if hasattr(self, "lstm"):
            seq, h, c = _run_lstm(self.lstm, x, mask, zero_output=True)  # (B, T, 2H)
            if self.return_sequences:
                y, y_rev = seq[..., : self.units], seq[..., self.units :]  # (B, T, H) each
            else:
                y, y_rev = h[0], h[1]  # (B, H) each
            states = [h[0], c[0], h[1], c[1]]
        else:
            y, hf, cf = self.forward_layer.run(x, mask)
            y_rev, hb, cb = self.backward_layer.run(x, mask)
            if self.return_sequences:
                y_rev = y_rev.flip(1)  # back to input order, as Keras does
            states = [hf, cf, hb, cb]
        out_mask = mask if self.return_sequences else None
        if self.merge_mode is None:
            outs, masks = [y, y_rev], [out_mask, out_mask]
        else:
            merged = {"concat": lambda: torch.cat([y, y_rev], dim=-1), "sum": lambda: y + y_rev,
                      "ave": lambda: (y + y_rev) / 2, "mul": lambda: y * y_rev}
            outs, masks = [merged[self.merge_mode]()], [out_mask]
        if self.return_state:
            return outs + states, masks + [None] * 4
        return outs, masks


_BUILDERS = {"Dense": KerasDense, "Embedding": KerasEmbedding, "Masking": KerasMasking,
             "Dropout": KerasDropout, "LSTM": KerasLSTM, "Bidirectional": KerasBidirectional}


def _build_layer(layer: Any) -> nn.Module:
    kind = type(layer).__name__
    if kind not in _BUILDERS:
        raise _unsupported(layer)
    if kind == "Dropout":
        return KerasDropout()
    if kind == "Bidirectional" and type(layer.forward_layer).__name__ != "LSTM":
        raise _unsupported(layer, f"wraps a {type(layer.forward_layer).__name__}, which is "
                                  "not supported (only Bidirectional(LSTM))")
    return _BUILDERS[kind](layer)


class KerasModule(nn.Module):
    """A converted Keras model: ``forward(x)`` with ``x`` float (B, T, F) or int64 (B, T).

    Attributes
    ----------
    keras_config : dict
        The Keras model's JSON config.
    input_kind : str
        ``"tokens"`` (first layer is an Embedding) or ``"features"``.
    """

    def __init__(self, keras_config: dict[str, Any], input_kind: str) -> None:
        super().__init__()
        self.keras_config = keras_config
        self.input_kind = input_kind
        self._plan: list[tuple[str, int, list[int]]] = []  # (module, input slot, output slots)
        self._outputs: list[int] = []
        self._single_output = True
        self._names: dict[str, str] = {}  # keras layer name -> module name

    def add_layer(self, layer: Any) -> str:
        """Convert ``layer`` once and register it; return its module name."""
        if layer.name in self._names:
            return self._names[layer.name]
        name = re.sub(r"\W", "_", layer.name) or "layer"
        if name[0].isdigit() or keyword.iskeyword(name):
            name = "_" + name
        base, i = name, 0
        while hasattr(self, name):
            i += 1
            name = f"{base}_{i}"
        self.add_module(name, _build_layer(layer))
        self._names[layer.name] = name
        return name

    def forward(self, x: Tensor) -> Tensor | list[Tensor]:
        """Run the converted model; returns a tensor, or a list for several outputs."""
        x = x.long() if self.input_kind == "tokens" else x.to(torch.float32)
        n = 1 + sum(len(out) for _, _, out in self._plan)
        values: list[Tensor | None] = [x] + [None] * (n - 1)
        masks: list[Tensor | None] = [None] * n
        for name, src, dst in self._plan:
            outs, out_masks = self._modules[name](values[src], masks[src])
            for slot, value, m in zip(dst, outs, out_masks, strict=True):
                values[slot], masks[slot] = value, m
        results = [values[s] for s in self._outputs]
        return results[0] if self._single_output else results


def _load(path: str | os.PathLike[str]) -> Any:
    import keras

    accepted = "a Keras 3 '.keras' file (zip archive) or a live keras.Model"
    p = Path(path)
    if not p.exists():
        raise KerasImportError(f"{str(p)!r} does not exist; from_keras accepts {accepted}.")
    if p.is_dir() or p.suffix.lower() != ".keras":
        raise KerasImportError(
            f"{str(p)!r} is not a '.keras' file; from_keras accepts {accepted}. Legacy .h5 "
            "and pickle files (.pkl, .pt, SavedModel folders) are refused because loading "
            "them can run arbitrary code; re-save the model with model.save('m.keras')."
        )
    if not zipfile.is_zipfile(p):
        raise KerasImportError(f"{str(p)!r} is not a valid .keras file (not a zip archive); "
                               f"from_keras accepts {accepted}.")
    with zipfile.ZipFile(p) as zf:
        if "config.json" not in zf.namelist():
            raise KerasImportError(f"{str(p)!r} is not a valid .keras file (no config.json); "
                                   f"from_keras accepts {accepted}.")
    try:
        return keras.saving.load_model(p, compile=False, safe_mode=True)
    except Exception as err:  # any loader failure means a bad file
        raise KerasImportError(f"could not load {str(p)!r} as a .keras model: {err}") from err


def _input_kind(first: Any) -> str:
    return "tokens" if type(first).__name__ == "Embedding" else "features"


def from_keras(path_or_model: str | os.PathLike[str] | Any) -> KerasModule:
    """Convert a Keras 3 model into an equivalent torch module.

    Parameters
    ----------
    path_or_model : str, os.PathLike or keras.Model
        A ``.keras`` file (loaded with ``safe_mode=True``) or a Sequential / Functional
        ``keras.Model`` with a single input.

    Returns
    -------
    KerasModule
        float32, eval mode; ``forward(x)`` takes ``x`` (B, T, F) float or (B, T) int64
        tokens and returns what ``model(x)`` returns (a tensor, or a list for several
        outputs). Every Keras LSTM is a ``torch.nn.LSTM`` submodule (see module docs).

    Raises
    ------
    KerasImportError
        For a missing or invalid file, or an unsupported layer, activation or graph.
    ImportError
        If keras is not installed.
    """
    os.environ.setdefault("KERAS_BACKEND", "torch")
    try:
        import keras
    except ImportError as err:
        raise ImportError("from_keras needs Keras 3: pip install 'lstmlens[keras]'") from err
    if isinstance(path_or_model, (str, os.PathLike)):
        model = _load(path_or_model)
    elif isinstance(path_or_model, keras.Model):
        model = path_or_model
    else:
        raise KerasImportError(f"from_keras accepts a '.keras' path or a keras.Model, not "
                               f"{type(path_or_model).__name__}.")
    config = json.loads(model.to_json())
    if isinstance(model, keras.Sequential):
        layers = [la for la in model.layers if type(la).__name__ != "InputLayer"]
        if not layers:
            raise KerasImportError("the Sequential model has no layers.")
        module = KerasModule(config, _input_kind(layers[0]))
        slot = 0
        for i, layer in enumerate(layers):
            name = module.add_layer(layer)
            n_out = _count_outputs(layer)
            if n_out != 1 and i != len(layers) - 1:
                raise _unsupported(layer, "returns several tensors inside a Sequential, which is "
                                          "not supported")
            module._plan.append((name, slot, list(range(slot + 1, slot + 1 + n_out))))
            slot += n_out
        module._outputs = list(range(slot + 1 - n_out, slot + 1))
        module._single_output = n_out == 1
    elif type(model).__name__ == "Functional" or hasattr(model, "_nodes_by_depth"):
        module = _convert_functional(model, config)
    else:
        raise KerasImportError(f"model {model.name!r} ({type(model).__name__}) is a subclassed "
                               "model; from_keras accepts Sequential and Functional models.")
    return module.float().eval()


def _count_outputs(layer: Any) -> int:
    if type(layer).__name__ == "LSTM":
        return 3 if layer.return_state else 1
    if type(layer).__name__ == "Bidirectional":
        return (1 if layer.merge_mode else 2) + (4 if layer.return_state else 0)
    return 1


_MASK_OPS = ("NotEqual", "Any")  # raw ops Keras records to compute propagated masks


def _gives_mask(layer: Any, has_mask: bool) -> bool:
    kind = type(layer).__name__
    if kind == "Embedding":
        return bool(layer.mask_zero)
    if kind in ("LSTM", "Bidirectional"):
        return has_mask and bool(layer.return_sequences)
    return kind == "Masking" or has_mask


def _convert_functional(model: Any, config: dict[str, Any]) -> KerasModule:
    from keras import KerasTensor, Layer, Model
    from keras.tree import flatten as tree_flatten

    inputs = list(model.inputs)
    if len(inputs) != 1:
        raise KerasImportError(f"model {model.name!r} has {len(inputs)} inputs; from_keras "
                               "accepts single-input models.")
    slots = {id(inputs[0]): 0}
    raw: dict[int, Any] = {}  # tensors made by raw ops (Keras records mask computations)
    masked: set[int] = set()  # tensors that carry a Keras mask
    consumers: list[Any] = []
    plan: list[tuple[Any, int, list[int]]] = []
    for depth in sorted(model._nodes_by_depth, reverse=True):
        for node in model._nodes_by_depth[depth]:
            op = node.operation
            if node.is_input or op is None:
                continue
            if isinstance(op, Model):
                raise _unsupported(op, "is a nested model, which is not supported")
            if not isinstance(op, Layer):
                raw.update({id(t): op for t in node.outputs})
                continue
            args, kwargs = node.arguments.args, dict(node.arguments.kwargs)
            src = id(args[0]) if args and isinstance(args[0], KerasTensor) else None
            mask = kwargs.pop("mask", None)
            if isinstance(mask, KerasTensor) and not (
                    src in masked and (mask is getattr(args[0], "_keras_mask", None)
                                       or type(raw.get(id(mask))).__name__ in _MASK_OPS)):
                raise _unsupported(op, "is called with an explicit mask, which is not supported")
            if (len(args) != 1 or src is None
                    or any(isinstance(v, KerasTensor) for v in tree_flatten(kwargs))):
                raise _unsupported(op, "is called with several tensors (initial_state "
                                       "or merged inputs), which is not supported")
            if src in raw:
                raise _unsupported(raw[src], f"feeds {_describe(op)} and is not supported")
            if src not in slots:
                continue  # not reachable from the input: Keras skips it too
            if slots[src] == 0:
                consumers.append(op)
            out_slots = []
            for t in node.outputs:
                if _gives_mask(op, src in masked):
                    masked.add(id(t))
                slots[id(t)] = len(slots)
                out_slots.append(slots[id(t)])
            plan.append((op, slots[src], out_slots))
    kinds = {_input_kind(op) for op in consumers} or {"features"}
    module = KerasModule(config, "tokens" if kinds == {"tokens"} else "features")
    for op, src, dst in plan:
        name = module.add_layer(op)
        if _count_outputs(op) != len(dst):
            raise _unsupported(op, "has an output structure that is not supported")
        module._plan.append((name, src, dst))
    for t in model.outputs:
        if id(t) in raw:
            raise _unsupported(raw[id(t)], "makes a model output and is not supported")
        if id(t) not in slots:
            raise KerasImportError(f"output {t.name!r} is not connected to the input.")
    module._outputs = [slots[id(t)] for t in model.outputs]
    module._single_output = len(model.outputs) == 1  # Keras unpacks a one-element list
    return module
