import itertools
import os
import shutil
import subprocess

import numpy as np
import pytest
import soundfile as sf

from speech.audio import audio_duration, failure_reason, iter_audio_blocks, load_audio, wav_truncation
from speech.errors import AudioError
from tests.conftest import tone_speech


@pytest.fixture
def wave():
    return tone_speech("hello world")


@pytest.mark.parametrize("subtype", ["PCM_16", "PCM_24", "PCM_32", "FLOAT", "PCM_U8"])
def test_any_sample_width_loads_to_the_same_scale(tmp_path, wave, subtype):
    path = tmp_path / "a.wav"
    sf.write(path, wave, 16000, subtype=subtype)
    loaded = load_audio(path)
    assert loaded.dtype == np.float32 and loaded.shape == wave.shape
    tolerance = 0.01 if subtype == "PCM_U8" else 1e-3
    assert np.abs(loaded - wave).max() < tolerance


@pytest.mark.parametrize("suffix", [".wav", ".flac"])
@pytest.mark.parametrize("whole", [True, False])
def test_16_bit_samples_read_as_libsndfile_scales_them(tmp_path, monkeypatch, suffix, whole):
    # 16-bit PCM is read as integers and scaled in numpy (libsndfile's own scaling is slower): the same samples,
    # bit for bit, in one read and in pieces.
    if not whole:
        monkeypatch.setattr("speech.audio.WHOLE_READ_BYTES", 1)
    samples = np.concatenate([[-32768, -32767, -1, 0, 1, 32766, 32767],
                              np.random.default_rng(0).integers(-32768, 32768, 9000)]).astype(np.int16)
    path = tmp_path / f"a{suffix}"
    sf.write(path, np.stack([samples, samples[::-1]], axis=1), 16000, subtype="PCM_16")
    stereo, _ = sf.read(path, dtype="float32")
    asked, read = [], sf.SoundFile.read
    monkeypatch.setattr(sf.SoundFile, "read", lambda f, *a, **k: asked.append(k.get("dtype")) or read(f, *a, **k))
    assert np.array_equal(load_audio(path), stereo.mean(axis=1, dtype=np.float32))
    assert set(asked) == {"int16"}  # the integer read, not libsndfile's float one
    assert np.array_equal(stereo[:, 0], samples / np.float32(32768))


def test_stereo_is_downmixed_and_other_rates_resampled(tmp_path, wave):
    import librosa

    stereo = np.stack([wave, wave], axis=1)
    wave48 = librosa.resample(wave, orig_sr=16000, target_sr=48000)
    sf.write(tmp_path / "s.wav", stereo, 16000)
    sf.write(tmp_path / "r.flac", np.stack([wave48, wave48], 1), 48000)
    assert np.abs(load_audio(tmp_path / "s.wav") - wave).max() < 1e-3
    back = load_audio(tmp_path / "r.flac")
    assert abs(len(back) - len(wave)) <= 1
    n = min(len(back), len(wave))
    assert np.corrcoef(back[:n], wave[:n])[0, 1] > 0.99


def test_out_of_phase_channels_keep_the_speech(tmp_path, wave):
    # One channel wired inverted: the plain average is silence, so the loudest channel is kept, whole file or
    # streamed in blocks. Independent channels are still averaged.
    sf.write(tmp_path / "inv.wav", np.stack([wave, -0.9 * wave], axis=1), 16000)
    assert np.abs(load_audio(tmp_path / "inv.wav") - wave).max() < 1e-3
    (_, block), = iter_audio_blocks(tmp_path / "inv.wav", block_seconds=60)
    assert np.abs(block - wave).max() < 1e-3
    other = np.random.default_rng(0).standard_normal(len(wave)).astype(np.float32) * 0.1
    sf.write(tmp_path / "two.wav", np.stack([wave, other], axis=1), 16000, subtype="FLOAT")
    assert np.abs(load_audio(tmp_path / "two.wav") - (wave + other) / 2).max() < 1e-5


