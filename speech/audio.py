"""Audio loading: any format soundfile or ffmpeg can read, to float32 mono at the model's rate.

Outcomes (each tested): a missing, unreadable, empty or non-finite file raises :class:`AudioError`
naming the file and the reason; several channels are averaged (the loudest one is kept instead when they cancel
out); other rates are resampled (soxr); integer PCM of any width and float files give the same waveform scale
([-1, 1]). Silence is valid audio. A WAV file cut short (its header promises more audio than the file holds)
is read as far as it goes; :func:`wav_truncation` says how much is missing, for the caller to report.
"""

from __future__ import annotations

import os
import shutil
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import soundfile as sf

from speech.errors import AudioError

# What libsndfile reads by itself, and what goes through ffmpeg.
LIBSNDFILE_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aiff", ".aif", ".au", ".caf")
FFMPEG_EXTENSIONS = (".m4a", ".aac", ".wma", ".webm", ".mp4")
AUDIO_EXTENSIONS = LIBSNDFILE_EXTENSIONS + FFMPEG_EXTENSIONS
# Compressed formats' headers may estimate their length (MP3 without a frame count): a shortfall below this is not
# reported as a cut file.
TRUNCATION_TOLERANCE_SECONDS = 0.5


def _decode_with_ffmpeg(path: str) -> tuple[np.ndarray, int]:
    # audioread (used by librosa) decodes what libsndfile cannot (m4a, aac, old mp3) through ffmpeg.
    import audioread

    try:
        with audioread.audio_open(path) as f:
            sr, channels = f.samplerate, f.channels
            data = b"".join(f)
    except Exception as e:  # audioread raises many unrelated types
        raise AudioError(f"cannot decode audio ({type(e).__name__}: {e})", path) from e
    samples = np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0
    return samples.reshape(-1, channels) if channels > 1 else samples, sr


def read_audio(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """Decode a file as it is: float32 samples ``[time]`` or ``[time, channels]`` and its sample rate."""
    path = str(path)
    if not os.path.isfile(path):
        raise AudioError("file not found", path)
    if os.path.getsize(path) == 0:
        raise AudioError("empty file (0 bytes)", path)
    try:
        data, sr = sf.read(os.fsencode(path), dtype="float32", always_2d=False)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as e:
        data, sr = _decode_with_ffmpeg_or_reason(path, e)
    return data, sr


def _decode_with_ffmpeg_or_reason(path: str, error: Exception) -> tuple[np.ndarray, int]:
    try:
        return _decode_with_ffmpeg(path)
    except AudioError:
        reason = str(error)
        if "does not exist" in reason:  # libsndfile's words for data it cannot parse, e.g. a bad MP3 header
            reason = "format not recognised, or the data is corrupt"
        if shutil.which("ffmpeg") is None and Path(path).suffix.lower() not in LIBSNDFILE_EXTENSIONS:
            reason += (f" ({', '.join(e[1:] for e in FFMPEG_EXTENSIONS)} need ffmpeg on PATH: "
                       "scripts/setup.sh installs it)")
        raise AudioError(f"cannot decode audio: {reason}", path) from error


def to_mono(data: np.ndarray) -> np.ndarray:
    """``[time, channels]`` to ``[time]``: the channels' average, unless they cancel out.

    A recording whose channels are out of phase (one wired inverted) averages to near silence; then the
    loudest channel is used instead, so the speech is not lost.
    """
    if data.ndim != 2:
        return data
    mix = data.mean(axis=1, dtype=np.float32)
    if data.shape[1] > 1:
        channel_power = np.mean(np.square(data, dtype=np.float64), axis=0)
        if np.mean(np.square(mix, dtype=np.float64)) < 0.25 * channel_power.mean():
            return np.ascontiguousarray(data[:, int(np.argmax(channel_power))], dtype=np.float32)
    return mix


def resample(wave: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    if orig_sr == target_sr:
        return wave
    import librosa

    return librosa.resample(wave, orig_sr=orig_sr, target_sr=target_sr, res_type="soxr_hq").astype(np.float32)


def load_audio(path: str | os.PathLike, sample_rate: int = 16000) -> np.ndarray:
    """Load ``path`` as float32 mono at ``sample_rate``. Raises AudioError on bad input."""
    data, sr = read_audio(path)
    wave = to_mono(np.asarray(data, dtype=np.float32))
    if wave.size == 0:
        raise AudioError("audio has no samples", str(path))
    if not np.all(np.isfinite(wave)):
        raise AudioError("audio contains NaN or infinite samples", str(path))
    return np.ascontiguousarray(resample(wave, sr, sample_rate))


def audio_duration(path: str | os.PathLike) -> float:
    """Duration in seconds, from the header when the format has one (no full decode)."""
    path = str(path)
    if not os.path.isfile(path):
        raise AudioError("file not found", path)
    try:
        info = sf.info(os.fsencode(path))
        if info.frames > 0 and info.samplerate > 0:
            return info.frames / info.samplerate
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError):
        pass
    data, sr = read_audio(path)
    return len(data) / sr


def iter_audio_blocks(path: str | os.PathLike, block_seconds: float, sample_rate: int = 16000,
                      overlap_seconds: float = 0.0, notes: list[str] | None = None
                      ) -> Iterator[tuple[float, np.ndarray]]:
    """Yield ``(start_seconds, mono block at sample_rate)`` with bounded memory, for long recordings.

    Streams through soundfile when it can read the format; otherwise decodes the whole file once. A file whose
    data ends before its header says is read as far as it goes, and a note on it is added to ``notes``.
    """
    path = str(path)
    try:
        info = sf.info(os.fsencode(path))
        streamable = info.frames > 0
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError):
        streamable = False
    if not streamable:
        wave = load_audio(path, sample_rate)
        step = round((block_seconds - overlap_seconds) * sample_rate)
        size = round(block_seconds * sample_rate)
        for start in range(0, max(len(wave) - int(overlap_seconds * sample_rate), 1), step):
            yield start / sample_rate, wave[start:start + size]
        return
    sr = info.samplerate
    size = round(block_seconds * sr)
    overlap = round(overlap_seconds * sr)
    position = 0
    pending = np.zeros((0, info.channels), np.float32)
    for piece in _read_pieces(path, info, notes):
        pending = np.concatenate([pending, piece]) if len(pending) else piece
        while len(pending) >= size:
            yield _mono_block(path, position, pending[:size], sr, sample_rate)
            pending, position = pending[size - overlap:], position + size - overlap
            if size - overlap <= 0:
                return
    if len(pending) > overlap or position == 0:
        yield _mono_block(path, position, pending, sr, sample_rate)


