"""Shared test fixtures: tiny corpora made inside the tests, never downloaded."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("OMP_NUM_THREADS", "1")

SR = 16000
CHAR_SECONDS = 0.07
ALPHABET = " abcdefghijklmnopqrstuvwxyz'"


def tone_speech(text: str, sr: int = SR, seed: int = 0, rate: float = 1.0) -> np.ndarray:
    """A stand-in for speech that a tiny model learns in seconds: each character is a short chord of
    two tones unique to it (a space is near-silence), with a little noise. Deterministic for a seed."""
    rng = np.random.default_rng(seed)
    pieces = [np.zeros(int(0.1 * sr), np.float32)]
    for char in text:
        n = int(CHAR_SECONDS * sr / rate)
        t = np.arange(n) / sr
        i = ALPHABET.index(char)
        if char == " ":
            piece = np.zeros(n)
        else:
            envelope = np.hanning(n) ** 0.5
            low, high = 250 + 55 * i, 1400 + 170 * i
            piece = envelope * (0.3 * np.sin(2 * np.pi * low * t) + 0.2 * np.sin(2 * np.pi * high * t))
        pieces.append(piece.astype(np.float32))
    pieces.append(np.zeros(int(0.1 * sr), np.float32))
    wave = np.concatenate(pieces)
    return (wave + 0.003 * rng.standard_normal(len(wave))).astype(np.float32)


def write_corpus(root: Path, texts: list[str], subtype: str = "PCM_16") -> Path:
    """Write ``root/clip_i.wav`` for each text and a manifest ``root/manifest.jsonl`` (relative paths)."""
    from speech.manifest import Utterance, write_manifest

    root.mkdir(parents=True, exist_ok=True)
    utterances = []
    for i, text in enumerate(texts):
        wave = tone_speech(text, seed=i)
        path = root / f"clip_{i:03d}.wav"
        sf.write(path, wave, SR, subtype=subtype)
        utterances.append(Utterance(str(path), len(wave) / SR, text))
    manifest = root / "manifest.jsonl"
    write_manifest(manifest, utterances, relative_to=root)
    return manifest


WORDS = ["yes", "no", "up", "down", "left", "right", "stop", "go", "on", "off", "one two", "three four"]


@pytest.fixture
def tone_corpus(tmp_path: Path) -> Path:
    return write_corpus(tmp_path / "corpus", WORDS)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The feature cache of a test lives in its own tmp folder, never in the user's home.
    monkeypatch.setenv("SPEECH_CACHE", str(tmp_path / "feature-cache"))


TINY_TRAIN_CONFIG = {"train": {"batch_size": 4, "learning_rate": 0.004, "warmup_steps": 20, "spec_augment": None,
                               "early_stopping_patience": 0, "checkpoint_every_steps": 0}}
TINY_EPOCHS = 80


def train_tiny(root: Path, manifest: Path, epochs: int = TINY_EPOCHS, extra: list[str] | None = None) -> int:
    import json

    from speech.pipelines.train import main as train_main

    config = root / "tiny.json"
    config.write_text(json.dumps(TINY_TRAIN_CONFIG))
    return train_main(["--train", str(manifest), "--dev", str(manifest), "--output", str(root / "model"),
                       "--preset", "tiny", "--epochs", str(epochs), "--config", str(config), "--no-progress",
                       "--cache-dir", str(root / "cache"), *(extra or [])])


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """``(model folder, manifest)``: the tiny preset trained on the tone corpus (about a minute)."""
    root = tmp_path_factory.mktemp("tiny")
    manifest = write_corpus(root / "corpus", WORDS)
    assert train_tiny(root, manifest) == 0
    return root / "model", manifest


def _small_tiny_spec():
    from speech.features import FeatureConfig
    from speech.model import ModelSpec, preset
    from speech.text import Vocabulary

    return ModelSpec(FeatureConfig(), preset("tiny", lstm_units=32, conv_channels=32), Vocabulary())


SPEC = _small_tiny_spec()  # a smaller tiny model, for tests that train several times


@pytest.fixture
def examples(tone_corpus: Path, tmp_path: Path) -> list:
    """The tone corpus prepared for :data:`SPEC` (features cached in the test's folder)."""
    from speech.dataset import prepare_examples
    from speech.manifest import read_manifest

    examples, _ = prepare_examples(read_manifest(tone_corpus), SPEC.vocab, SPEC.features, SPEC.model,
                                   tmp_path / "cache", jobs=1)
    return examples


def write_arpa(sentences: list[str], path: Path, order: int = 3) -> Path:
    """A small back-off LM over ``sentences`` in ARPA format (no KenLM needed): seen n-grams get 0.8 of their
    relative frequency, every context backs off with weight 0.2, and ``<unk>`` has a small share."""
    import math
    from collections import Counter

    counts = [Counter() for _ in range(order)]
    for sentence in sentences:
        words = ["<s>", *sentence.split(), "</s>"]
        for n in range(1, order + 1):
            for i in range(len(words) - n + 1):
                counts[n - 1][tuple(words[i:i + n])] += 1
    total = sum(c for gram, c in counts[0].items() if gram != ("<s>",))
    sections = []
    for n, grams in enumerate(counts, 1):
        lines = [] if n > 1 else ["-3.0\t<unk>\t0"]
        for gram, count in sorted(grams.items()):
            if n == 1:
                prob = -99.0 if gram == ("<s>",) else math.log10(0.8 * count / total)
            else:
                history = counts[n - 2][gram[:-1]]
                prob = math.log10(0.8 * count / history)
            backoff = f"\t{math.log10(0.2):.4f}" if n < order and gram[-1] != "</s>" else ""
            lines.append(f"{prob:.4f}\t{' '.join(gram)}{backoff}")
        sections.append((n, lines))
    header = ["\\data\\", *(f"ngram {n}={len(lines)}" for n, lines in sections), ""]
    body = [line for n, lines in sections for line in (f"\\{n}-grams:", *lines, "")]
    path.write_text("\n".join([*header, *body, "\\end\\", ""]), encoding="utf-8")
    return path
