import numpy as np
import pytest
from neurons_helpers import char_lm
from typer.testing import CliRunner

from lstmlens.cli import app
from lstmlens.errors import InputError
from lstmlens.matching import find_matches, match_hypothesis, parse_span, select_cells
from lstmlens.states import States


def reference_matches(seqs, cells, threshold, need, min_length=1, top=50):
    """LSTMVis matching written plainly: for every maximal run of steps where at least
    ``need`` selected cells are on, the cells on throughout it, ranked by overlap (desc),
    union (asc), length (desc), then position."""
    out = []
    for i, v in enumerate(seqs):
        T, H = v.shape

        def ok(t, v=v):
            return sum(1 for c in cells if v[t, c] >= threshold) >= need

        t = 0
        while t < T:
            if not ok(t):
                t += 1
                continue
            s = t
            while t < T and ok(t):
                t += 1
            if t - s >= min_length:
                on_all = [u for u in range(H) if all(v[j, u] >= threshold for j in range(s, t))]
                overlap = len([u for u in on_all if u in cells])
                union = len(set(on_all) | set(cells))
                out.append((-overlap, union, -(t - s), i, s, t))
    out.sort()
    return [(i, s, e, -o, u) for o, u, _, i, s, e in out][:top]


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("relaxed", [False, True])
def test_matches_equal_the_plain_reference(seed, relaxed):
    rng = np.random.default_rng(seed)
    seqs = [np.arctanh(np.clip(rng.uniform(-1, 1, size=(rng.integers(5, 40), 7)), -0.99, 0.99))
            for _ in range(6)]  # stored as cell states: matching reads tanh(c)
    st = States(tokens=[list("x" * len(v)) for v in seqs],
                series={"m.layers.0.forward.cell": seqs})
    cells = [1, 3, 4]
    need = 2 if relaxed else 3
    ours = find_matches(st, cells, threshold=0.0, min_overlap=need, top=20)
    ref = reference_matches([np.tanh(v) for v in seqs], cells, 0.0, need, top=20)
    assert [(m.sequence, m.start, m.end, m.overlap, m.union) for m in ours] == ref
    assert ours, "the random data should give some matches"


def test_select_cells_on_and_off():
    v = np.array([[0.9, 0.0, 0.9], [0.5, 0.6, 0.4], [0.4, 0.7, 0.35], [0.0, 0.8, 0.1]])
    assert select_cells(v, (1, 3), 0.3) == [0, 1, 2]
    assert select_cells(v, (1, 3), 0.3, off_before=True) == [1]
    assert select_cells(v, (1, 3), 0.3, off_after=True) == [0, 2]
    assert select_cells(v, (1, 3), 0.3, off_before=True, off_after=True) == []
    assert select_cells(v, (0, 4), 0.0) == [0, 1, 2]
    with pytest.raises(InputError, match="outside the text"):
        select_cells(v, (2, 9))
    with pytest.raises(InputError, match="outside the text"):
        select_cells(v, (3, 3))
    assert parse_span("2:5") == (2, 5)
    with pytest.raises(InputError, match="a:b"):
        parse_span("2-5")


def test_match_hypothesis_finds_the_planted_phrase():
    on = np.full((12, 5), -2.0)
    on[3:6, [0, 2]] = 2.0  # cells 0 and 2 on over steps 3..5 of sequence 0
    other = np.full((10, 5), -2.0)
    other[6:9, [0, 2, 4]] = 2.0  # also on (with a third cell) in sequence 1
    other[1:3, [0, 2]] = 2.0  # and exactly these two, shorter
    st = States(tokens=[list("abcdefghijkl"), list("mnopqrstuv")],
                series={"m.layers.0.forward.cell": [on, other]})
    hyp = match_hypothesis(st, 0, (3, 6))
    assert hyp.cells == [0, 2] and hyp.selected_text == "def"
    got = [(m.sequence, m.start, m.end, m.union) for m in hyp.matches]
    # same overlap; union 2 beats union 3; among union 2 the longer phrase comes first
    assert got == [(0, 3, 6, 2), (1, 1, 3, 2), (1, 6, 9, 3)]
    assert "<code>def</code>" in hyp.to_html()
    with pytest.raises(InputError, match="no cells"):
        find_matches(st, [])
    with pytest.raises(InputError, match="out of range"):
        find_matches(st, [7])


def test_cli_match(tmp_path):
    model_dir = char_lm(tmp_path / "lm")
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("def f(x):\n    return 'ok'\n" * 20)
    runner = CliRunner()
    args = ["neurons", "match", str(model_dir), "--text", "x = 'hello'", "--span", "4:10",
            "--threshold", "0.0", "--corpus", str(corpus)]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "cells of lstms.0.layers.0.forward.cell" in res.output
    res = runner.invoke(app, args + ["--json"])
    assert res.exit_code == 0 and '"cells"' in res.output
    res = runner.invoke(app, args[:5] + ["--span", "4:99", "--corpus", str(corpus)])
    assert res.exit_code == 1 and "outside the text" in res.output
    assert "Traceback" not in res.output
