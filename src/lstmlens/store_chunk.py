"""One chunk of a corpus store: compute every state of its tokens, then write them.

A chunk is ``chunk_tokens`` consecutive tokens. :func:`compute_chunk` runs every document
that overlaps it (whole, so a document cut by a chunk border gets exactly the states it would
get alone) packed end to end into lanes (:mod:`lstmlens.store_lanes`), and copies only the
chunk's own tokens, in the store's dtype, into reusable chunk buffers. Models the lanes do
not serve (projections), and the attributions, run padded batches sorted by length
through the engine unmasked (:func:`lstmlens.engine.trace_lstm_unmasked`).
:func:`write_chunk` writes the buffers, then the chunk's completion marker.

Uncompressed arrays (the series by default, and always the unit-major index ``by_unit/``)
are written as raw chunk files at the paths Zarr reads them from (a Zarr v3 chunk with only
the ``bytes`` codec is the array's little-endian bytes): no encoding pipeline, no copies, and
each store chunk's stretch of a unit-major row is a byte range of that row's chunk file,
written in place with ``pwrite`` — so the index is built while the chunks are written, not by
reading the store back. Every chunk runs on one torch thread, so its bytes do not depend on
where it ran (this process or a Dask worker).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .engine import trace_lstm_unmasked
from .store import (
    GATE_SERIES,
    INDEXED_SERIES,
    StoreError,
    _zarr,
    chunk_marker,
    read_meta,
    write_json_atomic,
)
from .store_data import file_sha256
from .store_lanes import lanes_apply, trace_lanes
from .weights import DIRECTIONS
from .workspace import Workspace

UNIT_BLOCK = 262144  # steps per chunk of the unit-major index (one unit's row: few reads)
BATCH_SLOTS = 8192  # at most this many padded steps per forward pass (bounds memory)
SAT_LOW, SAT_HIGH = 0.1, 0.9
HEAD_SLICE = 1 << 22  # next-token scores computed at once (16 MB in float32)
HEAD_ROWS = 4096  # and at most this many states at once
_TORCH_DTYPES = {"float16": torch.float16, "float32": torch.float32}


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


# --------------------------------------------------------------------------- raw chunk files
def _pwrite(fd: int, data: memoryview, offset: int) -> None:
    """Write all of ``data`` at ``offset`` (looping over short writes; errors propagate)."""
    while len(data):
        n = os.pwrite(fd, data, offset)
        data, offset = data[n:], offset + n


def is_raw(array: Any) -> bool:
    """Whether a Zarr array's chunks are its plain bytes in this machine's byte order (no
    compression), so that a chunk buffer's memory can be written as it is."""
    import sys

    from zarr.codecs import BytesCodec
    codecs = array.metadata.codecs
    return (len(codecs) == 1 and isinstance(codecs[0], BytesCodec)
            and (codecs[0].endian is None or codecs[0].endian.value == sys.byteorder))


class _RawArray:
    """Writes whole chunks, or byte ranges of chunks, of an uncompressed Zarr array."""

    def __init__(self, root: Path, array: Any):
        self.dir = root / array.path
        self.meta = array.metadata
        self.chunk_bytes = int(np.prod(array.chunks)) * array.dtype.itemsize

    def _open(self, coords: tuple[int, ...]) -> int:
        path = os.path.join(self.dir, self.meta.encode_chunk_key(coords))
        try:
            return os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
        except FileNotFoundError:  # the chunk's folder does not exist yet
            os.makedirs(os.path.dirname(path), exist_ok=True)
            return os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)

    def write(self, coords: tuple[int, ...], data: np.ndarray, offset: int = 0) -> None:
        """``data`` (C-contiguous) at byte ``offset`` of the chunk at ``coords``; the file is
        kept at the full chunk size (Zarr v3 stores edge chunks whole)."""
        fd = self._open(coords)
        try:
            _pwrite(fd, memoryview(data).cast("B"), offset)
            if os.fstat(fd).st_size < self.chunk_bytes:
                os.ftruncate(fd, self.chunk_bytes)  # zero-fills; never cuts written bytes
        finally:
            os.close(fd)


# --------------------------------------------------------------------------- the model
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


