"""Audio loading: any format soundfile or ffmpeg can read, to float32 mono at the model's rate.

Outcomes (each tested): a missing, unreadable, empty or non-finite file raises :class:`AudioError`
naming the file and the reason; several channels are averaged (the loudest one is kept instead when they cancel
out); other rates are resampled (soxr); integer PCM of any width and float files give the same waveform scale
([-1, 1]); a header claiming an implausible rate is refused. Silence is valid audio. Every format is streamed
(:func:`open_audio`); a file cut short (its header promises more audio than the file holds) or reported damaged
by its decoder is read as far as it goes, and a note saying how much could be read goes to the caller's
``notes``, for it to report. An MP3 is never read from libsndfile in pieces (:func:`_mp3_in_one_read`): a short one
is read in one call, a long one through ffmpeg.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import soundfile as sf

from speech.errors import AudioError, SpeechError

# What libsndfile reads by itself, and what goes through ffmpeg.
LIBSNDFILE_EXTENSIONS = (".wav", ".wave", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aiff", ".aif", ".aifc", ".au",
                         ".snd", ".caf", ".w64", ".rf64", ".sph", ".nist", ".voc", ".htk", ".sf", ".ircam", ".avr",
                         ".wve", ".pvf", ".xi", ".sd2", ".mat")
# Containers and codecs libsndfile cannot read; ffmpeg can (audio and video files alike: their audio track).
FFMPEG_EXTENSIONS = (".m4a", ".m4b", ".aac", ".wma", ".webm", ".mp4", ".mkv", ".mka", ".mov", ".avi", ".3gp",
                     ".3g2", ".amr", ".ac3", ".eac3", ".dts", ".wv", ".ape", ".tta", ".spx", ".mp2", ".mpga",
                     ".ts", ".mts", ".flv", ".ogv", ".gsm", ".ra", ".rm")
AUDIO_EXTENSIONS = LIBSNDFILE_EXTENSIONS + FFMPEG_EXTENSIONS
# Compressed formats' headers may estimate their length (MP3 without a frame count): a shortfall below this is not
# reported as a cut file.
TRUNCATION_TOLERANCE_SECONDS = 0.5
# Rates a header may claim. Outside them the header is broken (a 1 Hz "recording" would be resampled to 16000
# times its size) or the file is not audio for speech; the SavedModel accepts the same range.
MIN_SAMPLE_RATE = 1000
MAX_SAMPLE_RATE = 384000
PIECE_SECONDS = 0.25  # files are read in pieces this long, so memory stays bounded however long the file
# A file whose decoded float32 frames take at most this many bytes (4.4 min of 16 kHz mono, 44 s of 48 kHz stereo)
# is read in one call: for a short clip the pieces' per-call cost was half the read (0.56 against 0.26 ms a 2-8 s
# WAV for librosa.load). Longer files stream in pieces, so memory stays flat (issue 38, scripts/bench_memory.py).
WHOLE_READ_BYTES = 16 << 20
# ffmpeg waiting this long with no output (a stalled network mount, a pipe no one writes) is stopped and the file
# reported, so one file cannot hang a batch job. Time the caller spends between pieces does not count.
FFMPEG_STALL_SECONDS = 60.0
_LIBSNDFILE_ERRORS = (sf.LibsndfileError, RuntimeError, TypeError, ValueError)


class AudioStream:
    """An open audio file: its sample rate, channel count, and its frames as ``[n, channels]`` float32 pieces
    (iterate once). Close it (or use ``with``) to release the decoder."""

    def __init__(self, sample_rate: int, channels: int, pieces: Iterator[np.ndarray], close=None):
        self.sample_rate, self.channels = sample_rate, channels
        self._pieces, self._close = pieces, close

    def __iter__(self) -> Iterator[np.ndarray]:
        return self._pieces

    def close(self) -> None:
        self._pieces.close()
        if self._close is not None:
            self._close()

    def __enter__(self) -> AudioStream:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_audio(path: str | os.PathLike, notes: list[str] | None = None) -> AudioStream:
    """Open ``path`` for streaming: libsndfile where it knows the format and its length, ffmpeg otherwise.

    Raises :class:`AudioError` for a missing, empty or undecodable file and for an implausible sample rate. A
    file that ends before its header says, or that the decoder reports damaged, is read as far as it goes; a
    note saying so goes to ``notes`` once the stream has been read.
    """
    path = str(path)
    require_file(path)
    if os.path.getsize(path) == 0:
        raise AudioError("empty file (0 bytes)", path)
    try:
        # Opened once: its header is what sf.info says, and a file that libsndfile reads is read from it (a second
        # open and parse cost about a fifth of a 5-second WAV's read).
        handle = sf.SoundFile(os.fsencode(path))
    except _LIBSNDFILE_ERRORS as e:
        handle, error = None, e
    try:
        info = handle
        if info is not None and not MIN_SAMPLE_RATE <= info.samplerate <= MAX_SAMPLE_RATE:
            raise _bad_rate(info.samplerate, path)
        stream, whole = None, None
        exact = info is not None and _frames_are_exact(path, info)
        mp3 = info is not None and info.format == "MP3"
        if mp3 and exact and _fits_one_read(info):
            whole = _read_whole(path, info)  # libsndfile reads MP3 right in one call only; None: damaged
        # A long MP3 goes to ffmpeg, and so does a damaged one: libsndfile's pieces of it would be wrong.
        if (not exact or (mp3 and whole is None)) and shutil.which("ffmpeg") is not None:
            try:
                stream = _open_ffmpeg(path, notes, info.frames if mp3 and exact else None)
            except AudioError as e:
                bad = re.search(r"invalid sample rate:?\s*(-?\d+)", e.reason, re.IGNORECASE)
                if bad:  # a header ffmpeg reads as a rate no recording has; it reads the 32 bits as signed, the
                    # header means them unsigned (2**31 Hz, not -2147483648)
                    raise _bad_rate(int(bad.group(1)) % 2**32, path) from e
                if info is None or (mp3 and not _fits_one_read(info)):  # nothing else reads it (right)
                    raise
        if stream is None and mp3 and whole is None:  # no ffmpeg (or it failed): libsndfile, in one call or not at all
            whole = _mp3_in_one_read(path, info)
        if stream is None and info is not None:  # libsndfile's own format (or no ffmpeg to do better)
            stream = AudioStream(info.samplerate, info.channels,
                                 _libsndfile_pieces(path, info, notes, whole, handle), close=handle.close)
            handle = None  # the stream's to close
    finally:
        if handle is not None:
            handle.close()
    if stream is None:
        reason = str(error)
        if "does not exist" in reason:  # libsndfile's words for data it cannot parse, e.g. a bad MP3 header
            reason = "format not recognised, or the data is corrupt"
        if Path(path).suffix.lower() not in LIBSNDFILE_EXTENSIONS:
            reason += (f" ({', '.join(e[1:] for e in FFMPEG_EXTENSIONS)} need ffmpeg on PATH: "
                       "scripts/setup.sh installs it)")
        raise AudioError(f"cannot decode audio: {reason}", path) from error
    if not MIN_SAMPLE_RATE <= stream.sample_rate <= MAX_SAMPLE_RATE:
        stream.close()
        raise _bad_rate(stream.sample_rate, path)
    return stream


def require_file(path: str | os.PathLike) -> None:
    """Raise :class:`AudioError` unless ``path`` is a regular file, saying what it is instead: a folder named where
    a file is expected (in a list, a manifest, a corpus CSV) is not "file not found", and a device or pipe would be
    read forever or half consumed by the format probe."""
    path = str(path)
    if os.path.isfile(path):
        return
    if os.path.isdir(path):
        raise AudioError("is a folder, not an audio file", path)
    try:
        os.stat(path)
    except (OSError, ValueError):  # ValueError: a NUL in the name, which no file can have
        raise AudioError("file not found", path) from None
    raise AudioError("not a regular file (a device, pipe or socket)", path)


def _bad_rate(rate: object, path: str) -> AudioError:
    return AudioError(f"unsupported sample rate {rate} Hz (supported: {MIN_SAMPLE_RATE} to {MAX_SAMPLE_RATE})", path)


def _frames_are_exact(path: str, info) -> bool:
    """Whether libsndfile's frame count is known and exact. For an MP3 without a Xing/Info/VBRI frame count it is an
    estimate from the first frame's bitrate (a variable-bitrate file was seen cut at 105 of its 180 s), and
    libsndfile stops reading there: such files go to ffmpeg, which reads to the end."""
    if info.frames <= 0:
        return False
    if info.format == "OGG":
        return not _ogg_is_chained(path)
    if info.format != "MP3":
        return True
    with open(path, "rb") as f:
        head = f.read(10)
        skip = 0
        if head[:3] == b"ID3" and len(head) == 10:  # an ID3v2 tag first: its size is 4 x 7 bits
            skip = 10 + int.from_bytes(bytes(b & 0x7F for b in head[6:10]), "big") + (10 if head[5] & 0x10 else 0)
        f.seek(skip)
        data = f.read(64 * 1024)
    sync = re.search(rb"\xff[\xe0-\xff]", data)  # the first frame header
    return sync is not None and any(tag in data[sync.start():sync.start() + 200] for tag in (b"Xing", b"Info", b"VBRI"))


def _ogg_is_chained(path: str) -> bool:
    """Whether an Ogg file holds more than one logical stream one after another (a "chained" Ogg: joined files, an
    internet radio capture). libsndfile reads the first stream only and says nothing (1.5 of 8.5 s was seen read):
    such files go to ffmpeg, which reads every stream. Counts the pages that begin a stream (capture pattern
    ``OggS``, version 0, header type with the beginning-of-stream bit)."""
    starts, tail = 0, b""
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            data = tail + chunk
            at = data.find(b"OggS\x00")
            while at != -1 and at + 5 < len(data):
                if data[at + 5] & 0x02:
                    starts += 1
                    if starts > 1:
                        return True
                at = data.find(b"OggS\x00", at + 1)
            tail = data[-5:]
    return False


def _fits_one_read(info) -> bool:
    """Whether a file's decoded float32 frames fit :data:`WHOLE_READ_BYTES`, so that it is read in one call."""
    return 0 < info.frames * info.channels * 4 <= WHOLE_READ_BYTES


