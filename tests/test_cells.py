import numpy as np
import pytest
from neurons_helpers import char_lm, code_pieces
from sklearn.metrics import roc_auc_score

import lstmlens
from lstmlens.cells import (
    FEATURES,
    auc_per_unit,
    bracket_depth,
    correlation_per_unit,
    find_units,
    indentation,
    inside_string,
    lexicon_feature,
    position_in_line,
    unit_picture,
)
from lstmlens.errors import InputError
from lstmlens.states import States, collect_states


def ints(a):
    return a.astype(int).tolist()


def test_inside_string_quotes_escapes_comments_triple():
    assert ints(inside_string(list("a='x'"))) == [0, 0, 1, 1, 0]
    assert ints(inside_string(list(r"'\''"))) == [1, 1, 1, 0]  # escaped quote stays inside
    assert ints(inside_string(list("# 'no'\n'y'"))) == [0] * 7 + [1, 1, 0]
    assert ints(inside_string(list('"""a"b"""c'))) == [1] * 8 + [0, 0]
    assert ints(inside_string(list("'a\nb"))) == [1, 1, 0, 0]  # unterminated: ends at line end
    assert ints(inside_string(["x=", "'ab'", "c"])) == [0, 0, 0]  # pieces: state after each


def test_bracket_indent_position():
    assert bracket_depth(list("(a[b])")).tolist() == [1, 1, 2, 2, 1, 0]
    assert bracket_depth(list("))(")).tolist() == [0, 0, 1]
    assert indentation(list("a\n  b\n")).tolist() == [0, 0, 1, 2, 2, 0]
    assert position_in_line(list("ab\nc")).tolist() == [1, 2, 0, 1]
    assert lexicon_feature(["Good", "film"], {"good": 1.9}).tolist() == [1.9, 0.0]


def test_auc_matches_sklearn_with_ties():
    rng = np.random.default_rng(0)
    x = np.round(rng.normal(size=(300, 5)), 1)  # rounded: many ties
    y = (rng.random(300) < 0.3).astype(float)
    x[:, 2] += 2 * y
    ours = auc_per_unit(x, y)
    ref = [roc_auc_score(y, x[:, u]) for u in range(5)]
    np.testing.assert_allclose(ours, ref, atol=1e-12)


def test_correlation_matches_numpy():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(100, 4))
    y = x[:, 1] * 2 + rng.normal(size=100)
    ref = [np.corrcoef(x[:, u], y)[0, 1] for u in range(4)]
    np.testing.assert_allclose(correlation_per_unit(x, y), ref, atol=1e-12)


def planted_states(rng, flip=False):
    toks = [list("x = 'abc' + f(\"q\")\n") * 3 for _ in range(4)]
    feat = [inside_string(t) for t in toks]
    cells = []
    for f in feat:
        c = rng.normal(scale=0.5, size=(len(f), 6))
        c[:, 4] = (-1 if flip else 1) * (2 * f - 1) + rng.normal(scale=0.2, size=len(f))
        cells.append(c)
    return States(tokens=toks, series={"lstm.layers.0.forward.cell": cells})


@pytest.mark.parametrize("flip", [False, True])
def test_find_units_ranks_the_planted_unit_first(flip):
    st = planted_states(np.random.default_rng(2), flip)
    found = find_units(st, "inside_string")
    assert found.best.index == 4 and found.best.score > 0.95
    assert found.best.sign == (-1 if flip else 1)
    y = np.concatenate([inside_string(t) for t in st.tokens])
    ref = roc_auc_score(y, np.tanh(st.flat("cell"))[:, 4])
    assert found.best.raw == pytest.approx(ref)
    corr = find_units(st, "inside_string", metric="correlation")
    assert corr.best.index == 4


def test_user_array_and_bad_features():
    st = planted_states(np.random.default_rng(3))
    flat = np.concatenate([inside_string(t) for t in st.tokens])
    assert find_units(st, flat).best.index == 4
    assert find_units(st, [inside_string(t) for t in st.tokens]).best.index == 4
    with pytest.raises(InputError, match="one value per token"):
        find_units(st, flat[:-1])
    with pytest.raises(InputError, match="sequence 0"):
        find_units(st, [f[:-1] for f in [inside_string(t) for t in st.tokens]])
    with pytest.raises(InputError, match="unknown feature"):
        find_units(st, "quotes")
    with pytest.raises(InputError, match="constant"):
        find_units(st, np.zeros(st.num_steps))
    with pytest.raises(InputError, match="metric"):
        find_units(st, "inside_string", metric="mi")
    with pytest.raises(InputError, match="empty"):
        States(tokens=[])


def test_collect_states_on_a_char_model(tmp_path):
    model = lstmlens.load(char_lm(tmp_path / "lm"))
    texts = code_pieces(4, 120)
    st = collect_states(model, texts, series=["cell", "hidden"])
    assert st.lengths == [len(t) for t in texts]
    assert st.flat("cell").shape == (sum(map(len, texts)), 16)
    assert "".join(st.tokens[1]) == texts[1]
    found = find_units(st, "bracket_depth", metric="correlation")
    assert len(found.scores) == 16 and 0 <= found.best.score <= 1
    fig = unit_picture(st, find_units(st, "inside_string"), tmp_path / "u.png")
    assert (tmp_path / "u.png").stat().st_size > 1000
    assert "tanh(cell)" in fig.axes[-1].get_ylabel()
    fig = unit_picture(st, find_units(st, "inside_string"), sequences=3)
    assert "sequences 0, 1, 2" in fig.axes[0].get_title(loc="left")
    with pytest.raises(InputError, match="empty"):
        collect_states(model, [])
    with pytest.raises(InputError, match="out of range"):
        st.sequence("cell", 9)
    assert set(FEATURES) >= {"inside_string", "bracket_depth", "indentation",
                             "position_in_line", "sentiment", "position"}
