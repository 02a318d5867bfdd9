"""Explanation methods against their baselines, side by side in one run.

REFERENCES §3.5's setting: a 1-layer LSTM classifier (vocab 20k, embedding 64, hidden 128),
64 sentences of 50 tokens, word-level maps. Baselines: the slow float64 references of the
tests (one sentence, one span at a time, written plainly from the equations), the plain
fused forward pass, and Captum's own Occlusion and IntegratedGradients.

Each comparison runs its functions in turn, round after round (machine noise hits all alike);
a ratio is the median over rounds of the per-round ratio, shown with its quartiles and
the ratio of best times.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from lstmlens.explaining import explain
from lstmlens.models import ClassifierConfig, LSTMClassifier

from .common import timed

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from cd_reference import cd_reference  # noqa: E402
from lrp_reference import lrp_reference  # noqa: E402

N, T = 64, 50


def _setup():
    torch.manual_seed(0)
    model = LSTMClassifier(ClassifierConfig(num_classes=2, vocab_size=20000, embedding_dim=64,
                                            hidden_sizes=[128])).eval()
    ids = torch.randint(1, 20000, (N, T))
    return model, ids


def _rate(fn, items: int, min_seconds: float = 1.0) -> float:
    """Items per second of fn (run at least once and for at least min_seconds)."""
    n, spent = 0, 0.0
    while spent < min_seconds or n == 0:
        spent += timed(fn)
        n += 1
    return items * n / spent


def _rounds(fns: dict, rounds: int) -> dict[str, list[float]]:
    """Seconds of each function per round, the functions run in turn (after one warm-up)."""
    for fn in fns.values():
        fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(rounds):
        for k, fn in fns.items():
            times[k].append(timed(fn))
    return times


def _median(v: list[float]) -> float:
    v = sorted(v)
    return (v[(len(v) - 1) // 2] + v[len(v) // 2]) / 2


def _quantile(v: list[float], q: float) -> float:
    """The q-quantile of v, linearly interpolated."""
    v = sorted(v)
    x = q * (len(v) - 1)
    i = int(x)
    return v[i] if i + 1 >= len(v) else v[i] + (x - i) * (v[i + 1] - v[i])


def _ratio(times: dict[str, list[float]], ours: str, base: str, items_ours: int,
           items_base: int) -> tuple[float, float, float, float]:
    """Throughput of ``ours`` over ``base``: the median of the per-round ratios, their
    quartiles, and the ratio of the two best times (noise only ever adds time)."""
    r = [(items_ours / a) / (items_base / b) for a, b in zip(times[ours], times[base],
                                                             strict=True)]
    best = (items_ours / min(times[ours])) / (items_base / min(times[base]))
    return _median(r), _quantile(r, 0.25), _quantile(r, 0.75), best


def run(quick: bool = False) -> tuple[str, str]:
    model, ids = _setup()
    rows = []
    lstm = model.lstms[0]
    W_out = model.head.weight.detach().double().numpy()
    b_out = model.head.bias.detach().double().numpy()
    emb0 = model.embedding(ids[0]).detach().double().numpy()

    # slow references: one sentence (CD: all 50 unigram spans, one at a time)
    def ref_cd_sentence():
        for t in range(T):
            cd_reference([lstm], emb0, W_out, t, t, pooling="final")

    def fwd():
        with torch.no_grad():
            model(ids)

    t_cd = _rounds({"ref": ref_cd_sentence, "cd": lambda: explain(model, ids, "cd")},
                   2 if quick else 5)
    rows.append(("cd (word level, float32)", t_cd, "cd", N, "slow float64 reference", "ref",
                 1, 100))
    t_lrp = _rounds({"ref": lambda: lrp_reference(lstm, emb0, W_out, b_out, 0), "fwd": fwd,
                     "lrp": lambda: explain(model, ids, "lrp")}, 5 if quick else 31)
    rows += [("lrp (float32)", t_lrp, "lrp", N, "slow float64 reference", "ref", 1, 100),
             ("lrp (float32)", t_lrp, "lrp", N, "plain fused forward", "fwd", N, None)]

    # occlusion vs Captum's Occlusion on the embeddings (leave-one-out, zero baseline), with
    # Captum at the fastest of three batchings (perturbations per forward pass)
    from captum.attr import IntegratedGradients, Occlusion

    parts = model.explainable_parts()
    emb = model.embed(ids).detach()
    target = explain(model, ids[:1], "cd").target.expand(N).clone()
    full = torch.full((N,), T)

    def captum_occ(per_eval: int):
        def run_captum():
            with torch.no_grad():
                return Occlusion(lambda e: parts.logits_from_embedded(
                    e, full[:1].expand(e.shape[0]))).attribute(
                    emb, sliding_window_shapes=(1, 64), baselines=0.0, target=target,
                    perturbations_per_eval=per_eval)
        return run_captum

    ours_occ = explain(model, ids, "occlusion", target=target).scores
    same_occ = float((ours_occ - captum_occ(16)()[..., 0]).abs().max())
    cap_rates = {k: _rate(captum_occ(k), N, 0.5 if quick else 2.0) for k in (4, 16, 64)}
    best = max(cap_rates, key=cap_rates.get)
    t_occ = _rounds({"ours": lambda: explain(model, ids, "occlusion", target=target),
                     "captum": captum_occ(best)}, 2 if quick else 7)
    rows.append(("occlusion (prefix reuse)", t_occ, "ours", N,
                 f"Captum Occlusion ({best} perturbations per pass)", "captum", N, 2))

    # integrated gradients at default settings vs Captum's IntegratedGradients called
    # directly with as many points as ours used
    ours = explain(model, ids, "integrated_gradients", target=target)
    steps = max(ours.params["steps_used"])

    def captum_ig():
        ig = IntegratedGradients(lambda e: parts.logits_from_embedded(
            e, full[:1].expand(e.shape[0])))
        return ig.attribute(emb, baselines=torch.zeros_like(emb), target=target,
                            n_steps=steps, method="gausslegendre")

    same_ig = float((ours.scores - captum_ig().sum(-1)).abs().max())
    t_ig = _rounds({"ours": lambda: explain(model, ids, "integrated_gradients", target=target),
                    "captum": captum_ig}, 2 if quick else 5)
    rows.append((f"integrated_gradients (default: {steps} points)", t_ig, "ours", N,
                 "Captum IntegratedGradients (same points)", "captum", N, 0.9))

    lines = ["| method | sentences/s | baseline | baseline sentences/s | **ratio** "
             "(quartiles; best times) | goal |", "|---|---|---|---|---|---|"]
    for name, times, ours_key, n_ours, base, base_key, n_base, goal in rows:
        rate = n_ours / _median(times[ours_key])
        base_rate = n_base / _median(times[base_key])
        mid, lo, hi, best = _ratio(times, ours_key, base_key, n_ours, n_base)
        if goal:
            f = ".2f" if goal < 10 else ".1f"  # small goals: two decimals show which side
            g, shown = f"≥ {goal}×", f"**{mid:{f}}×** ({lo:{f}}–{hi:{f}}; {best:{f}}×)"
        else:  # cost relative to the forward pass: the inverse ratio
            g, shown = "cost ≤ 5× forward", (f"**{1 / mid:.1f}× the forward's cost** "
                                            f"({1 / hi:.1f}–{1 / lo:.1f}; {1 / best:.1f}×)")
        lines.append(f"| {name} | {rate:,.1f} | {base} | {base_rate:,.1f} | {shown} | {g} |")
    lines.append("")
    lines.append(f"Same results: occlusion vs Captum max |Δ| = {same_occ:.1e}; integrated "
                 f"gradients vs Captum max |Δ| = {same_ig:.1e}; integrated gradients' "
                 f"completeness gap at default settings max {float(ours.delta.max()):.1e}. "
                 f"{N} sentences × {T} tokens, vocabulary 20k, embedding 64, hidden 128; the "
                 "slow references run one sentence (CD: 50 spans) in float64 numpy. Each "
                 "ratio is the median of per-round ratios (functions run in turn, rounds: "
                 f"CD {len(t_cd['cd'])}, LRP {len(t_lrp['lrp'])}, occlusion "
                 f"{len(t_occ['ours'])}, IG {len(t_ig['ours'])}), with their quartiles and the "
                 "ratio of the best times of each.")
    return f"explanations ({N} sentences × {T} tokens, H=128)", "\n".join(lines)