def _mp3_in_one_read(path: str, info) -> np.ndarray:
    """An MP3's frames from libsndfile in one read, for when ffmpeg is not there to stream it (or fails on it).

    ``soundfile``'s ``read`` asks libsndfile for the position before each read, which re-seeks its MP3 decoder
    and drops the state carried from frame to frame (the bit reservoir, the overlap): every read after the first
    came out wrong (a 22.05 kHz tone off by up to 0.6 from its first 0.25 s piece on; its one read matched ffmpeg
    to 2e-6). So a long MP3 is refused rather than decoded wrong, and so is one libsndfile fails on part-way.
    """
    if not _fits_one_read(info):
        decoded = info.frames * info.channels * 4 / (1 << 20)
        raise AudioError(f"cannot decode audio: an MP3 this long ({info.frames / info.samplerate / 60:.1f} min) "
                         "needs ffmpeg on PATH (scripts/setup.sh installs it): libsndfile decodes MP3 right only in "
                         f"one read, which would take {decoded:.0f} MiB here (the limit is "
                         f"{WHOLE_READ_BYTES / (1 << 20):g} MiB)", path)
    try:
        with sf.SoundFile(os.fsencode(path)) as f, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return f.read(info.frames, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as e:
        raise AudioError(f"cannot decode audio: {e} (ffmpeg reads a damaged MP3 past the damage: scripts/setup.sh "
                         "installs it)", path) from e


def _libsndfile_pieces(path: str, info, notes: list[str] | None, whole: np.ndarray | None = None,
                       handle: sf.SoundFile | None = None) -> Iterator[np.ndarray]:
    """A file's frames in fresh arrays of :data:`PIECE_SECONDS`, until the data ends; ``whole``, its frames read
    already in one call (an MP3: :func:`_mp3_in_one_read`), is handed out as it is. ``handle``: the file, opened and
    not yet read from, to read from (and close) instead of opening it again.

    Not ``soundfile.blocks``: when a compressed file ends before its header says (a cut MP3 or OGG), its buffer
    is handed out again and the last block's audio repeats to the promised length. Here a short read ends the
    stream; so does a decoder error once some audio has come (a FLAC cut mid-frame), keeping what came before.
    Either way a note saying how much is missing goes to ``notes``; so does a WAV cut short
    (:func:`wav_truncation`), which libsndfile reads as far as it goes without a word.
    """
    piece = max(1, round(info.samplerate * PIECE_SECONDS))
    read, problem = 0, None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if whole is None and _fits_one_read(info):
            whole, handle = _read_whole(path, info, handle), None
        if whole is not None:
            read = len(whole)
            if read:
                yield whole
        else:
            with handle if handle is not None else sf.SoundFile(os.fsencode(path)) as f:
                while True:
                    try:
                        data = _read_float(f, piece)
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
    if notes is None:
        return
    missing = (info.frames - read) / info.samplerate
    if problem or missing > TRUNCATION_TOLERANCE_SECONDS:
        notes.append(f"truncated file: {problem + '; ' if problem else ''}its header promises "
                     f"{info.frames / info.samplerate:.2f} s of audio, {read / info.samplerate:.2f} s could be read")
    elif info.format == "WAV" and (note := wav_truncation(path)):
        notes.append(note)


def _read_float(f: sf.SoundFile, frames: int) -> np.ndarray:
    """``f.read(frames, dtype="float32", always_2d=True)``. 16-bit PCM is read as integers and scaled here, the same
    bits (sample / 32768): libsndfile's own conversion took 0.18 of a 2-8 s WAV's 0.23 ms read."""
    if f.subtype != "PCM_16":
        return f.read(frames, dtype="float32", always_2d=True)
    data = f.read(frames, dtype="int16", always_2d=True).astype(np.float32)
    data *= np.float32(1 / 32768)
    return data


def _read_whole(path: str, info, handle: sf.SoundFile | None = None) -> np.ndarray | None:
    """A short file's frames in one read (:data:`WHOLE_READ_BYTES`), or None where the pieces must be read instead:
    the decoder failed part-way (a FLAC cut mid-frame; the pieces keep the audio before the damage, and libsndfile
    may not seek back after the error), or there were more frames than the header said. ``handle``: the file,
    opened and not yet read from, to read from (and close) instead of opening it again."""
    try:
        with handle if handle is not None else sf.SoundFile(os.fsencode(path)) as f, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            data = _read_float(f, info.frames + 1)  # +1: the end is seen in this call
    except (sf.LibsndfileError, RuntimeError):
        return None
    return data if len(data) <= info.frames else None


def _open_ffmpeg(path: str, notes: list[str] | None, header_frames: int | None = None) -> AudioStream:
    """Stream ``path`` through the ffmpeg command as big-endian float32 Sun AU: a 24-byte header gives the rate and
    channels, the pipe bounds memory. ffmpeg's complaints about a file it could still decode (a cut m4a: "partial
    file") become a note; with no audio at all they are the error. ``header_frames``, the length an MP3's frame
    count promises, makes a file that ends well short of it a "truncated file" note, as libsndfile's reads do: ffmpeg
    reads a cut MP3 without a word."""
    command = [b"ffmpeg", b"-nostdin", b"-v", b"error", b"-i", b"file:" + os.fsencode(os.path.abspath(path)),
               b"-map", b"0:a:0", b"-c:a", b"pcm_f32be", b"-f", b"au", b"pipe:1"]
    errors = tempfile.TemporaryFile()  # not a pipe: a damaged file's many messages could fill it and stall ffmpeg
    proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=errors)
    waiting_since: float | None = None  # when the current read began; None between reads
    stalled = threading.Event()

    def watch() -> None:
        limit = FFMPEG_STALL_SECONDS
        while proc.poll() is None:
            began = waiting_since
            if began is not None and time.monotonic() - began > limit:
                stalled.set()
                proc.kill()
                return
            time.sleep(min(1.0, limit / 4))

    threading.Thread(target=watch, name="ffmpeg-watchdog", daemon=True).start()

    def read(size: int) -> bytes:
        nonlocal waiting_since
        waiting_since = time.monotonic()
        try:
            data = proc.stdout.read(size)
        finally:
            waiting_since = None
        if stalled.is_set():
            raise AudioError(f"cannot decode audio: ffmpeg gave no output for {FFMPEG_STALL_SECONDS:g} s and was "
                             "stopped (is the file on a stalled mount, or a pipe?)", path)
        return data

    def stop() -> None:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        proc.stdout.close()
        errors.close()

    def messages() -> str:
        """ffmpeg's first complaint, without its "[demuxer @ 0x...]" or "file:PATH:" prefix."""
        proc.wait()
        errors.seek(0)
        for line in errors.read().decode("utf-8", "replace").splitlines():
            line = re.sub(r"^\[[^\]]* @ 0x[0-9a-f]+\] ", "", line.strip())
            line = line.removeprefix(os.fsdecode(command[5]) + ": ")
            if line:
                return line
        return f"ffmpeg exited with status {proc.returncode}"

    try:
        header = read(24)
        fields = [int.from_bytes(header[i:i + 4], "big") for i in range(0, len(header), 4)]
        if len(fields) < 6 or fields[0] != 0x2E736E64 or fields[3] != 6 or fields[5] == 0:
            raise AudioError("cannot decode audio: format not recognised, or the data is corrupt "
                             f"(ffmpeg: {messages()})", path)
        offset, sample_rate, channels = fields[1], fields[4], fields[5]
        read(max(offset - 24, 0))  # the header's annotation
    except AudioError:
        stop()
        raise

    def pieces() -> Iterator[np.ndarray]:
        frame_bytes = 4 * channels
        piece_bytes = max(1, round(sample_rate * PIECE_SECONDS)) * frame_bytes
        frames, pending = 0, b""
        while chunk := read(piece_bytes):
            chunk = pending + chunk
            whole = len(chunk) - len(chunk) % frame_bytes
            chunk, pending = chunk[:whole], chunk[whole:]
            if chunk:
                frames += len(chunk) // frame_bytes
                yield np.frombuffer(chunk, ">f4").astype(np.float32).reshape(-1, channels)
        if proc.wait() != 0 and frames == 0:
            raise AudioError(f"cannot decode audio (ffmpeg: {messages()})", path)
        errors.seek(0)
        if notes is not None and errors.read(1):
            notes.append(f"damaged file: ffmpeg reports \"{messages()}\"; {frames / sample_rate:.2f} s could be read")
        elif notes is not None and (header_frames or 0) - frames > TRUNCATION_TOLERANCE_SECONDS * sample_rate:
            notes.append(f"truncated file: its header promises {header_frames / sample_rate:.2f} s of audio, "
                         f"{frames / sample_rate:.2f} s could be read")

    return AudioStream(sample_rate, channels, pieces(), stop)


