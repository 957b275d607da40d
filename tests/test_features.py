from dataclasses import replace

import numpy as np
import pytest
import soundfile as sf

import speech.features
from speech.features import (
    TRIM_KEEP_SECONDS,
    FeatureCache,
    FeatureConfig,
    analysis_filters,
    compute_features,
    extract_features,
    log_mel,
    normalize_features,
    speech_bounds,
    speech_features,
    worker_pool,
)
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


def _librosa_features(wave: np.ndarray, config: FeatureConfig) -> np.ndarray:
    """The recipe straight through librosa's high-level calls (as the bundled model's features were first made)."""
    import librosa

    power = librosa.feature.melspectrogram(
        y=wave, sr=config.sample_rate, n_fft=config.n_fft, hop_length=config.hop_length,
        win_length=config.win_length, window="hann", center=True, pad_mode="constant", power=2.0,
        n_mels=config.n_mels, fmin=config.fmin, fmax=config.fmax, htk=False, norm="slaney")
    log_power = librosa.power_to_db(power, ref=1.0, amin=1e-10, top_db=None)
    mfcc = librosa.feature.mfcc(S=log_power, n_mfcc=config.n_mfcc, dct_type=2, norm="ortho").T.astype(np.float32)
    return normalize_features(mfcc) if config.normalize else mfcc


