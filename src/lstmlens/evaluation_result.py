"""``Evaluation``: the result of :func:`lstmlens.evaluate` — a table of figures per method,
written as JSON, CSV, HTML (escaped) and PNG plots."""

from __future__ import annotations

import csv
import html
import io
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

METRICS = ("comprehensiveness_aopc", "sufficiency_aopc", "deletion_auc", "insertion_auc",
           "planted_precision", "planted_mean_rank", "sanity_spearman", "stability_spearman")
BETTER = {"comprehensiveness_aopc": "higher", "sufficiency_aopc": "lower",
          "deletion_auc": "lower", "insertion_auc": "higher", "planted_precision": "higher",
          "planted_mean_rank": "lower", "sanity_spearman": "lower (it must change)",
          "stability_spearman": "higher"}


def _clean(obj: Any) -> Any:
    """JSON-safe: NaN becomes null."""
    if isinstance(obj, float):
        return None if math.isnan(obj) else obj
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    return obj


def _fmt(fig: dict[str, Any] | None) -> str:
    if not fig or fig.get("value") is None or math.isnan(fig["value"]):
        return "—"
    return f"{fig['value']:.3f} [{fig['ci_low']:.3f}, {fig['ci_high']:.3f}]"


@dataclass
class Evaluation:
    """Figures of each explanation method (and of a random ranking) on one model.

    ``methods[name][metric]`` is ``{"value", "ci_low", "ci_high", "n"}`` for the metrics of
    :data:`METRICS` that were measured; ``skipped[name]`` says why a method could not run.
    ``curves`` holds the mean deletion / insertion curves; ``attention``, ``sanity``,
    ``stability`` and ``ground_truth`` the details of those checks (``None`` when not run).
    """

    methods: dict[str, dict[str, Any]]
    skipped: dict[str, str] = field(default_factory=dict)
    curves: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    ground_truth: dict[str, Any] | None = None
    attention: dict[str, Any] | None = None
    sanity: dict[str, Any] | None = None
    stability: dict[str, Any] | None = None
    accuracy: dict[str, Any] | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)

    def figure(self, method: str, metric: str) -> dict[str, Any] | None:
        """One figure, or None when it was not measured."""
        return self.methods.get(method, {}).get(metric)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["methods"] = {**{m: v for m, v in self.methods.items()},
                        **{m: {"skipped": why} for m, why in self.skipped.items()}}
        d.pop("skipped")
        d["better"] = BETTER
        return _clean(d)

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    def rows(self) -> list[dict[str, Any]]:
        """One row per (method, metric) measured, plus one per skipped method."""
        out = []
        for m, figs in self.methods.items():
            for k in METRICS:
                f = figs.get(k)
                if f is not None:
                    out.append({"method": m, "metric": k, "value": f["value"],
                                "ci_low": f["ci_low"], "ci_high": f["ci_high"], "n": f["n"],
                                "status": "ok"})
        for m, why in self.skipped.items():
            out.append({"method": m, "metric": "", "value": "", "ci_low": "", "ci_high": "",
                        "n": "", "status": f"skipped: {why}"})
        return out

    def to_csv(self) -> str:
        buf = io.StringIO()
        w = csv.DictWriter(buf, ["method", "metric", "value", "ci_low", "ci_high", "n",
                                 "status"], lineterminator="\n")
        w.writeheader()
        w.writerows(self.rows())
        return buf.getvalue()

    def table_markdown(self, metrics: tuple[str, ...] | None = None) -> str:
        """A markdown table: one row per method, one column per metric measured."""
        cols = [k for k in (metrics or METRICS) if any(k in f for f in self.methods.values())]
        lines = ["| method | " + " | ".join(f"{k} ({BETTER[k].split()[0]})" for k in cols)
                 + " |", "|---" * (len(cols) + 1) + "|"]
        for m, figs in self.methods.items():
            lines.append(f"| {m} | " + " | ".join(_fmt(figs.get(k)) for k in cols) + " |")
        for m, why in self.skipped.items():
            lines.append(f"| {m} | skipped: {why} |" + " |" * (len(cols) - 1))
        return "\n".join(lines)

    def to_html(self, images: list[str] | None = None) -> str:
        """A self-contained page (every name and message escaped); ``images`` are PNG
        file names shown below the table."""
        e = html.escape
        cols = [k for k in METRICS if any(k in f for f in self.methods.values())]
        head = "".join(f"<th>{e(k)}<br><small>{e(BETTER[k])}</small></th>" for k in cols)
        body = []
        for m, figs in self.methods.items():
            cells = "".join(f"<td>{e(_fmt(figs.get(k)))}</td>" for k in cols)
            body.append(f"<tr><th>{e(m)}</th>{cells}</tr>")
        for m, why in self.skipped.items():
            body.append(f"<tr><th>{e(m)}</th><td colspan='{max(1, len(cols))}'>skipped: "
                        f"{e(why)}</td></tr>")
        notes = "".join(f"<li>{e(n)}</li>" for n in self.notes)
        sett = "".join(f"<li>{e(str(k))}: {e(json.dumps(v))}</li>"
                       for k, v in self.settings.items())
        extra = []
        for name in ("ground_truth", "attention", "sanity", "stability"):
            part = getattr(self, name)
            if part is not None:
                extra.append(f"<h2>{e(name)}</h2><pre>"
                             f"{e(json.dumps(_clean(part), indent=1))}</pre>")
        imgs = "".join(f"<img src='{e(i)}' alt='{e(i)}' style='max-width:48%'>"
                       for i in images or [])
        return ("<!doctype html><meta charset='utf-8'><title>lstmlens evaluate</title>"
                "<style>td,th{border:1px solid #ccc;padding:3px 6px}"
                "table{border-collapse:collapse}</style><body><h1>lstmlens evaluate</h1>"
                f"<table><tr><th>method</th>{head}</tr>{''.join(body)}</table>"
                f"<ul>{notes}</ul><h2>settings</h2><ul>{sett}</ul>{imgs}{''.join(extra)}"
                "</body>")

    def _repr_html_(self) -> str:
        return self.to_html()

    def plot(self, out_dir: str | Path) -> list[Path]:
        """Write ``curves.png`` (deletion and insertion) and ``figures.png`` (each metric
        with its interval) with matplotlib's Agg backend; returns the paths."""
        import matplotlib
        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths = []
        if self.curves:
            fig, axes = plt.subplots(1, 2, figsize=(10, 4))
            for ax, kind in zip(axes, ("deletion", "insertion"), strict=True):
                for m, c in self.curves.items():
                    xs = [i / (len(c[kind]) - 1) for i in range(len(c[kind]))]
                    ax.plot(xs, c[kind], label=m, ls="--" if m == "random" else "-")
                ax.set_xlabel("share of tokens " + ("removed" if kind == "deletion"
                                                    else "kept"))
                ax.set_ylabel("p(explained class)")
                ax.set_title(f"{kind} curve (masking: {self.settings.get('masking')})")
            axes[1].legend(fontsize=7)
            fig.tight_layout()
            paths.append(out / "curves.png")
            fig.savefig(paths[-1], dpi=100)
            plt.close(fig)
        cols = [k for k in METRICS if any(k in f for f in self.methods.values())]
        if cols:
            fig, axes = plt.subplots(1, len(cols), figsize=(3.2 * len(cols), 3.6), squeeze=False)
            for ax, k in zip(axes[0], cols, strict=True):
                names = [m for m in self.methods if k in self.methods[m]
                         and self.methods[m][k]["value"] is not None
                         and not math.isnan(self.methods[m][k]["value"])]
                v = [self.methods[m][k]["value"] for m in names]
                lo = [v[i] - self.methods[m][k]["ci_low"] for i, m in enumerate(names)]
                hi = [self.methods[m][k]["ci_high"] - v[i] for i, m in enumerate(names)]
                ax.barh(range(len(names)), v, xerr=[lo, hi], color="#6a9fd4")
                ax.set_yticks(range(len(names)), names, fontsize=7)
                ax.set_title(k, fontsize=8)
            fig.tight_layout()
            paths.append(out / "figures.png")
            fig.savefig(paths[-1], dpi=100)
            plt.close(fig)
        return paths

    def save(self, out_dir: str | Path) -> list[Path]:
        """Write ``evaluation.json``, ``evaluation.csv``, ``evaluation.html`` and the plots."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        pngs = self.plot(out)
        files = [out / "evaluation.json", out / "evaluation.csv", out / "evaluation.html"]
        files[0].write_text(self.to_json(), encoding="utf-8")
        files[1].write_text(self.to_csv(), encoding="utf-8")
        files[2].write_text(self.to_html([p.name for p in pngs]), encoding="utf-8")
        return files + pngs

    def __repr__(self) -> str:
        return (f"<Evaluation {len(self.methods)} methods, {len(self.skipped)} skipped, "
                f"n={self.settings.get('n')}>")
