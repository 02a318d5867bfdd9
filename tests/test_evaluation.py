"""``lstmlens.evaluate`` end to end on a small planted-token model, and ``lstmlens evaluate``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

import lstmlens
from lstmlens.cli import app
from lstmlens.errors import InputError, ModelError
from lstmlens.evaluation_result import Evaluation
from lstmlens.intervals import separated
from lstmlens.models import ClassifierConfig, LSTMClassifier
from lstmlens.tasks import train_task

EXACT = ["cd", "lrp", "integrated_gradients", "occlusion"]
FAST_IG = {"integrated_gradients": {"steps": 16}}


@pytest.fixture(scope="module")
def planted_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("eval") / "planted"
    torch.manual_seed(0)
    res = train_task("planted", out, quick=True, vocabulary="builtin", n_train=2000, epochs=5,
                     hidden_size=24, embedding_dim=16, progress=False)
    assert res.metrics["test"]["accuracy"] >= 0.97, res.metrics["test"]
    return out


@pytest.fixture(scope="module")
def planted_eval(planted_dir):
    model = lstmlens.load(planted_dir)
    return lstmlens.evaluate(model, n=48, methods=EXACT + ["attention"],
                             method_options=FAST_IG, seed=0)


def test_exact_methods_find_the_planted_tokens(planted_eval) -> None:
    ev = planted_eval
    chance = ev.ground_truth["chance_precision"]
    rnd = ev.figure("random", "planted_precision")
    for m in EXACT:
        assert ev.figure(m, "planted_precision")["value"] >= 0.85, (m, ev.methods[m])
        assert separated(ev.figure(m, "planted_precision"), rnd)
        assert ev.figure(m, "planted_mean_rank")["value"] < ev.figure(
            "random", "planted_mean_rank")["value"]
    # the random ranking stays at chance: its interval holds the expected k / L
    assert rnd["ci_low"] <= chance["value"] <= rnd["ci_high"]


def test_faithfulness_beats_random_with_intervals(planted_eval) -> None:
    ev = planted_eval
    for m in EXACT:
        assert separated(ev.figure(m, "comprehensiveness_aopc"),
                         ev.figure("random", "comprehensiveness_aopc")), m
        assert separated(ev.figure("random", "sufficiency_aopc"),
                         ev.figure(m, "sufficiency_aopc")), m
        assert ev.figure(m, "deletion_auc")["value"] < ev.figure("random",
                                                                 "deletion_auc")["value"]
        f = ev.figure(m, "insertion_auc")
        assert f["ci_low"] <= f["value"] <= f["ci_high"] and f["n"] == 48
        assert len(ev.curves[m]["deletion"]) == 11


def test_a_method_that_cannot_run_is_skipped_not_zero(planted_eval) -> None:
    ev = planted_eval
    assert "attention" not in ev.methods and "no attention" in ev.skipped["attention"]
    doc = json.loads(ev.to_json())
    assert set(doc["methods"]) == set(EXACT) | {"random", "attention"}
    assert doc["methods"]["attention"] == {"skipped": ev.skipped["attention"]}
    for key in ("comprehensiveness_aopc", "sufficiency_aopc", "deletion_auc", "insertion_auc",
                "planted_precision", "planted_mean_rank"):
        assert set(doc["methods"]["cd"][key]) == {"value", "ci_low", "ci_high", "n"}
    assert doc["attention"] == {"skipped": "the model has no attention (its pooling is the "
                                           "last state)"}
    csv = ev.to_csv().splitlines()
    assert csv[0] == "method,metric,value,ci_low,ci_high,n,status"
    assert any(line.startswith("attention,,") and "skipped" in line for line in csv)


def test_n_beyond_the_data_uses_it_all_and_says_so(planted_dir) -> None:
    model = lstmlens.load(planted_dir)
    ev = lstmlens.evaluate(model, ["the film superb the story", "awful the story was"], n=10,
                           methods=["lrp"], resamples=200)
    assert ev.settings["n"] == 2
    assert any("n=10" in note and "using all 2" in note for note in ev.notes)


def test_bad_input_is_refused(planted_dir, tmp_path: Path) -> None:
    model = lstmlens.load(planted_dir)
    with pytest.raises(InputError, match="holds no texts"):
        lstmlens.evaluate(model, [])
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    with pytest.raises(InputError, match="holds no texts"):
        lstmlens.evaluate(model, empty)
    with pytest.raises(InputError, match="unknown method"):
        lstmlens.evaluate(model, ["the film"], methods=["nope"])
    with pytest.raises(InputError, match="unknown check"):
        lstmlens.evaluate(model, ["the film"], checks=["vibes"])
    with pytest.raises(InputError, match="not a file"):
        lstmlens.evaluate(model, "no/such/file.csv")
    with pytest.raises(InputError, match="n must be"):
        lstmlens.evaluate(model, ["the film"], n=0)
    features = LSTMClassifier(ClassifierConfig(num_classes=2, input_size=3, hidden_sizes=[4]))
    with pytest.raises(ModelError, match="no tokenizer"):
        lstmlens.evaluate(features, ["the film"])


def test_html_is_escaped() -> None:
    ev = Evaluation(methods={"<script>alert(1)</script>": {}}, skipped={"x": "<b>why</b>"},
                    notes=["<i>note</i>"])
    page = ev.to_html()
    assert "<script>alert" not in page and "<b>why" not in page and "<i>note" not in page
    assert "&lt;script&gt;" in page


def test_cli_writes_json_csv_html_and_plots(planted_dir, tmp_path: Path) -> None:
    out, js = tmp_path / "report", tmp_path / "ev.json"
    r = CliRunner().invoke(app, ["evaluate", str(planted_dir), "--n", "12", "--methods",
                                 "lrp,attention", "--out", str(out), "--json", str(js),
                                 "--masking", "unk"])
    assert r.exit_code == 0, r.output
    for name in ("evaluation.json", "evaluation.csv", "evaluation.html", "curves.png",
                 "figures.png"):
        assert (out / name).stat().st_size > 0, name
    assert (out / "curves.png").read_bytes()[:4] == b"\x89PNG"
    doc = json.loads(js.read_text())
    assert set(doc["methods"]) == {"lrp", "random", "attention"}
    assert "skipped" in doc["methods"]["attention"]
    assert doc["settings"]["masking"] == "unk" and doc["settings"]["n"] == 12
    assert "curves.png" in (out / "evaluation.html").read_text()


@pytest.mark.parametrize("args, message", [
    (["--data", "EMPTY"], "no rows"),
    (["--methods", "lrp,nope"], "unknown method"),
    (["--masking", "blank"], "masking must be one of"),
    (["--checks", ""], "--checks is empty"),
])
def test_cli_bad_input_is_one_line(planted_dir, tmp_path: Path, args, message) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("text,label\n")
    args = [str(empty) if a == "EMPTY" else a for a in args]
    r = CliRunner().invoke(app, ["evaluate", str(planted_dir), "--n", "5", *args])
    assert r.exit_code == 1
    assert message in r.output and "Traceback" not in r.output
    assert r.output.strip().startswith("error:")
