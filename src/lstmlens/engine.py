"""Every gate of one ``nn.LSTM`` call, computed fast and exactly (the engine behind ``trace``).

Two ways to the same numbers, chosen by size (REFERENCES §2 has the measurements):

- ``"recompute"`` (small batches): run PyTorch's fused kernel for the hidden states, then
  recompute every gate's pre-activation in one matrix product from the known ``h_{t-1}``,
  and the cell state by a parallel prefix scan of ``c_t = f_t c_{t-1} + i_t g_t`` (log₂ T
  rounds of elementwise work; no division, so no overflow however small the forget gate).
- ``"loop"`` (large batches): one pass over time whose matrix work equals the fused kernel's
  (the input projection of all steps in one product, one ``h W_hh`` product per step) and
  whose elementwise work is done in place, straight into the output buffers.

The loop runs batch-major (each sequence's results contiguous, nothing transposed); the
recompute engine runs time-major, the fused kernel's layout. Results are ``(B, T, ·)``.
"""

from __future__ import annotations

import torch
from torch import nn

from .errors import InputError
from .weights import DIRECTIONS, LayerWeights, layer_weights, num_directions

# Batch × hidden size from which the per-step loop beats fused-forward + recompute (measured
# on 2 cores: the crossover lies between B=16 and B=32 at H=128).
LOOP_MIN_WORK = 4096
ENGINES = ("auto", "loop", "recompute")


def _activate(g: torch.Tensor, H: int) -> None:
    """In place: σ on the i, f, o blocks and tanh on the g block of pre-activations (…, 4H)."""
    g[..., : 2 * H].sigmoid_()
    g[..., 2 * H:3 * H].tanh_()
    g[..., 3 * H:].sigmoid_()


def _active_rows(lengths: torch.Tensor | None, B: int, T: int) -> list[int] | None:
    """Rows still running at each step, when ``lengths`` are non-increasing (then the
    sequences alive at step t are the first ``active[t]``); else ``None`` (all rows run)."""
    if lengths is None or B < 2 or not bool((lengths[:-1] >= lengths[1:]).all()):
        return None
    t = torch.arange(T, device=lengths.device)
    return (lengths[None, :] > t[:, None]).sum(1).tolist()  # (T,)


def _run_loop(x: torch.Tensor, w: LayerWeights, h0: torch.Tensor, c0: torch.Tensor,
              active: list[int] | None = None, time_major: bool = False):
    """x (B, T, in) → gates (B, T, 4H) in i,f,g,o order, cells (B, T, H), hidden (B, T, P).

    Batch-major: step t works on the strided rows ``[:, t]`` (BLAS takes a row stride), so
    each sequence's results are contiguous and nothing is transposed afterwards. With
    ``active`` (sequences sorted longest first), step t runs only the first ``active[t]``
    rows, like a packed sequence: padded steps are skipped (their gates hold the input
    projection only, their cells and hidden states are left uninitialised).
    ``time_major``: x is ``(T, B, in)`` and the results ``(T, B, ·)``: each step's rows are
    then contiguous, which is faster when the whole series is read back in one piece.
    """
    if time_major:
        T, B, _ = x.shape
    else:
        B, T, _ = x.shape
    H, P = w.hidden_size, w.output_size
    lead = (T, B) if time_major else (B, T)
    w_h = w.w_hh.t()  # (P, 4H)
    G = torch.addmm(w.bias, x.reshape(B * T, -1), w.w_ih.t()).view(*lead, 4 * H)
    C = x.new_empty(*lead, H)
    Hs = x.new_empty(*lead, P)
    tanh_c = x.new_empty(B, H)
    unprojected = x.new_empty(B, H) if w.w_hr is not None else None
    w_hr_t = w.w_hr.t() if w.w_hr is not None else None
    h, c = h0, c0
    for t in range(T):
        n = B if active is None else active[t]
        if n == 0:
            break
        if time_major:
            g, c_t, h_t = G[t, :n], C[t, :n], Hs[t, :n]  # (n, 4H), (n, H), (n, P)
        else:
            g, c_t, h_t = G[:n, t], C[:n, t], Hs[:n, t]
        g.addmm_(h[:n], w_h)
        _activate(g, H)
        torch.mul(g[:, :H], g[:, 2 * H:3 * H], out=c_t)  # i ⊙ g
        c_t.addcmul_(g[:, H:2 * H], c[:n])  # + f ⊙ c_{t-1}
        torch.tanh(c_t, out=tanh_c[:n])
        if unprojected is None:
            torch.mul(g[:, 3 * H:], tanh_c[:n], out=h_t)  # o ⊙ tanh(c)
        else:
            torch.mul(g[:, 3 * H:], tanh_c[:n], out=unprojected[:n])
            torch.mm(unprojected[:n], w_hr_t, out=h_t)  # W_hr (o ⊙ tanh c)
        h, c = h_t, c_t
    return G, C, Hs


