"""Waveform augmentation (numpy/scipy), so a model trained on synthetic speech does not learn the synthesisers.

Every random choice comes from the ``np.random.Generator`` passed in, so an utterance's augmentation is a
function of its seed alone. Each transform takes and returns float32 mono audio:

* :func:`convert_voice` -- another speaker from the same recording: the WORLD vocoder (pyworld) splits it into
  F0, spectral envelope and aperiodicity; F0 is scaled, the envelope stretched along frequency (formants up or
  down, as a shorter or longer vocal tract would put them) independently of F0, and the result resynthesised.
  Resampling (speed) moves both together; real speakers differ in each on its own.
* :func:`speed_perturb` -- Kaldi-style speed change by resampling (tempo and pitch together); the only
  transform that changes the length (by 1/factor).
* :func:`add_noise` -- white, pink, brown or babble noise at an exact SNR, where SNR is measured over the
  whole waveform: ``10 log10(sum(x^2) / sum(n^2))``.
* :func:`reverberate` -- convolution with a synthetic room impulse response (direct path + exponentially
  decaying noise tail with the given RT60), output RMS matched to the input.
* :func:`telephone` -- 300-3400 Hz band-pass and a trip through 8 kHz.
* :func:`apply_gain` -- a level change in dB.
* :func:`pad_edges` -- quiet room tone (coloured noise far below the speech) before and after the words: real
  recordings start and end with pauses of any length, the synthesisers' clips with 0.15 s.
* :func:`limit_bandwidth` -- a trip through a lower sample rate (8, 11.025 or 12 kHz): recordings made or kept
  at those rates have nothing above half of it.

:func:`augment` applies a random subset (voice, speed, reverb, noise, telephone, gain, in that order), then scales
down anything that would clip.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import soxr
from scipy import signal

NOISE_KINDS = ("white", "pink", "brown", "babble")


@dataclass(frozen=True)
class AugmentConfig:
    """Probabilities and ranges of :func:`augment`. Defaults are moderate: most speech stays intelligible."""

    speed_prob: float = 0.4
    speed_range: tuple[float, float] = (0.9, 1.1)
    noise_prob: float = 0.5
    snr_db_choices: tuple[float, ...] = (5.0, 10.0, 15.0, 20.0, 30.0)
    noise_kinds: tuple[str, ...] = NOISE_KINDS
    reverb_prob: float = 0.3
    rt60_range: tuple[float, float] = (0.15, 0.7)
    telephone_prob: float = 0.1
    gain_prob: float = 0.5
    gain_db_range: tuple[float, float] = (-12.0, 3.0)
    # Off by default so that the corpora drawn before it existed draw the same augmentation for the same seed.
    voice_prob: float = 0.0
    f0_range: tuple[float, float] = (0.7, 1.45)  # F0 multipliers, drawn log-uniformly
    formant_range: tuple[float, float] = (0.87, 1.15)  # envelope stretch factors, drawn log-uniformly
    # Off by default for the same reason: pauses of pad_seconds_range at each end, pad_level_db below the peak.
    pad_prob: float = 0.0
    pad_seconds_range: tuple[float, float] = (0.1, 1.2)
    pad_level_db_range: tuple[float, float] = (-65.0, -35.0)
    bandwidth_prob: float = 0.0
    bandwidth_rates: tuple[int, ...] = (8000, 11025, 12000)


def _fit_length(wave: np.ndarray, length: int) -> np.ndarray:
    if len(wave) >= length:
        return wave[:length]
    return np.pad(wave, (0, length - len(wave)))


def speed_perturb(wave: np.ndarray, sr: int, factor: float) -> np.ndarray:
    """Play ``factor`` times faster: resample sr -> sr/factor and read the result at sr."""
    if factor <= 0:
        raise ValueError("speed factor must be positive")
    if abs(factor - 1.0) < 1e-6:
        return wave.astype(np.float32)
    return soxr.resample(wave.astype(np.float32), sr * factor, sr, quality="HQ").astype(np.float32)


# WORLD's analysis frame step (ms) and the shortest input it is run on (shorter audio is returned as it is).
WORLD_FRAME_MS = 5.0
_WORLD_MIN_SECONDS = 0.05


def convert_voice(wave: np.ndarray, sr: int, f0_scale: float, formant_scale: float) -> np.ndarray:
    """The same words in another voice: F0 times ``f0_scale`` and the spectral envelope (with the aperiodicity)
    stretched along frequency by ``formant_scale`` (> 1 moves formants up), through pyworld's WORLD vocoder (DIO +
    StoneMask F0, CheapTrick envelope, D4C aperiodicity). Same length as the input; unvoiced frames stay unvoiced."""
    if f0_scale <= 0 or formant_scale <= 0:
        raise ValueError("f0_scale and formant_scale must be positive")
    if len(wave) < _WORLD_MIN_SECONDS * sr:
        return wave.astype(np.float32)
    try:
        import pyworld
    except ImportError as e:  # a requirement, but only this transform needs it
        raise RuntimeError("voice conversion needs pyworld: pip install -r requirements.txt") from e

    x = np.ascontiguousarray(wave, dtype=np.float64)
    f0, t = pyworld.dio(x, sr, frame_period=WORLD_FRAME_MS)
    f0 = pyworld.stonemask(x, f0, t, sr)
    envelope = pyworld.cheaptrick(x, f0, t, sr)
    aperiodicity = pyworld.d4c(x, f0, t, sr)
    if abs(formant_scale - 1.0) > 1e-6:
        # Bin k of the output takes the envelope at bin k / formant_scale (linear interpolation, held at Nyquist).
        bins = envelope.shape[1]
        src = np.minimum(np.arange(bins) / formant_scale, bins - 1)
        lo = np.floor(src).astype(int)
        hi = np.minimum(lo + 1, bins - 1)
        frac = src - lo
        envelope = envelope[:, lo] * (1 - frac) + envelope[:, hi] * frac
        aperiodicity = aperiodicity[:, lo] * (1 - frac) + aperiodicity[:, hi] * frac
    out = pyworld.synthesize(f0 * f0_scale, np.ascontiguousarray(envelope), np.ascontiguousarray(aperiodicity), sr,
                             frame_period=WORLD_FRAME_MS)
    return _fit_length(out.astype(np.float32), len(wave))


def _log_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


def colored_noise(n: int, rng: np.random.Generator, kind: str = "white") -> np.ndarray:
    """Unit-power noise with a 1/f^0 (white), 1/f (pink) or 1/f^2 (brown) power spectrum."""
    white = rng.standard_normal(n)
    if kind != "white":
        exponent = {"pink": 0.5, "brown": 1.0}.get(kind)
        if exponent is None:
            raise ValueError(f"unknown noise kind {kind!r}")
        spectrum = np.fft.rfft(white)
        freqs = np.arange(len(spectrum), dtype=np.float64)
        freqs[0] = 1.0  # keep DC finite; it is removed below
        spectrum /= freqs**exponent
        white = np.fft.irfft(spectrum, n)
        white -= white.mean()
    return (white / (np.sqrt(np.mean(white**2)) + 1e-12)).astype(np.float32)


def babble_noise(n: int, rng: np.random.Generator, sources: list[np.ndarray], talkers: int = 5) -> np.ndarray:
    """Unit-power babble: several time-reversed (so unintelligible), randomly shifted speech signals summed."""
    mix = np.zeros(n, dtype=np.float64)
    for _ in range(talkers):
        src = sources[int(rng.integers(len(sources)))][::-1]
        if len(src) == 0:
            continue
        src = np.tile(src, int(np.ceil(n / len(src))) + 1)
        start = int(rng.integers(len(src) - n + 1))
        seg = src[start:start + n].astype(np.float64)
        mix += seg / (np.sqrt(np.mean(seg**2)) + 1e-12)
    if not np.any(mix):
        return colored_noise(n, rng, "pink")
    return (mix / (np.sqrt(np.mean(mix**2)) + 1e-12)).astype(np.float32)


def add_noise(wave: np.ndarray, rng: np.random.Generator, snr_db: float, kind: str = "white",
              sources: list[np.ndarray] | None = None) -> np.ndarray:
    """Add ``kind`` noise at ``snr_db`` (whole-waveform power ratio). Babble uses ``sources`` (other
    utterances) if given, else the utterance itself."""
    n = len(wave)
    if n == 0:
        return wave.astype(np.float32)
    noise = babble_noise(n, rng, sources or [wave]) if kind == "babble" else colored_noise(n, rng, kind)
    signal_power = float(np.mean(wave.astype(np.float64) ** 2))
    scale = np.sqrt(signal_power / (10.0 ** (snr_db / 10.0)))
    return (wave + scale * noise).astype(np.float32)


def synthetic_rir(sr: int, rng: np.random.Generator, rt60: float, direct_ratio_db: float | None = None) -> np.ndarray:
    """A room impulse response: a unit direct path, a few ms gap, then Gaussian noise whose envelope decays
    60 dB in ``rt60`` seconds, its energy ``direct_ratio_db`` below the direct path (random 0..10 dB)."""
    length = max(int(min(rt60, 1.5) * sr), 16)
    t = np.arange(length) / sr
    tail = rng.standard_normal(length) * np.exp(-6.9078 * t / rt60)  # ln(1000): 60 dB amplitude decay
    tail[: int(0.003 * sr) + 1] = 0.0  # first reflections arrive after the direct sound
    if direct_ratio_db is None:
        direct_ratio_db = float(rng.uniform(0.0, 10.0))
    tail *= np.sqrt(10.0 ** (-direct_ratio_db / 10.0) / (np.sum(tail**2) + 1e-12))
    tail[0] = 1.0
    return tail.astype(np.float32)


def reverberate(wave: np.ndarray, sr: int, rng: np.random.Generator, rt60: float) -> np.ndarray:
    """Convolve with :func:`synthetic_rir`; same length and RMS as the input."""
    if len(wave) == 0:
        return wave.astype(np.float32)
    wet = signal.fftconvolve(wave.astype(np.float64), synthetic_rir(sr, rng, rt60))[: len(wave)]
    rms_in = np.sqrt(np.mean(wave.astype(np.float64) ** 2))
    rms_out = np.sqrt(np.mean(wet**2)) + 1e-12
    return (wet * (rms_in / rms_out)).astype(np.float32)


def telephone(wave: np.ndarray, sr: int) -> np.ndarray:
    """Narrow-band telephone speech: 300-3400 Hz band-pass, down to 8 kHz and back; same length."""
    sos = signal.butter(4, [300.0, min(3400.0, 0.45 * sr)], btype="bandpass", fs=sr, output="sos")
    band = signal.sosfiltfilt(sos, wave.astype(np.float64))
    if sr > 8000:
        band = soxr.resample(soxr.resample(band, sr, 8000), 8000, sr)
    return _fit_length(np.asarray(band, dtype=np.float32), len(wave))


def pad_edges(wave: np.ndarray, sr: int, rng: np.random.Generator, before: float, after: float,
              level_db: float, kind: str = "pink") -> np.ndarray:
    """``before`` and ``after`` seconds of ``kind`` noise (:func:`colored_noise`) at ``level_db`` below the wave's
    peak added around it; the noise runs under the speech too, as a room's does."""
    n_before, n_after = int(before * sr), int(after * sr)
    out = np.concatenate([np.zeros(n_before, np.float32), wave.astype(np.float32), np.zeros(n_after, np.float32)])
    peak = float(np.max(np.abs(wave))) if len(wave) else 0.0
    if peak == 0.0 or len(out) == 0:
        return out
    return (out + colored_noise(len(out), rng, kind) * np.float32(peak * 10.0 ** (level_db / 20.0))).astype(np.float32)


