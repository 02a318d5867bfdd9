"""Adaptive composite quadrature for integrated gradients (a helper; registers nothing).

Integrated gradients of the straight path x(α) = x̄ + α (x − x̄), α ∈ [0, 1], is additive
over any split of [0, 1] into segments [a, b]: the attribution of a segment is IG with
baseline x(a) and input x(b), and its completeness law is local,

    Σ_i IG_i(x(a) → x(b)) = f(x(b)) − f(x(a)),

where f at the two ends is one forward pass each. So every segment can say how far its own
Gauss–Legendre estimate misses, and the segments that miss most are bisected, until the
sum of the segments' |gaps| (which bounds the completeness gap of the whole path) is within
the tolerance or the budget of gradient evaluations is spent. Segments narrower than the
path's float resolution are not split: there a gap is rounding noise of f, and only the
completeness gap counts it. Each segment is integrated by Captum's ``IntegratedGradients``
(``gausslegendre``) with x(a) as its baseline; all segments of all sequences that still
need work go through one batched call per round, and sequences that have converged stop.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

# Scaled inputs per forward and backward pass when the caller does not say (memory bound)
IG_BATCH = 4096


@dataclass
class AdaptiveIG:
    """The result of ``adaptive_integrated_gradients`` for a batch of B sequences."""

    attributions: torch.Tensor  # (B, *input) summed over the final segments
    delta: torch.Tensor  # (B,) |Σ attributions − (f(x) − f(x̄))|, the completeness gap
    evaluations: list[int]  # gradient evaluations spent per sequence (bisected ones too)
    segments: list[int]  # final segments per sequence
    segment_gaps: list[float]  # Σ over final segments of |their own gap| per sequence
    float64: list[bool]  # whether the sequence was refined (and its gap measured) in float64


@dataclass(eq=False)
class _Segment:
    a: float
    b: float
    attribution: torch.Tensor  # (*input) IG from x(a) to x(b)
    gap: float  # Σ attribution − (f(b) − f(a))


def integrate_segments(forward: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
                       start: torch.Tensor, end: torch.Tensor, target: torch.Tensor,
                       lengths: torch.Tensor, n: int,
                       internal_batch_size: int | None = None) -> torch.Tensor:
    """IG of R straight segments ``start[r] → end[r]`` with n Gauss–Legendre points each,
    through Captum; ``forward(inputs, lengths)`` gives logits (N, C) for N inputs and their
    N lengths. Returns (R, *input)."""
    from captum.attr import IntegratedGradients

    R = start.shape[0]
    if internal_batch_size is None and n * R > IG_BATCH:
        internal_batch_size = max(R, IG_BATCH)
    # Captum stacks the n scaled copies of the R rows: (n R, *input), point-major
    ig = IntegratedGradients(lambda e: forward(e, lengths.repeat(e.shape[0] // R)))
    with torch.backends.cudnn.flags(enabled=False):  # eval-mode backward through cuDNN
        a = ig.attribute(end, baselines=start, target=target, n_steps=n,
                         method="gausslegendre", internal_batch_size=internal_batch_size)
    return a.detach()


def adaptive_integrated_gradients(
        forward: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], inp: torch.Tensor,
        base: torch.Tensor, target: torch.Tensor, lengths: torch.Tensor, *,
        first_points: int = 64, points: int = 16, tol: float = 1e-3, budget: int = 4096,
        refine: Callable[[], Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None]
        | None = None,
        internal_batch_size: int | None = None) -> AdaptiveIG:
    """Integrated gradients of ``inp`` (B, ...) from ``base`` by adaptive composite
    Gauss–Legendre quadrature along the straight path.

    Every sequence starts with one segment [0, 1] of ``first_points`` points (exactly
    Captum's ``IntegratedGradients`` with that many points). While its completeness gap
    |Σ segment gaps|, or Σ |segment gaps| (so that each segment is right, not only their
    sum), is above ``tol`` and fewer than ``budget`` gradient evaluations are spent, the
    segments with the largest |gaps| (as many as needed for the others to sum to
    at most ``tol / 2``) are bisected and each half is integrated with ``points`` points.
    ``refine``, when given, makes ``forward`` in float64 (or None where it cannot): the
    sequences that need more than the first rule are then integrated in float64 (steep
    parts of a path can be narrower than float32 resolves), and their gap is measured
    against f in float64.
    """
    B = inp.shape[0]
    fwd, x0, x1 = forward, base, inp  # what the segments are integrated with

    def point(r: int, alpha: float) -> torch.Tensor:
        if alpha == 0.0:
            return x0[r]
        if alpha == 1.0:
            return x1[r]
        return (x0[r].double() + alpha * (x1[r].double() - x0[r].double())).to(x1.dtype)

    def logits_at(rows: list[int], xs: list[torch.Tensor]) -> list[float]:
        idx = torch.tensor(rows, dtype=torch.long)
        with torch.no_grad():
            out = fwd(torch.stack(xs), lengths[idx])  # (R, C)
        return out[torch.arange(len(rows)), target[idx]].double().tolist()

    # f along each path, at the points reached so far: f_at[r][α]
    everyone = list(range(B))
    f_at = [{0.0: u, 1.0: v} for u, v in zip(logits_at(everyone, list(base)),
                                              logits_at(everyone, list(inp)), strict=True)]
    root = integrate_segments(forward, base, inp, target, lengths, first_points,
                              internal_batch_size)  # (B, *input)

    def root_gap(r: int) -> float:
        return float(root[r].double().sum()) - (f_at[r][1.0] - f_at[r][0.0])

    leaves = [[_Segment(0.0, 1.0, root[r], root_gap(r))] for r in everyone]
    spent = [first_points] * B
    rough = [r for r in everyone if abs(leaves[r][0].gap) > tol]
    forward64 = refine() if refine is not None and rough else None
    if forward64 is not None:  # go on in float64 from here
        fwd, x0, x1 = forward64, base.double(), inp.double()
        for r, u, v in zip(rough, logits_at(rough, [x0[r] for r in rough]),
                           logits_at(rough, [x1[r] for r in rough]), strict=True):
            f_at[r] = {0.0: u, 1.0: v}
            leaves[r][0].gap = root_gap(r)

    # narrower segments are below the path's float resolution: their gaps are rounding
    # noise of f, so they are not split and count only through the completeness gap
    floor = 8 * torch.finfo(x1.dtype).eps
    while True:
        # which segments to bisect, per sequence that has not converged
        todo: list[tuple[int, _Segment]] = []
        for r in rough:
            wide = [s for s in leaves[r] if s.b - s.a > floor]
            rest = sum(abs(s.gap) for s in wide)
            if rest <= tol and abs(sum(s.gap for s in leaves[r])) <= tol:
                continue  # every segment is right, not only their sum
            chosen: list[_Segment] = []
            for s in sorted(wide, key=lambda s: -abs(s.gap)):
                if rest <= tol / 2 or spent[r] + 2 * points * (len(chosen) + 1) > budget:
                    break
                chosen.append(s)
                rest -= abs(s.gap)
            todo += [(r, s) for s in chosen]
        if not todo:
            break
        # new midpoints: one forward pass for all
        mids = [0.5 * (s.a + s.b) for _, s in todo]
        mid_x = [point(r, m) for (r, _), m in zip(todo, mids, strict=True)]
        for (r, _), m, fm in zip(todo, mids, logits_at([r for r, _ in todo], mid_x),
                                 strict=True):
            f_at[r][m] = fm
        # both halves of every chosen segment: one batched Captum call
        rows, starts, ends, halves = [], [], [], []
        for (r, s), m, xm in zip(todo, mids, mid_x, strict=True):
            for a, b, xa, xb in ((s.a, m, point(r, s.a), xm), (m, s.b, xm, point(r, s.b))):
                rows.append(r)
                starts.append(xa)
                ends.append(xb)
                halves.append((a, b))
        idx = torch.tensor(rows, dtype=torch.long)
        att = integrate_segments(fwd, torch.stack(starts), torch.stack(ends), target[idx],
                                 lengths[idx], points, internal_batch_size)  # (2K, *input)
        for (r, s) in todo:
            leaves[r].remove(s)
            spent[r] += 2 * points
        for k, (r, (a, b)) in enumerate(zip(rows, halves, strict=True)):
            gap = float(att[k].double().sum()) - (f_at[r][b] - f_at[r][a])
            leaves[r].append(_Segment(a, b, att[k], gap))

    attributions = torch.stack([torch.stack([s.attribution for s in leaves[r]]).double()
                                .sum(0).to(inp.dtype) for r in range(B)])  # (B, *input)
    sums = attributions.double().flatten(1).sum(1)  # (B,)
    delta = (sums - torch.tensor([f[1.0] - f[0.0] for f in f_at], dtype=torch.float64)).abs()
    return AdaptiveIG(
        attributions=attributions, delta=delta.float(), evaluations=spent,
        segments=[len(v) for v in leaves],
        segment_gaps=[sum(abs(s.gap) for s in v) for v in leaves],
        float64=[x1.dtype == torch.float64 and r in rough for r in everyone])
