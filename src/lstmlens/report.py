"""``write_report``: one self-contained HTML page about a model directory.

The page holds the model card and metrics, one example explained by every registered
method side by side, gate saturation, the units that best track the task's features,
state trajectories, the memory horizon and, when the directory holds them, the rules
(``rules.json``) and evaluation (``evaluation.json``) results. Figures are inlined as
base64 PNG and there are no scripts or links to fetch: the file opens offline. Every piece
of text from the model or its data is escaped.
"""

from __future__ import annotations

import base64
import html
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from .errors import InputError, LstmlensError, ModelError
from .heatmaps import png_bytes, text_html

CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;
color:#222}h1{font-size:1.6em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;
margin-top:2em}table{border-collapse:collapse;margin:.5em 0;font-size:.9em}
td,th{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f4f4f4}img{max-width:100%}.na{color:#888}.method{margin:.6em 0}
.lstmlens-text{margin:.5em 0}pre{background:#f8f8f8;padding:.5em;overflow:auto;
font-size:.85em}.muted{color:#666;font-size:.9em}"""

TEXT_FEATURES = {
    "textgen/code": ["inside_string", "bracket_depth", "indentation", "position_in_line"],
    "textgen/kjv": ["position_in_line", "inside_brackets"],
    "formal/brackets": ["bracket_depth", "inside_brackets"],
    "sentiment": ["sentiment_so_far", "sentiment"],
}


def _img(fig: Figure, alt: str) -> str:
    data = base64.b64encode(png_bytes(fig)).decode("ascii")
    return f"<img alt='{html.escape(alt)}' src='data:image/png;base64,{data}'>"


def _esc(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return html.escape(str(v))


def json_html(obj: Any, depth: int = 0) -> str:
    """Nested JSON as HTML tables (lists of records as one table), escaped."""
    if depth > 4:
        return f"<code>{html.escape(json.dumps(obj)[:200])}</code>"
    if isinstance(obj, dict):
        rows = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{json_html(v, depth + 1)}</td>"
                       "</tr>" for k, v in list(obj.items())[:60])
        return f"<table>{rows}</table>"
    if isinstance(obj, list):
        if obj and all(isinstance(r, dict) for r in obj):
            cols = list(dict.fromkeys(k for r in obj[:40] for k in r))[:12]
            head = "".join(f"<th>{html.escape(str(c))}</th>" for c in cols)
            body = "".join("<tr>" + "".join(
                f"<td>{json_html(r.get(c, ''), depth + 1)}</td>" for c in cols) + "</tr>"
                for r in obj[:40])
            more = f"<p class='muted'>… {len(obj) - 40} more</p>" if len(obj) > 40 else ""
            return f"<table><tr>{head}</tr>{body}</table>{more}"
        if all(not isinstance(v, dict | list) for v in obj):
            shown = ", ".join(_esc(v) for v in obj[:30])
            return shown + (f" … ({len(obj)} values)" if len(obj) > 30 else "")
        return "".join(json_html(v, depth + 1) for v in obj[:20])
    return _esc(obj)


def _model_card(model: Any, model_dir: Path) -> str:
    from torch import nn
    meta, metrics = getattr(model, "meta", {}) or {}, getattr(model, "metrics", {}) or {}
    n_params = sum(p.numel() for p in model.parameters())
    layers = []
    for name, m in model.named_modules():
        if isinstance(m, nn.LSTM):
            layers.append(f"{name}: LSTM {m.input_size} → {m.hidden_size} units"
                          + (", bidirectional" if m.bidirectional else ""))
    card = {"directory": str(model_dir), "kind": getattr(model, "kind", type(model).__name__),
            "task": meta.get("task", "—"), "parameters": f"{n_params:,}",
            "LSTM layers": "; ".join(layers)}
    if meta.get("classes"):
        card["classes"] = ", ".join(map(str, meta["classes"]))
    shown = {k: v for k, v in metrics.items() if k in ("test", "validation", "baselines")}
    return (f"<h2>Model</h2>{json_html(card)}<h3>Metrics</h3>"
            f"{json_html(shown) if shown else '<p class=muted>no metrics recorded</p>'}")


def _explanations(model: Any, example: Any) -> str:
    from .explaining import explain
    from .methods import method_names
    parts = []
    for name in method_names():
        try:
            att = explain(model, example, name)
            parts.append(f"<div class='method'>{att.to_html()}</div>")
        except ModelError as e:
            parts.append(f"<div class='method na'><b>{html.escape(name)}</b>: not applicable: "
                         f"{html.escape(str(e))}</div>")
    shown = example if isinstance(example, str) else f"sequence of {len(example)} steps"
    return (f"<h2>Example explanations</h2><p>Input: <code>{html.escape(shown)}</code>. Red "
            "tokens push towards the explained class, blue against it.</p>" + "".join(parts))


def _units(model: Any, states: Any, features: list[str]) -> tuple[str, dict[str, Any]]:
    from .cells import find_units, unit_picture
    out, found = [], {}
    for feat in features:
        metric = "auc" if feat.startswith("inside") else "correlation"
        try:
            res = find_units(states, feat, metric=metric)
        except (LstmlensError, OSError) as e:  # the lexicon cannot be read, a constant feature
            out.append(f"<p class='na'>{html.escape(feat)}: not available: "
                       f"{html.escape(str(e))}</p>")
            continue
        found[feat] = res.to_dict(5)
        out.append(f"<h3>{html.escape(feat)}</h3>{res.to_html(5)}"
                   f"{_img(unit_picture(states, res), res.best.name)}")
    return "".join(out), found


def build_report(model_dir: str | Path, *, corpus: list[Any] | None = None,
                 example: Any = None, n: int = 60) -> str:
    """The report page of a model directory as an HTML string (see :func:`write_report`)."""
    from .horizon import memory_horizon, plot_horizons
    from .modeldir import load
    from .saturation import saturation
    from .states import collect_states, model_corpus
    from .trajectories import trajectories

    start = time.perf_counter()
    model_dir = Path(model_dir)
    model = load(model_dir)
    meta = model.meta or {}
    task = str(meta.get("task", ""))
    if corpus is None:  # language models read short pieces (see model_corpus): take more
        texts = model_corpus(model, n=n * (4 if task.startswith("textgen/") else 1))
    else:
        texts = list(corpus)
    if not texts:
        raise InputError("the corpus is empty; give at least one sequence")
    sections = [_model_card(model, model_dir)]
    if example is None:
        example = texts[0]
    kind = getattr(model, "kind", "")
    if kind == "classifier":
        sections.append(_explanations(model, example))
    elif kind == "language_model" and isinstance(example, str):
        # the next character after the example's last 60 (sampling methods scale with length)
        sections.append(_explanations(model, example[-60:]))
    else:
        sections.append("<h2>Example explanations</h2><p class='na'>every method: not "
                        f"applicable: a {html.escape(str(getattr(model, 'kind', '')))} model "
                        "has no single decision to explain; see the units below</p>")
    states = collect_states(model, texts)
    sat = saturation(states)
    sections.append(f"<h2>Gate saturation</h2>{_img(sat.plot(), 'saturation')}{sat.to_html()}")
    feats = TEXT_FEATURES.get(task, TEXT_FEATURES.get(task.split("/")[0], []))
    if not feats:
        feats = ["position"]
    if feats:
        units_html, found = _units(model, states, feats)
        sections.append("<h2>Top interpretable units</h2><p>Units of every layer ranked by "
                        "AUC (binary features) or |correlation| against a per-token feature; "
                        "the picture colours one sequence by the best unit.</p>" + units_html)
    traj = trajectories(states)
    labels = None
    sections.append("<h2>State trajectories</h2>" + _img(
        traj.plot(labels=labels, title=f"PCA of {traj.key} over {len(texts)} sequences"),
        "trajectories"))
    K = int(min(20, max(2, np.percentile(states.lengths, 50) - 1)))
    try:
        hz = memory_horizon(model, texts, max_distance=K, max_sequences=16,
                            name=meta.get("task", model_dir.name), states=states)
        hl = hz.half_life()
        sections.append(
            "<h2>Memory horizon</h2>" + _img(plot_horizons([hz]), "memory horizon")
            + f"<p>{hz.key}: median half-life of the forget-gate product {np.median(hl):.0f} "
            f"steps; {int((hl > K).sum())} of {len(hl)} units keep more than half of their "
            f"cell state beyond {K} steps.</p>")
    except LstmlensError as e:
        sections.append(f"<h2>Memory horizon</h2><p class='na'>not available: "
                        f"{html.escape(str(e))}</p>")
    for fname, title in (("rules.json", "Rules"), ("evaluation.json", "Evaluation")):
        path = model_dir / fname
        if path.exists():
            try:
                doc = json.loads(path.read_text(encoding="utf-8"))
                sections.append(f"<h2>{title}</h2><p class='muted'>from {html.escape(fname)}"
                                f"</p>{json_html(doc)}")
            except (OSError, ValueError) as e:
                sections.append(f"<h2>{title}</h2><p class='na'>{html.escape(fname)} cannot be "
                                f"read: {html.escape(str(e))}</p>")
    seconds = time.perf_counter() - start
    name = html.escape(model_dir.name)
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>lstmlens report: {name}"
            f"</title><style>{CSS}</style></head><body><h1>lstmlens report: {name}</h1>"
            f"<p class='muted'>{len(texts)} sequences, {states.num_steps:,} steps; built in "
            f"{seconds:.1f} s</p>{''.join(sections)}</body></html>")


def write_report(model_dir: str | Path, out: str | Path, **options: Any) -> Path:
    """Write the report of ``model_dir`` to ``out`` (one HTML file, images inlined).

    Examples
    --------
    >>> write_report("runs/textgen-code", "report.html")  # doctest: +SKIP
    PosixPath('report.html')
    """
    page = build_report(model_dir, **options)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    return out


__all__ = ["build_report", "json_html", "text_html", "write_report"]
