"""Per-layer, per-direction weights of a ``torch.nn.LSTM``, in the seed's gate names.

PyTorch stores the four gates stacked in the order input, forget, candidate ("g"), output:
``weight_ih_l{k}`` is ``(4H, in)``, ``weight_hh_l{k}`` is ``(4H, P or H)`` and the two bias
vectors add up to one bias. ``proj_size = P > 0`` adds ``weight_hr_l{k}`` ``(P, H)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

GATES = ("input_gate", "forget_gate", "cell_candidate", "output_gate")
SERIES = ("input_gate", "forget_gate", "cell_candidate", "output_gate", "cell", "hidden")
DIRECTIONS = ("forward", "backward")


@dataclass(frozen=True)
class LayerWeights:
    """Weights of one layer and direction of an LSTM (PyTorch gate order i, f, g, o)."""

    w_ih: torch.Tensor  # (4H, in)
    w_hh: torch.Tensor  # (4H, P or H)
    bias: torch.Tensor  # (4H,)  b_ih + b_hh, zeros when the LSTM has no bias
    w_hr: torch.Tensor | None  # (P, H) or None

    @property
    def hidden_size(self) -> int:
        return self.w_ih.shape[0] // 4

    @property
    def output_size(self) -> int:
        return self.w_hr.shape[0] if self.w_hr is not None else self.hidden_size

    def sigmoids_first(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(W_ih, W_hh, b)`` with the gate blocks reordered from i, f, g, o to i, f, o, g:
        the three sigmoid gates side by side, so a step needs one σ and one tanh call."""
        H = self.hidden_size
        order = torch.cat([torch.arange(2 * H), torch.arange(3 * H, 4 * H),
                           torch.arange(2 * H, 3 * H)])
        return self.w_ih[order], self.w_hh[order], self.bias[order]

    def gate(self, name: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(W_x, W_h, b)`` of one gate by its seed name, e.g. ``gate("forget_gate")``."""
        k = GATES.index(name)
        H = self.hidden_size
        rows = slice(k * H, (k + 1) * H)
        return self.w_ih[rows], self.w_hh[rows], self.bias[rows]


def layer_weights(
    lstm: nn.LSTM, layer: int, direction: int, dtype: torch.dtype | None = None
) -> LayerWeights:
    """Read the weights of ``layer`` and ``direction`` (0 forward, 1 backward) of ``lstm``."""
    sfx = f"_l{layer}" + ("_reverse" if direction == 1 else "")
    dtype = dtype or lstm.weight_ih_l0.dtype

    def get(name: str) -> torch.Tensor:
        return getattr(lstm, name + sfx).detach().to(dtype)

    w_ih, w_hh = get("weight_ih"), get("weight_hh")
    if lstm.bias:
        bias = get("bias_ih") + get("bias_hh")
    else:
        bias = torch.zeros(w_ih.shape[0], dtype=dtype, device=w_ih.device)
    w_hr = get("weight_hr") if lstm.proj_size > 0 else None
    return LayerWeights(w_ih, w_hh, bias, w_hr)


def num_directions(lstm: nn.LSTM) -> int:
    return 2 if lstm.bidirectional else 1