def _scan_cells(f: torch.Tensor, u: torch.Tensor, c0: torch.Tensor) -> torch.Tensor:
    """All c_t of c_t = f_t c_{t-1} + u_t, (T, B, H), by a Hillis–Steele prefix scan.

    After the round with offset d, s_t = c_t computed from the 2d steps up to t; pairs
    (a, s) compose as (a₂a₁, a₂s₁ + s₂). Products of forget gates only shrink towards 0,
    so there is nothing to overflow (unlike the closed form c_t = Π f · Σ u / Π f).
    """
    T = f.shape[0]
    s = u.clone()
    s[0].addcmul_(f[0], c0)
    a = f
    spare_s = torch.empty_like(s)
    spare_a = torch.empty_like(s) if T > 2 else None
    d = 1
    while d < T:
        spare_s[:d] = s[:d]
        torch.addcmul(s[d:], a[d:], s[:-d], out=spare_s[d:])
        s, spare_s = spare_s, s
        if 2 * d < T:
            spare_a[:d] = a[:d]
            torch.mul(a[d:], a[:-d], out=spare_a[d:])
            a, spare_a = spare_a, (a if a is not f else torch.empty_like(f))
        d *= 2
    return s


def _run_recompute(x: torch.Tensor, w: LayerWeights, h0: torch.Tensor, c0: torch.Tensor):
    """Same results as ``_run_loop``: fused forward for h, then gates and cells recomputed."""
    T, B, _ = x.shape
    H = w.hidden_size
    params = [w.w_ih, w.w_hh, w.bias, torch.zeros_like(w.bias)]
    if w.w_hr is not None:
        params.append(w.w_hr)
    Hs, _, _ = torch.lstm(x, (h0[None], c0[None]), params, True, 1, 0.0, False, False, False)
    w_h = w.w_hh.t()  # (P, 4H)
    G = torch.addmm(w.bias, x.reshape(T * B, -1), w.w_ih.t()).view(T, B, 4 * H)  # (T, B, 4H)
    G[0].addmm_(h0, w_h)
    if T > 1:
        G[1:].view(-1, 4 * H).addmm_(Hs[:-1].reshape((T - 1) * B, -1), w_h)
    _activate(G, H)
    C = _scan_cells(G[..., H:2 * H], G[..., :H] * G[..., 2 * H:3 * H], c0)
    return G, C, Hs


