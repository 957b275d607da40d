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

import contextlib
import functools
import hashlib
import itertools
import json
import math
import os
import stat
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import scipy.sparse

from speech.audio import DECODE_ERRORS, failure_reason, load_audio, require_file
from speech.errors import AudioError, SpeechError
from speech.workers import WORKER_THREADS_ENV, init_worker

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


# analysis_filters' tables by configuration; a worker process gets its job's from the job (worker_pool), so that it
# never imports librosa (about 1 s of a worker's start).
_FILTERS: dict[tuple, tuple[np.ndarray, scipy.sparse.csr_array]] = {}


def filter_key(config: FeatureConfig) -> tuple:
    """The arguments of :func:`analysis_filters` for ``config``."""
    return config.sample_rate, config.n_fft, config.win_length, config.n_mels, config.fmin, config.fmax


def analysis_filters(sample_rate: int, n_fft: int, win_length: int, n_mels: int, fmin: float,
                     fmax: float | None) -> tuple[np.ndarray, scipy.sparse.csr_array]:
    """librosa's periodic Hann window centred in ``n_fft`` (float64, as ``librosa.stft`` applies it) and its Slaney
    mel filterbank ``[n_mels, n_fft // 2 + 1]`` (float32), built once per configuration.

    The filterbank is sparse (each FFT bin feeds at most two bands: about 5% of it is non-zero), so it is kept as a
    ``scipy.sparse`` matrix: the product then does a twentieth of the work and never calls BLAS, whose threads, on a
    busy machine, turned a 0.2 ms product into 8-15 ms (``librosa.feature.melspectrogram`` goes through BLAS)."""
    key = (sample_rate, n_fft, win_length, n_mels, fmin, fmax)
    if key in _FILTERS:
        return _FILTERS[key]
    import librosa
    import scipy.sparse

    window = librosa.util.pad_center(librosa.filters.get_window("hann", win_length, fftbins=True), size=n_fft)
    mel = librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax, htk=False,
                              norm="slaney")
    window.setflags(write=False)
    return _FILTERS.setdefault(key, (window, scipy.sparse.csr_array(mel)))


@functools.lru_cache(maxsize=64)
def _window_span(window_key: tuple) -> tuple[int, int, np.ndarray]:
    """``(lo, hi, window[lo:hi])``: the non-zero part of :func:`analysis_filters`'s window (400 of 512 samples by
    default), the only columns of a frame worth multiplying; the rest of each FFT input is zeros."""
    window, _ = analysis_filters(*window_key)
    nonzero = np.flatnonzero(window)
    lo, hi = (int(nonzero[0]), int(nonzero[-1]) + 1) if len(nonzero) else (0, 0)
    part = window[lo:hi].copy()
    part.setflags(write=False)
    return lo, hi, part


# Frames per pass of :func:`log_mel`, each pass through one thread's reused buffers (about 3 MB at the default
# config). Fresh arrays for a whole clip cost about 200 page faults a 3-second clip (0-2 in blocks), and hundreds of
# MB for a long recording. Of 64, 128, 256, 512 and 1024 frames, 256 was fastest (the others 2-16% slower).
LOG_MEL_BLOCK_FRAMES = 256
# numpy 2's np.fft is pocketfft's C++ code, as scipy.fft is (the same bits), and can write into a given array.
_NUMPY_FFT_OUT = int(np.__version__.split(".")[0]) >= 2


class _Workspace:
    """One thread's buffers for :func:`log_mel` under one framing (``n_fft``, hop, the window's non-zero span)."""

    def __init__(self, block: int, n_fft: int, hop: int, lo: int, hi: int):
        bins = n_fft // 2 + 1
        # The samples a block of frames reads, cast once to float64 (each sample is in 2.5 frames at the default
        # hop): the window's product is then float64 by float64, as librosa's float32 frames times its window are.
        self.segment = np.zeros((block - 1) * hop + n_fft)
        self.windowed = np.zeros((block, n_fft))  # columns outside [lo, hi) stay zero: the window's zeros
        self.spectrum = np.empty((block, bins), np.complex128)
        self.spectrum64 = np.empty(block * bins, np.complex64)  # as [bins, frames], for the mel product
        self.power = np.empty(block * bins, np.float32)


_thread_state = threading.local()


def _workspace(block: int, n_fft: int, hop: int, lo: int, hi: int) -> _Workspace:
    spaces = getattr(_thread_state, "workspaces", None)
    if spaces is None:
        spaces = _thread_state.workspaces = {}
    key = (block, n_fft, hop, lo, hi)
    if key not in spaces:
        spaces[key] = _Workspace(*key)
    return spaces[key]


