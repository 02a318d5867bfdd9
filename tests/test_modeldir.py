"""Model directories: round trips, every way ``load`` refuses a broken one, atomic ``save``
that never loses what was there, and no pickle anywhere."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

import lstmlens
from lstmlens import LSTMClassifier, ModelFormatError, load, save
from lstmlens import modeldir as md
from lstmlens.modeldir import is_model_dir
from lstmlens.tokenizers import Tokenizer


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny models: one thread is as fast as two, and does not slow down a hundredfold when
    another process is using the cores (OpenMP threads waiting on each other)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)

META = {"task": "unit", "classes": ["a", "b", "c"], "seed": 0}
METRICS = {"test": {"accuracy": 0.75, "loss": 0.5}}


def features_model(seed: int = 0, **kw) -> LSTMClassifier:
    torch.manual_seed(seed)
    cfg = dict(num_classes=3, input_size=4, hidden_sizes=[6, 5])
    cfg.update(kw)
    return LSTMClassifier(cfg).eval()


X = torch.randn(3, 7, 4, generator=torch.Generator().manual_seed(1))
LENGTHS = torch.tensor([7, 2, 5])


def outputs(model) -> torch.Tensor:
    with torch.no_grad():
        return model(X, LENGTHS)


@pytest.fixture
def saved(tmp_path: Path) -> Path:
    return save(features_model(), tmp_path / "model", metrics=METRICS, meta=META)


def copy_dir(src: Path, dst: Path) -> Path:
    dst.mkdir()
    for f in src.iterdir():
        (dst / f.name).write_bytes(f.read_bytes())
    return dst


def edit_config(path: Path, fn) -> None:
    cfg = json.loads((path / "config.json").read_text())
    fn(cfg)
    (path / "config.json").write_text(json.dumps(cfg))


def snapshot(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*"))
            if p.is_file()}


# ------------------------------------------------------------------ round trip


def test_round_trip_identical_outputs(saved: Path):
    model = features_model()
    loaded = load(saved)
    assert isinstance(loaded, LSTMClassifier) and not loaded.training
    assert loaded.config == model.config
    torch.testing.assert_close(outputs(loaded), outputs(model), atol=0, rtol=0)
    assert loaded.meta == META and loaded.metrics == METRICS
    assert loaded.tokenizer is None and Path(loaded.path) == saved
    assert sorted(os.listdir(saved)) == ["config.json", "metrics.json", "model.safetensors"]
    assert is_model_dir(saved)


def test_round_trip_tokens_attention_standardize(tmp_path: Path):
    torch.manual_seed(0)
    tok = LSTMClassifier(dict(num_classes=2, vocab_size=12, embedding_dim=3, hidden_sizes=[4],
                              bidirectional=True, pooling="attention")).eval()
    words = Tokenizer("word").fit(["a b", "b c"])
    save(tok, tmp_path / "tok", tokenizer=words)
    again = load(tmp_path / "tok")
    ids = torch.tensor([[1, 2, 3, 0], [4, 5, 0, 0]])
    with torch.no_grad():
        torch.testing.assert_close(again(ids, [3, 2]), tok(ids, [3, 2]), atol=0, rtol=0)
    assert isinstance(again.tokenizer, Tokenizer) and again.tokenizer.vocab == words.vocab
    assert again.meta == {} and again.metrics == {}

    std = features_model(standardize=True)
    std.fit_standardization([np.random.default_rng(0).normal(3, 2, size=(9, 4))])
    save(std, tmp_path / "std")
    again = load(tmp_path / "std")
    torch.testing.assert_close(again.input_mean, std.input_mean, atol=0, rtol=0)
    torch.testing.assert_close(again.input_std, std.input_std, atol=0, rtol=0)
    torch.testing.assert_close(outputs(again), outputs(std), atol=0, rtol=0)


def test_saved_dir_permissions_follow_umask(saved: Path):
    umask = os.umask(0o022)
    os.umask(umask)
    assert saved.stat().st_mode & 0o777 == 0o777 & ~umask


# ------------------------------------------------------------------ load errors


def test_load_not_a_directory(tmp_path: Path):
    with pytest.raises(ModelFormatError, match=r"nope is not a directory; a model directory "
                                               r"holds config.json, model.safetensors"):
        load(tmp_path / "nope")
    (tmp_path / "file").write_text("x")
    with pytest.raises(ModelFormatError, match=r"file is not a directory"):
        load(tmp_path / "file")


def test_load_missing_config(saved: Path):
    (saved / "config.json").unlink()
    with pytest.raises(ModelFormatError, match=r"has no config.json"):
        load(saved)


def test_load_config_is_a_directory(saved: Path):
    (saved / "config.json").unlink()
    (saved / "config.json").mkdir()
    with pytest.raises(ModelFormatError, match=r"cannot read .*config.json"):
        load(saved)


def test_load_invalid_json(saved: Path):
    (saved / "config.json").write_text('{"format": "lstmlens-model",')
    with pytest.raises(ModelFormatError, match=r"config.json is not valid JSON"):
        load(saved)


def test_load_binary_config(saved: Path):
    (saved / "config.json").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ModelFormatError, match=r"config.json is not valid JSON"):
        load(saved)


@pytest.mark.parametrize("content", [{"format": "keras", "kind": "classifier"}, [1, 2], "x",
                                     {"kind": "classifier"}])
def test_load_config_of_another_format(saved: Path, content):
    (saved / "config.json").write_text(json.dumps(content))
    with pytest.raises(ModelFormatError, match=r"config.json is not an lstmlens model config"):
        load(saved)


def test_load_newer_or_bad_format_version(saved: Path):
    edit_config(saved, lambda c: c.update(format_version=99))
    with pytest.raises(ModelFormatError, match=r"newer lstmlens \(format 99\); upgrade"):
        load(saved)
    edit_config(saved, lambda c: c.update(format_version="1"))
    with pytest.raises(ModelFormatError, match=r"format_version '1'; a whole number"):
        load(saved)


def test_load_unknown_kind(saved: Path):
    edit_config(saved, lambda c: c.update(kind="transformer"))
    with pytest.raises(ModelFormatError, match=r"unknown model kind 'transformer'.*classifier"):
        load(saved)


@pytest.mark.parametrize("change,pattern", [
    (lambda c: c["config"].update(hidden_sizes="six"), r"hidden_sizes must be a list"),
    (lambda c: c["config"].update(num_classes="3"), r"num_classes must be a whole number"),
    (lambda c: c["config"].update(colour="red"), r"unknown classifier setting"),
    (lambda c: c["config"].pop("num_classes"), r"num_classes"),
    (lambda c: c.update(config=[1]), r"must be a JSON object, got list"),
])
def test_load_invalid_model_config(saved: Path, change, pattern):
    edit_config(saved, change)
    with pytest.raises(ModelFormatError, match=r"config of the 'classifier' model .*" + pattern):
        load(saved)


def test_load_missing_weights(saved: Path):
    (saved / "model.safetensors").unlink()
    with pytest.raises(ModelFormatError, match=r"has no model.safetensors"):
        load(saved)


def test_load_truncated_weights(saved: Path):
    w = saved / "model.safetensors"
    data = w.read_bytes()
    w.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFormatError, match=r"model.safetensors is truncated or corrupted"):
        load(saved)


@pytest.mark.parametrize("span", [(8, 24), (0, 8)], ids=["header-json", "header-length"])
def test_load_flipped_header_bytes(saved: Path, span):
    w = saved / "model.safetensors"
    data = bytearray(w.read_bytes())
    for i in range(*span):
        data[i] ^= 0xFF
    w.write_bytes(bytes(data))
    with pytest.raises(ModelFormatError, match=r"model.safetensors is truncated or corrupted"):
        load(saved)


def test_load_empty_weights_file(saved: Path):
    (saved / "model.safetensors").write_bytes(b"")
    with pytest.raises(ModelFormatError, match=r"model.safetensors is truncated or corrupted"):
        load(saved)


def test_load_weights_not_matching_config(saved: Path):
    edit_config(saved, lambda c: c["config"].update(hidden_sizes=[7, 5]))
    with pytest.raises(ModelFormatError) as info:
        load(saved)
    msg = str(info.value)
    assert "model.safetensors does not match config.json" in msg
    assert "lstms.0.weight_ih_l0 (24, 4) (config wants (28, 4))" in msg


def test_load_missing_and_unexpected_tensors(saved: Path):
    w = saved / "model.safetensors"
    state = load_file(str(w))
    state["extra.weight"] = state.pop("head.bias")
    save_file(state, str(w))
    with pytest.raises(ModelFormatError, match=r"missing \['head.bias'\]; unexpected "
                                               r"\['extra.weight'\]"):
        load(saved)


def test_load_integer_weights(saved: Path):
    w = saved / "model.safetensors"
    state = load_file(str(w))
    state["head.weight"] = state["head.weight"].long()
    save_file(state, str(w))
    with pytest.raises(ModelFormatError, match=r"head.weight has dtype torch.int64"):
        load(saved)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_load_nan_weights(saved: Path, bad):
    w = saved / "model.safetensors"
    state = load_file(str(w))
    state["lstms.1.weight_hh_l0"][2, 3] = bad
    save_file(state, str(w))
    with pytest.raises(ModelFormatError, match=r"corrupted: NaN/inf in \['lstms.1.weight_hh_l0'\]"):
        load(saved)


def test_load_bad_metrics_and_meta(saved: Path):
    (saved / "metrics.json").write_text("[1]")
    with pytest.raises(ModelFormatError, match=r"metrics.json must be a JSON object"):
        load(saved)
    (saved / "metrics.json").write_text("{oops")
    with pytest.raises(ModelFormatError, match=r"metrics.json is not valid JSON"):
        load(saved)
    (saved / "metrics.json").write_text("{}")
    edit_config(saved, lambda c: c.update(meta=["a"]))
    with pytest.raises(ModelFormatError, match=r"meta must be a JSON object"):
        load(saved)


def test_metrics_file_is_optional(saved: Path):
    (saved / "metrics.json").unlink()
    assert load(saved).metrics == {}


# ------------------------------------------------------------------ save safety


def test_save_refuses_non_model_directory(tmp_path: Path):
    other = tmp_path / "notes"
    other.mkdir()
    (other / "keep.txt").write_text("precious")
    (other / "sub").mkdir()
    (other / "sub" / "data.bin").write_bytes(b"\x00\x01")
    before = snapshot(other)
    with pytest.raises(ModelFormatError, match=r"notes exists and is not an lstmlens model "
                                               r"directory; refusing to overwrite"):
        save(features_model(), other)
    assert snapshot(other) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes"]  # no temp dirs left


def test_save_refuses_a_file(tmp_path: Path):
    f = tmp_path / "model"
    f.write_text("a file")
    with pytest.raises(ModelFormatError, match=r"refusing to overwrite"):
        save(features_model(), f)
    assert f.read_text() == "a file"


def test_save_into_empty_directory(tmp_path: Path):
    (tmp_path / "m").mkdir()
    save(features_model(), tmp_path / "m")
    assert is_model_dir(tmp_path / "m")


def test_save_refuses_non_lstmlens_module(tmp_path: Path):
    with pytest.raises(ModelFormatError, match=r"LSTM is not an lstmlens model"):
        save(torch.nn.LSTM(3, 4), tmp_path / "m")
    assert not (tmp_path / "m").exists() and list(tmp_path.iterdir()) == []


def test_save_replaces_existing_model(saved: Path):
    new = features_model(seed=1)
    assert not torch.equal(outputs(new), outputs(features_model()))
    save(new, saved, metrics={"test": {"accuracy": 1.0}}, meta={"v": 2})
    loaded = load(saved)
    torch.testing.assert_close(outputs(loaded), outputs(new), atol=0, rtol=0)
    assert loaded.meta == {"v": 2} and loaded.metrics == {"test": {"accuracy": 1.0}}
    assert [p.name for p in saved.parent.iterdir()] == ["model"]  # no .tmp / .old left


def test_save_replaces_model_of_another_shape(saved: Path):
    bigger = features_model(seed=2, hidden_sizes=[9], bidirectional=True)
    save(bigger, saved)
    torch.testing.assert_close(outputs(load(saved)), outputs(bigger), atol=0, rtol=0)


def _assert_previous_intact(saved: Path, before: dict[str, bytes]) -> None:
    assert snapshot(saved) == before
    torch.testing.assert_close(outputs(load(saved)), outputs(features_model()), atol=0, rtol=0)
    assert [p.name for p in saved.parent.iterdir()] == ["model"]


def test_failed_save_leaves_previous_model(saved: Path, monkeypatch):
    before = snapshot(saved)

    def broken(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(md, "save_file", broken)
    with pytest.raises(OSError, match="No space left"):
        save(features_model(seed=1), saved, metrics={"new": {}})
    _assert_previous_intact(saved, before)


def test_failed_swap_restores_previous_model(saved: Path, monkeypatch):
    """The rename of the finished directory into place fails after the old one was moved
    aside: the old one must be put back."""
    before = snapshot(saved)
    real_replace = os.replace

    def replace(src, dst):
        if Path(src).name.startswith(".model.tmp-"):
            raise OSError(5, "Input/output error")
        return real_replace(src, dst)

    monkeypatch.setattr(md.os, "replace", replace)
    with pytest.raises(OSError, match="Input/output error"):
        save(features_model(seed=1), saved)
    monkeypatch.setattr(md.os, "replace", real_replace)
    _assert_previous_intact(saved, before)


def test_interrupted_save_leaves_previous_model(saved: Path, monkeypatch):
    before = snapshot(saved)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(md, "_write_json", interrupted)
    with pytest.raises(KeyboardInterrupt):
        save(features_model(seed=1), saved)
    _assert_previous_intact(saved, before)


# ------------------------------------------------------------------ no pickle


def test_no_file_is_a_pickle(tmp_path: Path):
    torch.manual_seed(0)
    tok = LSTMClassifier(dict(num_classes=2, vocab_size=5, hidden_sizes=[3]))
    path = save(tok, tmp_path / "m", metrics=METRICS, meta=META,
                tokenizer=Tokenizer("char").fit(["ab"]))
    names = sorted(p.name for p in path.iterdir())
    assert names == ["config.json", "metrics.json", "model.safetensors", "tokenizer.json"]
    for p in path.iterdir():
        head = p.read_bytes()[:16]
        assert not head.startswith(b"\x80"), p  # pickle protocol ≥ 2
        assert not head.startswith(b"PK"), p  # torch.save's zip container
        if p.suffix == ".json":
            json.loads(p.read_text(encoding="utf-8"))
    raw = (path / "model.safetensors").read_bytes()
    n = int.from_bytes(raw[:8], "little")  # safetensors: u64 header size, then JSON header
    header = json.loads(raw[8:8 + n])
    assert header["__metadata__"] == {"format": "lstmlens-model", "kind": "classifier"}


def test_load_never_unpickles(saved: Path, monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("load() tried to unpickle")

    monkeypatch.setattr(torch, "load", forbidden)
    monkeypatch.setattr(pickle, "load", forbidden)
    monkeypatch.setattr(pickle, "loads", forbidden)
    monkeypatch.setattr(pickle, "Unpickler", forbidden)
    loaded = load(saved)
    torch.testing.assert_close(outputs(loaded), outputs(features_model()), atol=0, rtol=0)


def test_load_refuses_a_torch_pickle_renamed(saved: Path, monkeypatch):
    """A torch.save file in place of model.safetensors is refused without being unpickled."""
    torch.save(features_model().state_dict(), saved / "model.safetensors")

    def forbidden(*args, **kwargs):
        raise AssertionError("load() tried to unpickle")

    monkeypatch.setattr(torch, "load", forbidden)
    monkeypatch.setattr(pickle, "load", forbidden)
    monkeypatch.setattr(pickle, "loads", forbidden)
    with pytest.raises(ModelFormatError, match=r"truncated or corrupted"):
        load(saved)


def test_public_names():
    assert lstmlens.load is load and lstmlens.save is save


def test_tokenizer_json_is_checked(tmp_path: Path):
    model = LSTMClassifier(dict(num_classes=2, vocab_size=5, embedding_dim=3, hidden_sizes=[4]))
    path = save(model, tmp_path / "m", tokenizer=Tokenizer("word").fit(["a b c"]))
    (path / "tokenizer.json").write_text('{"vocab": ["a"]}')
    with pytest.raises(ModelFormatError, match="not an lstmlens tokenizer"):
        load(path)
    (path / "tokenizer.json").write_text('{"type": "lstmlens-tokenizer", "level": "word"}')
    with pytest.raises(ModelFormatError, match="incomplete or invalid"):
        load(path)
