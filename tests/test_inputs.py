"""Every bad input of ``lstmlens.trace`` (and ``pad_batch``) gets a clear lstmlens error.

Each case checks the error class and that the message names the problem and what is
accepted; the same bad ``lengths`` are checked on a bare ``nn.LSTM`` and through an
lstmlens model (whose forward receives them).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

import lstmlens
from lstmlens import InputError, LstmlensError, ModelError
from lstmlens.batching import pad_batch


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny models: one thread is as fast as two, and does not slow down a hundredfold when
    another process is using the cores (OpenMP threads waiting on each other)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)

F, H = 4, 5


@pytest.fixture
def lstm() -> nn.LSTM:
    return nn.LSTM(F, H, batch_first=True)


@pytest.fixture
def clf() -> lstmlens.LSTMClassifier:
    return lstmlens.LSTMClassifier(
        lstmlens.ClassifierConfig(num_classes=3, input_size=F, hidden_sizes=[6])
    )


@pytest.fixture(params=["lstm", "classifier"])
def model(request, lstm, clf) -> nn.Module:
    return lstm if request.param == "lstm" else clf


def x_(B: int = 2, T: int = 3, feat: int = F) -> torch.Tensor:
    return torch.randn(B, T, feat)


class GRUNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(F, H, batch_first=True)

    def forward(self, x):
        return self.gru(x)[0]


class UnusedLSTM(nn.Module):
    """Owns an nn.LSTM but its forward never calls it."""

    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(F, H, batch_first=True)
        self.linear = nn.Linear(F, 2)

    def forward(self, x):
        return self.linear(x)


class NoLengths(nn.Module):
    """Calls its LSTM but its forward takes no ``lengths``."""

    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(F, H, batch_first=True)

    def forward(self, x):
        return self.lstm(x)[0]


def test_errors_are_lstmlens_and_value_errors():
    assert issubclass(InputError, LstmlensError) and issubclass(InputError, ValueError)
    assert issubclass(ModelError, LstmlensError) and issubclass(ModelError, ValueError)


# ----------------------------------------------------------------------- shapes


def test_wrong_feature_size_bare_lstm(lstm):
    with pytest.raises(InputError, match=r"7 features per step.*input_size=4"):
        lstmlens.trace(lstm, x_(feat=7))


def test_wrong_feature_size_model(clf):
    with pytest.raises(InputError, match=r"features \[batch, time, 4\].*\(2, 3, 7\)"):
        lstmlens.trace(clf, x_(feat=7))


@pytest.mark.parametrize("B,T", [(0, 3), (2, 0)])
def test_empty_batch_or_time(model, B, T):
    with pytest.raises(InputError, match=r"inputs are empty") as info:
        lstmlens.trace(model, torch.randn(B, T, F))
    assert f"{B}, {T}" in str(info.value) or f"batch {B}, time {T}" in str(info.value)


def test_empty_error_says_what_is_accepted(lstm):
    with pytest.raises(InputError, match=r"at least one step"):
        lstmlens.trace(lstm, torch.randn(2, 0, F))


def test_4d_input(model):
    with pytest.raises(InputError, match=r"\(2, 3, 4, 1\)") as info:
        lstmlens.trace(model, torch.randn(2, 3, F, 1))
    assert "[batch, time" in str(info.value)


def test_4d_input_names_accepted_layouts(lstm):
    with pytest.raises(InputError, match=r"3-D \[batch, time, features\].*2-D.*PackedSequence"):
        lstmlens.trace(lstm, torch.randn(2, 3, F, 1))


def test_ragged_nested_list(lstm):
    with pytest.raises(InputError, match=r"pad ragged sequences and pass `lengths`"):
        lstmlens.trace(lstm, [[[1.0] * F], [[1.0] * F, [2.0] * F]])


# -------------------------------------------------------------------- NaN / inf


@pytest.mark.parametrize("as_numpy", [False, True])
def test_nan_and_inf_give_count_and_first_index(model, as_numpy):
    x = x_()
    x[1, 2, 3] = float("nan")
    x[0, 1, 0] = float("inf")
    x[1, 0, 2] = float("-inf")
    with pytest.raises(InputError) as info:
        lstmlens.trace(model, x.numpy() if as_numpy else x)
    msg = str(info.value)
    assert "3 NaN/inf" in msg
    assert "(0, 1, 0)" in msg  # first in row-major order
    assert "only finite values are accepted" in msg


# ---------------------------------------------------------------------- lengths


@pytest.mark.parametrize(
    "lengths,pattern",
    [
        ([4, 2], r"must not exceed the sequence length 3, got max 4"),
        ([0, 2], r"must be positive \(≥ 1\)"),
        ([-1, 2], r"must be positive \(≥ 1\)"),
        ([3], r"one length per sequence \(2\), got shape \(1,\)"),
        ([3, 2, 1], r"one length per sequence \(2\), got shape \(3,\)"),
        ([2.5, 2.0], r"whole numbers, got dtype torch.float"),
        ([[3, 2]], r"one length per sequence \(2\), got shape \(1, 2\)"),
        ("ab", r"lengths must be a tensor, a numpy array or nested lists of numbers"),
    ],
    ids=["too-long", "zero", "negative", "too-few", "too-many", "non-integer", "2-D", "text"],
)
def test_bad_lengths(model, lengths, pattern):
    with pytest.raises(InputError, match=pattern):
        lstmlens.trace(model, x_(), lengths=lengths)


def test_whole_float_lengths_are_accepted(lstm):
    tr = lstmlens.trace(lstm, x_(), lengths=[3.0, 2.0])
    assert tr.lengths.tolist() == [3, 2]


def test_packed_sequence_with_lengths(lstm):
    packed = pack_padded_sequence(x_(), [3, 2], batch_first=True)
    with pytest.raises(InputError, match=r"either inside a PackedSequence or as `lengths`"):
        lstmlens.trace(lstm, packed, lengths=[3, 2])


def test_lengths_for_module_without_lengths_argument():
    with pytest.raises(InputError, match=r"NoLengths.forward takes no `lengths`"):
        lstmlens.trace(NoLengths(), x_(), lengths=[3, 2])


# ----------------------------------------------------------------------- models


def test_module_without_lstm():
    with pytest.raises(ModelError, match=r"GRUNet contains no torch.nn.LSTM.*GRU"):
        lstmlens.trace(GRUNet(), x_())


def test_module_that_never_calls_its_lstm():
    with pytest.raises(ModelError, match=r"nn.LSTM submodules \(lstm\).*called none"):
        lstmlens.trace(UnusedLSTM(), x_())


@pytest.mark.parametrize("obj", [object(), "model.keras", None, 3])
def test_non_module_model(obj):
    with pytest.raises(ModelError, match=r"trace takes a torch.nn.LSTM.*got " +
                       type(obj).__name__):
        lstmlens.trace(obj, x_())


def test_hooks_removed_after_error():
    m = UnusedLSTM()
    with pytest.raises(ModelError):
        lstmlens.trace(m, x_())
    assert not m.lstm._forward_hooks


# ---------------------------------------------------------------- state / dtype


def test_bad_state_shape(lstm):
    h0 = torch.zeros(1, 3, H)  # batch 3, inputs have batch 2
    with pytest.raises(InputError, match=r"h0 \(1, 2, 5\) and c0 \(1, 2, 5\), got \(1, 3, 5\)"):
        lstmlens.trace(lstm, x_(), state=(h0, h0.clone()))


def test_state_not_a_pair(lstm):
    with pytest.raises(InputError, match=r"pair \(h0, c0\)"):
        lstmlens.trace(lstm, x_(), state=torch.zeros(1, 2, H))


def test_state_for_a_module(clf):
    with pytest.raises(InputError, match=r"state= applies to a bare nn.LSTM"):
        lstmlens.trace(clf, x_(), state=(torch.zeros(1, 2, 6), torch.zeros(1, 2, 6)))


@pytest.mark.parametrize("dtype", ["float16", torch.float16, "double", torch.int64, None,
                                   ["float32"]])
def test_bad_dtype(lstm, dtype):
    with pytest.raises(InputError, match=r"dtype must be float32 or float64, got"):
        lstmlens.trace(lstm, x_(), dtype=dtype)


def test_int_inputs_to_bare_lstm(lstm):
    with pytest.raises(InputError, match=r"float features, got dtype torch.int64.*token ids"):
        lstmlens.trace(lstm, torch.ones(2, 3, F, dtype=torch.long))


def test_int_inputs_to_feature_model(clf):
    with pytest.raises(InputError, match=r"float features \[batch, time, 4\].*torch.int64"):
        lstmlens.trace(clf, torch.ones(2, 3, F, dtype=torch.long))


# -------------------------------------------------------------------- pad_batch


def test_pad_batch_empty_list():
    with pytest.raises(InputError, match=r"zero sequences"):
        pad_batch([])


def test_pad_batch_empty_sequence():
    with pytest.raises(InputError, match=r"sequence 1 is empty; every sequence needs at least"):
        pad_batch([np.ones((2, 3)), np.zeros((0, 3))])


def test_pad_batch_scalar_sequence():
    with pytest.raises(InputError, match=r"sequence 0 is empty"):
        pad_batch([np.float32(1.0)])


def test_pad_batch_mismatched_step_shapes():
    with pytest.raises(InputError, match=r"sequence 2 has step shape \(4,\), sequence 0 has "
                                         r"\(3,\)"):
        pad_batch([np.ones((2, 3)), np.ones((1, 3)), np.ones((2, 4))])


@pytest.mark.parametrize("seq", [[[1.0, 2.0], [3.0]], "abc", np.array([1, "a"], dtype=object)],
                         ids=["ragged", "text", "object"])
def test_pad_batch_not_numbers(seq):
    with pytest.raises(InputError, match=r"sequence 1 is not an array of numbers \[time, ...\]"):
        pad_batch([np.ones((2, 2)), seq])


def test_pad_batch_mixed_int_and_float_stays_float():
    x, _ = pad_batch([np.array([1, 2]), np.array([0.5])])
    assert x.dtype == torch.float32 and x[1, 0] == 0.5


def test_pad_batch_pads_right_and_keeps_lengths():
    x, lengths = pad_batch([np.ones((3, 2)), 2 * np.ones((1, 2))], pad_value=-1.0)
    assert x.dtype == torch.float32 and lengths.tolist() == [3, 1]
    assert x[1, 0].tolist() == [2.0, 2.0] and x[1, 1:].eq(-1).all()
    tokens, _ = pad_batch([np.array([3, 4]), np.array([5])])
    assert tokens.dtype == torch.long and tokens.tolist() == [[3, 4], [5, 0]]
