"""Faithfulness of token rankings: ERASER comprehensiveness and sufficiency, deletion and
insertion curves (REFERENCES §6).

Every measure perturbs the input by *masking* tokens, a stated choice:

- ``"remove"``: drop the tokens; the sequence gets shorter (a sequence with every token
  removed is read as one PAD token);
- ``"pad"``: put the PAD token's embedding in their place (for lstmlens classifiers the PAD
  row is zero, so this equals ``"zero"``);
- ``"unk"``: put the ``<unk>`` token's embedding in their place (trained by word dropout);
- ``"zero"``: put a zero vector in their place (embeddings or raw features).

All perturbed variants of a batch are built at once in embedding space and run through the
model in chunks (one forward pass per chunk, no gradients).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from .errors import InputError

MASKINGS = ("remove", "pad", "unk", "zero")
BINS = (0.01, 0.05, 0.10, 0.20, 0.50)  # ERASER's AOPC bins, shares of the tokens
CURVE_POINTS = 11  # deletion / insertion curves at 0, 10, ..., 100 % of the tokens


def share_count(share: float, length: int) -> int:
    """⌊share·L + ½⌋: tokens in a ``share`` of a sequence of ``length`` (halves round up)."""
    return int(math.floor(share * length + 0.5))


def top_k(share: float, length: int) -> int:
    """Tokens in the top ``share`` for AOPC: ⌊share·L + ½⌋, at least 1, at most L."""
    return max(1, min(length, share_count(share, length)))


def ranking(scores: np.ndarray) -> np.ndarray:
    """Positions from the highest score to the lowest (ties keep their order)."""
    return np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")


@dataclass
class Masker:
    """Runs a model on masked copies of a batch of embedded sequences.

    Parameters
    ----------
    parts
        The model's :class:`~lstmlens.parts.ModelParts`.
    embedded
        ``(B, T, E)`` first-LSTM inputs of the batch.
    lengths
        ``(B,)`` valid steps.
    target
        ``(B,)`` class whose probability is read.
    masking
        One of :data:`MASKINGS`.
    unk_id
        The ``<unk>`` token id (for ``masking="unk"``).
    """

    parts: object
    embedded: torch.Tensor  # (B, T, E)
    lengths: torch.Tensor  # (B,)
    target: torch.Tensor  # (B,)
    masking: str = "remove"
    unk_id: int | None = None
    chunk: int = 1024

    def __post_init__(self) -> None:
        if self.masking not in MASKINGS:
            raise InputError(f"masking must be one of {', '.join(MASKINGS)}; got "
                             f"{self.masking!r}")
        E = self.embedded.shape[-1]
        emb = getattr(self.parts, "embedding", None)
        if self.masking in ("pad", "unk") and emb is None:
            raise InputError(f"masking {self.masking!r} needs a token model; this model reads "
                             "features: use 'zero' or 'remove'")
        with torch.no_grad():
            if self.masking == "unk":
                if self.unk_id is None:
                    raise InputError("masking 'unk' needs the model's tokenizer (its <unk> id)")
                self.fill = emb.weight[self.unk_id].detach().float()  # (E,)
            elif emb is not None and self.masking in ("pad", "remove"):
                self.fill = emb.weight[emb.padding_idx or 0].detach().float()  # (E,)
            else:
                self.fill = torch.zeros(E)

    def probabilities(self, rows: np.ndarray, keep: np.ndarray) -> np.ndarray:
        """p(target) of sequence ``rows[v]`` with only the positions ``keep[v]`` left.

        ``rows`` is ``(V,)`` sequence indices, ``keep`` a ``(V, T)`` boolean array.
        """
        out = np.empty(len(rows))
        for s in range(0, len(rows), self.chunk):
            r = torch.as_tensor(rows[s:s + self.chunk], dtype=torch.long)
            k = torch.as_tensor(keep[s:s + self.chunk], dtype=torch.bool)
            out[s:s + self.chunk] = self._chunk(r, k)
        return out

    def _chunk(self, rows: torch.Tensor, keep: torch.Tensor) -> np.ndarray:
        e = self.embedded[rows]  # (V, T, E)
        L = self.lengths[rows].clone()  # (V,)
        T = e.shape[1]
        valid = torch.arange(T)[None, :] < L[:, None]  # (V, T)
        keep = keep[:, :T] & valid
        if self.masking == "remove":
            # kept positions first, in their order; the rest is never read (packed)
            order = torch.argsort((~keep).to(torch.int8), dim=1, stable=True)  # (V, T)
            e = e.gather(1, order[..., None].expand_as(e))
            L = keep.sum(1)
            empty = L == 0
            if empty.any():
                e[empty, 0] = self.fill
                L = L.clamp_min(1)
        else:
            e = torch.where(keep[..., None] | ~valid[..., None], e, self.fill)
        T_used = int(L.max())
        with torch.no_grad():
            logits = self.parts.logits_from_embedded(e[:, :T_used].contiguous(), L)  # (V, C)
            p = torch.softmax(logits.float(), -1)
        return p[torch.arange(len(rows)), self.target[rows]].numpy()


def faithfulness(masker: Masker, scores: list[np.ndarray], bins: tuple[float, ...] = BINS,
                 points: int = CURVE_POINTS) -> dict[str, np.ndarray]:
    """Per-sequence comprehensiveness / sufficiency AOPC and deletion / insertion areas.

    Parameters
    ----------
    masker
        The batch and how to mask it.
    scores
        One score array ``(L_b,)`` per sequence (higher = more evidence for the target).
    bins
        Shares of the tokens for AOPC; AOPC = Σ_k (measure at bin k) / (|bins| + 1).
    points
        Points of the deletion / insertion curves, evenly spaced over 0..100 % of the tokens.

    Returns
    -------
    dict
        ``comprehensiveness_aopc``, ``sufficiency_aopc``, ``deletion_auc``, ``insertion_auc``
        (each ``(B,)``), and ``deletion_curve``, ``insertion_curve`` (each ``(B, points)``)
        and ``full`` (p(target | x), ``(B,)``).

    Examples
    --------
    >>> f = faithfulness(Masker(parts, e, lengths, target), [s[:L] for s, L in zip(S, lengths)])
    ... # doctest: +SKIP
    """
    B, T = masker.embedded.shape[:2]
    if len(scores) != B:
        raise InputError(f"need one score array per sequence ({B}), got {len(scores)}")
    shares = np.linspace(0.0, 1.0, points)
    rows, keeps, slots = [], [], []  # one variant per (sequence, measure, point)
    for b, s in enumerate(scores):
        L = int(masker.lengths[b])
        if len(s) != L:
            raise InputError(f"sequence {b}: {len(s)} scores for {L} tokens")
        order = ranking(s)

        def top(k: int, order: np.ndarray = order) -> np.ndarray:
            m = np.zeros(T, bool)
            m[order[:k]] = True
            return m

        full = np.ones(T, bool)
        variants = [("full", 0, full)]
        for j, share in enumerate(bins):
            r = top(top_k(share, L))
            variants += [("comp", j, ~r), ("suff", j, r)]
        for j, share in enumerate(shares):
            k = share_count(share, L)
            r = top(k)
            variants += [("del", j, ~r), ("ins", j, r)]
        for name, j, keep in variants:
            rows.append(b)
            keeps.append(keep)
            slots.append((name, j))
    p = masker.probabilities(np.asarray(rows), np.stack(keeps))
    nb = len(bins)
    out = {"full": np.zeros(B), "comp": np.zeros((B, nb)), "suff": np.zeros((B, nb)),
           "del": np.zeros((B, points)), "ins": np.zeros((B, points))}
    for v, (b, (name, j)) in enumerate(zip(rows, slots, strict=True)):
        if name == "full":
            out["full"][b] = p[v]
        else:
            out[name][b, j] = p[v]
    full = out["full"][:, None]
    comp = (full - out["comp"]).sum(1) / (nb + 1)
    suff = (full - out["suff"]).sum(1) / (nb + 1)
    return {"comprehensiveness_aopc": comp, "sufficiency_aopc": suff,
            "deletion_auc": np.trapezoid(out["del"], shares, axis=1),
            "insertion_auc": np.trapezoid(out["ins"], shares, axis=1),
            "deletion_curve": out["del"], "insertion_curve": out["ins"], "full": out["full"]}
