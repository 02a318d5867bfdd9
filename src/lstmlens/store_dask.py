"""Running the chunks of a store on a Dask cluster (``--workers N`` or ``--scheduler``).

Each task is one chunk: the worker loads the model from the store's recorded model
directory (once per worker process), computes the chunk on one thread and writes it and
its marker straight into the store, so workers need the store and the model directory at
the same paths (one machine, or a shared file system). Only chunk numbers travel. At most
two tasks per worker are in flight, so the client's memory stays small.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from .errors import InputError
from .store import StoreError


def check_executor(workers: int | None, scheduler: str | None) -> None:
    """Refuse bad ``workers``/``scheduler`` before any work starts."""
    if workers is not None and scheduler is not None:
        raise InputError("give either workers (a local cluster) or scheduler (an existing "
                         "one), not both")
    if scheduler is not None and not (isinstance(scheduler, str) and scheduler.startswith(
            ("tcp://", "tls://", "inproc://"))):
        raise InputError(f"--scheduler must be an address like tcp://127.0.0.1:8786, got "
                         f"{scheduler!r}")
    if workers is not None and (not isinstance(workers, int) or isinstance(workers, bool)
                                or workers < 1):
        raise InputError(f"--workers must be a whole number ≥ 1, got {workers!r}")
    if workers is not None or scheduler is not None:
        try:
            import distributed  # noqa: F401
        except ImportError:
            raise StoreError("--workers/--scheduler need dask.distributed; install it with "
                             "pip install 'lstmlens[store]'") from None


def _client(workers: int | None, scheduler: str | None):
    from distributed import Client, LocalCluster
    if scheduler is not None:
        try:
            return Client(scheduler, timeout="20s"), None
        except (OSError, TimeoutError) as e:
            raise StoreError(f"cannot reach the Dask scheduler at {scheduler}: {e}") from None
    import dask
    # one thread per worker (a chunk runs on one torch thread); no statistical profiler
    # sampling the tasks' stacks every 10 ms
    with dask.config.set({"distributed.worker.profile.enabled": False}):
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                               host="127.0.0.1", dashboard_address=None,
                               worker_dashboard_address=None)
    return Client(cluster), cluster


def run_distributed(store_path: str, chunks: Sequence[int], *, workers: int | None = None,
                    scheduler: str | None = None,
                    progress: Callable[[int, int], None] | None = None) -> None:
    """Compute ``chunks`` of the store on a local (127.0.0.1) or existing Dask cluster."""
    from distributed import as_completed

    from .store_chunk import index_chunk
    client, cluster = _client(workers, scheduler)
    try:
        n_workers = max(1, len(client.scheduler_info(n_workers=-1).get("workers", {})))
        todo = list(chunks)
        in_flight = 2 * n_workers
        futures = [client.submit(index_chunk, store_path, c, pure=False)
                   for c in todo[:in_flight]]
        nxt = len(futures)
        done = 0
        pool = as_completed(futures)
        for fut in pool:
            fut.result()  # re-raises a worker's error here
            done += 1
            if progress is not None:
                progress(done, len(todo))
            if nxt < len(todo):
                pool.add(client.submit(index_chunk, store_path, todo[nxt], pure=False))
                nxt += 1
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
