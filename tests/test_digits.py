"""Spoken digits: WAV reading, MFCC frames, espeak-ng synthesis, real recordings, the task.

Needs the Debian packages ``espeak-ng`` and ``asterisk-core-sounds-en-wav`` for the tests
that synthesise or read the real recordings (they are skipped, naming the package, without).

The quick task (24 training speakers, 5 validation, 8 test; each says the ten words once;
one bidirectional LSTM layer of 32 units, 10 epochs) reached held-out-voice accuracies of
0.95, 1.0 and 0.875 (80 test utterances) for seeds 0, 1, 2 on the development machine; the
test asks for ≥ 0.7, seven times chance (0.1), and for beating the majority baseline (0.1)
by 0.5.
"""

from __future__ import annotations

import os
import shutil
import struct
import wave
from pathlib import Path

import numpy as np
import pytest
import torch

import lstmlens
from lstmlens.audio import FeatureSettings, mfcc_frames, read_wav, resample, trim_silence
from lstmlens.datasets.digits import (
    DIGIT_WORDS,
    VoiceSetting,
    find_real_recordings,
    load_digits,
    load_real_digits,
    synthesize,
    voice_plan,
)
from lstmlens.datasets.fetch import DataUnavailableError
from lstmlens.errors import InputError
from lstmlens.tasks.digits import NearestCentroid, predict_audio, segment_means, train_digits

QUICK_ACCURACY = 0.7
HAS_ESPEAK = shutil.which("espeak-ng") is not None
HAS_RECORDINGS = bool(find_real_recordings())
needs_espeak = pytest.mark.skipif(not HAS_ESPEAK, reason="apt-get install espeak-ng")
needs_recordings = pytest.mark.skipif(
    not HAS_RECORDINGS, reason="apt-get install asterisk-core-sounds-en-wav")