class Target:
    """A store opened for writing chunks: metadata, document starts, array handles and raw
    writers, read once per process and reused for every chunk."""

    def __init__(self, path: Path):
        self.path = path
        self.meta = read_meta(path)
        self.group = _zarr().open_group(str(path), mode="r+")
        self.starts = np.asarray(self.group["doc_starts"][:], np.int64)
        self._arrays: dict[str, Any] = {}
        self._raw: dict[str, _RawArray | None] = {}
        self._spare: list[dict[str, torch.Tensor]] = []
        self._local = threading.local()  # per thread: a Workspace, freed with the thread

    def __getitem__(self, name: str):
        if name not in self._arrays:
            self._arrays[name] = self.group[name]
        return self._arrays[name]

    def raw(self, name: str) -> _RawArray | None:
        """A raw writer for an uncompressed array, or ``None``."""
        if name not in self._raw:
            arr = self[name]
            self._raw[name] = _RawArray(self.path, arr) if is_raw(arr) else None
        return self._raw[name]

    def workspace(self) -> Workspace:
        """Scratch buffers for one chunk's pass (one per thread; reused)."""
        work = getattr(self._local, "work", None)
        if work is None:
            work = self._local.work = Workspace()
        return work

    def take_buffers(self) -> dict[str, torch.Tensor]:
        """Chunk buffers to fill (reused once given back: no allocation per chunk)."""
        return self._spare.pop() if self._spare else {}

    def give_back(self, bufs: dict[str, torch.Tensor]) -> None:
        self._spare.append(bufs)

    @classmethod
    def of(cls, store_path: str) -> Target:
        meta = read_meta(Path(store_path))
        t = _OPEN.get(store_path)
        if t is None or t.meta != meta:  # another run into the same path: reopen
            _OPEN.clear()
            t = _OPEN[store_path] = cls(Path(store_path))
        return t


# --------------------------------------------------------------------------- compute
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


def _buffer(bufs: dict[str, torch.Tensor], key: str, K: int, shape: tuple[int, ...],
            dtype: torch.dtype) -> torch.Tensor:
    """The ``[K, *shape]`` chunk buffer ``key``, allocated the first time (then reused)."""
    buf = bufs.get(key)
    if buf is None or tuple(buf.shape[1:]) != tuple(shape) or buf.dtype != dtype:
        buf = bufs[key] = torch.empty((K, *shape), dtype=dtype)
    return buf


def _put(bufs: dict[str, torch.Tensor], key: str, K: int, rows: torch.Tensor,
         v: torch.Tensor, dtype: torch.dtype) -> None:
    """``bufs[key][rows] = v`` (n, ...) in ``dtype``."""
    _buffer(bufs, key, K, tuple(v.shape[1:]), dtype).index_copy_(0, rows, v.to(dtype))


