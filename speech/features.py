"""MFCC features (librosa), computed one way, in one place, and cached on disk.

The recipe is chosen so a TensorFlow twin can reproduce it exactly inside the SavedModel:
centred frames with zero padding, a periodic Hann window, power spectrum, librosa's Slaney mel
filterbank, ``10 * log10(max(power, 1e-10))`` (no ``top_db`` clipping, which would make a frame
depend on the loudest frame of the whole file), an orthonormal DCT-II, then per-utterance mean and
variance normalisation over time.

Transcription and training featurize the part of a recording that holds speech (:func:`speech_features`):
leading and trailing silence is cut to 0.15 s, as the built-in corpus's clips are cut when they are made. A
model trained on such clips reads a recording with a second of quiet at each end far worse (the silence also
skews the per-utterance normalisation), and real recordings start and end with quiet of any length, often over
room or line noise: silence is what is quiet against the loudest frame or barely above the recording's own noise
floor (dev with 1 s of noise at -60 dBFS at each end, default decoding: WER 0.276 uncut, 0.155 cut; dev with white
noise at 20 dB SNR throughout and 1 s of it alone at each end: 0.499 uncut, 0.284 cut, against 0.266 for the same
noisy clips without the extra second).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import scipy.sparse

from speech.errors import AudioError, SpeechError
from speech.workers import init_worker

# Silence at a recording's edges (:func:`speech_features`), as the built-in corpus's clips are trimmed.
TRIM_SILENCE_DB = -45.0
TRIM_FRAME_SECONDS = 0.01
TRIM_KEEP_SECONDS = 0.15
# ... or no more than this many dB above the recording's noise floor (the 10th percentile of its frame levels).
TRIM_FLOOR_MARGIN_DB = 3.0
TRIM_FLOOR_PERCENTILE = 10.0

# Bump when the recipe changes, so stale cache entries are never reused.
FEATURE_VERSION = 1


@dataclass(frozen=True)
class FeatureConfig:
    sample_rate: int = 16000
    win_length: int = 400  # 25 ms
    hop_length: int = 160  # 10 ms
    n_fft: int = 512
    n_mels: int = 40
    n_mfcc: int = 26
    fmin: float = 0.0
    fmax: float | None = None  # None: sample_rate / 2
    normalize: bool = True  # per-utterance mean/variance normalisation
    # Leading/trailing 10 ms frames this many dB below the loudest are silence, cut to TRIM_KEEP_SECONDS
    # (:func:`speech_features`); None keeps whole recordings.
    trim_silence_db: float | None = TRIM_SILENCE_DB
    # ... and so are frames at most this many dB above the noise floor (None: the peak rule alone).
    trim_floor_margin_db: float | None = TRIM_FLOOR_MARGIN_DB

    @property
    def frame_seconds(self) -> float:
        return self.hop_length / self.sample_rate

    def num_frames(self, num_samples: int) -> int:
        """Frames librosa makes from ``num_samples`` with centring (n_fft // 2 zeros each side)."""
        return 1 + num_samples // self.hop_length

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> FeatureConfig:
        return cls(**data)


@functools.lru_cache(maxsize=64)
def analysis_filters(sample_rate: int, n_fft: int, win_length: int, n_mels: int, fmin: float,
                     fmax: float | None) -> tuple[np.ndarray, scipy.sparse.csr_array]:
    """librosa's periodic Hann window centred in ``n_fft`` (float64, as ``librosa.stft`` applies it) and its Slaney
    mel filterbank ``[n_mels, n_fft // 2 + 1]`` (float32), built once per configuration.

    The filterbank is sparse (each FFT bin feeds at most two bands: about 5% of it is non-zero), so it is kept as a
    ``scipy.sparse`` matrix: the product then does a twentieth of the work and never calls BLAS, whose threads, on a
    busy machine, turned a 0.2 ms product into 8-15 ms (``librosa.feature.melspectrogram`` goes through BLAS)."""
    import librosa
    import scipy.sparse

    window = librosa.util.pad_center(librosa.filters.get_window("hann", win_length, fftbins=True), size=n_fft)
    mel = librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax, htk=False,
                              norm="slaney")
    window.setflags(write=False)
    return window, scipy.sparse.csr_array(mel)


