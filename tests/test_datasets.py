"""Tests for lstmlens.datasets: the pinned-PyPI fetch layer and the Japanese Vowels loader."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import shutil
import subprocess
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest

from lstmlens.datasets import (
    DataUnavailableError,
    PinnedSource,
    SequenceData,
    Splits,
    cache_dir,
    extract_member,
    fetch,
    load_japanese_vowels,
)
from lstmlens.datasets import japanese_vowels as jv
from lstmlens.datasets.fetch import ChecksumError, pip_command, read_member, sha256_file

SRC = jv.SOURCE
MEMBER_DIR = "sktime/datasets/data/JapaneseVowels"


# ---------------------------------------------------------------------------- helpers


@pytest.fixture(scope="session")
def jv_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache populated once per session by the real download (wheel + processed npz)."""
    root = tmp_path_factory.mktemp("jv-cache")
    load_japanese_vowels(cache_dir=root)
    return root


def _wheel(root: Path) -> Path:
    return root / "downloads" / SRC.filename


def _copy_cache(src: Path, dst: Path, processed: bool = True) -> Path:
    (dst / "downloads").mkdir(parents=True)
    shutil.copy2(_wheel(src), _wheel(dst))
    if processed:
        shutil.copytree(src / "processed", dst / "processed")
    return dst


def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: object, **kwargs: object) -> None:
        raise AssertionError("subprocess.run called: the network would have been used")

    monkeypatch.setattr(subprocess, "run", fail)


def _fake_pip(monkeypatch: pytest.MonkeyPatch, payload: bytes | None, rc: int = 0) -> list:
    """Replace subprocess.run by a fake pip that writes ``payload`` as the wheel."""
    calls: list = []

    def run(cmd: list[str], **kwargs: object) -> subprocess.CompletedProcess:
        calls.append(cmd)
        if payload is not None:
            (Path(cmd[cmd.index("--dest") + 1]) / SRC.filename).write_bytes(payload)
        return subprocess.CompletedProcess(cmd, rc, "", "ERROR: Network is unreachable")

    monkeypatch.setattr(subprocess, "run", run)
    return calls


def _same(a: Splits, b: Splits) -> bool:
    return all(
        np.array_equal(x.labels, y.labels)
        and all(np.array_equal(p, q) for p, q in zip(x.inputs, y.inputs, strict=True))
        for x, y in [(a.train, b.train), (a.validation, b.validation), (a.test, b.test)]
    )


# ------------------------------------------------------------------------ real data


