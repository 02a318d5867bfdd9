"""A model's states for one store chunk, with the chunk's documents packed into lanes.

Padding documents to a common length wastes the steps past each one's end, and a chunk's
documents of many lengths need several padded batches. Here the chunk's documents are laid
end to end into ``B`` lanes (longest first, each onto the lane that is shortest so far),
and one time-major pass of ``T`` steps runs all lanes at once: at the step where a document
begins, its lane's state is reset to zero, so every document gets the states it would get
alone. A backward direction runs the same lanes with every document reversed in its place.
Per step: one ``h W_hh`` product for all lanes, and elementwise work in place in reused
buffers (fresh memory costs page faults). Steps run in blocks of ``BLOCK``: the block's
input projection, its steps, then its values converted to the store's dtype while they are
still in cache; after the layer, one gather per series puts the chunk's tokens into the
chunk buffers. Only the outputs feeding the next layer are kept in float32.

This path serves every token model whose LSTMs have no projection (language models and
classifiers, one or two directions); others are padded per batch.
"""

from __future__ import annotations

import functools
import heapq

import numpy as np
import torch

from .weights import DIRECTIONS, LayerWeights, layer_weights
from .workspace import Workspace

MAX_LANES = 256  # lanes per pass at most (bounds the width of a step)
MIN_LANES = 4  # below this, the engine's padded batches (fused kernel) are faster (measured)
STEP_COST = 20  # a step's fixed cost (Python, dispatch) in lane-steps of work (from profiles)


def lanes_apply(model, parts, lens: np.ndarray | None = None) -> bool:
    """Whether :func:`trace_lanes` serves ``model`` (token inputs, LSTMs without projections,
    one or two directions) on documents of lengths ``lens``: when they fill at least
    ``MIN_LANES`` lanes. Fewer, longer documents run faster as padded batches through the
    engine (its fused-kernel path)."""
    if not (parts.input_kind == "tokens" and getattr(parts, "exact", True)
            and all(not lstm.proj_size for lstm in parts.lstms)):
        return False
    return lens is None or _plan(lens.astype(np.int64).tobytes())[2] >= MIN_LANES


@functools.lru_cache(maxsize=8)
def _plan(lens: bytes) -> tuple[np.ndarray, np.ndarray, int, int]:
    """:func:`plan_lanes` of the int64 lengths ``lens``, remembered (a chunk plans twice)."""
    return plan_lanes(np.frombuffer(lens, np.int64))


