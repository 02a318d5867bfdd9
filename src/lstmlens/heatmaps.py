"""Heatmaps of states over inputs: one unit coloured over text (terminal, HTML, PNG), units ×
time, and time × feature for series and speech (gates or attributions).

Figures are built with matplotlib's object API (``matplotlib.figure.Figure``), so nothing
here touches pyplot's global state; :func:`png_bytes` turns a figure into PNG bytes.
"""

from __future__ import annotations

import html
import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.colors import Normalize, TwoSlopeNorm
from matplotlib.figure import Figure
from rich.text import Text

from .errors import InputError

CMAP = "RdBu_r"  # red high, blue low, white at zero


def png_bytes(fig: Figure, dpi: int = 110) -> bytes:
    """The figure as PNG bytes."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    return buf.getvalue()


def save_figure(fig: Figure, path: str | Path | None, dpi: int = 110) -> Figure:
    """Write ``fig`` to ``path`` (PNG, SVG or PDF by suffix) when given; returns it."""
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=dpi, bbox_inches="tight")
    return fig


def _check(tokens: Sequence[str], values: np.ndarray) -> np.ndarray:
    v = np.asarray(values, dtype=float)
    if v.ndim != 1 or len(v) != len(tokens):
        raise InputError(f"values have shape {v.shape} but there are {len(tokens)} tokens; "
                         "give one value per token")
    return v


def _norm(v: np.ndarray, vmin: float | None, vmax: float | None) -> Normalize:
    lo = float(np.min(v)) if vmin is None else vmin
    hi = float(np.max(v)) if vmax is None else vmax
    if lo < 0 < hi:
        m = max(-lo, hi)
        return TwoSlopeNorm(0.0, -m, m)
    return Normalize(lo, hi if hi > lo else lo + 1e-9)


def _shown(tok: str) -> str:
    return tok.replace("\n", "↵").replace("\t", "→")


def text_html(tokens: Sequence[str], values: np.ndarray, *, title: str = "",
              vmin: float | None = -1.0, vmax: float | None = 1.0) -> str:
    """Tokens on coloured backgrounds (red high, blue low), escaped; newlines break lines.

    Examples
    --------
    >>> "&lt;script&gt;" in text_html(["<script>"], np.array([0.5]))
    True
    """
    v = _check(tokens, values)
    norm, cmap = _norm(v, vmin, vmax), colormaps[CMAP]
    spans = []
    for tok, x in zip(tokens, v, strict=True):
        r, g, b, _ = cmap(norm(x))
        style = f"background:rgb({r * 255:.0f},{g * 255:.0f},{b * 255:.0f})"
        spans.append(f"<span title='{x:.3f}' style='{style}'>{html.escape(_shown(tok))}</span>"
                     + ("<br>" if tok == "\n" else ""))
    head = f"<div class='lstmlens-caption'>{html.escape(title)}</div>" if title else ""
    return (f"<div class='lstmlens-text'>{head}<div style='font-family:monospace;"
            f"white-space:pre-wrap;line-height:1.5'>{''.join(spans)}</div></div>")


def text_rich(tokens: Sequence[str], values: np.ndarray, *, vmin: float | None = -1.0,
              vmax: float | None = 1.0) -> Text:
    """Tokens on coloured backgrounds for a terminal (``rich``); newlines are kept."""
    v = _check(tokens, values)
    norm, cmap = _norm(v, vmin, vmax), colormaps[CMAP]
    out = Text()
    for tok, x in zip(tokens, v, strict=True):
        r, g, b, _ = cmap(norm(x))
        shown = "↵\n" if tok == "\n" else tok
        out.append(shown, style=f"black on rgb({r * 255:.0f},{g * 255:.0f},{b * 255:.0f})")
    return out


def plot_text(tokens: Sequence[str], values: np.ndarray, path: str | Path | None = None, *,
              title: str = "", marks: np.ndarray | None = None, width: int = 80,
              max_lines: int = 30, label: str = "value", vmin: float | None = -1.0,
              vmax: float | None = 1.0, breaks: Sequence[int] = ()) -> Figure:
    """Text laid out in a monospace grid, each token's cells coloured by its value.

    ``marks`` (one 0/1 per token) underlines the tokens where a feature holds, to compare a
    unit with it by eye. Lines wrap at ``width`` characters and after the tokens listed in
    ``breaks`` (ends of sequences shown one after another); at most ``max_lines`` are drawn.
    """
    v = _check(tokens, values)
    if marks is not None:
        marks = _check(tokens, marks)
    norm, cmap = _norm(v, vmin, vmax), colormaps[CMAP]
    chars = all(len(t) <= 1 for t in tokens)
    grid = np.full((max_lines, width), np.nan)  # value shown in each character cell
    lines = [[" "] * width for _ in range(max_lines)]
    underline = []  # (row, col, n)
    breaks = set(breaks)
    separators = []  # rows above which a new sequence starts
    row = col = 0
    for t, tok in enumerate(tokens):
        shown = _shown(tok) if tok in ("\n", "\t") else tok.replace("\n", "↵")
        shown = shown[:width - 1]
        n = max(1, len(shown)) + (0 if chars else 1)
        if col + n > width:
            row, col = row + 1, 0
        if row >= max_lines:
            break
        grid[row, col:col + n] = v[t]
        lines[row][col:col + len(shown)] = list(shown)
        if marks is not None and marks[t]:
            underline.append((row, col, n))
        col += n
        if t in breaks:
            separators.append(row + 1)
        if tok == "\n" or (t in breaks and col):
            row, col = row + 1, 0
    rows = max(1, min(max_lines, row + (1 if col else 0)))
    size = 9.0  # points; DejaVu Sans Mono advances 0.602 em per character
    fig_w = width * size * 0.602 / 72 / 0.86
    fig_h = 0.22 * rows + 0.9
    fig = Figure(figsize=(fig_w, fig_h))
    fig.subplots_adjust(left=0.01, right=0.87, top=1 - 0.5 / fig_h, bottom=0.1 / fig_h)
    ax = fig.add_subplot(111)
    light = _light(cmap)  # lighter, so that black text stays legible
    rgba = light(norm(np.nan_to_num(grid[:rows], nan=0.0)))  # (rows, width, 4)
    rgba[np.isnan(grid[:rows])] = (1, 1, 1, 1)
    ax.imshow(rgba, aspect="auto", interpolation="nearest", extent=(0, width, rows, 0))
    for r in range(rows):
        ax.text(0, r + 0.55, "".join(lines[r]).rstrip(), ha="left", va="center",
                family="DejaVu Sans Mono", fontsize=size)
    for r in separators:
        if r < rows:
            ax.axhline(r, color="0.4", lw=0.8)
    if underline:
        from matplotlib.collections import LineCollection
        ax.add_collection(LineCollection([[(c, r + 0.95), (c + n, r + 0.95)]
                                          for r, c, n in underline], colors="black",
                                         linewidths=1.2))
    ax.set_xlim(0, width)
    ax.set_ylim(rows, 0)
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=10, loc="left")
    bar = fig.colorbar(_mappable(norm, light), cax=fig.add_axes((0.89, 0.1, 0.015, 0.75)))
    bar.set_label(label)
    return save_figure(fig, path)


def _light(cmap):
    from matplotlib.colors import ListedColormap
    rgb = cmap(np.linspace(0, 1, 256))[:, :3]
    return ListedColormap(0.3 + 0.7 * rgb)


def _mappable(norm: Normalize, cmap):
    from matplotlib.cm import ScalarMappable
    return ScalarMappable(norm=norm, cmap=cmap)


def plot_units_time(values: np.ndarray, tokens: Sequence[str] | None = None,
                    path: str | Path | None = None, *, units: Sequence[int] | None = None,
                    unit_names: Sequence[str] | None = None, title: str = "",
                    label: str = "value") -> Figure:
    """Units × time heatmap of ``values`` ``(T, units)`` (only the columns ``units`` when
    given; ``unit_names`` label the rows); tokens label the time axis when there are few
    enough to read (≤ 80)."""
    v = np.asarray(values, dtype=float)
    if v.ndim != 2:
        raise InputError(f"values must be [time, units], got shape {v.shape}")
    if units is not None:
        bad = [u for u in units if not 0 <= u < v.shape[1]]
        if bad:
            raise InputError(f"unit(s) {bad} out of range; there are {v.shape[1]} units "
                             f"(0..{v.shape[1] - 1})")
        v = v[:, list(units)]
    T, H = v.shape
    fig = Figure(figsize=(min(16, 2.5 + 0.14 * T), min(10, 1.6 + 0.12 * H)))
    ax = fig.add_subplot(111)
    norm = _norm(v, None, None)
    im = ax.imshow(v.T, aspect="auto", cmap=CMAP, norm=norm, interpolation="nearest")
    ax.set_xlabel("time step" + (" (token)" if tokens is not None and T <= 80 else ""))
    ax.set_ylabel("unit")
    if tokens is not None and T <= 80:
        ax.set_xticks(range(T), [_shown(t) for t in tokens[:T]], fontsize=7,
                      rotation=90 if max(len(t) for t in tokens) > 1 else 0)
    names = list(unit_names) if unit_names is not None else (
        [str(u) for u in units] if units is not None else None)
    if names is not None:
        if len(names) != H:
            raise InputError(f"{len(names)} unit names for {H} units")
        if H <= 40:
            ax.set_yticks(range(H), names, fontsize=7)
    ax.set_title(title or "units over time", fontsize=10)
    fig.colorbar(im, ax=ax, fraction=0.03, pad=0.01).set_label(label)
    return save_figure(fig, path)


def plot_time_feature(values: np.ndarray, path: str | Path | None = None, *,
                      feature_names: Sequence[str] | None = None, title: str = "",
                      label: str = "value", feature_axis: str = "feature") -> Figure:
    """Time × feature heatmap of ``values`` ``(T, F)``: a gate of a series or speech model
    per input feature, or an attribution ``[T, F]`` of feature inputs."""
    v = np.asarray(values, dtype=float)
    if v.ndim != 2:
        raise InputError(f"values must be [time, features], got shape {v.shape}")
    T, F = v.shape
    if feature_names is not None and len(feature_names) != F:
        raise InputError(f"{len(feature_names)} feature names for {F} features")
    fig = Figure(figsize=(min(14, 3 + 0.08 * T), min(8, 1.8 + 0.22 * F)))
    ax = fig.add_subplot(111)
    im = ax.imshow(v.T, aspect="auto", cmap=CMAP, norm=_norm(v, None, None),
                   interpolation="nearest")
    ax.set_xlabel("time step")
    ax.set_ylabel(feature_axis)
    if feature_names is not None and F <= 40:
        ax.set_yticks(range(F), list(feature_names), fontsize=7)
    ax.set_title(title or f"{label} over time × {feature_axis}", fontsize=10)
    fig.colorbar(im, ax=ax, fraction=0.03, pad=0.01).set_label(label)
    return save_figure(fig, path)
