"""Gate saturation (Karpathy, Johnson & Fei-Fei 2015): per gate, layer and unit, how often
the gate is left-saturated (< 0.1, nearly closed) and right-saturated (> 0.9, nearly open)
over a corpus; plotted as one dot per unit.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from .errors import InputError
from .heatmaps import save_figure
from .states import States, as_states
from .trace_result import SIGMOID_GATES

LOW, HIGH = 0.1, 0.9
GATE_COLOURS = {"input_gate": "tab:blue", "forget_gate": "tab:red",
                "output_gate": "tab:green"}


@dataclass
class Saturation:
    """``left[key]`` and ``right[key]``: per unit, the fraction of steps a gate spends
    below 0.1 and above 0.9; keys are the trace keys of the sigmoid gates."""

    left: dict[str, np.ndarray]
    right: dict[str, np.ndarray]
    steps: int

    def layers(self) -> list[str]:
        """The ``module.layers.k.direction`` prefixes, in trace order."""
        seen: list[str] = []
        for k in self.left:
            p = k.rsplit(".", 1)[0]
            if p not in seen:
                seen.append(p)
        return seen

    def summary(self) -> list[dict[str, Any]]:
        """Per layer and gate: mean fractions and how many units are mostly saturated."""
        rows = []
        for key in self.left:
            layer, gate = key.rsplit(".", 1)
            lo, hi = self.left[key], self.right[key]
            rows.append({"layer": layer, "gate": gate, "units": len(lo),
                         "left_mean": float(lo.mean()), "right_mean": float(hi.mean()),
                         "units_left_over_half": int((lo > 0.5).sum()),
                         "units_right_over_half": int((hi > 0.5).sum())})
        return rows

    def to_dict(self) -> dict[str, Any]:
        return {"steps": self.steps, "summary": self.summary(),
                "left": {k: v.tolist() for k, v in self.left.items()},
                "right": {k: v.tolist() for k, v in self.right.items()}}

    def to_html(self) -> str:
        rows = "".join(
            f"<tr><td>{html.escape(r['layer'])}</td><td>{html.escape(r['gate'])}</td>"
            f"<td>{r['left_mean']:.1%}</td><td>{r['right_mean']:.1%}</td>"
            f"<td>{r['units_left_over_half']}</td><td>{r['units_right_over_half']}</td></tr>"
            for r in self.summary())
        return ("<table class='lstmlens-saturation'><thead><tr><th>layer</th><th>gate</th>"
                "<th>steps &lt; 0.1</th><th>steps &gt; 0.9</th><th>units mostly &lt; 0.1</th>"
                f"<th>units mostly &gt; 0.9</th></tr></thead><tbody>{rows}</tbody></table>")

    def _repr_html_(self) -> str:
        return self.to_html()

    def plot(self, path: str | Path | None = None, title: str = "") -> Figure:
        """Karpathy's scatter: one panel per layer (and direction), one dot per unit and gate
        at (fraction left-saturated, fraction right-saturated)."""
        layers = self.layers()
        n = len(layers)
        fig = Figure(figsize=(3.6 * n + 0.6, 3.9))
        for i, layer in enumerate(layers):
            ax = fig.add_subplot(1, n, i + 1)
            ax.plot([0, 1], [1, 0], color="0.8", lw=0.8, zorder=0)
            for gate in SIGMOID_GATES:
                key = f"{layer}.{gate}"
                if key in self.left:
                    ax.scatter(self.left[key], self.right[key], s=12, alpha=0.6,
                               color=GATE_COLOURS[gate], label=gate.replace("_", " "),
                               edgecolors="none")
            ax.set_xlim(-0.02, 1.02)
            ax.set_ylim(-0.02, 1.02)
            ax.set_aspect("equal")
            ax.set_xlabel("fraction of steps < 0.1 (left-saturated)", fontsize=8)
            if i == 0:
                ax.set_ylabel("fraction of steps > 0.9 (right-saturated)", fontsize=8)
            ax.set_title(layer, fontsize=9)
            ax.tick_params(labelsize=7)
        fig.axes[-1].legend(fontsize=7, loc="upper right", markerscale=1.5)
        fig.suptitle(title or f"gate saturation over {self.steps:,} steps (one dot per unit)",
                     fontsize=10)
        fig.tight_layout()
        return save_figure(fig, path)


def saturation(states: States | Any, low: float = LOW, high: float = HIGH) -> Saturation:
    """Per sigmoid gate, layer and unit: the fraction of steps below ``low`` and above
    ``high``.

    Parameters
    ----------
    states
        :class:`States` (:func:`lstmlens.collect_states`) or a :class:`Trace`; the
        ``input_gate``, ``forget_gate`` and ``output_gate`` series are read.

    Examples
    --------
    >>> sat = saturation(collect_states(model, texts))  # doctest: +SKIP
    >>> sat.plot("saturation.png")  # doctest: +SKIP
    """
    if not 0 <= low < high <= 1:
        raise InputError(f"need 0 ≤ low < high ≤ 1, got low={low}, high={high}")
    st = as_states(states)
    keys = [k for k in st.series if k.rsplit(".", 1)[-1] in SIGMOID_GATES]
    if not keys:
        raise InputError("these states hold no gate series; collect them with the gates "
                         "(series=None or including input_gate, forget_gate, output_gate)")
    left, right = {}, {}
    for k in keys:
        v = st.flat(k)  # (N, H)
        left[k] = (v < low).mean(0)
        right[k] = (v > high).mean(0)
    return Saturation(left, right, st.num_steps)
