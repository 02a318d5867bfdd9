"""Write docs/evaluation.md: how far each explanation method can be trusted on our models
(``make evaluation-doc``).

Uses (or trains) runs/evaluation/planted and runs/evaluation/sentiment, retrains quick
variant models for the sanity and stability checks, runs :func:`lstmlens.evaluate` with every
check and writes the findings, each figure with its bootstrap 95 % interval, beside the
published figures of REFERENCES §5 where there are some. The full results (JSON, CSV, HTML,
plots) go to runs/evaluation/report_<task>/; the curves are copied to docs/evaluation/.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import sys
import time
from pathlib import Path

import torch

import lstmlens
from lstmlens.evaluation_result import METRICS, Evaluation
from lstmlens.intervals import separated
from lstmlens.modeldir import is_model_dir
from lstmlens.stability import train_variants
from lstmlens.tasks import train_task

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "evaluation.md"
RUNS = ROOT / "runs" / "evaluation"
TARGETS = ["cd", "lrp", "integrated_gradients", "occlusion"]
METHODS = {"planted": TARGETS + ["saliency", "grad_x_input"],
           "sentiment": TARGETS + ["saliency", "grad_x_input", "attention"]}
# Jain & Wallace 2019, BiLSTM with additive attention (REFERENCES §5, secondary notes)
PUBLISHED = {"tau_gradient": "SST ≈ 0.40, IMDB ≈ 0.37", "tau_loo": "SST ≈ 0.34, IMDB ≈ 0.30"}


def fmt(f) -> str:
    if not f or f.get("value") is None:
        return "—"
    return f"{f['value']:.3f} [{f['ci_low']:.3f}, {f['ci_high']:.3f}]"


def model_for(task: str):
    run = RUNS / task
    if not is_model_dir(run):
        print(f"training {task} into {run} ...", flush=True)
        train_task(task, run, progress=False)
    return lstmlens.load(run)


def run_task(task: str, n: int, epochs: int, sanity_n: int) -> tuple[Evaluation, object, dict]:
    model = model_for(task)
    t = time.perf_counter()
    print(f"{task}: training variant models ({epochs} epochs) ...", flush=True)
    variants = train_variants(model, epochs=epochs, seeds=(1, 2))
    train_s = time.perf_counter() - t
    print(f"{task}: evaluating ...", flush=True)
    ev = lstmlens.evaluate(model, n=n, methods=METHODS[task], variants=variants,
                           checks=("faithfulness", "ground_truth", "attention", "sanity",
                                   "stability"), sanity_n=sanity_n, seed=0,
                           progress=lambda m: print(f"  {m}", flush=True))
    ev.save(RUNS / f"report_{task}")
    figs = ROOT / "docs" / "evaluation"
    figs.mkdir(parents=True, exist_ok=True)
    shutil.copy(RUNS / f"report_{task}" / "curves.png", figs / f"{task}_curves.png")
    return ev, model, {"variant_seconds": train_s, **variants.info}


def table(ev: Evaluation, metrics: tuple[str, ...]) -> list[str]:
    from lstmlens.evaluation_result import BETTER
    cols = [k for k in metrics if any(k in f for f in ev.methods.values())]
    out = ["| method | " + " | ".join(f"{k} ({BETTER[k].split()[0]})" for k in cols) + " |",
           "|---" * (len(cols) + 1) + "|"]
    for m, figs in ev.methods.items():
        out.append(f"| {m} | " + " | ".join(fmt(figs.get(k)) for k in cols) + " |")
    for m, why in ev.skipped.items():
        out.append(f"| {m} | skipped: {why} |" + " |" * (len(cols) - 1))
    return out


def best(ev: Evaluation, metric: str, higher: bool) -> str:
    vals = {m: f[metric]["value"] for m, f in ev.methods.items()
            if metric in f and m != "random" and f[metric]["value"] is not None}
    ranked = sorted(vals, key=lambda m: -vals[m] if higher else vals[m])
    return ", ".join(f"{m} ({vals[m]:.3f})" for m in ranked[:3])


def sanity_lines(ev: Evaluation) -> list[str]:
    s = ev.sanity
    out = ["| method | ρ, all layers randomised | ρ of abs., all randomised | ρ, permuted "
           "labels | cascade ρ, top layer down (" + " → ".join(s["layers"]) + ") | verdict |",
           "|---|---|---|---|---|---|"]
    for m, r in s["methods"].items():
        if "skipped" in r:
            out.append(f"| {m} | skipped: {r['skipped']} | | | | |")
            continue
        casc = " → ".join(f"{c['spearman']['value']:.2f}" for c in r["cascading"])
        perm = fmt(r["permuted_labels"]["spearman"]) if r["permuted_labels"] else "—"
        out.append(f"| {m} | {fmt(r['spearman'])} | {fmt(r['cascading'][-1]['spearman_abs'])}"
                   f" | {perm} | {casc} | {r['verdict']} |")
    return out


def section(task: str, ev: Evaluation, model, info: dict) -> list[str]:
    acc = model.metrics.get("test", {}).get("accuracy")
    L = [f"## {task}", "",
         f"Model `runs/evaluation/{task}` (`lstmlens train {task}`, test accuracy "
         f"{acc:.3f}); {ev.settings['n']} sentences of its test split (seed 0), masking "
         f"`{ev.settings['masking']}`, predicted class explained. {ev.seconds['total']:.0f} s "
         f"for the evaluation, {info['variant_seconds']:.0f} s to train the variant models "
         f"({info['epochs']} epochs each; the permuted-label model "
         f"{3 * info['epochs']} epochs on {info.get('permuted_texts')} texts, training accuracy "
         f"{info.get('permuted_train_accuracy', float('nan')):.3f}).", "",
         *table(ev, METRICS), "", f"![deletion and insertion curves](evaluation/"
                                  f"{task}_curves.png)", ""]
    rnd = ev.methods["random"]
    if ev.ground_truth:
        ch = ev.ground_truth["chance_precision"]
        hits = [m for m in TARGETS if m in ev.methods
                and ev.methods[m]["planted_precision"]["value"] >= 0.9]
        L += [f"Chance: precision@k = {fmt(ch)}, mean rank "
              f"{fmt(ev.ground_truth['chance_mean_rank'])}; the random ranking's precision "
              f"{fmt(rnd['planted_precision'])} "
              f"{'holds' if rnd['planted_precision']['ci_low'] <= ch['value'] <= rnd['planted_precision']['ci_high'] else 'misses'}"  # noqa: E501
              f" the chance value. Target precision ≥ 0.9: met by {', '.join(hits) or 'none'}"
              f"{'' if len(hits) == len(TARGETS) else '; missed by ' + ', '.join(sorted(set(TARGETS) - set(hits)))}.",  # noqa: E501
              ""]
    above = [m for m in TARGETS if m in ev.methods and separated(
        ev.methods[m]["comprehensiveness_aopc"], rnd["comprehensiveness_aopc"])]
    L += [f"Comprehensiveness above random with non-overlapping intervals: "
          f"{', '.join(above) or 'none'} ({len(above)} of the {len(TARGETS)} target methods)."
          f" Best comprehensiveness: "
          f"{best(ev, 'comprehensiveness_aopc', True)}; best (lowest) sufficiency: "
          f"{best(ev, 'sufficiency_aopc', False)}; lowest deletion area: "
          f"{best(ev, 'deletion_auc', False)}; highest insertion area: "
          f"{best(ev, 'insertion_auc', True)}.", ""]
    L += ["### Sanity checks (Adebayo et al.)", "",
          f"On the first {ev.settings['sanity_n']} sentences. A method passes when the upper "
          f"end of the interval of ρ (signed and of |scores|) stays below "
          f"{ev.sanity['pass_below']} for the fully randomised and the permuted-label model. "
          "The check is necessary, not sufficient: the random ranking passes it too.",
          "", *sanity_lines(ev), ""]
    st = ev.stability
    L += ["### Stability (seeds, data halves)", "",
          f"Three models with different seeds (this one and two retrained ones) and two "
          f"trained on disjoint halves of the training data; mean Spearman ρ of their "
          f"explanations of the same sentences (training accuracy of the retrained models: "
          f"seeds {[round(a, 3) for a in st['training'].get('seed_train_accuracy', [])]}, "
          f"halves {[round(a, 3) for a in st['training'].get('half_train_accuracy', [])]}).",
          "", "| method | ρ across seeds | ρ across data halves |", "|---|---|---|"]
    for m, r in st["methods"].items():
        L.append(f"| {m} | {fmt(r.get('seeds'))} | {fmt(r.get('halves'))} |" if "seeds" in r
                 else f"| {m} | skipped: {r['skipped']} | |")
    L.append("")
    a = ev.attention
    if a and "skipped" not in a:
        L += ["### Attention tests (Jain & Wallace; Wiegreffe & Pinter)", "",
              "| measure | ours | published (BiLSTM, REFERENCES §5) |", "|---|---|---|"]
        rows = [("Kendall τ, attention vs gradient (τ_g)", "tau_gradient"),
                ("Kendall τ, attention vs leave-one-out (τ_loo)", "tau_loo"),
                (f"median TVD of the output under {a['permutations']} permutations of α",
                 "tvd_permuted"),
                ("TVD of the output with uniform attention", "tvd_uniform"),
                ("largest attention weight", "max_attention"),
                ("accuracy", "accuracy"),
                ("accuracy with uniform attention (no retraining)",
                 "accuracy_uniform_attention"),
                ("std of α across the seed models", "attention_std_across_seeds")]
        for name, key in rows:
            L.append(f"| {name} | {fmt(a.get(key))} | {PUBLISHED.get(key, '—')} |")
        L += ["", "Kendall τ between α and |scores| of each method: " + "; ".join(
            f"{m} {fmt(v)}" for m, v in a["tau_with_methods"].items() if m != "random")
              + ".", ""]
        agree = max(a["tau_gradient"]["value"], a["tau_loo"]["value"])
        L += [f"Attention {'agrees only weakly' if agree < 0.5 else 'agrees'} with the "
              f"gradient and leave-one-out importance on this model (τ_g "
              f"{a['tau_gradient']['value']:.2f}, τ_loo {a['tau_loo']['value']:.2f}; "
              f"published BiLSTM figures 0.30–0.40).", ""]
    for note in ev.notes:
        L.append(f"Note: {note}")
    return L


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--n", type=int, default=500)
    p.add_argument("--epochs", type=int, default=2, help="epochs of each variant model")
    p.add_argument("--sanity-n", type=int, default=100)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--tasks", nargs="*", default=["planted", "sentiment"])
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    parts = ["# How far can each explanation be trusted?", "",
             f"Written by `make evaluation-doc` (`scripts/evaluation_doc.py`) on "
             f"{dt.date.today().isoformat()}, {args.threads} thread(s). Every figure is a "
             "mean over sentences with a seeded 95 % percentile-bootstrap interval; a random "
             "ranking of the same sentences is evaluated in the same run. Definitions: "
             "REFERENCES §5–§6; comprehensiveness and sufficiency are ERASER AOPC over the "
             "bins {1, 5, 10, 20, 50} % (divided by |bins| + 1), tokens ranked by signed score; "
             "deletion / insertion areas over 11 points (0–100 % of the tokens); planted "
             "precision@k ranks by |score|. Full results: `lstmlens evaluate MODEL_DIR --out "
             "DIR` (JSON, CSV, HTML, PNG).", ""]
    for task in args.tasks:
        ev, model, info = run_task(task, args.n, args.epochs, args.sanity_n)
        parts += section(task, ev, model, info)
    OUT.write_text("\n".join(parts) + "\n", encoding="utf-8")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    sys.exit(main())
