"""Parity tests: Keras 3 (torch backend) models against their ``from_keras`` conversion."""

import os

os.environ["KERAS_BACKEND"] = "torch"

import pickle
import sys
import zipfile

import keras
import numpy as np
import pytest
import torch
from keras import layers as L

from lstmlens.keras_import import KerasImportError, from_keras

TOL = 1e-5


def _as_list(out):
    return list(out) if isinstance(out, (list, tuple)) else [out]


def _max_diff(keras_out, torch_out) -> float:
    ks, ts = _as_list(keras_out), _as_list(torch_out)
    assert len(ks) == len(ts)
    return max(
        float(np.abs(np.asarray(keras.ops.convert_to_numpy(k)) - t.detach().numpy()).max())
        for k, t in zip(ks, ts, strict=True)
    )


def _check(model, x, module=None) -> torch.nn.Module:
    module = module or from_keras(model)
    with torch.no_grad():
        out = module(torch.as_tensor(x))
    keras_out = model(x)
    assert isinstance(out, torch.Tensor) == (not isinstance(keras_out, (list, tuple)))
    assert _max_diff(keras_out, out) <= TOL
    return module


def _tokens(rng: np.random.Generator) -> np.ndarray:
    tok = rng.integers(1, 50, size=(7, 9)).astype("int32")  # (B, T)
    tok[0, 6:] = 0  # right padding
    tok[1, 2:] = 0
    tok[2, :3] = 0  # left padding
    tok[3, [2, 4, 5]] = 0  # zeros in the middle
    tok[4] = 0  # fully masked
    tok[5, ::2] = 0
    return tok


def test_seed_example_trained_saved_loaded(tmp_path):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input(shape=(None, 12)),
                              L.LSTM(128, return_sequences=True), L.LSTM(64),
                              L.Dense(10, activation="softmax")])
    model.compile(loss="categorical_crossentropy", optimizer="adam")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 8, 12)).astype("float32")
    y = keras.utils.to_categorical(rng.integers(0, 10, size=32), 10)
    model.fit(x, y, epochs=2, batch_size=16, verbose=0)
    path = tmp_path / "seed.keras"
    model.save(path)
    module = from_keras(path)
    assert not module.training and module.input_kind == "features"
    assert module.keras_config["class_name"] == "Sequential"
    for length in (1, 5, 17):
        x_new = rng.normal(size=(4, length, 12)).astype("float32")
        with torch.no_grad():
            out = module(torch.from_numpy(x_new))
        assert out.shape == (4, 10)
        assert _max_diff(model.predict(x_new, verbose=0), out) <= TOL


def test_seed_literal_input_shape_builds():
    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input(shape=(None, 100)),
                              L.LSTM(128, return_sequences=True), L.LSTM(64),
                              L.Dense(10, activation="softmax")])
    x = np.random.default_rng(1).normal(size=(2, 6, 100)).astype("float32")
    _check(model, x)


def _bidi_model(merge_mode: str) -> keras.Model:
    inp = keras.Input((None,), dtype="int32")
    h = L.Embedding(50, 16, mask_zero=True)(inp)
    h = L.Bidirectional(L.LSTM(24, return_sequences=True), merge_mode=merge_mode)(h)
    h = L.Dropout(0.3)(h)
    h = L.Bidirectional(L.LSTM(8), merge_mode=merge_mode)(h)
    return keras.Model(inp, L.Dense(3, activation="softmax")(h))


@pytest.mark.parametrize("merge_mode", ["concat", "sum", "ave", "mul"])
def test_bidirectional_embedding_masks(merge_mode):
    keras.utils.set_random_seed(2)
    model = _bidi_model(merge_mode)
    module = _check(model, _tokens(np.random.default_rng(2)))
    assert module.input_kind == "tokens"
    lstms = [m for m in module.modules() if isinstance(m, torch.nn.LSTM)]
    assert len(lstms) == 2 and all(m.bidirectional for m in lstms)
    # int64 tokens of other lengths, right padded only
    tok = np.array([[3, 4, 5, 0, 0], [7, 0, 0, 0, 0]], dtype="int32")
    _check(model, tok, module)