def limit_bandwidth(wave: np.ndarray, sr: int, rate: int) -> np.ndarray:
    """Down to ``rate`` and back (nothing left above ``rate / 2``); same length."""
    if rate >= sr or len(wave) == 0:
        return wave.astype(np.float32)
    low = soxr.resample(wave.astype(np.float32), sr, rate, quality="HQ")
    return _fit_length(soxr.resample(low, rate, sr, quality="HQ").astype(np.float32), len(wave))


def apply_gain(wave: np.ndarray, gain_db: float) -> np.ndarray:
    return (wave * np.float32(10.0 ** (gain_db / 20.0))).astype(np.float32)


def augment_with_log(wave: np.ndarray, sr: int, rng: np.random.Generator, config: AugmentConfig | None = None,
                     sources: list[np.ndarray] | None = None) -> tuple[np.ndarray, list[str]]:
    """:func:`augment`, also returning what was applied (e.g. ``["speed=0.95", "noise=pink@15dB"]``)."""
    config = config or AugmentConfig()
    applied: list[str] = []
    # Draw every decision up front, in a fixed order, so one transform's randomness never shifts another's.
    do_speed, do_reverb, do_noise, do_phone, do_gain = (
        rng.random() < p for p in (config.speed_prob, config.reverb_prob, config.noise_prob,
                                   config.telephone_prob, config.gain_prob))
    # Drawn only when on, so that a config without it draws exactly what it did before it existed.
    do_voice = config.voice_prob > 0 and rng.random() < config.voice_prob
    do_pad = config.pad_prob > 0 and rng.random() < config.pad_prob
    do_band = config.bandwidth_prob > 0 and rng.random() < config.bandwidth_prob
    out = wave.astype(np.float32)
    if do_voice:
        f0_scale, formant_scale = _log_uniform(rng, *config.f0_range), _log_uniform(rng, *config.formant_range)
        out = convert_voice(out, sr, f0_scale, formant_scale)
        applied.append(f"voice=f0x{f0_scale:.2f},formants{formant_scale:.3f}")
    if do_speed:
        factor = float(rng.uniform(*config.speed_range))
        out = speed_perturb(out, sr, factor)
        applied.append(f"speed={factor:.3f}")
    if do_pad:  # before reverb and noise, so that the pauses carry them too
        before, after = (float(rng.uniform(*config.pad_seconds_range)) for _ in range(2))
        level = float(rng.uniform(*config.pad_level_db_range))
        kind = ("white", "pink", "brown")[int(rng.integers(3))]
        out = pad_edges(out, sr, rng, before, after, level, kind)
        applied.append(f"pad={before:.2f}s+{after:.2f}s,{kind}@{level:.0f}dB")
    if do_reverb:
        rt60 = float(rng.uniform(*config.rt60_range))
        out = reverberate(out, sr, rng, rt60)
        applied.append(f"reverb={rt60:.2f}s")
    if do_noise and config.noise_kinds:
        kind = config.noise_kinds[int(rng.integers(len(config.noise_kinds)))]
        snr = float(config.snr_db_choices[int(rng.integers(len(config.snr_db_choices)))])
        out = add_noise(out, rng, snr, kind, sources)
        applied.append(f"noise={kind}@{snr:g}dB")
    if do_phone:
        out = telephone(out, sr)
        applied.append("telephone")
    elif do_band:
        rate = int(config.bandwidth_rates[int(rng.integers(len(config.bandwidth_rates)))])
        out = limit_bandwidth(out, sr, rate)
        applied.append(f"bandwidth={rate}")
    if do_gain:
        gain = float(rng.uniform(*config.gain_db_range))
        out = apply_gain(out, gain)
        applied.append(f"gain={gain:+.1f}dB")
    peak = float(np.max(np.abs(out))) if len(out) else 0.0
    if peak > 0.99:  # never clip: 16-bit files would wrap or saturate
        out = out * np.float32(0.99 / peak)
    return out.astype(np.float32), applied


def augment(wave: np.ndarray, sr: int, rng: np.random.Generator, config: AugmentConfig | None = None) -> np.ndarray:
    """Apply a random subset of voice conversion, speed, reverb, noise, telephone and gain (each with its
    probability)."""
    return augment_with_log(wave, sr, rng, config)[0]
