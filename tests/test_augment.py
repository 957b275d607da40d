"""Waveform augmentation: lengths, SNR, spectra, F0 and formants, determinism, no clipping."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import signal

from speech.augment import (
    AugmentConfig,
    add_noise,
    apply_gain,
    augment,
    augment_with_log,
    colored_noise,
    convert_voice,
    limit_bandwidth,
    pad_edges,
    reverberate,
    speed_perturb,
    synthetic_rir,
    telephone,
)

SR = 16000


def speechlike(seconds: float = 2.0, seed: int = 0) -> np.ndarray:
    """A voiced, amplitude-modulated harmonic signal with pauses: enough structure for the transforms."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    f0 = 120 + 20 * np.sin(2 * np.pi * 0.5 * t)
    phase = 2 * np.pi * np.cumsum(f0) / SR
    wave = sum(np.sin(k * phase) / k for k in range(1, 30))
    envelope = np.clip(np.sin(2 * np.pi * 2.0 * t), 0, None)
    return (0.3 * wave * envelope + 0.001 * rng.standard_normal(len(t))).astype(np.float32)


def band_energy(wave: np.ndarray, lo: float, hi: float) -> float:
    freqs, psd = signal.welch(wave, SR, nperseg=1024)
    return float(psd[(freqs >= lo) & (freqs < hi)].sum())


@pytest.mark.parametrize("factor", [0.9, 1.1])
def test_speed_changes_length_by_the_factor(factor):
    wave = speechlike()
    out = speed_perturb(wave, SR, factor)
    assert out.dtype == np.float32
    assert abs(len(out) - len(wave) / factor) <= 2
    assert speed_perturb(wave, SR, 1.0).shape == wave.shape


@pytest.mark.parametrize("kind", ["white", "pink", "brown", "babble"])
@pytest.mark.parametrize("snr", [5.0, 20.0])
def test_noise_is_added_at_the_requested_snr(kind, snr):
    wave = speechlike()
    out = add_noise(wave, np.random.default_rng(1), snr, kind)
    assert out.shape == wave.shape and out.dtype == np.float32
    noise = out.astype(np.float64) - wave
    measured = 10 * np.log10(np.sum(wave.astype(np.float64) ** 2) / np.sum(noise**2))
    assert measured == pytest.approx(snr, abs=0.1)


def test_noise_colours_have_their_spectral_slopes():
    rng = np.random.default_rng(0)
    slopes = {}
    for kind in ("white", "pink", "brown"):
        noise = colored_noise(SR * 4, rng, kind)
        assert np.mean(noise**2) == pytest.approx(1.0, rel=1e-3)
        # power in one octave vs the octave above: 0 dB (white), 3 dB (pink), 6 dB (brown)
        slopes[kind] = 10 * np.log10(band_energy(noise, 500, 1000) / band_energy(noise, 1000, 2000))
    assert slopes["white"] == pytest.approx(-3.0, abs=1.0)  # twice the bins in the upper octave
    assert slopes["pink"] == pytest.approx(0.0, abs=1.0)
    assert slopes["brown"] == pytest.approx(3.0, abs=1.0)


def test_babble_from_other_utterances():
    wave = speechlike(seed=0)
    sources = [speechlike(1.0, seed=s) for s in (1, 2, 3)]
    out = add_noise(wave, np.random.default_rng(0), 10.0, "babble", sources)
    noise = out.astype(np.float64) - wave
    assert 10 * np.log10(np.sum(wave.astype(np.float64) ** 2) / np.sum(noise**2)) == pytest.approx(10.0, abs=0.1)


def test_rir_decays_by_rt60():
    rt60 = 0.5
    rir = synthetic_rir(SR, np.random.default_rng(0), rt60, direct_ratio_db=0.0)
    assert rir[0] == 1.0
    early = np.mean(rir[int(0.05 * SR):int(0.1 * SR)] ** 2)
    late = np.mean(rir[int(0.3 * SR):int(0.35 * SR)] ** 2)
    # 60 dB per rt60 seconds -> 0.25 s apart is 30 dB
    assert 10 * np.log10(early / late) == pytest.approx(30.0, abs=4.0)


