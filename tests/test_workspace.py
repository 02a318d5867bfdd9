import threading

import torch

from lstmlens.workspace import KEEP_BYTES, Workspace, thread_workspace


def test_buffers_are_reused_and_grown():
    w = Workspace()
    a = w.get("g", 4, 5)
    b = w.get("g", 2, 3)
    assert a.data_ptr() == b.data_ptr()  # smaller: the same memory
    c = w.get("g", 10, 10)
    assert c.shape == (10, 10) and c.numel() == 100
    assert w.get("g", 3).data_ptr() == c.data_ptr()
    assert w.get("other", 3).data_ptr() != c.data_ptr()


def test_dtype_change_gives_a_new_buffer():
    w = Workspace()
    a = w.get("g", 8)
    b = w.get("g", 8, dtype=torch.float64)
    assert b.dtype == torch.float64 and a.dtype == torch.float32
    assert w.get("g", 2, 4, dtype=torch.float64).data_ptr() == b.data_ptr()


def test_limit_keeps_at_most_that_many_bytes():
    w = Workspace(limit=1000)
    a = w.get("a", 200)  # 800 bytes: kept
    assert w.kept_bytes == 800
    big = w.get("b", 100)  # 400 more would pass the limit: fresh, not kept
    assert big.shape == (100,) and w.kept_bytes == 800
    assert w.get("b", 100).data_ptr() != big.data_ptr()
    assert w.get("a", 250).data_ptr() != a.data_ptr()  # regrown in place of the old one
    assert w.kept_bytes == 1000
    w.clear()
    assert w.kept_bytes == 0


def test_each_thread_has_its_own():
    mine = thread_workspace("t")
    assert thread_workspace("t") is mine and thread_workspace("u") is not mine
    assert mine.limit == KEEP_BYTES  # one bound for every owner, however it is first asked
    seen = []
    th = threading.Thread(target=lambda: seen.append(thread_workspace("t")))
    th.start()
    th.join()
    assert seen[0] is not mine


def test_memo_keeps_views_of_its_buffers_only():
    w = Workspace()
    g = w.get("g", 3, 4)
    steps = w.memo("steps", g, torch.Tensor.unbind)
    assert w.memo("steps", w.get("g", 3, 4), torch.Tensor.unbind) is steps  # same view: kept
    assert w.memo("steps", w.get("g", 4, 3), torch.Tensor.unbind) is not steps  # other shape
    outside = torch.empty(3, 4)
    assert w.memo("steps", outside, torch.Tensor.unbind) is not w.memo(
        "steps", outside, torch.Tensor.unbind)  # not a buffer: made each time, not kept
    steps[1].fill_(7.0)
    assert (w.get("g", 3, 4)[1] == 7.0).all()  # the views are the buffer's memory
    big = w.get("g", 10, 10)  # regrown: views of the old buffer are dropped
    again = w.memo("steps", w.get("g", 3, 4), torch.Tensor.unbind)
    assert again is not steps and again[0].data_ptr() == big.data_ptr()
