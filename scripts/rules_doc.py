"""Write docs/rules.md: phrase rules distilled from a sentiment LSTM (``make rules-doc``).

The cell decompositions of Murdoch & Szlam read a unidirectional LSTM's last state, so this
script trains (into ``runs/rules/sentiment-uni``, again whenever ``SETTINGS`` change) the
sentiment model with one forward LSTM and last-state pooling, a vocabulary of words seen at
least 5 times and word dropout 0.5 (more regular than ``lstmlens train sentiment``: a model
that leans less on rare words, which phrase rules follow more closely) — otherwise the same fixed
splits, tokenizer and bag-of-words baseline. For each importance
method it fits :class:`lstmlens.PhraseRules` on the training split, labelled by the LSTM's
own predictions (no labels), with the plain precision and its Wilson lower bound as the
specificity, keeps the one with the higher validation fidelity, and reports on the test
split the rule classifier's accuracy, its fidelity to the LSTM and its coverage, beside the
LSTM's own accuracy, the bag-of-words baseline and the published WikiMovies figures. One
more row mines the best setting on the training split plus VADER's other corpora (tweets,
Amazon reviews, NYT editorials from the same pinned sdist), again labelled by the LSTM.

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
# (method, order, min_support, confidence): the paper's settings (support 10, plain
# precision) once; then, per method, support 5 (during development, on validation only:
# contextual decomposition 0.795 at 5 against 0.794 at 3, 0.791 at 4 and 0.792 at 7 on a
# word-dropout-0.4 model; z = 2 or 3 and min_precision 0.7 were worse) with the plain
# precision (z = 0) and its Wilson lower bound one standard error below (z = 1) as the
# specificity; the better of the two on the validation split is the method's chosen row
CONFIGS = [("additive_cell_decomposition", "specificity", 10, 0.0)] + [
    (m, "specificity", 5, z) for m, _ in METHODS for z in (0.0, 1.0)]
MIN_PRECISION = 0.6
# VADER's other ground-truth corpora in the same pinned sdist: unlabelled extra mining text
OTHER_CORPORA = {"amazon": "amazonReviewSnippets_GroundTruth.txt",
                 "nyt": "nytEditorialSnippets_GroundTruth.txt",
                 "tweets": "tweets_GroundTruth.txt"}
TOP = 25
# min_count 5 and word dropout 0.5 (lstmlens train sentiment: 2 and 0.25): during development
# the highest validation accuracy (0.780) of the 8 variants tried (0.765 at 2 / 0.25)
SETTINGS = {"embedding_dim": 128, "hidden_sizes": [64], "epochs": 10, "max_vocab": 20000,
            "min_count": 5, "word_dropout": 0.5, "dropout": 0.5, "lr": 2e-3,
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


def trained_with_settings(run: Path) -> bool:
    """Whether ``run`` holds a model trained by this script with the current ``SETTINGS``."""
    if not is_model_dir(run):
        return False
    meta = json.loads((run / "config.json").read_text(encoding="utf-8")).get("meta") or {}
    saved = meta.get("training") or {}
    return all(saved.get(k) == v for k, v in SETTINGS.items())


def other_corpora() -> dict[str, list[str]]:
    """The texts of VADER's Amazon, New York Times and tweet corpora (no labels used), read
    from the sha256-pinned ``vaderSentiment-3.3.2`` sdist the sentiment task already uses."""
    from lstmlens.datasets.fetch import fetch
    from lstmlens.datasets.sentiment import SOURCE, _decode, _inner_member, parse_ground_truth
    sdist = fetch(SOURCE, None)
    return {name: parse_ground_truth(_decode(_inner_member(sdist, f), f), f)[2]
            for name, f in OTHER_CORPORA.items()}


def evaluate_method(model, splits, method: str, order: str, min_support: int,
                    confidence: float, extra: list[str] | None = None
                    ) -> tuple[PhraseRules, dict]:
    """Fit rules with one importance method on the training split (plus ``extra`` unlabelled
    texts, labelled by the LSTM); figures on validation and test."""
    start = time.perf_counter()
    rules = PhraseRules(method=method, order=order, min_support=min_support,
                        min_precision=MIN_PRECISION, confidence=confidence
                        ).fit(model, list(splits.train.texts) + (extra or []))
    seconds = time.perf_counter() - start
    test = splits.test
    row = {"method": method, "order": order, "min_support": min_support,
           "confidence": confidence, "mined_on": "training split" + (
               f" + {len(extra)} other texts" if extra else ""),
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


def _spec(confidence: float) -> str:
    """The specificity key in words."""
    return "precision" if confidence == 0 else f"Wilson bound, z = {confidence:g}"


def _row(names: dict[str, str], r: dict, published: str = "") -> str:
    z = _spec(r["confidence"])
    return (f"| {names[r['method']]} | {z} | {r['min_support']} | {r['mined_on']} | "
            f"{r['rules']} | {_pct(r['accuracy'])} | {_pct(r['fidelity'])} | "
            f"{_pct(r['coverage'])} | {_pct(r['validation_fidelity'])} | {published} |")


def write_doc(model) -> None:
    """Fit rules with every importance method and setting; write the tables to docs/rules.md."""
    started = time.perf_counter()
    splits = load_text_splits(None, seed=SETTINGS["seed"])
    lstm = model.metrics["test"]["accuracy"]
    bow = model.metrics["baselines"]["bag_of_words_logreg"]["accuracy"]
    majority = model.metrics["baselines"]["majority"]["accuracy"]
    results = [evaluate_method(model, splits, *c) for c in CONFIGS]
    names = dict(METHODS)
    bow_fid = bag_of_words_fidelity(model, splits)
    published = {"additive_cell_decomposition": PUBLISHED["additive_cell_decomposition"],
                 "cell_decomposition": PUBLISHED["cell_decomposition"],
                 "grad_x_input": PUBLISHED["gradient"]}
    # per method, the setting (support 3; z = 0 or 1) with the highest validation fidelity
    chosen = {m: max((x for x in results[1:] if x[1]["method"] == m),
                     key=lambda x: x[1]["validation_fidelity"]) for m, _ in METHODS}
    best_rules, best = max(chosen.values(), key=lambda x: x[1]["validation_fidelity"])
    extra = other_corpora()
    extra_texts = [t for texts in extra.values() for t in texts]
    _, distilled = evaluate_method(model, splits, best["method"], "specificity",
                                   best["min_support"], best["confidence"], extra_texts)
    all_rows = [r for _, r in results] + [distilled]
    top_fid = max(all_rows, key=lambda r: r["fidelity"])
    met = [r for _, r in chosen.values() if r["fidelity"] >= 0.8]
    lines = [
        "# Phrase rules distilled from a sentiment LSTM",
        "",
        f"Written by `make rules-doc` (`scripts/rules_doc.py`) on {dt.date.today().isoformat()}, "
        "one thread. Method: Murdoch & Szlam (ICLR 2017), `lstmlens.PhraseRules` "
        "(REFERENCES §3.4): word importance → phrases of 1–4 important words (gaps of up to "
        "3 words) important for a class (contrast above log 1.1) in ≥ `min support` mining "
        f"texts, kept when the LSTM assigns ≥ {MIN_PRECISION:.0%} of the mining texts they "
        "match to that class → an ordered pattern-matching classifier, most specific rule "
        "first (first match decides; a text no rule matches gets the default class, the "
        "LSTM's most frequent prediction on the mining texts no rule matches).",
        "",
        "**The rules learn the LSTM, not the truth.** No label is read while mining: every "
        "mining text is labelled by the LSTM's own prediction, and a rule's precision is the "
        "share of the mining texts it matches that the LSTM puts in the rule's class "
        "(distillation). Settings are chosen on the validation split; the test split is only "
        "scored. Fidelity = share of test texts where the rules and the LSTM agree.",
        "",
        f"Model: `{RUN.relative_to(ROOT)}` — the sentiment task's data and splits "
        f"(Rotten Tomatoes snippets, {len(splits.train)} / {len(splits.validation)} / "
        f"{len(splits.test)} texts), one forward LSTM of {SETTINGS['hidden_sizes'][0]} units "
        "read at its last state (the cell decompositions need one direction), trained by "
        f"this script (words seen ≥ {SETTINGS['min_count']} times, word dropout "
        f"{SETTINGS['word_dropout']:g}, dropout {SETTINGS['dropout']:g}). Those two settings "
        "were chosen during development among 8 variants by the LSTM's own validation "
        "accuracy, not by rule fidelity; the rule settings below by validation fidelity.",
        "",
        "## Per importance method (the setting chosen on validation)",
        "",
        "| importance method | specificity | rules | rule accuracy % | fidelity to the LSTM % "
        "| coverage % | LSTM accuracy % | bag-of-words accuracy % | bag-of-words fidelity % "
        "| published WikiMovies hits@1 % |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for m, label in METHODS:
        r = chosen[m][1]
        lines.append(f"| {label} | {_spec(r['confidence'])} | {r['rules']} | "
                     f"{_pct(r['accuracy'])} | "
                     f"{_pct(r['fidelity'])} | {_pct(r['coverage'])} | {_pct(lstm)} | "
                     f"{_pct(bow)} | {_pct(bow_fid)} | {published.get(m, '')} |")
    lines += [
        f"| *the LSTM itself* | | | {_pct(lstm)} | 100 | | | | | {PUBLISHED['LSTM']} |",
        f"| *hand-written patterns* | | | | | | | | | {PUBLISHED['hand-written patterns']} |",
        "",
        "Target (issue 6): fidelity to the LSTM ≥ 80 % on the test split — "
        + (", ".join(f"met by {names[r['method']]} ({_pct(r['fidelity'])} %)" for r in met)
           if met else f"**not met**; the best of the validation-chosen settings is "
           f"{_pct(max(r['fidelity'] for _, r in chosen.values()))} % and the best of every "
           f"row below {_pct(top_fid['fidelity'])} %")
        + f". For scale, a bag-of-words logistic regression fitted on the true labels agrees "
        f"with the LSTM on {_pct(bow_fid)} % of the test texts, and the majority class is "
        f"{_pct(majority)} % accurate. The rules agree with the LSTM on "
        f"{_pct(best['train_fidelity'])} % of the mining texts but "
        f"{_pct(best['fidelity'])} % of the test texts: among {len(splits.train)} mining texts "
        f"some phrases of support {best['min_support']} look perfectly specific by chance, and "
        "a first-match list cannot add up weak evidence the way the LSTM and a linear model "
        "do.",
        "",
        "## Every setting",
        "",
        "`specificity`: the key that orders the rules — the plain precision on the mining "
        "texts (the paper), or its Wilson lower bound z standard errors below, which ranks a "
        "rule seen 3 times below one seen 300 times with nearly the same precision. The last "
        f"row is distillation on more text: the chosen best setting mined on the training "
        f"split plus VADER's other ground-truth corpora from the same pinned sdist "
        f"({', '.join(f'{len(v)} {k}' for k, v in extra.items())}; their ratings unused, "
        "the LSTM labels them).",
        "",
        "| importance method | specificity | min support | mined on | rules | accuracy % | "
        "fidelity to the LSTM % | coverage % | validation fidelity % | published WikiMovies "
        "hits@1 % |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    shown: set[str] = set()
    for r in all_rows:
        pub = published.get(r["method"], "") if r["method"] not in shown else ""
        shown.add(r["method"])
        lines.append(_row(names, r, str(pub)))
    lines += [
        "",
        "Published figures: Murdoch & Szlam 2017, Table 3 (WikiMovies question answering, "
        "hits@1: LSTM 72.8, additive cell decomposition patterns 68.3, cell-difference "
        "patterns 65.8, gradient patterns 66.7, hand-written patterns 72.9). They are another "
        "task and data set, shown for scale only; the paper gives no fidelity. Contextual "
        "decomposition postdates it (Murdoch, Liu & Yu 2018).",
        "",
        "Fit time (s, one thread): " + ", ".join(
            f"{names[r['method']]} / z {r['confidence']:g} / {r['min_support']}"
            f"{' / + other texts' if r is distilled else ''} {r['seconds']:.0f}"
            for r in all_rows) + f". Whole script: {time.perf_counter() - started:.0f} s.",
        "",
        f"## Top rules ({names[best['method']]}, specificity {_spec(best['confidence'])}: "
        "the highest validation fidelity)",
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
    if not trained_with_settings(RUN):
        train_unidirectional(RUN)
    if args.train_only:
        return
    write_doc(lstmlens.load(RUN))


if __name__ == "__main__":
    main(sys.argv[1:])
