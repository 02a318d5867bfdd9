"""The ``lstmlens`` command line, in process (typer's CliRunner) and as a real subprocess.

Every error exits non-zero with exactly one line on stderr, starting ``error:``, and never a
traceback. Tests that read the real Japanese Vowels data (``test:N``) or train are marked
``slow``; the data go to a session-wide temporary cache (``$LSTMLENS_CACHE``), seeded from an
already downloaded wheel when there is one (the loader checks its sha256 either way).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import lstmlens
from lstmlens import LSTMClassifier
from lstmlens import modeldir as md
from lstmlens.cli import app
from lstmlens.datasets import cache_dir, load_japanese_vowels
from lstmlens.datasets import japanese_vowels as jv


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny models: one thread is as fast as two, and does not slow down a hundredfold when
    another process is using the cores (OpenMP threads waiting on each other)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)

CLASSES = [f"speaker {k}" for k in range(1, 10)]
META = {"task": "speech/japanese_vowels", "classes": CLASSES, "seed": 0}
HIDDEN = 8
T = 6  # steps in the input files


@pytest.fixture(scope="session")
def cache_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("lstmlens-cache")
    wheel = cache_dir() / "downloads" / jv.SOURCE.filename
    if wheel.is_file():
        (root / "downloads").mkdir()
        shutil.copy2(wheel, root / "downloads" / wheel.name)
    return root


@pytest.fixture(autouse=True)
def _cache_env(cache_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LSTMLENS_CACHE", str(cache_root))


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A small untrained model directory and input files of every kind."""
    root = tmp_path_factory.mktemp("cli")
    torch.manual_seed(0)
    model = LSTMClassifier(dict(num_classes=9, input_size=12, hidden_sizes=[HIDDEN]))
    lstmlens.save(model, root / "model", meta=META,
                  metrics={"test": {"accuracy": 0.5}, "baselines": {"majority": {"accuracy": 0.1}}})
    x = np.random.default_rng(0).normal(size=(T, 12)).astype(np.float32)
    np.save(root / "x.npy", x)
    np.savetxt(root / "x.csv", x, delimiter=",")
    (root / "x.json").write_text(json.dumps(x.tolist()))
    np.save(root / "seven.npy", x[:, :7])
    nan = x.copy()
    nan[2, 3] = np.nan
    np.save(root / "nan.npy", nan)
    np.savetxt(root / "x.txt", x, delimiter=",")
    np.save(root / "vector.npy", x[0])
    (root / "broken.json").write_text("[[1, 2,")
    (root / "notes").mkdir()
    (root / "notes" / "a.txt").write_text("not a model")
    return {"root": root, "model": root / "model", "x": x, **{
        p.name: p for p in root.iterdir()}}


runner = CliRunner()


def invoke(*args: str | Path):
    return runner.invoke(app, [str(a) for a in args])


def assert_one_line_error(result, *fragments: str) -> str:
    assert result.exit_code != 0, result.stdout
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines[0]
    assert "Traceback" not in result.stderr + result.stdout
    for frag in fragments:
        assert frag in lines[0], lines[0]
    return lines[0]


def expected_probabilities(files, x: np.ndarray) -> torch.Tensor:
    model = lstmlens.load(files["model"])
    return model.predict_proba(torch.as_tensor(x)[None])[0]


# ------------------------------------------------------------------- success


def test_version():
    result = invoke("--version")
    assert result.exit_code == 0
    assert result.stdout.strip() == f"lstmlens {lstmlens.__version__}"


def test_no_arguments_shows_help():
    result = invoke()
    assert "inspect" in result.output and "trace" in result.output


def test_inspect(files):
    result = invoke("inspect", files["model"])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "classifier" in out and "lstms.0" in out and "head" in out
    assert f"12 → {HIDDEN} units" in out and f"{HIDDEN} → 9" in out
    assert "speech/japanese_vowels" in out and "speaker 9" in out
    assert '"accuracy": 0.5' in out
    assert result.stderr == ""