@pytest.mark.slow
def test_real_download_gives_the_official_set(
    jv_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LSTMLENS_CACHE", str(jv_cache))
    _no_network(monkeypatch)
    assert sha256_file(_wheel(jv_cache)) == SRC.sha256
    s = load_japanese_vowels()
    assert isinstance(s, Splits)
    assert len(s.train) + len(s.validation) == 270 and len(s.test) == 370
    assert (len(s.train), len(s.validation)) == (225, 45)
    assert s.classes == [f"speaker {k}" for k in range(1, 10)]
    assert s.feature_names == [f"lpc_{k}" for k in range(1, 13)]
    for sd in (s.train, s.validation, s.test):
        assert set(sd.labels.tolist()) == set(range(9)) and sd.labels.dtype == np.int64
        assert all(x.dtype == np.float32 and x.ndim == 2 and x.shape[1] == 12 for x in sd.inputs)
        assert sd.lengths.min() >= 7 and sd.lengths.max() <= 29
    assert np.bincount(s.test.labels).tolist() == [31, 35, 88, 44, 29, 24, 40, 50, 29]
    first = s.train.inputs[0]  # the first line of JapaneseVowels_TRAIN.ts (speaker 1)
    assert first.shape == (20, 12) and s.train.labels[0] == 0
    expected = [[1.860936, -0.207383, 0.261557], [1.891651, -0.193249, 0.235363]]
    np.testing.assert_allclose(first[:2, :3], expected, rtol=1e-6)
    assert set(s.source) >= {"name", "requirement", "sha256", "licence", "citation"}
    assert s.source["requirement"] == "sktime==1.2.0" and s.source["sha256"] == SRC.sha256


@pytest.mark.slow
def test_second_call_reads_the_cache(
    jv_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LSTMLENS_CACHE", str(_copy_cache(jv_cache, tmp_path / "c")))
    reference = load_japanese_vowels(cache_dir=jv_cache)
    _no_network(monkeypatch)

    def no_parse(text: str) -> None:
        raise AssertionError("parsed again")

    monkeypatch.setattr(jv, "parse_ts", no_parse)
    assert _same(load_japanese_vowels(), reference)


@pytest.mark.slow
def test_cached_wheel_without_processed_file(
    jv_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _copy_cache(jv_cache, tmp_path / "c", processed=False)
    _no_network(monkeypatch)
    s = load_japanese_vowels(cache_dir=root)
    assert _same(s, load_japanese_vowels(cache_dir=jv_cache))
    assert (root / "processed" / f"japanese_vowels-{SRC.sha256[:12]}.npz").is_file()


@pytest.mark.slow
def test_processed_npz_is_compact_and_pickle_free(jv_cache: Path) -> None:
    (path,) = (jv_cache / "processed").glob("*.npz")
    assert path.name == f"japanese_vowels-{SRC.sha256[:12]}.npz"
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    assert all(a.dtype != object for a in arrays.values())
    for split, n in (("train", 270), ("test", 370)):
        values, offsets = arrays[f"{split}_values"], arrays[f"{split}_offsets"]
        assert values.dtype == np.float32 and values.shape[1] == 12
        assert offsets.dtype == np.int64 and len(offsets) == n + 1 and offsets[-1] == len(values)
    assert not list((jv_cache / "processed").glob(".*"))  # no temp files left


@pytest.mark.slow
def test_corrupt_processed_file_is_rebuilt(
    jv_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _copy_cache(jv_cache, tmp_path / "c")
    (npz,) = (root / "processed").glob("*.npz")
    npz.write_bytes(b"not a zip file")
    _no_network(monkeypatch)
    assert _same(load_japanese_vowels(cache_dir=root), load_japanese_vowels(cache_dir=jv_cache))


@pytest.mark.slow
def test_corrupted_cached_wheel_is_detected_and_refetched(
    jv_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _copy_cache(jv_cache, tmp_path / "c", processed=False)
    raw = bytearray(_wheel(root).read_bytes())
    raw[1000:1010] = bytes(b ^ 0xFF for b in raw[1000:1010])
    _wheel(root).write_bytes(bytes(raw))
    calls = _fake_pip(monkeypatch, _wheel(jv_cache).read_bytes())
    assert fetch(SRC, root) == _wheel(root)
    assert len(calls) == 1 and sha256_file(_wheel(root)) == SRC.sha256
    assert [p.name for p in (root / "downloads").iterdir()] == [SRC.filename]


@pytest.mark.slow
def test_corrupted_cached_wheel_real_refetch(jv_cache: Path, tmp_path: Path) -> None:
    root = _copy_cache(jv_cache, tmp_path / "c", processed=False)
    with open(_wheel(root), "r+b") as fh:
        fh.seek(4096)
        fh.write(b"\x00" * 16)
    assert sha256_file(fetch(SRC, root)) == SRC.sha256


def test_pip_delivers_a_file_with_the_wrong_sha(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_pip(monkeypatch, b"tampered")
    with pytest.raises(ChecksumError) as info:
        fetch(SRC, tmp_path)
    msg = str(info.value)
    assert SRC.sha256 in msg and hashlib.sha256(b"tampered").hexdigest() in msg
    assert not _wheel(tmp_path).exists()
    assert list((tmp_path / "downloads").iterdir()) == []


def test_pip_failure_message_says_how_to_provide_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_pip(monkeypatch, None, rc=1)
    with pytest.raises(DataUnavailableError) as info:
        fetch(SRC, tmp_path)
    msg = str(info.value)
    needed = ["japanese_vowels", "pip download", "--no-deps", "--only-binary", "sktime==1.2.0"]
    needed += ["Network is unreachable", "data=", "--data PATH", str(_wheel(tmp_path))]
    for part in needed:
        assert part in msg, part
    assert list((tmp_path / "downloads").iterdir()) == []


def test_pip_timeout_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def slow(cmd: list[str], **kwargs: object) -> None:
        raise subprocess.TimeoutExpired(cmd, 1.0)

    monkeypatch.setattr(subprocess, "run", slow)
    with pytest.raises(DataUnavailableError, match="did not finish within 1 s"):
        fetch(SRC, tmp_path, timeout=1.0)


def test_pip_command_flags() -> None:
    wheel = pip_command(SRC, "/d")
    assert wheel[1:4] == ["-m", "pip", "download"] and "--no-deps" in wheel
    assert wheel[wheel.index("--only-binary") + 1] == ":all:" and wheel[-1] == "sktime==1.2.0"
    sdist = pip_command(dataclasses.replace(SRC, kind="sdist"), "/d")
    assert sdist[sdist.index("--no-binary") + 1] == ":all:" and "--only-binary" not in sdist


def test_pinned_source_validation() -> None:
    assert isinstance(SRC, PinnedSource) and SRC.kind == "wheel"
    with pytest.raises(ValueError, match="kind"):
        dataclasses.replace(SRC, kind="egg")
    with pytest.raises(ValueError, match="sha256"):
        dataclasses.replace(SRC, sha256="abc")
    with pytest.raises(dataclasses.FrozenInstanceError):
        SRC.name = "x"  # type: ignore[misc]


def test_cache_dir_resolution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LSTMLENS_CACHE", str(tmp_path / "c"))
    assert cache_dir() == tmp_path / "c"
    monkeypatch.delenv("LSTMLENS_CACHE")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert cache_dir() == tmp_path / ".cache" / "lstmlens"


# ------------------------------------------------------------------------- data=


@pytest.mark.slow
def test_data_dir_with_ts_files_works_offline(
    jv_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("JapaneseVowels_TRAIN.ts", "JapaneseVowels_TEST.ts"):
        extract_member(_wheel(jv_cache), f"{MEMBER_DIR}/{name}", tmp_path / "x")
    monkeypatch.setenv("LSTMLENS_CACHE", str(tmp_path / "empty"))
    _no_network(monkeypatch)
    s = load_japanese_vowels(data=tmp_path / "x" / MEMBER_DIR)
    assert _same(s, load_japanese_vowels(cache_dir=jv_cache))
    assert not (tmp_path / "empty").exists()


@pytest.mark.slow
def test_data_wheel_works_offline(
    jv_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _no_network(monkeypatch)
    s = load_japanese_vowels(cache_dir=tmp_path, data=str(_wheel(jv_cache)))
    assert _same(s, load_japanese_vowels(cache_dir=jv_cache))
    assert len(list((tmp_path / "processed").glob("*.npz"))) == 1


def test_data_wheel_with_wrong_sha(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _no_network(monkeypatch)
    fake = tmp_path / SRC.filename
    fake.write_bytes(b"PK\x05\x06" + b"\x00" * 18)
    with pytest.raises(ChecksumError, match="expected " + SRC.sha256):
        load_japanese_vowels(cache_dir=tmp_path, data=fake)


def test_missing_data_path_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _no_network(monkeypatch)
    with pytest.raises(DataUnavailableError, match="does not exist"):
        load_japanese_vowels(cache_dir=tmp_path, data=tmp_path / "nope.whl")
    (tmp_path / "d").mkdir()
    with pytest.raises(DataUnavailableError, match="JapaneseVowels_TRAIN.ts"):
        load_japanese_vowels(cache_dir=tmp_path, data=tmp_path / "d")


@pytest.mark.slow
def test_split_is_seeded_and_stratified(jv_cache: Path) -> None:
    a = load_japanese_vowels(cache_dir=jv_cache, seed=3)
    assert _same(a, load_japanese_vowels(cache_dir=jv_cache, seed=3))
    b = load_japanese_vowels(cache_dir=jv_cache, seed=4)
    assert not _same(a, b) and len(b.validation) == len(a.validation) == 45
    assert np.bincount(a.validation.labels).tolist() == [5] * 9
    none = load_japanese_vowels(cache_dir=jv_cache, validation_fraction=0.0)
    assert len(none.validation) == 0 and len(none.train) == 270
    for bad in (-0.1, 1.0):
        with pytest.raises(ValueError, match="validation_fraction"):
            load_japanese_vowels(cache_dir=jv_cache, validation_fraction=bad)


def test_sequence_data_checks_lengths() -> None:
    sd = SequenceData([np.zeros((3, 2), np.float32), np.zeros((5, 2), np.float32)], [1, 0])
    assert len(sd) == 2 and sd.lengths.tolist() == [3, 5] and sd.labels.dtype == np.int64
    with pytest.raises(ValueError, match="one entry per sequence"):
        SequenceData([np.zeros((3, 2))], np.array([0, 1]))


# ---------------------------------------------------------------------- .ts parser

TS = """# a comment
@problemName Toy
@timeStamps false
@univariate false
@dimensions 2
@equalLength false
@classLabel true 1 2

@data
1.0,2.0,3.0:4,5,6:2
# comment inside data

-1e-3,7:8,9:1
"""


def test_parse_ts_basic() -> None:
    ts = jv.parse_ts(TS)
    assert ts.labels == ["2", "1"] and ts.class_labels == ["1", "2"]
    assert ts.header["problemname"] == "Toy" and ts.header["dimensions"] == "2"
    assert [x.shape for x in ts.inputs] == [(3, 2), (2, 2)]
    assert ts.inputs[0].dtype == np.float32
    np.testing.assert_array_equal(ts.inputs[0], [[1, 4], [2, 5], [3, 6]])
    np.testing.assert_allclose(ts.inputs[1], [[-1e-3, 8], [7, 9]])


def test_parse_ts_unlabelled_crlf_and_tabs() -> None:
    ts = jv.parse_ts("@classLabel\tfalse\r\n@DATA\r\n1,2:3,4\r\n")
    assert ts.labels == [None] and ts.inputs[0].shape == (2, 2)
    assert ts.header == {"classlabel": "false"}


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        (TS.replace("-1e-3,7:8,9:1", "-1e-3,x:8,9:1"), r"line 13, dimension 1: cannot parse"),
        (TS.replace("-1e-3,7:8,9:1", "1,?:8,9:1"), r"line 13, dimension 1: missing value"),
        (TS.replace("-1e-3,7:8,9:1", "1,2:3:4:1"), r"line 13: expected 2 dimensions"),
        (TS.replace("-1e-3,7:8,9:1", "1,2:3:1"), r"line 13: dimensions have different"),
        (TS.replace("-1e-3,7:8,9:1", "1,2:3,4:7"), r"line 13: class label '7' is not in"),
        (TS.replace("-1e-3,7:8,9:1", "1,2,:3,4,5:1"), r"line 13, dimension 1: cannot parse"),
        (TS.replace("@data\n", ""), r"line 9: expected a '@' header"),
        ("@problemName x\n", "no @data line"),
        ("@timeStamps true\n@data\n", "line 1: timestamped"),
        ("@dimensions two\n@data\n", "line 1: bad @dimensions"),
    ],
)
def test_parse_ts_errors_name_the_line(text: str, pattern: str) -> None:
    with pytest.raises(jv.TsFormatError, match=pattern):
        jv.parse_ts(text)


# ------------------------------------------------------------------- archives


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def _targz(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path


@pytest.mark.parametrize("maker", [_zip, _targz])
def test_extract_member_once_and_atomically(maker, tmp_path: Path) -> None:
    archive = maker(tmp_path / "a.whl", {"pkg/data/x.txt": b"hello", "pkg/y.txt": b"y"})
    out = extract_member(archive, "pkg/data/x.txt", tmp_path / "out")
    assert out == tmp_path / "out" / "pkg" / "data" / "x.txt" and out.read_bytes() == b"hello"
    out.write_bytes(b"kept")  # a second call does not extract again
    assert extract_member(archive, "pkg/data/x.txt", tmp_path / "out").read_bytes() == b"kept"
    assert [p.name for p in out.parent.iterdir()] == ["x.txt"]
    assert read_member(archive, "pkg/y.txt") == b"y"
    with pytest.raises(DataUnavailableError, match="is not in"):
        extract_member(archive, "pkg/missing.txt", tmp_path / "out")


@pytest.mark.parametrize("maker", [_zip, _targz])
@pytest.mark.parametrize("member", ["../evil.txt", "pkg/../../evil.txt", "/tmp/evil.txt"])
def test_extract_member_refuses_escapes(maker, member: str, tmp_path: Path) -> None:
    archive = maker(tmp_path / "a.bin", {member: b"evil"})
    with pytest.raises(ValueError, match="escapes"):
        extract_member(archive, member, tmp_path / "out")
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path / "out").exists()


def test_extract_member_rejects_non_archives(tmp_path: Path) -> None:
    (tmp_path / "f.txt").write_text("plain")
    with pytest.raises(DataUnavailableError, match="neither a zip nor a tar"):
        extract_member(tmp_path / "f.txt", "x", tmp_path / "out")
    with pytest.raises(DataUnavailableError, match="archive not found"):
        extract_member(tmp_path / "none.whl", "x", tmp_path / "out")
