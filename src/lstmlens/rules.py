"""Phrase rules distilled from an LSTM classifier (Murdoch & Szlam, ICLR 2017; REFERENCES §3.4).

:class:`PhraseRules` turns word importance into an ordered pattern-matching classifier:

1. importance — for every training text and class k, each word's score for k from a
   registered explanation method (``explain(..., target=k)``), minus its mean score for the
   other classes: a contrast in logit units (for two classes, the word's share of the
   log-odds). A word is *important for k* when its contrast exceeds ``threshold`` (default
   log 1.1, the paper's c = 1.1 on the multiplicative scale);
2. extraction — runs of 1..``max_len`` important words; with ``gaps`` neighbours may be up to
   ``max_gap`` unimportant words apart (those words are skipped, as in the paper's patterns);
3. selection — a phrase is kept for k when it was important for k in at least
   ``min_support`` texts and, among all training texts it matches, the model predicts k for a
   share ≥ ``min_precision`` (its *specificity*, the paper's ordering key). With
   ``confidence`` z > 0 the ordering key is the Wilson lower bound of that share, z standard
   errors below it, so that a rule seen in 3 texts does not outrank one seen in 300 with
   nearly the same precision (z = 0: the plain share, as in the paper);
4. classifier — rules are tried in order, the first match decides: ``order="specificity"``
   (the paper: precision, then support) or ``"cover"`` (sequential covering: each next rule
   is the most specific on the texts no earlier rule matches). A text that no rule matches
   gets ``default_``: the class the model predicts most often for the training texts no rule
   matches.

A pattern matches a text when its words occur in order with at most ``max_gap`` other words
between neighbours (none without ``gaps``). Each rule also names the hidden units that best
separate the training texts it matches from the rest (AUC of the state the head reads).
"""

from __future__ import annotations

import html
import json
import math
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from scipy.sparse import csr_matrix
from scipy.stats import rankdata

from .batching import pad_batch
from .errors import InputError, ModelError
from .explaining import explain
from .parts import parts_of
from .tokenizers import Tokenizer

__all__ = ["PhraseRules", "Rule", "check_classifier", "matches", "model_predictions", "phrases",
           "unit_separation", "wilson_lower_bound"]


def wilson_lower_bound(hits: float, n: float, z: float) -> float:
    """Wilson score lower bound of a share ``hits / n``, ``z`` standard errors below it.

    ``z = 0`` gives the share itself.

    Examples
    --------
    >>> round(wilson_lower_bound(3, 3, 1.0), 3), round(wilson_lower_bound(300, 300, 1.0), 3)
    (0.75, 0.997)
    """
    if n <= 0:
        raise InputError(f"a share needs n > 0 texts, got {n}")
    p, z2 = hits / n, z * z
    centre = p + z2 / (2 * n)
    spread = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return (centre - spread) / (1 + z2 / n)


def matches(words: Sequence[str], pattern: Sequence[str], max_gap: int = 3) -> bool:
    """Whether ``pattern``'s words occur in ``words`` in order, at most ``max_gap`` words apart.

    Examples
    --------
    >>> matches("not a very good film".split(), ("not", "good"), max_gap=2)
    True
    >>> matches("not a very good film".split(), ("not", "good"), max_gap=1)
    False
    """
    return _matches_index(_position_index(words), pattern, max_gap)


def _matches_index(index: dict[str, list[int]], pattern: Sequence[str], max_gap: int) -> bool:
    ends = index.get(pattern[0], [])  # positions where a match of the first k words can end
    for w in pattern[1:]:
        if not ends:
            return False
        ends = [j for j in index.get(w, []) if any(0 < j - i <= max_gap + 1 for i in ends)]
    return bool(ends)


