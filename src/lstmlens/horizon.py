"""Memory horizon: per unit, how far back information persists in an LSTM's cell state.

Two measures, per unit ``u`` and distance ``k`` (steps back):

* the forget-gate product ``∏_{j=t−k+1}^{t} f_j[u]``, the share of ``c_{t−k}[u]`` that
  survives in ``c_t[u]`` along the cell's own path, averaged over every valid ``t ≥ k``;
* the gradient norm ``‖∂c_T[u] / ∂x_{T−k}‖`` of the cell state at the end of a window of
  ``K + 1`` steps with respect to the LSTM's input ``k`` steps earlier, averaged over
  sequences (every path counted, not only the cell's own).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import nn

from .errors import InputError, ModelError
from .heatmaps import save_figure
from .states import States, collect_states, encode_inputs


@dataclass
class MemoryHorizon:
    """``forget_product[k, u]`` and ``gradient_norm[k, u]`` for distances ``k = 0..K``."""

    key: str
    forget_product: np.ndarray  # (K + 1, H)
    gradient_norm: np.ndarray | None  # (K + 1, H) or None when not computed
    sequences: int
    name: str = ""

    @property
    def max_distance(self) -> int:
        return self.forget_product.shape[0] - 1

    def half_life(self) -> np.ndarray:
        """Per unit, the first distance at which the mean forget product falls below 0.5
        (``K + 1`` when it never does within the window)."""
        below = self.forget_product < 0.5  # (K + 1, H)
        return np.where(below.any(0), below.argmax(0), self.max_distance + 1)

    def relative_gradient(self) -> np.ndarray:
        """``gradient_norm`` divided by its value at distance 0, per unit."""
        if self.gradient_norm is None:
            raise InputError("the gradient norm was not computed (gradient=False)")
        g0 = self.gradient_norm[0]
        return self.gradient_norm / np.where(g0 > 0, g0, 1.0)

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "name": self.name, "sequences": self.sequences,
                "forget_product_mean": self.forget_product.mean(1).tolist(),
                "gradient_norm_mean": None if self.gradient_norm is None
                else self.gradient_norm.mean(1).tolist(),
                "half_life": self.half_life().tolist()}


def forget_products(forget: Sequence[np.ndarray], max_distance: int) -> np.ndarray:
    """Mean over sequences and valid end steps ``t ≥ k`` of ``∏_{j=t−k+1}^{t} f_j``, per
    distance ``k = 0..max_distance`` and unit: ``(max_distance + 1, H)``.

    ``forget`` holds one ``(T_i, H)`` array of forget-gate values per sequence.
    """
    if max_distance < 1:
        raise InputError(f"max_distance must be ≥ 1, got {max_distance}")
    H = forget[0].shape[1]
    sums = np.zeros((max_distance + 1, H))
    counts = np.zeros(max_distance + 1)
    for f in forget:
        logf = np.log(np.clip(np.asarray(f, np.float64), 1e-300, None))  # (T, H)
        cum = np.concatenate([np.zeros((1, H)), np.cumsum(logf, 0)])  # (T + 1, H)
        T = logf.shape[0]
        for k in range(min(max_distance, T - 1) + 1):
            # end steps t = k..T-1; product over j = t-k+1..t is cum[t+1] - cum[t+1-k]
            sums[k] += np.exp(cum[k + 1:] - cum[1:T + 1 - k]).sum(0)
            counts[k] += T - k
    if counts[-1] == 0:
        raise InputError(f"no sequence is longer than max_distance={max_distance}; give "
                         "longer inputs or a smaller distance")
    return sums / counts[:, None]


def _embed_and_lstm(model: Any) -> tuple[Any, nn.LSTM]:
    """The function from raw inputs to the first LSTM's inputs, and that LSTM."""
    from .parts import ModelParts
    if isinstance(model, nn.LSTM):
        return (lambda x: x), model
    if isinstance(model, ModelParts) or hasattr(model, "explainable_parts"):
        parts = model if isinstance(model, ModelParts) else model.explainable_parts()
        return parts.embed, parts.lstms[0]
    if isinstance(getattr(model, "lstms", None), nn.ModuleList) and hasattr(model, "embedding"):
        return model.embedding, model.lstms[0]
    raise ModelError(f"{type(model).__name__}: the gradient horizon needs an lstmlens model "
                     "or lstmlens.wrap(...) to find its first LSTM and its inputs")


