"""``index_corpus``: trace (and explain) every token of a corpus into a chunked store.

Two passes. The first streams the documents, tokenizes them and appends ``tokens`` and
``doc_starts``. The second computes the store chunk by chunk: a chunk is ``chunk_tokens``
consecutive tokens; its task runs every document that overlaps it (whole, so a document cut
by a chunk border gets exactly the states it would get alone), writes only its own token
range, then its completion marker. Chunks are independent, so they run in any order, in
this process or on Dask workers, and a run killed at any moment resumes by redoing the
chunks without a marker. Each chunk is computed on one torch thread, so the bytes do not
depend on where it ran.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import __version__
from .engine import trace_lstm
from .errors import InputError, ModelError
from .store import (
    FORMAT,
    FORMAT_VERSION,
    GATE_SERIES,
    INDEXED_SERIES,
    PROGRESS,
    StoreError,
    _zarr,
    chunk_marker,
    done_chunks,
    read_meta,
    write_json_atomic,
)
from .store_data import data_format, file_sha256, iter_documents
from .weights import DIRECTIONS

DTYPES = ("float16", "float32")
DEFAULT_CHUNK = 8192
UNIT_BLOCK = 262144  # steps per chunk of the unit-major index (one unit's row: few reads)
BATCH_SLOTS = 4096  # at most this many padded steps per forward pass (bounds memory)
SAT_LOW, SAT_HIGH = 0.1, 0.9


def _versions() -> dict[str, str]:
    import zarr
    v = {"lstmlens": __version__, "torch": torch.__version__, "zarr": zarr.__version__,
         "numpy": np.__version__}
    try:
        import dask
        v["dask"] = dask.__version__
    except ImportError:
        pass
    return v


def _compressors(dtype: str):
    from zarr.codecs import BloscCodec
    return [BloscCodec(cname="lz4", clevel=1, shuffle="bitshuffle",
                       typesize=np.dtype(dtype).itemsize)]


def _return_freed_memory() -> None:
    """Serve allocations of ≥ 1 MiB by mmap, so that freed chunk buffers go back to the
    system (glibc otherwise raises its mmap threshold and keeps them in per-thread arenas,
    which grows the peak with every chunk written by another thread). No-op elsewhere."""
    try:
        import ctypes
        ctypes.CDLL("libc.so.6").mallopt(-3, 1 << 20)  # M_MMAP_THRESHOLD
    except (OSError, AttributeError):
        pass


@contextmanager
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


# --------------------------------------------------------------------------- the model
def _lstm_names(model: torch.nn.Module) -> dict[int, str]:
    return {id(m): n for n, m in model.named_modules() if isinstance(m, torch.nn.LSTM)}


def model_series(model: torch.nn.Module) -> dict[str, int]:
    """Every series key the store will hold, with its number of units."""
    from .parts import parts_of
    parts = parts_of(model)
    names = _lstm_names(model)
    out: dict[str, int] = {}
    for lstm in parts.lstms:
        for k in range(lstm.num_layers):
            for d in DIRECTIONS[: 2 if lstm.bidirectional else 1]:
                for s in ("input_gate", "forget_gate", "cell_candidate", "output_gate",
                          "cell", "hidden"):
                    units = (lstm.proj_size or lstm.hidden_size) if s == "hidden" \
                        else lstm.hidden_size
                    out[f"{names[id(lstm)]}.layers.{k}.{d}.{s}"] = units
    return out


def _run_batch(model, parts, names, ids: torch.Tensor, L: torch.Tensor, per_step: bool):
    """Series (B, T, units) of every LSTM and the predictions of one padded batch."""
    out: dict[str, torch.Tensor] = {}
    with torch.no_grad():
        x = parts.embed(ids)  # (B, T, E)
        for lstm in parts.lstms:
            series = trace_lstm(lstm, x, L)
            prefix = names[id(lstm)]
            for k, v in series.items():
                out[f"{prefix}.{k}"] = v
            top = lstm.num_layers - 1
            x = torch.cat([series[f"layers.{top}.{d}.hidden"]
                           for d in DIRECTIONS[: 2 if lstm.bidirectional else 1]], -1)
        if per_step:  # next-token predictions after every step
            logp = torch.log_softmax(parts.head(x).float(), -1)  # (B, T, V)
            best, arg = logp.max(-1)
            preds = {"next_token": arg.int(), "next_token_probability": best.exp()}
        else:  # one prediction per document, repeated at its tokens
            logits = parts.head(parts.pool(x, L, parts.lstms[-1].bidirectional)[0]).float()
            prob = torch.softmax(logits, -1)  # (B, C)
            T = ids.shape[1]
            preds = {"class": prob.argmax(-1).int()[:, None].expand(-1, T),
                     "probabilities": prob[:, None, :].expand(-1, T, -1)}
    return out, preds


# --------------------------------------------------------------------------- one chunk
_MODELS: dict[tuple[str, str], Any] = {}
_OPEN: dict[str, Any] = {}


def _load_model(model_dir: str, sha: str):
    """The model of a store, loaded once per process (Dask workers reuse it)."""
    from .modeldir import load
    key = (model_dir, sha)
    if key not in _MODELS:
        if file_sha256(Path(model_dir) / "model.safetensors") != sha:
            raise StoreError(f"{model_dir} changed since the store was started (weights hash "
                             "differs); index into a new store")
        _MODELS.clear()
        _MODELS[key] = load(model_dir)
    return _MODELS[key]


class _Target:
    """A store opened for writing chunks: metadata, document starts and array handles,
    read once per process and reused for every chunk."""

    def __init__(self, path: Path):
        self.path = path
        self.meta = read_meta(path)
        self.group = _zarr().open_group(str(path), mode="r+")
        self.starts = np.asarray(self.group["doc_starts"][:], np.int64)
        self._arrays: dict[str, Any] = {}

    def __getitem__(self, name: str):
        if name not in self._arrays:
            self._arrays[name] = self.group[name]
        return self._arrays[name]

    @classmethod
    def of(cls, store_path: str) -> _Target:
        meta = read_meta(Path(store_path))
        t = _OPEN.get(store_path)
        if t is None or t.meta != meta:  # another run into the same path: reopen
            _OPEN.clear()
            t = _OPEN[store_path] = cls(Path(store_path))
        return t


def _batches(lens: np.ndarray, order: np.ndarray, batch: int) -> list[np.ndarray]:
    """Consecutive documents of ``order`` (sorted by length), at most ``batch`` of them and
    at most ``BATCH_SLOTS`` padded steps per batch (a longer document goes alone)."""
    out, i = [], 0
    while i < len(order):
        j = i + 1
        while j < len(order) and j - i < batch and (j - i + 1) * lens[order[j]] <= BATCH_SLOTS:
            j += 1
        out.append(order[i:j])
        i = j
    return out


def compute_chunk(target: _Target, c: int, model: Any) -> dict[str, torch.Tensor]:
    """Every array's values for the tokens of chunk ``c`` (``[chunk, ...]`` each)."""
    from .parts import parts_of
    s, lay = target.meta["settings"], target.meta["layout"]
    parts = parts_of(model)
    names = _lstm_names(model)
    per_step = getattr(model, "kind", "") == "language_model"
    K, N = lay["chunk_tokens"], lay["n_tokens"]
    a, b = c * K, min(N, (c + 1) * K)
    starts = target.starts
    d0 = int(np.searchsorted(starts, a, side="right")) - 1
    d1 = int(np.searchsorted(starts, b, side="left"))
    t0, t1 = int(starts[d0]), int(starts[d1])
    toks = np.asarray(target["tokens"][t0:t1], np.int64)
    doc_s = starts[d0:d1 + 1] - t0  # local starts
    lens = np.diff(doc_s)
    order = np.argsort(lens, kind="stable")  # similar lengths batch together
    torch_dtype = torch.float16 if s["dtype"] == "float16" else torch.float32
    bufs: dict[str, torch.Tensor] = {}
    with _one_thread():
        for docs in _batches(lens, order, s["batch"]):
            L = torch.as_tensor(lens[docs])
            T = int(L.max())
            ids = torch.zeros(len(docs), T, dtype=torch.long)
            for r, d in enumerate(docs):
                ids[r, : lens[d]] = torch.from_numpy(toks[doc_s[d]:doc_s[d + 1]])
            series, preds = _run_batch(model, parts, names, ids, L, per_step)
            for m in s["methods"]:
                from .explaining import explain
                with torch.enable_grad():
                    preds[f"attr:{m}"] = explain(model, ids, method=m, lengths=L).scores.float()
            # (row in batch, step) of every token inside [a, b), and its row in the chunk
            gstart = doc_s[docs] + t0  # (B,)
            lo = np.clip(a - gstart, 0, None)
            hi = np.minimum(lens[docs], b - gstart)
            bi = np.repeat(np.arange(len(docs)), np.maximum(hi - lo, 0))
            ti = np.concatenate([np.arange(x, y) for x, y in zip(lo, hi, strict=True)])
            flat = torch.from_numpy(bi * T + ti)  # (n,) into (B·T)
            rows = torch.from_numpy(gstart[bi] + ti - a)  # (n,) into the chunk
            for key, v in [*series.items(), *preds.items()]:
                v = v.reshape(len(docs) * T, *v.shape[2:]).index_select(0, flat)  # (n, ...)
                if key in series:
                    key = "series/" + key
                    v = v.to(torch_dtype)
                elif key.startswith("attr:"):
                    key = "attributions/" + key[5:]
                else:
                    key = "predictions/" + key
                if key not in bufs:
                    bufs[key] = torch.zeros((b - a, *v.shape[1:]), dtype=v.dtype)
                bufs[key].index_copy_(0, rows, v)
    return bufs