def test_ogg_loads(tmp_path, wave):
    sf.write(tmp_path / "a.ogg", wave, 16000, format="OGG", subtype="VORBIS")
    assert abs(len(load_audio(tmp_path / "a.ogg")) - len(wave)) < 400


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg not installed (scripts/setup.sh installs it)")
@pytest.mark.parametrize("suffix, codec", [(".m4a", "aac"), (".webm", "libopus")])
def test_formats_libsndfile_cannot_read_are_decoded_by_ffmpeg(tmp_path, wave, suffix, codec):
    sf.write(tmp_path / "a.wav", wave, 16000)
    path = tmp_path / f"a{suffix}"
    subprocess.run(["ffmpeg", "-loglevel", "error", "-i", str(tmp_path / "a.wav"), "-c:a", codec, str(path)],
                   check=True)
    with pytest.raises(sf.LibsndfileError):
        sf.read(path)
    loaded = load_audio(path)
    # Lossy codecs add a little delay (encoder priming); find it, then compare the waveforms.
    from scipy.signal import correlate

    lag = int(np.argmax(correlate(loaded, wave, mode="full", method="fft"))) - (len(wave) - 1)
    assert 0 <= lag < 2000 and abs(len(loaded) - lag - len(wave)) < 2000
    n = min(len(wave), len(loaded) - lag)
    assert np.corrcoef(loaded[lag:lag + n], wave[:n])[0, 1] > 0.9


needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None,
                                  reason="ffmpeg not installed (scripts/setup.sh installs it)")


def _ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", *args], check=True)


@needs_ffmpeg
def test_a_variable_bitrate_mp3_without_a_frame_count_is_read_to_its_end(tmp_path):
    # No Xing/Info header: libsndfile takes the length from the first frame's bitrate and stops reading there.
    # Quiet first (a low bitrate), then loud noise (a high one): its estimate falls far short.
    rng = np.random.default_rng(0)
    wave = np.concatenate([0.001 * rng.standard_normal(16000 * 4), 0.5 * rng.standard_normal(16000 * 16)])
    sf.write(tmp_path / "a.wav", wave.astype(np.float32), 16000, subtype="FLOAT")
    path = tmp_path / "vbr.mp3"
    _ffmpeg("-i", str(tmp_path / "a.wav"), "-c:a", "libmp3lame", "-q:a", "0", "-write_xing", "0", str(path))
    info = sf.info(path)
    assert info.frames / info.samplerate < 15, "the fixture must fool libsndfile's estimate"
    assert audio_duration(path) == pytest.approx(20.0, abs=0.1)
    notes: list[str] = []
    assert len(load_audio(path, notes=notes)) == pytest.approx(20 * 16000, abs=1600) and notes == []
    blocks = list(iter_audio_blocks(path, block_seconds=8.0))
    assert [start for start, _ in blocks] == [0.0, 8.0, 16.0]
    assert abs(len(blocks[-1][1]) - 4 * 16000) < 1600


@needs_ffmpeg
def test_an_m4a_is_streamed_and_one_cut_short_is_read_as_far_as_it_goes_with_a_warning(tmp_path, wave):
    long = np.tile(wave, 10)
    sf.write(tmp_path / "a.wav", long, 16000)
    _ffmpeg("-i", str(tmp_path / "a.wav"), "-c:a", "aac", "-movflags", "+faststart", str(tmp_path / "a.m4a"))
    notes: list[str] = []
    blocks = list(iter_audio_blocks(tmp_path / "a.m4a", block_seconds=2.0, notes=notes))
    streamed = np.concatenate([b for _, b in blocks])
    assert notes == [] and abs(len(streamed) - len(long)) < 2000
    np.testing.assert_allclose(streamed, load_audio(tmp_path / "a.m4a"), atol=1e-6)
    whole = (tmp_path / "a.m4a").read_bytes()
    (tmp_path / "cut.m4a").write_bytes(whole[:len(whole) // 2])
    got = load_audio(tmp_path / "cut.m4a", notes=notes)
    assert 0.3 * len(long) < len(got) < 0.7 * len(long)
    assert len(notes) == 1 and notes[0].startswith("damaged file: ffmpeg reports"), notes


def _fake_ffmpeg(tmp_path, monkeypatch, seconds_of_audio: float, then_sleep: float) -> None:
    """An ffmpeg on PATH that writes a 16 kHz mono AU stream of ``seconds_of_audio``, then sleeps ``then_sleep`` s
    before it exits (a long sleep: a hung ffmpeg)."""
    import sys

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "ffmpeg"
    script.write_text(f"""#!{sys.executable}
import sys, time
out = sys.stdout.buffer
out.write(bytes.fromhex("2e736e64") + (24).to_bytes(4, "big") + (0xFFFFFFFF).to_bytes(4, "big")
          + (6).to_bytes(4, "big") + (16000).to_bytes(4, "big") + (1).to_bytes(4, "big"))
out.write(bytes(4 * int(16000 * {seconds_of_audio})))
out.flush()
time.sleep({then_sleep})
""")
    script.chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))


