"""Corpus stores: exact contents against per-document traces, resume after kill -9 and after
a full disk, a real Dask cluster on loopback, refusals, and the queries against slow
references."""

import errno
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import lstmlens
from lstmlens.cli import app
from lstmlens.modeldir import save
from lstmlens.models import ClassifierConfig, LSTMClassifier
from lstmlens.models.language_model import CharLanguageModel, LanguageModelConfig
from lstmlens.store import StoreError, open_store
from lstmlens.store_index import index_corpus
from lstmlens.tokenizers import Tokenizer

pytest.importorskip("zarr")
runner = CliRunner()
WORDS = ["the", "cat", "sat", "on", "a", "mat", "(", ")", "big", "dog"]


def _lines(n: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, rng.integers(1, 9))) for _ in range(n)]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("store")
    lines = _lines(300, 0)
    (root / "corpus.txt").write_text("\n".join(lines) + "\n")
    torch.manual_seed(0)
    ctok = Tokenizer("char").fit(lines)
    lm = CharLanguageModel(LanguageModelConfig(vocab_size=len(ctok), embedding_dim=6,
                                               hidden_sizes=[8, 5]))
    save(lm, root / "lm", tokenizer=ctok)
    wtok = Tokenizer("word").fit(lines)
    clf = LSTMClassifier(ClassifierConfig(num_classes=3, vocab_size=len(wtok), embedding_dim=4,
                                          hidden_sizes=[6], bidirectional=True))
    save(clf, root / "clf", tokenizer=wtok)
    ref = index_corpus(root / "lm", root / "corpus.txt", root / "ref.zarr", chunk_tokens=256,
                       batch=16)
    return {"root": root, "ref": ref, "lines": lines}


def _assert_same(a, b) -> None:
    """Byte-equal arrays, every one of them."""
    for k in a.keys() + a.arrays() + ["tokens", "doc_starts"]:
        x, y = np.asarray(a[k][:]), np.asarray(b[k][:])
        assert x.dtype == y.dtype and x.shape == y.shape, k
        assert x.tobytes() == y.tobytes(), k
    for k in a.keys():
        ua, ub = a.by_unit(k), b.by_unit(k)
        assert (ua is None) == (ub is None)
        if ua is not None:
            assert np.asarray(ua[:]).tobytes() == np.asarray(ub[:]).tobytes(), k


def test_contents_equal_per_document_traces(world):
    root, st = world["root"], world["ref"]
    model = lstmlens.load(root / "lm")
    assert st.complete and st.n_docs == 300 and st.settings["dtype"] == "float16"
    assert st.meta["model_sha256"] and st.versions["zarr"]
    ids_all = np.asarray(st["tokens"][:])
    for d in (0, 7, 123, 299):  # some of them cross a chunk border (chunks of 256)
        doc = st.document(d)
        assert doc.text == world["lines"][d]
        ids = torch.as_tensor(doc.ids, dtype=torch.long)[None]
        assert np.array_equal(ids_all[doc.start:doc.end], doc.ids)
        tr = lstmlens.trace(model, ids)
        for key in st.keys():
            want = tr[key][0].numpy()
            got = np.asarray(st[key][doc.start:doc.end], np.float32)
            np.testing.assert_allclose(got, want, atol=2e-3, rtol=2e-3, err_msg=key)
            np.testing.assert_array_equal(np.asarray(st.by_unit(key)[:, doc.start:doc.end]).T,
                                          np.asarray(st[key][doc.start:doc.end])) \
                if st.by_unit(key) is not None else None
        with torch.no_grad():
            p = torch.softmax(model(ids)[0], -1)  # (T, V)
        np.testing.assert_array_equal(np.asarray(st["predictions/next_token"][doc.start:doc.end]),
                                      p.argmax(-1).numpy())
        np.testing.assert_allclose(
            np.asarray(st["predictions/next_token_probability"][doc.start:doc.end]),
            p.max(-1).values.numpy(), atol=1e-5)