def write_chunk(target: _Target, c: int, bufs: dict[str, torch.Tensor]) -> int:
    """Write chunk ``c``'s arrays (and its index and counts), then its completion marker."""
    K = target.meta["layout"]["chunk_tokens"]
    a = c * K
    for name, buf in bufs.items():
        b = a + buf.shape[0]
        target[name][a:b] = buf.numpy()
        if not name.startswith("series/"):
            continue
        key = name[7:]
        kind = key.rsplit(".", 1)[1]
        if kind in GATE_SERIES:  # counted on the stored values, compared in float32
            v = buf.float()
            counts = torch.stack([torch.count_nonzero(v < SAT_LOW, 0),
                                  torch.count_nonzero(v > SAT_HIGH, 0)])
            target[f"saturation/{key}"][c] = counts.numpy().astype(np.int32)
    b = a + next(iter(bufs.values())).shape[0]
    write_json_atomic(chunk_marker(target.path, c), {"chunk": c, "tokens": [a, b]})
    return c


def index_chunk(store_path: str, c: int, model: Any = None) -> int:
    """Compute chunk ``c`` of the store at ``store_path``, write it, then its marker (the
    task a Dask worker runs)."""
    target = _Target.of(store_path)
    if model is None:
        _return_freed_memory()
        model = _load_model(target.meta["model_dir"], target.meta["model_sha256"])
    return write_chunk(target, c, compute_chunk(target, c, model))


