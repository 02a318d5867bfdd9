"""``evaluate``: how far can each explanation method be trusted on this model and data?

One call runs the standard tests of REFERENCES §5–§6 over a sample of sentences, every
method beside a random ranking of the same sentences, every figure with a bootstrap 95 %
interval: faithfulness (:mod:`lstmlens.faithfulness`), ground truth on the planted-token
task (:mod:`lstmlens.ground_truth`), attention tests (:mod:`lstmlens.attention_tests`),
sanity checks (:mod:`lstmlens.sanity`) and stability across retrained models
(:mod:`lstmlens.stability`). The last two need more models and are opt-in ``checks``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .errors import InputError, ModelError
from .evaluation_result import Evaluation
from .faithfulness import BINS, MASKINGS, Masker, faithfulness
from .ground_truth import planted_mask, planted_scores, planted_words
from .intervals import bootstrap_mean
from .parts import parts_of

CHECKS = ("faithfulness", "ground_truth", "attention", "sanity", "stability")
DEFAULT_CHECKS = ("faithfulness", "ground_truth", "attention")
# every registered method but the sampling ones (slow and noisy at default sample counts)
DEFAULT_METHODS = ("cd", "lrp", "integrated_gradients", "occlusion", "saliency",
                   "grad_x_input", "attention")
RANDOM = "random"


@dataclass
class Sample:
    """The sentences evaluated: token ids, tokens, labels (or None), each model's target."""

    ids: list[np.ndarray]  # (L_b,) token ids per sentence
    tokens: list[list[str]]
    labels: np.ndarray | None
    description: str
    notes: list[str]

    def __len__(self) -> int:
        return len(self.ids)


def _default_texts(model: Any):
    """The test split of the data set recorded in the model's meta."""
    from .stability import task_splits
    return task_splits(model).test


def load_sample(model: Any, data: Any = None, n: int | None = 500, seed: int = 0) -> Sample:
    """Tokenise ``data`` for ``model`` and draw ``n`` sentences of it (seeded).

    ``data``: ``None`` (the test split of the data set the model's meta records), a path to
    a ``.csv``/``.tsv``/``.jsonl`` (text and label columns) or ``.txt`` (one text a line)
    file, a list of texts, or a :class:`~lstmlens.textdata.TextData`.
    """
    from .textdata import TextData, model_tokenizer
    try:
        tok = model_tokenizer(model)
    except ModelError:
        raise ModelError("evaluate reads text: this model has no tokenizer (it takes "
                         "features); evaluate a token model (lstmlens train sentiment / "
                         "planted)") from None
    notes: list[str] = []
    if data is None:
        texts = _default_texts(model)
        desc = f"test split of {(getattr(model, 'meta', None) or {}).get('task')} data"
    elif isinstance(data, TextData):
        texts, desc = data, "given texts"
    elif isinstance(data, (str, Path)) and Path(data).exists():
        from .datasets.userdata import load_text_file
        path = Path(data)
        if path.suffix.lower() == ".txt":
            lines = [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines()]
            texts = TextData([ln for ln in lines if ln])
        else:
            texts = load_text_file(path)
        desc = f"file {path.name}"
    elif isinstance(data, (str, Path)):
        raise InputError(f"data {str(data)!r} is not a file; give a .csv/.tsv/.jsonl file with "
                         "text and label columns, a .txt file of one text a line, or a list "
                         "of texts")
    elif isinstance(data, Sequence) and all(isinstance(t, str) for t in data):
        texts, desc = TextData(list(data)), "given texts"
    else:
        raise InputError(f"data must be a path, a list of texts or TextData, got "
                         f"{type(data).__name__}")
    if len(texts) == 0:
        raise InputError(f"the data ({desc}) holds no texts; evaluate needs at least one")
    if n is not None and n < 1:
        raise InputError(f"n must be ≥ 1 (sentences to evaluate), got {n}")
    total = len(texts)
    if n is None or n >= total:
        if n is not None and n > total:
            notes.append(f"asked for n={n} sentences but the data has {total}; using all "
                         f"{total}")
        idx = np.arange(total)
    else:
        idx = np.sort(np.random.default_rng(seed).choice(total, size=n, replace=False))
    max_len = (getattr(model, "meta", None) or {}).get("max_length")
    ids, toks, keep = [], [], []
    cut = 0
    for i in idx:
        text = texts.texts[i]
        try:
            row = tok.encode(text, max_length=max_len, truncate=True)
        except InputError:  # an empty text: nothing to explain
            continue
        cut += max_len is not None and len(tok.split(text)) > max_len
        ids.append(np.asarray(row, dtype=np.int64))
        toks.append(tok.tokens(row))
        keep.append(i)
    if not ids:
        raise InputError(f"none of the {len(idx)} texts drawn from {desc} has a token")
    if len(keep) < len(idx):
        notes.append(f"{len(idx) - len(keep)} empty texts skipped")
    if cut:
        notes.append(f"{cut} texts longer than the model's max_length={max_len} were cut")
    labels = None if texts.labels is None else np.asarray(texts.labels)[keep]
    return Sample(ids, toks, labels, desc, notes)