def log_mel(wave: np.ndarray, config: FeatureConfig) -> np.ndarray:
    """Log mel power ``[frames, n_mels]`` float32 of a float32 mono wave: ``librosa.feature.melspectrogram``
    (centred frames, zero padding, periodic Hann window, power 2, Slaney mel) then ``power_to_db(ref=1, amin=1e-10,
    top_db=None)``, from librosa's and scipy's lower-level functions, with the window and filterbank built once
    (:func:`analysis_filters`) and librosa's per-call checks skipped."""
    import librosa
    import scipy.fft

    window, mel = analysis_filters(config.sample_rate, config.n_fft, config.win_length, config.n_mels,
                                   config.fmin, config.fmax)
    padded = np.pad(wave, config.n_fft // 2)  # librosa's centring: zeros, n_fft // 2 each side
    frames = librosa.util.frame(padded, frame_length=config.n_fft, hop_length=config.hop_length, axis=0)
    # librosa.stft's arithmetic: float64 transform, complex64 result; the power spectrum is bit for bit its own.
    power = np.abs(scipy.fft.rfft(frames * window, axis=-1).astype(np.complex64)) ** 2
    mel_power = (mel @ power.T).T  # [frames, n_mels], laid out as librosa's [n_mels, frames]
    return 10.0 * np.log10(np.maximum(mel_power, 1e-10))  # power_to_db(ref=1.0, amin=1e-10, top_db=None)


NORM_EPS = 1e-3  # MFCCs span about +-400; a coefficient with std below this is constant


def normalize_features(features: np.ndarray, eps: float = NORM_EPS) -> np.ndarray:
    """Per-utterance mean/variance normalisation over time. A constant input (silence) becomes zeros."""
    features = features.astype(np.float64)
    mean = features.mean(axis=0, keepdims=True)
    std = np.sqrt(np.mean((features - mean) ** 2, axis=0, keepdims=True))
    return ((features - mean) / (std + eps)).astype(np.float32)


MAX_SAFE_PEAK = 1e12  # squared and summed over a frame, still far below float32's 3.4e38


def compute_features(wave: np.ndarray, config: FeatureConfig) -> np.ndarray:
    """Features ``[frames, n_mfcc]`` float32 of a mono waveform at ``config.sample_rate``."""
    import scipy.fft

    wave = np.asarray(wave, dtype=np.float32)
    if wave.ndim != 1 or wave.size == 0:
        raise AudioError(f"expected a non-empty mono waveform, got shape {wave.shape}")
    peak = float(np.max(np.abs(wave)))
    if peak > MAX_SAFE_PEAK:
        # A float file scaled far outside [-1, 1]: its power would overflow float32. The features are
        # normalised per utterance, so scaling it down changes nothing else.
        wave = wave / np.float32(peak)
    log_power = log_mel(wave, config)  # clips shorter than n_fft are valid: they are zero-padded
    # librosa.feature.mfcc(S=..., dct_type=2, norm="ortho") is this DCT over the mel axis.
    mfcc = scipy.fft.dct(log_power, type=2, norm="ortho", axis=-1)[:, :config.n_mfcc].astype(np.float32)
    if not np.all(np.isfinite(mfcc)):
        raise AudioError("features are not finite (samples out of range?)")
    return normalize_features(mfcc) if config.normalize else mfcc


def speech_bounds(wave: np.ndarray, sample_rate: int, threshold_db: float,
                  keep_seconds: float = TRIM_KEEP_SECONDS, floor_margin_db: float | None = None) -> tuple[int, int]:
    """``(start, end)`` samples of ``wave`` without its leading and trailing silence, ``keep_seconds`` of it kept.

    Silence: 10 ms frames whose RMS about their own mean is more than ``-threshold_db`` dB below the loudest frame's,
    or (with ``floor_margin_db``) at most that many dB above the noise floor, the 10th percentile of the frames'
    levels. A wave with no frame above that (constant, noise alone, shorter than a frame, or not finite) is kept whole.
    """
    frame = int(TRIM_FRAME_SECONDS * sample_rate)
    if wave.ndim != 1 or len(wave) < frame:
        return 0, len(wave)
    peak = float(np.max(np.abs(wave)))
    if peak > MAX_SAFE_PEAK:  # squares would overflow; the ratios are what count
        wave = wave / np.float32(peak)
    n = len(wave) // frame
    frames = wave[: n * frame].reshape(n, frame).astype(np.float64)
    # Each frame's level about its own mean: a DC offset (cheap microphones, old recordings) or a slow drift would
    # otherwise lift the quiet frames toward the loud ones and the cut would take speech for silence.
    frames -= frames.mean(axis=1, keepdims=True)
    energy = np.sqrt(np.mean(frames ** 2, axis=1) + 1e-12)
    with np.errstate(invalid="ignore"):
        level = 20 * np.log10(energy / (energy.max() + 1e-12))
        if floor_margin_db is not None:
            floor = float(np.percentile(level, TRIM_FLOOR_PERCENTILE))
            threshold_db = max(threshold_db, floor + floor_margin_db)  # NaN floor: the peak rule
        loud = np.nonzero(level > threshold_db)[0]
    if len(loud) == 0:
        return 0, len(wave)
    keep = int(keep_seconds * sample_rate)
    return max(0, int(loud[0]) * frame - keep), min(len(wave), (int(loud[-1]) + 1) * frame + keep)


def speech_features(wave: np.ndarray, config: FeatureConfig) -> tuple[int, np.ndarray]:
    """``(first sample, features)`` of the part of ``wave`` that holds speech (``config.trim_silence_db``;
    :func:`speech_bounds`): the features every path (training, evaluation, transcription) computes."""
    start, (features,) = speech_feature_variants(wave, [config])
    return start, features


def speech_feature_variants(wave: np.ndarray, configs: Sequence[FeatureConfig]) -> tuple[int, list[np.ndarray]]:
    """:func:`speech_features` under each of ``configs`` (the edge cut found once, by the first): the candidates
    of the decoding search over speaking rate (hop) and vocal tract (fmax) in :class:`speech.transcribe.Transcriber`."""
    wave = np.asarray(wave, dtype=np.float32)
    start, end = 0, len(wave)
    first = configs[0]
    if first.trim_silence_db is not None:
        start, end = speech_bounds(wave, first.sample_rate, first.trim_silence_db,
                                   floor_margin_db=first.trim_floor_margin_db)
    return start, [compute_features(wave[start:end], config) for config in configs]


def _source_key(path: str, config: FeatureConfig) -> str:
    if not os.path.isfile(path):
        raise AudioError("file not found", path)
    st = os.stat(path)
    ident = json.dumps([os.path.realpath(path), st.st_size, st.st_mtime_ns, config.to_json(), FEATURE_VERSION])
    return hashlib.sha1(ident.encode()).hexdigest()


def default_cache_dir() -> str:
    """Where cached features live unless a job is told otherwise: ``$SPEECH_CACHE``, else
    ``~/.cache/speech/features``."""
    return os.environ.get("SPEECH_CACHE", os.path.join(os.path.expanduser("~"), ".cache", "speech", "features"))


class FeatureCache:
    """Features on disk, keyed by the audio (real path, size, mtime) and the feature config.

    Entries are ``.npy`` files written atomically; an unreadable or malformed entry is rebuilt.
    """

    def __init__(self, directory: str | os.PathLike, config: FeatureConfig):
        self.directory = Path(directory)
        self.config = config

    def path_for(self, audio_path: str) -> Path:
        key = _source_key(audio_path, self.config)
        return self.directory / key[:2] / f"{key}.npy"

    def load(self, entry: Path) -> np.ndarray | None:
        try:
            features = np.load(entry, allow_pickle=False)
        except (OSError, ValueError, EOFError):
            return None
        ok = (features.ndim == 2 and features.shape[1] == self.config.n_mfcc and features.shape[0] > 0
              and features.dtype == np.float32 and np.all(np.isfinite(features)))
        return features if ok else None

    def get_or_compute(self, audio_path: str) -> tuple[Path, np.ndarray]:
        """Cache entry path and features; computed and stored when missing or corrupt. A file cut short or damaged
        (:func:`speech.audio.open_audio`'s notes) raises AudioError: it is not the recording its transcript is of."""
        from speech.audio import load_audio

        entry = self.path_for(audio_path)
        features = self.load(entry) if entry.exists() else None
        if features is None:
            notes: list[str] = []
            wave = load_audio(audio_path, self.config.sample_rate, notes)
            if notes:  # its transcript is of the whole recording: training on a part would teach a wrong alignment
                raise AudioError(f"{notes[0]} (not used: the transcript is of the whole recording)", audio_path)
            features = speech_features(wave, self.config)[1]
            entry.parent.mkdir(parents=True, exist_ok=True)
            tmp = entry.with_name(f".{entry.name}.{os.getpid()}.tmp")
            with open(tmp, "wb") as f:
                np.save(f, features)
            os.replace(tmp, entry)
        return entry, features


PARALLEL_MIN_FILES = 1000


@dataclass
class ExtractResult:
    audio_path: str
    cache_path: str | None
    num_frames: int
    error: str | None = None


def _extract_one(args: tuple[str, str, FeatureConfig]) -> ExtractResult:
    audio_path, cache_dir, config = args
    try:
        entry, features = FeatureCache(cache_dir, config).get_or_compute(audio_path)
        return ExtractResult(audio_path, str(entry), int(features.shape[0]))
    except SpeechError as e:
        return ExtractResult(audio_path, None, 0, e.reason)
    except OSError as e:
        return ExtractResult(audio_path, None, 0, f"cannot read: {e}")


def extract_features(audio_paths: Sequence[str], config: FeatureConfig, cache_dir: str | os.PathLike,
                     jobs: int | None = None, progress: bool = False) -> list[ExtractResult]:
    """Compute (or find in the cache) features of every file, in parallel across processes.

    Returns one result per input, in order; bad files carry an ``error`` instead of raising.
    """
    jobs = jobs or os.cpu_count() or 1
    tasks = [(str(p), str(cache_dir), config) for p in audio_paths]
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(tasks), desc="features", unit="file", dynamic_ncols=True, disable=None)
    results: list[ExtractResult] = []
    # Worker start-up (importing librosa, numba) costs a few seconds, more than one process needs for a
    # thousand short clips (scripts/bench.py measures both): small jobs stay in this process.
    if jobs == 1 or len(tasks) < PARALLEL_MIN_FILES:
        for task in tasks:
            results.append(_extract_one(task))
            if bar:
                bar.update()
    else:
        import multiprocessing as mp

        # forkserver: workers start from a clean process, never a fork of one running TensorFlow threads.
        method = "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"
        context = mp.get_context(method)
        with ProcessPoolExecutor(jobs, mp_context=context, initializer=init_worker, initargs=(os.getpid(),)) as pool:
            for result in pool.map(_extract_one, tasks, chunksize=8):
                results.append(result)
                if bar:
                    bar.update()
    if bar:
        bar.close()
    return results
