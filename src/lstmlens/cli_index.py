"""``lstmlens index``: trace a whole corpus into a chunked store (thin: parse, call
:func:`lstmlens.index_corpus`, print)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from .cli_common import _guard, err, out


def index_cmd(
    model_dir: Annotated[Path, typer.Argument(help="A model directory with a tokenizer.")],
    data: Annotated[Path, typer.Option(
        help="Corpus: .txt (one document per line), .csv/.tsv (header row) or .jsonl.")],
    store: Annotated[Path, typer.Option("--out", help="Store directory to write (resumed if "
                                                      "it holds an unfinished run).")],
    dtype: Annotated[str, typer.Option(help="float16 (default, half the disk) or float32.")
                     ] = "float16",
    compression: Annotated[str, typer.Option(
        help="none (default, fastest), lz4 or zstd: codec of the stored arrays.")] = "none",
    methods: Annotated[str | None, typer.Option(
        help="Explanation methods to store per token, comma-separated (e.g. cd,lrp).")] = None,
    batch: Annotated[int, typer.Option(min=1, help="Documents per forward pass.")] = 128,
    chunk: Annotated[int, typer.Option(min=16, help="Tokens per store chunk (unit of work).")
                     ] = 16384,  # store_index.DEFAULT_CHUNK (not imported: it loads torch)
    text_column: Annotated[str, typer.Option(help="Text column (.csv/.tsv) or key (.jsonl).")
                           ] = "text",
    workers: Annotated[int | None, typer.Option(
        min=1, help="Run on a local Dask cluster of N worker processes (127.0.0.1 only).")
    ] = None,
    scheduler: Annotated[str | None, typer.Option(
        help="Run on an existing Dask cluster, e.g. tcp://127.0.0.1:8786.")] = None,
    threads: Annotated[int | None, typer.Option(
        min=1, help="In-process: chunks computed at once (default: one per core, at most 2).")
    ] = None,
    quiet: Annotated[bool, typer.Option(help="No progress lines.")] = False,
) -> None:
    """Trace every token of a corpus (every gate, layer, direction) into a Zarr store."""
    def body():
        from .errors import InputError
        from .store_index import index_corpus
        names = [] if methods is None else [m.strip() for m in methods.split(",") if m.strip()]
        if methods is not None and not names:
            raise InputError("--methods is empty; give method names separated by commas")

        def progress(done: int, total: int) -> None:
            if not quiet and (done == total or done % max(1, total // 20) == 0):
                err.print(f"  {done}/{total} chunks", highlight=False)

        st = index_corpus(model_dir, data, store, dtype=dtype, compression=compression,
                          methods=names, batch=batch,
                          chunk_tokens=chunk, text_column=text_column, workers=workers,
                          scheduler=scheduler, threads=threads, progress=progress)
        out.print(escape(f"wrote {st.path}: {st.n_tokens:,} tokens, {st.n_docs:,} documents, "
                         f"{len(st.series_keys)} series ({dtype}), chunks of "
                         f"{st.chunk_tokens:,} tokens"), highlight=False)
    _guard(body)