def test_reverb_keeps_length_and_level_and_smears_energy():
    wave = speechlike()
    out = reverberate(wave, SR, np.random.default_rng(0), rt60=0.6)
    assert out.shape == wave.shape and out.dtype == np.float32
    assert np.sqrt(np.mean(out**2)) == pytest.approx(np.sqrt(np.mean(wave**2)), rel=1e-3)
    # the pauses between "syllables" fill with reverberant energy
    gaps = np.abs(np.sin(2 * np.pi * 2.0 * np.arange(len(wave)) / SR)) < 0.05
    assert np.mean(out[gaps] ** 2) > 5 * np.mean(wave[gaps] ** 2)


def test_telephone_band_limits_and_keeps_length():
    wave = colored_noise(SR * 2, np.random.default_rng(0), "white")
    out = telephone(wave, SR)
    assert out.shape == wave.shape and out.dtype == np.float32
    inside = band_energy(out, 500, 3000) / band_energy(wave, 500, 3000)
    above = band_energy(out, 4500, 7500) / band_energy(wave, 4500, 7500)
    below = band_energy(out, 20, 150) / band_energy(wave, 20, 150)
    assert inside > 0.5 and above < 1e-3 and below < 0.05


def test_gain():
    wave = speechlike()
    assert np.allclose(apply_gain(wave, -6.0), wave * 10 ** (-6 / 20), atol=1e-7)


def test_augment_is_deterministic_for_a_seed_and_never_clips():
    wave = speechlike()
    config = AugmentConfig(speed_prob=1, noise_prob=1, reverb_prob=1, telephone_prob=1, gain_prob=1,
                           gain_db_range=(10.0, 12.0))
    a, log_a = augment_with_log(wave, SR, np.random.default_rng(7), config)
    b, log_b = augment_with_log(wave, SR, np.random.default_rng(7), config)
    assert log_a == log_b and np.array_equal(a, b)
    assert [x.split("=")[0] for x in log_a] == ["speed", "reverb", "noise", "telephone", "gain"]
    assert np.max(np.abs(a)) <= 0.99 + 1e-6
    c = augment(wave, SR, np.random.default_rng(8), config)
    assert not np.array_equal(a[: min(len(a), len(c))], c[: min(len(a), len(c))])


def test_augment_applies_a_random_subset():
    wave = speechlike(0.5)
    logs = [augment_with_log(wave, SR, np.random.default_rng(s))[1] for s in range(60)]
    assert any(not log for log in logs), "some utterances should stay clean"
    assert any(len(log) >= 2 for log in logs)
    nothing = AugmentConfig(speed_prob=0, noise_prob=0, reverb_prob=0, telephone_prob=0, gain_prob=0)
    assert np.array_equal(augment(wave, SR, np.random.default_rng(0), nothing), wave)


def median_f0(wave: np.ndarray) -> float:
    import pyworld

    f0, _ = pyworld.dio(wave.astype(np.float64), SR, frame_period=5.0)
    return float(np.median(f0[f0 > 0]))


def vowel(seconds: float = 1.5, formant_hz: float = 700.0) -> np.ndarray:
    """A steady harmonic source (F0 120 Hz) through one strong resonance at ``formant_hz``."""
    t = np.arange(int(seconds * SR)) / SR
    source = sum(np.sin(2 * np.pi * 120 * k * t) for k in range(1, 60))
    b, a = signal.iirpeak(formant_hz, 4.0, SR)
    return (0.1 * signal.lfilter(b, a, source)).astype(np.float32)


def test_convert_voice_scales_f0_and_keeps_length():
    wave = speechlike()
    out = convert_voice(wave, SR, 1.5, 1.0)
    assert out.dtype == np.float32 and len(out) == len(wave) and np.all(np.isfinite(out))
    assert median_f0(out) == pytest.approx(1.5 * median_f0(wave), rel=0.08)


def test_convert_voice_moves_formants_but_not_f0():
    wave = vowel()
    up, down = convert_voice(wave, SR, 1.0, 1.15), convert_voice(wave, SR, 1.0, 0.87)
    for out in (up, down):
        assert median_f0(out) == pytest.approx(median_f0(wave), rel=0.05)

    def peak_hz(x: np.ndarray) -> float:
        freqs, psd = signal.welch(x, SR, nperseg=4096)
        band = (freqs > 300) & (freqs < 1500)
        return float(freqs[band][np.argmax(psd[band])])

    # The resonance sits near 700 Hz and moves with the envelope, to within a harmonic (120 Hz).
    assert peak_hz(up) > peak_hz(wave) + 60 and peak_hz(down) < peak_hz(wave) - 40


