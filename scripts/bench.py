#!/usr/bin/env python3
"""Benchmark a model preset (``small`` by default) on this machine; prints a table, ``--json OUT`` saves it.

Measured on generated speech-like clips (16-bit WAVs in a temp folder):

1. features: the cold path (``extract_features`` on an empty cache) and the cached one, against a naive loop
   making the same features one file at a time with librosa's high-level calls (audio-seconds per wall-second),
   on BLAS's own threads and on one; best of interleaved rounds; on the clips (a small job: one process) and on a
   corpus job of 1,000 other clips (a worker process per core);
2. training: the real ``Trainer`` train step on batches from ``make_dataset`` (audio-seconds per second;
   steps that trace a graph are excluded); "ctc": the same model's train step on 8-second clips at batch 16
   and 64, with dense and with sparse CTC labels (the Trainer uses sparse on CPU);
3. inference: real-time factor of the model on feature batches, and batch transcription with
   ``Transcriber.transcribe_files`` (the model's decoding, ``--no-search`` and greedy) in audio-seconds per
   CPU-second (worker processes included) and CPU-seconds per audio-second beside PocketSphinx 5.1.1's on the
   same audio (``pip install -r requirements-bench.txt``), on the clips and on one 10-minute recording;
4. export: latency of the exported SavedModel on one 5-second clip (needs ``pipelines/export.py``);
5. torch: the same training step for an equal PyTorch model on the same batches, and the TF/PyTorch ratio
   (``pip install -r requirements-bench.txt``).

The default mode takes a few minutes on 2 cores; ``--quick`` uses tiny sizes (for the tests).
Heavy libraries are imported inside the functions: worker processes re-import this file.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

    from speech.features import FeatureConfig
    from speech.model import ModelConfig, ModelSpec

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SR = 16000
SECTIONS = ("features", "input", "training", "ctc", "inference", "transcribe", "export", "torch")
WORDS = ("the quick brown fox jumps over a lazy dog she sells sea shells by the shore "
         "one two three four five six seven eight nine ten yes no up down left right stop go").split()


@dataclass(frozen=True)
class Sizes:
    clips: int
    min_seconds: float
    max_seconds: float
    batch_size: int
    train_steps: int  # measured steps, after the ones that trace a graph
    latency_calls: int
    long_seconds: float  # the one long recording the "transcribe" section also decodes
    # The "features" section also measures a job of this many clips, where extract_features starts worker processes
    # (speech.features.PARALLEL_MIN_FILES), as a corpus's featurizing does; 0: not measured.
    corpus_clips: int


DEFAULT_SIZES = Sizes(clips=200, min_seconds=2.0, max_seconds=8.0, batch_size=16, train_steps=5, latency_calls=10,
                      long_seconds=600.0, corpus_clips=1000)
QUICK_SIZES = Sizes(clips=24, min_seconds=1.0, max_seconds=2.0, batch_size=8, train_steps=2, latency_calls=3,
                    long_seconds=20.0, corpus_clips=0)
# The "ctc" section: (clip seconds, batch sizes). 8-second clips with 16.7 characters a second, the built-in
# corpus's median speaking rate.
CTC_SIZES = {"default": (8.0, (16, 64)), "quick": (1.0, (2, 4))}


@dataclass
class Clip:
    path: str
    seconds: float
    text: str


# ---------------------------------------------------------------------------------------------------------
# Timing helpers


def _stop_forkserver() -> bool:
    """Stop multiprocessing's fork server; False if this Python has no way to.

    Pool workers are children of the fork server, not of this process, so ``RUSAGE_CHILDREN`` counts
    their CPU time only after the fork server has exited and been waited for. The next pool starts a new one.
    """
    from multiprocessing import forkserver

    stop = getattr(getattr(forkserver, "_forkserver", None), "_stop", None)
    if stop is None:
        return False
    stop()
    return True


def cpu_seconds() -> float:
    """CPU seconds (user + system) of this process and of every finished child, pool workers included."""
    _stop_forkserver()
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def rate(amount: float, seconds: float) -> float:
    return amount / max(seconds, 1e-9)


# ---------------------------------------------------------------------------------------------------------
# Data


def speechlike(text: str, seed: int = 0, char_seconds: float = 0.07) -> np.ndarray:
    """Speech-like audio (the recipe of ``tests/conftest.tone_speech``): a two-tone chord per character,
    near-silence for a space, 100 ms of silence at each end, a little noise."""
    alphabet = " abcdefghijklmnopqrstuvwxyz'"
    rng = np.random.default_rng(seed)
    pieces = [np.zeros(int(0.1 * SR))]
    n = int(char_seconds * SR)
    t = np.arange(n) / SR
    envelope = np.hanning(n) ** 0.5
    for char in text:
        i = alphabet.index(char)
        low, high = 250 + 55 * i, 1400 + 170 * i
        chord = envelope * (0.3 * np.sin(2 * np.pi * low * t) + 0.2 * np.sin(2 * np.pi * high * t))
        pieces.append(np.zeros(n) if char == " " else chord)
    pieces.append(np.zeros(int(0.1 * SR)))
    wave = np.concatenate(pieces)
    return (wave + 0.003 * rng.standard_normal(len(wave))).astype(np.float32)


def random_text(rng: np.random.Generator, seconds: float, char_seconds: float = 0.07) -> str:
    """Words whose ``speechlike`` audio lasts about ``seconds``."""
    chars = max(1, int((seconds - 0.2) / char_seconds))
    words: list[str] = []
    while sum(len(w) + 1 for w in words) < chars:
        words.append(str(rng.choice(WORDS)))
    return " ".join(words)[:chars].strip()


def write_clip(path: Path, text: str, seed: int, seconds: float | None = None) -> Clip:
    """Write a 16-bit WAV; ``seconds`` pads or trims it to an exact length."""
    import soundfile as sf

    wave = speechlike(text, seed)
    if seconds is not None:
        wave = np.pad(wave, (0, max(0, int(seconds * SR) - len(wave))))[:int(seconds * SR)]
    sf.write(path, wave, SR, subtype="PCM_16")
    return Clip(str(path), len(wave) / SR, text)


def make_clips(directory: Path, sizes: Sizes, seed: int = 0) -> list[Clip]:
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    return [write_clip(directory / f"clip_{i:04d}.wav", random_text(rng, rng.uniform(sizes.min_seconds,
                                                                                    sizes.max_seconds)), seed=i)
            for i in range(sizes.clips)]


# ---------------------------------------------------------------------------------------------------------
# 1. Features


def bench_features(clips: Sequence[Clip], cache_dir: Path, rounds: int = 3) -> dict:
    """The cold feature path against a naive loop that makes the same features, on the same clips.

    Cold path: ``extract_features`` on an empty cache (read, edge-silence cut, MFCC, normalisation, cache writes)
    with a worker process per core (below ``PARALLEL_MIN_FILES`` files to compute, this process alone, one file at a
    time; every round starts its pool afresh); cached: the same call again. Naive loop: one file at a time,
    ``librosa.load``, the same edge cut, ``librosa.feature.melspectrogram`` + ``power_to_db`` + ``mfcc``, the same
    normalisation, no cache; on BLAS's default threads (librosa's mel product goes through BLAS) and on one BLAS
    thread, the single-threaded loop. Every figure is the best of ``rounds`` interleaved rounds (a shared
    machine's speed moves 10-30% from run to run); the largest difference between the two paths' features is
    reported, to show that they make the same features.
    """
    import shutil

    from threadpoolctl import threadpool_limits

    from speech.features import PARALLEL_MIN_FILES, FeatureConfig, compute_features, extract_features

    config = FeatureConfig()
    paths = [c.path for c in clips]
    audio = sum(c.seconds for c in clips)
    jobs = os.cpu_count() or 1
    # "Cold" means an empty cache, not a first call's one-off costs (imports, numba's compiled code, filterbanks).
    compute_features(np.zeros(config.sample_rate, np.float32) + 0.01, config)
    naive_features(paths[0], config)
    wall: dict[str, list[float]] = {"cold": [], "naive": [], "naive_one_blas_thread": []}
    cold_cpu: list[float] = []
    naive_out: list[np.ndarray] = []
    # Each round writes a new cache, all removed only at the end: on ext4 without a journal, a file created soon
    # after many were deleted costs up to 20 times as much (the allocator passes over the inodes just freed), which
    # a round deleting its cache would charge to the next round's writes.
    spent = []
    for i in range(rounds):
        directory = cache_dir if i == 0 else cache_dir.parent / f"{cache_dir.name}-cold-{i}"
        cpu0, start = cpu_seconds(), time.perf_counter()
        results = extract_features(paths, config, directory, jobs=jobs)
        wall["cold"].append(time.perf_counter() - start)
        cold_cpu.append(cpu_seconds() - cpu0)
        failed = [r for r in results if r.error]
        if failed:
            raise RuntimeError(f"feature extraction failed: {failed[0].audio_path}: {failed[0].error}")
        if directory != cache_dir:
            spent.append(directory)
        wall["naive"].append(naive_librosa_seconds(paths, config)[0])
        with threadpool_limits(limits=1, user_api="blas"):
            seconds, naive_out = naive_librosa_seconds(paths, config)
        wall["naive_one_blas_thread"].append(seconds)
    start = time.perf_counter()
    cached = extract_features(paths, config, cache_dir, jobs=jobs)
    cached_seconds = time.perf_counter() - start
    diff = max(float(np.max(np.abs(np.load(r.cache_path) - naive)))
               for r, naive in zip(cached, naive_out, strict=True))
    create_ms = file_create_ms(cache_dir.parent)
    for directory in spent:
        shutil.rmtree(directory)
    best = {key: min(times) for key, times in wall.items()}
    return {"clips": len(clips), "audio_seconds": audio, "jobs": jobs, "rounds": rounds,
            "parallel_min_files": PARALLEL_MIN_FILES,
            "cold_audio_s_per_s": rate(audio, best["cold"]), "cold_audio_s_per_cpu_s": rate(audio, min(cold_cpu)),
            "cached_audio_s_per_s": rate(audio, cached_seconds),
            "naive_librosa_audio_s_per_s": rate(audio, best["naive"]),
            "naive_librosa_one_blas_thread_audio_s_per_s": rate(audio, best["naive_one_blas_thread"]),
            "cold_over_naive": best["naive"] / best["cold"], "file_create_ms": create_ms,
            "cold_over_naive_one_blas_thread": best["naive_one_blas_thread"] / best["cold"],
            "max_abs_diff": diff}


def file_create_ms(directory: Path, files: int = 300) -> float:
    """Milliseconds to create an empty file in a new folder in ``directory``: the least that a cache entry costs.
    It was 0.02-0.05 ms on this machine's disk, and up to 0.75 ms among the inodes of files deleted in the minute
    before (ext4 without a journal)."""
    import shutil

    folder = Path(tempfile.mkdtemp(dir=directory))
    start = time.perf_counter()
    for i in range(files):
        os.close(os.open(folder / str(i), os.O_WRONLY | os.O_CREAT, 0o644))
    seconds = time.perf_counter() - start
    shutil.rmtree(folder)
    return seconds / files * 1e3


def features_at_two_scales(clips: Sequence[Clip], cache_dir: Path, sizes: Sizes, corpus_dir: Path,
                           rounds: int) -> dict:
    """:func:`bench_features` on the clips, and (keys ``corpus_...``) on a job of ``sizes.corpus_clips`` other
    clips, made in ``corpus_dir`` and removed afterwards."""
    import shutil
    from dataclasses import replace

    figures = bench_features(clips, cache_dir, rounds)
    if sizes.corpus_clips:
        corpus = make_clips(corpus_dir / "clips", replace(sizes, clips=sizes.corpus_clips), seed=3)
        at_scale = bench_features(corpus, corpus_dir / "cache", rounds)
        shutil.rmtree(corpus_dir)
        figures.update({f"corpus_{key}": value for key, value in at_scale.items()})
    return figures


def naive_features(path: str, config: FeatureConfig) -> np.ndarray:
    """The features of ``speech.features`` for one file, the plain way: ``librosa.load``, the edge cut
    (``speech_bounds``), librosa's high-level ``melspectrogram``, ``power_to_db`` and ``mfcc``, then the
    per-utterance normalisation."""
    import librosa

    from speech.features import normalize_features, speech_bounds

    wave, sr = librosa.load(path, sr=config.sample_rate)
    start, end = speech_bounds(wave, sr, config.trim_silence_db, floor_margin_db=config.trim_floor_margin_db)
    power = librosa.feature.melspectrogram(
        y=wave[start:end], sr=sr, n_fft=config.n_fft, hop_length=config.hop_length, win_length=config.win_length,
        window="hann", center=True, pad_mode="constant", power=2.0, n_mels=config.n_mels, fmin=config.fmin,
        fmax=config.fmax, htk=False, norm="slaney")
    log_power = librosa.power_to_db(power, ref=1.0, amin=1e-10, top_db=None)
    mfcc = librosa.feature.mfcc(S=log_power, n_mfcc=config.n_mfcc, dct_type=2, norm="ortho")
    return normalize_features(mfcc.T.astype(np.float32))


def naive_librosa_seconds(paths: Sequence[str], config: FeatureConfig) -> tuple[float, list[np.ndarray]]:
    """Wall seconds of :func:`naive_features` one file at a time, and the features."""
    start = time.perf_counter()
    features = [naive_features(path, config) for path in paths]
    return time.perf_counter() - start, features


# ---------------------------------------------------------------------------------------------------------
# 2. Training (TensorFlow) and 5. the same step in PyTorch


def model_spec(preset_name: str) -> ModelSpec:
    from speech.features import FeatureConfig
    from speech.model import ModelSpec, preset
    from speech.text import Vocabulary

    return ModelSpec(FeatureConfig(), preset(preset_name), Vocabulary())


def training_examples(clips: Sequence[Clip], spec: ModelSpec, cache_dir: Path) -> list:
    """The clips as training examples (features in ``cache_dir``), as the trainer prepares them."""
    from speech.dataset import prepare_examples
    from speech.manifest import Utterance

    utterances = [Utterance(c.path, c.seconds, c.text) for c in clips]
    examples, skipped = prepare_examples(utterances, spec.vocab, spec.features, spec.model, cache_dir)
    if not examples:
        raise RuntimeError(f"no usable training example ({len(skipped)} skipped)")
    return examples


def training_batches(clips: Sequence[Clip], spec: ModelSpec, cache_dir: Path, batch_size: int,
                     count: int) -> list[tuple]:
    """``count`` batches ``(features, lengths, labels, label_lengths)`` as numpy, from the real input pipeline."""
    from speech.dataset import make_dataset
    from speech.training import TrainConfig

    examples = training_examples(clips, spec, cache_dir)
    config = TrainConfig(batch_size=batch_size)
    ds = make_dataset(examples, spec.features.n_mfcc, batch_size, shuffle=True, seed=config.seed,
                      spec_augment=config.spec_augment, max_batch_frames=config.max_batch_frames)
    return [tuple(t.numpy() for t in batch[:4]) for batch in ds.repeat().take(count)]


def bench_input(clips: Sequence[Clip], spec: ModelSpec, cache_dir: Path, batch_size: int) -> dict:
    """One pass of the training input pipeline over cached features (read, SpecAugment, bucket, pad), and the
    trainer's steps-per-epoch count from the clip lengths alone (it used to take such a pass)."""
    from speech.dataset import ExampleSource, make_dataset
    from speech.training import TrainConfig

    examples = training_examples(clips, spec, cache_dir)
    config = TrainConfig(batch_size=batch_size)
    start = time.perf_counter()
    batches, frames = 0, 0
    for batch in make_dataset(examples, spec.features.n_mfcc, batch_size, shuffle=True, seed=config.seed,
                              spec_augment=config.spec_augment, max_batch_frames=config.max_batch_frames):
        batches, frames = batches + 1, frames + int(batch[1].numpy().sum())
    pass_seconds = time.perf_counter() - start
    start = time.perf_counter()
    counted = ExampleSource(examples, spec.features.n_mfcc).num_batches(batch_size, config.max_batch_frames)
    count_seconds = time.perf_counter() - start
    if counted != batches:
        raise RuntimeError(f"count_batches says {counted} batches, the pipeline made {batches}")
    return {"pass_audio_s_per_s": rate(frames * spec.features.frame_seconds, pass_seconds),
            "count_ms": count_seconds * 1000, "batches": batches, "examples": len(examples)}


def batch_audio_seconds(batch: tuple, spec: ModelSpec) -> float:
    return float(batch[1].sum()) * spec.features.frame_seconds


def bench_training(batches: Sequence[tuple], spec: ModelSpec, batch_size: int, steps: int,
                   output_dir: Path) -> tuple[dict, list[tuple]]:
    """The Trainer's compiled train step (default TrainConfig: SpecAugment on, clipping, finite-check);
    steps that (re)trace the graph are warm-up and not counted.

    Returns the figures and the batches that were measured (for the PyTorch comparison).
    """
    from speech.training import TrainConfig, Trainer

    trainer = Trainer(spec, TrainConfig(batch_size=batch_size), output_dir)
    trainer._build_steps()
    step = trainer._train_step
    measured: list[tuple] = []
    seconds = 0.0
    for batch in batches:
        traces, start = step.experimental_get_tracing_count(), time.perf_counter()
        loss, _ = step(*batch)
        float(loss)  # wait for the result
        if step.experimental_get_tracing_count() == traces:
            seconds += time.perf_counter() - start
            measured.append(batch)
            if len(measured) == steps:
                break
    if not measured:
        raise RuntimeError("every training step traced a graph: give more batches")
    audio = sum(batch_audio_seconds(b, spec) for b in measured)
    return {"batch_size": trainer.config.batch_size, "steps": len(measured),
            "mean_batch": float(np.mean([b[1].shape[0] for b in measured])), "audio_seconds": audio,
            "audio_s_per_s": rate(audio, seconds)}, measured


def bench_ctc(spec: ModelSpec, seconds: float, batch_sizes: Sequence[int], steps: int) -> dict:
    """Training speed by batch size and by the CTC loss's label form (dense: TF-ops forward-backward; sparse: the
    C++ kernel, what the Trainer uses on CPU): one train step of the model on random features of one length."""
    import keras
    import tensorflow as tf

    from speech.training import ctc_loss

    frames = int(seconds / spec.features.frame_seconds)
    label_length = min(int(16.7 * seconds), spec.model.output_length(frames) // 2)
    model, optimizer = spec.build(), keras.optimizers.Adam(1e-5)
    figures: dict = {"clip_seconds": seconds, "label_length": label_length}
    rng = np.random.default_rng(0)
    for sparse in (False, True):
        @tf.function(reduce_retracing=True)
        def step(features, lengths, labels, label_lengths, sparse=sparse):
            with tf.GradientTape() as tape:
                logits = model({"features": features, "lengths": lengths}, training=True)
                loss = tf.reduce_mean(ctc_loss(labels, logits, label_lengths, spec.model.output_length(lengths),
                                               spec.vocab.blank, sparse))
            grads = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(grads, model.trainable_variables))
            return loss

        for batch_size in batch_sizes:
            batch = (rng.standard_normal((batch_size, frames, spec.features.n_mfcc)).astype(np.float32),
                     np.full(batch_size, frames, np.int32),
                     rng.integers(0, spec.vocab.blank, (batch_size, label_length)).astype(np.int32),
                     np.full(batch_size, label_length, np.int32))
            float(step(*batch))  # traces
            start = time.perf_counter()
            for _ in range(steps):
                float(step(*batch))
            key = f"{'sparse' if sparse else 'dense'}_batch{batch_size}_audio_s_per_s"
            figures[key] = rate(batch_size * seconds * steps, time.perf_counter() - start)
    return figures


def torch_model(config: ModelConfig, num_classes: int) -> torch.nn.Module:
    """A PyTorch twin of ``speech.model.build_model``: conv + LayerNorm + GELU, (Bi)LSTMs on packed
    sequences (the Keras mask), dropout after each, a linear head."""
    import torch
    from torch import nn
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    class LstmCtc(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            size = config.num_features
            if config.conv_channels:
                self.conv = nn.Conv1d(size, config.conv_channels, config.conv_kernel, stride=config.conv_stride,
                                      padding=config.conv_kernel // 2)
                self.norm = nn.LayerNorm(config.conv_channels, eps=1e-3)  # Keras' default epsilon
                self.act = nn.GELU()
                size = config.conv_channels
            self.lstms = nn.ModuleList()
            for _ in range(config.lstm_layers):
                self.lstms.append(nn.LSTM(size, config.lstm_units, batch_first=True,
                                          bidirectional=config.bidirectional))
                size = config.lstm_units * (2 if config.bidirectional else 1)
            self.dropout = nn.Dropout(config.dropout)
            self.head = nn.Linear(size, num_classes)

        def forward(self, features, lengths):
            valid = torch.arange(features.shape[1])[None, :] < lengths[:, None]
            x = features * valid[:, :, None]
            if config.conv_channels:
                x = self.act(self.norm(self.conv(x.transpose(1, 2)).transpose(1, 2)))
            out_lengths = torch.div(lengths - 1, config.subsampling, rounding_mode="floor") + 1
            for lstm in self.lstms:
                packed = pack_padded_sequence(x, out_lengths, batch_first=True, enforce_sorted=False)
                x, _ = pad_packed_sequence(lstm(packed)[0], batch_first=True, total_length=x.shape[1])
                x = self.dropout(x)
            return self.head(x), out_lengths

    return LstmCtc()


def torch_installed() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def bench_torch(batches: Sequence[tuple], spec: ModelSpec) -> dict:
    """The same training step in PyTorch (CTC loss averaged per utterance, Adam, clipping at 5) on ``batches``;
    the first step is warm-up."""
    import torch

    torch.set_num_threads(os.cpu_count() or 1)
    torch.manual_seed(0)
    model = torch_model(spec.model, spec.vocab.num_classes)
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    ctc = torch.nn.CTCLoss(blank=spec.vocab.blank, reduction="sum", zero_infinity=True)

    def step(features, lengths, labels, label_lengths) -> float:
        logits, out_lengths = model(torch.from_numpy(features), torch.from_numpy(lengths).long())
        log_probs = logits.log_softmax(-1).transpose(0, 1)  # [T', B, C]
        loss = ctc(log_probs, torch.from_numpy(labels).long(), out_lengths,
                   torch.from_numpy(label_lengths).long()) / features.shape[0]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optimizer.step()
        return loss.item()

    step(*batches[0])
    start = time.perf_counter()
    for batch in batches:
        step(*batch)
    seconds = time.perf_counter() - start
    audio = sum(batch_audio_seconds(b, spec) for b in batches)
    return {"torch_version": torch.__version__, "threads": torch.get_num_threads(), "steps": len(batches),
            "audio_seconds": audio, "audio_s_per_s": rate(audio, seconds)}


# ---------------------------------------------------------------------------------------------------------
# 3. Inference


def save_fresh_model(spec: ModelSpec, directory: Path) -> Path:
    """The preset with random weights (speed does not depend on the weights)."""
    from speech.model import save_model

    save_model(directory, spec.build(), spec)
    return directory


def bench_inference(clips: Sequence[Clip], model_dir: Path, cache_dir: Path, batch_size: int) -> dict:
    """Real-time factor of the Transcriber's batched predict on cached features (wall and CPU seconds)."""
    from speech.features import FeatureCache
    from speech.transcribe import Transcriber

    transcriber = Transcriber(str(model_dir), batch_size=batch_size)
    cache = FeatureCache(cache_dir, transcriber.spec.features)
    features = [cache.get_or_compute(c.path)[1] for c in clips]
    transcriber.log_probs(features[:2])  # traces the predict function
    cpu0, start = time.process_time(), time.perf_counter()
    transcriber.log_probs(features)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu0
    audio = sum(c.seconds for c in clips)
    return {"batch_size": batch_size, "audio_seconds": audio, "rtf": wall / audio, "rtf_cpu": cpu / audio}


def _pocketsphinx_cpu(paths: Sequence[str]) -> float | None:
    """CPU-seconds PocketSphinx 5.1.1 (stock en-us model) spends on ``paths``, fed 30 s at a time; None when it
    is not installed (``pip install -r requirements-bench.txt``)."""
    try:
        from bench_real import pocketsphinx_decoder, pocketsphinx_text
    except ImportError:
        return None
    try:
        decoder = pocketsphinx_decoder()
    except ImportError:
        return None
    from speech.audio import load_audio

    start = cpu_seconds()
    for path in paths:
        wave = load_audio(path, SR)
        for begin in range(0, len(wave), 30 * SR):
            pocketsphinx_text(decoder, wave[begin:begin + 30 * SR])
    return cpu_seconds() - start


DECODINGS = (("", None, None), ("one_hop_", None, ()), ("greedy_", 1, None))  # the model's own, --no-search, greedy


def bench_transcribe(clips: Sequence[Clip], long_clip: Clip, model_dir: Path, model_name: str) -> dict:
    """``Transcriber.transcribe_files`` with the model's own decoding (the bundled model: the LM beam search),
    the same with no search (``one_hop_``: the model's own features only) and greedy, on the clips and on one long
    recording (``long_``): audio-seconds per CPU-second (process + workers) and per wall-second, CPU-seconds per
    audio-second, and how many times PocketSphinx's CPU that is on the same audio."""
    from speech.transcribe import Transcriber, model_decoding

    figures: dict = {"model": model_name, "files": len(clips), "long_seconds": long_clip.seconds}
    for where, paths in (("", [c.path for c in clips]), ("long_", [long_clip.path])):
        pocketsphinx = _pocketsphinx_cpu(paths)
        for prefix, beam_width, search in DECODINGS:
            options = model_decoding(str(model_dir), beam_width, hop_lengths=search, fmaxes=search)
            transcriber = Transcriber(str(model_dir), options)
            transcriber.transcribe_waveform(speechlike("warm up"))  # traces the network and the search
            cpu0, start = cpu_seconds(), time.perf_counter()
            transcripts = list(transcriber.transcribe_files(paths))
            wall, cpu = time.perf_counter() - start, cpu_seconds() - cpu0
            errors = [t for t in transcripts if t.error]
            if errors:
                raise RuntimeError(f"transcription failed: {errors[0].audio_filepath}: {errors[0].error}")
            audio = sum(t.duration for t in transcripts)
            key = where + prefix
            figures.update({f"{prefix}decoder": type(transcriber.decoder).__name__, f"{where}audio_seconds": audio,
                            f"{prefix}variants": len(transcriber.variants),
                            f"{key}audio_s_per_cpu_s": rate(audio, cpu), f"{key}audio_s_per_s": rate(audio, wall),
                            f"{key}cpu_per_audio_s": cpu / audio, "workers_counted": _stop_forkserver()})
            if pocketsphinx is not None:
                figures[f"{where}pocketsphinx_cpu_per_audio_s"] = pocketsphinx / audio
                figures[f"{key}times_pocketsphinx_speed"] = pocketsphinx / cpu
    return figures


# ---------------------------------------------------------------------------------------------------------
# 4. SavedModel export


def bench_export(model_dir: Path, model_name: str, clip: Clip, output: Path, calls: int) -> dict:
    """Export with ``speech.pipelines.export`` and time the serving signature on one clip (median after warm-up)."""
    try:
        from speech.pipelines.export import main as export_main
    except ImportError as e:
        return {"skipped": f"pipelines/export.py is not available ({e})"}
    try:
        code = export_main(["--model", str(model_dir), "--output", str(output)])
    except SystemExit as e:
        code = e.code
    except Exception as e:  # another engineer's work in progress: report, never crash the benchmark
        return {"skipped": f"export failed ({type(e).__name__}: {e})"}
    if code not in (0, None):
        return {"skipped": f"export exited with {code}"}
    import tensorflow as tf

    version_dir = output / "1" if (output / "1").is_dir() else output
    try:
        serve = tf.saved_model.load(str(version_dir)).signatures["serving_default"]
        audio = tf.constant([Path(clip.path).read_bytes()])
        for _ in range(2):
            serve(audio=audio)
        times = []
        for _ in range(calls):
            start = time.perf_counter()
            serve(audio=audio)
            times.append(time.perf_counter() - start)
    except Exception as e:
        return {"skipped": f"cannot run the exported SavedModel ({type(e).__name__}: {e})"}
    median = statistics.median(times)
    return {"model": model_name, "clip_seconds": clip.seconds, "calls": calls, "latency_ms": 1000 * median,
            "rtf": median / clip.seconds}


# ---------------------------------------------------------------------------------------------------------
# Report


def machine() -> dict:
    import keras
    import tensorflow as tf

    cpu = platform.processor() or ""
    try:
        names = [line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                 if line.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    return {"cores": os.cpu_count(), "cpu": cpu, "load_average": [round(x, 2) for x in os.getloadavg()],
            "python": platform.python_version(), "tensorflow": tf.__version__, "keras": keras.__version__,
            "tensorflow_op_threads": [tf.config.threading.get_intra_op_parallelism_threads(),
                                      tf.config.threading.get_inter_op_parallelism_threads()]}


def run_section(name: str, report: dict, skip: set[str], fn: Callable[[], dict]) -> None:
    """Run one measurement into ``report[name]``, printing its progress; a skipped one says why."""
    if name in skip:
        report[name] = {"skipped": "--skip"}
        return
    print(f"... {name}", file=sys.stderr, flush=True)
    start = time.perf_counter()
    report[name] = fn()
    report[name]["wall_seconds"] = time.perf_counter() - start


ROWS = [  # section, key, label, unit, format
    *(("features", f"{scale}{key}", label.format(what), unit, fmt)
      for scale, what in (("", "the clips"), ("corpus_", "the corpus job"))
      for key, label, unit, fmt in (
          ("naive_librosa_audio_s_per_s", "{}: naive loop (librosa, one file at a time), BLAS's own threads",
           "audio-s / s", ",.0f"),
          ("naive_librosa_one_blas_thread_audio_s_per_s", "{}: naive loop on one BLAS thread (single-threaded)",
           "audio-s / s", ",.0f"),
          ("cold_audio_s_per_s", "{}: cold path (extract_features, empty cache)", "audio-s / s", ",.0f"),
          ("cold_audio_s_per_cpu_s", "{}: cold path per CPU-second", "audio-s / CPU-s", ",.0f"),
          ("cached_audio_s_per_s", "{}: extract_features, cached", "audio-s / s", ",.0f"),
          ("cold_over_naive", "{}: cold path / naive loop", "x", ".2f"),
          ("cold_over_naive_one_blas_thread", "{}: cold path / naive loop on one BLAS thread", "x", ".2f"),
          ("max_abs_diff", "{}: largest |cold path - naive loop| feature difference", "", ".1e"),
          ("file_create_ms", "{}: one empty file created in the cache's folder", "ms", ".3f"))),
    ("input", "pass_audio_s_per_s", "one pass of the input pipeline (cached features)", "audio-s / s", ",.0f"),
    ("input", "count_ms", "steps per epoch from clip lengths (count_batches)", "ms", ",.2f"),
    ("training", "audio_s_per_s", "TensorFlow train step", "audio-s / s", ",.1f"),
    *(("ctc", f"{form}_batch{b}_audio_s_per_s", f"train step, {form} CTC labels, batch {b}", "audio-s / s", ",.1f")
      for b in sorted({b for _, sizes in CTC_SIZES.values() for b in sizes}) for form in ("dense", "sparse")),
    ("torch", "audio_s_per_s", "PyTorch train step (same model and batches)", "audio-s / s", ",.1f"),
    ("torch", "tf_over_torch", "TensorFlow / PyTorch", "x", ".2f"),
    ("inference", "rtf", "real-time factor, batched predict", "s / audio-s", ".4f"),
    ("inference", "rtf_cpu", "real-time factor in CPU-seconds", "CPU-s / audio-s", ".4f"),
    ("transcribe", "audio_s_per_cpu_s", "transcribe_files, model's decoding", "audio-s / CPU-s", ",.0f"),
    ("transcribe", "audio_s_per_s", "transcribe_files, model's decoding, wall clock", "audio-s / s", ",.0f"),
    ("transcribe", "one_hop_audio_s_per_cpu_s", "transcribe_files, model's decoding with --no-search",
     "audio-s / CPU-s", ",.0f"),
    ("transcribe", "greedy_audio_s_per_cpu_s", "transcribe_files, greedy", "audio-s / CPU-s", ",.0f"),
    *(("transcribe", f"{where}{key}", f"{what}, {label}", unit, fmt)
      for where, what in (("", "the clips"), ("long_", "the long recording"))
      for key, label, unit, fmt in (
          ("cpu_per_audio_s", "model's decoding", "CPU-s / audio-s", ".4f"),
          ("one_hop_cpu_per_audio_s", "--no-search", "CPU-s / audio-s", ".4f"),
          ("greedy_cpu_per_audio_s", "greedy", "CPU-s / audio-s", ".4f"),
          ("pocketsphinx_cpu_per_audio_s", "PocketSphinx 5.1.1", "CPU-s / audio-s", ".4f"),
          ("times_pocketsphinx_speed", "model's decoding, speed over PocketSphinx's", "x", ".1f"),
          ("one_hop_times_pocketsphinx_speed", "--no-search, speed over PocketSphinx's", "x", ".1f"),
          ("greedy_times_pocketsphinx_speed", "greedy, speed over PocketSphinx's", "x", ".1f"))),
    ("export", "latency_ms", "SavedModel, one 5 s clip, median", "ms", ",.1f"),
    ("export", "rtf", "SavedModel real-time factor", "s / audio-s", ".4f"),
]


SECTION_NOTES: dict[str, Callable[[dict], str]] = {
    "features": lambda f: (f"{f['clips']} clips" + (f" and a corpus job of {f['corpus_clips']:,} others"
                                                     if "corpus_clips" in f else "")
                           + f", best of {f['rounds']} interleaved rounds;\n"
                           "  cold path: read, edge cut, MFCC, normalise, write the cache; "
                           + (f"{f['jobs']} worker processes from {f['parallel_min_files']:,} files to compute, "
                              "below that this process;\n" if f["jobs"] > 1 else "this process (one core);\n")
                           + "  naive loop: librosa.load, the same cut, librosa's melspectrogram + power_to_db + mfcc, "
                           "normalise, no cache"),
    "input": lambda f: f"{f['examples']} clips, {f['batches']} batches",
    "training": lambda f: f"batch {f['batch_size']}, mean {f['mean_batch']:.1f} clips, {f['steps']} steps",
    "ctc": lambda f: f"random features, {f['clip_seconds']:g} s clips, {f['label_length']} labels each",
    "torch": lambda f: f"torch {f['torch_version']}, {f['threads']} threads, same batches",
    "transcribe": lambda f: (f"model: {f['model']}, decoder: {f['decoder']}, feature variants: {f['variants']}; "
                             f"long recording {f['long_seconds']:.0f} s; in-process CPU, model loaded and traced"),
    "export": lambda f: f"model: {f['model']}",
}


def format_report(report: dict) -> str:
    m = report["machine"]
    lines = [f"speech benchmark: preset {report['preset']}, {report['mode']} mode",
             f"machine: {m['cores']} cores ({m['cpu']}), load average {'/'.join(map(str, m['load_average']))}, "
             f"Python {m['python']}, TensorFlow {m['tensorflow']} on "
             f"{report.get('tensorflow_threads') or 'its own choice of'} thread(s), Keras {m['keras']}",
             f"data: {report['data']['clips']} clips, {report['data']['audio_seconds']:.1f} audio-seconds "
             f"({report['data']['min_seconds']:g}-{report['data']['max_seconds']:g} s, 16-bit WAV)"]
    width = max(len(label) for _, _, label, _, _ in ROWS)
    section = None
    for name, key, label, unit, fmt in ROWS:
        figures = report.get(name)
        if not figures:  # not run
            continue
        if name != section:
            section = name
            note = SECTION_NOTES.get(name)
            header = f"{name}: skipped: {figures['skipped']}" if "skipped" in figures else name
            if note and "skipped" not in figures:
                header += f" ({note(figures)})"
            lines += ["", header]
        if key in figures:
            lines.append(f"  {label:<{width}}  {format(figures[key], fmt):>10}  {unit}")
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="tiny sizes: checks that everything runs (for the tests)")
    p.add_argument("--json", metavar="OUT", help="also write the figures to this JSON file")
    p.add_argument("--skip", default="", help=f"comma-separated sections to skip: {','.join(SECTIONS)}")
    p.add_argument("--preset", default="small", help="model preset (default: small)")
    p.add_argument("--threads", type=int, default=0, help="TensorFlow threads, as `speech transcribe --threads` sets "
                   "them, for every section (default 0: TensorFlow's choice)")
    args = p.parse_args(argv)
    args.skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    unknown = args.skip - set(SECTIONS)
    if unknown:
        p.error(f"unknown section(s) in --skip: {', '.join(sorted(unknown))}; choose from {', '.join(SECTIONS)}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    sizes = QUICK_SIZES if args.quick else DEFAULT_SIZES
    print("... generating clips and loading TensorFlow", file=sys.stderr, flush=True)
    from speech.errors import ModelError
    from speech.model import DEFAULT_MODEL_DIR, resolve_model_dir
    from speech.transcribe import set_tensorflow_threads

    set_tensorflow_threads(args.threads)
    spec = model_spec(args.preset)
    report: dict = {"preset": args.preset, "mode": "quick" if args.quick else "default", "machine": machine(),
                    "tensorflow_threads": args.threads,
                    "model_config": spec.model.to_json(), "sizes": asdict(sizes)}
    report.update({name: {"skipped": "--skip"} for name in args.skip})
    with tempfile.TemporaryDirectory(prefix="speech-bench-") as tmp_name:
        tmp = Path(tmp_name)
        clips = make_clips(tmp / "clips", sizes)
        five = write_clip(tmp / "five_seconds.wav", random_text(np.random.default_rng(1), 5.0), seed=1, seconds=5.0)
        report["data"] = {"clips": len(clips), "audio_seconds": sum(c.seconds for c in clips),
                          "min_seconds": sizes.min_seconds, "max_seconds": sizes.max_seconds}
        cache_dir = tmp / "cache"
        run_section("features", report, args.skip, lambda: features_at_two_scales(
            clips, cache_dir, sizes, tmp / "corpus", rounds=1 if args.quick else 3))
        run_section("input", report, args.skip, lambda: bench_input(clips, spec, cache_dir, sizes.batch_size))

        measured: list[tuple] = []
        if not {"training", "torch"} <= args.skip:
            batches = training_batches(clips, spec, cache_dir, sizes.batch_size, sizes.train_steps + 3)

            def training() -> dict:
                figures, used = bench_training(batches, spec, sizes.batch_size, sizes.train_steps, tmp / "train")
                measured.extend(used)
                return figures

            run_section("training", report, args.skip, training)
        seconds, batch_sizes = CTC_SIZES["quick" if args.quick else "default"]
        run_section("ctc", report, args.skip, lambda: bench_ctc(spec, seconds, batch_sizes, 2))
        if "torch" not in args.skip and not torch_installed():
            args.skip.add("torch")
            report["torch"] = {"skipped": "pip install -r requirements-bench.txt"}
        if "torch" not in args.skip:
            run_section("torch", report, args.skip, lambda: bench_torch(measured or batches[1:], spec))
            tf_speed = report.get("training", {}).get("audio_s_per_s")
            if tf_speed:
                report["torch"]["tf_over_torch"] = tf_speed / report["torch"]["audio_s_per_s"]

        fresh = save_fresh_model(spec, tmp / f"{args.preset}-model")
        try:
            model_dir, model_name = resolve_model_dir(None), f"bundled {DEFAULT_MODEL_DIR}"
        except ModelError:
            model_dir, model_name = fresh, f"fresh {args.preset} preset (random weights; no bundled model)"
        run_section("inference", report, args.skip, lambda: bench_inference(clips, fresh, cache_dir, sizes.batch_size))
        run_section("transcribe", report, args.skip, lambda: bench_transcribe(
            clips, write_clip(tmp / "long.wav", random_text(np.random.default_rng(2), sizes.long_seconds), seed=2,
                              seconds=sizes.long_seconds), model_dir, model_name))
        run_section("export", report, args.skip,
                    lambda: bench_export(model_dir, model_name, five, tmp / "saved_model", sizes.latency_calls))
    print(format_report(report))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
