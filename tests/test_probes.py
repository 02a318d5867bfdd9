import numpy as np
import pytest

from lstmlens.errors import InputError
from lstmlens.probes import DiagnosticProbe, control_labels


def test_control_labels_are_fixed_per_type_and_follow_the_distribution():
    types = [f"w{i % 50}" for i in range(5000)]
    y = np.array([i % 4 == 0 for i in range(5000)], dtype=int)  # 25 % positive
    yc = control_labels(types, y, seed=1)
    for t in set(types):
        assert len({yc[i] for i in range(5000) if types[i] == t}) == 1
    per_type = np.array([yc[types.index(f"w{k}")] for k in range(50)])
    assert 0.05 < per_type.mean() < 0.5


def test_selective_probe_reads_the_state_not_the_type():
    rng = np.random.default_rng(0)
    N = 1500
    types = rng.integers(0, 30, N)  # word types carry no information about the property
    y = rng.integers(0, 2, N)
    X = rng.normal(size=(N, 8))
    X[:, 3] += 3 * y  # the property is written in unit 3
    probe = DiagnosticProbe().fit(X, y, types=types)
    assert probe.accuracy_ > 0.9
    assert probe.selectivity_ == pytest.approx(probe.accuracy_ - probe.control_accuracy_)
    assert probe.selectivity_ > 0.2
    assert probe.score(X, y) > 0.9
    assert probe.result().selectivity == pytest.approx(probe.selectivity_)


def test_memorising_types_is_not_selective():
    rng = np.random.default_rng(1)
    N = 1500
    types = rng.integers(0, 20, N)
    y = types % 2  # the property is a function of the type
    X = np.eye(20)[types] + rng.normal(scale=0.05, size=(N, 20))  # states encode the type
    probe = DiagnosticProbe().fit(X, y, types=types)
    assert probe.accuracy_ > 0.95 and probe.control_accuracy_ > 0.95
    assert abs(probe.selectivity_) < 0.05


def test_bad_input():
    X = np.zeros((10, 3))
    with pytest.raises(InputError, match="classes"):
        DiagnosticProbe().fit(X, np.linspace(0, 1, 10))
    with pytest.raises(InputError, match="single class"):
        DiagnosticProbe().fit(X, np.zeros(10))
    with pytest.raises(InputError, match="X"):
        DiagnosticProbe().fit(X, np.zeros(9))
    with pytest.raises(InputError, match="not fitted"):
        DiagnosticProbe().predict(X)
    p = DiagnosticProbe().fit(np.random.randn(40, 3), np.arange(40) % 2)
    assert np.isnan(p.control_accuracy_) and np.isnan(p.selectivity_)
    assert p.get_params()["C"] == 1.0