def test_classifier_predictions_and_attributions(world, tmp_path):
    root = world["root"]
    st = index_corpus(root / "clf", root / "corpus.txt", tmp_path / "c.zarr", dtype="float32",
                      methods=["lrp", "cd"], chunk_tokens=64, batch=8)
    model = lstmlens.load(root / "clf")
    assert st.arrays() == ["predictions/class", "predictions/probabilities",
                           "attributions/cd", "attributions/lrp"]
    for d in (3, 60, 250):
        doc = st.document(d)
        ids = torch.as_tensor(doc.ids, dtype=torch.long)[None]
        sl = slice(doc.start, doc.end)
        with torch.no_grad():
            p = torch.softmax(model(ids), -1)[0]
        np.testing.assert_allclose(np.asarray(st["predictions/probabilities"][sl]),
                                   np.tile(p.numpy(), (len(doc.ids), 1)), atol=1e-5)
        for m in ("lrp", "cd"):
            want = lstmlens.explain(model, ids, method=m).scores[0].numpy()
            np.testing.assert_allclose(np.asarray(st[f"attributions/{m}"][sl]), want,
                                       atol=1e-4, err_msg=m)
        tr = lstmlens.trace(model, ids)
        key = "lstms.0.layers.0.backward.cell"  # bidirectional: whole documents
        np.testing.assert_allclose(np.asarray(st[key][sl]), tr[key][0].numpy(), atol=1e-5)


def test_resume_after_kill_9_equals_uninterrupted(world, tmp_path):
    root, out = world["root"], tmp_path / "k.zarr"
    args = [sys.executable, "-c", "from lstmlens.cli import app; app()", "index",
            str(root / "lm"), "--data", str(root / "corpus.txt"), "--out", str(out),
            "--chunk", "256", "--batch", "16", "--quiet"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    progress = out / ".progress"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if progress.is_dir() and sum(n.startswith("chunk-") for n in os.listdir(progress)) >= 2:
            break
        time.sleep(0.005)
    assert proc.poll() is None, "the run finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    part = open_store(out)
    assert not part.complete and part.chunks_done.any()
    ref = world["ref"]
    for c in np.flatnonzero(part.chunks_done):  # finished chunks already hold the final data
        a, b = c * 256, min(part.n_tokens, (c + 1) * 256)
        key = ref.keys()[0]
        assert np.asarray(part[key][a:b]).tobytes() == np.asarray(ref[key][a:b]).tobytes()
    r = runner.invoke(app, ["index", str(root / "lm"), "--data", str(root / "corpus.txt"),
                            "--out", str(out), "--chunk", "256", "--batch", "16", "--quiet",
                            "--threads", "1"])  # the killed run: default threads; same bytes
    assert r.exit_code == 0, r.output
    done = open_store(out)
    assert done.complete
    _assert_same(done, ref)


@pytest.mark.parametrize(("compression", "threads"), [("none", 2), ("lz4", 1)])
def test_disk_full_mid_run_then_resume(world, tmp_path, monkeypatch, compression, threads):
    """ENOSPC from the raw chunk writes (uncompressed) or from Zarr's store (compressed);
    the resumed store equals the reference byte for byte, whatever the codec or threads."""
    import zarr.storage

    from lstmlens import store_chunk
    root, out = world["root"], tmp_path / "full.zarr"
    real_set, real_pwrite = zarr.storage.LocalStore.set, store_chunk._pwrite
    calls = {"n": 0}

    def full() -> None:
        calls["n"] += 1
        if calls["n"] > 150:  # after a few chunks (~30 writes each), mid-chunk
            raise OSError(errno.ENOSPC, "No space left on device")

    async def failing_set(self, key, value):
        if "series/" in key:
            full()
        return await real_set(self, key, value)

    def failing_pwrite(fd, data, offset):
        full()
        return real_pwrite(fd, data, offset)

    monkeypatch.setattr(zarr.storage.LocalStore, "set", failing_set)
    monkeypatch.setattr(store_chunk, "_pwrite", failing_pwrite)
    kw = {"chunk_tokens": 256, "batch": 16, "compression": compression, "threads": threads}
    with pytest.raises(StoreError, match="No space left on device.*chunks are complete"):
        index_corpus(root / "lm", root / "corpus.txt", out, **kw)
    part = open_store(out)  # what was written stays readable
    assert 0 < part.chunks_done.sum() < part.n_chunks and part.by_unit(part.keys()[5]) is None
    key = part.keys()[3]
    c = int(np.flatnonzero(part.chunks_done)[0])
    assert np.asarray(part[key][c * 256:(c + 1) * 256]).tobytes() == \
        np.asarray(world["ref"][key][c * 256:(c + 1) * 256]).tobytes()
    monkeypatch.setattr(zarr.storage.LocalStore, "set", real_set)
    monkeypatch.setattr(store_chunk, "_pwrite", real_pwrite)
    _assert_same(index_corpus(root / "lm", root / "corpus.txt", out, **kw), world["ref"])


def test_dask_cluster_on_loopback_gives_the_same_store(world, tmp_path):
    distributed = pytest.importorskip("distributed")
    root = world["root"]
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None) as cluster:
        assert cluster.scheduler_address.startswith("tcp://127.0.0.1:")
        st = index_corpus(root / "lm", root / "corpus.txt", tmp_path / "d.zarr",
                          chunk_tokens=256, batch=16, scheduler=cluster.scheduler_address)
        with distributed.Client(cluster) as client:  # both worker processes took chunks
            loaded = client.run(lambda: len(__import__("lstmlens.store_chunk").store_chunk._MODELS))
            assert list(loaded.values()) == [1, 1]
    _assert_same(st, world["ref"])


