"""Corpus stores: a chunked Zarr (v3) group of every state of every token of a corpus.

Layout of a store ``STORE/`` (a Zarr group; its ``lstmlens`` attribute holds the metadata):

- ``tokens`` ``[N]`` int32 and ``doc_starts`` ``[D + 1]`` int64 (document d is tokens
  ``doc_starts[d]:doc_starts[d + 1]``);
- ``series/{key}`` ``[N, units]`` (float16 by default; uncompressed by default, or LZ4 /
  Zstandard) for every gate and state of every LSTM, layer and direction, keyed like
  :class:`lstmlens.Trace` (``lstms.0.layers.0.forward.forget_gate``); ``by_unit/{key}``
  ``[units, N]`` the same values unit-major (hidden states, uncompressed, in blocks of
  262,144 steps), the per-unit index that makes span queries fast, written by each chunk
  as it is written and marked complete (``by_unit-NNNNNN.json``) once every chunk is done;
- ``predictions/...`` and ``attributions/{method}`` ``[N]``;
- ``saturation/{key}`` ``[chunks, 2, units]``: per chunk, steps below 0.1 and above 0.9;
- ``.progress/``: one ``chunk-NNNNNN.json`` per finished chunk, each written (atomically
  renamed into place) only after all of that chunk's data is written. The first pass
  (tokens and documents) is complete once ``layout`` appears in the metadata, written last.

A chunk without its marker is never read as complete: :attr:`CorpusStore.chunks_done`
says which token ranges hold data, and a resumed run redoes the others.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InputError, LstmlensError

FORMAT = "lstmlens-store"
FORMAT_VERSION = 1
PROGRESS = ".progress"
GATE_SERIES = ("input_gate", "forget_gate", "output_gate")
INDEXED_SERIES = ("hidden",)  # copied unit-major for fast span queries


class StoreError(LstmlensError):
    """A store cannot be written or read: not a store, another model's, a failed write."""


def _zarr():
    try:
        import zarr
    except ImportError:
        raise StoreError("corpus stores need zarr; install them with "
                         "pip install 'lstmlens[store]'") from None
    return zarr