def test_convert_voice_edge_cases():
    tiny = speechlike(0.01)
    assert np.array_equal(convert_voice(tiny, SR, 1.3, 1.1), tiny)  # too short to analyse: unchanged
    silence = np.zeros(SR, np.float32)
    out = convert_voice(silence, SR, 1.3, 1.1)
    assert len(out) == SR and np.max(np.abs(out)) < 1e-3
    with pytest.raises(ValueError):
        convert_voice(speechlike(), SR, 0.0, 1.0)


def test_voice_conversion_is_drawn_first_and_only_when_on():
    wave = speechlike()
    everything = dict(speed_prob=1, noise_prob=1, reverb_prob=1, telephone_prob=1, gain_prob=1)
    # Off (the default), the draws are those of the corpora made before it existed: the same seed, the same log.
    assert augment_with_log(wave, SR, np.random.default_rng(7), AugmentConfig(**everything))[1] == \
        ["speed=1.075", "reverb=0.15s", "noise=pink@5dB", "telephone", "gain=-10.3dB"]
    config = AugmentConfig(**everything, voice_prob=1, f0_range=(0.8, 0.9), formant_range=(1.05, 1.1))
    out, log = augment_with_log(wave, SR, np.random.default_rng(7), config)
    assert [x.split("=")[0] for x in log] == ["voice", "speed", "reverb", "noise", "telephone", "gain"]
    f0_part, formant_part = log[0].removeprefix("voice=").split(",")
    assert 0.8 <= float(f0_part.removeprefix("f0x")) <= 0.9
    assert 1.05 <= float(formant_part.removeprefix("formants")) <= 1.1
    assert np.max(np.abs(out)) <= 0.99 + 1e-6


def test_pad_edges_adds_quiet_pauses_with_room_tone_under_the_speech():
    wave = speechlike(1.0)
    out = pad_edges(wave, SR, np.random.default_rng(0), 0.5, 0.25, -50.0)
    assert len(out) == len(wave) + int(0.5 * SR) + int(0.25 * SR)
    pause = out[: int(0.5 * SR)]
    level_db = 20 * np.log10(np.sqrt(np.mean(pause.astype(np.float64) ** 2)) / np.max(np.abs(wave)))
    assert -51.0 < level_db < -49.0  # the room tone, at its level below the speech's peak
    # The speech is where it was, with the same tone under it.
    speech = out[int(0.5 * SR): int(0.5 * SR) + len(wave)]
    assert np.sqrt(np.mean((speech - wave) ** 2)) < 2 * np.sqrt(np.mean(pause ** 2))
    assert np.array_equal(pad_edges(np.zeros(100, np.float32), SR, np.random.default_rng(0), 0.1, 0.1, -40),
                          np.zeros(100 + 2 * int(0.1 * SR), np.float32))  # silence gets silence


@pytest.mark.parametrize("rate", [8000, 11025])
def test_limit_bandwidth_leaves_nothing_above_half_the_rate(rate):
    rng = np.random.default_rng(1)
    noise = (0.1 * rng.standard_normal(SR)).astype(np.float32)
    out = limit_bandwidth(noise, SR, rate)
    assert len(out) == len(noise)
    assert band_energy(out, rate / 2 + 300, SR / 2) < 1e-3 * band_energy(noise, rate / 2 + 300, SR / 2)
    assert band_energy(out, 300, rate / 2 - 500) > 0.8 * band_energy(noise, 300, rate / 2 - 500)
    assert np.array_equal(limit_bandwidth(noise, SR, SR), noise)


def test_pauses_and_bandwidth_are_drawn_only_when_on():
    wave = speechlike()
    everything = dict(speed_prob=1, noise_prob=1, reverb_prob=1, telephone_prob=0, gain_prob=1)
    before = augment_with_log(wave, SR, np.random.default_rng(7), AugmentConfig(**everything))[1]
    config = AugmentConfig(**everything, pad_prob=1, bandwidth_prob=1, pad_seconds_range=(0.2, 0.3))
    out, log = augment_with_log(wave, SR, np.random.default_rng(7), config)
    assert [x.split("=")[0] for x in log] == ["speed", "pad", "reverb", "noise", "bandwidth", "gain"]
    speed = float(log[0].removeprefix("speed="))
    assert int(0.4 * SR) <= len(out) - len(speed_perturb(wave, SR, speed)) <= int(0.6 * SR)
    assert [x.split("=")[0] for x in before] == ["speed", "reverb", "noise", "gain"]
