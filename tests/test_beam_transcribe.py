"""pipelines/beam_transcribe.py on the DirectRunner: the same records as ``python -m speech transcribe``."""

from __future__ import annotations

import glob
import json
from pathlib import Path

import pytest
import soundfile as sf

from tests.conftest import SR, tone_speech

pytest.importorskip("apache_beam", reason="apache-beam is not installed (pip install -r requirements-beam.txt)")

from speech.pipelines.beam_transcribe import SegmentResult, main, merge_file

CLIPS = {"a.wav": "yes", "b.wav": "left right", "c.wav": "three four", "d.flac": "go"}
# Longer than the segment limit (speech.transcribe.MAX_SEGMENT_SECONDS): cut at quiet points and merged, as the
# CLI does.
LONG_TEXT = " ".join(["one two three four"] * 24)


def _read(pattern: str) -> list[dict]:
    return [json.loads(line) for path in sorted(glob.glob(pattern)) for line in Path(path).read_text().splitlines()]


@pytest.fixture(scope="module")
def beam_run(tiny_model, tmp_path_factory) -> dict:
    """Export the tiny model, write the clips plus a corrupt file, run the pipeline once."""
    from speech.pipelines.export import main as export_main

    model_dir, _ = tiny_model
    root = tmp_path_factory.mktemp("beam")
    base = root / "export"
    assert export_main(["--model", str(model_dir), "--output", str(base)]) == 0
    audio = root / "audio"
    audio.mkdir()
    for i, (name, text) in enumerate(CLIPS.items()):
        sf.write(audio / name, tone_speech(text, seed=i), SR)
    sf.write(audio / "long.wav", tone_speech(LONG_TEXT, seed=9), SR)
    first = (audio / next(iter(CLIPS))).read_bytes()
    (audio / "cut.wav").write_bytes(first[:len(first) - 2000])  # a WAV cut short: transcribed, with a warning
    sf.write(root / "long.flac", tone_speech(LONG_TEXT, seed=9), SR)  # so is a FLAC cut in half
    whole = (root / "long.flac").read_bytes()
    (audio / "cut.flac").write_bytes(whole[:len(whole) // 2])
    (audio / "broken.wav").write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt garbage, not audio")
    output = root / "out" / "transcripts"
    assert main(["--input", str(audio / "*"), "--model", str(base), "--output", str(output),
                 "--runner", "DirectRunner"]) == 0
    return {"model_dir": model_dir, "audio": audio, "transcripts": _read(f"{output}-*.jsonl"),
            "failures": _read(f"{output}.failures-*.jsonl")}


@pytest.mark.slow  # the end-to-end Beam run (export + pipeline) takes about 2 minutes
def test_good_files_are_transcribed_and_the_corrupt_one_fails(beam_run) -> None:
    audio = beam_run["audio"]
    assert sorted(r["audio_filepath"] for r in beam_run["transcripts"]) == sorted(
        str(audio / name) for name in [*CLIPS, "long.wav", "cut.wav", "cut.flac"])
    warned = {r["audio_filepath"]: r["warning"] for r in beam_run["transcripts"] if "warning" in r}
    assert sorted(warned) == [str(audio / "cut.flac"), str(audio / "cut.wav")]
    assert all("truncated" in warning for warning in warned.values()), warned
    [failure] = beam_run["failures"]
    assert failure["audio_filepath"] == str(audio / "broken.wav")
    assert "cannot decode" in failure["error"]


@pytest.mark.slow  # the end-to-end Beam run (export + pipeline) takes about 2 minutes
def test_records_equal_the_cli_output(beam_run, capsys) -> None:
    from speech.pipelines.transcribe import main as transcribe_main

    paths = sorted(r["audio_filepath"] for r in beam_run["transcripts"])
    capsys.readouterr()
    assert transcribe_main([*paths, "--model", str(beam_run["model_dir"]), "--no-progress", "--jobs", "1"]) == 0
    expected = {r["audio_filepath"]: r for r in map(json.loads, capsys.readouterr().out.splitlines())}
    served = {r["audio_filepath"]: r for r in beam_run["transcripts"]}
    assert served.keys() == expected.keys()
    assert any(len(r["words"]) > 10 for r in served.values())  # the long clip really went through two segments
    for path, want in expected.items():
        got = served[path]
        assert list(got) == list(want)
        assert (got["text"], got["duration"]) == (want["text"], want["duration"]), path
        assert [(w["word"], w["start"], w["end"]) for w in got["words"]] == [
            (w["word"], w["start"], w["end"]) for w in want["words"]], path
        # The SavedModel's MFCC twin differs from librosa by ~1e-5: a 4th decimal may round the other way.
        assert got["confidence"] == pytest.approx(want["confidence"], abs=2e-4)
        for g, w in zip(got["words"], want["words"]):
            assert g["confidence"] == pytest.approx(w["confidence"], abs=2e-4)


@pytest.mark.slow  # the end-to-end Beam run (export + pipeline) takes about 2 minutes
def test_a_model_that_ships_an_lm_decodes_with_it_as_the_cli_does(beam_run, tmp_path, capsys) -> None:
    import shutil

    from speech.ngram import load_ngram_lm
    from speech.pipelines.export import main as export_main
    from speech.pipelines.transcribe import main as transcribe_main
    from tests.conftest import write_arpa

    model_dir = tmp_path / "model"
    shutil.copytree(beam_run["model_dir"], model_dir, ignore=shutil.ignore_patterns("checkpoints", "logs"))
    arpa = write_arpa([*CLIPS.values(), LONG_TEXT, "go left", "yes three"], tmp_path / "lm.arpa", order=2)
    load_ngram_lm(arpa).save(model_dir / "lm.npz")
    config = json.loads((model_dir / "config.json").read_text())
    # With the decoding search: both paths decode under each variant and keep the same best-scoring one.
    config["decoder"] = {"alpha": 0.5, "beta": 1.0, "beam_width": 8, "hop_lengths": [144, 160, 176],
                         "fmaxes": [None, 7000], "letter_bonus": 0.5}
    (model_dir / "config.json").write_text(json.dumps(config))
    assert export_main(["--model", str(model_dir), "--output", str(tmp_path / "export")]) == 0
    extra = tmp_path / "export" / "1" / "assets.extra"
    assert {"config.json", "lm.npz"} <= {f.name for f in extra.iterdir()}
    paths = sorted(str(beam_run["audio"] / name) for name in [*CLIPS, "long.wav", "cut.wav", "cut.flac"])
    output = tmp_path / "out" / "t"
    assert main(["--input", str(beam_run["audio"] / "*"), "--model", str(tmp_path / "export"), "--output",
                 str(output), "--runner", "DirectRunner"]) == 0
    served = {r["audio_filepath"]: r for r in _read(f"{output}-*.jsonl")}
    capsys.readouterr()
    assert transcribe_main([*paths, "--model", str(model_dir), "--no-progress", "--jobs", "1"]) == 0
    expected = {r["audio_filepath"]: r for r in map(json.loads, capsys.readouterr().out.splitlines())}
    assert served.keys() == expected.keys()
    for path, want in expected.items():
        assert served[path]["text"] == want["text"], path
        assert [(w["word"], w["start"], w["end"]) for w in served[path]["words"]] == [
            (w["word"], w["start"], w["end"]) for w in want["words"]], path
    # A bad segment in a bundle becomes an error record; the rest of the bundle is still transcribed.
    import numpy as np

    from speech.pipelines.beam_transcribe import SavedModelHandler, Segment

    handler = SavedModelHandler(str(tmp_path / "export"))
    loaded = handler.load_model()
    decoding = loaded.decoding  # the CLI's decoding path (speech.transcribe.Decoding), as the model ships it
    assert type(decoding.decoder).__name__ == "BeamSearchDecoder" and decoding.options.letter_bonus == 0.5
    assert [(v.hop_length, v.fmax) for v in decoding.variants] == [(160, None), (144, None), (176, None), (160, 7000.0),
                                                                 (144, 7000.0), (176, 7000.0)]
    nan = np.full(SR, np.nan, np.float32)
    good = tone_speech("yes", seed=0)
    bad_out, good_out = [r.inference for r in handler.run_inference(
        [Segment("n.wav", 0, 1, 0.0, SR, nan), Segment("g.wav", 0, 1, 0.0, len(good), good)], loaded)]
    assert bad_out.error == "audio contains NaN or infinite samples" and not good_out.error and good_out.text
    assert SavedModelHandler(str(tmp_path / "export"), beam_width=1).load_model().decoding is None


def _local_file(path: Path):
    from apache_beam.io import fileio
    from apache_beam.io.filesystem import FileMetadata

    return fileio.ReadableFile(FileMetadata(str(path), 0))


def test_segments_follow_the_cli_rule(tmp_path) -> None:
    from speech.pipelines.beam_transcribe import DecodeAudio
    from speech.transcribe import iter_segments

    wave = tone_speech(LONG_TEXT, seed=9)
    sf.write(tmp_path / "long.wav", wave, SR, subtype="FLOAT")
    pieces = list(DecodeAudio(SR, 10.0).process(_local_file(tmp_path / "long.wav")))
    expected = list(iter_segments(str(tmp_path / "long.wav"), SR, 10.0, 10.0 / 3))
    assert len(pieces) > 2 and sum(len(p.wave) for p in pieces) == len(wave)
    assert [(p.offset, len(p.wave)) for p in pieces] == [(offset, len(w)) for offset, w in expected]
    # The whole file's count and length ride on the last segment, the one that knows them.
    assert [(p.count, p.num_samples) for p in pieces] == [(0, 0)] * (len(pieces) - 1) + [(len(pieces), len(wave))]


def test_a_long_recording_streams_through_the_decoder(tmp_path, monkeypatch) -> None:
    # Memory must not grow with a recording's length (issue 38, #3): the first segment goes on before the file is
    # read to its end.
    import speech.audio
    from speech.pipelines.beam_transcribe import DecodeAudio

    wave = tone_speech(LONG_TEXT, seed=9)
    sf.write(tmp_path / "long.wav", wave, SR)
    real, read = speech.audio.iter_audio_blocks, []

    def counted(*args, **kwargs):
        for item in real(*args, **kwargs):
            read.append(len(item[1]))
            yield item

    monkeypatch.setattr(speech.audio, "iter_audio_blocks", counted)
    first = next(iter(DecodeAudio(SR, 8.0).process(_local_file(tmp_path / "long.wav"))))
    assert first.index == 0 and 0 < sum(read) < len(wave) / 2


def test_a_stream_that_breaks_off_is_one_failure_not_two() -> None:
    # Segments read before a decode error reach the model; the failure is DecodeAudio's, and the merge adds none.
    early = SegmentResult("x.wav", 0, 0, 0.0, 0, "yes", 0.9, [], "")
    assert list(merge_file(("x.wav", [early]), 16000)) == []
    lost = SegmentResult("x.wav", 2, 3, 16.0, 3 * 16000, "no", 0.9, [], "")
    [out] = list(merge_file(("x.wav", [early, lost]), 16000))
    assert out.value == {"audio_filepath": "x.wav", "error": "2 of 3 segments transcribed"}


def test_model_errors_become_failures() -> None:
    bad = SegmentResult("x.wav", 0, 1, 0.0, 16000, "", 0.0, [], "audio contains NaN or infinite samples")
    [out] = list(merge_file(("x.wav", [bad]), 16000))
    assert out.tag == "failures"
    assert out.value == {"audio_filepath": "x.wav", "error": "audio contains NaN or infinite samples"}


class _RemoteFile:
    """A ReadableFile stand-in for a path that is not local (gs://...): only ``metadata.path`` and ``open``."""

    def __init__(self, path: str, data: bytes):
        import io
        from types import SimpleNamespace

        self.metadata = SimpleNamespace(path=path)
        self._open = lambda: io.BytesIO(data)

    def open(self, compression_type=None):
        return self._open()


def test_remote_files_are_decoded_through_a_local_copy(tmp_path) -> None:
    from speech.pipelines.beam_transcribe import DecodeAudio
    from speech.transcribe import MAX_SEGMENT_SECONDS

    wave = tone_speech("go", seed=3)
    sf.write(tmp_path / "go.flac", wave, SR)
    decode = DecodeAudio(SR, MAX_SEGMENT_SECONDS)
    [segment] = decode.process(_RemoteFile("gs://bucket/go.flac", (tmp_path / "go.flac").read_bytes()))
    assert segment.path == "gs://bucket/go.flac" and segment.num_samples == len(wave)
    assert abs(segment.wave - wave).max() < 1e-4  # 16-bit FLAC
    [failure] = decode.process(_RemoteFile("gs://bucket/bad.wav", b"RIFF\x24\x00\x00\x00WAVEfmt garbage"))
    assert failure.value["audio_filepath"] == "gs://bucket/bad.wav"
    # The reason never names the local temp copy (decoders' messages may quote the path they were given).
    assert "cannot decode audio" in failure.value["error"] and "/tmp" not in failure.value["error"]


def test_a_local_file_that_is_gone_or_a_folder_fails_with_its_reason(tmp_path) -> None:
    from speech.pipelines.beam_transcribe import DecodeAudio
    from speech.transcribe import MAX_SEGMENT_SECONDS

    (tmp_path / "folder.wav").mkdir()  # ** matches folders too; a file can also vanish between match and read
    decode = DecodeAudio(SR, MAX_SEGMENT_SECONDS)
    for name, reason in [("gone.wav", "file not found"), ("folder.wav", "is a folder, not an audio file")]:
        [failure] = decode.process(_local_file(tmp_path / name))
        assert failure.value == {"audio_filepath": str(tmp_path / name), "error": reason}


def test_a_pattern_that_matches_nothing_is_one_line_not_an_empty_output(tmp_path, capsys) -> None:
    output = tmp_path / "out" / "transcripts"
    assert main(["--input", str(tmp_path / "*.wav"), "--model", str(tmp_path), "--output", str(output)]) == 2
    assert capsys.readouterr().err.strip() == f"error: --input {tmp_path / '*.wav'}: matched no file"
    assert not (tmp_path / "out").exists()
    (tmp_path / "empty").mkdir()  # a folder is read as every file below it: here none
    assert main(["--input", str(tmp_path / "empty"), "--model", str(tmp_path), "--output", str(output)]) == 2
    assert capsys.readouterr().err.strip().endswith(f"error: --input {tmp_path / 'empty' / '**'}: matched no file")


def test_a_local_folder_as_input_means_every_file_below_it(tmp_path) -> None:
    from speech.pipelines.beam_transcribe import input_pattern

    (tmp_path / "talks" / "day1").mkdir(parents=True)
    assert input_pattern(str(tmp_path / "talks")) == str(tmp_path / "talks" / "**")
    for pattern in (str(tmp_path / "talks" / "*.wav"), "gs://bucket/talks/*.wav"):
        assert input_pattern(pattern) == pattern  # patterns and remote paths are Beam's to match


def test_a_file_name_that_is_not_utf8_gives_a_utf8_line() -> None:
    import os

    from speech.pipelines.beam_transcribe import to_json_line

    name = os.fsdecode(b"/audio/caf\xe9.wav")
    line = to_json_line({"audio_filepath": name, "error": "x"})
    assert json.loads(line.encode("utf-8"))["audio_filepath"] == name  # WriteToText writes UTF-8
