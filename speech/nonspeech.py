"""Clips with no speech in them (tones, music-like notes, noise, hum, clicks), for training the model to say nothing.

A model trained only on speech has never been told what silence-with-sound sounds like: a pure tone, a
chord, a hum or plain noise comes out as confident junk words. ``speech synth --non-speech-fraction F``
adds such clips to the train split with an empty transcript and ``"non_speech": true`` in their manifest
line; the CTC loss of an empty label is the all-blank path's (:func:`speech.training.ctc_loss`).

:func:`non_speech_clip` is a function of its ``rng`` alone, like the augmentations.
"""

from __future__ import annotations

import numpy as np

from speech.augment import colored_noise, reverberate

NON_SPEECH_KINDS = ("tone", "chord", "sweep", "notes", "beeps", "noise", "hum", "clicks")


def _envelope(n: int, sr: int, attack: float = 0.01) -> np.ndarray:
    ramp = min(n // 2, max(1, int(attack * sr)))
    env = np.ones(n)
    env[:ramp] = np.linspace(0.0, 1.0, ramp)
    env[n - ramp:] = np.linspace(1.0, 0.0, ramp)
    return env


def _harmonic(freq: np.ndarray | float, t: np.ndarray, sr: int, rng: np.random.Generator,
              harmonics: int) -> np.ndarray:
    """A tone (fixed or gliding ``freq`` in Hz) with ``harmonics`` overtones of random, decaying strength.
    Partials at or above the Nyquist frequency are left out (they would fold back as other tones)."""
    freq = np.broadcast_to(freq, t.shape)
    phase = 2 * np.pi * np.cumsum(freq) / sr
    out = np.zeros_like(t)
    for k in range(1, harmonics + 2):
        out += (k * freq < sr / 2) * rng.uniform(0.2, 1.0) / k * np.sin(k * phase + rng.uniform(0, 2 * np.pi))
    return out


def non_speech_clip(kind: str, seconds: float, sr: int, rng: np.random.Generator) -> np.ndarray:
    """``seconds`` of float32 mono audio of one ``kind`` (:data:`NON_SPEECH_KINDS`), at a random level."""
    n = max(1, int(seconds * sr))
    t = np.arange(n) / sr
    if kind == "tone":  # a steady tone, sometimes with vibrato
        f0 = rng.uniform(80, 3000) * (1 + rng.uniform(0, 0.02) * np.sin(2 * np.pi * rng.uniform(3, 7) * t))
        wave = _harmonic(f0, t, sr, rng, int(rng.integers(0, 4)))
    elif kind == "chord":
        wave = sum(_harmonic(rng.uniform(100, 1200), t, sr, rng, int(rng.integers(0, 5)))
                   for _ in range(int(rng.integers(2, 5))))
    elif kind == "sweep":
        lo, hi = sorted(rng.uniform(60, 6000, 2))
        f = np.geomspace(lo, hi, n) if rng.random() < 0.5 else np.geomspace(hi, lo, n)
        wave = _harmonic(f, t, sr, rng, int(rng.integers(0, 3)))
    elif kind == "notes":  # a melody: notes of an equal-tempered scale, each with an attack and decay
        wave = np.zeros(n)
        start = 0
        while start < n:
            length = min(n - start, int(rng.uniform(0.1, 0.6) * sr))
            f = 440.0 * 2 ** (int(rng.integers(-24, 19)) / 12)
            seg_t = t[:length]
            decay = np.exp(-seg_t * rng.uniform(0.5, 6.0))
            wave[start:start + length] += _harmonic(f, seg_t, sr, rng, int(rng.integers(1, 6))) * decay \
                * _envelope(length, sr, 0.005)
            start += length
    elif kind == "beeps":  # tone bursts with gaps (alarms, phone tones)
        f = rng.uniform(300, 2500, 2)
        on, off = rng.uniform(0.05, 0.5), rng.uniform(0.05, 0.5)
        gate = ((t % (on + off)) < on).astype(float)
        wave = (np.sin(2 * np.pi * f[0] * t) + (rng.random() < 0.5) * np.sin(2 * np.pi * f[1] * t)) * gate
    elif kind == "noise":
        wave = colored_noise(n, rng, str(rng.choice(["white", "pink", "brown"]))).astype(np.float64)
    elif kind == "hum":  # mains hum and its harmonics under a little noise
        base = 50.0 if rng.random() < 0.5 else 60.0
        wave = sum(rng.uniform(0.1, 1.0) / k * np.sin(2 * np.pi * base * k * t) for k in range(1, 6))
        wave = wave + rng.uniform(0.0, 0.05) * colored_noise(n, rng, "pink")
    elif kind == "clicks":  # irregular impulses (keyboard, ticking) over faint noise
        wave = 0.01 * colored_noise(n, rng, "white").astype(np.float64)
        for at in np.cumsum(rng.uniform(0.02, 0.5, int(seconds * 20) + 1)):
            i = int(at * sr)
            if i >= n:
                break
            width = min(n - i, int(rng.integers(10, 200)))
            wave[i:i + width] += rng.uniform(0.3, 1.0) * np.exp(-np.arange(width) / (width / 4)) \
                * rng.standard_normal(width)
    else:
        raise ValueError(f"unknown non-speech kind {kind!r}; known: {', '.join(NON_SPEECH_KINDS)}")
    wave = np.asarray(wave, dtype=np.float64) * _envelope(n, sr)
    if rng.random() < 0.3:
        wave = reverberate(wave.astype(np.float32), sr, rng, float(rng.uniform(0.2, 0.8))).astype(np.float64)
    peak = float(np.max(np.abs(wave))) or 1.0
    return (wave * (rng.uniform(0.05, 0.9) / peak)).astype(np.float32)
