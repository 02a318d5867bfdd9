"""A language model's states for one store chunk, with its documents packed into lanes.

Padding documents to a common length wastes the steps past each one's end, and a chunk's
documents of many lengths need several padded batches. Here the chunk's documents are laid
end to end into ``B`` lanes (longest first, each onto the lane that is shortest so far),
and one time-major pass of ``T`` steps runs all lanes at once: at the step where a document
begins, its lane's state is reset to zero, so every document gets the states it would get
alone. Per step: one ``h W_hh`` product for all lanes, and elementwise work in place in
reused buffers (fresh memory costs page faults). Each layer's series are gathered, already
in the store's dtype, straight into the chunk buffers; only the hidden states feeding the
next layer are kept.

This path serves unidirectional LSTMs without projections in a model that predicts at
every step (the corpus store's language models); other models are padded per batch.
"""

from __future__ import annotations

import heapq

import numpy as np
import torch

from .weights import LayerWeights, layer_weights

MAX_LANES = 256  # lanes per pass: wider steps stop paying off (one h W_hh of 256 rows)


def lanes_apply(model, parts) -> bool:
    """Whether :func:`trace_lanes` can serve ``model``: a per-step model whose LSTMs run
    forward only and have no projection."""
    return (getattr(model, "kind", "") == "language_model"
            and all(not lstm.bidirectional and not lstm.proj_size for lstm in parts.lstms))


def plan_lanes(lens: np.ndarray) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Lane and starting step of every document of lengths ``lens`` (each ≥ 1), the lane
    count ``B`` and the steps ``T``: documents longest first, each onto the lane with the
    fewest steps so far (ties: the lowest lane), with as many lanes as the longest document
    fits into the total (at most ``MAX_LANES``)."""
    total, longest = int(lens.sum()), int(lens.max())
    B = int(min(MAX_LANES, max(1, total // longest)))
    lane = np.empty(len(lens), np.int64)
    start = np.empty(len(lens), np.int64)
    heap = [(0, b) for b in range(B)]
    for d in np.argsort(-lens, kind="stable").tolist():
        t, b = heapq.heappop(heap)
        lane[d], start[d] = b, t
        heapq.heappush(heap, (t + int(lens[d]), b))
    return lane, start, B, int((start + lens).max())


class Workspace:
    """Float32 buffers of one chunk's pass, grown when needed and reused across chunks."""

    def __init__(self) -> None:
        self._bufs: dict[str, torch.Tensor] = {}

    def get(self, name: str, *shape: int) -> torch.Tensor:
        n = int(np.prod(shape))
        buf = self._bufs.get(name)
        if buf is None or buf.numel() < n:
            buf = self._bufs[name] = torch.empty(n)
        return buf[:n].view(*shape)


BLOCK = 16  # steps per input projection: its gates are still in cache when the steps run
IFOG = ("input_gate", "forget_gate", "output_gate", "cell_candidate")  # the order inside


def _ifog(w: LayerWeights) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """W_ih, W_hh and b with the gate blocks reordered from i, f, g, o to i, f, o, g (the
    three sigmoid gates side by side: one σ and one tanh call per step)."""
    H = w.hidden_size
    order = torch.cat([torch.arange(2 * H), torch.arange(3 * H, 4 * H),
                       torch.arange(2 * H, 3 * H)])
    return w.w_ih[order], w.w_hh[order], w.bias[order]