def test_an_ffmpeg_that_hangs_is_stopped_and_the_file_reported(tmp_path, monkeypatch):
    import time

    import speech.audio

    _fake_ffmpeg(tmp_path, monkeypatch, seconds_of_audio=1.0, then_sleep=120)
    monkeypatch.setattr(speech.audio, "FFMPEG_STALL_SECONDS", 0.5)
    (tmp_path / "a.m4a").write_bytes(bytes(100))
    began = time.monotonic()
    with pytest.raises(AudioError, match=r"ffmpeg gave no output for 0\.5 s and was stopped"):
        load_audio(tmp_path / "a.m4a")
    assert time.monotonic() - began < 60  # stopped, not waited out


def test_a_slow_caller_is_not_taken_for_a_stalled_ffmpeg(tmp_path, monkeypatch):
    import time

    import speech.audio

    # 2 s of audio fill the pipe: ffmpeg waits on the caller, who takes longer than the limit over each block.
    _fake_ffmpeg(tmp_path, monkeypatch, seconds_of_audio=2.0, then_sleep=0)
    monkeypatch.setattr(speech.audio, "FFMPEG_STALL_SECONDS", 0.2)
    (tmp_path / "a.m4a").write_bytes(bytes(100))
    total = 0
    for _, block in iter_audio_blocks(tmp_path / "a.m4a", block_seconds=0.5):
        time.sleep(0.4)
        total += len(block)
    assert total == 2 * 16000


@pytest.mark.parametrize("rate", [1, 100, 2**31 - 1, 2**31, 2**32 - 1])
def test_a_header_claiming_an_implausible_rate_is_refused(tmp_path, rate):
    # At 1 Hz, a second of samples would be resampled to 16000 times its size.
    sf.write(tmp_path / "a.wav", np.zeros(16000, np.float32), 16000, subtype="PCM_16")
    data = bytearray((tmp_path / "a.wav").read_bytes())
    at = data.index(b"fmt ") + 12
    data[at:at + 4] = rate.to_bytes(4, "little")
    (tmp_path / "a.wav").write_bytes(bytes(data))
    # Read as a signed 32-bit number (ffmpeg) a rate from 2**31 up is negative: refused all the same, and named as
    # the header has it.
    with pytest.raises(AudioError, match=f"unsupported sample rate {rate} Hz"):
        load_audio(tmp_path / "a.wav")
    with pytest.raises(AudioError, match="unsupported sample rate"):
        list(iter_audio_blocks(tmp_path / "a.wav", block_seconds=8.0))


def test_without_ffmpeg_the_error_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # neither ffmpeg nor any other audioread backend
    path = tmp_path / "a.m4a"
    path.write_bytes(b"\x00\x00\x00\x20ftypM4A " + bytes(200))
    with pytest.raises(AudioError, match="need ffmpeg"):
        load_audio(path)
    (tmp_path / "corrupt.wav").write_bytes(b"RIFF" + bytes(100))
    with pytest.raises(AudioError) as info:  # a WAV is not ffmpeg's business: no misleading hint
        load_audio(tmp_path / "corrupt.wav")
    assert "need ffmpeg" not in str(info.value)