def log_mel(wave: np.ndarray, config: FeatureConfig) -> np.ndarray:
    """Log mel power ``[frames, n_mels]`` float32 of a float32 mono wave: ``librosa.feature.melspectrogram``
    (centred frames, zero padding, periodic Hann window, power 2, Slaney mel) then ``power_to_db(ref=1, amin=1e-10,
    top_db=None)``, with the window and filterbank built once (:func:`analysis_filters`), in blocks of
    :data:`LOG_MEL_BLOCK_FRAMES` frames through reused buffers.

    Bit for bit librosa's arithmetic up to the mel product: the float64 transform of the windowed frames (float32
    samples times the float64 window), cast to complex64, and its float32 power. A float32 transform would be about
    130 us faster on a 5-second clip, but its rounding (about 1e-7 of a frame's energy) stands in for the true power
    where a spectrum falls 100 dB and more: a pure tone's normalised features moved by 2e-2."""
    import scipy.fft

    key = filter_key(config)
    _, mel = analysis_filters(*key)
    lo, hi, window = _window_span(key)
    n_fft, hop, half = config.n_fft, config.hop_length, config.n_fft // 2
    n, bins = len(wave), n_fft // 2 + 1
    frames = 1 + (n + 2 * half - n_fft) // hop  # librosa's centring: n_fft // 2 zeros each side
    block = LOG_MEL_BLOCK_FRAMES
    space = _workspace(block, n_fft, hop, lo, hi)
    out = np.empty((config.n_mels, frames), np.float32)
    for first in range(0, frames, block):
        m = min(block, frames - first)
        a = first * hop - half  # the block's samples [a, b) of the wave, zeros outside it
        b = a + (m - 1) * hop + n_fft
        start, end = max(a, 0), min(b, n)
        segment = space.segment
        segment[:start - a] = 0.0
        segment[start - a:end - a] = wave[start:end]
        segment[end - a:b - a] = 0.0
        step = segment.strides[0]
        # The window's non-zero part of each frame, straight from the samples (no framed copy, no multiplying zeros).
        # einsum makes the same products as np.multiply's broadcast, in 0.55 of its time on these strided rows.
        view = np.ndarray((m, hi - lo), segment.dtype, buffer=segment, offset=lo * step, strides=(hop * step, step))
        windowed = space.windowed[:m]
        np.einsum("fs,s->fs", view, window, out=windowed[:, lo:hi])
        if _NUMPY_FFT_OUT:
            spectrum = np.fft.rfft(windowed, axis=-1, out=space.spectrum[:m])
        else:
            spectrum = scipy.fft.rfft(windowed, axis=-1)
        transposed = space.spectrum64[:bins * m].reshape(bins, m)
        np.copyto(transposed, spectrum.T, casting="same_kind")  # librosa.stft's complex64 result
        power = space.power[:bins * m].reshape(bins, m)
        np.abs(transposed, out=power)
        np.square(power, out=power)
        out[:, first:first + m] = mel @ power  # csr times a C-ordered [bins, frames]: no copy inside scipy
    np.maximum(out, 1e-10, out=out)  # power_to_db(ref=1.0, amin=1e-10, top_db=None)
    np.log10(out, out=out)
    out *= 10.0
    return out.T


NORM_EPS = 1e-3  # MFCCs span about +-400; a coefficient with std below this is constant


def normalize_features(features: np.ndarray, eps: float = NORM_EPS) -> np.ndarray:
    """Per-utterance mean/variance normalisation over time. A constant input (silence) becomes zeros."""
    centred = features.astype(np.float64)
    centred -= centred.mean(axis=0, keepdims=True)
    std = np.sqrt(np.mean(np.square(centred), axis=0, keepdims=True))
    std += eps
    centred /= std
    return centred.astype(np.float32)


MAX_SAFE_PEAK = 1e12  # squared and summed over a frame, still far below float32's 3.4e38


def _peak(wave: np.ndarray) -> float:
    """``max(|wave|)`` (NaN if any sample is) without the array of absolute values."""
    return float(max(wave.max(), -wave.min()))


def compute_features(wave: np.ndarray, config: FeatureConfig) -> np.ndarray:
    """Features ``[frames, n_mfcc]`` float32 of a mono waveform at ``config.sample_rate``."""
    import scipy.fft

    wave = np.asarray(wave, dtype=np.float32)
    if wave.ndim != 1 or wave.size == 0:
        raise AudioError(f"expected a non-empty mono waveform, got shape {wave.shape}")
    peak = _peak(wave)
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