@pytest.mark.parametrize("merge_mode", [None, "concat"])
def test_bidirectional_sequences_and_states(merge_mode):
    keras.utils.set_random_seed(3)
    inp = keras.Input((None,), dtype="int32")
    h = L.Embedding(50, 5, mask_zero=True)(inp)
    outs = L.Bidirectional(L.LSTM(4, return_sequences=True, return_state=True),
                           merge_mode=merge_mode)(h)
    model = keras.Model(inp, outs)
    module = _check(model, _tokens(np.random.default_rng(3)))
    with torch.no_grad():
        assert len(module(torch.ones(1, 3, dtype=torch.int64))) == len(model.outputs)


def test_bidirectional_with_different_backward_layer():
    keras.utils.set_random_seed(4)
    inp = keras.Input((None,), dtype="int32")
    h = L.Embedding(50, 5, mask_zero=True)(inp)
    h = L.Bidirectional(L.LSTM(4, return_sequences=True),
                        backward_layer=L.LSTM(4, return_sequences=True, go_backwards=True,
                                                   use_bias=False))(h)
    model = keras.Model(inp, L.Bidirectional(L.LSTM(2))(h))
    module = _check(model, _tokens(np.random.default_rng(4)))
    names = [n for n, m in module.named_modules() if isinstance(m, torch.nn.LSTM)]
    bidi = model.layers[2].name
    assert f"{bidi}.forward_layer.lstm" in names and f"{bidi}.backward_layer.lstm" in names


@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid", "linear"])
@pytest.mark.parametrize("zero_output", [False, True])
def test_go_backwards_states_masking(activation, zero_output, tmp_path):
    keras.utils.set_random_seed(5)
    inp = keras.Input((None, 4))
    h = L.Masking(mask_value=0.0)(inp)
    seq, state_h, state_c = L.LSTM(6, return_sequences=True, return_state=True,
                                   go_backwards=True, use_bias=False,
                                   zero_output_for_mask=zero_output, name="backwards")(h)
    last = L.LSTM(5, go_backwards=True, dropout=0.2, recurrent_dropout=0.2)(seq)
    outs = [L.Dense(3, activation=activation)(seq), state_h, state_c,
            L.Dense(2, activation=activation, use_bias=False)(last)]
    model = keras.Model(inp, outs)
    x = np.random.default_rng(5).normal(size=(6, 7, 4)).astype("float32")
    x[0, 5:] = 0
    x[1, :2] = 0
    x[2, [1, 3]] = 0
    x[3] = 0  # fully masked
    model.save(tmp_path / "backwards.keras")  # the reloaded graph records its masks differently
    for source in (model, tmp_path / "backwards.keras"):
        module = _check(model, x, from_keras(source))
        assert module.backwards.lstm.bias is False


def test_masking_value_and_unmasked_backwards():
    keras.utils.set_random_seed(6)
    model = keras.Sequential([keras.Input((None, 3)), L.Masking(mask_value=-1.0),
                              L.LSTM(4, go_backwards=True), L.Dense(2)])
    x = np.random.default_rng(6).normal(size=(3, 5, 3)).astype("float32")
    x[0, 3:] = -1.0
    _check(model, x)
    inp = keras.Input((None, 3))
    model = keras.Model(inp, L.LSTM(4, return_sequences=True, go_backwards=True)(inp))
    _check(model, x)


def _error_model(layer) -> keras.Model:
    inp = keras.Input((None, 4))
    return keras.Model(inp, layer(inp))


@pytest.mark.parametrize("layer, words", [
    (L.LSTM(3, recurrent_activation="hard_sigmoid", name="hs_lstm"),
     ["hs_lstm", "LSTM", "hard_sigmoid", "sigmoid"]),
    (L.LSTM(3, activation="relu", name="relu_lstm"), ["relu_lstm", "relu", "tanh"]),
    (L.GRU(3, name="my_gru"), ["my_gru", "GRU", "Bidirectional(LSTM)"]),
    (L.Conv1D(3, 2, name="my_conv"), ["my_conv", "Conv1D", "Dense"]),
    (L.Bidirectional(L.GRU(3), name="bi_gru"), ["bi_gru", "GRU"]),
])
def test_unsupported_layers_raise(layer, words):
    with pytest.raises(KerasImportError) as err:
        from_keras(_error_model(layer))
    assert all(w in str(err.value) for w in words), str(err.value)
    assert isinstance(err.value, ValueError)