@pytest.mark.parametrize("content, reason", [
    (None, "file not found"),
    (b"", "empty file"),
    (b"this is not audio at all" * 10, "cannot decode"),
    (b"RIFF\x24\x00\x00\x00WAVEfmt ", "cannot decode"),  # a truncated header
])
def test_bad_files_raise_audio_error_naming_the_file(tmp_path, content, reason):
    path = tmp_path / "bad.wav"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(AudioError, match=reason) as info:
        load_audio(path)
    assert info.value.path == str(path)


@pytest.mark.parametrize("make, reason", [
    (lambda p: p.mkdir(), "is a folder, not an audio file"),  # e.g. a folder named in a list, manifest or CSV
    (lambda p: os.mkfifo(p), "not a regular file"),  # the format probe would block on it, or eat its start
])
def test_a_path_that_is_not_a_file_says_what_it_is(tmp_path, make, reason):
    path = tmp_path / "x.wav"
    make(path)
    for read in (load_audio, audio_duration, lambda p: list(iter_audio_blocks(p, block_seconds=8.0))):
        with pytest.raises(AudioError, match=reason) as info:
            read(path)
        assert info.value.path == str(path)


@pytest.mark.parametrize("name", ["notes.mp3", "random.flac", "random.ogg", "random.m4a"])
def test_a_file_that_is_not_the_audio_its_name_says_is_reported_as_such(tmp_path, name):
    path = tmp_path / name
    if name == "notes.mp3":
        path.write_text("not audio\n" * 100)
    else:
        path.write_bytes(np.random.default_rng(0).bytes(50000))
    with pytest.raises(AudioError, match="cannot decode audio") as info:
        load_audio(path)
    assert "does not exist" not in str(info.value)  # libsndfile's words; the file exists
    assert "no samples" not in str(info.value)  # it is not an empty recording


def test_a_failure_is_reported_in_one_way_by_every_job():
    # Feature extraction and transcription (so the batch and Beam jobs too) report a file's failure through it.
    assert failure_reason(AudioError("file not found", "a.wav")) == "file not found"
    io_error = OSError(5, "Input/output error", "a.wav")
    assert failure_reason(io_error) == "cannot read: [Errno 5] Input/output error: 'a.wav'"
    assert failure_reason(ValueError("bad header")) == "cannot decode audio (ValueError: bad header)"


def test_nan_audio_is_rejected(tmp_path):
    wave = np.full(16000, np.nan, np.float32)
    sf.write(tmp_path / "nan.wav", wave, 16000, subtype="FLOAT")
    with pytest.raises(AudioError, match="NaN"):
        load_audio(tmp_path / "nan.wav")


def test_zero_sample_wav_is_rejected(tmp_path):
    sf.write(tmp_path / "z.wav", np.zeros(0, np.float32), 16000)
    with pytest.raises(AudioError):
        load_audio(tmp_path / "z.wav")


def test_silence_is_valid(tmp_path):
    sf.write(tmp_path / "s.wav", np.zeros(8000, np.float32), 16000)
    assert load_audio(tmp_path / "s.wav").shape == (8000,)


def test_duration_from_header_and_streaming_blocks(tmp_path):
    wave = np.random.default_rng(0).standard_normal(16000 * 5).astype(np.float32) * 0.1
    sf.write(tmp_path / "long.wav", wave, 16000)
    assert audio_duration(tmp_path / "long.wav") == pytest.approx(5.0)
    blocks = list(iter_audio_blocks(tmp_path / "long.wav", block_seconds=2.0))
    assert [round(start, 3) for start, _ in blocks] == [0.0, 2.0, 4.0]
    assert np.allclose(np.concatenate([b for _, b in blocks]), wave, atol=1e-4)