def _run(x: torch.Tensor, w: LayerWeights, resets: list[torch.Tensor | None],
         G: torch.Tensor, C: torch.Tensor, Hs: torch.Tensor) -> None:
    """One layer over lanes: x (T, B, in) → gates G (T, B, 4H) in i, f, o, g order (σ
    applied; the candidate's tanh applied), cells C and hidden states Hs (T, B, H), in
    place. ``resets[t]``: lanes whose state restarts from zero at step t (a document begins
    there), or None."""
    T, B, _ = x.shape
    H = w.hidden_size
    H3 = 3 * H
    w_ih, w_hh, bias = _ifog(w)
    w_xt, w_ht = w_ih.t(), w_hh.t()  # (in, 4H), (H, 4H)
    tanh_c = torch.empty(B, H)
    g_all, sig, cand = G.unbind(0), G[..., :H3].unbind(0), G[..., H3:].unbind(0)
    i_g, f_g, o_g = G[..., :H].unbind(0), G[..., H:2 * H].unbind(0), G[..., 2 * H:H3].unbind(0)
    c, h = C.unbind(0), Hs.unbind(0)
    for t in range(T):
        if t % BLOCK == 0:  # input projections of the next BLOCK steps
            t1 = min(T, t + BLOCK)
            torch.addmm(bias, x[t:t1].reshape((t1 - t) * B, -1), w_xt,
                        out=G[t:t1].view((t1 - t) * B, 4 * H))
        if t:
            h_in, c_in = h[t - 1], c[t - 1]
            if resets[t] is not None:  # documents beginning here start from zero states
                h_in = h_in.index_fill(0, resets[t], 0.0)
                c_in = c_in.index_fill(0, resets[t], 0.0)
            g_all[t].addmm_(h_in, w_ht)
        sig[t].sigmoid_()
        cand[t].tanh_()
        torch.mul(i_g[t], cand[t], out=c[t])  # i ⊙ g
        if t:
            c[t].addcmul_(f_g[t], c_in)  # + f ⊙ c_{t-1}
        torch.tanh(c[t], out=tanh_c)
        torch.mul(o_g[t], tanh_c, out=h[t])  # o ⊙ tanh c


def trace_lanes(parts, names: dict[int, str], toks: torch.Tensor, doc_s: np.ndarray,
                sel_from: int, n: int, work: Workspace, put) -> torch.Tensor:
    """Every series of the documents starting at local offsets ``doc_s`` (with the end as
    its last entry) of ``toks``; ``put(key, values)`` receives each series' values (n, units)
    at the local tokens ``[sel_from, sel_from + n)``.
    Returns the top layer's hidden states at those tokens (n, H), float32."""
    lens = np.diff(doc_s)
    lane, start, B, T = plan_lanes(lens)
    # flat time-major position (t·B + lane) of every local token
    pos = np.repeat(start * B + lane - doc_s[:-1] * B, lens) + np.arange(len(toks)) * B
    ids = torch.zeros(T * B, dtype=torch.long)
    ids[torch.from_numpy(pos)] = toks
    sel = torch.from_numpy(pos[sel_from:sel_from + n])  # (n,)
    begins = [[] for _ in range(T)]
    for d in np.flatnonzero(start > 0).tolist():
        begins[int(start[d])].append(int(lane[d]))
    resets = [torch.tensor(r) if r else None for r in begins]
    x = parts.embed(ids.view(T, B)).float()  # (T, B, E); lanes as the batch
    out, n_layers = None, 0
    for lstm in parts.lstms:
        prefix = names[id(lstm)]
        for k in range(lstm.num_layers):
            w = layer_weights(lstm, k, 0, torch.float32)
            H = w.hidden_size
            G = work.get("gates", T, B, 4 * H)
            C = work.get("cells", T, B, H)
            Hs = work.get(f"hidden{n_layers % 2}", T, B, H)  # the input's buffer is the other
            n_layers += 1
            _run(x, w, resets, G, C, Hs)
            key = f"{prefix}.layers.{k}.forward."
            gates = torch.index_select(G.view(T * B, 4 * H), 0, sel,
                                       out=work.get("gathered", n, 4 * H))  # (n, 4H) i,f,o,g
            for j, s in enumerate(IFOG):
                put(key + s, gates[:, j * H:(j + 1) * H])
            one = work.get("gathered1", n, H)
            put(key + "cell", torch.index_select(C.view(T * B, H), 0, sel, out=one))
            put(key + "hidden", torch.index_select(Hs.view(T * B, H), 0, sel, out=one))
            x, out = Hs, Hs.view(T * B, H)
    return out.index_select(0, sel)
