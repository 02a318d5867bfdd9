"""``phrase_hierarchy``: which adjacent phrases combine, and which combinations flip the
prediction — hierarchical phrase interactions over contextual decomposition.

The score of a phrase is its CD relevant part for the target (REFERENCES §3.2): for a
classifier the target's relevant logit minus the mean relevant logit of the other classes
(the margin that decides the prediction), for one output or a value the relevant part
itself. Starting from the single words, every level scores each pair of adjacent phrases
joined into one and merges the pair whose *interaction* — the joined phrase's score minus
its two parts' scores — is largest in size, until the whole sequence is one phrase (T − 1
merges). A merge *flips* when the joined phrase argues the other way from its two parts
together, as "not" + "good" → "not good" does (Murdoch, Liu & Yu 2018, §4.3).
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from typing import Any

import torch

from .decomposition import decompose
from .errors import InputError
from .explaining import _labels, _resolve_target, _tokenizer, prepare

Span = tuple[int, int]  # inclusive (start, end)


@dataclass
class PhraseMerge:
    """Two adjacent phrases joined at one level of the hierarchy, with their CD scores."""

    level: int
    left: Span
    right: Span
    left_score: float
    right_score: float
    score: float  # of the joined phrase

    @property
    def span(self) -> Span:
        return (self.left[0], self.right[1])

    @property
    def interaction(self) -> float:
        """How much more (or less) the joined phrase says than its parts: score − parts."""
        return self.score - self.left_score - self.right_score

    @property
    def flips(self) -> bool:
        """The joined phrase argues the other way from its two parts together."""
        return self.score * (self.left_score + self.right_score) < 0


@dataclass
class PhraseHierarchy:
    """The merges of :func:`phrase_hierarchy`, first to last, over one sequence."""

    tokens: list[str]
    target: int
    target_name: str
    word_scores: torch.Tensor  # (T,) score of each single word
    merges: list[PhraseMerge] = field(default_factory=list)
    score_kind: str = "margin"  # or "relevant" (one output, or values)
    delta: float = 0.0  # max CD conservation gap over every span scored

    def phrase(self, span: Span) -> str:
        """The words of an inclusive span, joined by spaces."""
        return " ".join(self.tokens[span[0]:span[1] + 1])

    def flips(self) -> list[PhraseMerge]:
        """The merges whose joined phrase argues the other way from its parts."""
        return [m for m in self.merges if m.flips]

    def strongest(self, n: int = 5) -> list[PhraseMerge]:
        """The ``n`` merges with the largest |interaction|."""
        return sorted(self.merges, key=lambda m: -abs(m.interaction))[:n]

    def to_dict(self) -> dict[str, Any]:
        return {"tokens": self.tokens, "target": self.target_name, "target_index": self.target,
                "score_kind": self.score_kind, "delta": self.delta,
                "word_scores": self.word_scores.double().tolist(),
                "merges": [{"level": m.level, "left": list(m.left), "right": list(m.right),
                            "left_score": m.left_score, "right_score": m.right_score,
                            "score": m.score, "interaction": m.interaction,
                            "flips": m.flips} for m in self.merges]}

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    def to_text(self) -> str:
        """One line per merge: ``[left] + [right] → score (interaction)``."""
        return "\n".join(
            f"{m.level:>3}  [{self.phrase(m.left)}] {m.left_score:+.3f} + "
            f"[{self.phrase(m.right)}] {m.right_score:+.3f} → {m.score:+.3f} "
            f"(interaction {m.interaction:+.3f}{', flips' if m.flips else ''})"
            for m in self.merges)

    def _repr_html_(self) -> str:
        esc = html.escape
        rows = "".join(
            f"<tr><td>{m.level}</td><td>{esc(self.phrase(m.left))}</td>"
            f"<td>{esc(self.phrase(m.right))}</td><td>{m.score:+.3f}</td>"
            f"<td>{m.interaction:+.3f}</td><td>{'yes' if m.flips else ''}</td></tr>"
            for m in self.merges)
        return (f"<table><caption>phrase interactions for {esc(self.target_name)}</caption>"
                "<tr><th>level</th><th>left</th><th>right</th><th>joined score</th>"
                f"<th>interaction</th><th>flips</th></tr>{rows}</table>")


def phrase_hierarchy(model: Any, inputs: Any, target: Any = None, lengths: Any = None, *,
                     dtype: Any = torch.float32, bias_rule: str = "code") -> PhraseHierarchy:
    """Agglomerate one sequence's words into phrases by their CD interactions.

    Parameters
    ----------
    model
        An lstmlens model CD can follow, or :func:`lstmlens.wrap` of a user's module.
    inputs
        One sequence: text (models with a tokenizer), token ids ``[T]`` / ``[1, T]`` or
        features ``[T, F]`` / ``[1, T, F]``.
    target
        The class (index or name; default the predicted one) or output (default 0).
    bias_rule
        As in :func:`lstmlens.decompose`.

    Examples
    --------
    >>> h = phrase_hierarchy(model, "not a good film , but a fine cast")  # doctest: +SKIP
    >>> print(h.to_text())  # doctest: +SKIP
    >>> [h.phrase(m.span) for m in h.flips()]  # doctest: +SKIP
    """
    parts, x, L, tokens = prepare(model, inputs, lengths)
    if x.shape[0] != 1:
        raise InputError(f"phrase_hierarchy explains one sequence at a time; got a batch of "
                         f"{x.shape[0]} (call it once per sequence)")
    T = int(L[0])
    x = x[:, :T]
    scores: dict[Span, float] = {}
    gap = [0.0]
    chosen: list[Any] = []  # the target and whether scores are margins, set once

    def score(spans: list[Span]) -> None:
        """CD scores of the spans not scored yet, in one batched decomposition."""
        new = [s for s in dict.fromkeys(spans) if s not in scores]
        if not new:
            return
        d = decompose(parts, x, [(0, s, e) for s, e in new], L, dtype=dtype,
                      bias_rule=bias_rule)
        gap[0] = max(gap[0], d.delta)
        if not chosen:  # the target, once the logits are known
            C = d.logits.shape[1]
            if target is None:
                k = int(d.logits[0].argmax()) if parts.outputs == "classes" else 0
            else:
                k = int(_resolve_target(target, 1, C, _labels(model, parts),
                                        _tokenizer(model), parts.outputs)[0])
            chosen.extend([k, parts.outputs == "classes" and C > 1])
        k, rel = chosen[0], d.relevant.double()  # (N, C)
        if chosen[1]:  # the margin over the mean of the other classes
            value = rel[:, k] - (rel.sum(1) - rel[:, k]) / (rel.shape[1] - 1)
        else:
            value = rel[:, k]
        scores.update(zip(new, value.tolist(), strict=True))

    phrases: list[Span] = [(t, t) for t in range(T)]
    score(phrases)
    merges: list[PhraseMerge] = []
    while len(phrases) > 1:
        pairs = [(phrases[i][0], phrases[i + 1][1]) for i in range(len(phrases) - 1)]
        score(pairs)
        gain = [scores[p] - scores[phrases[i]] - scores[phrases[i + 1]]
                for i, p in enumerate(pairs)]
        i = max(range(len(gain)), key=lambda j: abs(gain[j]))  # first of equals: leftmost
        left, right = phrases[i], phrases[i + 1]
        merges.append(PhraseMerge(len(merges) + 1, left, right, scores[left], scores[right],
                                  scores[pairs[i]]))
        phrases[i:i + 2] = [pairs[i]]
    k, margin = chosen
    labels = _labels(model, parts)
    names = tokens[0][:T] if tokens else [f"t{t}" for t in range(T)]
    return PhraseHierarchy(
        tokens=names, target=k, target_name=labels[k] if labels and k < len(labels) else str(k),
        word_scores=torch.tensor([scores[(t, t)] for t in range(T)], dtype=torch.float64),
        merges=merges, score_kind="margin" if margin else "relevant", delta=gap[0])