def write_json_atomic(path: Path, obj: Any, sync: bool = True) -> None:
    """Write JSON to ``path`` through a temporary file renamed into place (all or nothing),
    synced to disk first unless not ``sync``."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(obj, f)
            if sync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def read_meta(path: Path) -> dict[str, Any] | None:
    """The ``lstmlens`` attribute of the store at ``path``; ``None`` if it is no store."""
    try:
        doc = json.loads((path / "zarr.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    meta = (doc.get("attributes") or {}).get("lstmlens") if isinstance(doc, dict) else None
    return meta if isinstance(meta, dict) and meta.get("format") == FORMAT else None


def chunk_marker(path: Path, c: int) -> Path:
    return path / PROGRESS / f"chunk-{c:06d}.json"


def done_chunks(path: Path, n_chunks: int) -> np.ndarray:
    """``[n_chunks]`` bool: chunks whose completion marker exists."""
    done = np.zeros(n_chunks, bool)
    try:
        names = os.listdir(path / PROGRESS)
    except OSError:
        return done
    for name in names:
        if name.startswith("chunk-") and name.endswith(".json"):
            try:
                c = int(name[6:-5])
            except ValueError:
                continue
            if 0 <= c < n_chunks:
                done[c] = True
    return done


@dataclass
class Document:
    """One document of a store: its index, token span and tokens."""

    index: int
    start: int
    end: int
    ids: np.ndarray
    tokens: list[str] | None

    @property
    def text(self) -> str | None:
        if self.tokens is None:
            return None
        sep = "" if all(len(t) == 1 for t in self.tokens) else " "
        return sep.join(self.tokens)


class CorpusStore:
    """A corpus store opened for reading; arrays are read lazily, chunk by chunk.

    ``store["lstms.0.layers.0.forward.cell"]`` is the Zarr array ``[N, units]`` (slicing
    reads only the chunks it touches); :meth:`dask` gives it as a Dask array.
    """

    def __init__(self, path: Path, meta: dict[str, Any]):
        zarr = _zarr()
        self.path = path
        self.meta = meta
        self.group = zarr.open_group(str(path), mode="r")
        layout = meta.get("layout") or {}
        if "n_tokens" not in layout:
            raise StoreError(f"{path} is a store whose tokens were never fully written (the run "
                             "stopped while reading the data); run `lstmlens index` again")
        self.n_tokens: int = int(layout["n_tokens"])
        self.n_docs: int = int(layout["n_docs"])
        self.chunk_tokens: int = int(layout["chunk_tokens"])
        self.n_chunks: int = int(layout["n_chunks"])
        self.series_keys: list[str] = list(layout["series"])
        self.units: dict[str, int] = dict(layout["units"])
        self.settings: dict[str, Any] = meta.get("settings", {})
        self.model_sha256: str = meta.get("model_sha256", "")
        self.versions: dict[str, str] = meta.get("versions", {})
        self._vocab: list[str] | None = meta.get("vocab")
        self._starts: np.ndarray | None = None

    # -- state ----------------------------------------------------------------------
    @property
    def chunks_done(self) -> np.ndarray:
        """``[n_chunks]`` bool: which chunks were fully written."""
        return done_chunks(self.path, self.n_chunks)

    @property
    def complete(self) -> bool:
        return bool(self.chunks_done.all())

    def valid_steps(self) -> np.ndarray:
        """``[N]`` bool: steps inside finished chunks (the only ones with data)."""
        done = self.chunks_done
        return np.repeat(done, self.chunk_tokens)[: self.n_tokens]

    # -- arrays ---------------------------------------------------------------------
    def keys(self) -> list[str]:
        return list(self.series_keys)

    def __getitem__(self, key: str):
        if key in self.series_keys:
            return self.group[f"series/{key}"]
        if key in ("tokens", "doc_starts"):
            return self.group[key]
        for prefix in ("predictions/", "attributions/"):
            if key.startswith(prefix) and key in self.arrays():
                return self.group[key]
        import difflib
        close = difflib.get_close_matches(key, self.series_keys + self.arrays(), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise KeyError(f"no array {key!r} in this store{hint} (see store.keys(), "
                       "store.arrays())")

    def arrays(self) -> list[str]:
        """Names of the prediction and attribution arrays."""
        names = []
        for grp in ("predictions", "attributions"):
            if grp in self.group:
                names += [f"{grp}/{k}" for k in sorted(self.group[grp].array_keys())]
        return names

    def by_unit(self, key: str):
        """The unit-major copy ``[units, N]`` of an indexed series, or ``None``."""
        name = f"by_unit/{key}"
        if key not in self.series_keys or name not in self.group:
            return None
        blocks = -(-self.n_tokens // self.group[name].chunks[1])
        if not all((self.path / PROGRESS / f"by_unit-{j:06d}.json").exists()
                   for j in range(blocks)):
            return None  # not (fully) built yet: queries read the token-major series
        return self.group[name]

    def dask(self, key: str):
        """A lazy Dask array of a series or prediction/attribution array."""
        import dask.array as da
        return da.from_zarr(self[key])

    @property
    def doc_starts(self) -> np.ndarray:
        if self._starts is None:
            self._starts = np.asarray(self.group["doc_starts"][:], np.int64)
        return self._starts

    @property
    def attributions(self) -> list[str]:
        return list(self.settings.get("methods", []))

    def token_strings(self, ids: np.ndarray) -> list[str] | None:
        if self._vocab is None:
            return None
        V = len(self._vocab)
        return [self._vocab[i] if 0 <= i < V else "?" for i in np.asarray(ids).tolist()]

    def document_of(self, step: int | np.ndarray) -> np.ndarray:
        """Index of the document each step belongs to."""
        return np.searchsorted(self.doc_starts, step, side="right") - 1

    def document(self, d: int) -> Document:
        """Document ``d``: span, token ids and token strings."""
        if not 0 <= d < self.n_docs:
            raise InputError(f"document {d} is out of range; this store has {self.n_docs}")
        s, e = int(self.doc_starts[d]), int(self.doc_starts[d + 1])
        ids = np.asarray(self.group["tokens"][s:e])
        return Document(d, s, e, ids, self.token_strings(ids))

    def __repr__(self) -> str:
        state = "complete" if self.complete else \
            f"{int(self.chunks_done.sum())}/{self.n_chunks} chunks written"
        return (f"<CorpusStore {self.path}: {self.n_tokens:,} tokens, {self.n_docs:,} "
                f"documents, {len(self.series_keys)} series, {state}>")

    # -- queries (store_query) -------------------------------------------------------
    def select(self, key: str, start: int, end: int, threshold: float = 0.0) -> np.ndarray:
        """Units of ``key`` above ``threshold`` at every step of ``[start, end)``."""
        from .store_query import select_units
        return select_units(self, key, start, end, threshold)

    def match(self, key: str, units: Any, threshold: float = 0.0, **options: Any):
        """Spans where ``units`` are on together (see :func:`store_query.match`)."""
        from .store_query import match
        return match(self, key, units, threshold, **options)

    def top_contexts(self, key: str, unit: int, k: int = 10, window: int = 5):
        """The ``k`` steps where ``unit`` is highest, with their contexts."""
        from .store_query import top_contexts
        return top_contexts(self, key, unit, k=k, window=window)

    def saturation(self, key: str, low: float = 0.1, high: float = 0.9):
        """Fraction of steps each gate unit spends below ``low`` and above ``high``."""
        from .store_query import saturation
        return saturation(self, key, low=low, high=high)


def open_store(path: str | os.PathLike) -> CorpusStore:
    """Open a corpus store written by ``lstmlens index`` (or :func:`index_corpus`).

    An unfinished store (a run stopped by a crash or a full disk) opens too: its finished
    chunks are readable, ``store.complete`` is ``False`` and ``store.chunks_done`` says which.

    Examples
    --------
    >>> store = open_store("runs/corpus.zarr")  # doctest: +SKIP
    >>> store["lstms.0.layers.0.forward.cell"][:100, 7]  # doctest: +SKIP
    """
    p = Path(path).expanduser()
    if not p.exists():
        raise StoreError(f"{p} does not exist; write a store with `lstmlens index`")
    meta = read_meta(p)
    if meta is None:
        raise StoreError(f"{p} is not an lstmlens corpus store (no zarr.json with lstmlens "
                         "metadata); give a directory written by `lstmlens index`")
    if int(meta.get("format_version", 0)) > FORMAT_VERSION:
        raise StoreError(f"{p} was written by a newer lstmlens (store format "
                         f"{meta.get('format_version')}); upgrade lstmlens to read it")
    return CorpusStore(p, meta)
