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
