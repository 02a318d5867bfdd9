"""trace() against the reference cell written from the seed's equations, and nn.LSTM itself."""

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

import lstmlens
from lstmlens.reference import reference_trace
from lstmlens.weights import DIRECTIONS, SERIES

TOL = {torch.float32: 1e-5, torch.float64: 1e-10}


@st.composite
def configs(draw):
    hidden = draw(st.integers(1, 6))
    return dict(
        input_size=draw(st.integers(1, 5)),
        hidden_size=hidden,
        num_layers=draw(st.integers(1, 3)),
        bidirectional=draw(st.booleans()),
        proj_size=draw(st.integers(0, hidden - 1)),
        batch_first=draw(st.booleans()),
        bias=draw(st.booleans()),
        dropout=draw(st.sampled_from([0.0, 0.5])),
        batch=draw(st.integers(1, 4)),
        steps=draw(st.integers(1, 6)),
        lengths=draw(st.sampled_from(["none", "lengths", "packed"])),
        state=draw(st.booleans()),
        engine=draw(st.sampled_from(["auto", "loop", "recompute"])),
        dtype=draw(st.sampled_from([torch.float32, torch.float64])),
        seed=draw(st.integers(0, 2**16)),
        scale=draw(st.sampled_from([0.5, 1.0, 3.0])),
    )


def _module_outputs(lstm, x, lengths, state):
    """What nn.LSTM itself returns, in float64, batch-major."""
    lstm64 = _copy64(lstm)
    x = x.double()
    st64 = tuple(s.double() for s in state) if state is not None else None
    if lengths is not None:
        xb = x if lstm.batch_first else x.transpose(0, 1)
        packed = pack_padded_sequence(xb, lengths, batch_first=True, enforce_sorted=False)
        if not lstm.batch_first:
            packed = pack_padded_sequence(x, lengths, batch_first=False, enforce_sorted=False)
        out, (h, c) = lstm64(packed, st64)
        out, _ = pad_packed_sequence(out, batch_first=True)
    else:
        out, (h, c) = lstm64(x, st64)
        if not lstm.batch_first:
            out = out.transpose(0, 1)
    return out, h, c


def _copy64(lstm):
    new = nn.LSTM(lstm.input_size, lstm.hidden_size, lstm.num_layers, bias=lstm.bias,
                  batch_first=lstm.batch_first, bidirectional=lstm.bidirectional,
                  proj_size=lstm.proj_size).double()
    new.load_state_dict({k: v.double() for k, v in lstm.state_dict().items()})
    return new.eval()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(configs())
def test_trace_matches_reference_and_module(cfg):
    torch.manual_seed(cfg["seed"])
    lstm = nn.LSTM(cfg["input_size"], cfg["hidden_size"], cfg["num_layers"], bias=cfg["bias"],
                   batch_first=cfg["batch_first"], dropout=cfg["dropout"],
                   bidirectional=cfg["bidirectional"], proj_size=cfg["proj_size"])
    lstm.eval()
    with torch.no_grad():
        for p in lstm.parameters():
            p.mul_(cfg["scale"])
    B, T = cfg["batch"], cfg["steps"]
    D = 2 if cfg["bidirectional"] else 1
    xb = torch.randn(B, T, cfg["input_size"]) * cfg["scale"]
    x = xb if cfg["batch_first"] else xb.transpose(0, 1)
    lengths = torch.randint(1, T + 1, (B,)) if cfg["lengths"] != "none" else None
    state = None
    if cfg["state"]:
        state = (torch.randn(cfg["num_layers"] * D, B, cfg["proj_size"] or cfg["hidden_size"]),
                 torch.randn(cfg["num_layers"] * D, B, cfg["hidden_size"]))
    if cfg["lengths"] == "packed":
        inputs = pack_padded_sequence(x, lengths, batch_first=cfg["batch_first"],
                                      enforce_sorted=False)
        tr = lstmlens.trace(lstm, inputs, state=state, dtype=cfg["dtype"], engine=cfg["engine"])
        T_eff = int(lengths.max())  # a PackedSequence pads to its longest sequence
    else:
        tr = lstmlens.trace(lstm, x, lengths, state=state, dtype=cfg["dtype"],
                            engine=cfg["engine"])
        T_eff = T
    tol = TOL[cfg["dtype"]]
    L = lengths if lengths is not None else torch.full((B,), T)
    assert tr.mask.shape == (B, T_eff)
    assert tr.mask.sum(1).tolist() == L.tolist()
    for b in range(B):
        s0 = (state[0][:, b], state[1][:, b]) if state is not None else None
        ref = reference_trace(lstm, xb[b, : L[b]], s0)
        for key, want in ref.items():
            got = tr[key]
            assert got.dtype == cfg["dtype"]
            assert got.shape[:2] == (B, T_eff)
            err = (got[b, : L[b]].double() - want).abs().max().item()
            assert err <= tol, (key, err)
            assert (got[b, L[b]:] == 0).all(), f"{key} is not zero at padded steps"
    out, h_n, c_n = _module_outputs(lstm, x, lengths, state)
    last = [tr[f"layers.{cfg['num_layers'] - 1}.{d}.hidden"] for d in DIRECTIONS[:D]]
    n = out.shape[1]  # nn.LSTM pads a packed result to the longest length only
    assert (torch.cat(last, -1)[:, :n].double() - out).abs().max() <= tol
    h_t, c_t = tr.final_state()
    assert (h_t.double() - h_n).abs().max() <= tol
    assert (c_t.double() - c_n).abs().max() <= tol