@pytest.mark.parametrize("config", [
    FeatureConfig(),
    FeatureConfig(hop_length=144),
    FeatureConfig(hop_length=176, fmax=7000.0),
    FeatureConfig(n_mels=32, n_mfcc=13, hop_length=320),
    FeatureConfig(fmin=20.0, fmax=6000.0, n_mels=64, n_mfcc=40, win_length=512),
    FeatureConfig(sample_rate=32000, n_fft=1024, win_length=800, hop_length=320),
    FeatureConfig(normalize=False),
], ids=lambda c: f"hop{c.hop_length}-mels{c.n_mels}-fmax{c.fmax}-fft{c.n_fft}-norm{c.normalize}")
def test_features_are_librosas_for_every_config(config):
    # The window and mel filterbank are built once per config and reused: every call, first or later, under any
    # config, must give the features that librosa's own melspectrogram + power_to_db + mfcc give (the bundled model
    # was trained on those), to float32 rounding.
    rng = np.random.default_rng(3)
    speech = tone_speech("the quick brown fox", sr=config.sample_rate)
    noise = (0.05 * rng.standard_normal(config.sample_rate // 3)).astype(np.float32)
    # A pure tone: its spectrum falls 100 dB and more away from the tone, where a float32 FFT's rounding (librosa
    # transforms in float64) would stand in for the true power.
    tone = (0.5 * np.sin(2 * np.pi * 440 * np.arange(config.sample_rate // 2) / config.sample_rate)).astype(np.float32)
    short = np.ones(160, np.float32) * 0.1  # two frames, each mostly padding
    raw = replace(config, normalize=False)
    for wave in (speech, noise, tone, short):
        expected = _librosa_features(wave, raw)
        for _ in range(2):
            features = compute_features(wave, raw)
            assert features.shape == expected.shape and features.dtype == np.float32
            np.testing.assert_allclose(features, expected, rtol=0, atol=1e-5 * float(np.max(np.abs(expected))))
    if config.normalize:  # normalised over many frames (over two, rounding is all that is left to scale up)
        for wave in (speech, noise, tone):
            np.testing.assert_allclose(compute_features(wave, config), _librosa_features(wave, config), rtol=0,
                                       atol=1e-4)


def _plain_log_mel(wave: np.ndarray, config: FeatureConfig) -> np.ndarray:
    """log_mel as it was written before it ran in blocks through reused buffers: the whole clip framed at once."""
    import librosa
    import scipy.fft

    window, mel = analysis_filters(config.sample_rate, config.n_fft, config.win_length, config.n_mels, config.fmin,
                                   config.fmax)
    frames = librosa.util.frame(np.pad(wave, config.n_fft // 2), frame_length=config.n_fft,
                                hop_length=config.hop_length, axis=0)
    power = np.abs(scipy.fft.rfft(frames * window, axis=-1).astype(np.complex64)) ** 2
    return 10.0 * np.log10(np.maximum((mel @ power.T).T, 1e-10))


@pytest.mark.parametrize("block", [256, 7, 1])
def test_log_mel_is_bit_for_bit_the_whole_clip_computation(monkeypatch, block):
    # The bundled model was trained on these features: blocks, reused buffers and the window's zero columns left out
    # of the product must not move a single bit, at block edges, at the clip's edges, at any length.
    monkeypatch.setattr(speech.features, "LOG_MEL_BLOCK_FRAMES", block)
    rng = np.random.default_rng(4)
    waves = [tone_speech("the quick brown fox"), (0.1 * rng.standard_normal(256 * 160 - 1)).astype(np.float32),
             (0.1 * rng.standard_normal(256 * 160)).astype(np.float32), np.ones(1, np.float32) * 0.2,
             (0.5 * np.sin(2 * np.pi * 440 * np.arange(8000) / 16000)).astype(np.float32)]
    for config in (FeatureConfig(), FeatureConfig(hop_length=148, fmax=7200.0), FeatureConfig(n_fft=400),
                   FeatureConfig(sample_rate=32000, n_fft=1024, win_length=800, hop_length=320)):
        for wave in waves:
            np.testing.assert_array_equal(log_mel(wave, config), _plain_log_mel(wave, config))


def test_threads_share_no_buffers():
    # Each thread frames through its own buffers: features computed side by side are those computed one by one.
    from concurrent.futures import ThreadPoolExecutor

    jobs = [(tone_speech(text, seed=i), FeatureConfig(hop_length=hop))
            for i, (text, hop) in enumerate([("abc", 160), ("hello world", 148), ("go left now", 132)] * 4)]
    expected = [compute_features(wave, config) for wave, config in jobs]
    with ThreadPoolExecutor(4) as pool:
        for _ in range(3):
            got = list(pool.map(lambda job: compute_features(*job), jobs))
            assert all(np.array_equal(a, b) for a, b in zip(got, expected))


def _plain_speech_bounds(wave: np.ndarray, threshold_db: float, floor_margin_db: float | None) -> tuple[int, int]:
    """speech_bounds as it was written before it ran in blocks: the frame levels of the whole wave at once."""
    frame, keep = 160, int(TRIM_KEEP_SECONDS * 16000)
    n = len(wave) // frame
    frames = wave[: n * frame].reshape(n, frame).astype(np.float64)
    frames -= frames.mean(axis=1, keepdims=True)
    energy = np.sqrt(np.mean(frames ** 2, axis=1) + 1e-12)
    level = 20 * np.log10(energy / (energy.max() + 1e-12))
    if floor_margin_db is not None:
        threshold_db = max(threshold_db, float(np.percentile(level, 10.0)) + floor_margin_db)
    loud = np.nonzero(level > threshold_db)[0]
    if len(loud) == 0:
        return 0, len(wave)
    return max(0, int(loud[0]) * frame - keep), min(len(wave), (int(loud[-1]) + 1) * frame + keep)


@pytest.mark.parametrize("block", [1024, 5])
def test_edge_cut_is_the_whole_wave_computation(monkeypatch, block):
    monkeypatch.setattr(speech.features, "TRIM_BLOCK_FRAMES", block)
    rng = np.random.default_rng(8)
    for _ in range(40):
        wave = (rng.uniform(1e-4, 0.5) * rng.standard_normal(int(rng.integers(160, 60000)))).astype(np.float32)
        wave[: int(rng.integers(0, len(wave) // 2))] *= np.float32(10 ** -rng.uniform(1, 4))  # quiet starts
        wave += np.float32(rng.uniform(-0.1, 0.1))  # and a DC offset
        for margin in (None, 3.0):
            assert speech_bounds(wave, 16000, -45.0, floor_margin_db=margin) == _plain_speech_bounds(wave, -45.0,
                                                                                                        margin)


def test_cache_keys_are_those_of_earlier_versions(tmp_path):
    # Keys computed faster must be the same keys: a cache filled by an earlier version stays valid.
    import hashlib
    import json
    import os

    audio = tmp_path / "a.wav"
    sf.write(audio, tone_speech("hello"), 16000)
    config = FeatureConfig(hop_length=148, fmax=7200.0)
    st = os.stat(audio)
    ident = json.dumps([os.path.realpath(audio), st.st_size, st.st_mtime_ns, config.to_json(),
                        speech.features.FEATURE_VERSION])
    key = hashlib.sha1(ident.encode()).hexdigest()
    assert FeatureCache(tmp_path / "cache", config).path_for(str(audio)) == tmp_path / "cache" / key[:2] / f"{key}.npy"


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
    assert not list((tmp_path / "cache").rglob("*.tmp"))


def test_pool_workers_make_the_same_features_and_never_import_librosa(tmp_path, monkeypatch):
    # Workers get their filters from the job (a second's less start each): a variant config proves they are the
    # job's own, and a worker that has computed features has still not imported librosa.
    monkeypatch.setattr("speech.features.PARALLEL_MIN_FILES", 2)
    config = replace(FeatureConfig(), hop_length=144, fmax=7000.0)
    paths = []
    for i in range(4):
        sf.write(tmp_path / f"{i}.wav", tone_speech("abc" * (i + 1)), 16000)
        paths.append(str(tmp_path / f"{i}.wav"))
    pooled = extract_features(paths, config, tmp_path / "pooled", jobs=2)
    alone = extract_features(paths, config, tmp_path / "alone", jobs=1)
    for a, b in zip(pooled, alone, strict=True):
        assert np.array_equal(np.load(a.cache_path), np.load(b.cache_path))
    with worker_pool(1, [config]) as pool:
        task = (paths[0], str(tmp_path / "probe"), config)
        assert pool.submit(speech.features._extract_one, task).result().cache_path
        assert pool.submit(eval, "'librosa' in __import__('sys').modules").result() is False


def test_cached_files_are_read_here_and_a_pool_starts_only_for_enough_files_to_compute(tmp_path, monkeypatch):
    monkeypatch.setattr("speech.features.PARALLEL_MIN_FILES", 3)
    started = []
    real_pool = speech.features.worker_pool
    monkeypatch.setattr("speech.features.worker_pool", lambda *a: started.append(a) or real_pool(*a))
    paths = []
    for i in range(5):
        sf.write(tmp_path / f"{i}.wav", tone_speech("ab" * (i + 1)), 16000)
        paths.append(str(tmp_path / f"{i}.wav"))
    config, cache = FeatureConfig(), tmp_path / "cache"
    first = extract_features(paths[:3], config, cache, jobs=2)  # three to compute: a pool
    assert len(started) == 1
    again = extract_features(paths, config, cache, jobs=2)  # two to compute: none
    assert len(started) == 1
    assert again[:3] == first and all(r.cache_path and not r.error for r in again)
    (tmp_path / "3.wav").unlink()
    assert [r.error for r in extract_features(paths, config, cache, jobs=2)] == [None] * 3 + ["file not found", None]
    assert len(started) == 1


def test_the_job_computes_files_from_the_end_while_its_workers_start(tmp_path, monkeypatch):
    # Workers start in about 0.3 s; until then the job computes files itself, from the end of the list, but never
    # more than a (jobs + 1)-th of them. Here the start is slowed: the job does its 3 of 9 and the pool the other 6.
    import time

    monkeypatch.setattr("speech.features.PARALLEL_MIN_FILES", 2)
    real_start = speech.features._start_workers
    monkeypatch.setattr("speech.features._start_workers", lambda *a: time.sleep(0.5) or real_start(*a))
    here = []
    real_compute = FeatureCache.compute
    monkeypatch.setattr(FeatureCache, "compute", lambda self, path, entry: here.append(path) or
                        real_compute(self, path, entry))  # patched in this process only, not in the workers
    paths = []
    for i in range(9):
        sf.write(tmp_path / f"{i}.wav", tone_speech("ab" * (i + 1)), 16000)
        paths.append(str(tmp_path / f"{i}.wav"))
    config = FeatureConfig()
    shared = extract_features(paths, config, tmp_path / "shared", jobs=2)
    assert sorted(here) == paths[6:]
    here.clear()
    alone = extract_features(paths, config, tmp_path / "alone", jobs=1)
    assert here == paths
    assert [r.audio_path for r in shared] == paths and not any(r.error for r in shared)
    for a, b in zip(shared, alone, strict=True):
        assert a.num_frames == b.num_frames and np.array_equal(np.load(a.cache_path), np.load(b.cache_path))


def test_feature_workers_load_blas_with_one_thread_and_the_job_keeps_its_environment(tmp_path, monkeypatch):
    # numpy's OpenBLAS starts a busy-waiting thread per core when it is loaded, in the fork server too unless it is
    # told otherwise; the job's own environment is left as it was.
    from multiprocessing import forkserver

    stop = getattr(getattr(forkserver, "_forkserver", None), "_stop", None)
    if stop is None:
        pytest.skip("no way to stop this Python's fork server, which may have been started with other settings")
    stop()  # the next pool starts a new one, from this environment
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "7")
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)  # which OpenBLAS also reads (tests/conftest.py sets it)
    monkeypatch.delenv("MKL_NUM_THREADS", raising=False)
    with worker_pool(1, [FeatureConfig()]) as pool:
        blas = pool.submit(eval, "[(i['internal_api'], i['num_threads']) for i in "
                                 "__import__('threadpoolctl').threadpool_info() if i['user_api'] == 'blas']").result()
    assert blas and all(threads == 1 for _, threads in blas), blas
    assert speech.features.os.environ["OPENBLAS_NUM_THREADS"] == "7"
    assert "MKL_NUM_THREADS" not in speech.features.os.environ and "OMP_NUM_THREADS" not in speech.features.os.environ


def test_a_pool_reads_each_file_as_it_is_when_it_computes_it(tmp_path, monkeypatch):
    # The job looks in the cache first; its pool may compute a file much later. A file gone by then is reported, one
    # rewritten is keyed by what is read, and an entry that is not an .npy (here an .npz) is computed again.
    import io

    monkeypatch.setattr("speech.features.PARALLEL_MIN_FILES", 2)
    paths = []
    for i in range(4):
        sf.write(tmp_path / f"{i}.wav", tone_speech("ab" * (i + 1)), 16000)
        paths.append(str(tmp_path / f"{i}.wav"))
    config, cache = FeatureConfig(), tmp_path / "cache"
    [first] = extract_features(paths[:1], config, cache, jobs=1)
    archive = io.BytesIO()
    np.savez(archive, features=np.load(first.cache_path))
    with open(first.cache_path, "wb") as f:
        f.write(archive.getvalue())
    real_pool = speech.features.worker_pool

    def pool_after_changes(*args):
        (tmp_path / "1.wav").unlink()
        sf.write(tmp_path / "2.wav", tone_speech("a much longer recording"), 16000)
        return real_pool(*args)

    monkeypatch.setattr("speech.features.worker_pool", pool_after_changes)
    results = extract_features(paths, config, cache, jobs=2)
    assert results[0].cache_path == first.cache_path and np.load(first.cache_path).shape[0] == first.num_frames
    assert results[1].error == "file not found"
    assert results[2].cache_path == str(FeatureCache(cache, config).path_for(paths[2]))
    assert results[2].num_frames == config.num_frames(len(sf.read(paths[2])[0]))
    assert not results[3].error


def test_a_file_the_system_cannot_read_is_reported_as_such(tmp_path, monkeypatch):
    sf.write(tmp_path / "a.wav", tone_speech("ab"), 16000)

    def unreadable(path, *args):
        raise OSError(5, "Input/output error", str(path))

    monkeypatch.setattr("speech.features.load_audio", unreadable)
    [result] = extract_features([str(tmp_path / "a.wav")], FeatureConfig(), tmp_path / "cache", jobs=1)
    assert result.error == f"cannot read: [Errno 5] Input/output error: '{tmp_path / 'a.wav'}'"


def test_a_failed_cache_write_leaves_no_temporary_file(tmp_path, monkeypatch):
    audio = tmp_path / "a.wav"
    sf.write(audio, tone_speech("hello"), 16000)

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "save", full)
    [result] = extract_features([str(audio)], FeatureConfig(), tmp_path / "cache", jobs=1)
    assert result.error and "No space left" in result.error
    assert not [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]


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


def _quiet_edges(wave: np.ndarray, before: float, after: float, level: float = 0.0) -> np.ndarray:
    rng = np.random.default_rng(5)
    edge = [(level * rng.standard_normal(int(seconds * 16000))).astype(np.float32) for seconds in (before, after)]
    return np.concatenate([edge[0], wave, edge[1]])


def test_edge_silence_is_cut_to_what_the_corpus_clips_keep(tmp_path):
    # The built-in corpus's clips keep 0.15 s of silence at each end; a recording with a second of it must give
    # the features of that clip, and say where its speech starts (word timings shift by it).
    config = FeatureConfig()
    keep = int(TRIM_KEEP_SECONDS * 16000)
    wave = tone_speech("abc")  # its own 0.1 s edges hold noise at -38 dB: speech, as far as the cut goes
    start, features = speech_features(_quiet_edges(wave, 1.0, 0.5), config)
    assert start == 16000 - keep
    np.testing.assert_array_equal(features, compute_features(_quiet_edges(wave, keep / 16000, keep / 16000), config))
    start, features = speech_features(wave, config)  # nothing to cut
    assert start == 0 and np.array_equal(features, compute_features(wave, config))
    # Quiet that is not digital zero is cut too; None keeps the whole recording.
    start, _ = speech_features(_quiet_edges(wave, 1.0, 1.0, level=1e-4), config)
    assert start == 16000 - keep
    whole = _quiet_edges(wave, 1.0, 0.5)
    start, features = speech_features(whole, FeatureConfig(trim_silence_db=None))
    assert start == 0 and len(features) == config.num_frames(len(whole))
    assert speech_features(whole, FeatureConfig(trim_floor_margin_db=None))[0] == 16000 - keep  # the peak rule
    # Training reads the same features as transcription.
    path = tmp_path / "padded.wav"
    sf.write(path, whole, 16000, subtype="FLOAT")
    _, cached = FeatureCache(tmp_path / "cache", config).get_or_compute(str(path))
    np.testing.assert_array_equal(cached, speech_features(whole, config)[1])


def test_recordings_without_a_loud_part_are_kept_whole():
    for wave in [np.zeros(16000, np.float32), np.full(8000, 0.2, np.float32), np.ones(100, np.float32),
                 np.zeros(0, np.float32), np.full(4000, np.nan, np.float32)]:
        assert speech_bounds(wave, 16000, -45.0) == (0, len(wave))
    # One loud frame at the very end: the cut keeps 0.15 s before it and stops at the last sample.
    wave = np.zeros(16000, np.float32)
    wave[-100:] = 0.5
    assert speech_bounds(wave, 16000, -45.0) == (16000 - 160 - 2400, 16000)


def test_edges_of_noise_alone_are_cut_down_to_the_speech_over_it():
    # A room or a line hums under the whole recording, at 20 dB below the speech here: its second alone before the
    # speech is only ~20 dB below the loudest frame, so the peak rule keeps it; the noise-floor rule cuts it.
    rng = np.random.default_rng(9)
    speech = tone_speech("abc")  # 0.1 s of near-silence, 0.21 s of chords, 0.1 s of near-silence
    noise = (0.025 * rng.standard_normal(len(speech) + 24000)).astype(np.float32)
    wave = noise.copy()
    wave[16000: 16000 + len(speech)] += speech
    keep = int(TRIM_KEEP_SECONDS * 16000)
    start, end = speech_bounds(wave, 16000, -45.0, floor_margin_db=3.0)
    first, last = 16000 + 1600, 16000 + len(speech) - 1600  # the chords' first and last sample
    assert first - keep - 2 * 160 <= start <= first - keep + 160  # a 10 ms frame either way: the chord fades in
    assert last + keep - 160 <= end <= last + keep + 2 * 160
    assert speech_bounds(wave, 16000, -45.0) == (0, len(wave))  # the peak rule alone keeps the noise
    # Noise alone has no part to cut to, at any level.
    for level in (1e-4, 0.025, 0.5):
        alone = (level * rng.standard_normal(3 * 16000)).astype(np.float32)
        assert speech_bounds(alone, 16000, -45.0, floor_margin_db=3.0) == (0, len(alone))


@pytest.mark.parametrize("offset", [0.05, 0.1, 0.2])
def test_a_dc_offset_does_not_make_the_cut_take_speech_for_silence(offset):
    # Cheap microphones and old recordings carry DC: the speech's bounds must be those of the same clip without it.
    wave = _quiet_edges(tone_speech("open the door", seed=2), 0.8, 0.6, level=1e-3)
    clean = speech_bounds(wave, 16000, -45.0, floor_margin_db=3.0)
    assert clean[0] > 0 and clean[1] < len(wave)
    shifted = speech_bounds(wave + np.float32(offset), 16000, -45.0, floor_margin_db=3.0)
    assert abs(shifted[0] - clean[0]) <= 160 and abs(shifted[1] - clean[1]) <= 160


def test_a_folder_or_a_device_named_for_audio_is_reported_as_such_not_as_missing(tmp_path):
    (tmp_path / "folder.wav").mkdir()
    paths = [str(tmp_path / "folder.wav"), str(tmp_path / "gone.wav"), "/dev/null", str(tmp_path / "nul\0.wav")]
    results = extract_features(paths, FeatureConfig(), tmp_path / "cache", jobs=1)
    assert [r.error for r in results] == ["is a folder, not an audio file", "file not found",
                                          "not a regular file (a device, pipe or socket)", "file not found"]


@pytest.mark.parametrize("jobs", [None, 1, 2])
def test_no_input_is_an_empty_result_with_no_pool_started(tmp_path, monkeypatch, jobs):
    monkeypatch.setattr("speech.features.PARALLEL_MIN_FILES", 0)  # the pool's branch, were there any file

    def no_pool(*args, **kwargs):
        raise AssertionError("a worker pool was started for no file")

    monkeypatch.setattr("speech.features.ProcessPoolExecutor", no_pool)
    assert extract_features([], FeatureConfig(), tmp_path / "cache", jobs=jobs, progress=True) == []
    assert not (tmp_path / "cache").exists()
