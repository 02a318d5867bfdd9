"""JSON shaping of the explorer's responses: finite numbers, rounded arrays, one
attribution item per response."""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def json_safe(x: Any) -> Any:
    """``x`` without what strict JSON cannot carry: NaN and ±inf become None, and lone
    surrogates in strings "?" (a client may send them; UTF-8 cannot encode them)."""
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, str):
        return x.encode("utf-8", "replace").decode("utf-8")
    if isinstance(x, dict):
        return {json_safe(k): json_safe(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [json_safe(v) for v in x]
    return x


def rounded(a: np.ndarray, decimals: int = 4) -> list:
    return np.round(np.nan_to_num(np.asarray(a, dtype=np.float64)), decimals).tolist()


def add_method(out: dict[str, Any], att: Any, b: int, name: str) -> None:
    """Item ``b`` of attribution ``att`` into one response ``out``."""
    L = int(att.lengths[b])
    sc = att.scores[b, :L]
    d = att.to_dict()["items"][b]
    entry = {"scores": rounded(att.token_scores()[b, :L], 6), "delta": d.get("delta"),
             "params": {k: v for k, v in att.params.items()
                        if isinstance(v, int | float | str | bool)}}
    if isinstance(att.params.get("steps_used"), list):
        entry["params"]["steps_used"] = att.params["steps_used"][b]
    if sc.dim() == 2:
        entry["feature_scores"] = rounded(sc, 6)
    out["methods"][name] = entry
    if "tokens" in out:
        return
    out["tokens"] = d.get("tokens") or [str(t) for t in range(L)]
    out["target"], out["target_index"] = d["target"], d["target_index"]
    key = "values" if att.outputs == "values" else "probabilities"
    out[key] = d[key]
    out["labels"] = [att.label(k) for k in range(len(d[key]))]
    if att.outputs != "values":
        k = int(np.argmax(d[key]))
        out["prediction"] = {"label": att.label(k), "index": k, "confidence": d[key][k]}
    else:
        k = d["target_index"]
        out["prediction"] = {"label": f"step {k}", "index": k, "value": d[key][k]}
    for extra in ("output_token", "translation"):
        if extra in att.params:
            out[extra] = att.params[extra]
