"""Explanation methods against their baselines, side by side in one run.

REFERENCES §3.5's setting: a 1-layer LSTM classifier (vocab 20k, embedding 64, hidden 128),
64 sentences of 50 tokens, word-level maps. Baselines: the slow float64 references of the
tests (one sentence, one span at a time, written plainly from the equations), the plain
fused forward pass, and Captum's own Occlusion and IntegratedGradients.
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

    ref_cd = _rate(ref_cd_sentence, 1)
    ref_lrp = _rate(lambda: lrp_reference(lstm, emb0, W_out, b_out, 0), 1)

    def fwd():
        with torch.no_grad():
            model(ids)

    forward = _rate(fwd, N)
    cd = _rate(lambda: explain(model, ids, "cd"), N)
    lrp = _rate(lambda: explain(model, ids, "lrp"), N)
    rows += [("cd (word level, float32)", cd, "slow float64 reference", ref_cd, 100),
             ("lrp (float32)", lrp, "slow float64 reference", ref_lrp, 100),
             ("lrp (float32)", lrp, "plain fused forward", forward, None)]

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
    occ = _rate(lambda: explain(model, ids, "occlusion", target=target), N)
    cap_rates = {k: _rate(captum_occ(k), N) for k in (4, 16, 64)}
    best = max(cap_rates, key=cap_rates.get)
    rows.append(("occlusion (prefix reuse)", occ,
                 f"Captum Occlusion ({best} perturbations per pass)", cap_rates[best], 2))

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
    ig = _rate(lambda: explain(model, ids, "integrated_gradients", target=target), N, 0.5)
    cap_ig = _rate(captum_ig, N, 0.5)
    rows.append((f"integrated_gradients (default: {steps} points)", ig,
                 "Captum IntegratedGradients (same points)", cap_ig, 0.9))

    lines = ["| method | sentences/s | baseline | baseline sentences/s | **ratio** | goal |",
             "|---|---|---|---|---|---|"]
    for name, rate, base, base_rate, goal in rows:
        ratio = rate / base_rate
        g = f"≥ {goal}×" if goal else "cost ≤ 5× forward"
        shown = f"{ratio:.1f}×" if goal else f"{base_rate / rate:.1f}× the forward's cost"
        lines.append(f"| {name} | {rate:,.1f} | {base} | {base_rate:,.1f} | **{shown}** | {g} |")
    lines.append("")
    lines.append(f"Same results: occlusion vs Captum max |Δ| = {same_occ:.1e}; integrated "
                 f"gradients vs Captum max |Δ| = {same_ig:.1e}; integrated gradients' "
                 f"completeness gap at default settings max {float(ours.delta.max()):.1e}. "
                 f"{N} sentences × {T} tokens, vocabulary 20k, embedding 64, hidden 128; the "
                 "slow references run one sentence (CD: 50 spans) in float64 numpy.")
    return f"explanations ({N} sentences × {T} tokens, H=128)", "\n".join(lines)