def write_wav(path: Path, x: np.ndarray, rate: int = 8000) -> Path:
    with wave.open(os.fspath(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((np.clip(x, -1, 1) * 32767).astype("<i2").tobytes())
    return path


def tone(seconds: float = 0.5, rate: int = 8000, freq: float = 440.0) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return 0.5 * np.sin(2 * np.pi * freq * t)


# ------------------------------------------------------------------ audio


def test_mfcc_frames_of_sine_and_noise():
    rng = np.random.default_rng(0)
    sine = tone(1.0, 16000)
    noise = rng.normal(scale=0.1, size=16000)
    a = mfcc_frames(sine, sample_rate=16000)
    b = mfcc_frames(noise, sample_rate=16000)
    assert a.dtype == np.float32 and a.shape[1] == FeatureSettings().n_features == 26
    assert 95 <= len(a) <= 100 and 95 <= len(b) <= 100  # 1 s at 10 ms hop, 25 ms windows
    assert np.isfinite(a).all() and np.isfinite(b).all()
    np.testing.assert_array_equal(a, mfcc_frames(sine, sample_rate=16000))  # deterministic
    assert not np.allclose(a[:, 1:13].std(0), b[:, 1:13].std(0))  # a tone is not noise
    # cepstral mean normalisation: the static coefficients average zero over the utterance
    np.testing.assert_allclose(a[:, :13].mean(0), 0.0, atol=1e-4)
    plain = mfcc_frames(sine, sample_rate=16000, settings=FeatureSettings(deltas=False))
    assert plain.shape == (len(a), 13)
    warped = mfcc_frames(sine, sample_rate=16000, warp=1.1)
    assert warped.shape == a.shape and not np.allclose(warped, a)
    with pytest.raises(InputError, match="warp"):
        mfcc_frames(sine, sample_rate=16000, warp=0.0)


def test_mfcc_same_for_file_and_array(tmp_path):
    x = tone(0.4) * np.hanning(3200)
    path = write_wav(tmp_path / "t.wav", x)
    y, rate = read_wav(path)
    assert rate == 8000 and np.abs(y - x).max() < 1e-4
    np.testing.assert_allclose(mfcc_frames(path), mfcc_frames(y, sample_rate=8000))


def test_resample_and_trim():
    assert resample(np.zeros(22050), 22050, 8000).shape == (8000,)
    # a 1 kHz tone keeps its frequency through 22.05 → 8 kHz
    y = resample(tone(1.0, 22050, 1000.0), 22050, 8000)
    assert abs(np.argmax(np.abs(np.fft.rfft(y))) * 8000 / len(y) - 1000) < 2
    x = np.concatenate([np.zeros(4000), tone(0.25), np.zeros(4000)])
    kept = trim_silence(x, 8000)
    assert 2000 <= len(kept) <= 2000 + 2 * 160 + 80  # the tone plus ≤ 20 ms margins
    with pytest.raises(InputError, match="silent"):
        mfcc_frames(np.zeros(8000), sample_rate=8000)


def test_mfcc_refuses_bad_arrays(tmp_path):
    with pytest.raises(InputError, match="sample_rate"):
        mfcc_frames(tone())
    with pytest.raises(InputError, match="1-D"):
        mfcc_frames(np.zeros((100, 2)), sample_rate=8000)
    with pytest.raises(InputError, match="NaN"):
        mfcc_frames(np.full(800, np.nan), sample_rate=8000)
    with pytest.raises(InputError, match="header"):
        mfcc_frames(write_wav(tmp_path / "a.wav", tone()), sample_rate=8000)


def test_read_wav_errors(tmp_path):
    good = write_wav(tmp_path / "good.wav", tone(0.5))
    data = good.read_bytes()
    (tmp_path / "cut.wav").write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="truncated"):
        read_wav(tmp_path / "cut.wav")
    (tmp_path / "head.wav").write_bytes(data[:30])
    with pytest.raises(InputError, match="truncated|empty"):
        read_wav(tmp_path / "head.wav")
    (tmp_path / "empty.wav").write_bytes(b"")
    with pytest.raises(InputError, match="empty"):
        read_wav(tmp_path / "empty.wav")
    (tmp_path / "text.wav").write_text("not audio at all, just some text here")
    with pytest.raises(InputError, match="PCM"):
        read_wav(tmp_path / "text.wav")
    # an IEEE-float WAV (format tag 3) is refused, naming what is accepted
    payload = np.zeros(800, "<f4").tobytes()
    fmt = struct.pack("<HHIIHH", 3, 1, 8000, 32000, 4, 32)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack(
        "<I", len(payload)) + payload
    (tmp_path / "float.wav").write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    with pytest.raises(InputError, match="integer-PCM"):
        read_wav(tmp_path / "float.wav")
    with pytest.raises(InputError, match="does not exist"):
        read_wav(tmp_path / "missing.wav")


# ------------------------------------------------------------------ data


def test_voice_plan_holds_out_variants():
    voices = ["en", "en-us", "en-gb"]
    variants = [f"v{k}" for k in range(40)]
    plan = voice_plan(voices, variants, (20, 5, 5), seed=3)
    assert plan == voice_plan(voices, variants, (20, 5, 5), seed=3)
    assert plan != voice_plan(voices, variants, (20, 5, 5), seed=4)
    used = {s: {v.variant for v in plan[s]} for s in plan}
    assert not used["train"] & (used["validation"] | used["test"])
    assert not used["validation"] & used["test"]
    assert len({v.speaker for v in plan["train"]}) == 20  # distinct combinations


def test_find_real_recordings_in_a_folder(tmp_path):
    digits = tmp_path / "voice" / "digits"
    digits.mkdir(parents=True)
    for k in (0, 7):
        write_wav(digits / f"{k}.wav", tone(0.3, freq=300 + 100 * k))
    write_wav(tmp_path / "Nine.wav", tone(0.3))
    (tmp_path / "silence").mkdir()
    write_wav(tmp_path / "silence" / "1.wav", tone(0.3))  # not in a 'digits' folder: ignored
    os.symlink(tmp_path / "voice", tmp_path / "alias")  # the same files again: counted once
    found = find_real_recordings(tmp_path)
    assert [d for _, d in found] == [0, 7, 9]
    real, paths = load_real_digits(tmp_path)
    assert real.labels.tolist() == [0, 7, 9] and len(paths) == 3
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataUnavailableError, match="asterisk-core-sounds-en-wav"):
        load_real_digits(tmp_path / "empty")


@needs_recordings
def test_real_recordings_found():
    found = find_real_recordings()
    assert len(found) >= 10
    assert sorted({d for _, d in found}) == list(range(10))
    real, _ = load_real_digits()
    assert all(np.isfinite(x).all() and x.shape[1] == 26 and len(x) > 20 for x in real.inputs)


