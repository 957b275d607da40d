"""The TensorFlow feature twin against librosa (speech.features), alone and through a trained model."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from conftest import SR, tone_speech

from speech.features import FeatureConfig, compute_features

# Measured on these clips: raw MFCC (values up to ~630) max |diff| 4.6e-5, normalised 4.5e-6 (the spectrum is
# float64 in the twin; librosa is float32). The bounds leave a few x headroom for other CPUs/BLAS builds.
RAW_TOLERANCE = 3e-4
NORMALIZED_TOLERANCE = 5e-5


def _clips() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    return {
        "speech-like": tone_speech("hello world"),
        "speech-like-2": tone_speech("three four", seed=3, rate=1.3),
        "noise": (0.1 * rng.standard_normal(2 * SR)).astype(np.float32),
        "silence": np.zeros(SR // 2, np.float32),
        "10ms": (0.1 * rng.standard_normal(SR // 100)).astype(np.float32),
        "odd-length": (0.05 * rng.standard_normal(12345)).astype(np.float32),
        "one-sample": np.array([0.25], np.float32),
    }


def _padded(clips: list[np.ndarray], fill: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    # Non-zero padding: the twin must ignore whatever lies past a row's length.
    lengths = np.array([len(c) for c in clips], np.int32)
    waves = np.full((len(clips), lengths.max()), fill, np.float32)
    for row, clip in enumerate(clips):
        waves[row, : len(clip)] = clip
    return waves, lengths


# 148: a hop that does not divide the window or the FFT size, as the bundled model's dev-tuned hop need not.
@pytest.mark.parametrize("hop_length", [160, 148])
@pytest.mark.parametrize("normalize, tolerance", [(False, RAW_TOLERANCE), (True, NORMALIZED_TOLERANCE)])
def test_twin_matches_librosa_on_a_padded_batch(normalize: bool, tolerance: float, hop_length: int) -> None:
    from speech.tf_features import tf_features

    config = FeatureConfig(normalize=normalize, hop_length=hop_length)
    clips = _clips()
    waves, lengths = _padded(list(clips.values()))
    features, frames = tf_features(waves, lengths, config)
    features, frames = features.numpy(), frames.numpy()
    assert features.shape == (len(clips), 1 + waves.shape[1] // config.hop_length, config.n_mfcc)
    for row, (name, clip) in enumerate(clips.items()):
        expected = compute_features(clip, config)
        assert frames[row] == len(expected) == config.num_frames(len(clip)), name
        diff = np.abs(features[row, : frames[row]] - expected).max()
        assert diff <= tolerance, f"{name}: max |diff| {diff:.2e}"
        assert not np.any(features[row, frames[row]:]), f"{name}: padded frames must be zero"


def test_twin_is_independent_of_the_batch_it_is_in() -> None:
    from speech.tf_features import tf_features

    config = FeatureConfig()
    clip = tone_speech("up")
    alone, _ = tf_features(clip[None, :], np.array([len(clip)], np.int32), config)
    waves, lengths = _padded([tone_speech("three four"), clip], fill=-0.3)
    batched, frames = tf_features(waves, lengths, config)
    np.testing.assert_array_equal(batched.numpy()[1, : frames[1]], alone.numpy()[0])


def test_trained_model_transcribes_twin_features_identically(tiny_model, tmp_path) -> None:
    from speech.tf_features import tf_features
    from speech.transcribe import Transcriber

    model_dir, manifest = tiny_model
    transcriber = Transcriber(str(model_dir))
    config = transcriber.spec.features
    clips = [sf.read(p, dtype="float32")[0] for p in sorted(manifest.parent.glob("*.wav"))]
    clips += [tone_speech("stop go", seed=11), np.zeros(SR // 100, np.float32)]
    reference = transcriber.transcribe_features([compute_features(c, config) for c in clips])
    waves, lengths = _padded(clips)
    features, frames = tf_features(waves, lengths, config)
    twin = transcriber.transcribe_features([f[:n] for f, n in zip(features.numpy(), frames.numpy())])
    assert any(h.text for h in reference)
    for expected, got in zip(reference, twin):
        assert got.text == expected.text
        assert [(w.word, w.start, w.end) for w in got.words] == [(w.word, w.start, w.end) for w in expected.words]
        assert got.confidence == pytest.approx(expected.confidence, abs=1e-4)


def test_twin_scales_rows_far_outside_one_as_librosa_does() -> None:
    # A float file at 1e20 (or one 3e38 spike) would overflow the power spectrum; compute_features scales such a
    # wave down, and the SavedModel's in-graph features must give the same features, not inf or NaN.
    from speech.tf_features import tf_features

    config = FeatureConfig()
    wave = tone_speech("go left")
    spike = wave.copy()
    spike[100] = 3e38
    rows = [wave, wave * np.float32(1e20), spike]
    waves, lengths = _padded(rows)
    features = tf_features(waves, lengths, config)[0].numpy()
    assert np.all(np.isfinite(features))
    # The spike scales the rest of its row to about 1e-39, where float32 (librosa) and float64 (the twin) round
    # the power spectrum differently: a looser bound there.
    for row, (clip, tolerance) in enumerate(zip(rows, [NORMALIZED_TOLERANCE, NORMALIZED_TOLERANCE, 1e-2])):
        expected = compute_features(clip, config)
        assert np.abs(features[row, : len(expected)] - expected).max() <= tolerance, row
    np.testing.assert_allclose(features[1], features[0], atol=1e-3)


def _quiet_edges(wave: np.ndarray, before: float, after: float, level: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    edge = [(level * rng.standard_normal(int(seconds * SR))).astype(np.float32) for seconds in (before, after)]
    return np.concatenate([edge[0], wave, edge[1]])


def _under_noise(wave: np.ndarray, level: float, seed: int) -> np.ndarray:
    return (wave + level * np.random.default_rng(seed).standard_normal(len(wave))).astype(np.float32)


def test_twin_cuts_edge_silence_as_the_python_path_does() -> None:
    from speech.features import speech_bounds, speech_features
    from speech.tf_features import tf_speech_bounds, tf_speech_features

    config = FeatureConfig()
    clips = [
        *_clips().values(),
        _quiet_edges(tone_speech("go stop", seed=4), 1.0, 0.4, 0.0, 1),
        _quiet_edges(tone_speech("left", seed=5), 0.3, 1.2, 1e-4, 2),
        _quiet_edges(tone_speech("up", seed=6), 2.0, 0.0, 1e-5, 3) * np.float32(1e20),
        # Noise under everything, 1.2 s of it alone before the speech: only the noise-floor rule cuts it.
        _under_noise(_quiet_edges(tone_speech("on", seed=7), 1.2, 0.6, 0.0, 4), 0.03, 5),
        np.zeros(0, np.float32),
    ]
    waves, lengths = _padded(clips)
    for margin, cut in ((None, 3), (config.trim_floor_margin_db, 4)):
        start, end = (x.numpy() for x in tf_speech_bounds(waves, lengths, SR, config.trim_silence_db,
                                                          floor_margin_db=margin))
        expected = [speech_bounds(c, SR, config.trim_silence_db, floor_margin_db=margin) for c in clips]
        assert list(zip(start.tolist(), end.tolist())) == expected, margin
        assert sum(s > 0 for s, _ in expected) == cut  # the cut happens, and not on clips without quiet edges
    features, frames, first = (x.numpy() for x in tf_speech_features(waves, lengths, config))
    for row, clip in enumerate(clips[:-1]):  # the empty row is an error before features (the SavedModel's own test)
        sample, reference = speech_features(clip, config)
        assert first[row] == sample and frames[row] == len(reference), row
        assert np.abs(features[row, : frames[row]] - reference).max(initial=0) <= NORMALIZED_TOLERANCE, row


def test_twin_cut_ignores_a_dc_offset_as_the_python_path_does() -> None:
    from speech.features import speech_bounds
    from speech.tf_features import tf_speech_bounds

    clips = [_quiet_edges(tone_speech("open the door", seed=2), 0.8, 0.6, 1e-3, 6) + np.float32(offset)
             for offset in (0.0, 0.1, -0.2)]
    waves, lengths = _padded(clips)
    start, end = (x.numpy() for x in tf_speech_bounds(waves, lengths, SR, -45.0, floor_margin_db=3.0))
    expected = [speech_bounds(c, SR, -45.0, floor_margin_db=3.0) for c in clips]
    assert list(zip(start.tolist(), end.tolist())) == expected
    assert all(abs(s - expected[0][0]) <= 160 for s, _ in expected)  # the offset moves nothing