def phrases(words: Sequence[str], important: Sequence[int], max_len: int = 4,
            max_gap: int = 3) -> Iterator[tuple[tuple[str, ...], list[int]]]:
    """Phrases of important words: runs of 1..``max_len`` neighbouring ``important`` positions
    (sorted), neighbours at most ``max_gap`` words apart; yields ``(pattern, positions)``.

    Examples
    --------
    >>> [p for p, _ in phrases("not at all good".split(), [0, 3], max_gap=2)]
    [('not',), ('not', 'good'), ('good',)]
    """
    for a in range(len(important)):
        for b in range(a, min(a + max_len, len(important))):
            if b > a and important[b] - important[b - 1] - 1 > max_gap:
                break
            pos = list(important[a:b + 1])
            yield tuple(words[t] for t in pos), pos


def unit_separation(states: np.ndarray, mask: np.ndarray, ranks: np.ndarray | None = None
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Per unit, how well ``states`` (N, H) separate ``mask`` (N,) texts from the rest.

    Returns the AUC (probability that a masked text's value exceeds an unmasked one's, ties
    counted half) and the difference of means, each ``(H,)``. ``ranks`` may pass
    ``rankdata(states, axis=0)`` computed once for many masks.
    """
    mask = np.asarray(mask, bool)
    n1, n0 = int(mask.sum()), int((~mask).sum())
    if n1 == 0 or n0 == 0:
        raise InputError("unit separation needs texts on both sides of the mask")
    r = rankdata(states, axis=0) if ranks is None else ranks  # (N, H) average ranks
    auc = (r[mask].sum(0) - n1 * (n1 + 1) / 2) / (n1 * n0)  # Mann–Whitney U / (n1 n0)
    diff = states[mask].mean(0) - states[~mask].mean(0)
    return auc, diff


def check_classifier(model: Any):
    """The parts and word tokenizer of a text classifier; ModelError for any other model."""
    kind = getattr(model, "kind", None)
    if kind is not None and kind != "classifier":
        raise ModelError(f"phrase rules need a text classifier; this is a {kind} model")
    parts = parts_of(model)
    if getattr(parts, "outputs", "classes") != "classes":
        raise ModelError(f"phrase rules need a text classifier; this model's head gives "
                         f"{parts.outputs}, not classes")
    tok = getattr(model, "tokenizer", None) or getattr(parts.model, "tokenizer", None)
    if parts.input_kind != "tokens" or not isinstance(tok, Tokenizer) or tok.level != "word":
        raise ModelError("phrase rules need a classifier of words: token inputs and a "
                         "word tokenizer (a model trained with lstmlens on text)")
    if parts.head.out_features < 2:
        raise ModelError(f"phrase rules need a classifier of ≥ 2 classes; its head has "
                         f"{parts.head.out_features} output")
    return parts, tok


@dataclass
class Rule:
    """``pattern → class``: one phrase rule and what it rests on.

    ``support``: training texts the pattern matches; ``precision``: the share of them the
    model assigns to the rule's class; ``extracted``: texts where the phrase was important
    for that class; ``importance``: its mean summed contrast there (logit units); ``units``:
    the hidden units that best separate matching texts (unit, AUC, mean difference).
    """

    pattern: tuple[str, ...]
    label: int
    class_name: str
    support: int
    precision: float
    extracted: int
    importance: float
    units: list[dict[str, float]] = field(default_factory=list)
    decided: int = 0  # training texts where it is the first rule that matches

    def matches(self, words: Sequence[str], max_gap: int = 3) -> bool:
        return matches(words, self.pattern, max_gap)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["pattern"] = list(self.pattern)
        return d

    def __str__(self) -> str:
        return f"{' … '.join(self.pattern)} → {self.class_name}"


class PhraseRules:
    """Phrase rules distilled from an LSTM text classifier (scikit-learn shaped).

    Parameters
    ----------
    method : str
        Word importance: any registered method scored per token in logit units —
        ``additive_cell_decomposition`` (default), ``cell_decomposition``, ``cd``,
        ``grad_x_input``, ``integrated_gradients``, ...
    max_len : int
        Longest phrase, in words (1..4 in the paper).
    gaps : bool
        Allow up to ``max_gap`` skipped words between a phrase's neighbours.
    max_gap : int
        The paper's n_p (3).
    threshold : float
        A word is important for a class when its contrast exceeds this (logit units).
    min_support : int
        Least number of training texts in which a phrase must be important for its class.
    min_precision : float
        Least share of matching training texts the model assigns to the rule's class.
    confidence : float
        z of the Wilson lower bound of that share used as the specificity that orders the
        rules (0: the plain share, the paper's; 1: one standard error below it).
    top : int, optional
        Keep only the first ``top`` rules (all when ``None``).
    order : {"specificity", "cover"}
        ``specificity`` (the paper): by precision on all training texts, then support.
        ``cover``: sequential covering — each next rule is the most specific one on the
        texts no earlier rule matches; stops when no rule beats their majority class.
    n_units : int
        Hidden units reported per rule.
    batch_size : int
        Texts per ``explain`` call.
    method_options : dict, optional
        Passed to ``explain`` (e.g. ``{"steps": 32}`` for integrated gradients).

    Examples
    --------
    >>> rules = PhraseRules(method="cd").fit(model, train_texts)  # doctest: +SKIP
    >>> rules.rules_[0]  # doctest: +SKIP
    Rule(pattern=('superb',), class_name='positive', support=41, precision=0.95, ...)
    >>> rules.fidelity(model, test_texts), rules.coverage(test_texts)  # doctest: +SKIP
    """

    def __init__(self, method: str = "additive_cell_decomposition", max_len: int = 4,
                 gaps: bool = True, max_gap: int = 3, threshold: float = math.log(1.1),
                 min_support: int = 10, min_precision: float = 0.6, top: int | None = None,
                 order: str = "specificity", n_units: int = 5, batch_size: int = 256,
                 method_options: dict[str, Any] | None = None, confidence: float = 0.0):
        self.method, self.max_len, self.gaps, self.max_gap = method, max_len, gaps, max_gap
        self.threshold, self.min_support, self.min_precision = threshold, min_support, \
            min_precision
        self.top, self.order, self.n_units, self.batch_size = top, order, n_units, batch_size
        self.method_options, self.confidence = method_options, confidence

    def get_params(self) -> dict[str, Any]:
        names = ("method", "max_len", "gaps", "max_gap", "threshold", "min_support",
                 "min_precision", "top", "order", "n_units", "batch_size", "method_options",
                 "confidence")
        return {n: getattr(self, n) for n in names}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"PhraseRules({args})"

    # -- checks ----------------------------------------------------------------------------
    def _check_params(self) -> None:
        from .methods import method_names
        names = method_names()
        if self.method not in names:
            raise InputError(f"unknown importance method {self.method!r}; accepted: "
                             f"{', '.join(names)}")
        for name, least in (("max_len", 1), ("max_gap", 0), ("min_support", 1), ("n_units", 0),
                            ("batch_size", 1)):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < least:
                raise InputError(f"{name} must be a whole number ≥ {least}, got {v!r}")
        if self.order not in ("specificity", "cover"):
            raise InputError(f"order must be 'specificity' or 'cover', got {self.order!r}")
        if self.top is not None and (not isinstance(self.top, int) or self.top < 1):
            raise InputError(f"top must be a whole number ≥ 1 or None, got {self.top!r}")
        if not 0.0 <= float(self.min_precision) <= 1.0:
            raise InputError(f"min_precision must lie in [0, 1], got {self.min_precision!r}")
        if isinstance(self.confidence, bool) or not isinstance(self.confidence, (int, float)) \
                or not 0.0 <= self.confidence < math.inf:
            raise InputError(f"confidence must be a number ≥ 0 (z of the Wilson lower bound), "
                             f"got {self.confidence!r}")
        if not math.isfinite(float(self.threshold)):
            raise InputError(f"threshold must be a finite number, got {self.threshold!r}")

    @staticmethod
    def _check_texts(texts: Any, what: str = "texts") -> list[str]:
        if isinstance(texts, str) or not isinstance(texts, (list, tuple)) or not all(
                isinstance(t, str) for t in texts):
            raise InputError(f"{what} must be a list of strings")
        if not texts:
            raise InputError(f"{what} is empty; give at least one text")
        return list(texts)

    def _check_fitted(self) -> None:
        if not hasattr(self, "rules_"):
            raise InputError("this PhraseRules is not fitted yet; call fit(model, texts) first")

    # -- the model's side --------------------------------------------------------------------
    @staticmethod
    def _encode(tok: Tokenizer, texts: list[str], max_length: int | None) -> list[list[int]]:
        ids = []
        for n, t in enumerate(texts):
            try:
                ids.append(tok.encode(t, max_length=max_length, truncate=True))
            except InputError as e:
                raise InputError(f"text {n}: {e}") from None
        return ids

    def _run_model(self, model: Any, parts, ids: list[list[int]], with_importance: bool):
        """Predictions (N,), pooled states (N, D) and, if asked, contrasts [(T_i, C)] per text."""
        C = parts.head.out_features
        order = np.argsort([len(i) for i in ids], kind="stable")  # similar lengths per batch
        preds = np.zeros(len(ids), np.int64)
        states: list[np.ndarray | None] = [None] * len(ids)
        contrast: list[np.ndarray | None] = [None] * len(ids)
        parts.model.eval()
        pooled: list[torch.Tensor] = []  # what the head reads, caught by a hook
        for s in range(0, len(ids), self.batch_size):
            idx = order[s:s + self.batch_size]
            x, L = pad_batch([ids[i] for i in idx])  # (B, T), (B,)
            pooled.clear()
            hook = parts.head.register_forward_hook(lambda m, inp, out: pooled.append(inp[0]))
            try:
                with torch.no_grad():
                    logits = parts.logits_from_embedded(parts.embed(x), L)  # (B, C)
            finally:
                hook.remove()
            z = pooled[0].double().numpy()  # (B, D)
            p = logits.argmax(-1).numpy()
            if with_importance:
                sc = np.stack([explain(model, x, self.method, target=k, lengths=L,
                                       **(self.method_options or {}))
                               .token_scores().double().numpy() for k in range(C)], -1)
                # (B, T, C): score for k minus the mean score for the other classes
                con = (C * sc - sc.sum(-1, keepdims=True)) / (C - 1)
            for j, i in enumerate(idx):
                preds[i], states[i] = p[j], z[j]
                if with_importance:
                    contrast[i] = con[j, :int(L[j])]
        return preds, np.stack(states), contrast

    @staticmethod
    def _max_length(model: Any) -> int | None:
        return (getattr(model, "meta", None) or {}).get("max_length")

    def _classes(self, model: Any, C: int) -> list[str]:
        classes = (getattr(model, "meta", None) or {}).get("classes")
        return [str(c) for c in classes] if classes and len(classes) == C else \
            [str(k) for k in range(C)]

    # -- fitting ---------------------------------------------------------------------------
    def fit(self, model: Any, texts: Sequence[str]) -> PhraseRules:
        """Extract rules from ``model``'s word importance on ``texts`` (no labels: the rules
        describe the model, so precision is measured against its predictions)."""
        self._check_params()
        parts, tok = check_classifier(model)
        texts = self._check_texts(texts)
        self.max_length_ = self._max_length(model)
        self.tokenizer_ = {"level": tok.level, "lowercase": tok.lowercase}
        ids = self._encode(tok, texts, self.max_length_)
        preds, states, contrast = self._run_model(model, parts, ids, with_importance=True)
        C = parts.head.out_features
        self.classes_ = self._classes(model, C)
        words = [tok.tokens(i) for i in ids]  # '<unk>' where the model saw an unknown word
        gap = self.max_gap if self.gaps else 0
        counts: Counter = Counter()
        weights: dict[tuple, float] = defaultdict(float)
        specials = (tok.pad_id, tok.unk_id)
        for w, con, i in zip(words, contrast, ids, strict=True):
            seen: dict[tuple, float] = {}
            a_ids = np.asarray(i)
            keep = (a_ids != specials[0]) & (a_ids != specials[1])  # (T,) no <pad>, <unk>
            ok = (con > self.threshold) & keep[:, None]  # (T, C) important for each class
            values = con.tolist()
            for k in range(C):
                for pattern, pos in phrases(w, np.flatnonzero(ok[:, k]).tolist(),
                                            self.max_len, gap):
                    v = sum(values[t][k] for t in pos)
                    seen[(pattern, k)] = max(seen.get((pattern, k), -math.inf), v)
            for key, v in seen.items():
                counts[key] += 1
                weights[key] += v
        index = [_position_index(w) for w in words]
        postings: dict[str, set[int]] = defaultdict(set)
        for n, w in enumerate(words):
            for t in w:
                postings[t].add(n)
        rules, hits, specificity, best = [], [], [], None
        for (pattern, k), n_ex in counts.items():
            if n_ex < self.min_support:
                continue
            cand = set.intersection(*(postings[t] for t in set(pattern)))
            hit = [n for n in cand if _matches_index(index[n], pattern, gap)]
            precision = float(np.mean(preds[hit] == k))
            if best is None or (precision, n_ex) > best[1:]:
                best = (pattern, precision, n_ex)
            if precision >= self.min_precision:
                rules.append(Rule(pattern, k, self.classes_[k], len(hit), precision, n_ex,
                                  weights[(pattern, k)] / n_ex))
                hits.append(np.array(hit, np.int64))
                specificity.append(wilson_lower_bound(precision * len(hit), len(hit),
                                                      float(self.confidence)))
        if not rules:
            raise InputError(self._no_rules_message(counts, best))
        hit_of = {id(r): h for r, h in zip(rules, hits, strict=True)}
        if self.order == "cover":
            rules = self._cover(rules, hits, preds, C)
        else:
            key = {id(r): s for r, s in zip(rules, specificity, strict=True)}
            rules.sort(key=lambda r: (-key[id(r)], -r.precision, -r.support, -len(r.pattern),
                                      r.pattern))
        self.rules_ = rules[:self.top] if self.top else rules
        self.n_candidates_ = len(counts)
        self._attach_units([hit_of[id(r)] for r in self.rules_], states)
        first = self._first_rule(index)
        for j, r in enumerate(self.rules_):
            r.decided = int((first == j).sum())
        rest = preds[first < 0]
        self.default_ = int(np.bincount(rest if rest.size else preds, minlength=C).argmax())
        self.train_fidelity_ = float(np.mean(self._decide(first) == preds))
        self.train_coverage_ = float(np.mean(first >= 0))
        return self

    def _cover(self, rules: list[Rule], hits: list[np.ndarray], preds: np.ndarray, C: int
               ) -> list[Rule]:
        """Sequential covering: next, the rule most specific on the texts no earlier rule
        matches (Laplace-smoothed precision, at least ``min_support`` of them), until none
        beats the majority of the texts left."""
        N = len(preds)
        rows = np.repeat(np.arange(len(rules)), [len(h) for h in hits])
        cols = np.concatenate(hits)
        right = preds[cols] == np.array([rules[j].label for j in rows], np.int64)
        M = csr_matrix((np.ones(len(cols)), (rows, cols)), shape=(len(rules), N))  # matches
        R = csr_matrix((right.astype(float), (rows, cols)), shape=(len(rules), N))  # agrees
        left = np.ones(N)  # (N,) 1 for texts no chosen rule matches yet
        free = np.ones(len(rules), bool)
        chosen: list[Rule] = []
        while free.any():
            n, c = M @ left, R @ left  # (rules,) matches and agreements among texts left
            quality = np.where(free & (n >= self.min_support), (c + 1) / (n + C), -1.0)
            best = int(np.argmax(quality))
            rest = preds[left > 0]
            majority = np.bincount(rest, minlength=C).max() / max(len(rest), 1)
            if quality[best] <= majority or quality[best] < self.min_precision:
                break
            chosen.append(rules[best])
            free[best] = False
            left[hits[best]] = 0.0
        return chosen

    def _no_rules_message(self, counts: Counter, best) -> str:
        most = max(counts.values(), default=0)
        msg = (f"no phrase rule passes the thresholds (min_support={self.min_support}, "
               f"min_precision={self.min_precision}, threshold={self.threshold:.3g}) over "
               f"{len(counts)} candidate phrases; ")
        if best is None:
            return msg + (f"the most frequent phrase was important in only {most} texts: lower "
                          "min_support or threshold, or give more texts")
        return msg + (f"the best was {' … '.join(best[0])!r} (important in {best[2]} texts, "
                      f"precision {best[1]:.2f}): lower min_precision or min_support")

    def _attach_units(self, hits: list[np.ndarray], states: np.ndarray) -> None:
        """Per rule, the units that best separate the training texts it matches (``hits``)."""
        if self.n_units == 0:
            return
        ranks = rankdata(states, axis=0)  # (N, D), once for all rules
        for r, hit in zip(self.rules_, hits, strict=True):
            mask = np.zeros(len(states), bool)
            mask[hit] = True
            if mask.all() or not mask.any():
                continue
            auc, diff = unit_separation(states, mask, ranks)
            top = np.argsort(-np.abs(auc - 0.5), kind="stable")[:self.n_units]
            r.units = [{"unit": int(u), "auc": round(float(auc[u]), 4),
                        "mean_difference": round(float(diff[u]), 4)} for u in top]

    # -- the classifier ----------------------------------------------------------------------
    def _words(self, texts: Sequence[str]) -> list[list[str]]:
        tok = Tokenizer(self.tokenizer_["level"], self.tokenizer_["lowercase"])
        n = self.max_length_
        return [tok.split(t)[:n] if n else tok.split(t) for t in texts]

    def _first_rule(self, index: list[dict[str, list[int]]]) -> np.ndarray:
        gap = self.max_gap if self.gaps else 0
        first = np.full(len(index), -1, np.int64)
        for n, ix in enumerate(index):
            for j, r in enumerate(self.rules_):
                if _matches_index(ix, r.pattern, gap):
                    first[n] = j
                    break
        return first

    def _decide(self, first: np.ndarray) -> np.ndarray:
        labels = np.array([r.label for r in self.rules_] + [self.default_], np.int64)
        return labels[first]  # index -1 picks the default

    def apply(self, texts: Sequence[str]) -> np.ndarray:
        """Index of the first rule each text matches, −1 where none does (the default)."""
        self._check_fitted()
        return self._first_rule([_position_index(w) for w in
                                 self._words(self._check_texts(texts))])

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        """Class index per text: the first matching rule's, else ``default_``."""
        return self._decide(self.apply(texts))

    def coverage(self, texts: Sequence[str]) -> float:
        """Share of texts some rule matches."""
        return float(np.mean(self.apply(texts) >= 0))

    def score(self, texts: Sequence[str], labels: Any) -> float:
        """Accuracy of the rules against ``labels`` (class indices or names)."""
        self._check_fitted()
        y = self._labels(labels, len(self._check_texts(texts)))
        return float(np.mean(self.predict(texts) == y))

    def fidelity(self, model: Any, texts: Sequence[str]) -> float:
        """Share of texts where the rules agree with the model's prediction."""
        self._check_fitted()
        parts, _ = check_classifier(model)
        if parts.head.out_features != len(self.classes_):
            raise ModelError(f"the rules know {len(self.classes_)} classes; this model has "
                             f"{parts.head.out_features}")
        preds = model_predictions(model, texts, self.batch_size)
        return float(np.mean(self.predict(texts) == preds))

    def _labels(self, labels: Any, n: int) -> np.ndarray:
        y = list(labels)
        if len(y) != n:
            raise InputError(f"got {len(y)} labels for {n} texts")
        if all(isinstance(v, str) for v in y):
            bad = sorted({v for v in y if v not in self.classes_})
            if bad:
                raise InputError(f"unknown class names {bad[:5]}; the classes are "
                                 f"{self.classes_}")
            return np.array([self.classes_.index(v) for v in y], np.int64)
        arr = np.asarray(y)
        if arr.dtype.kind not in "iu" or (arr.size and (arr.min() < 0 or
                                                        arr.max() >= len(self.classes_))):
            raise InputError(f"labels must be class indices 0..{len(self.classes_) - 1} or "
                             f"class names {self.classes_}")
        return arr.astype(np.int64)

    # -- export ------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        self._check_fitted()
        return {"type": "lstmlens-phrase-rules", "params": self.get_params(),
                "classes": self.classes_, "default": self.classes_[self.default_],
                "default_index": self.default_, "tokenizer": self.tokenizer_,
                "max_length": self.max_length_, "candidates": self.n_candidates_,
                "train": {"fidelity": self.train_fidelity_, "coverage": self.train_coverage_},
                "rules": [r.to_dict() for r in self.rules_]}

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    def _repr_html_(self, top: int = 20) -> str:
        """The first ``top`` rules as a table (escaped), for notebooks."""
        if not hasattr(self, "rules_"):
            return f"<pre>{html.escape(repr(self))}</pre>"
        rows = "".join(
            f"<tr><td>{i + 1}</td><td>{html.escape(' … '.join(r.pattern))}</td>"
            f"<td>{html.escape(r.class_name)}</td><td>{r.support}</td>"
            f"<td>{r.precision:.2f}</td>"
            f"<td>{html.escape(', '.join(str(u.get('unit')) for u in r.units[:3]))}</td></tr>"
            for i, r in enumerate(self.rules_[:top]))
        return (f"<p>{len(self.rules_)} phrase rules ({html.escape(self.method)}); otherwise "
                f"<b>{html.escape(self.classes_[self.default_])}</b></p><table><tr><th>#</th>"
                "<th>pattern</th><th>class</th><th>support</th><th>precision</th>"
                f"<th>units</th></tr>{rows}</table>")

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> PhraseRules:
        """Rebuild fitted rules from :meth:`to_dict` (to predict; no model needed)."""
        if not isinstance(doc, dict) or doc.get("type") != "lstmlens-phrase-rules":
            raise InputError("not a phrase-rules document (type 'lstmlens-phrase-rules')")
        try:
            self = cls(**doc["params"])
            self.classes_ = [str(c) for c in doc["classes"]]
            self.default_ = int(doc["default_index"])
            self.tokenizer_ = dict(doc["tokenizer"])
            self.max_length_ = doc.get("max_length")
            self.n_candidates_ = int(doc.get("candidates", 0))
            train = doc.get("train", {})
            self.train_fidelity_ = train.get("fidelity")
            self.train_coverage_ = train.get("coverage")
            self.rules_ = [Rule(**{**r, "pattern": tuple(r["pattern"])}) for r in doc["rules"]]
        except (KeyError, TypeError, ValueError) as e:
            raise InputError(f"phrase-rules document is incomplete or invalid: {e}") from None
        return self


def model_predictions(model: Any, texts: Sequence[str], batch_size: int = 256) -> np.ndarray:
    """The class a text classifier predicts for each text (N,), read as the rules read it
    (texts longer than the model's ``max_length`` are cut to it)."""
    parts, tok = check_classifier(model)
    texts = PhraseRules._check_texts(texts)
    ids = PhraseRules._encode(tok, texts, PhraseRules._max_length(model))
    runner = PhraseRules(batch_size=batch_size)
    return runner._run_model(model, parts, ids, with_importance=False)[0]


def _position_index(words: Sequence[str]) -> dict[str, list[int]]:
    index: dict[str, list[int]] = defaultdict(list)
    for i, w in enumerate(words):
        index[w].append(i)
    return index