def _batches(sample: Sample, batch_size: int, same_length: bool = False) -> list[np.ndarray]:
    """Sentence indices grouped by similar length (less padding); with ``same_length`` each
    batch holds sentences of one length only (no padding, so no packed sequences: gradient
    methods through packed LSTMs are many times slower)."""
    lengths = np.array([len(i) for i in sample.ids])
    order = np.argsort(lengths, kind="stable")
    if not same_length:
        return [order[s:s + batch_size] for s in range(0, len(order), batch_size)]
    out = []
    for L in np.unique(lengths):
        group = order[lengths[order] == L]
        out += [group[s:s + batch_size] for s in range(0, len(group), batch_size)]
    return out


def _padded(sample: Sample, rows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    L = torch.tensor([len(sample.ids[r]) for r in rows])
    x = torch.zeros(len(rows), int(L.max()), dtype=torch.long)  # (B, T), 0 = PAD
    for j, r in enumerate(rows):
        x[j, :len(sample.ids[r])] = torch.from_numpy(sample.ids[r])
    return x, L


def predictions(model: Any, sample: Sample, batch_size: int = 256) -> np.ndarray:
    """``(N, C)`` class probabilities of ``model`` on the sample."""
    parts = parts_of(model)
    parts.model.eval()
    out = None
    for rows in _batches(sample, batch_size):
        x, L = _padded(sample, rows)
        with torch.no_grad():
            p = torch.softmax(parts.logits_from_embedded(parts.embed(x), L).float(), -1)
        if out is None:
            out = np.zeros((len(sample), p.shape[1]))
        out[rows] = p.numpy()
    return out


def explain_sample(model: Any, sample: Sample, method: str, target: np.ndarray,
                   batch_size: int = 64, seed: int = 0,
                   options: dict[str, Any] | None = None) -> list[np.ndarray]:
    """Scores ``(L_b,)`` of ``method`` for each sentence (``"random"``: uniform noise);
    ``options`` go to the method.

    Raises :class:`~lstmlens.errors.ModelError` when the method cannot explain the model.
    """
    if method == RANDOM:
        rng = np.random.default_rng(seed)
        return [rng.random(len(i)) for i in sample.ids]
    from .explaining import explain
    out: list[np.ndarray] = [np.zeros(0)] * len(sample)
    for rows in _batches(sample, batch_size, same_length=True):
        x, L = _padded(sample, rows)
        att = explain(model, x, method, target=torch.as_tensor(target[rows]), lengths=L,
                      **(options or {}))
        ts = att.token_scores().double().numpy()  # (B, T)
        for j, r in enumerate(rows):
            out[r] = ts[j, :int(L[j])]
    return out


def _faithfulness(model, sample: Sample, scores, target, masking, batch_size):
    parts = parts_of(model)
    from .textdata import model_tokenizer
    unk = model_tokenizer(model).unk_id
    n = len(sample)
    res: dict[str, np.ndarray] = {}
    for rows in _batches(sample, batch_size):
        x, L = _padded(sample, rows)
        with torch.no_grad():
            e = parts.embed(x).float()  # (B, T, E)
        m = Masker(parts, e, L, torch.as_tensor(target[rows]), masking, unk)
        f = faithfulness(m, [scores[r] for r in rows])
        for k, v in f.items():
            if k not in res:
                res[k] = np.zeros((n, *v.shape[1:]))
            res[k][rows] = v
    return res


def evaluate(model: Any, data: Any = None, *, methods: Sequence[str] | None = None,
             n: int | None = 500, seed: int = 0, masking: str = "remove",
             checks: Sequence[str] = DEFAULT_CHECKS, variants: Any = None,
             sanity_n: int = 100, permutations: int = 100, batch_size: int = 64,
             resamples: int = 2000, variant_epochs: int | None = None,
             method_options: dict[str, dict[str, Any]] | None = None,
             progress: Any = None) -> Evaluation:
    """Measure how far each explanation method can be trusted on ``model``.

    Parameters
    ----------
    model
        A token classifier with a tokenizer (``lstmlens.load`` of a text model directory).
    data
        Texts to evaluate on (see :func:`load_sample`); default the model's test split.
    methods
        Method names (default :data:`DEFAULT_METHODS`); a random ranking is always added.
    n
        Sentences drawn (seeded); more than the data has uses all of it (and says so).
    masking
        How tokens are hidden: ``"remove"``, ``"pad"``, ``"unk"`` or ``"zero"``.
    checks
        Any of :data:`CHECKS`; ``sanity`` and ``stability`` need more models (weight-
        randomised copies; retrained ``variants`` — trained here with ``variant_epochs``
        when not given, see :func:`lstmlens.stability.train_variants`).
    sanity_n
        Sentences used by the sanity and stability checks (the first of the sample).
    permutations
        Random permutations of the attention per sentence (attention tests).
    method_options
        Options per method, e.g. ``{"integrated_gradients": {"steps": 20}}``; the sanity
        and stability checks explain their models with the same options.

    Returns
    -------
    Evaluation
        Per-method figures with intervals; ``.to_json()``, ``.to_csv()``, ``.to_html()``,
        ``.save(dir)`` (with PNG plots).

    Examples
    --------
    >>> ev = evaluate(lstmlens.load("runs/planted"), n=200)  # doctest: +SKIP
    >>> ev.methods["cd"]["planted_precision"]["value"] >= 0.9  # doctest: +SKIP
    True
    """
    start = time.perf_counter()
    if masking not in MASKINGS:
        raise InputError(f"masking must be one of {', '.join(MASKINGS)}; got {masking!r}")
    unknown = sorted(set(checks) - set(CHECKS))
    if unknown:
        raise InputError(f"unknown check(s) {unknown}; the checks are: {', '.join(CHECKS)}")
    from .methods import method_names
    names = list(DEFAULT_METHODS if methods is None else methods)
    known = method_names()
    bad = [m for m in names if m not in known and m != RANDOM]
    if bad or not names:
        raise InputError(f"unknown method(s) {bad}; the methods are: {', '.join(known)}"
                         if bad else "give at least one method")
    names = [m for m in dict.fromkeys(names) if m != RANDOM] + [RANDOM]
    say = progress or (lambda msg: None)
    opts = dict(method_options or {})
    stray = sorted(set(opts) - set(names))
    if stray:
        raise InputError(f"method_options names method(s) {stray} that are not evaluated "
                         f"({', '.join(names)})")
    model.eval()
    sample = load_sample(model, data, n, seed)
    probs = predictions(model, sample)
    target = probs.argmax(1)
    ci = lambda v, s=0: bootstrap_mean(v, resamples=resamples, seed=seed + s)  # noqa: E731
    scores: dict[str, list[np.ndarray]] = {}
    skipped: dict[str, str] = {}
    seconds: dict[str, float] = {}
    for m in names:
        say(f"explaining with {m}")
        t0 = time.perf_counter()
        try:
            scores[m] = explain_sample(model, sample, m, target, batch_size, seed,
                                       opts.get(m))
        except ModelError as e:
            skipped[m] = str(e)
        seconds[m] = time.perf_counter() - t0
    figures: dict[str, dict[str, Any]] = {m: {} for m in scores}
    curves: dict[str, dict[str, list[float]]] = {}
    if "faithfulness" in checks:
        for m in scores:
            say(f"faithfulness of {m}")
            t0 = time.perf_counter()
            f = _faithfulness(model, sample, scores[m], target, masking, batch_size)
            seconds[m] += time.perf_counter() - t0
            for k in ("comprehensiveness_aopc", "sufficiency_aopc", "deletion_auc",
                      "insertion_auc"):
                figures[m][k] = ci(f[k])
            curves[m] = {"deletion": f["deletion_curve"].mean(0).tolist(),
                         "insertion": f["insertion_curve"].mean(0).tolist()}
    ground: dict[str, Any] | None = None
    words = planted_words(getattr(model, "meta", None))
    if "ground_truth" in checks and words:
        masks = [planted_mask(t, words) for t in sample.tokens]
        for m in scores:
            g = planted_scores(scores[m], masks)
            figures[m]["planted_precision"] = ci(g["precision"])
            figures[m]["planted_mean_rank"] = ci(g["mean_rank"])
        g = planted_scores(scores[RANDOM], masks)
        ground = {"chance_precision": ci(g["chance_precision"]),
                  "chance_mean_rank": ci(g["chance_mean_rank"]),
                  "sentences_with_planted": int(sum(bool(k.any()) for k in masks))}
    sub = Sample(sample.ids[:sanity_n], sample.tokens[:sanity_n],
                 None if sample.labels is None else sample.labels[:sanity_n],
                 sample.description, [])
    sub_scores = {m: s[:sanity_n] for m, s in scores.items()}
    if variants is None and ("stability" in checks or "sanity" in checks):
        from .stability import train_variants
        say("training variant models (seeds, data halves, permuted labels)")
        stable = "stability" in checks
        variants = train_variants(model, epochs=variant_epochs, seed=seed,
                                  seeds=(seed + 1, seed + 2) if stable else (),
                                  halves=stable, permuted="sanity" in checks)
    attention: dict[str, Any] | None = None
    if "attention" in checks:
        from .attention_tests import attention_report
        say("attention tests")
        attention = attention_report(model, sample, target, scores, ci=ci,
                                     permutations=permutations, seed=seed,
                                     variants=variants, batch_size=batch_size)
    sanity: dict[str, Any] | None = None
    if "sanity" in checks:
        from .sanity import sanity_report
        say("sanity checks")
        sanity = sanity_report(model, sub, target[:sanity_n], sub_scores, ci=ci, seed=seed,
                               permuted=getattr(variants, "permuted", None),
                               batch_size=batch_size, options=opts)
        for m, r in sanity["methods"].items():
            figures[m]["sanity_spearman"] = r["spearman"]
    stability: dict[str, Any] | None = None
    if "stability" in checks:
        from .stability import stability_report
        say("stability across retrained models")
        stability = stability_report(sub, target[:sanity_n], sub_scores, variants, ci=ci,
                                     seed=seed, batch_size=batch_size, options=opts)
        for m, r in stability["methods"].items():
            figures[m]["stability_spearman"] = r["seeds"]
    accuracy = (None if sample.labels is None
                else ci((target == sample.labels).astype(float)))
    settings = {"n": len(sample), "seed": seed, "masking": masking, "bins": list(BINS),
                "checks": list(checks), "data": sample.description, "resamples": resamples,
                "sanity_n": len(sub),
                "interval": "95% percentile bootstrap over sentences",
                "ranking": "faithfulness: by signed score (evidence for the explained "
                           "class first); ground truth: by |score|",
                "target": "the model's predicted class", "method_options": opts,
                "task": (getattr(model, "meta", None) or {}).get("task")}
    return Evaluation(methods=figures, skipped=skipped, curves=curves, ground_truth=ground,
                      attention=attention, sanity=sanity, stability=stability,
                      accuracy=accuracy, settings=settings, notes=list(sample.notes),
                      seconds={"total": time.perf_counter() - start, **seconds})
