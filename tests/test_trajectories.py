import numpy as np
import pytest

from lstmlens.errors import InputError
from lstmlens.states import States
from lstmlens.trajectories import trajectories


def test_pca_projection_matches_numpy(tmp_path):
    rng = np.random.default_rng(0)
    base = rng.normal(size=(2, 6))
    seqs = [np.outer(np.linspace(-1, 1, n), base[0]) + 0.1 * rng.normal(size=(n, 6))
            for n in (8, 12, 5)]
    st = States(tokens=[[f"t{i}" for i in range(len(s))] for s in seqs],
                series={"m.layers.0.forward.hidden": seqs})
    tr = trajectories(st, components=2)
    X = np.concatenate(seqs)
    cov_vals = np.linalg.eigvalsh(np.cov(X.T, bias=True))[::-1]
    np.testing.assert_allclose(tr.explained, cov_vals[:2] / cov_vals.sum(), rtol=1e-8)
    assert tr.explained[0] > 0.8  # one direction dominates by construction
    np.testing.assert_allclose(tr.points[1], tr.project(seqs[1]))
    assert tr.points[2].shape == (5, 2)
    fig = tr.plot(tmp_path / "t.png")
    assert "PC1" in fig.axes[0].get_xlabel()
    tr.plot(labels=["a", "b", "a"])
    with pytest.raises(InputError, match="labels"):
        tr.plot(labels=["a"])
    with pytest.raises(InputError, match="components"):
        trajectories(st, components=7)