def compute_chunk(target: Target, c: int, model: Any,
                  bufs: dict[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
    """Every array's values for the tokens of chunk ``c``: ``{name: [chunk_tokens, ...]}``,
    rows past the store's end zeroed. ``bufs`` (from an earlier chunk) are filled in place."""
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
    toks = torch.from_numpy(np.asarray(target["tokens"][t0:t1], np.int64))
    doc_s = starts[d0:d1 + 1] - t0  # local starts
    lens = np.diff(doc_s)
    order = np.argsort(lens, kind="stable")  # similar lengths batch together
    dtype = _TORCH_DTYPES[s["dtype"]]
    bufs = {} if bufs is None else bufs
    n_threads = torch.get_num_threads()
    if n_threads != 1:  # one torch thread: the bytes must not depend on the machine
        torch.set_num_threads(1)
    lanes = lanes_apply(model, parts, lens)
    try:
        with torch.no_grad():
            if lanes:  # states and predictions of all documents in one pass over lanes
                _compute_lanes(target, parts, names, per_step, dtype, bufs, K, a, b, t0, toks,
                               doc_s)
            if not lanes or s["methods"]:
                for docs in _batches(lens, order, s["batch"]):
                    docs = docs[::-1]  # longest first: the engine skips finished documents
                    _compute_batch(model, parts, names, per_step, s["methods"], dtype, bufs,
                                   K, a, b, t0, toks, doc_s[docs], lens[docs], not lanes)
    finally:
        if n_threads != 1:
            torch.set_num_threads(n_threads)
    if b - a < K:  # the last chunk: deterministic zeros past the end (written whole)
        for buf in bufs.values():
            buf[b - a:] = 0
    return bufs


def _compute_lanes(target: Target, parts, names, per_step: bool, dtype, bufs, K: int, a: int,
                   b: int, t0: int, toks: torch.Tensor, doc_s: np.ndarray) -> None:
    """Every series and prediction of the chunk's tokens, from one pass over its documents
    packed into lanes (:mod:`lstmlens.store_lanes`)."""
    work = target.workspace()
    n = b - a

    def dest(key: str, units: int) -> torch.Tensor:  # (n, units): the chunk's rows
        return _buffer(bufs, f"series/{key}", K, (units,), dtype)[:n]

    top, lanes = trace_lanes(parts, names, toks, doc_s, a - t0, n, work, dest, dtype)
    rows = torch.arange(n)
    f32 = torch.float32
    if per_step:  # next-token predictions after every step
        _next_tokens(parts, bufs, K, rows, top, torch.from_numpy(lanes.pos[a - t0:b - t0]))
        return
    # one prediction per document (its outputs padded with zeros, as the model pools them),
    # repeated at its tokens
    lens = torch.from_numpy(np.diff(doc_s))
    steps = torch.arange(int(lens.max()))
    first = torch.from_numpy(lanes.pos[doc_s[:-1]])  # (docs,) flat position of step 0
    idx = torch.where(steps[None, :] < lens[:, None],
                      first[:, None] + steps[None, :] * lanes.B, top.shape[0])  # (docs, T)
    padded = torch.cat([top, top.new_zeros(1, top.shape[1])]).index_select(
        0, idx.reshape(-1)).view(*idx.shape, -1)  # (docs, T, D·H)
    pooled = parts.pool(padded, lens, parts.lstms[-1].bidirectional)[0]  # (docs, D·H)
    prob = torch.softmax(parts.head(pooled).float(), -1)  # (docs, C)
    doc = torch.from_numpy(np.searchsorted(doc_s, np.arange(a - t0, b - t0), "right") - 1)
    _put(bufs, "predictions/class", K, rows, prob.argmax(-1)[doc], torch.int32)
    _put(bufs, "predictions/probabilities", K, rows, prob[doc], f32)


def _next_tokens(parts, bufs, K: int, rows: torch.Tensor, top: torch.Tensor,
                 at: torch.Tensor) -> None:
    """The most likely next token and its probability after each of the states
    ``top[at]`` (n, H), into chunk rows ``rows``; the (n, vocabulary) scores a slice of
    rows (at most ``HEAD_ROWS``) at a time, so a large vocabulary costs no more memory than
    ``HEAD_SLICE`` scores."""
    n = len(at)
    step = max(1, min(HEAD_ROWS, HEAD_SLICE // parts.head.out_features))
    best, arg = torch.empty(n), torch.empty(n, dtype=torch.long)
    for i in range(0, n, step):
        top_h = top.index_select(0, at[i:i + step])  # (rows, H)
        logp = torch.log_softmax(parts.head(top_h).float(), -1)  # (rows, V)
        torch.max(logp, -1, out=(best[i:i + step], arg[i:i + step]))
    _put(bufs, "predictions/next_token", K, rows, arg, torch.int32)
    _put(bufs, "predictions/next_token_probability", K, rows, best.exp(), torch.float32)


def _compute_batch(model, parts, names, per_step: bool, methods, dtype, bufs, K: int,
                   a: int, b: int, t0: int, toks: torch.Tensor, doc_s: np.ndarray,
                   lens: np.ndarray, states: bool = True) -> None:
    """One padded batch of whole documents; its tokens inside ``[a, b)`` go to ``bufs``
    (only the attributions when not ``states``)."""
    B, T = len(lens), int(lens.max())
    L = torch.as_tensor(lens)
    ids = torch.zeros(B, T, dtype=torch.long)  # (B, T), padded with 0
    for r in range(B):
        ids[r, : lens[r]] = toks[doc_s[r]:doc_s[r] + lens[r]]
    # each document's steps [lo, hi) inside [a, b), and the chunk row of step lo
    gstart = doc_s + t0  # (B,)
    lo = np.clip(a - gstart, 0, None)
    hi = np.minimum(lens, b - gstart)
    # (row in batch, step) of every token inside [a, b), and its row in the chunk
    bi = np.repeat(np.arange(B), np.maximum(hi - lo, 0))
    ti = np.concatenate([np.arange(x0, x1) for x0, x1 in zip(lo, hi, strict=True)])
    flat = torch.from_numpy(bi * T + ti)  # (n,) into (B·T)
    rows = torch.from_numpy(gstart[bi] + ti - a)  # (n,) into the chunk
    f32 = torch.float32
    if states:
        spans = [(r, int(lo[r]), int(hi[r]), int(gstart[r] + lo[r] - a))
                 for r in np.flatnonzero(hi > lo).tolist()]
        _batch_states(parts, names, per_step, dtype, bufs, K, L, spans, ids, bi, flat, rows)
    for m in methods:
        from .explaining import explain
        with torch.enable_grad():
            scores = explain(model, ids, method=m, lengths=L).scores.float()  # (B, T)
        _put(bufs, f"attributions/{m}", K, rows, scores.reshape(-1)[flat], f32)


def _batch_states(parts, names, per_step: bool, dtype, bufs, K: int, L: torch.Tensor,
                  spans: list, ids: torch.Tensor, bi: np.ndarray, flat: torch.Tensor,
                  rows: torch.Tensor) -> None:
    """Series and predictions of one padded batch ``ids`` (B, T) into ``bufs``: ``spans``
    (row, first step, end step, chunk row) of its steps inside the chunk, and per token
    inside the chunk its batch row ``bi``, flat (B·T) position and chunk row."""
    B, T = ids.shape
    f32 = torch.float32
    x = parts.embed(ids)  # (B, T, E)
    for lstm in parts.lstms:
        series = trace_lstm_unmasked(lstm, x, L)  # each (B, T, units)
        prefix = names[id(lstm)]
        for key, v in series.items():
            buf = _buffer(bufs, f"series/{prefix}.{key}", K, (v.shape[2],), dtype)
            for r, s0, s1, row in spans:  # contiguous steps → contiguous rows
                buf[row:row + s1 - s0].copy_(v[r, s0:s1])
        top = lstm.num_layers - 1
        x = torch.cat([series[f"layers.{top}.{d}.hidden"]
                       for d in DIRECTIONS[: 2 if lstm.bidirectional else 1]], -1)  # (B, T, ·)
        del series
    if per_step:  # next-token predictions after every step, only at the chunk's tokens
        _next_tokens(parts, bufs, K, rows, x.reshape(B * T, -1), flat)
    else:  # one prediction per document, repeated at its tokens
        valid = (torch.arange(T)[None, :] < L[:, None])[..., None]  # (B, T, 1)
        x = x.masked_fill(~valid, 0.0)  # padded steps as the model's own forward sees them
        pooled = parts.pool(x, L, parts.lstms[-1].bidirectional)[0]  # (B, H·D)
        prob = torch.softmax(parts.head(pooled).float(), -1)  # (B, C)
        bi_t = torch.from_numpy(bi)
        _put(bufs, "predictions/class", K, rows, prob.argmax(-1)[bi_t], torch.int32)
        _put(bufs, "predictions/probabilities", K, rows, prob[bi_t], f32)


# --------------------------------------------------------------------------- write
def _count_columns(mask: np.ndarray) -> np.ndarray:
    """``[U]`` int64: true entries per column of a bool ``[n, U]`` (in byte-sized blocks of
    255 rows, which numpy sums several times faster than into int64 directly)."""
    m8 = mask.view(np.uint8)
    full = len(m8) - len(m8) % 255
    out = m8[full:].sum(0, dtype=np.int64)
    if full:
        out += m8[:full].reshape(-1, 255, m8.shape[1]).sum(1, dtype=np.uint8).sum(0, np.int64)
    return out


def saturation_counts(values: np.ndarray) -> np.ndarray:
    """``[2, U]`` int32: steps below ``SAT_LOW`` and above ``SAT_HIGH`` of ``values``
    ``[n, U]``, compared in float32. Float16 values are compared by their bit patterns as
    int16 (ordered like the values for every float16 but NaN), against the smallest float16
    ≥ ``SAT_LOW`` and the largest ≤ ``SAT_HIGH``: no float32 copy of the chunk."""
    if values.dtype != np.float16:
        v32 = values.astype(np.float32, copy=False)
        return np.stack([_count_columns(v32 < np.float32(SAT_LOW)),
                         _count_columns(v32 > np.float32(SAT_HIGH))]).astype(np.int32)
    lo, hi = np.float16(SAT_LOW), np.float16(SAT_HIGH)
    if np.float32(lo) < np.float32(SAT_LOW):
        lo = np.nextafter(lo, np.float16(np.inf))
    if np.float32(hi) > np.float32(SAT_HIGH):
        hi = np.nextafter(hi, np.float16(-np.inf))
    bits = values.view(np.int16)  # non-negative floats order like their bits; negatives < 0
    return np.stack([_count_columns(bits < lo.view(np.int16)),
                     _count_columns(bits > hi.view(np.int16))]).astype(np.int32)


def _write_unit_major(target: Target, key: str, a: int, buf: torch.Tensor) -> None:
    """Chunk rows ``buf`` (K, U) starting at step ``a`` into ``by_unit/{key}`` [U, N]: for
    each unit and each index block the chunk touches, one byte range of one chunk file."""
    raw = target.raw(f"by_unit/{key}")
    if raw is None:
        raise StoreError(f"{target.path}: by_unit/{key} is compressed; this store was not "
                         "written by this version of lstmlens")
    N = target.meta["layout"]["n_tokens"]
    ub = target[f"by_unit/{key}"].chunks[1]
    n = min(buf.shape[0], N - a)
    cols = buf[:n].t().contiguous().numpy()  # (U, n)
    item = cols.itemsize
    lo = a
    while lo < a + n:
        j = lo // ub
        hi = min(a + n, (j + 1) * ub)
        for u in range(cols.shape[0]):
            raw.write((u, j), cols[u, lo - a:hi - a], (lo - j * ub) * item)
        lo = hi


def write_chunk(target: Target, c: int, bufs: dict[str, torch.Tensor]) -> int:
    """Write chunk ``c``'s arrays, its part of the unit-major index and its saturation
    counts, then its completion marker."""
    K, N = target.meta["layout"]["chunk_tokens"], target.meta["layout"]["n_tokens"]
    a = c * K
    b = min(N, a + K)
    for name, buf in bufs.items():
        raw = target.raw(name)
        if raw is not None:
            raw.write((c,) + (0,) * (buf.dim() - 1), buf.numpy())
        else:
            target[name][a:b] = buf[: b - a].numpy()
        if not name.startswith("series/"):
            continue
        key = name[7:]
        kind = key.rsplit(".", 1)[1]
        if kind in INDEXED_SERIES:
            _write_unit_major(target, key, a, buf)
        if kind in GATE_SERIES:  # counted on the stored values, compared in float32
            counts = saturation_counts(buf[: b - a].numpy())  # (2, U)
            sat = target.raw(f"saturation/{key}")
            if sat is not None:
                sat.write((c, 0, 0), counts)
            else:
                target[f"saturation/{key}"][c] = counts
    # A killed process leaves what it wrote in the page cache: the rename alone makes the
    # marker all or nothing, after the chunk's bytes. No fsync: syncing the marker would not
    # make the chunk's data durable (that would take every data file), only slower.
    write_json_atomic(chunk_marker(target.path, c), {"chunk": c, "tokens": [a, b]},
                      sync=False)
    return c


def release_free_memory() -> None:
    """Give the allocator's free memory back to the system (glibc ``malloc_trim``; a no-op
    elsewhere). Chunks allocate and free tens of MB of temporaries of varying sizes; without
    this the free pieces pile up and the resident size creeps up with the corpus."""
    global _TRIM
    if _TRIM is None:
        try:
            import ctypes
            _TRIM = ctypes.CDLL("libc.so.6").malloc_trim
        except (OSError, AttributeError):
            _TRIM = False
    if _TRIM:
        _TRIM(0)


_TRIM: Any = None


def index_chunk(store_path: str, c: int, model: Any = None) -> int:
    """Compute chunk ``c`` of the store at ``store_path``, write it, then its marker (the
    task a Dask worker runs; its chunk buffers are reused by the worker's next task)."""
    target = Target.of(store_path)
    if model is None:
        model = _load_model(target.meta["model_dir"], target.meta["model_sha256"])
    bufs = compute_chunk(target, c, model, target.take_buffers())
    try:
        return write_chunk(target, c, bufs)
    finally:
        target.give_back(bufs)
        release_free_memory()
