"""``Batcher``: run the work of concurrent requests as one batch (leader/follower)."""

from __future__ import annotations

import threading
from typing import Any


class Batcher:
    """Explain the texts of concurrent requests together.

    A request that finds no batch running becomes the leader: it takes the oldest waiting
    request's key and every waiting request with that key (up to ``max_batch``), runs them
    as one batch, and repeats until its own request is answered; then the next waiting
    request leads. Others wait for their result.
    """

    def __init__(self, run: Any, max_batch: int = 16) -> None:
        self.run, self.max_batch = run, max_batch
        self.cv = threading.Condition()
        self.queue: list[tuple[Any, Any, dict[str, Any]]] = []
        self.busy = False

    def submit(self, key: Any, item: Any) -> Any:
        slot: dict[str, Any] = {}
        with self.cv:
            self.queue.append((key, item, slot))
            while not slot and self.busy:
                self.cv.wait()
            if slot:
                return _result(slot)
            self.busy = True  # our request is still queued: a leader answers before it ends
        try:
            while not slot:
                with self.cv:
                    k = self.queue[0][0]
                    mine = [q for q in self.queue if q[0] == k][:self.max_batch]
                    taken = {id(q) for q in mine}
                    self.queue = [q for q in self.queue if id(q) not in taken]
                self._run(k, mine)
                with self.cv:
                    self.cv.notify_all()
        finally:
            with self.cv:
                self.busy = False
                self.cv.notify_all()
        return _result(slot)

    def _run(self, key: Any, batch: list[tuple[Any, Any, dict[str, Any]]]) -> None:
        try:
            results = self.run(key, [b[1] for b in batch])
            for (_, _, slot), res in zip(batch, results, strict=True):
                slot["value"] = res
        except Exception as e:  # noqa: BLE001 — each request gets its own outcome
            if len(batch) == 1:
                batch[0][2]["error"] = e
                return
            for one in batch:  # one bad input must not fail the others
                self._run(key, [one])


def _result(slot: dict[str, Any]) -> Any:
    if "error" in slot:
        raise slot["error"]
    return slot["value"]
