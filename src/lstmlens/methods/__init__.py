"""Explanation methods, one module each, found through a registry; ``explain`` runs them.

A method is a class registered with ``@register_method("name")`` whose ``explain(ctx,
**options)`` returns ``(scores, delta, params)``; the CLI, reports and the web explorer
find every method here.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

import torch

from ..errors import InputError, ModelError

METHODS: dict[str, type] = {}
_MODULES = ["cd", "lrp", "gradients", "occlusion", "sampling", "attention",
            "cell_decomposition"]


def register_method(name: str):
    """Class decorator: make an explanation method available to ``explain`` by name."""

    def deco(cls: type) -> type:
        cls.name = name
        METHODS[name] = cls
        return cls

    return deco


def _load_all() -> None:
    for mod in _MODULES:
        if importlib.util.find_spec(f"{__name__}.{mod}") is not None:
            importlib.import_module(f"{__name__}.{mod}")


def method_names() -> list[str]:
    _load_all()
    return sorted(METHODS)


@dataclass
class Context:
    """What every method gets: the model's parts and the prepared batch."""

    parts: Any  # ModelParts
    x: torch.Tensor  # raw inputs (B, T) token ids or (B, T, F) features
    lengths: torch.Tensor  # (B,)
    target: torch.Tensor  # (B,)
    logits: torch.Tensor  # (B, C) float32 logits of the model
    dtype: torch.dtype = torch.float32

    @property
    def tokens_input(self) -> bool:
        return self.parts.input_kind == "tokens"

    def model_input(self) -> torch.Tensor:
        """What gradient and perturbation methods vary: embeddings for tokens, raw features."""
        with torch.no_grad():
            return self.parts.embed(self.x) if self.tokens_input else self.x.float()

    def forward(self, inp: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Differentiable logits from ``model_input``-shaped inputs (any batch of them)."""
        e = inp if self.tokens_input else self.parts.embed(inp)
        L = self.lengths if lengths is None else lengths
        if L.shape[0] != e.shape[0]:  # Captum expands the batch: repeat lengths to match
            L = L.repeat(e.shape[0] // L.shape[0])
        return self.parts.logits_from_embedded(e, L)

    def reduce(self, per_input: torch.Tensor) -> torch.Tensor:
        """(B, T, E) → (B, T) summed over the embedding for tokens; features stay (B, T, F)."""
        return per_input.sum(-1) if self.tokens_input else per_input


class Method:
    """Base of registered methods; ``unsupported`` says why a model cannot be explained."""

    name = "method"

    def unsupported(self, ctx: Context) -> str | None:
        return None

    def explain(self, ctx: Context, **options: Any):
        raise NotImplementedError


def get_method(name: str) -> Method:
    _load_all()
    if name not in METHODS:
        raise InputError(f"unknown method {name!r}; the methods are: "
                         f"{', '.join(sorted(METHODS))}")
    return METHODS[name]()


def check_supported(method: Method, ctx: Context) -> None:
    why = method.unsupported(ctx)
    if why:
        raise ModelError(f"method {method.name!r} cannot explain this model: {why}")
