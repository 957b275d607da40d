import numpy as np
import pytest

from speech.nonspeech import NON_SPEECH_KINDS, non_speech_clip


@pytest.mark.parametrize("kind", NON_SPEECH_KINDS)
def test_each_kind_is_audible_audio_of_the_asked_length_and_a_function_of_its_seed(kind):
    wave = non_speech_clip(kind, 1.5, 16000, np.random.default_rng(3))
    assert wave.dtype == np.float32 and wave.shape == (24000,)
    assert np.all(np.isfinite(wave)) and 0.049 < np.max(np.abs(wave)) <= 0.9
    assert np.sqrt(np.mean(wave**2)) > 1e-3
    np.testing.assert_array_equal(wave, non_speech_clip(kind, 1.5, 16000, np.random.default_rng(3)))
    assert not np.array_equal(wave, non_speech_clip(kind, 1.5, 16000, np.random.default_rng(4)))


def test_kinds_differ_and_an_unknown_kind_is_refused():
    spectra = [np.abs(np.fft.rfft(non_speech_clip(k, 1.0, 16000, np.random.default_rng(0)))) for k in NON_SPEECH_KINDS]
    centroids = {round(float((s * np.arange(len(s))).sum() / s.sum()), -1) for s in spectra}
    assert len(centroids) >= len(NON_SPEECH_KINDS) - 1
    with pytest.raises(ValueError, match="unknown non-speech kind"):
        non_speech_clip("speech", 1.0, 16000, np.random.default_rng(0))
