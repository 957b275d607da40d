import numpy as np
import pytest
import soundfile as sf

from speech.features import FeatureCache, FeatureConfig, compute_features, extract_features
from tests.conftest import tone_speech


def test_shape_frames_and_normalisation():
    config = FeatureConfig()
    wave = tone_speech("abc")
    features = compute_features(wave, config)
    assert features.shape == (config.num_frames(len(wave)), 26)
    assert features.dtype == np.float32
    assert np.allclose(features.mean(0), 0, atol=1e-4)
    assert np.allclose(features.std(0), 1, atol=1e-2)


def test_silence_and_very_short_clips_are_defined():
    config = FeatureConfig()
    assert np.allclose(compute_features(np.zeros(16000, np.float32), config), 0, atol=1e-6)
    short = compute_features(np.ones(160, np.float32) * 0.1, config)  # 10 ms
    assert short.shape == (2, 26) and np.all(np.isfinite(short))


def test_config_is_respected():
    features = compute_features(tone_speech("ab"), FeatureConfig(n_mfcc=13, n_mels=32, hop_length=320))
    assert features.shape[1] == 13


def test_cache_reuses_and_rebuilds_corrupt_entries(tmp_path):
    config = FeatureConfig()
    audio = tmp_path / "a.wav"
    sf.write(audio, tone_speech("hello"), 16000)
    cache = FeatureCache(tmp_path / "cache", config)
    entry, first = cache.get_or_compute(str(audio))
    mtime = entry.stat().st_mtime_ns
    entry2, again = cache.get_or_compute(str(audio))
    assert entry2 == entry and entry.stat().st_mtime_ns == mtime and np.array_equal(first, again)
    entry.write_bytes(entry.read_bytes()[:50])  # a torn write
    _, rebuilt = cache.get_or_compute(str(audio))
    assert np.array_equal(rebuilt, first)
    # Another feature config is another entry.
    assert FeatureCache(tmp_path / "cache", FeatureConfig(n_mfcc=13)).path_for(str(audio)) != entry


def test_cache_key_follows_the_audio_content(tmp_path):
    audio = tmp_path / "a.wav"
    sf.write(audio, tone_speech("hello"), 16000)
    cache = FeatureCache(tmp_path / "cache", FeatureConfig())
    before = cache.path_for(str(audio))
    sf.write(audio, tone_speech("other words"), 16000)
    assert cache.path_for(str(audio)) != before


@pytest.mark.parametrize("jobs", [1, 2])
def test_parallel_extraction_reports_bad_files_and_keeps_order(tmp_path, jobs, monkeypatch):
    monkeypatch.setattr("speech.features.PARALLEL_MIN_FILES", 2)  # use the process pool even for 11 files
    paths = []
    for i in range(10):
        p = tmp_path / f"{i}.wav"
        sf.write(p, tone_speech("ab" * (i + 1)), 16000)
        paths.append(str(p))
    (tmp_path / "bad.wav").write_bytes(b"garbage" * 20)
    paths.insert(3, str(tmp_path / "bad.wav"))
    results = extract_features(paths, FeatureConfig(), tmp_path / "cache", jobs=jobs)
    assert [r.audio_path for r in results] == paths
    assert results[3].error and "decode" in results[3].error
    good = [r for r in results if not r.error]
    assert len(good) == 10 and all(np.load(r.cache_path).shape[0] == r.num_frames for r in good)


def test_a_float_file_scaled_far_outside_one_gives_the_features_of_its_shape():
    # Samples of 1e20 (a float file written without scaling) would overflow the power spectrum to inf, and
    # the transcript's confidence to NaN (invalid JSON); the features are normalised per utterance anyway.
    wave = tone_speech("go left")
    config = FeatureConfig()
    plain = compute_features(wave, config)
    np.testing.assert_allclose(compute_features(wave * np.float32(1e20), config), plain, atol=1e-3)
    spike = wave.copy()
    spike[100] = 3e38
    assert np.all(np.isfinite(compute_features(spike, config)))