def _with_chunk_before_data(wav: bytes, chunk: bytes) -> bytes:
    at = wav.index(b"data")
    body = wav[12:at] + chunk + wav[at:]
    return b"RIFF" + (4 + len(body)).to_bytes(4, "little") + b"WAVE" + body


def test_a_wav_cut_short_is_read_as_far_as_it_goes_and_said_to_be_truncated(tmp_path, wave):
    sf.write(tmp_path / "whole.wav", np.tile(wave, 4)[:32000], 16000, subtype="PCM_16")  # 2.00 s
    whole = (tmp_path / "whole.wav").read_bytes()
    assert wav_truncation(tmp_path / "whole.wav") is None
    # a LIST chunk before the data (as many recorders write) is walked past
    (tmp_path / "cut.wav").write_bytes(_with_chunk_before_data(whole, b"LIST\x05\x00\x00\x00INFOx\x00")[:16100])
    note = wav_truncation(tmp_path / "cut.wav")
    assert note is not None and "2.00 s" in note and "0.50 s" in note, note
    assert abs(len(load_audio(tmp_path / "cut.wav")) - 8000) < 50  # 0.50 s, give or take the header
    # a streaming writer's placeholder size is not a truncation; nor is a file of another format
    placeholder = bytearray(whole)
    at = whole.index(b"data") + 4
    placeholder[at:at + 4] = b"\xff\xff\xff\xff"
    (tmp_path / "stream.wav").write_bytes(bytes(placeholder))
    assert wav_truncation(tmp_path / "stream.wav") is None
    sf.write(tmp_path / "a.flac", wave, 16000)
    (tmp_path / "junk.wav").write_bytes(b"RIFF\x00")
    assert wav_truncation(tmp_path / "a.flac") is None and wav_truncation(tmp_path / "junk.wav") is None
    assert wav_truncation(tmp_path / "missing.wav") is None


