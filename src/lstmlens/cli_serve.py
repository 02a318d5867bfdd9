"""``lstmlens serve``: the web explorer of one model (FastAPI served by uvicorn)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from .cli_common import _fail, _guard, app, err

LOOPBACK = {"127.0.0.1", "localhost", "::1"}


@app.command()
def serve(
    model_dir: Annotated[Path, typer.Argument(help="A model directory.")],
    corpus: Annotated[Path | None, typer.Option(
        help="A text file to browse, one text per line (character models: the whole file in "
             "pieces). Default: the model's own held-out data.")] = None,
    store: Annotated[Path | None, typer.Option(
        help="A corpus store from `lstmlens index`: pattern search, contexts and saturation "
             "then run over the whole store.")] = None,
    host: Annotated[str, typer.Option(help="Address to listen on. Only loopback by default; "
                                           "anything else exposes the model to the network.")
                    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port (0: any free one).")] = 8000,
    sequences: Annotated[int, typer.Option(min=1, max=100000,
                                           help="Corpus sequences to load.")] = 200,
    max_tokens: Annotated[int, typer.Option(min=1, max=5000,
                                            help="Longest input a request may send.")] = 300,
    threads: Annotated[int | None, typer.Option(
        min=1, max=64, help="Threads: a request's explanation methods run side by side on "
                            "them (one torch thread each). Default: the machine's cores, at "
                            "most 4.")] = None,
) -> None:
    """Browse a model's states, explanations, neurons and rules in the browser."""
    if host not in LOOPBACK:
        err.print(f"[bold yellow]warning:[/] listening on {host}: anyone who can reach this "
                  "address can query the model. Use the default 127.0.0.1 for local use.")

    def run() -> None:
        import torch
        import uvicorn

        from .explorer import Explorer, Limits
        from .server import create_app
        torch.set_num_threads(threads or min(os.cpu_count() or 1, 4))
        ex = Explorer(model_dir, corpus=corpus, store=store, n=sequences,
                      limits=Limits(max_tokens=max_tokens))
        err.print(f"lstmlens explorer: {model_dir} ({ex.kind}), {len(ex.corpus)} corpus "
                  f"sequences; open http://{'[' + host + ']' if ':' in host else host}:{port}/")
        uvicorn.run(create_app(ex), host=host, port=port, log_level="warning",
                    limit_concurrency=64, timeout_keep_alive=5)

    if not model_dir.exists():
        _fail(f"model directory {model_dir} does not exist")
    _guard(run)