def _percentile(values: np.ndarray, percent: float) -> float:
    """``float(np.percentile(values, percent))`` of a non-empty 1-D float64 array, bit for bit (linear interpolation,
    NaN when a value is), without its general machinery (about a fifth of the edge cut's time on 2-8 s clips)."""
    n = len(values)
    virtual = (n - 1) * (percent / 100)
    lo = min(math.floor(virtual), n - 1)
    hi = min(lo + 1, n - 1)
    ordered = np.partition(values, [lo, hi, n - 1]) if n > 1 else values
    if np.isnan(ordered[-1]):  # NaN sorts last
        return float("nan")
    below, above = float(ordered[lo]), float(ordered[hi])
    gap, weight = above - below, virtual - lo
    # numpy's lerp, which takes the nearer end as its base
    return above - gap * (1 - weight) if weight >= 0.5 else below + gap * weight


TRIM_BLOCK_FRAMES = 1024  # 10 ms frames per pass of speech_bounds (1.3 MB of float64 at 16 kHz)


def _buffer(size: int) -> np.ndarray:
    """This thread's float64 scratch array of ``size`` elements, kept from call to call."""
    buffers = getattr(_thread_state, "buffers", None)
    if buffers is None:
        buffers = _thread_state.buffers = {}
    if size not in buffers:
        buffers[size] = np.empty(size)
    return buffers[size]


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
    peak = _peak(wave)
    if peak > MAX_SAFE_PEAK:  # squares would overflow; the ratios are what count
        wave = wave / np.float32(peak)
    n = len(wave) // frame
    energy = np.empty(n)
    block = TRIM_BLOCK_FRAMES
    space = _buffer(block * frame)
    for first in range(0, n, block):  # through one reused float64 buffer (see LOG_MEL_BLOCK_FRAMES)
        m = min(block, n - first)
        frames = space[:m * frame].reshape(m, frame)
        np.copyto(frames, wave[first * frame:(first + m) * frame].reshape(m, frame))
        # Each frame's level about its own mean: a DC offset (cheap microphones, old recordings) or a slow drift
        # would otherwise lift the quiet frames toward the loud ones and the cut would take speech for silence.
        # (Sum over count is what np.mean computes.)
        frames -= frames.sum(axis=1, keepdims=True) / frame
        np.square(frames, out=frames)
        frames.sum(axis=1, out=energy[first:first + m])
    energy /= frame
    energy += 1e-12
    np.sqrt(energy, out=energy)
    with np.errstate(invalid="ignore"):
        level = 20 * np.log10(energy / (energy.max() + 1e-12))
        if floor_margin_db is not None:
            floor = _percentile(level, TRIM_FLOOR_PERCENTILE)
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


@functools.lru_cache(maxsize=64)
def _config_ident(config: FeatureConfig) -> str:
    return json.dumps(config.to_json())