def read_audio(path: str | os.PathLike, notes: list[str] | None = None) -> tuple[np.ndarray, int]:
    """Decode a file as it is: float32 samples ``[time]`` or ``[time, channels]`` and its sample rate."""
    with open_audio(path, notes) as stream:
        pieces = list(stream)
    # One piece (a short file, read whole) is used as it is: concatenating it would copy it.
    data = (pieces[0] if len(pieces) == 1 else np.concatenate(pieces) if pieces
            else np.zeros((0, stream.channels), np.float32))
    return (data[:, 0] if stream.channels == 1 else data), stream.sample_rate


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
    """A mono wave at another rate: ``librosa.resample(res_type="soxr_hq")``'s samples, from soxr directly (librosa's
    import costs a feature worker about 1 s): soxr's HQ resampler, then zero-padded or cut to ``ceil(n * ratio)``."""
    if orig_sr == target_sr:
        return wave
    import soxr

    out = soxr.resample(wave, orig_sr, target_sr, quality="soxr_hq")
    size = int(np.ceil(len(wave) * (float(target_sr) / orig_sr)))
    out = np.pad(out, (0, size - len(out))) if len(out) < size else out[:size]
    return out.astype(np.float32)


# What reading a file can raise: AudioError for what we detect, the rest from decoders, which fail in many ways on
# broken files.
DECODE_ERRORS = (SpeechError, OSError, ValueError, RuntimeError, MemoryError)


