"""map_threads: results in order, errors raised, the caller's torch thread count restored;
occlusion split over threads gives the one-thread values."""

import pytest
import torch

from lstmlens.explaining import explain
from lstmlens.methods import occlusion
from lstmlens.models import ClassifierConfig, LSTMClassifier
from lstmlens.threads import map_threads


@pytest.fixture
def two_threads(torch_threads):
    torch_threads(2)


def test_map_threads_keeps_order_and_restores_the_thread_count(two_threads):
    seen = []

    def fn(k):
        seen.append(torch.get_num_threads())
        return torch.full((3,), float(k)).sum().item()

    assert map_threads(fn, list(range(7))) == [3.0 * k for k in range(7)]
    assert seen == [1] * 7  # each piece ran on one torch thread
    assert torch.get_num_threads() == 2


def test_map_threads_raises_the_pieces_error_and_restores(two_threads):
    def fn(k):
        if k == 3:
            raise ValueError("piece 3")
        return k

    with pytest.raises(ValueError, match="piece 3"):
        map_threads(fn, list(range(5)))
    assert torch.get_num_threads() == 2


def test_threads_are_kept_and_nested_calls_run_in_the_piece(two_threads):
    import threading

    def ident(_):
        return threading.get_ident()

    seen = set()
    for _ in range(5):
        seen |= set(map_threads(ident, list(range(6))))
    assert threading.get_ident() not in seen
    assert len(seen) <= 2  # the same two threads every time, not new ones per call
    for _ in range(2):  # an inner call waits for no other thread (no deadlock) and
        inner = map_threads(lambda _: map_threads(ident, [0, 1, 2], workers=2), [0, 1])
        assert all(len(set(ids)) == 1 for ids in inner)  # runs where its piece runs


def _in_child(q):
    q.put(map_threads(lambda k: k * k, list(range(5)), workers=2))


def test_a_forked_process_gets_threads_of_its_own(two_threads):
    import multiprocessing as mp

    map_threads(lambda k: k, [0, 1])  # the parent's threads exist before the fork
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    child = ctx.Process(target=_in_child, args=(q,))
    child.start()
    try:
        assert q.get(timeout=60) == [0, 1, 4, 9, 16]
    finally:
        child.join(60)
    assert child.exitcode == 0


def test_one_worker_runs_in_the_calling_thread(two_threads):
    assert map_threads(lambda k: torch.get_num_threads(), [0, 1], workers=1) == [2, 2]


def test_occlusion_split_over_threads_equals_one_piece(two_threads, monkeypatch):
    torch.manual_seed(0)
    model = LSTMClassifier(ClassifierConfig(num_classes=3, vocab_size=40, embedding_dim=6,
                                            hidden_sizes=[9, 7])).eval()
    ids = torch.randint(1, 40, (20, 30))
    ids[4, 20:] = 0
    L = torch.full((20,), 30)
    L[4] = 20
    assert 19 * 30 * 30 >= occlusion.SPLIT_MIN_STEPS  # enough work to split
    pieces = []
    real = occlusion.map_threads
    monkeypatch.setattr(occlusion, "map_threads",
                        lambda fn, p: pieces.append(len(p)) or real(fn, p))
    split = explain(model, ids, "occlusion", lengths=L, target=1).scores
    assert pieces == [2]
    monkeypatch.setattr(occlusion, "SPLIT_MIN_STEPS", 1 << 40)
    whole = explain(model, ids, "occlusion", lengths=L, target=1).scores
    torch.testing.assert_close(split, whole, atol=1e-6, rtol=0)
    with torch.no_grad():  # and both are occlusion: position 3 of sequence 0 by hand
        parts = model.explainable_parts()
        e = parts.embed(ids[:1])
        masked = e.clone()
        masked[0, 3] = 0
        want = (parts.logits_from_embedded(e, L[:1]) - parts.logits_from_embedded(
            masked, L[:1]))[0, 1]
    assert abs(float(split[0, 3] - want)) <= 1e-5