@pytest.mark.parametrize("fmt, subtype, suffix", [("MP3", "MPEG_LAYER_III", "mp3"), ("FLAC", "PCM_16", "flac")])
def test_a_compressed_file_cut_short_streams_what_is_there_once_and_says_so(tmp_path, fmt, subtype, suffix):
    # soundfile.blocks repeated its last block up to the length a cut MP3's header promised: invented speech.
    rng = np.random.default_rng(1)
    wave = np.concatenate([tone_speech("abcdefghij klmnopqrst uvwxyz", seed=s) for s in range(6)])
    wave = (wave + 0.01 * rng.standard_normal(len(wave))).astype(np.float32)
    sf.write(tmp_path / f"whole.{suffix}", wave, 16000, format=fmt, subtype=subtype)
    whole = (tmp_path / f"whole.{suffix}").read_bytes()
    (tmp_path / f"cut.{suffix}").write_bytes(whole[:len(whole) // 2])
    notes: list[str] = []
    blocks = list(iter_audio_blocks(tmp_path / f"cut.{suffix}", block_seconds=2.0, notes=notes))
    got = np.concatenate([b for _, b in blocks])
    assert 0.3 * len(wave) < len(got) < 0.6 * len(wave)
    assert [round(start, 3) for start, _ in blocks] == [2.0 * i for i in range(len(blocks))]
    # No block is a copy of the one before it.
    assert all(not np.array_equal(a[:1000], b[:1000]) for (_, a), (_, b) in itertools.pairwise(blocks))
    assert len(notes) == 1 and "truncated file" in notes[0], notes
    notes.clear()
    whole_blocks = list(iter_audio_blocks(tmp_path / f"whole.{suffix}", block_seconds=2.0, notes=notes))
    assert notes == [] and abs(sum(len(b) for _, b in whole_blocks) - len(wave)) < 0.05 * 16000


def test_blocks_overlap_as_asked(tmp_path):
    wave = np.random.default_rng(0).standard_normal(16000 * 5).astype(np.float32) * 0.1
    sf.write(tmp_path / "a.wav", wave, 16000, subtype="FLOAT")
    blocks = list(iter_audio_blocks(tmp_path / "a.wav", block_seconds=2.0, overlap_seconds=0.5))
    assert [round(start, 3) for start, _ in blocks] == [0.0, 1.5, 3.0]
    for start, block in blocks:
        i = round(start * 16000)
        np.testing.assert_allclose(block, wave[i:i + 32000], atol=1e-6)


@needs_ffmpeg
def test_a_chained_ogg_is_read_to_its_end(tmp_path):
    # Two Ogg files joined are one valid "chained" Ogg; libsndfile alone reads its first stream and says nothing.
    t = np.arange(3 * 16000) / 16000
    parts = []
    for i, freq in enumerate((440.0, 660.0)):
        sf.write(tmp_path / f"{i}.ogg", (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32), 16000,
                 format="OGG", subtype="VORBIS")
        parts.append((tmp_path / f"{i}.ogg").read_bytes())
    (tmp_path / "chained.ogg").write_bytes(b"".join(parts))
    assert abs(len(load_audio(tmp_path / "0.ogg")) - 3 * 16000) < 160
    wave = load_audio(tmp_path / "chained.ogg")
    assert abs(len(wave) - 6 * 16000) < 800
    second = np.abs(np.fft.rfft(wave[-16000:]))
    assert abs(np.argmax(second) - 660) < 5  # the second stream's tone, not the first's repeated


def test_a_short_file_is_read_in_one_piece_and_a_long_one_streams_in_pieces(tmp_path, monkeypatch):
    # One read for a short clip (the pieces' per-call cost was half the read); past WHOLE_READ_BYTES the pieces keep
    # a long recording's memory flat. Either way the samples are the file's.
    import speech.audio

    monkeypatch.setattr(speech.audio, "WHOLE_READ_BYTES", 2 * 16000 * 4)  # 2 s of 16 kHz mono float32
    wave = np.random.default_rng(0).uniform(-0.5, 0.5, 16000 * 3).astype(np.float32)
    for seconds, pieces in [(2.0, 1), (3.0, 12)]:
        sf.write(tmp_path / "a.wav", wave[:int(seconds * 16000)], 16000, subtype="FLOAT")
        with speech.audio.open_audio(tmp_path / "a.wav") as stream:
            got = list(stream)
        assert len(got) == pieces and max(len(p) for p in got) <= (32000 if pieces == 1 else 4000)
        np.testing.assert_array_equal(np.concatenate(got)[:, 0], wave[:int(seconds * 16000)])


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts this process's open files in /proc")
def test_each_file_is_opened_once_and_closed_however_its_stream_ends(tmp_path, monkeypatch):
    # The file libsndfile opens to read the header is the one read from, and closed: read whole, in pieces, never
    # read, or refused (an implausible rate).
    import speech.audio

    monkeypatch.setattr(speech.audio, "WHOLE_READ_BYTES", 2 * 16000 * 4)
    sf.write(tmp_path / "short.wav", tone_speech("ab"), 16000)
    sf.write(tmp_path / "long.flac", np.zeros(16000 * 3, np.float32), 16000)
    sf.write(tmp_path / "slow.wav", np.zeros(1600, np.float32), 500)
    opened = []
    real_open = sf.SoundFile
    monkeypatch.setattr(sf, "SoundFile", lambda *a, **k: opened.append(a[0]) or real_open(*a, **k))
    files = len(os.listdir("/proc/self/fd"))
    for _ in range(3):
        for name in ("short.wav", "long.flac"):
            assert len(load_audio(tmp_path / name)) > 0
            speech.audio.open_audio(tmp_path / name).close()
        with pytest.raises(AudioError, match="unsupported sample rate 500"):
            speech.audio.open_audio(tmp_path / "slow.wav")
    assert len(opened) == 3 * 5
    assert len(os.listdir("/proc/self/fd")) == files


def _tone_mp3(path, sample_rate: int, seconds: float = 5.0) -> np.ndarray:
    """A 440 Hz tone written to ``path`` as MP3 (libsndfile's encoder, else ffmpeg's; skip if neither), and the
    file's frames from one libsndfile read: the reference, which matched ffmpeg's decode to 2e-6."""
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    tone = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    if "MP3" in sf.available_formats():
        sf.write(path, tone, sample_rate, format="MP3", subtype="MPEG_LAYER_III")
    elif shutil.which("ffmpeg") is not None:
        sf.write(path.with_suffix(".wav"), tone, sample_rate, subtype="FLOAT")
        _ffmpeg("-i", str(path.with_suffix(".wav")), "-c:a", "libmp3lame", str(path))
    else:
        pytest.skip("neither libsndfile nor ffmpeg here can write MP3")
    return sf.read(path, dtype="float32")[0]


def _read_every_way(path, sample_rate: int) -> list[np.ndarray]:
    """``path``'s samples from read_audio and from iter_audio_blocks (1 s blocks, at the file's own rate)."""
    from speech.audio import read_audio

    blocks = [block for _, block in iter_audio_blocks(path, block_seconds=1.0, sample_rate=sample_rate)]
    return [read_audio(path)[0], np.concatenate(blocks)]


@pytest.mark.parametrize("rate", [22050, 8000, 16000, 44100])
def test_a_short_mp3_decodes_as_one_libsndfile_read_does(tmp_path, rate):
    # libsndfile's MP3 samples went wrong from its second read on (soundfile re-seeks the decoder before each): a
    # 22.05 kHz tone read in 0.25 s pieces was off by up to 0.6 from the first piece's end.
    reference = _tone_mp3(tmp_path / "a.mp3", rate)
    for got in _read_every_way(tmp_path / "a.mp3", rate):
        assert len(got) == len(reference)
        np.testing.assert_allclose(got, reference, atol=1e-4)


@needs_ffmpeg
def test_a_long_mp3_streams_through_ffmpeg_and_decodes_right(tmp_path, monkeypatch):
    # Past WHOLE_READ_BYTES an MP3 cannot be read in one call, nor in libsndfile's pieces: ffmpeg streams it.
    import speech.audio

    monkeypatch.setattr(speech.audio, "WHOLE_READ_BYTES", 22050 * 4)  # 1 s of 22.05 kHz mono float32
    reference = _tone_mp3(tmp_path / "a.mp3", 22050)
    with speech.audio.open_audio(tmp_path / "a.mp3") as stream:
        assert len(list(stream)) > 1  # streamed, memory bounded
    for got in _read_every_way(tmp_path / "a.mp3", 22050):
        assert len(got) == len(reference)
        np.testing.assert_allclose(got, reference, atol=1e-4)
    # ffmpeg reads a cut MP3 without a word; its frame count still says it was cut.
    whole = (tmp_path / "a.mp3").read_bytes()
    (tmp_path / "cut.mp3").write_bytes(whole[:len(whole) // 2])
    notes: list[str] = []
    got = speech.audio.read_audio(tmp_path / "cut.mp3", notes)[0]
    assert 0.3 * len(reference) < len(got) < 0.7 * len(reference)
    np.testing.assert_allclose(got[:len(got) // 2], reference[:len(got) // 2], atol=1e-4)
    assert len(notes) == 1 and notes[0].startswith("truncated file: its header promises 5.00 s"), notes


def test_without_ffmpeg_a_long_mp3_is_refused_not_decoded_wrong(tmp_path, monkeypatch):
    import speech.audio

    reference = _tone_mp3(tmp_path / "a.mp3", 22050)
    monkeypatch.setenv("PATH", str(tmp_path))
    np.testing.assert_allclose(speech.audio.read_audio(tmp_path / "a.mp3")[0], reference, atol=1e-4)
    monkeypatch.setattr(speech.audio, "WHOLE_READ_BYTES", 22050 * 4)
    for read in (load_audio, lambda p: list(iter_audio_blocks(p, block_seconds=1.0))):
        with pytest.raises(AudioError, match=r"an MP3 this long \(0\.1 min\) needs ffmpeg on PATH"):
            read(tmp_path / "a.mp3")