def failure_reason(error: Exception) -> str:
    """A file's failure, as a job reports it, from one of :data:`DECODE_ERRORS`."""
    if isinstance(error, SpeechError):
        return error.reason
    if isinstance(error, OSError):  # the file system's refusal (permissions, an I/O error), not the audio's fault
        return f"cannot read: {error}"
    return f"cannot decode audio ({type(error).__name__}: {error})"


def load_audio(path: str | os.PathLike, sample_rate: int = 16000, notes: list[str] | None = None) -> np.ndarray:
    """Load ``path`` as float32 mono at ``sample_rate``. Raises AudioError on bad input; a note on a file cut
    short or damaged goes to ``notes`` (:func:`open_audio`)."""
    data, sr = read_audio(path, notes)
    wave = to_mono(np.asarray(data, dtype=np.float32))
    if wave.size == 0:
        raise AudioError("audio has no samples", str(path))
    if not np.all(np.isfinite(wave)):
        raise AudioError("audio contains NaN or infinite samples", str(path))
    return np.ascontiguousarray(resample(wave, sr, sample_rate))


def audio_duration(path: str | os.PathLike) -> float:
    """Duration in seconds, from the header when it is exact (no full decode)."""
    path = str(path)
    require_file(path)
    try:
        info = sf.info(os.fsencode(path))
        if info.samplerate > 0 and _frames_are_exact(path, info):
            return info.frames / info.samplerate
    except _LIBSNDFILE_ERRORS:
        pass
    data, sr = read_audio(path)
    return len(data) / sr


