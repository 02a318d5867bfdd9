"""``fit`` and ``evaluate`` on tiny synthetic tasks: learning, determinism, early stopping.

The separable task: label = sign of the sum of feature 0 over time (3 features, 3-10 steps).
With 200 training sequences, one LSTM layer of 16 units, Adam lr 1e-2 and batch 16, the
best validation accuracy reached was ≥ 0.94 for every seed tried (0-5, model and fit) by
epoch 8; the test asks for ≥ 0.9.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import lstmlens
from lstmlens import InputError, LSTMClassifier, fit
from lstmlens.datasets import SequenceData
from lstmlens.training import evaluate

ACCURACY_THRESHOLD = 0.9


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny models: one thread is as fast as two, and does not slow down a hundredfold when
    another process is using the cores (OpenMP threads waiting on each other)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def sign_task(n: int, seed: int, random_labels: bool = False) -> SequenceData:
    rng = np.random.default_rng(seed)
    xs = [rng.normal(size=(int(rng.integers(3, 11)), 3)).astype(np.float32) for _ in range(n)]
    if random_labels:
        ys = rng.integers(0, 2, size=n)
    else:
        ys = np.array([int(x[:, 0].sum() > 0) for x in xs])
    return SequenceData(xs, ys)


def small_model(seed: int = 0, hidden: int = 16) -> LSTMClassifier:
    torch.manual_seed(seed)
    return LSTMClassifier(dict(num_classes=2, input_size=3, hidden_sizes=[hidden]))


@pytest.fixture(scope="module")
def data() -> tuple[SequenceData, SequenceData]:
    return sign_task(200, seed=1), sign_task(100, seed=2)


def test_fit_learns_a_separable_task(data):
    train, val = data
    model = small_model()
    before = evaluate(model, val)["accuracy"]
    hist = fit(model, train, val, epochs=8, batch_size=16, lr=1e-2, seed=0, progress=False)
    after = evaluate(model, val)
    assert after["accuracy"] >= ACCURACY_THRESHOLD, hist.epochs
    assert after["accuracy"] > before
    assert not model.training  # fit leaves the model in eval mode
    assert 1 <= hist.best_epoch <= len(hist.epochs) <= 8
    row = hist.epochs[hist.best_epoch - 1]
    assert set(row) >= {"epoch", "loss", "accuracy", "val_loss", "val_accuracy"}
    assert row["val_accuracy"] == after["accuracy"]  # the best epoch's weights are kept
    assert hist.epochs[-1]["loss"] < hist.epochs[0]["loss"]
    assert hist.to_dict()["best_epoch"] == hist.best_epoch


def test_same_seed_gives_bitwise_identical_weights(data):
    train, val = data
    states = []
    for _ in range(2):
        model = small_model(seed=3, hidden=8)
        fit(model, train, val, epochs=2, batch_size=32, seed=5, progress=False)
        states.append(model.state_dict())
    assert states[0].keys() == states[1].keys()
    for k in states[0]:
        assert torch.equal(states[0][k], states[1][k]), k


def test_different_seed_gives_different_weights(data):
    """The control for the determinism test: the seed does reach the shuffling."""
    train, _ = data
    a, b = small_model(seed=3, hidden=8), small_model(seed=3, hidden=8)
    fit(a, train, epochs=1, batch_size=32, seed=5, progress=False)
    fit(b, train, epochs=1, batch_size=32, seed=6, progress=False)
    assert not torch.equal(a.head.weight, b.head.weight)


def test_early_stopping_restores_best_epoch():
    """Random labels: validation stops improving, patience 1 stops the run, and the weights
    returned are the best epoch's, not the last one's."""
    train = sign_task(120, seed=7, random_labels=True)
    val = sign_task(60, seed=8, random_labels=True)
    model = small_model(seed=0, hidden=8)
    epochs = 30
    hist = fit(model, train, val, epochs=epochs, batch_size=16, lr=2e-2, patience=1, seed=0,
               progress=False)
    assert len(hist.epochs) < epochs
    assert hist.best_epoch == len(hist.epochs) - 1  # patience 1: stop right after the best
    best = hist.epochs[hist.best_epoch - 1]
    last = hist.epochs[-1]
    assert (last["val_accuracy"], -last["val_loss"]) <= (best["val_accuracy"], -best["val_loss"])
    assert best == max(hist.epochs, key=lambda r: (r["val_accuracy"], -r["val_loss"]))
    now = evaluate(model, val)
    assert now["accuracy"] == best["val_accuracy"]
    assert now["loss"] == pytest.approx(best["val_loss"], abs=1e-6)
    assert now["loss"] != pytest.approx(last["val_loss"], abs=1e-6)  # not the last weights


def test_without_validation_keeps_last_epoch(data):
    train, _ = data
    model = small_model(hidden=8)
    hist = fit(model, train, epochs=2, batch_size=64, progress=False)
    assert hist.best_epoch == 2 and len(hist.epochs) == 2
    assert "val_accuracy" not in hist.epochs[-1]


def test_empty_training_set():
    with pytest.raises(InputError, match=r"training set is empty"):
        fit(small_model(), SequenceData([], np.array([], dtype=np.int64)), progress=False)


@pytest.mark.parametrize("bad", [2, -1])
def test_labels_out_of_range(bad):
    data = SequenceData([np.ones((3, 3), np.float32)] * 4, np.array([0, 1, bad, 1]))
    with pytest.raises(InputError, match=r"labels must lie in 0..1"):
        fit(small_model(hidden=4), data, progress=False)
    with pytest.raises(InputError, match=r"labels must lie in 0..1"):
        evaluate(small_model(hidden=4), data)


def test_bad_epochs_and_batch_size(data):
    train, _ = data
    with pytest.raises(InputError, match=r"epochs and batch_size must be ≥ 1"):
        fit(small_model(), train, epochs=0, progress=False)
    with pytest.raises(InputError, match=r"epochs and batch_size must be ≥ 1"):
        fit(small_model(), train, batch_size=0, progress=False)


def test_evaluate_empty_and_values():
    model = small_model(hidden=4)
    with pytest.raises(InputError, match=r"empty data set"):
        evaluate(model, SequenceData([], np.array([], dtype=np.int64)))
    data = sign_task(30, seed=4)
    got = evaluate(model, data, batch_size=7)  # several batches, summed exactly
    x, lengths = lstmlens.batching.pad_batch(data.inputs)
    with torch.no_grad():
        logits = model(x, lengths)
    y = torch.as_tensor(data.labels)
    assert got["accuracy"] == pytest.approx(float((logits.argmax(1) == y).double().mean()),
                                            abs=1e-12)
    assert got["loss"] == pytest.approx(
        float(torch.nn.functional.cross_entropy(logits, y)), abs=1e-6)
