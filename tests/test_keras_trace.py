"""trace() on Keras 3 models: every gate of every Keras LSTM, equal to Keras's own outputs."""

import os

os.environ["KERAS_BACKEND"] = "torch"

import keras
import numpy as np
import torch
from keras import layers as L

import lstmlens
from lstmlens.reference import reference_trace


def _seed_model():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input(shape=(None, 12)),
                              L.LSTM(32, return_sequences=True, name="lstm_a"),
                              L.LSTM(16, name="lstm_b"), L.Dense(10, activation="softmax")])
    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    return model


def test_trace_of_live_and_saved_seed_model_matches_keras(tmp_path):
    model = _seed_model()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 9, 12)).astype("float32")
    first = keras.Model(model.inputs, model.get_layer("lstm_a").output)
    want_seq = keras.ops.convert_to_numpy(first(x))  # (B, T, 32)
    path = tmp_path / "seed.keras"
    model.save(path)
    for source in (model, path):
        net = lstmlens.from_keras(source) if source is path else source
        tr = lstmlens.trace(net, torch.from_numpy(x))
        h = tr["lstm_a.lstm.layers.0.forward.hidden"].numpy()
        assert np.abs(h - want_seq).max() <= 1e-5
        probs = keras.ops.convert_to_numpy(model(x))
        assert np.abs(tr.output.numpy() - probs).max() <= 1e-5
        assert tr["lstm_b.lstm.layers.0.forward.cell"].shape == (3, 9, 16)
    # every gate against the reference cell, via the converted nn.LSTM
    module = lstmlens.from_keras(model)
    tr = lstmlens.trace(module, torch.from_numpy(x), dtype="float64")
    ref = reference_trace(module.get_submodule("lstm_a.lstm"), torch.from_numpy(x[1]))
    for key, val in ref.items():
        assert (tr["lstm_a.lstm." + key][1] - val).abs().max() <= 1e-10


def test_trace_of_bidirectional_masked_embedding_model():
    keras.utils.set_random_seed(3)
    inp = keras.Input((None,), dtype="int32")
    e = L.Embedding(30, 8, mask_zero=True)(inp)
    seq = L.Bidirectional(L.LSTM(6, return_sequences=True), name="bi")(e)
    out = L.Dense(2, activation="softmax")(L.LSTM(4, name="top")(seq))
    model = keras.Model(inp, out)
    tokens = np.array([[3, 4, 5, 6, 7], [8, 9, 2, 0, 0], [5, 1, 0, 0, 0]], dtype="int32")
    net = lstmlens.from_keras(model)
    tr = lstmlens.trace(net, torch.from_numpy(tokens).long())
    assert tr.mask_of("bi.lstm.layers.0.forward.hidden").sum(1).tolist() == [5, 3, 2]
    bi_out = keras.ops.convert_to_numpy(keras.Model(inp, seq)(tokens))  # (B, T, 12)
    both = torch.cat([tr["bi.lstm.layers.0.forward.hidden"],
                      tr["bi.lstm.layers.0.backward.hidden"]], -1).numpy()
    valid = tr.mask_of("bi.lstm.layers.0.forward.hidden").numpy()
    assert np.abs(both[valid] - bi_out[valid]).max() <= 1e-5
    assert (both[~valid] == 0).all()
    assert np.abs(tr.output.numpy() - keras.ops.convert_to_numpy(model(tokens))).max() <= 1e-5