def _pack(lens: np.ndarray, order: list[int], B: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Documents in ``order`` each onto the lane with the fewest steps so far (ties: the
    lowest lane): their lanes, starting steps, and the steps of the longest lane."""
    lane = np.empty(len(lens), np.int64)
    start = np.empty(len(lens), np.int64)
    heap = [(0, b) for b in range(B)]
    for d in order:
        t, b = heapq.heappop(heap)
        lane[d], start[d] = b, t
        heapq.heappush(heap, (t + int(lens[d]), b))
    return lane, start, int((start + lens).max())


def plan_lanes(lens: np.ndarray) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Lane and starting step of every document of lengths ``lens`` (each ≥ 1), the lane
    count ``B`` and the steps ``T``. Documents go longest first, each onto the lane that is
    shortest so far. ``B`` is the candidate of least estimated cost ``T · (B + STEP_COST)``
    among a few counts from the fewest lanes that could hold the documents within the
    longest one's length upwards: more lanes leave lanes idle at the end, fewer make a
    lane hold two long documents end to end and double ``T``."""
    total, longest = int(lens.sum()), int(lens.max())
    B0 = -(-total // longest)  # lanes as full as the longest document: T ≥ longest anyway
    cap = min(MAX_LANES, len(lens))
    order = np.argsort(-lens, kind="stable").tolist()
    best = None
    for B in sorted({min(cap, b) for b in (B0, B0 + 1, B0 + 2, -(-B0 * 9 // 8),
                                           -(-B0 * 5 // 4), -(-B0 * 3 // 2), cap)}):
        lane, start, T = _pack(lens, order, B)
        cost = T * (B + STEP_COST)
        if best is None or cost < best[0]:
            best = (cost, lane, start, B, T)
    _, lane, start, B, T = best
    return lane, start, B, T


BLOCK = 16  # steps per input projection: its gates are still in cache when the steps run
IFOG = ("input_gate", "forget_gate", "output_gate", "cell_candidate")  # the order inside


def _run(x: torch.Tensor, w: LayerWeights, resets: list[torch.Tensor | None],
         G: torch.Tensor, C: torch.Tensor, Hs: torch.Tensor, done) -> None:
    """One layer over lanes: x (T, B, in) → hidden states Hs (T, B, H) in place, and per
    block of ``BLOCK`` steps its gates in ``G`` (BLOCK, B, 4H), i, f, o, g order (σ and tanh
    applied), and its cells in ``C`` (BLOCK + 1, B, H; row 0 carries the cells of the step
    before the block), handed to ``done(t0, t1)`` while they are still in cache.
    ``resets[t]``: lanes whose state restarts from zero at step t (a document begins there),
    or None."""
    T, B, _ = x.shape
    H = w.hidden_size
    H3 = 3 * H
    w_ih, w_hh, bias = w.sigmoids_first()
    w_xt, w_ht = w_ih.t(), w_hh.t()  # (in, 4H), (H, 4H)
    tanh_c = torch.empty(B, H)
    g_all, sig, cand = G.unbind(0), G[..., :H3].unbind(0), G[..., H3:].unbind(0)
    i_g, f_g, o_g = G[..., :H].unbind(0), G[..., H:2 * H].unbind(0), G[..., 2 * H:H3].unbind(0)
    c, h = C.unbind(0), Hs.unbind(0)  # step t0 + k of a block: c[k + 1]
    for t0 in range(0, T, BLOCK):
        t1 = min(T, t0 + BLOCK)
        torch.addmm(bias, x[t0:t1].reshape((t1 - t0) * B, -1), w_xt,
                    out=G[:t1 - t0].view((t1 - t0) * B, 4 * H))  # the block's inputs' share
        if t0:
            c[0].copy_(c[BLOCK])  # the last cells of the block before
        for t in range(t0, t1):
            k = t - t0
            if t:
                h_in, c_in = h[t - 1], c[k]
                if resets[t] is not None:  # documents beginning here start from zero states
                    h_in = h_in.index_fill(0, resets[t], 0.0)
                    c_in = c_in.index_fill(0, resets[t], 0.0)
                g_all[k].addmm_(h_in, w_ht)
            sig[k].sigmoid_()
            cand[k].tanh_()
            torch.mul(i_g[k], cand[k], out=c[k + 1])  # i ⊙ g
            if t:
                c[k + 1].addcmul_(f_g[k], c_in)  # + f ⊙ c_{t-1}
            torch.tanh(c[k + 1], out=tanh_c)
            torch.mul(o_g[k], tanh_c, out=h[t])  # o ⊙ tanh c
        done(t0, t1)


class Lanes:
    """Where a chunk's documents lie in the lanes: ``B`` lanes of ``T`` steps, the flat
    time-major position (t·B + lane) of every local token in input order (``pos``) and in
    reversed order within its document (``rpos``: the backward direction's layout), and the
    lanes whose state restarts at each step."""

    def __init__(self, doc_s: np.ndarray):
        lens = np.diff(doc_s)
        lane, start, self.B, self.T = _plan(lens.astype(np.int64).tobytes())
        B, n = self.B, int(doc_s[-1])
        first = np.repeat(start * B + lane, lens)  # (n,) each token's document's first step
        k = np.arange(n) - np.repeat(doc_s[:-1], lens)  # (n,) step within its document
        self.pos = first + k * B
        self.rpos = first + (np.repeat(lens, lens) - 1 - k) * B
        begins: list[list[int]] = [[] for _ in range(self.T)]
        for d in np.flatnonzero(start > 0).tolist():
            begins[int(start[d])].append(int(lane[d]))
        self.resets = [torch.tensor(r) if r else None for r in begins]
        self._flip: torch.Tensor | None = None

    def flip(self) -> torch.Tensor:
        """(T·B,) the permutation between the two layouts (its own inverse; padding stays)."""
        if self._flip is None:
            m = np.arange(self.T * self.B)
            m[self.pos] = self.rpos
            self._flip = torch.from_numpy(m)
        return self._flip


def trace_lanes(parts, names: dict[int, str], toks: torch.Tensor, doc_s: np.ndarray,
                sel_from: int, n: int, work: Workspace, dest, dtype: torch.dtype
                ) -> tuple[torch.Tensor, Lanes]:
    """Every series of the documents starting at local offsets ``doc_s`` (with the end as
    its last entry) of ``toks``, at the local tokens ``[sel_from, sel_from + n)``, written
    into ``dest(key, units)``, a contiguous ``(n, units)`` tensor of ``dtype`` per series.
    Returns the top LSTM's outputs (T·B, D·H) in the input-order layout, float32, and the
    :class:`Lanes`."""
    lanes = Lanes(doc_s)
    T, B = lanes.T, lanes.B
    ids = torch.zeros(T * B, dtype=torch.long)
    ids[torch.from_numpy(lanes.pos)] = toks
    x = parts.embed(ids.view(T, B)).float().view(T * B, -1)  # (T·B, E); lanes as the batch
    sels = [torch.from_numpy(p[sel_from:sel_from + n]) for p in (lanes.pos, lanes.rpos)]
    x_buf = None  # the workspace buffer that holds x, if one does
    for lstm in parts.lstms:
        prefix = names[id(lstm)]
        D = 2 if lstm.bidirectional else 1
        for k in range(lstm.num_layers):
            outs, held = [], []  # this layer's output buffers, per direction
            for d in range(D):
                w = layer_weights(lstm, k, d, torch.float32)
                H = w.hidden_size
                G = work.get("gates", min(T, BLOCK), B, 4 * H)
                C = work.get("cells", min(T, BLOCK) + 1, B, H)
                if D == 1 and x_buf is not None and x.shape[1] == H:
                    name = x_buf  # in place: a block's outputs overwrite inputs already read
                else:  # a buffer holding neither the inputs nor the other direction's outputs
                    name = next(f"hidden{i}" for i in range(3)
                                if f"hidden{i}" not in (x_buf, *held))
                held.append(name)
                Hs = work.get(name, T, B, H)
                # every step's series in the store's dtype, converted block by block while
                # the block is in cache: (T·B, 6H) as i, f, o, g, c, h
                out = work.get("series", T * B, 6 * H, dtype=dtype)

                def done(t0: int, t1: int, G=G, C=C, Hs=Hs, H=H, out=out) -> None:
                    rows = out[t0 * B:t1 * B]
                    rows[:, :4 * H].copy_(G[:t1 - t0].view(-1, 4 * H))
                    rows[:, 4 * H:5 * H].copy_(C[1:t1 - t0 + 1].view(-1, H))
                    rows[:, 5 * H:].copy_(Hs[t0:t1].view(-1, H))

                x_d = x if d == 0 else x.index_select(0, lanes.flip())
                _run(x_d.view(T, B, -1), w, lanes.resets, G, C, Hs, done)
                key = f"{prefix}.layers.{k}.{DIRECTIONS[d]}."
                for j, s in enumerate((*IFOG, "cell", "hidden")):  # gather the chunk's tokens
                    torch.index_select(out[:, j * H:(j + 1) * H], 0, sels[d],
                                       out=dest(key + s, H))
                h = Hs.view(T * B, H)
                outs.append(h if d == 0 else h.index_select(0, lanes.flip()))
            x = outs[0] if D == 1 else torch.cat(outs, 1)  # (T·B, D·H), input order
            x_buf = held[0] if D == 1 else None
    return x, lanes