def _source_key(path: str, config: FeatureConfig) -> str:
    try:
        st = os.stat(path)
    except (OSError, ValueError):  # ValueError: a NUL in the name
        st = None
    if st is None or not stat.S_ISREG(st.st_mode):
        require_file(path)  # says what is there instead ("is a folder", a device), as every other reader does
        raise AudioError("file not found", path)  # a regular file again by now: it was replaced while we looked
    # json.dumps([real path, size, mtime_ns, config.to_json(), FEATURE_VERSION]), with the config's part made once
    # per config: the same keys as ever, so existing caches stay valid.
    ident = (f"[{json.dumps(os.path.realpath(path))}, {st.st_size}, {st.st_mtime_ns}, {_config_ident(config)}, "
             f"{FEATURE_VERSION}]")
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
            with open(entry, "rb") as f:  # .npy only: np.load would open a zip (an .npz) as an archive
                features = np.lib.format.read_array(f, allow_pickle=False)
        except (OSError, ValueError, EOFError):
            return None
        ok = (features.ndim == 2 and features.shape[1] == self.config.n_mfcc and features.shape[0] > 0
              and features.dtype == np.float32 and np.all(np.isfinite(features)))
        return features if ok else None

    def store(self, entry: Path, features: np.ndarray) -> None:
        """Write an entry atomically: a temporary file (named for this process and thread, which may compute the
        same entry as another) renamed over it."""
        tmp = entry.with_name(f".{entry.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            f = open(tmp, "wb")
        except FileNotFoundError:  # the entry's folder is new (one mkdir per folder, not one per entry)
            entry.parent.mkdir(parents=True, exist_ok=True)
            f = open(tmp, "wb")
        try:
            with f:
                np.save(f, features)
            os.replace(tmp, entry)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def get_or_compute(self, audio_path: str) -> tuple[Path, np.ndarray]:
        """Cache entry path and features; computed and stored when missing or corrupt (:meth:`compute`)."""
        entry = self.path_for(audio_path)
        features = self.load(entry)  # None when there is none (no separate stat for it)
        return entry, self.compute(audio_path, entry) if features is None else features

    def compute(self, audio_path: str, entry: Path) -> np.ndarray:
        """Compute a file's features and store them as ``entry``. A file cut short or damaged
        (:func:`speech.audio.open_audio`'s notes) raises AudioError: it is not the recording its transcript is of."""
        notes: list[str] = []
        wave = load_audio(audio_path, self.config.sample_rate, notes)
        if notes:  # its transcript is of the whole recording: training on a part would teach a wrong alignment
            raise AudioError(f"{notes[0]} (not used: the transcript is of the whole recording)", audio_path)
        features = speech_features(wave, self.config)[1]
        try:
            self.store(entry, features)
        except OSError as e:  # a full disk, a read-only cache: said as such, not as the audio's fault
            raise SpeechError(f"cannot write the feature cache: {e}", str(entry)) from e
        return features


# Below this many files a job's features are computed in its own process, one file at a time: starting the pool
# costs more than the second core gives back. worker_pool's start costs about 0.4 s (its fork server imports numpy,
# scipy and soundfile); two processes then save about 1 ms a file. Measured with TensorFlow loaded, as in `speech
# featurize` and `speech train`, fresh pool each time, medians of 5 interleaved rounds: 300 files 1.05x faster with
# the pool, 400 files 1.32x, 600 1.45x, 2,000 1.61x (250 files: 0.95x).
PARALLEL_MIN_FILES = 400
# What the fork server imports before it forks a worker: the feature path's modules, which each worker would
# otherwise import itself (a task's own module, e.g. speech.transcribe, still is).
WORKER_PRELOAD = ("speech.audio", "speech.features", "scipy.fft", "scipy.sparse", "soundfile", "soxr")


def _init_feature_worker(job_pid: int, filters: dict) -> None:
    init_worker(job_pid)
    _FILTERS.update(filters)


def start_worker_server() -> None:
    """Start the fork server that :func:`worker_pool`'s workers are forked from, without waiting for its imports
    (about 0.35 s): a job that knows it will need a pool calls this while it has other work to do. Where there is
    no fork server (Windows), nothing."""
    import multiprocessing as mp

    if "forkserver" in mp.get_all_start_methods():
        from multiprocessing import forkserver

        # No effect once the server runs, as it should be: its workers are alike whoever started it.
        mp.get_context("forkserver").set_forkserver_preload(list(WORKER_PRELOAD))
        with _environment(WORKER_THREADS_ENV):  # the server is a new program: it inherits this environment
            forkserver.ensure_running()


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """``os.environ`` with ``values`` set, as it was again afterwards."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def worker_pool(jobs: int, configs: Sequence[FeatureConfig]) -> ProcessPoolExecutor:
    """A pool of ``jobs`` processes that read audio and compute features under ``configs``.

    Workers are forked from multiprocessing's fork server (:func:`start_worker_server`), a clean process (never a
    fork of this one, which may run TensorFlow's threads) that imports :data:`WORKER_PRELOAD` once for all of them;
    they get ``configs``' filters from here, so that none imports librosa. Two workers took 4.2-4.8 s to start when
    each imported numpy, scipy and librosa itself."""
    import multiprocessing as mp

    start_worker_server()
    context = mp.get_context("forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn")
    filters = {filter_key(c): analysis_filters(*filter_key(c)) for c in configs}
    return ProcessPoolExecutor(jobs, mp_context=context, initializer=_init_feature_worker,
                               initargs=(os.getpid(), filters))


@dataclass
class ExtractResult:
    audio_path: str
    cache_path: str | None
    num_frames: int
    error: str | None = None


def _failure(audio_path: str, error: Exception) -> ExtractResult:
    """A file's result for one of :data:`speech.audio.DECODE_ERRORS`."""
    return ExtractResult(audio_path, None, 0, failure_reason(error))


def _extract_one(args: tuple[str, str, FeatureConfig], missing: bool = False) -> ExtractResult:
    """A file's result: its features from the cache, or computed and cached. ``missing``: the caller found no entry
    for it, so none is looked for again; its key is taken again, from the file as it is now, just before it is read
    (a job's pool may compute it minutes after the caller looked)."""
    audio_path, cache_dir, config = args
    cache = FeatureCache(cache_dir, config)
    try:
        if missing:
            entry = cache.path_for(audio_path)
            features = cache.compute(audio_path, entry)
        else:
            entry, features = cache.get_or_compute(audio_path)
    except DECODE_ERRORS as e:
        return _failure(audio_path, e)
    return ExtractResult(audio_path, str(entry), int(features.shape[0]))


def extract_features(audio_paths: Sequence[str], config: FeatureConfig, cache_dir: str | os.PathLike,
                     jobs: int | None = None, progress: bool = False) -> list[ExtractResult]:
    """Compute (or find in the cache) features of every file, in parallel across processes.

    Returns one result per input, in order; bad files carry an ``error`` instead of raising. Files found in the cache
    are read in this process; a worker pool is started only for :data:`PARALLEL_MIN_FILES` files to compute or more.
    Where ``cache_dir`` does not exist yet, nothing is looked up. No input is an empty result, with no worker pool or
    progress bar started.
    """
    jobs = jobs or os.cpu_count() or 1
    tasks = [(str(p), str(cache_dir), config) for p in audio_paths]
    if not tasks:
        return []
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(tasks), desc="features", unit="file", dynamic_ncols=True, disable=None)
    cache = FeatureCache(cache_dir, config)
    results: list[ExtractResult | None] = [None] * len(tasks)
    if not cache.directory.is_dir():  # a new cache (a corpus's first job): every file is to compute
        missing = list(range(len(tasks)))
        if len(missing) >= PARALLEL_MIN_FILES and jobs > 1:
            start_worker_server()
    else:
        missing = []
        for i, (path, _, _) in enumerate(tasks):
            try:
                entry = cache.path_for(path)
                features = cache.load(entry)
            except DECODE_ERRORS as e:
                results[i] = _failure(path, e)
            else:
                if features is None:
                    missing.append(i)
                    if len(missing) == PARALLEL_MIN_FILES and jobs > 1:
                        start_worker_server()  # its imports overlap with the rest of this pass
                    continue
                results[i] = ExtractResult(path, str(entry), int(features.shape[0]))
            if bar:
                bar.update()
    if jobs == 1 or len(missing) < PARALLEL_MIN_FILES:
        for i in missing:
            results[i] = _extract_one(tasks[i], missing=True)
            if bar:
                bar.update()
    else:
        _compute_in_pool(tasks, missing, results, jobs, config, bar)
    if bar:
        bar.close()
    return results