def test_unsupported_dense_activation():
    model = keras.Sequential([keras.Input((None, 4)), L.LSTM(3), L.Dense(2, activation="elu",
                                                                        name="elu_dense")])
    with pytest.raises(KerasImportError, match="elu_dense.*elu.*softmax"):
        from_keras(model)


def test_bad_paths(tmp_path):
    with pytest.raises(KerasImportError, match="does not exist"):
        from_keras(tmp_path / "missing.keras")
    fake = tmp_path / "text.keras"
    fake.write_text("not a model")
    with pytest.raises(KerasImportError, match="not a valid .keras"):
        from_keras(fake)
    empty_zip = tmp_path / "empty.keras"
    with zipfile.ZipFile(empty_zip, "w") as zf:
        zf.writestr("readme.txt", "hi")
    with pytest.raises(KerasImportError, match="config.json"):
        from_keras(str(empty_zip))
    for name in ("model.h5", "model.pkl"):
        (tmp_path / name).write_bytes(b"\x00")
        with pytest.raises(KerasImportError, match="'.keras' file"):
            from_keras(tmp_path / name)
    with pytest.raises(KerasImportError):
        from_keras(42)


def test_missing_keras_message(monkeypatch):
    monkeypatch.setitem(sys.modules, "keras", None)
    with pytest.raises(ImportError, match=r"pip install 'lstmlens\[keras\]'"):
        from_keras("whatever.keras")


def test_module_names_weights_and_no_pickle(tmp_path, monkeypatch):
    keras.utils.set_random_seed(7)
    inp = keras.Input((None,), dtype="int32", name="tokens")
    h = L.Embedding(20, 4, mask_zero=True, name="emb")(inp)
    h = L.Bidirectional(L.LSTM(3, return_sequences=True), name="bi-lstm")(h)
    h = L.LSTM(5, name="lstm_1")(h)
    model = keras.Model(inp, L.Dense(2, name="head")(h))
    path = tmp_path / "names.keras"
    model.save(path)

    def refuse(*args, **kwargs):
        raise AssertionError("pickle used")

    for target, attr in ((pickle, "load"), (pickle, "loads"), (torch, "load"), (torch, "save")):
        monkeypatch.setattr(target, attr, refuse)
    module = from_keras(path)
    monkeypatch.undo()
    lstms = {n: m for n, m in module.named_modules() if isinstance(m, torch.nn.LSTM)}
    assert set(lstms) == {"bi_lstm.lstm", "lstm_1.lstm"}
    assert lstms["bi_lstm.lstm"].bidirectional and not lstms["lstm_1.lstm"].bidirectional
    cell = model.get_layer("lstm_1").cell
    lstm = lstms["lstm_1.lstm"]
    np.testing.assert_array_equal(lstm.weight_ih_l0.detach().numpy(),
                                  keras.ops.convert_to_numpy(cell.kernel).T)
    np.testing.assert_array_equal(lstm.weight_hh_l0.detach().numpy(),
                                  keras.ops.convert_to_numpy(cell.recurrent_kernel).T)
    np.testing.assert_array_equal(lstm.bias_ih_l0.detach().numpy(),
                                  keras.ops.convert_to_numpy(cell.bias))
    assert not lstm.bias_hh_l0.detach().any()
    assert {"emb", "bi_lstm", "lstm_1", "head"} <= {n for n, _ in module.named_children()}
    assert all(p.dtype == torch.float32 for p in module.parameters())
    calls = []
    handle = lstm.register_forward_hook(lambda mod, args, out: calls.append(type(args[0])))
    _check(model, _tokens(np.random.default_rng(7)) % 20, module)
    handle.remove()
    assert calls == [torch.nn.utils.rnn.PackedSequence]
