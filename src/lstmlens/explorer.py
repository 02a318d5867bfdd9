"""``Explorer``: what ``lstmlens serve`` knows about one model and its corpus, as JSON-ready
dicts (the web server is a thin layer over it, so every view can be tested without HTTP).

One model directory, a corpus (texts or feature sequences: a file, the model's own held-out
data, or a corpus store built by ``lstmlens index``), and, lazily computed and cached: the
states of every corpus sequence, saturation, unit rankings, phrase rules, an automaton.
Model computations hold one lock, so one request at a time uses the model; inside it, an
explanation request's methods may run side by side on threads (each ``explain`` call builds
its own parts and inputs and changes nothing shared).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .batcher import Batcher
from .errors import InputError, LstmlensError, ModelError
from .explorer_json import add_method, json_safe, rounded
from .weights import SERIES

# Interactive settings of the methods whose defaults aim at precision over speed: integrated
# gradients at a fixed 64 Gauss–Legendre points (its default refines the path until the
# completeness gap is under 1e-3, up to 4096 gradient evaluations; the response shows the
# gap as ``delta``), and Shapley sampling over 10 random orders. Others run at defaults.
INTERACTIVE: dict[str, dict[str, Any]] = {"integrated_gradients": {"steps": 64},
                                          "shapley_sampling": {"samples": 10}}
# Usually the slowest methods at those settings: started first when methods run side by side
COSTLIEST = ("integrated_gradients", "shapley_sampling", "kernel_shap", "cd")


@dataclass(frozen=True)
class Limits:
    """Bounds on what one request may ask for."""

    max_chars: int = 2000  # characters of a typed input
    max_tokens: int = 300  # tokens of an input the server traces or explains
    max_top: int = 200  # matches / contexts / units returned
    max_body: int = 64 * 1024  # bytes of a request body


class Explorer:
    """One model directory and its corpus, for the web explorer.

    Parameters
    ----------
    model_dir
        A model directory (``lstmlens.save`` / ``lstmlens train``).
    corpus
        Texts or sequences to browse, or a text file of them (one per line; character
        models: pieces of the whole file); default the model's own held-out data.
    store
        A corpus store path (``lstmlens index``): queries then run over the whole store.
    """

    def __init__(self, model_dir: str | Path, corpus: list[Any] | str | Path | None = None,
                 store: str | Path | None = None, limits: Limits | None = None,
                 n: int = 100) -> None:
        from .modeldir import load
        from .states import model_corpus
        self.model_dir = Path(model_dir)
        self.model = load(self.model_dir)
        self.model.eval()
        self.meta = dict(getattr(self.model, "meta", None) or {})
        self.kind = str(getattr(self.model, "kind", type(self.model).__name__))
        self.limits = limits or Limits()
        self.lock = threading.RLock()
        self.store = None
        if store is not None:
            from .store import open_store
            from .store_data import file_sha256
            self.store = open_store(store)
            sha = self.store.model_sha256
            if sha and sha != file_sha256(self.model_dir / "model.safetensors"):
                raise InputError(f"store {store} was built by another model; index this "
                                 "model's corpus with `lstmlens index` first")
        if isinstance(corpus, str | Path):
            from .cli_neurons import _corpus
            corpus = _corpus(self.model, Path(corpus), n)
        if corpus is None and self.store is not None:  # browse the store's own documents
            corpus = [self.store.document(d).ids.astype(np.int64).tolist()
                      for d in range(min(n, self.store.n_docs))]
        if corpus is None:
            try:
                corpus = (_forecast_windows(self.model, n) if self.kind == "forecaster"
                          else model_corpus(self.model, n=n))
            except InputError:
                corpus = []
        self.corpus = list(corpus)
        self._cache: dict[str, Any] = {}
        self._batcher = Batcher(lambda key, items: self._explain_batch(
            items, list(key[0]), json.loads(key[1])))

    # -- model facts ---------------------------------------------------------------------
    @property
    def tokenizer(self) -> Any:
        """The tokenizer of the input text (a translation model's source tokenizer)."""
        tok = getattr(self.model, "tokenizer", None)
        return tok.get("source") if isinstance(tok, dict) else tok

    @property
    def reads_text(self) -> bool:
        return self.tokenizer is not None and hasattr(self.tokenizer, "encode")

    def classes(self) -> list[str] | None:
        c = self.meta.get("classes")
        return [str(v) for v in c] if c else None

    def methods(self) -> list[str]:
        from .methods import method_names
        return list(method_names())

    def info(self) -> dict[str, Any]:
        """The model card: kind, task, layers, classes, metrics, corpus and what is there."""
        from torch import nn
        layers = [{"name": name, "input_size": m.input_size, "hidden_size": m.hidden_size,
                   "num_layers": m.num_layers, "bidirectional": m.bidirectional}
                  for name, m in self.model.named_modules() if isinstance(m, nn.LSTM)]
        metrics = getattr(self.model, "metrics", None) or {}
        return json_safe({
            "name": self.model_dir.name, "kind": self.kind, "task": self.meta.get("task"),
            "classes": self.classes(), "reads_text": self.reads_text, "layers": layers,
            "parameters": int(sum(p.numel() for p in self.model.parameters())),
            "metrics": {k: v for k, v in metrics.items() if k in ("test", "validation")},
            "methods": self.methods(), "corpus_size": len(self.corpus),
            "store": None if self.store is None else {
                "tokens": int(self.store.n_tokens), "keys": self.store.keys()},
            "features": self.features(), "series": list(SERIES),
            "has_rules": self._rules_file() is not None or self.kind == "classifier",
            "has_automaton": str(self.meta.get("task", "")).startswith("formal/"),
            "has_evaluation": self._evaluation_file() is not None,
            "views": self.views(), "limits": self.limits.__dict__})

    def views(self) -> list[str]:
        v = ["sentence", "states", "neurons", "rules", "evaluation"]
        if self.kind == "seq2seq":
            v.append("translation")
        if self.kind == "forecaster":
            v.append("forecast")
        return v

    def features(self) -> list[str]:
        from .report import TEXT_FEATURES
        task = str(self.meta.get("task", ""))
        feats = TEXT_FEATURES.get(task, TEXT_FEATURES.get(task.split("/")[0], []))
        return list(feats) + ["position"]

    # -- inputs --------------------------------------------------------------------------
    def resolve(self, text: str | None = None, sequence: int | None = None) -> Any:
        """The input a request names: typed ``text`` or corpus ``sequence`` (an index)."""
        if (text is None) == (sequence is None):
            raise InputError("give either text (typed input) or sequence (a corpus index)")
        if sequence is not None:
            if not self.corpus:
                raise InputError("there is no corpus to pick from; start the server with "
                                 "--corpus FILE or --store STORE")
            if not 0 <= sequence < len(self.corpus):
                raise InputError(f"sequence {sequence} is out of range; the corpus has "
                                 f"{len(self.corpus)} sequences (0..{len(self.corpus) - 1})")
            item = self.corpus[sequence]
        else:
            if not self.reads_text:
                raise InputError(f"this {self.kind} model reads feature sequences, not text; "
                                 "pick a corpus sequence by its index")
            if not text or not text.strip():
                raise InputError("the input is empty; type a sentence")
            if len(text) > self.limits.max_chars:
                raise InputError(f"the input has {len(text)} characters; at most "
                                 f"{self.limits.max_chars} are accepted")
            item = text
        n = self._length(item)
        if n > self.limits.max_tokens:
            raise InputError(f"the input has {n} tokens; at most {self.limits.max_tokens} are "
                             "accepted")
        return item

    def _length(self, item: Any) -> int:
        if isinstance(item, str):
            tok = self.tokenizer
            return len(tok.split(item)) if hasattr(tok, "split") else len(item.split())
        return len(item)

    def corpus_page(self, offset: int = 0, limit: int = 50) -> dict[str, Any]:
        items = []
        for i in range(offset, min(len(self.corpus), offset + limit)):
            it = self.corpus[i]
            if isinstance(it, str):
                preview = it[:200]
            elif self.reads_text and np.asarray(it).ndim == 1:  # token ids of a text model
                preview = " ".join(self.tokenizer.tokens([int(v) for v in it]))[:200]
            else:
                preview = f"{len(it)} steps × {np.asarray(it).shape[-1]} features"
            items.append({"sequence": i, "preview": preview})
        return {"total": len(self.corpus), "offset": offset, "items": items}

    # -- sentence view -------------------------------------------------------------------
    def explain(self, item: Any, methods: list[str] | None = None, target: Any = None
                ) -> dict[str, Any]:
        """Prediction and every method's scores for one input, side by side.

        Typed texts of concurrent requests (same methods and target) are explained together,
        one batched call per method (:class:`Batcher`); other inputs one at a time.
        """
        names = list(dict.fromkeys(methods or self.methods()))
        unknown = sorted(set(names) - set(self.methods()))
        if unknown:
            raise InputError(f"unknown method(s) {unknown}; the methods are "
                             f"{', '.join(self.methods())}")
        if isinstance(item, str) and self.kind in ("classifier", "language_model"):
            key = (tuple(names), json.dumps(target))
            return self._batcher.submit(key, item)
        return self._explain_batch([_as_input(item)], names, target)[0]

    def _explain_batch(self, items: list[Any], names: list[str], target: Any
                       ) -> list[dict[str, Any]]:
        """:meth:`explain` for several inputs: one call per method over all of them, the
        methods side by side on the server's threads (one torch thread each; the costliest
        start first)."""
        from .explaining import explain
        from .threads import map_threads
        outs: list[dict[str, Any]] = [{"methods": {}} for _ in items]
        batch = items if len(items) > 1 else items[0]

        def one(name: str) -> tuple[str, Any]:
            try:
                return "ok", explain(self.model, batch, name, target=target,
                                     **INTERACTIVE.get(name, {}))
            except ModelError as e:
                return "refused", str(e)
            except LstmlensError:
                raise
            except (ValueError, RuntimeError, IndexError) as e:
                if len(items) > 1:
                    raise  # the Batcher then explains each input alone
                # one method failing on this input (e.g. inside Captum) is reported for that
                # method; it must not take the other methods' answers with it
                return "failed", f"{name} failed on this input ({type(e).__name__}: {e})"

        order = sorted(names, key=lambda n: COSTLIEST.index(n) if n in COSTLIEST
                       else len(COSTLIEST))
        with self.lock:
            done = dict(zip(order, map_threads(one, order), strict=True))
        for name in names:
            status, value = done[name]
            if status == "ok":
                for b, out in enumerate(outs):
                    add_method(out, value, b, name)
            elif status == "refused":
                for out in outs:
                    out["methods"][name] = {"error": value}
            else:
                outs[0]["methods"][name] = {"error": value}
        for out in outs:
            if "tokens" not in out:
                raise InputError("no method could explain this model: " + "; ".join(
                    f"{k}: {v['error']}" for k, v in out["methods"].items()))
        return [json_safe(out) for out in outs]

    def states_of(self, item: Any, series: list[str] | None = None) -> Any:
        from .states import collect_states
        with self.lock:
            return collect_states(self.model, [item], series=series)

    def gates(self, item: Any, step: int | None = None, series: list[str] | None = None
              ) -> dict[str, Any]:
        """Every series of every layer for one input: ``values[key]`` is ``(T, units)``,
        or the ``(units,)`` vector of one ``step``."""
        st = self.states_of(item, series)
        T = len(st.tokens[0])
        if step is not None and not 0 <= step < T:
            raise InputError(f"step {step} is out of range; the input has {T} tokens "
                             f"(0..{T - 1})")
        values = {}
        for key in st.series:
            v = st.sequence(key, 0)
            values[key] = rounded(v if step is None else v[step], 4)
        return {"tokens": st.tokens[0], "step": step, "keys": list(st.series),
                "values": values}

    # -- corpus states -------------------------------------------------------------------
    def corpus_states(self) -> Any:
        if not self.corpus:
            raise InputError("there is no corpus to search; start the server with "
                             "--corpus FILE or --store STORE")
        with self.lock:  # under the lock: two first requests compute it once
            if "states" not in self._cache:
                from .states import collect_states
                self._cache["states"] = collect_states(self.model, self.corpus)
        return self._cache["states"]

    def match(self, item: Any, key: str | None, start: int, end: int, threshold: float,
              units: list[int] | None = None, top: int = 20, context: int = 5,
              min_overlap: int | None = None) -> dict[str, Any]:
        """Hypothesis matching: units on over ``[start, end)`` of the input (or the given
        ``units``), and the corpus phrases where the same units are on."""
        from .matching import find_matches, select_cells
        top = min(top, self.limits.max_top)
        q = self.states_of(item, ["cell", "hidden"])
        k = q.key(key, "cell")
        v = q.sequence(k, 0, scaled=True)
        if units is None:
            cells = select_cells(v, (start, end), threshold)
        else:
            bad = [u for u in units if not 0 <= u < v.shape[1]]
            if bad:
                raise InputError(f"unit(s) {bad} out of range; {k} has {v.shape[1]} units")
            cells = sorted(set(units))
        out = {"key": k, "span": [start, end], "threshold": threshold, "units": cells,
               "selected": q.tokens[0][start:end], "matches": []}
        if not cells:
            out["message"] = ("no unit is ≥ the threshold over the whole span; lower the "
                              "threshold or choose a shorter span")
            return out
        if min_overlap is not None and not 1 <= min_overlap <= len(cells):
            raise InputError(f"min_overlap must be 1..{len(cells)} (the number of selected "
                             f"units), got {min_overlap}")
        if self.store is not None:
            from .store_query import match
            if k not in self.store.keys():
                raise InputError(f"the store has no series {k}; it has "
                                 f"{', '.join(self.store.keys())}")
            m = match(self.store, k, cells, threshold, min_units=min_overlap, top=top)
            out["matches"] = m.to_list(self.store, context=context)
            out["total"] = len(m)
            return json_safe(out)
        st = self.corpus_states()
        for m in find_matches(st, cells, key=k, threshold=threshold, top=top,
                              min_overlap=min_overlap):
            toks = st.tokens[m.sequence]
            out["matches"].append({
                "sequence": m.sequence, "start": m.start, "end": m.end,
                "overlap": m.overlap, "union": m.union,
                "before": toks[max(0, m.start - context):m.start],
                "tokens": toks[m.start:m.end], "after": toks[m.end:m.end + context]})
        return out

    # -- neurons -------------------------------------------------------------------------
    def saturation(self) -> dict[str, Any]:
        if "saturation" not in self._cache:
            if self.store is not None:
                from .store_query import saturation
                res = {}
                for key in self.store.keys():
                    if key.rsplit(".", 1)[-1] in ("input_gate", "forget_gate", "output_gate"):
                        s = saturation(self.store, key)
                        res[key] = {"left": rounded(s.left), "right": rounded(s.right)}
                self._cache["saturation"] = {"steps": int(self.store.n_tokens),
                                             "gates": res}
            else:
                from .saturation import saturation
                s = saturation(self.corpus_states())
                self._cache["saturation"] = {
                    "steps": s.steps, "summary": s.summary(),
                    "gates": {k: {"left": rounded(s.left[k]), "right": rounded(s.right[k])}
                              for k in s.left}}
        return self._cache["saturation"]

    def units(self, feature: str, k: int = 20) -> dict[str, Any]:
        """Units ranked by how well they track a per-token feature."""
        from .cells import find_units
        if feature not in self.features():
            raise InputError(f"unknown feature {feature!r}; this model's features are "
                             f"{', '.join(self.features())}")
        key = f"units/{feature}"
        if key not in self._cache:
            metric = "auc" if feature.startswith("inside") else "correlation"
            self._cache[key] = find_units(self.corpus_states(), feature, metric=metric)
        return json_safe(self._cache[key].to_dict(min(k, self.limits.max_top)))

    def contexts(self, key: str | None, unit: int, k: int = 10, window: int = 5
                 ) -> dict[str, Any]:
        """The ``k`` corpus steps where ``unit`` is highest, with their context."""
        k = min(k, self.limits.max_top)
        if self.store is not None:
            from .store_query import top_contexts
            full = key or [s for s in self.store.keys() if s.endswith(".cell")][-1]
            if full not in self.store.keys():
                raise InputError(f"the store has no series {full}")
            if not 0 <= unit < self.store.units[full]:
                raise InputError(f"unit {unit} out of range; {full} has "
                                 f"{self.store.units[full]} units")
            return json_safe({"key": full, "unit": unit,
                            "contexts": top_contexts(self.store, full, unit, k, window)})
        st = self.corpus_states()
        full = st.key(key)
        H = st.units(full)
        if not 0 <= unit < H:
            raise InputError(f"unit {unit} out of range; {full} has {H} units (0..{H - 1})")
        flat = st.flat(full)[:, unit]  # (N,)
        seq, pos = st.positions()
        best = np.argsort(-flat, kind="stable")[:k]
        out = []
        for j in best.tolist():
            i, t = int(seq[j]), int(pos[j])
            toks = st.tokens[i]
            a, b = max(0, t - window), min(len(toks), t + window + 1)
            out.append({"sequence": i, "step": t, "value": round(float(flat[j]), 4),
                        "tokens": toks[a:b], "at": t - a})
        return {"key": full, "unit": unit, "contexts": out}

    # -- rules, automata, evaluation -----------------------------------------------------
    def _rules_file(self) -> Path | None:
        p = self.model_dir / "rules.json"
        return p if p.is_file() else None

    def _evaluation_file(self) -> Path | None:
        for p in (self.model_dir / "evaluation.json",
                  self.model_dir / "evaluation" / "evaluation.json"):
            if p.is_file():
                return p
        return None

    def rules(self, top: int = 50) -> dict[str, Any]:
        """Phrase rules: ``rules.json`` of the model directory, else fitted on the corpus."""
        if "rules" not in self._cache:
            path = self._rules_file()
            texts = [c for c in self.corpus if isinstance(c, str)]
            if path is not None:
                doc = _read_json(path)
                doc["source"] = path.name
            elif self.kind == "classifier" and self.reads_text and texts:
                with self.lock:
                    pr = _fit_rules(self.model, texts)
                    doc = pr.to_dict()
                    doc["fidelity_on_corpus"] = float(pr.fidelity(self.model, texts))
                doc["source"] = f"fitted on the {len(texts)} corpus texts"
            else:
                raise InputError(f"no phrase rules for this {self.kind} model: rules need a "
                                 "text classifier and a corpus of texts (--corpus FILE), or a "
                                 "rules.json in the model directory (`lstmlens rules MODEL_DIR "
                                 "--json > MODEL_DIR/rules.json`)")
            self._cache["rules"] = json_safe(doc)
        doc = dict(self._cache["rules"])
        doc["rules"] = doc.get("rules", [])[:min(top, self.limits.max_top)]
        return doc

    def automaton(self, method: str = "quantize") -> dict[str, Any]:
        """An automaton extracted from a formal-language classifier, with its SVG."""
        if method not in ("quantize", "lstar"):
            raise InputError(f"method must be quantize or lstar, got {method!r}")
        if not str(self.meta.get("task", "")).startswith("formal/"):
            raise InputError(f"automata are extracted from formal-language classifiers; this "
                             f"model's task is {self.meta.get('task')!r}")
        key = f"automaton/{method}"
        if key not in self._cache:
            from .extraction import extract_automaton
            with self.lock:
                ex = extract_automaton(self.model, method=method)
            d = ex.to_dict()
            d["svg"] = ex.automaton.to_svg()
            d["summary"] = ex.summary()
            self._cache[key] = json_safe(d)
        return self._cache[key]

    def evaluation(self) -> dict[str, Any]:
        path = self._evaluation_file()
        if path is None:
            raise InputError("no evaluation has been computed for this model; run `lstmlens "
                             "evaluate MODEL_DIR --out MODEL_DIR` first")
        doc = _read_json(path)
        return json_safe({"source": str(path.relative_to(self.model_dir)),
                        **{k: doc.get(k) for k in ("methods", "curves", "better", "settings",
                                                   "notes", "accuracy")}})

    # -- task views ----------------------------------------------------------------------
    def translate(self, text: str) -> dict[str, Any]:
        if self.kind != "seq2seq":
            raise InputError(f"translation needs a translation model; this is a {self.kind}")
        from .decoding import translate
        item = self.resolve(text=text)
        with self.lock:
            t = translate(self.model, item, truncate=True)
        d = t.to_json()
        d["attention"] = rounded(t.attention, 4)
        return json_safe(d)

    def forecast(self, sequence: int, method: str = "integrated_gradients", step: int = 0
                 ) -> dict[str, Any]:
        if self.kind != "forecaster":
            raise InputError(f"forecasts need a forecaster; this is a {self.kind}")
        from .explaining import explain
        item = self.resolve(sequence=sequence)
        with self.lock:
            att = explain(self.model, _as_input(item), method, target=step)
        L = int(att.lengths[0])
        window = np.asarray(item, dtype=np.float64)
        return json_safe({"sequence": sequence, "method": method, "step": step,
                        "window": rounded(window, 5), "forecast": rounded(att.prediction[0]),
                        "scores": rounded(att.scores[0, :L], 6),
                        "delta": None if att.delta is None else float(att.delta[0])})


def _as_input(item: Any) -> Any:
    """What ``explain`` reads: text as it is, id lists and ``[T, F]`` windows as tensors."""
    if isinstance(item, str):
        return item
    arr = np.asarray(item)
    return torch.from_numpy(arr.astype(np.int64) if arr.dtype.kind in "iu"
                            else arr.astype(np.float32))


def _forecast_windows(model: Any, n: int) -> list[np.ndarray]:
    """A forecaster's corpus: the end of its training series, then up to ``n`` test
    origins of its built-in series (each window ``[T, F]``)."""
    from .cli import _forecast_window
    out = []
    for spec in ["history"] + [f"test:{i}" for i in range(n - 1)]:
        try:
            out.append(_forecast_window(model, spec)[0][0].numpy())
        except InputError:
            if spec != "history":
                break
    return out


def _fit_rules(model: Any, texts: list[str]) -> Any:
    """Phrase rules with the default importance method, or CD where the default cannot
    read the model (the cell decompositions need a one-direction top LSTM)."""
    from .rules import PhraseRules
    try:
        return PhraseRules().fit(model, texts)
    except ModelError:
        return PhraseRules(method="cd").fit(model, texts)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise InputError(f"{path.name} cannot be read: {e}") from None
    if not isinstance(doc, dict):
        raise InputError(f"{path.name} does not hold a JSON object")
    return doc


__all__ = ["Explorer", "Limits"]
