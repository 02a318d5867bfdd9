"""Write docs/rules.md: phrase rules distilled from a sentiment LSTM (``make rules-doc``).

The cell decompositions of Murdoch & Szlam read a unidirectional LSTM's last state, so this
script trains (once, into ``runs/rules/sentiment-uni``) the sentiment model with one forward
LSTM and last-state pooling — otherwise the settings of ``lstmlens train sentiment``: the
same fixed splits, tokenizer, word dropout and bag-of-words baseline. For each importance
method it fits :class:`lstmlens.PhraseRules` on the training split and reports, on the test
split, the rule classifier's accuracy, its fidelity to the LSTM and its coverage, beside the
LSTM's own accuracy, the bag-of-words baseline and the published WikiMovies figures.

Run with ``--train-only`` to train the model and stop.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from pathlib import Path

import torch

import lstmlens
from lstmlens.modeldir import is_model_dir, save
from lstmlens.models import ClassifierConfig, LSTMClassifier
from lstmlens.rules import PhraseRules
from lstmlens.tasks.sentiment import (
    TokenDropout,
    bag_of_words_baseline,
    load_text_splits,
    majority_baseline,
)
from lstmlens.textdata import encode_splits, fit_tokenizer
from lstmlens.training import evaluate, fit

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "rules.md"
RUN = ROOT / "runs" / "rules" / "sentiment-uni"
METHODS = [("additive_cell_decomposition", "additive cell decomposition"),
           ("cell_decomposition", "cell decomposition (difference of tanh c)"),
           ("cd", "contextual decomposition"),
           ("grad_x_input", "gradient × input")]
# Murdoch & Szlam (ICLR 2017), Table 3, WikiMovies hits@1 (REFERENCES §3.4)
PUBLISHED = {"LSTM": 72.8, "additive_cell_decomposition": 68.3, "cell_decomposition": 65.8,
             "gradient": 66.7, "hand-written patterns": 72.9}
# (method, order, min_support): the paper's support (> 10 texts) once, then 3, which gave the
# highest validation fidelity during development (additive: 0.757 against 0.718 at 10)
CONFIGS = [("additive_cell_decomposition", "specificity", 10),
           ("additive_cell_decomposition", "specificity", 3),
           ("additive_cell_decomposition", "cover", 3),
           ("cell_decomposition", "specificity", 3),
           ("cd", "specificity", 3),
           ("grad_x_input", "specificity", 3)]
MIN_PRECISION = 0.6
TOP = 25
SETTINGS = {"embedding_dim": 128, "hidden_sizes": [64], "epochs": 10, "max_vocab": 20000,
            "min_count": 2, "word_dropout": 0.25, "dropout": 0.5, "lr": 2e-3,
            "batch_size": 64, "patience": 3, "max_length": 100, "seed": 0}


def train_unidirectional(out: Path) -> None:
    """Train the sentiment LSTM with one forward layer and last-state pooling into ``out``."""
    s = SETTINGS
    splits = load_text_splits(None, seed=s["seed"])
    tok = fit_tokenizer(splits.train.texts, max_vocab=s["max_vocab"], min_count=s["min_count"])
    enc = encode_splits(splits, tok, s["max_length"])
    torch.manual_seed(s["seed"])
    model = LSTMClassifier(ClassifierConfig(
        num_classes=len(splits.classes), vocab_size=len(tok), embedding_dim=s["embedding_dim"],
        hidden_sizes=list(s["hidden_sizes"]), bidirectional=False, pooling="last",
        dropout=s["dropout"]))
    history = fit(model, enc.train, enc.validation, seed=s["seed"], progress=False,
                  objective=TokenDropout(s["word_dropout"], tok.unk_id, s["seed"]),
                  epochs=s["epochs"], batch_size=s["batch_size"], lr=s["lr"],
                  patience=s["patience"])
    metrics = {"test": evaluate(model, enc.test), "validation": evaluate(model, enc.validation),
               "baselines": {"majority": majority_baseline(enc.train.labels, enc.test.labels),
                             "bag_of_words_logreg": bag_of_words_baseline(splits)},
               "training": history.to_dict()}
    meta = {"task": "sentiment", "classes": list(splits.classes), "data": splits.source,
            "max_length": s["max_length"], "seed": s["seed"], "quick": False,
            "train_texts": len(splits.train),
            "training": {**s, "note": "unidirectional, last-state pooling (scripts/rules_doc.py)"}}
    save(model, out, metrics=metrics, tokenizer=tok.to_json(), meta=meta)
    print(f"trained {len(history.epochs)} epochs in {history.seconds:.0f} s; test accuracy "
          f"{metrics['test']['accuracy']:.4f}; saved to {out}", flush=True)


def evaluate_method(model, splits, method: str, order: str, min_support: int
                    ) -> tuple[PhraseRules, dict]:
    """Fit rules with one importance method on the training split; figures on test."""
    start = time.perf_counter()
    rules = PhraseRules(method=method, order=order, min_support=min_support,
                        min_precision=MIN_PRECISION).fit(model, splits.train.texts)
    seconds = time.perf_counter() - start
    test = splits.test
    row = {"method": method, "order": order, "min_support": min_support,
           "rules": len(rules.rules_),
           "accuracy": rules.score(test.texts, test.labels),
           "fidelity": rules.fidelity(model, test.texts), "coverage": rules.coverage(test.texts),
           "validation_fidelity": rules.fidelity(model, splits.validation.texts),
           "train_fidelity": rules.train_fidelity_, "default": rules.classes_[rules.default_],
           "seconds": seconds}
    print(json.dumps(row), flush=True)
    return rules, row


def bag_of_words_fidelity(model, splits) -> float:
    """Agreement of the bag-of-words baseline (fitted on labels) with the LSTM on test."""
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.linear_model import LogisticRegression

    from lstmlens.rules import model_predictions
    from lstmlens.tasks.sentiment import TOKEN_PATTERN
    vec = CountVectorizer(token_pattern=TOKEN_PATTERN)
    clf = LogisticRegression(max_iter=2000).fit(vec.fit_transform(splits.train.texts),
                                                splits.train.labels)
    lstm = model_predictions(model, list(splits.test.texts))
    return float((clf.predict(vec.transform(splits.test.texts)) == lstm).mean())


def _pct(v: float | None) -> str:
    return "—" if v is None else f"{100 * v:.1f}"


def write_doc(model) -> None:
    """Fit rules with every importance method and order; write the tables to docs/rules.md."""
    splits = load_text_splits(None, seed=SETTINGS["seed"])
    lstm = model.metrics["test"]["accuracy"]
    bow = model.metrics["baselines"]["bag_of_words_logreg"]["accuracy"]
    majority = model.metrics["baselines"]["majority"]["accuracy"]
    results = [evaluate_method(model, splits, *c) for c in CONFIGS]
    names = dict(METHODS)
    bow_fid = bag_of_words_fidelity(model, splits)
    best_rules, best = max(results, key=lambda r: r[1]["validation_fidelity"])
    published = {"additive_cell_decomposition": PUBLISHED["additive_cell_decomposition"],
                 "cell_decomposition": PUBLISHED["cell_decomposition"],
                 "grad_x_input": PUBLISHED["gradient"]}
    lines = [
        "# Phrase rules distilled from a sentiment LSTM",
        "",
        f"Written by `make rules-doc` (`scripts/rules_doc.py`) on {dt.date.today().isoformat()}, "
        "one thread. Method: Murdoch & Szlam (ICLR 2017), `lstmlens.PhraseRules` "
        "(REFERENCES §3.4): word importance → phrases of 1–4 important words (gaps of up to "
        "3 words) important for a class (contrast above log 1.1) in ≥ `min support` training "
        f"texts, kept when the LSTM assigns ≥ {MIN_PRECISION:.0%} of the training texts they "
        "match to that class → an "
        "ordered pattern-matching classifier (first match decides; a text no rule matches "
        "gets the default class, the LSTM's most frequent prediction on the uncovered "
        "training texts). Rules are fitted on the LSTM's predictions for the training "
        "split (no labels); the figures below are on the test split.",
        "",
        f"Model: `{RUN.relative_to(ROOT)}` — the sentiment task's data and splits "
        f"(Rotten Tomatoes snippets, {len(splits.train)} / {len(splits.validation)} / "
        f"{len(splits.test)} texts), one forward LSTM of {SETTINGS['hidden_sizes'][0]} units "
        "read at its last state (the cell decompositions need one direction), trained by "
        "this script.",
        "",
        "Orders: `specificity` is the paper's (precision on all training texts, then "
        "support); `cover` is sequential covering (each next rule is the most specific one on "
        "the training texts no earlier rule matches).",
        "",
        "| importance method | order | min support | rules | accuracy % | fidelity to the "
        "LSTM % | coverage % | published WikiMovies hits@1 % |",
        "|---|---|---|---|---|---|---|---|",
    ]
    shown: set[str] = set()
    for _, r in results:
        pub = published.get(r["method"]) if r["method"] not in shown else None
        shown.add(r["method"])
        lines.append(f"| {names[r['method']]} | {r['order']} | {r['min_support']} | "
                     f"{r['rules']} | {_pct(r['accuracy'])} | {_pct(r['fidelity'])} | "
                     f"{_pct(r['coverage'])} | {'' if pub is None else pub} |")
    lines += [
        f"| the LSTM itself | | | | {_pct(lstm)} | 100 | | {PUBLISHED['LSTM']} |",
        f"| bag-of-words logistic regression (labels) | | | | {_pct(bow)} | {_pct(bow_fid)} "
        "| | |",
        f"| majority class | | | | {_pct(majority)} | | | |",
        f"| hand-written patterns | | | | | | | {PUBLISHED['hand-written patterns']} |",
        "",
        "Target (issue 6): fidelity to the LSTM ≥ 80 % on the test split — "
        + (", ".join(f"met by {names[r['method']]} / {r['order']} / {r['min_support']} "
                     f"({_pct(r['fidelity'])} %)" for _, r in results if r["fidelity"] >= 0.8)
           or f"not met; the best is {_pct(max(r['fidelity'] for _, r in results))} %")
        + f". For scale, the bag-of-words baseline agrees with the LSTM on {_pct(bow_fid)} % "
        "of the test texts: a first-match list of phrases cannot add up weak evidence the way "
        "the LSTM and a linear model do.",
        "",
        "Published figures: Murdoch & Szlam 2017, Table 3 (WikiMovies question answering, "
        "hits@1: LSTM 72.8, additive cell decomposition patterns 68.3, cell-difference "
        "patterns 65.8, gradient patterns 66.7, hand-written patterns 72.9). They are another "
        "task and data set, shown for scale only; the paper gives no fidelity. Contextual "
        "decomposition postdates it (Murdoch, Liu & Yu 2018).",
        "",
        "Fit time (s, one thread): " + ", ".join(
            f"{names[r['method']]} / {r['order']} {r['seconds']:.0f}" for _, r in results) + ".",
        "",
        f"## Top rules ({names[best['method']]}, {best['order']} order: the highest "
        "validation fidelity)",
        "",
        f"Test split: fidelity {_pct(best['fidelity'])} %, coverage {_pct(best['coverage'])} %, "
        f"accuracy {_pct(best['accuracy'])} %; default class **{best['default']}**. "
        "Units: the hidden units whose final state best separates the training texts the "
        "rule matches from the rest (AUC; above 0.5: higher on matching texts).",
        "",
        "| # | pattern | class | support | precision | decides | units (AUC) |",
        "|---|---|---|---|---|---|---|",
    ]
    for n, r in enumerate(best_rules.rules_[:TOP], 1):
        units = ", ".join(f"{u['unit']} ({u['auc']:.2f})" for u in r.units[:3])
        pattern = " … ".join(r.pattern).replace("|", "\\|")
        lines.append(f"| {n} | `{pattern}` | {r.class_name} | {r.support} | "
                     f"{r.precision:.3f} | {r.decided} | {units} |")
    lines += ["", "`support`: training texts the pattern matches; `precision`: share of them "
              "the LSTM assigns to the rule's class; `decides`: training texts where it is "
              "the first rule that matches.", ""]
    OUT.write_text("\n".join(lines), encoding="utf-8")
    print(f"wrote {OUT}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-only", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    if not is_model_dir(RUN):
        train_unidirectional(RUN)
    if args.train_only:
        return
    write_doc(lstmlens.load(RUN))


if __name__ == "__main__":
    main(sys.argv[1:])