def iter_audio_blocks(path: str | os.PathLike, block_seconds: float, sample_rate: int = 16000,
                      overlap_seconds: float = 0.0, notes: list[str] | None = None
                      ) -> Iterator[tuple[float, np.ndarray]]:
    """Yield ``(start_seconds, mono block at sample_rate)`` with bounded memory, for long recordings, whatever the
    format (:func:`open_audio`). A note on a file cut short or damaged goes to ``notes``."""
    path = str(path)
    with open_audio(path, notes) as stream:
        sr = stream.sample_rate
        size = max(1, round(block_seconds * sr))
        overlap = round(overlap_seconds * sr)
        position = 0
        pending = np.zeros((0, stream.channels), np.float32)
        for piece in stream:
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


def scan_folder(root: Path) -> tuple[list[Path], list[Path]]:
    """``(audio, others)`` below ``root``, each sorted, from one walk: files named like audio (not ``is_file()``: a
    dangling link named like audio is listed, so that a job reports it as a failure instead of leaving it out
    unseen), and the other files, hidden ones aside, so that a job can say what it left out."""
    audio, others = [], []
    for p in root.rglob("*"):
        if p.is_dir():
            continue
        if is_audio_file(p):
            audio.append(p)
        elif p.is_file() and not p.name.startswith("."):
            others.append(p)
    return sorted(audio), sorted(others)


def find_audio_files(root: Path) -> list[Path]:
    """Files named like audio anywhere below ``root``, sorted (:func:`scan_folder`)."""
    return scan_folder(root)[0]
