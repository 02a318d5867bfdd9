"""``index_corpus``: trace (and explain) every token of a corpus into a chunked store.

Two passes. The first streams the documents, tokenizes them and appends ``tokens`` and
``doc_starts``. The second computes the store chunk by chunk (:mod:`lstmlens.store_chunk`):
a chunk's task runs every document that overlaps it, writes only its own token range (and
its stretch of the unit-major index), then its completion marker. Chunks are independent,
so they run in any order, in this process or on Dask workers, and a run killed at any
moment resumes by redoing the chunks without a marker.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import __version__
from .errors import InputError, ModelError
from .store import (
    FORMAT,
    FORMAT_VERSION,
    GATE_SERIES,
    INDEXED_SERIES,
    PROGRESS,
    StoreError,
    _zarr,
    done_chunks,
    read_meta,
    write_json_atomic,
)
from .store_chunk import (  # noqa: F401 (SAT_*: the thresholds of the recorded counts)
    SAT_HIGH,
    SAT_LOW,
    UNIT_BLOCK,
    Target,
    index_chunk,
    model_series,
)
from .store_data import data_format, file_sha256, iter_documents

DTYPES = ("float16", "float32")
COMPRESSIONS = ("none", "lz4", "zstd")
DEFAULT_CHUNK = 16384  # tokens per chunk: more documents share one pass (docs/benchmarks.md)


def _versions() -> dict[str, str]:
    import zarr
    v = {"lstmlens": __version__, "torch": torch.__version__, "zarr": zarr.__version__,
         "numpy": np.__version__}
    try:  # the installed version, without importing dask (a tenth of a second)
        from importlib.metadata import PackageNotFoundError, version
        v["dask"] = version("dask")
    except PackageNotFoundError:
        pass
    return v


def _compressors(dtype: str, compression: str = "lz4"):
    """Codecs of an array: none (raw chunk files, the fastest to write), Blosc-LZ4 with
    bit-shuffling, or Zstandard level 1."""
    from zarr.codecs import BloscCodec, ZstdCodec
    if compression == "none":
        return None
    if compression == "zstd":
        return [ZstdCodec(level=1)]
    return [BloscCodec(cname="lz4", clevel=1, shuffle="bitshuffle",
                       typesize=np.dtype(dtype).itemsize)]


def mark_unit_index(store_path: str) -> None:
    """Mark the blocks of the unit-major index ``by_unit/`` complete. Each chunk writes its
    own stretch of every unit's row as it is written, so once every chunk is done, every
    block is: one marker per block of ``UNIT_BLOCK`` steps, which readers check."""
    target = Target.of(store_path)
    N = target.meta["layout"]["n_tokens"]
    ub = min(UNIT_BLOCK, N)
    for j in range(-(-N // ub)):
        marker = target.path / PROGRESS / f"by_unit-{j:06d}.json"
        if not marker.exists():
            lo, hi = j * ub, min(N, (j + 1) * ub)
            write_json_atomic(marker, {"by_unit_block": j, "tokens": [lo, hi]})


def default_threads() -> int:
    """Chunks computed at once in-process: one per core, at most two."""
    try:
        return max(1, min(2, len(os.sched_getaffinity(0))))
    except AttributeError:  # not on Linux
        return max(1, min(2, os.cpu_count() or 1))


def _run_in_process(store_path: str, todo: list[int], model: Any,
                    progress: Callable[[int, int], None] | None, threads: int) -> None:
    """Chunks on ``threads`` Python threads, each computing a chunk on one torch thread and
    writing it (torch and the writes release the GIL, so the threads use as many cores; a
    chunk's bytes do not depend on the thread). At most ``threads`` chunks are in memory:
    each thread reuses its chunk buffers."""
    from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

    def task(c: int) -> int:
        return index_chunk(store_path, c, model)

    n_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    pending: set = set()
    done = 0
    try:
        with ThreadPoolExecutor(threads, thread_name_prefix="lstmlens-store") as pool:
            try:
                for c in todo:
                    if len(pending) >= threads:
                        finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                        for f in finished:
                            f.result()  # re-raises a write error (a full disk) here
                            done += 1
                            if progress is not None:
                                progress(done, len(todo))
                    pending.add(pool.submit(task, c))
                for f in list(pending):
                    f.result()
                    pending.discard(f)
                    done += 1
                    if progress is not None:
                        progress(done, len(todo))
            except BaseException:
                for f in pending:
                    f.cancel()
                raise
    finally:
        torch.set_num_threads(n_threads)


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
        if nbuf >= 64 * K or len(pending) >= 64 * K:  # bounded by the chunk, not the corpus
            flush()
            nbuf = 0
    if pos == 0:
        raise InputError(f"{data} holds no documents")
    flush()
    return written["tokens"], written["starts"] - 1


def _create_arrays(g, model, s: dict, N: int, K: int) -> dict[str, Any]:
    n_chunks = -(-N // K)
    comp = _compressors(s["dtype"], s["compression"])
    ub = min(UNIT_BLOCK, N)
    series = model_series(model)
    for key, U in series.items():
        g.create_array(f"series/{key}", shape=(N, U), chunks=(K, U), dtype=s["dtype"],
                       compressors=comp, fill_value=0, overwrite=True)
        name = key.rsplit(".", 1)[1]
        if name in INDEXED_SERIES:
            g.create_array(f"by_unit/{key}", shape=(U, N), chunks=(1, ub),
                           dtype=s["dtype"], compressors=None, fill_value=0, overwrite=True)
        if name in GATE_SERIES:
            g.create_array(f"saturation/{key}", shape=(n_chunks, 2, U), chunks=(1, 2, U),
                           dtype="int32", compressors=None, fill_value=0, overwrite=True)
    f32 = _compressors("float32", s["compression"])
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
    compression: str = "none",
    methods: Sequence[str] = (),
    batch: int = 128,
    chunk_tokens: int = DEFAULT_CHUNK,
    text_column: str = "text",
    format: str | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    threads: int | None = None,
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
    compression
        ``"none"`` (default: the fastest; chunks are raw bytes), ``"lz4"`` (Blosc-LZ4,
        bit-shuffled) or ``"zstd"`` (level 1), for the series, predictions and attributions.
        Compression saves ~20 % of the disk on untrained models' gates (more on saturated
        ones) and costs time; the unit-major index is never compressed.
    methods
        Explanation methods whose per-token scores are stored (``cd``, ``lrp``...).
    batch
        Documents per forward pass. ``chunk_tokens``: tokens per chunk (unit of work).
    workers, scheduler
        ``workers=N`` runs the chunks on a local Dask cluster (127.0.0.1 only);
        ``scheduler="tcp://host:port"`` on an existing one. The store is the same either way.
    threads
        In-process only: chunks computed at once, each on one torch thread (default: one
        per core, at most 2). The store's bytes do not depend on it.

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
    if compression not in COMPRESSIONS:
        raise InputError(f"compression must be one of {COMPRESSIONS}, got {compression!r}")
    for name, v, least in (("batch", batch, 1), ("chunk_tokens", chunk_tokens, 16),
                           ("threads", 1 if threads is None else threads, 1)):
        if not isinstance(v, int) or isinstance(v, bool) or v < least:
            raise InputError(f"{name} must be a whole number ≥ {least}, got {v!r}")
    from .store_dask import check_executor
    check_executor(workers, scheduler)
    model_dir, data, out = Path(model_dir), Path(data).expanduser(), Path(out).expanduser()
    fmt = data_format(data, format)
    model = load(model_dir)
    tok = getattr(model, "tokenizer", None)
    if tok is None or not hasattr(tok, "encode"):
        raise ModelError(f"{model_dir} has no tokenizer; `index` reads text, so it needs a "
                         "model of text (a classifier of words or a language model)")
    settings = {"dtype": dtype, "compression": compression,
                "methods": _check_methods(model, methods), "batch": batch,
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
                       compressors=_compressors("int32", "lz4"), fill_value=0)
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
            _run_in_process(str(out), todo, model, progress, threads or default_threads())
        else:
            from .store_dask import run_distributed
            run_distributed(str(out), todo, workers=workers, scheduler=scheduler,
                            progress=progress)
        mark_unit_index(str(out))
    except OSError as e:
        done = int(done_chunks(out, n_chunks).sum())
        raise StoreError(f"writing {out} failed: {e.strerror or e}; {done} of {n_chunks} "
                         "chunks are complete and readable (open_store); free space and run "
                         "the same command again to finish") from e
    return open_store(out)