def _compute_in_pool(tasks: list[tuple[str, str, FeatureConfig]], missing: list[int],
                     results: list[ExtractResult | None], jobs: int, config: FeatureConfig, bar) -> None:
    """``results[i]`` for each ``i`` in ``missing``, computed by a pool of ``jobs`` workers and, until they are up
    (about 0.3 s: the pool's first task waits for the fork server's imports), by this process, from the end of the
    list (about a tenth of 1,000 files: time a core would otherwise spend waiting), though never more than a
    ``jobs + 1``-th of them."""
    with worker_pool(jobs, [config]) as pool:
        ready = threading.Event()
        starter = threading.Thread(target=_start_workers, args=(pool, ready), name="start-feature-workers",
                                   daemon=True)
        starter.start()
        end, last = len(missing), len(missing) - len(missing) // (jobs + 1)
        while end > last and not ready.is_set():
            end -= 1
            results[missing[end]] = _extract_one(tasks[missing[end]], missing=True)
            if bar:
                bar.update()
        starter.join()
        computed = pool.map(_extract_one, [tasks[i] for i in missing[:end]], itertools.repeat(True), chunksize=8)
        for i, result in zip(missing[:end], computed):
            results[i] = result
            if bar:
                bar.update()


def _start_workers(pool: ProcessPoolExecutor, ready: threading.Event) -> None:
    """Run a first task on ``pool`` and set ``ready`` once it has run: its worker waited for the fork server's imports,
    and the next workers fork from the server in milliseconds. A pool that cannot start fails again, and says why,
    on the job's own next task."""
    try:
        pool.submit(int).result()
    except Exception:  # the job's pool.map raises it again
        pass
    finally:
        ready.set()