def test_refusals_and_bad_input(world, tmp_path):
    root, ref = world["root"], world["ref"].path
    base = ["index", str(root / "lm"), "--data", str(root / "corpus.txt"), "--chunk", "256",
            "--batch", "16"]
    # another model's, or other settings', store is refused, and left as it was
    before = (ref / "zarr.json").read_bytes()
    for extra, what in ((["--dtype", "float32"], "settings"), (["--batch", "8"], "settings"),
                        (["--compression", "lz4"], "settings")):
        r = runner.invoke(app, [*base[:-2], *extra, "--out", str(ref)])
        assert r.exit_code == 1 and "another model or with other settings" in r.stderr
        assert what in r.stderr and "Traceback" not in r.output
    r = runner.invoke(app, ["index", str(root / "clf"), "--data", str(root / "corpus.txt"),
                            "--out", str(ref), "--chunk", "256", "--batch", "16"])
    assert r.exit_code == 1 and "model_sha256" in r.stderr
    assert (ref / "zarr.json").read_bytes() == before
    # the same model and settings on a finished store: nothing to redo
    r = runner.invoke(app, [*base, "--out", str(ref), "--quiet"])
    assert r.exit_code == 0 and (ref / "zarr.json").read_bytes() == before
    # a path that exists but is not a store
    other = tmp_path / "notes"
    other.mkdir()
    (other / "a.txt").write_text("mine")
    for p in (other, other / "a.txt"):
        r = runner.invoke(app, [*base, "--out", str(p)])
        assert r.exit_code == 1 and "not an lstmlens corpus store" in r.stderr
    assert (other / "a.txt").read_text() == "mine"
    with pytest.raises(StoreError, match="not an lstmlens corpus store"):
        open_store(other)
    # an empty document: one line naming it, and no half-made store left behind
    bad = tmp_path / "bad.txt"
    bad.write_text("the cat\n\nsat on\n")
    r = runner.invoke(app, ["index", str(root / "lm"), "--data", str(bad), "--out",
                            str(tmp_path / "b.zarr")])
    assert r.exit_code == 1 and "line 2" in r.stderr and "empty" in r.stderr
    assert not (tmp_path / "b.zarr").exists()
    jl = tmp_path / "bad.jsonl"
    jl.write_text('{"text": "the cat"}\n{"text": "  "}\n')
    with pytest.raises(lstmlens.InputError, match="line 2: the document is empty"):
        index_corpus(root / "lm", jl, tmp_path / "j.zarr")
    with pytest.raises(lstmlens.InputError, match="tcp://"):
        index_corpus(root / "lm", root / "corpus.txt", tmp_path / "x.zarr", scheduler="host:1")
    assert not (tmp_path / "x.zarr").exists()
    with pytest.raises(lstmlens.InputError, match="compression must be one of"):
        index_corpus(root / "lm", root / "corpus.txt", tmp_path / "z.zarr", compression="gz")
    with pytest.raises(lstmlens.InputError, match="unknown method"):
        index_corpus(root / "clf", root / "corpus.txt", tmp_path / "m.zarr", methods=["nope"])
