"""The explain and train commands, through the CLI runner and a real subprocess."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from lstmlens.cli import app
from lstmlens.modeldir import save
from lstmlens.models import ClassifierConfig, LSTMClassifier
from lstmlens.tokenizers import Tokenizer

runner = CliRunner()


@pytest.fixture()
def text_model(tmp_path):
    torch.manual_seed(0)
    tok = Tokenizer("word").fit(["a fine film", "a dull film", "<b>bold</b> claims"])
    model = LSTMClassifier(ClassifierConfig(num_classes=2, vocab_size=len(tok), embedding_dim=4,
                                            hidden_sizes=[5], pooling="attention"))
    return save(model, tmp_path / "m", tokenizer=tok,
                meta={"classes": ["negative", "positive"], "max_length": 12})


def test_explain_text_json_html_and_all(text_model, tmp_path):
    r = runner.invoke(app, ["explain", str(text_model), "a fine film", "--method", "lrp",
                            "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    item = doc["attributions"][0]["items"][0]
    assert item["tokens"] == ["a", "fine", "film"] and len(item["scores"]) == 3
    page = tmp_path / "e.html"
    r = runner.invoke(app, ["explain", str(text_model), "<b>bold</b> film", "--all",
                            "--html", str(page)])
    assert r.exit_code == 0, r.output
    assert "integrated_gradients" in r.stdout and "attention" in r.stdout
    assert "skipped cell_decomposition" in r.stdout  # attention pooling: refused with reason
    html = page.read_text()
    assert ">&lt;</span>" in html and "<b>bold" not in html  # tokens are escaped text


def test_explain_errors_are_one_line(text_model):
    """A real process: one line on stderr, exit code 1, no traceback."""
    r = subprocess.run([sys.executable, "-m", "lstmlens.cli", "explain", str(text_model),
                        "a film", "--method", "nope"], capture_output=True, text=True)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "unknown method" in lines[0]
    assert "cd, cell_decomposition" in lines[0]  # the valid methods are listed
    # the same guard, in-process (each extra process costs seconds of imports)
    cases = [(["explain", str(text_model), "a film", "--target", "5"], "target must lie"),
             (["explain", str(text_model), "a " * 13], "at most 12"),
             (["train", "nope"], "unknown task")]
    for args, msg in cases:
        r = runner.invoke(app, args)
        lines = r.output.strip().splitlines()
        assert r.exit_code == 1 and len(lines) == 1 and lines[0].startswith("error:"), r.output
        assert msg in lines[0]


def test_explain_empty_and_unknown_text(text_model):
    """"" once read as the current directory (a file of unknown type); text goes through
    explain() as in Python, so all-unknown words are refused the same way."""
    for text, msg in [("", "the input is empty"), ("   ", "empty"),
                      ("zzz qqq", "unknown to this model's vocabulary")]:
        r = runner.invoke(app, ["explain", str(text_model), text])
        assert r.exit_code == 1 and msg in r.output and "Traceback" not in r.output, r.output


def test_explain_prints_the_strongest_tokens(text_model):
    """Without a colour terminal the scores still show: a top line per method, in the
    order of the JSON scores."""
    r = runner.invoke(app, ["explain", str(text_model), "a dull film", "--method", "lrp"])
    assert r.exit_code == 0, r.output
    top = next(ln for ln in r.stdout.splitlines() if ln.strip().startswith("top:"))
    doc = json.loads(runner.invoke(app, ["explain", str(text_model), "a dull film", "--method",
                                         "lrp", "--json"]).stdout)
    item = doc["attributions"][0]["items"][0]
    order = np.argsort(item["scores"])[::-1]
    expected = ", ".join(f"{item['tokens'][t]!r} {item['scores'][t]:+.3g}" for t in order)
    assert top.split("top:", 1)[1].strip() == expected


@pytest.mark.slow
def test_train_speech_quick(tmp_path):
    r = runner.invoke(app, ["train", "speech", "--quick", "--out", str(tmp_path / "sp"),
                            "--epochs", "2"])
    assert r.exit_code == 0, r.output
    metrics = json.loads((tmp_path / "sp" / "metrics.json").read_text())
    assert metrics["test"]["accuracy"] > metrics["baselines"]["majority"]["accuracy"]


def test_predict_command(text_model):
    r = runner.invoke(app, ["predict", str(text_model), "a fine film"])
    assert r.exit_code == 0, r.output
    lines = [ln.split() for ln in r.stdout.strip().splitlines()]
    assert {ln[0] for ln in lines} == {"negative", "positive"}
    assert abs(sum(float(ln[1]) for ln in lines) - 1) <= 2e-3