def gradient_norms(model: Any, windows: list[Any], *, units_per_pass: int = 16) -> np.ndarray:
    """``‖∂c_T[u] / ∂x_{T−k}‖`` averaged over windows of equal length ``K + 1``, for the
    first layer's forward cell of the model's first LSTM: ``(K + 1, H)``, row ``k``.

    Each pass repeats the batch once per unit so that one backward pass gives every unit's
    gradient (the copies are independent sequences).
    """
    embed, lstm = _embed_and_lstm(model)
    x0 = torch.as_tensor(np.stack(windows))
    with torch.no_grad():
        e = embed(x0).float()  # (B, K + 1, E)
    if not lstm.batch_first:
        raise ModelError("the gradient horizon needs a batch_first LSTM")
    B, T, E = e.shape
    H = lstm.hidden_size
    out = np.zeros((T, H))
    was = lstm.training
    lstm.eval()
    try:
        for u0 in range(0, H, units_per_pass):
            G = min(units_per_pass, H - u0)
            x = e[None].expand(G, B, T, E).reshape(G * B, T, E).clone().requires_grad_(True)
            _, (_, c_n) = lstm(x)  # c_n (layers * dirs, G·B, H); [0] is layer 0 forward
            c = c_n[0].reshape(G, B, H)
            picked = c[torch.arange(G), :, u0 + torch.arange(G)]  # (G, B)
            (grad,) = torch.autograd.grad(picked.sum(), x)  # (G·B, T, E)
            norms = grad.reshape(G, B, T, E).norm(dim=-1).mean(1)  # (G, T)
            out[:, u0:u0 + G] = norms.T.flip(0).detach().double().numpy()  # row k = T-1-t
    finally:
        lstm.train(was)
    return out


def memory_horizon(model: Any, inputs: Sequence[Any], *, max_distance: int = 20,
                   gradient: bool = True, max_sequences: int = 64, name: str = "",
                   states: States | None = None) -> MemoryHorizon:
    """How far back each unit of the model's first LSTM (layer 0, forward) remembers.

    Parameters
    ----------
    model
        An lstmlens model (or ``lstmlens.wrap``), run on ``inputs`` (texts, id lists or
        ``[time, features]`` arrays).
    max_distance
        ``K``: distances ``0..K``. The gradient uses the first ``K + 1`` steps of sequences
        at least that long (up to ``max_sequences`` of them).

    Examples
    --------
    >>> hz = memory_horizon(model, texts, max_distance=15)  # doctest: +SKIP
    >>> hz.forget_product.mean(1)  # mean over units, per distance  # doctest: +SKIP
    """
    if max_distance < 1:
        raise InputError(f"max_distance must be ≥ 1, got {max_distance}")
    st = states if states is not None else collect_states(model, inputs[:max_sequences * 4],
                                                          series=["forget_gate"])
    keys = [k for k in st.keys("forget_gate") if ".layers.0.forward." in "." + k]
    if not keys:
        raise ModelError("no forward forget gate was traced in this model")
    key = keys[0]
    fp = forget_products(st.series[key], max_distance)
    grad = None
    if gradient:
        seqs, _ = encode_inputs(model, list(inputs[:max_sequences * 4]))
        windows = [np.asarray(s)[:max_distance + 1] for s in seqs if len(s) > max_distance]
        if not windows:
            raise InputError(f"no input has more than max_distance={max_distance} steps; "
                             "give longer inputs or a smaller distance")
        grad = gradient_norms(model, windows[:max_sequences])
    return MemoryHorizon(key, fp, grad, len(st.tokens), name)


def plot_horizons(horizons: Sequence[MemoryHorizon], path: str | Path | None = None,
                  title: str = "") -> Figure:
    """Compare models: mean forget-gate product (with the units' interquartile band) and
    mean relative gradient norm, both against distance."""
    if not horizons:
        raise InputError("give at least one MemoryHorizon to plot")
    with_grad = any(h.gradient_norm is not None for h in horizons)
    fig = Figure(figsize=(10 if with_grad else 5.5, 3.8))
    ax1 = fig.add_subplot(1, 2 if with_grad else 1, 1)
    for i, h in enumerate(horizons):
        k = np.arange(h.max_distance + 1)
        fp = h.forget_product
        ax1.plot(k, fp.mean(1), color=f"C{i}", label=f"{h.name or h.key} (mean of units)")
        ax1.fill_between(k, np.percentile(fp, 25, 1), np.percentile(fp, 75, 1),
                         color=f"C{i}", alpha=0.2)
    ax1.set_xlabel("distance k (steps back)")
    ax1.set_ylabel("forget-gate product ∏ f over k steps")
    ax1.set_ylim(0, 1.02)
    ax1.set_title("share of the cell state that survives", fontsize=10)
    ax1.legend(fontsize=8)
    if with_grad:
        ax2 = fig.add_subplot(1, 2, 2)
        for i, h in enumerate(horizons):
            if h.gradient_norm is None:
                continue
            rel = h.relative_gradient()
            k = np.arange(h.max_distance + 1)
            ax2.semilogy(k, np.clip(rel.mean(1), 1e-12, None), color=f"C{i}",
                         label=h.name or h.key)
        ax2.set_xlabel("distance k (steps back)")
        ax2.set_ylabel("‖∂c_T / ∂x_(T−k)‖ relative to k = 0")
        ax2.set_title("gradient of the final cell state", fontsize=10)
        ax2.legend(fontsize=8)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return save_figure(fig, path)