def test_keys_views_and_shapes():
    lstm = nn.LSTM(3, 5, num_layers=2, bidirectional=True, batch_first=True)
    tr = lstmlens.trace(lstm, torch.randn(2, 4, 3))
    assert len(tr) == 2 * 2 * 6
    assert set(tr.keys()) == {f"layers.{k}.{d}.{s}" for k in range(2) for d in DIRECTIONS
                              for s in SERIES}
    assert tr.layers[1].backward.forget_gate is tr["layers.1.backward.forget_gate"]
    assert tr.layers[0].forward.cell.shape == (2, 4, 5)
    assert "forward" in dir(tr.layers[0])
    with pytest.raises(KeyError, match="did you mean"):
        tr["layers.0.forward.forgetgate"]
    with pytest.raises(AttributeError):
        tr.layers[3]
    arrays = tr.numpy()
    assert arrays["layers.0.forward.hidden"].shape == (2, 4, 5)


def test_unbatched_input_and_forget_bias_trap():
    """A forget bias of −8 makes Π f underflow; the scan and the loop stay exact."""
    lstm = nn.LSTM(2, 4)
    with torch.no_grad():
        lstm.bias_ih_l0[4:8] = -8.0
        lstm.bias_hh_l0[4:8] = -30.0
    x = torch.randn(200, 2) * 3
    ref = reference_trace(lstm, x)
    for engine in ("loop", "recompute"):
        tr = lstlens_trace = lstmlens.trace(lstm, x, dtype="float64", engine=engine)
        assert tr.mask.shape == (1, 200)
        for key, want in ref.items():
            assert torch.isfinite(lstlens_trace[key]).all()
            assert (tr[key][0] - want).abs().max() <= 1e-10


def test_large_batch_uses_loop_engine_and_matches_recompute():
    lstm = nn.LSTM(8, 64, batch_first=True, num_layers=2)
    x = torch.randn(80, 12, 8)
    lengths = torch.randint(1, 13, (80,))
    a = lstmlens.trace(lstm, x, lengths, engine="loop")
    b = lstmlens.trace(lstm, x, lengths, engine="recompute")
    auto = lstmlens.trace(lstm, x, lengths)
    for k in a.keys():
        assert (a[k] - b[k]).abs().max() <= 1e-5
        assert (a[k] - auto[k]).abs().max() == 0


