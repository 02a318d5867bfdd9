"""The registry of model kinds: a model directory names its kind, the registry builds it."""

from __future__ import annotations

from typing import Any

from torch import nn

from ..errors import ModelFormatError

MODEL_KINDS: dict[str, type[nn.Module]] = {}


def register_model(kind: str):
    """Class decorator: make a model kind loadable from a model directory.

    The class takes its config (a dataclass or its dict) as the only constructor argument and
    has ``config_dict()``; ``kind`` is set on it.
    """

    def deco(cls: type[nn.Module]) -> type[nn.Module]:
        cls.kind = kind
        MODEL_KINDS[kind] = cls
        return cls

    return deco


# Modules that register model kinds, imported on first need (one module per kind).
_MODULES = ["classifier", "forecaster", "language_model", "seq2seq"]


def load_model_kinds() -> None:
    """Import every model module so that each kind is registered."""
    import importlib
    import importlib.util

    for mod in _MODULES:
        name = f"{__package__}.{mod}"
        if importlib.util.find_spec(name) is not None:
            importlib.import_module(name)


def build_model(kind: str, config: dict[str, Any]) -> nn.Module:
    """A model of a registered kind from its config dict (as stored in ``config.json``)."""
    if kind not in MODEL_KINDS:
        load_model_kinds()
    if kind not in MODEL_KINDS:
        raise ModelFormatError(
            f"unknown model kind {kind!r}; this lstmlens knows {sorted(MODEL_KINDS)}"
        )
    if not isinstance(config, dict):
        raise ModelFormatError(f"config of the {kind!r} model must be a JSON object, got "
                               f"{type(config).__name__}")
    try:
        return MODEL_KINDS[kind](config)
    except (TypeError, ValueError) as e:  # ValueError covers InputError
        raise ModelFormatError(f"config of the {kind!r} model is invalid: {e}") from None