@needs_espeak
def test_espeak_synthesises_a_word():
    x, rate = synthesize("seven", VoiceSetting("gmw/en-US", "f3", 150, 50))
    assert rate > 8000 and 0.2 < len(x) / rate < 2.0 and np.abs(x).max() > 0.05
    y, _ = synthesize("seven", VoiceSetting("gmw/en-US", "f3", 150, 50))
    np.testing.assert_array_equal(x, y)  # espeak-ng is deterministic
    z, _ = synthesize("seven", VoiceSetting("gmw/en-US", "f3", 150, 80))
    assert len(z) != len(x) or not np.array_equal(z, x)  # pitch changes the audio
    assert mfcc_frames(x, sample_rate=rate).shape[1] == 26


def test_missing_espeak_names_the_package(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", os.fspath(tmp_path))
    with pytest.raises(DataUnavailableError, match="apt-get install espeak-ng"):
        load_digits(quick=True, cache_dir=tmp_path)
    with pytest.raises(DataUnavailableError, match="espeak-ng not found"):
        synthesize("one")


def test_segment_means_and_centroids():
    assert segment_means(np.arange(6.0)[:, None]).tolist() == [0.5, 2.5, 4.5]
    assert segment_means(np.ones((1, 2))).shape == (6,)  # shorter than the parts
    rng = np.random.default_rng(0)
    xs = [rng.normal(loc=k, size=(int(rng.integers(3, 9)), 2)) for k in range(3) for _ in range(5)]
    data = lstmlens.datasets.SequenceData(xs, np.repeat(np.arange(3), 5))
    assert NearestCentroid().fit(data).accuracy(data) == 1.0


# ------------------------------------------------------------------ the task


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    if not (HAS_ESPEAK and HAS_RECORDINGS):
        pytest.skip("apt-get install espeak-ng asterisk-core-sounds-en-wav")
    root = tmp_path_factory.mktemp("digits")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LSTMLENS_CACHE", os.fspath(root / "cache"))
        result = train_digits(root / "model", quick=True, seed=0, progress=False)
        again = load_digits(quick=True, seed=0)
    return result, again


@pytest.mark.slow
def test_quick_model_beats_chance_on_held_out_voices(quick_run):
    result, _ = quick_run
    m = result.metrics
    acc = m["test"]["accuracy"]
    assert acc >= QUICK_ACCURACY, m["test"]
    assert acc >= m["baselines"]["majority"]["accuracy"] + 0.5
    real = m["real_recordings"]
    assert real["count"] >= 10 and 0.0 <= real["accuracy"] <= 1.0
    assert {p["truth"] for p in real["predictions"]} == set(DIGIT_WORDS)
    assert 0.0 <= m["baselines"]["nearest_centroid_segment_means"]["accuracy"] <= 1.0
    meta = lstmlens.load(result.out).meta
    assert meta["classes"] == list(DIGIT_WORDS) and meta["data"]["espeak_ng_version"]
    held = {s: {v["variant"] for v in meta["data"]["speakers"][s]} for s in ("train", "test")}
    assert not held["train"] & held["test"]


@pytest.mark.slow
def test_quick_data_is_cached_and_identical(quick_run):
    result, again = quick_run
    assert again.source["synthesis_cached"]
    assert len(again.train) == 240 and len(again.test) == 80
    model = result.model
    assert result.metrics["synthesis_cached"] is False
    # the cached features give the same test accuracy as the freshly synthesised ones
    accuracy = lstmlens.training.evaluate(model, again.test)["accuracy"]
    assert accuracy == result.metrics["test"]["accuracy"]


@pytest.mark.slow
def test_trace_and_predict_audio(quick_run):
    result, _ = quick_run
    model = lstmlens.load(result.out)
    path = find_real_recordings()[7][0]
    x = torch.from_numpy(mfcc_frames(path))[None]
    tr = lstmlens.trace(model, x, torch.tensor([x.shape[1]]))
    gate = tr["lstms.0.layers.0.forward.forget_gate"]
    assert gate.shape == (1, x.shape[1], model.config.hidden_sizes[0])
    assert ((gate >= 0) & (gate <= 1)).all()
    word, probs = predict_audio(result.out, path)
    assert word in DIGIT_WORDS and set(probs) == set(DIGIT_WORDS)
    assert abs(sum(probs.values()) - 1) < 1e-5 and probs[word] == max(probs.values())
    assert predict_audio(model, path) == (word, probs)
    model.meta = {}
    with pytest.raises(InputError, match="digits"):
        predict_audio(model, path)