def _mono_block(path: str, position: int, block: np.ndarray, sr: int, sample_rate: int) -> tuple[float, np.ndarray]:
    """``(start seconds, mono block at sample_rate)`` of ``block``, which starts at frame ``position``."""
    wave = to_mono(block)
    if not np.all(np.isfinite(wave)):
        raise AudioError("audio contains NaN or infinite samples", path)
    return position / sr, resample(wave, sr, sample_rate)


def _read_pieces(path: str, info, notes: list[str] | None) -> Iterator[np.ndarray]:
    """A file's frames in fresh arrays of a quarter of a second, until the data ends.

    Not ``soundfile.blocks``: when a compressed file ends before its header says (a cut MP3 or OGG), its buffer
    is handed out again and the last block's audio repeats to the promised length. Here a short read ends the
    stream; so does a decoder error once some audio has come (a FLAC cut mid-frame), keeping what came before.
    Either way a note saying how much is missing goes to ``notes``.
    """
    piece = max(1, info.samplerate // 4)
    read, problem = 0, None
    with warnings.catch_warnings(), sf.SoundFile(os.fsencode(path)) as f:
        warnings.simplefilter("ignore")
        while True:
            try:
                data = f.read(piece, dtype="float32", always_2d=True)
            except (sf.LibsndfileError, RuntimeError) as e:
                if read == 0:
                    raise AudioError(f"cannot decode audio: {e}", path) from e
                problem = f"decoding failed ({e})"
                break
            if len(data):
                read += len(data)
                yield data
            if len(data) < piece:
                break
    missing = (info.frames - read) / info.samplerate
    if notes is not None and (problem or missing > TRUNCATION_TOLERANCE_SECONDS):
        notes.append(f"truncated file: {problem + '; ' if problem else ''}its header promises "
                     f"{info.frames / info.samplerate:.2f} s of audio, {read / info.samplerate:.2f} s could be read")


def wav_truncation(path: str | os.PathLike) -> str | None:
    """A note, when ``path`` is a RIFF WAV file whose data chunk is shorter on disk than its header says (a cut
    download, a copy killed half-way), saying how much audio is missing; libsndfile reads such a file as far as it
    goes without a word. None for whole files, other formats and the placeholder sizes of streaming writers."""
    try:
        with open(path, "rb") as f:
            head = f.read(12)
            if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
                return None
            rate = block_align = 0
            for _ in range(64):  # chunks before the data: fmt, LIST, fact, ...
                chunk = f.read(8)
                if len(chunk) < 8:
                    return None
                kind, size = chunk[:4], int.from_bytes(chunk[4:], "little")
                if kind == b"fmt ":
                    fmt = f.read(size + size % 2)
                    if len(fmt) < 16:
                        return None
                    rate, block_align = int.from_bytes(fmt[4:8], "little"), int.from_bytes(fmt[12:14], "little")
                elif kind == b"data":
                    present = os.path.getsize(path) - f.tell()
                    if size in (0, 0xFFFFFFFF) or not rate or not block_align or present >= size:
                        return None
                    bytes_per_second = block_align * rate
                    return (f"truncated file: its header promises {size / bytes_per_second:.2f} s of audio, "
                            f"{max(present, 0) / bytes_per_second:.2f} s is there")
                else:
                    f.seek(size + size % 2, os.SEEK_CUR)
    except OSError:
        return None
    return None


def is_audio_file(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in AUDIO_EXTENSIONS


def find_audio_files(root: Path) -> list[Path]:
    """Files named like audio anywhere below ``root``, sorted. Not ``is_file()``: a dangling link named like audio
    is listed, so that the job reports it as a failure instead of leaving it out unseen."""
    return sorted(p for p in root.rglob("*") if not p.is_dir() and is_audio_file(p))
