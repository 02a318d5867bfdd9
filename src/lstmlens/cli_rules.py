"""``lstmlens rules MODEL_DIR``: phrase rules distilled from a text classifier (thin)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from .errors import InputError


def model_splits(model: Any, data: Path | None = None):
    """The texts a model was trained on: ``(train_texts, test_texts, test_labels)``.

    ``data``: a ``.txt`` (one text per line), ``.csv``, ``.tsv`` or ``.jsonl`` file of texts
    (then there is no test split: ``None, None``). Without it the model's own task is read
    from its meta: ``sentiment`` (its fixed splits) or ``planted`` (regenerated).
    """
    if data is not None:
        from .datasets.userdata import load_text_file
        table = load_text_file(data, label_column=None)
        return list(table.texts), None, None
    meta = getattr(model, "meta", None) or {}
    task = meta.get("task")
    if task == "sentiment":
        from .tasks.sentiment import load_text_splits
        src = meta.get("data") or {}
        if src.get("path"):
            splits = load_text_splits(src["path"], seed=meta.get("seed", 0),
                                      text_column=src.get("text_column", "text"),
                                      label_column=src.get("label_column", "label"))
        else:
            splits = load_text_splits(None, source=src.get("corpus", "movies"),
                                      seed=meta.get("seed", 0))
    elif task == "planted":
        from .datasets.planted import load_planted
        g = meta["generation"]
        splits = load_planted(g["n"]["train"], g["n"]["validation"], g["n"]["test"],
                              seed=g["seed"], vocab=g["neutral_words"], positive=g["positive"],
                              negative=g["negative"], min_length=g["min_length"],
                              max_length=g["max_length"], max_planted=g["max_planted"])
    else:
        raise InputError(f"this model's task ({task or 'unknown'}) has no text data I can "
                         "regenerate; pass --data FILE (.txt, one text per line, or "
                         ".csv/.tsv/.jsonl with a 'text' column)")
    return list(splits.train.texts), list(splits.test.texts), splits.test.labels


def rules_cmd(
    model_dir: Annotated[Path, typer.Argument(help="A text classifier model directory.")],
    method: Annotated[str, typer.Option(help="Word importance method.")
                      ] = "additive_cell_decomposition",
    top: Annotated[int, typer.Option(min=1, help="Rules to print.")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print the rules as JSON.")] = False,
    min_support: Annotated[int, typer.Option(min=1, help="Least texts a phrase must be "
                                             "important in.")] = 10,
    min_precision: Annotated[float, typer.Option(help="Least share of matching texts the "
                                                 "model assigns to the rule's class.")] = 0.6,
    threshold: Annotated[float | None, typer.Option(help="Least contrast (logit units) of an "
                                                    "important word (default log 1.1).")
                         ] = None,
    confidence: Annotated[float, typer.Option(min=0.0, help="Order rules by the Wilson lower "
                                              "bound of their precision, this many standard "
                                              "errors below it (0: the plain precision).")
                          ] = 0.0,
    data: Annotated[Path | None, typer.Option(help="Texts to fit on (.txt one per line, "
                                              ".csv/.tsv/.jsonl) instead of the model's "
                                              "training split.")] = None,
) -> None:
    """Phrase rules distilled from a classifier, with support and precision (Murdoch & Szlam)."""
    from .cli_common import _guard, out

    def body():
        from .modeldir import load
        from .rules import PhraseRules, check_classifier
        model = load(model_dir)
        check_classifier(model)  # before looking for its data
        train, test, labels = model_splits(model, data)
        opts = {} if threshold is None else {"threshold": threshold}
        rules = PhraseRules(method=method, min_support=min_support,
                            min_precision=min_precision, confidence=confidence,
                            **opts).fit(model, train)
        split = {"texts": len(test), "fidelity": rules.fidelity(model, test),
                 "coverage": rules.coverage(test), "accuracy": rules.score(test, labels)
                 } if test is not None else None
        if as_json:
            doc = rules.to_dict()
            doc["n_rules"] = len(doc["rules"])
            doc["rules"] = doc["rules"][:top]
            doc["test"] = split
            sys.stdout.write(json.dumps(doc) + "\n")
            return
        t = Table(title=f"{len(rules.rules_)} phrase rules from {len(train)} texts "
                        f"({method}); first {min(top, len(rules.rules_))}",
                  title_justify="left")
        for col in ("#", "pattern", "class", "support", "precision", "importance", "units"):
            t.add_column(col, justify="right" if col in ("#", "support", "precision",
                                                         "importance") else "left")
        for n, r in enumerate(rules.rules_[:top], 1):
            units = " ".join(f"{u['unit']}:{u['auc']:.2f}" for u in r.units[:3])
            t.add_row(str(n), escape(" … ".join(r.pattern)), escape(r.class_name),
                      str(r.support), f"{r.precision:.3f}", f"{r.importance:.2f}", units)
        out.print(t)
        out.print(f"default (no rule matches): {escape(rules.classes_[rules.default_])}; "
                  f"training texts: fidelity {rules.train_fidelity_:.3f}, coverage "
                  f"{rules.train_coverage_:.3f}")
        if split is not None:
            out.print(f"test split ({split['texts']} texts): fidelity to the model "
                      f"{split['fidelity']:.3f}, coverage {split['coverage']:.3f}, accuracy "
                      f"{split['accuracy']:.3f}")
        out.print("[dim]units: hidden units that best separate matching texts (AUC)[/]")
    _guard(body)