@pytest.mark.parametrize("name", ["x.npy", "x.csv", "x.json"])
def test_trace_files(files, name):
    result = invoke("trace", files["model"], files[name])
    assert result.exit_code == 0, result.output
    probs = expected_probabilities(files, files["x"])
    k = int(probs.argmax())
    first = result.stdout.splitlines()[0]
    assert first.startswith(f"{files[name]}: {T} steps; predicted {CLASSES[k]} "), first
    assert f"({float(probs[k]):.1%})" in first
    assert "forget gate mean" in result.stdout
    assert result.stderr == ""


def test_trace_json(files):
    result = invoke("trace", files["model"], files["x.npy"], "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert {"series", "prediction"} <= set(doc)
    key = "lstms.0.layers.0.forward.forget_gate"
    assert key in doc["series"]
    gate = np.asarray(doc["series"][key])
    assert gate.shape == (1, T, HIDDEN) and ((gate > 0) & (gate < 1)).all()
    tr = lstmlens.trace(lstmlens.load(files["model"]), torch.as_tensor(files["x"])[None])
    np.testing.assert_allclose(gate[0], tr[key][0].numpy(), atol=1e-6)  # rounded to 6 places
    (pred,) = doc["prediction"]
    probs = expected_probabilities(files, files["x"])
    assert pred["class"] == CLASSES[int(probs.argmax())]
    np.testing.assert_allclose(pred["probabilities"], probs.numpy(), atol=1e-6)
    assert sum(pred["probabilities"]) == pytest.approx(1.0, abs=1e-5)


def test_trace_float64(files):
    result = invoke("trace", files["model"], files["x.csv"], "--json", "--dtype", "float64")
    assert result.exit_code == 0, result.output
    assert "series" in json.loads(result.stdout)


@pytest.mark.slow
def test_trace_test_split(files):
    result = invoke("trace", files["model"], "test:0")
    assert result.exit_code == 0, result.output
    data = load_japanese_vowels(seed=0).test
    steps = len(data.inputs[0])
    first = result.stdout.splitlines()[0]
    assert first.startswith(f"test:0: {steps} steps; predicted speaker ")
    assert first.endswith(f"true {CLASSES[int(data.labels[0])]}")


@pytest.mark.slow
def test_trace_test_split_json(files):
    result = invoke("trace", files["model"], "test:0", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    steps = len(load_japanese_vowels(seed=0).test.inputs[0])
    assert np.asarray(doc["series"]["lstms.0.layers.0.forward.hidden"]).shape == (1, steps,
                                                                                  HIDDEN)
    assert doc["prediction"][0]["class"] in CLASSES


# -------------------------------------------------------------------- errors


def test_error_not_a_model_dir(files):
    assert_one_line_error(invoke("inspect", files["notes"]), "has no config.json")
    assert_one_line_error(invoke("trace", files["notes"], files["x.npy"]), "has no config.json")
    assert_one_line_error(invoke("inspect", files["root"] / "missing"), "is not a directory")
    assert_one_line_error(invoke("inspect", files["x.npy"]), "is not a directory")


def test_error_corrupted_model(files, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(files["model"], bad)
    w = bad / "model.safetensors"
    w.write_bytes(w.read_bytes()[:100])
    assert_one_line_error(invoke("inspect", bad), "model.safetensors is truncated or corrupted")


@pytest.mark.slow
def test_error_index_out_of_range(files):
    assert_one_line_error(invoke("trace", files["model"], "test:999"),
                          "test split has 370 sequences; 'test:999' is out of range")


def test_error_split_without_task(files, tmp_path):
    model = lstmlens.load(files["model"])
    lstmlens.save(model, tmp_path / "m")  # no meta: no data set to read from
    assert_one_line_error(invoke("trace", tmp_path / "m", "test:0"),
                          "records no data set", ".npy, .csv or .json")


def test_error_missing_input_file(files):
    assert_one_line_error(invoke("trace", files["model"], files["root"] / "none.npy"),
                          "is neither a file nor train:N / validation:N / test:N")


def test_error_wrong_feature_count(files):
    assert_one_line_error(invoke("trace", files["model"], files["seven.npy"]),
                          "[batch, time, 12]", "(1, 6, 7)")


def test_error_nan_input(files):
    assert_one_line_error(invoke("trace", files["model"], files["nan.npy"]),
                          "1 NaN/inf value(s), the first at index (0, 2, 3)")


def test_error_unknown_extension(files):
    assert_one_line_error(invoke("trace", files["model"], files["x.txt"]),
                          "unknown file type '.txt'", ".npy, .csv or .json")


def test_error_bad_file_contents(files):
    assert_one_line_error(invoke("trace", files["model"], files["broken.json"]),
                          "cannot read", "broken.json")
    assert_one_line_error(invoke("trace", files["model"], files["vector.npy"]),
                          "holds shape (12,); give [time, features]")


def test_error_bad_dtype(files):
    assert_one_line_error(invoke("trace", files["model"], files["x.npy"], "--dtype", "half"),
                          "dtype must be float32 or float64")


def test_error_unexpected_exception_is_one_line(files, monkeypatch):
    def boom(path):
        raise RuntimeError("something\nbroke")

    monkeypatch.setattr(md, "load", boom)
    line = assert_one_line_error(invoke("inspect", files["model"]), "RuntimeError")
    assert "something broke" in line


# ---------------------------------------------------------------- subprocess


def run_cli(*args: str | Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "200", "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "lstmlens.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=120, env=env)


def test_subprocess_trace_and_error(files):
    """Two real processes (each imports torch): a trace that works and one that fails."""
    proc = run_cli("trace", files["model"], files["x.json"], "--json")
    assert proc.returncode == 0, proc.stderr
    assert {"series", "prediction"} <= set(json.loads(proc.stdout))
    proc = run_cli("trace", files["model"], files["seven.npy"])
    assert proc.returncode == 1
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert "[batch, time, 12]" in lines[0] and "Traceback" not in proc.stderr
    assert proc.stdout == ""


# ---------------------------------------------------------------------- demo


@pytest.mark.slow
def test_demo_end_to_end(tmp_path):
    out = tmp_path / "demo"
    result = invoke("demo", "--task", "speech", "--epochs", "2", "--out", out)
    assert result.exit_code == 0, result.output
    assert "test accuracy" in result.stdout
    assert "Traceback" not in result.output
    model = lstmlens.load(out)
    assert model.meta["task"] == "speech/japanese_vowels" and len(model.meta["classes"]) == 9
    metrics = json.loads((out / "metrics.json").read_text())
    assert 0.0 <= metrics["test"]["accuracy"] <= 1.0
    assert 0.0 <= metrics["baselines"]["majority"]["accuracy"] <= 1.0
    assert metrics == model.metrics
    assert [p.name for p in tmp_path.iterdir()] == ["demo"]  # no temp dirs left behind
    again = invoke("inspect", out)
    assert again.exit_code == 0 and "lstms.1" in again.stdout


@pytest.mark.slow
def test_sentiment_demo_quick_and_reuse(tmp_path):
    out = tmp_path / "demo"
    result = invoke("demo", "--quick", "--out", out)
    assert result.exit_code == 0, result.output
    assert "test accuracy" in result.stdout and "predicted" in result.stdout
    assert "cd:" in result.stdout and "lrp:" in result.stdout
    again = invoke("demo", "--quick", "--out", out)
    assert again.exit_code == 0 and "reusing the model" in again.stdout
    bad = invoke("demo", "--task", "nope")
    assert bad.exit_code == 1 and "sentiment or speech" in bad.output
