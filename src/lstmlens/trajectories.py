"""State trajectories: hidden states projected on their first principal components, along
one sequence and over a corpus, coloured by position or by a label."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from .errors import InputError
from .heatmaps import save_figure
from .states import States


@dataclass
class Trajectories:
    """PCA of one series over a corpus: ``points[i]`` is ``(T_i, k)`` for sequence ``i``."""

    key: str
    mean: np.ndarray  # (H,)
    components: np.ndarray  # (k, H) principal axes
    explained: np.ndarray  # (k,) fraction of variance per component
    points: list[np.ndarray]
    tokens: list[list[str]]

    def project(self, values: np.ndarray) -> np.ndarray:
        """``(T, H)`` states → ``(T, k)`` coordinates on the principal axes."""
        v = np.asarray(values, dtype=np.float64)
        if v.ndim != 2 or v.shape[1] != self.mean.shape[0]:
            raise InputError(f"values must be [time, {self.mean.shape[0]}], got {v.shape}")
        return (v - self.mean) @ self.components.T

    def plot(self, path: str | Path | None = None, *, labels: Sequence[Any] | None = None,
             highlight: int | None = 0, title: str = "", max_sequences: int = 200) -> Figure:
        """Every sequence as a faint path in the PC1–PC2 plane, points coloured by position
        (or by one ``labels`` value per sequence), and ``highlight`` drawn with its tokens."""
        if labels is not None and len(labels) != len(self.points):
            raise InputError(f"{len(labels)} labels for {len(self.points)} sequences")
        fig = Figure(figsize=(6.4, 5.0))
        ax = fig.add_subplot(111)
        shown = range(min(len(self.points), max_sequences))
        if labels is None:
            pts = np.concatenate([self.points[i] for i in shown])
            pos = np.concatenate([np.arange(len(self.points[i])) for i in shown])
            for i in shown:
                ax.plot(self.points[i][:, 0], self.points[i][:, 1], color="0.85", lw=0.5,
                        zorder=0)
            sc = ax.scatter(pts[:, 0], pts[:, 1], c=pos, cmap="viridis", s=6, alpha=0.7)
            fig.colorbar(sc, ax=ax, fraction=0.04).set_label("position in sequence")
        else:
            classes = sorted({str(labels[i]) for i in shown})
            for j, c in enumerate(classes):
                idx = [i for i in shown if str(labels[i]) == c]
                pts = np.concatenate([self.points[i] for i in idx])
                ax.scatter(pts[:, 0], pts[:, 1], s=6, alpha=0.6, color=f"C{j}", label=c)
            ax.legend(title="label", fontsize=8)
        if highlight is not None and 0 <= highlight < len(self.points):
            p, toks = self.points[highlight], self.tokens[highlight]
            ax.plot(p[:, 0], p[:, 1], color="black", lw=1.2, marker="o", ms=3,
                    label=f"sequence {highlight}")
            step = max(1, len(toks) // 25)
            for t in range(0, len(toks), step):
                ax.annotate(toks[t].replace("\n", "↵"), p[t, :2], fontsize=7,
                            xytext=(2, 2), textcoords="offset points")
        ev = self.explained
        ax.set_xlabel(f"PC1 ({ev[0]:.0%} of variance)")
        ax.set_ylabel(f"PC2 ({ev[1]:.0%} of variance)" if len(ev) > 1 else "PC2")
        ax.set_title(title or f"state trajectories of {self.key}", fontsize=10)
        fig.tight_layout()
        return save_figure(fig, path)


def trajectories(states: States, key: str | None = None, *, series: str = "hidden",
                 components: int = 2) -> Trajectories:
    """Fit PCA to every valid step of ``key`` (default: the top layer's forward ``series``)
    and project each sequence.

    Examples
    --------
    >>> traj = trajectories(collect_states(model, texts))  # doctest: +SKIP
    >>> traj.plot("trajectories.png")  # doctest: +SKIP
    """
    k = states.key(key, series=series)
    X = states.flat(k).astype(np.float64)  # (N, H)
    H = X.shape[1]
    if not 1 <= components <= H:
        raise InputError(f"components must be 1..{H}, got {components}")
    if X.shape[0] < 2:
        raise InputError("PCA needs at least two steps over the corpus")
    mean = X.mean(0)
    _, s, vt = np.linalg.svd(X - mean, full_matrices=False)  # vt (min(N, H), H)
    var = s ** 2
    total = var.sum() or 1.0
    n = min(components, vt.shape[0])
    comps = vt[:n]
    ev = var[:n] / total
    if n < components:
        comps = np.vstack([comps, np.zeros((components - n, H))])
        ev = np.concatenate([ev, np.zeros(components - n)])
    signs = np.sign(comps.sum(1, keepdims=True))  # a fixed orientation for each axis
    comps = comps * np.where(signs == 0, 1, signs)
    pts = [(states.sequence(k, i).astype(np.float64) - mean) @ comps.T
           for i in range(len(states.tokens))]
    return Trajectories(k, mean, comps, ev, pts, states.tokens)