@pytest.mark.parametrize("proj_size", [0, 3])
def test_loop_skips_finished_sequences_when_sorted_longest_first(proj_size):
    """Lengths sorted longest first: the loop runs only the live rows at each step (a packed
    sequence); every valid step still equals the slow reference run on that sequence alone,
    padded steps are zeros, and the unmasked series agree at valid steps."""
    from lstmlens.engine import _active_rows, trace_lstm_unmasked
    torch.manual_seed(3)
    lstm = nn.LSTM(4, 6, batch_first=True, num_layers=2, bidirectional=True,
                   proj_size=proj_size).double()
    lengths = torch.tensor([9, 9, 7, 4, 4, 1])
    assert _active_rows(lengths, 6, 9) == [6, 5, 5, 5, 3, 3, 3, 2, 2]
    assert _active_rows(lengths.flip(0), 6, 9) is None
    x = torch.randn(6, 9, 4, dtype=torch.float64)
    tr = lstmlens.trace(lstm, x, lengths, dtype="float64", engine="loop")
    raw = trace_lstm_unmasked(lstm, x, lengths, dtype=torch.float64, engine="loop")
    for b, n in enumerate(lengths.tolist()):
        ref = reference_trace(lstm, x[b, :n])
        for key, want in ref.items():
            assert (tr[key][b, :n] - want).abs().max() <= 1e-10, key
            assert torch.equal(raw[key][b, :n], tr[key][b, :n])
            assert (tr[key][b, n:] == 0).all()


class Tagger(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(20, 6)
        self.encoder = nn.LSTM(6, 8, batch_first=True, bidirectional=True, num_layers=2,
                               dropout=0.5)
        self.decoder = nn.LSTM(16, 5, batch_first=True)
        self.fc = nn.Linear(5, 3)

    def forward(self, ids, lengths=None):
        h, _ = self.encoder(self.emb(ids))
        out, _ = self.decoder(h)
        out2, _ = self.decoder(h.flip(1))  # a second call of the same LSTM
        return self.fc(out[:, -1] + out2[:, -1])


def test_module_is_traced_by_submodule_name_and_matches_its_own_run():
    net = Tagger()
    net.train()  # trace runs in eval mode (no dropout) and restores the mode
    ids = torch.randint(0, 20, (3, 7))
    tr = lstmlens.trace(net, ids)
    assert net.training and net.encoder.training
    assert "encoder.layers.1.backward.forget_gate" in tr
    assert "decoder.layers.0.forward.hidden" in tr and "decoder@1.layers.0.forward.hidden" in tr
    assert tr.encoder.layers[1].backward.cell.shape == (3, 7, 8)
    net.eval()
    with torch.no_grad():
        expected = net(ids)
        h, _ = net.encoder(net.emb(ids))
        dec, _ = net.decoder(h)
    assert (tr.output - expected).abs().max() <= 1e-6
    top = torch.cat([tr["encoder.layers.1.forward.hidden"],
                     tr["encoder.layers.1.backward.hidden"]], -1)
    assert (top - h).abs().max() <= 1e-5
    assert (tr["decoder.layers.0.forward.hidden"] - dec).abs().max() <= 1e-5
    ref = reference_trace(net.encoder, net.emb(ids[1]).detach())
    for key, want in ref.items():
        assert (tr["encoder." + key][1].double() - want).abs().max() <= 1e-5


class Exploding(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(3, 4)

    def forward(self, x):
        self.lstm(x)
        raise RuntimeError("boom")


def test_hooks_are_removed_and_module_unchanged_after_an_exception():
    net = Exploding()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    attrs = set(vars(net.lstm))
    net.train()
    with pytest.raises(RuntimeError, match="boom"):
        lstmlens.trace(net, torch.randn(5, 2, 3))
    assert not net.lstm._forward_hooks and not net.lstm._forward_hooks_with_kwargs
    assert not net._forward_hooks and not net._forward_pre_hooks
    assert set(vars(net.lstm)) == attrs
    assert net.training and net.lstm.training
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    # and after a successful trace too
    net2 = Tagger()
    lstmlens.trace(net2, torch.randint(0, 20, (2, 4)))
    assert not net2.encoder._forward_hooks and not net2.decoder._forward_hooks


def test_trace_json_and_html():
    lstm = nn.LSTM(2, 3, batch_first=True)
    tr = lstmlens.trace(lstm, torch.randn(2, 4, 2), lengths=[4, 2])
    import json
    doc = json.loads(tr.to_json())
    assert doc["modules"][""]["lengths"] == [4, 2]
    assert len(doc["series"]["layers.0.forward.cell"][1]) == 4
    assert doc["series"]["layers.0.forward.cell"][1][3] == [0.0, 0.0, 0.0]
    html = tr._repr_html_()
    assert "<table>" in html and "forget_gate_mean" in html and "&lt;Trace" in html
    rows = tr.summary()
    assert rows[0]["steps"] == 6 and 0 <= rows[0]["forget_gate_above_0.9"] <= 1