def build_unit_index(store_path: str) -> None:
    """Fill the unit-major index ``by_unit/{key}`` ``[units, N]`` from the finished token-major
    series, block by block of ``UNIT_BLOCK`` steps (one ``[units, block]`` buffer in memory),
    each block's marker written after all of its arrays. Runs after every chunk is done."""
    target = _Target.of(store_path)
    N = target.meta["layout"]["n_tokens"]
    K = target.meta["layout"]["chunk_tokens"]
    keys = [k for k in target.meta["layout"]["series"] if k.rsplit(".", 1)[1] in INDEXED_SERIES]
    for j in range(-(-N // UNIT_BLOCK)):
        marker = target.path / PROGRESS / f"by_unit-{j:06d}.json"
        if marker.exists():
            continue
        lo, hi = j * UNIT_BLOCK, min(N, (j + 1) * UNIT_BLOCK)
        for key in keys:
            src = target[f"series/{key}"]
            block = np.empty((src.shape[1], hi - lo), src.dtype)  # (U, block)
            for a in range(lo, hi, K):
                block[:, a - lo:min(hi, a + K) - lo] = np.asarray(src[a:min(hi, a + K)]).T
            target[f"by_unit/{key}"][:, lo:hi] = block
        write_json_atomic(marker, {"by_unit_block": j, "tokens": [lo, hi]})


def _run_in_process(store_path: str, todo: list[int], model: Any,
                    progress: Callable[[int, int], None] | None) -> None:
    """Chunks in order, each written by a background thread while the next is computed
    (at most one write in flight: two chunks in memory)."""
    from concurrent.futures import ThreadPoolExecutor
    target = _Target.of(store_path)
    pending = None
    with ThreadPoolExecutor(1, thread_name_prefix="lstmlens-store") as pool:
        for i, c in enumerate(todo):
            bufs = compute_chunk(target, c, model)
            if pending is not None:
                pending.result()  # re-raises a write error (a full disk) here
                if progress is not None:
                    progress(i, len(todo))
            pending = pool.submit(write_chunk, target, c, bufs)
        if pending is not None:
            pending.result()
            if progress is not None:
                progress(len(todo), len(todo))


# --------------------------------------------------------------------------- first pass
def _check_store_path(out: Path) -> dict[str, Any] | None:
    if not out.exists():
        return None
    meta = read_meta(out)
    if meta is not None:
        return meta
    if out.is_dir() and not any(out.iterdir()):
        return None
    raise StoreError(f"{out} exists and is not an lstmlens corpus store; refusing to write "
                     "into it (choose another --out or remove it)")


def _tokenize(g, data: Path, tok, fmt: str, text_column: str, K: int) -> tuple[int, int]:
    """Stream documents into ``tokens`` and ``doc_starts``; returns (tokens, documents)."""
    tokens, starts = g["tokens"], g["doc_starts"]
    buf: list[np.ndarray] = []
    pending = [0]  # document starts not yet written (absolute positions)
    written = {"tokens": 0, "starts": 0}

    def flush() -> None:
        if buf:
            flat = np.concatenate(buf)
            n = written["tokens"]
            tokens.resize((n + len(flat),))
            tokens[n:] = flat
            written["tokens"] = n + len(flat)
            buf.clear()
        if pending:
            n = written["starts"]
            starts.resize((n + len(pending),))
            starts[n:] = np.asarray(pending, np.int64)
            written["starts"] = n + len(pending)
            pending.clear()

    pos = nbuf = 0
    for line, text in iter_documents(data, format=fmt, text_column=text_column):
        try:
            ids = np.asarray(tok.encode(text), np.int32)
        except InputError as e:
            raise InputError(f"{data}: line {line}: {e}") from None
        if len(ids) > K:
            raise InputError(f"{data}: line {line}: the document has {len(ids):,} tokens, more "
                             f"than a chunk ({K:,}); pass a larger --chunk")
        buf.append(ids)
        nbuf += len(ids)
        pos += len(ids)
        pending.append(pos)
        if nbuf >= 4 * K or len(pending) >= 4 * K:
            flush()
            nbuf = 0
    if pos == 0:
        raise InputError(f"{data} holds no documents")
    flush()
    return written["tokens"], written["starts"] - 1


def _create_arrays(g, model, s: dict, N: int, K: int) -> dict[str, Any]:
    n_chunks = -(-N // K)
    comp = _compressors(s["dtype"])
    series = model_series(model)
    for key, U in series.items():
        g.create_array(f"series/{key}", shape=(N, U), chunks=(K, U), dtype=s["dtype"],
                       compressors=comp, fill_value=0, overwrite=True)
        name = key.rsplit(".", 1)[1]
        if name in INDEXED_SERIES:
            g.create_array(f"by_unit/{key}", shape=(U, N), chunks=(1, UNIT_BLOCK),
                           dtype=s["dtype"], compressors=None, fill_value=0, overwrite=True)
        if name in GATE_SERIES:
            g.create_array(f"saturation/{key}", shape=(n_chunks, 2, U), chunks=(1, 2, U),
                           dtype="int32", fill_value=0, overwrite=True)
    f32 = _compressors("float32")
    if getattr(model, "kind", "") == "language_model":
        g.create_array("predictions/next_token", shape=(N,), chunks=(K,), dtype="int32",
                       compressors=f32, fill_value=0, overwrite=True)
        g.create_array("predictions/next_token_probability", shape=(N,), chunks=(K,),
                       dtype="float32", compressors=f32, fill_value=0, overwrite=True)
    else:
        C = model.head.out_features
        g.create_array("predictions/class", shape=(N,), chunks=(K,), dtype="int32",
                       compressors=f32, fill_value=0, overwrite=True)
        g.create_array("predictions/probabilities", shape=(N, C), chunks=(K, C),
                       dtype="float32", compressors=f32, fill_value=0, overwrite=True)
    for m in s["methods"]:
        g.create_array(f"attributions/{m}", shape=(N,), chunks=(K,), dtype="float32",
                       compressors=f32, fill_value=0, overwrite=True)
    return {"n_tokens": N, "chunk_tokens": K, "n_chunks": n_chunks, "series": list(series),
            "units": series}


def _check_methods(model, methods: Sequence[str]) -> list[str]:
    from .methods import method_names
    known = method_names()
    bad = [m for m in methods if m not in known]
    if bad:
        raise InputError(f"unknown method(s) {bad}; accepted: {', '.join(known)}")
    return list(methods)


def index_corpus(
    model_dir: str | os.PathLike,
    data: str | os.PathLike,
    out: str | os.PathLike,
    *,
    dtype: str = "float16",
    methods: Sequence[str] = (),
    batch: int = 64,
    chunk_tokens: int = DEFAULT_CHUNK,
    text_column: str = "text",
    format: str | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    progress: Callable[[int, int], None] | None = None,
):
    """Trace every token of ``data`` with the model in ``model_dir`` into the store ``out``.

    Parameters
    ----------
    model_dir
        A model directory with a tokenizer (``lstmlens.save``).
    data
        A corpus file: ``.txt`` (one document per line), ``.csv``/``.tsv``, ``.jsonl``.
    out
        The store directory: created, or resumed if it holds an unfinished run of the same
        model and settings (another model's or other settings' store is refused).
    dtype
        ``"float16"`` (default: half the disk, ~3 significant digits) or ``"float32"``.
    methods
        Explanation methods whose per-token scores are stored (``cd``, ``lrp``...).
    batch
        Documents per forward pass. ``chunk_tokens``: tokens per chunk (unit of work).
    workers, scheduler
        ``workers=N`` runs the chunks on a local Dask cluster (127.0.0.1 only);
        ``scheduler="tcp://host:port"`` on an existing one. The store is the same either way.

    Returns
    -------
    CorpusStore
        The finished store, opened for reading.

    Examples
    --------
    >>> store = index_corpus("runs/textgen", "corpus.txt", "corpus.zarr")  # doctest: +SKIP
    """
    from .modeldir import load
    from .store import open_store
    zarr = _zarr()
    if dtype not in DTYPES:
        raise InputError(f"dtype must be one of {DTYPES}, got {dtype!r}")
    for name, v, least in (("batch", batch, 1), ("chunk_tokens", chunk_tokens, 16)):
        if not isinstance(v, int) or isinstance(v, bool) or v < least:
            raise InputError(f"{name} must be a whole number ≥ {least}, got {v!r}")
    from .store_dask import check_executor
    check_executor(workers, scheduler)
    model_dir, data, out = Path(model_dir), Path(data).expanduser(), Path(out).expanduser()
    _return_freed_memory()
    fmt = data_format(data, format)
    model = load(model_dir)
    tok = getattr(model, "tokenizer", None)
    if tok is None or not hasattr(tok, "encode"):
        raise ModelError(f"{model_dir} has no tokenizer; `index` reads text, so it needs a "
                         "model of text (a classifier of words or a language model)")
    settings = {"dtype": dtype, "methods": _check_methods(model, methods), "batch": batch,
                "chunk_tokens": chunk_tokens, "data_sha256": file_sha256(data),
                "data_format": fmt, "text_column": text_column}
    sha = file_sha256(model_dir / "model.safetensors")
    versions = _versions()
    identity = {"model_sha256": sha, "settings": settings,
                "versions": {k: versions[k] for k in ("lstmlens", "torch")}}
    old = _check_store_path(out)
    fresh = old is None
    if old is not None:
        was = {"model_sha256": old.get("model_sha256"), "settings": old.get("settings"),
               "versions": {k: (old.get("versions") or {}).get(k) for k in ("lstmlens",
                                                                           "torch")}}
        if was != identity:
            diff = [k for k in ("model_sha256", "settings", "versions") if was[k] != identity[k]]
            detail = {k: (was[k], identity[k]) for k in diff}
            raise StoreError(f"{out} was built by another model or with other settings "
                             f"({', '.join(diff)} differ: {detail}); refusing to mix them — "
                             "choose another --out or remove it")
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, **identity,
            "versions": versions, "model_dir": str(model_dir.resolve()),
            "data": str(data.resolve()), "model_kind": getattr(model, "kind", None),
            "vocab": list(tok.vocab)}
    if old is None or "layout" not in old:  # first pass: tokens and documents
        g = zarr.open_group(str(out), mode="w")
        g.attrs["lstmlens"] = meta
        (out / PROGRESS).mkdir(exist_ok=True)
        g.create_array("tokens", shape=(0,), chunks=(chunk_tokens,), dtype="int32",
                       compressors=_compressors("int32"), fill_value=0)
        g.create_array("doc_starts", shape=(0,), chunks=(chunk_tokens,), dtype="int64",
                       fill_value=0)
        try:
            N, D = _tokenize(g, data, tok, fmt, text_column, chunk_tokens)
        except InputError:
            if fresh:
                shutil.rmtree(out, ignore_errors=True)
            raise
        layout = _create_arrays(g, model, settings, N, chunk_tokens)
        layout["n_docs"] = D
        meta["layout"] = layout
        g.attrs["lstmlens"] = meta  # written last: the first pass is complete
    else:
        meta = old
    n_chunks = meta["layout"]["n_chunks"]
    todo = [c for c in np.flatnonzero(~done_chunks(out, n_chunks)).tolist()]
    try:
        if workers is None and scheduler is None:
            _run_in_process(str(out), todo, model, progress)
        else:
            from .store_dask import run_distributed
            run_distributed(str(out), todo, workers=workers, scheduler=scheduler,
                            progress=progress)
        build_unit_index(str(out))
    except OSError as e:
        done = int(done_chunks(out, n_chunks).sum())
        raise StoreError(f"writing {out} failed: {e.strerror or e}; {done} of {n_chunks} "
                         "chunks are complete and readable (open_store); free space and run "
                         "the same command again to finish") from e
    return open_store(out)
