import numpy as np
import pytest
import torch

import lstmlens
from lstmlens.errors import InputError
from lstmlens.heatmaps import plot_time_feature, plot_units_time, text_html, text_rich
from lstmlens.saturation import saturation
from lstmlens.states import States


def test_fractions_match_a_hand_count_over_valid_steps():
    lstm = torch.nn.LSTM(3, 5, batch_first=True, bidirectional=True)
    with torch.no_grad():
        lstm.bias_ih_l0[5:10] += 3.0  # forget gates mostly open
    lengths = [7, 4, 2]
    tr = lstmlens.trace(lstm, torch.randn(3, 7, 3) * 3, lengths=lengths)
    sat = saturation(tr)
    for d in ("forward", "backward"):
        for g in ("input_gate", "forget_gate", "output_gate"):
            key = f"layers.0.{d}.{g}"
            v = tr[key].numpy()
            valid = np.concatenate([v[b, :n] for b, n in enumerate(lengths)])  # (13, 5)
            low = [sum(valid[t, u] < 0.1 for t in range(13)) / 13 for u in range(5)]
            high = [sum(valid[t, u] > 0.9 for t in range(13)) / 13 for u in range(5)]
            np.testing.assert_allclose(sat.left[key], low)
            np.testing.assert_allclose(sat.right[key], high)
    assert sat.steps == 13
    assert sat.layers() == ["layers.0.forward", "layers.0.backward"]
    rows = {(r["layer"], r["gate"]): r for r in sat.summary()}
    assert rows[("layers.0.forward", "forget_gate")]["right_mean"] == pytest.approx(
        sat.right["layers.0.forward.forget_gate"].mean())
    assert "&lt; 0.1" in sat.to_html()


def test_plot_is_labelled(tmp_path):
    tr = lstmlens.trace(torch.nn.LSTM(2, 4, num_layers=2, batch_first=True),
                        torch.randn(2, 6, 2))
    fig = saturation(tr).plot(tmp_path / "s.png")
    assert (tmp_path / "s.png").stat().st_size > 1000
    assert len(fig.axes) == 2
    assert "left-saturated" in fig.axes[0].get_xlabel()
    assert "right-saturated" in fig.axes[0].get_ylabel()
    assert fig.axes[0].get_title() == "layers.0.forward"


def test_bad_input():
    st = States(tokens=[["a"]], series={"l.layers.0.forward.cell": [np.zeros((1, 2))]})
    with pytest.raises(InputError, match="no gate series"):
        saturation(st)
    with pytest.raises(InputError, match="low"):
        saturation(st, low=0.9, high=0.1)
    with pytest.raises(InputError, match="States"):
        saturation([1, 2])


def test_heatmaps(tmp_path):
    toks = ["<script>", "a", "\n", "b"]
    page = text_html(toks, np.array([0.5, -0.5, 0.0, 1.0]), title="<b>unit</b>")
    assert "&lt;script&gt;" in page and "<script>" not in page and "&lt;b&gt;" in page
    assert str(text_rich(toks, np.zeros(4))).startswith("<script>a")
    with pytest.raises(InputError, match="one value per token"):
        text_html(toks, np.zeros(3))
    fig = plot_units_time(np.random.randn(10, 6), list("abcdefghij"), tmp_path / "u.png",
                          units=[0, 5])
    assert fig.axes[0].get_ylabel() == "unit" and "time" in fig.axes[0].get_xlabel()
    with pytest.raises(InputError, match="out of range"):
        plot_units_time(np.zeros((3, 2)), units=[4])
    fig = plot_time_feature(np.random.randn(30, 12), tmp_path / "f.png", label="forget gate",
                            feature_names=[f"c{i}" for i in range(12)])
    assert fig.axes[1].get_ylabel() == "forget gate"  # the colour bar
    assert (tmp_path / "f.png").stat().st_size > 1000


def test_cli_saturation_and_search(tmp_path):
    from neurons_helpers import SOURCE, char_lm
    from typer.testing import CliRunner

    from lstmlens.cli import app
    model_dir = char_lm(tmp_path / "lm")
    corpus = tmp_path / "c.py"
    corpus.write_text(SOURCE[:3000])
    runner = CliRunner()
    res = runner.invoke(app, ["neurons", "saturation", str(model_dir), "--corpus", str(corpus),
                              "--png", str(tmp_path / "s.png")])
    assert res.exit_code == 0, res.output
    assert "forget" in res.output and (tmp_path / "s.png").exists()
    res = runner.invoke(app, ["neurons", "search", str(model_dir), "--corpus", str(corpus),
                              "--feature", "bracket_depth", "--metric", "correlation",
                              "--json"])
    assert res.exit_code == 0 and '"units"' in res.output
    res = runner.invoke(app, ["neurons", "search", str(model_dir), "--corpus", str(corpus),
                              "--feature", "nonsense"])
    assert res.exit_code == 1 and "unknown feature" in res.output
    assert "Traceback" not in res.output