def reverse_within(x: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
    """Reverse each sequence of ``x`` (B, T, ...) within its own length; padding stays put.

    The permutation is its own inverse, so the same call maps back to input order.
    """
    T = x.shape[1]
    if lengths is None or bool((lengths == T).all()):
        return x.flip(1)
    t = torch.arange(T, device=x.device)[None, :]  # (1, T)
    L = lengths.to(x.device)[:, None]  # (B, 1)
    idx = torch.where(t < L, L - 1 - t, t)  # (B, T)
    idx = idx.view(*idx.shape, *([1] * (x.dim() - 2))).expand_as(x)
    return x.gather(1, idx)


def _check_engine(engine: str, batch: int, hidden_size: int) -> str:
    if engine not in ENGINES:
        raise InputError(f"engine must be one of {ENGINES}, got {engine!r}")
    if engine == "auto":
        return "loop" if batch * hidden_size >= LOOP_MIN_WORK else "recompute"
    return engine


def trace_lstm_unmasked(
    lstm: nn.LSTM,
    x: torch.Tensor,
    lengths: torch.Tensor | None = None,
    state: tuple[torch.Tensor, torch.Tensor] | None = None,
    dtype: torch.dtype = torch.float32,
    engine: str = "auto",
    time_major: bool = False,
) -> dict[str, torch.Tensor]:
    """:func:`trace_lstm` without its masking: the same ``(B, T, units)`` series (often
    strided views into one gate buffer), with values at padded steps (``t ≥ lengths[b]``)
    unspecified (left as computed, or never computed) rather than zeroed. Valid steps never
    depend on padded ones (padding comes after a sequence's steps in both directions), so a
    caller that reads only valid steps (the corpus store) skips a masked copy of every
    series. Lengths sorted longest first let the loop skip finished sequences.
    """
    B, T, _ = x.shape
    D = num_directions(lstm)
    device = lstm.weight_ih_l0.device
    engine = _check_engine(engine, B, lstm.hidden_size)
    if lengths is not None and bool((lengths == T).all()):
        lengths = None  # no padding: nothing to reverse within lengths
    if lengths is not None:
        lengths = lengths.to(device)
    active = _active_rows(lengths, B, T) if engine == "loop" else None
    out: dict[str, torch.Tensor] = {}
    layer_in = x.detach().to(device=device, dtype=dtype)  # (B, T, in)
    with torch.no_grad():
        for k in range(lstm.num_layers):
            hiddens = []
            for d in range(D):
                w = layer_weights(lstm, k, d, dtype)
                if state is None:
                    h0 = layer_in.new_zeros(B, w.output_size)
                    c0 = layer_in.new_zeros(B, w.hidden_size)
                else:
                    h0 = state[0][k * D + d].detach().to(device=device, dtype=dtype)
                    c0 = state[1][k * D + d].detach().to(device=device, dtype=dtype)
                seq = layer_in if d == 0 else reverse_within(layer_in, lengths)
                if engine == "loop" and time_major:  # (T, B, ·) inside, (B, T, ·) views
                    G, C, Hs = (r.transpose(0, 1) for r in _run_loop(
                        seq.transpose(0, 1).contiguous(), w, h0, c0, active, True))
                elif engine == "loop":  # (B, T, ·) each
                    G, C, Hs = _run_loop(seq.contiguous(), w, h0, c0, active)
                else:  # time-major inside; results as (B, T, ·) views
                    G, C, Hs = (r.transpose(0, 1) for r in _run_recompute(
                        seq.transpose(0, 1).contiguous(), w, h0, c0))
                H = w.hidden_size
                series = {  # each (B, T, units), processing order
                    "input_gate": G[..., :H], "forget_gate": G[..., H:2 * H],
                    "cell_candidate": G[..., 2 * H:3 * H], "output_gate": G[..., 3 * H:],
                    "cell": C, "hidden": Hs,
                }
                prefix = f"layers.{k}.{DIRECTIONS[d]}."
                for name, s in series.items():
                    out[prefix + name] = s if d == 0 else reverse_within(s, lengths)
                hiddens.append(out[prefix + "hidden"])
            layer_in = torch.cat(hiddens, dim=2) if D == 2 else hiddens[0]
    return out


def trace_lstm(
    lstm: nn.LSTM,
    x: torch.Tensor,
    lengths: torch.Tensor | None = None,
    state: tuple[torch.Tensor, torch.Tensor] | None = None,
    dtype: torch.dtype = torch.float32,
    engine: str = "auto",
) -> dict[str, torch.Tensor]:
    """The six series of every layer and direction of ``lstm`` run on ``x``.

    ``x`` is batch-major ``(B, T, in)``, already checked; ``lengths`` ``(B,)`` or ``None``;
    ``state`` is ``(h0, c0)`` in ``nn.LSTM``'s layout. Returns ``{"layers.k.forward.cell":
    (B, T, units), ...}`` in input order, with zeros at padded steps.
    """
    B, T, _ = x.shape
    _check_engine(engine, B, lstm.hidden_size)
    device = lstm.weight_ih_l0.device
    if lengths is not None and bool((lengths == T).all()):
        lengths = None  # no padding: nothing to mask
    mask = None
    if lengths is not None:
        lengths = lengths.to(device)
        mask = (torch.arange(T, device=device)[None, :] < lengths[:, None])[..., None]
    # time-major steps: every series is read back whole, so contiguous steps pay off
    series = trace_lstm_unmasked(lstm, x, lengths, state, dtype, engine, time_major=True)
    if mask is None:
        return series
    with torch.no_grad():
        return {key: s.masked_fill(~mask, 0.0) for key, s in series.items()}
