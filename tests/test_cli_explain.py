"""The explain and train commands, through the CLI runner and a real subprocess."""

import json
import subprocess
import sys

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
    cases = [(["explain", str(text_model), "a film", "--method", "nope"], "unknown method"),
             (["explain", str(text_model), "a film", "--target", "5"], "target must lie"),
             (["explain", str(text_model), "a " * 13],
              "at most 12"),
             (["train", "nope"], "unknown task")]
    for args, msg in cases:
        r = subprocess.run([sys.executable, "-m", "lstmlens.cli", *args], capture_output=True,
                           text=True)
        assert r.returncode == 1
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error:") and msg in lines[0], r.stderr
        assert "Traceback" not in r.stderr


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
