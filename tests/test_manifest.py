import json
import os

import pytest

from speech.errors import ManifestError
from speech.manifest import Utterance, atomic_write, read_manifest, write_manifest


def test_round_trip_resolves_relative_paths_and_keeps_extra_keys(tmp_path):
    (tmp_path / "audio").mkdir()
    utts = [Utterance(str(tmp_path / "audio" / "a.wav"), 1.5, "hello", {"speaker": "s1"})]
    write_manifest(tmp_path / "m.jsonl", utts, relative_to=tmp_path)
    line = json.loads((tmp_path / "m.jsonl").read_text())
    assert line["audio_filepath"] == os.path.join("audio", "a.wav") and line["speaker"] == "s1"
    back = read_manifest(tmp_path / "m.jsonl")
    assert back[0].audio_filepath == str(tmp_path / "audio" / "a.wav")
    assert back[0].extra == {"speaker": "s1"} and back[0].duration == 1.5


def test_bad_line_names_the_line(tmp_path):
    (tmp_path / "m.jsonl").write_text('{"audio_filepath": "a.wav", "text": "x"}\n{not json\n')
    with pytest.raises(ManifestError, match="line 2"):
        read_manifest(tmp_path / "m.jsonl")
    with pytest.raises(ManifestError, match="not found"):
        read_manifest(tmp_path / "missing.jsonl")


def test_atomic_write_leaves_old_file_on_failure(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_write(target) as f:
        f.write("partial")
        raise RuntimeError("killed")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]  # no temp file left behind


def test_stale_temp_files_are_swept(tmp_path):
    from speech.manifest import remove_stale_temp_files

    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / ".a.txt.abc123.speech-partial").write_text("partial")
    (tmp_path / "a.txt").write_text("whole")
    (tmp_path / ".users-own.tmp").write_text("not ours")
    assert remove_stale_temp_files(tmp_path) == 1
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == [".users-own.tmp", "a.txt"]


def test_atomic_write_gives_ordinary_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        with atomic_write(tmp_path / "out.txt") as f:
            f.write("x")
    finally:
        os.umask(old)
    assert (tmp_path / "out.txt").stat().st_mode & 0o777 == 0o644


@pytest.mark.parametrize("value", [None, "", 3, ["a.wav"]])
def test_a_record_whose_audio_path_is_not_a_path_is_a_bad_line(tmp_path, value):
    path = tmp_path / "m.jsonl"
    path.write_text(json.dumps({"audio_filepath": value, "duration": 1.0, "text": "x"}) + "\n"
                    + json.dumps({"audio_filepath": "b.wav", "duration": 1.0, "text": "y"}) + "\n")
    with pytest.raises(ManifestError, match="audio_filepath must be a file path"):
        read_manifest(path)
    from speech.manifest import iter_manifest

    bad: list = []
    assert [u.text for u in iter_manifest(path, bad_lines=bad)] == ["y"]
    assert bad[0][0].endswith("m.jsonl:1") and "audio_filepath" in bad[0][1]


def test_atomic_write_takes_a_name_as_long_as_the_file_system_allows(tmp_path):
    name = "é" * 100 + "x" * 35 + ".txt"  # 239 bytes: legal, but not with a temp prefix and suffix around it
    assert len(name.encode()) == 239
    with atomic_write(tmp_path / name) as f:
        f.write("ok")
    assert (tmp_path / name).read_text() == "ok" and len(os.listdir(tmp_path)) == 1


@pytest.mark.parametrize("line, reason", [
    ('["a.wav", 1.0, "x"]', "a JSON list, not an object"),
    ('"a.wav"', "a JSON str, not an object"),
    ('{"audio_filepath": "a.wav", "duration": "long"}', "duration must be a number"),
    ('{"audio_filepath": "a.wav", "duration": {"s": 1}}', "duration must be a number"),
    ('{"audio_filepath": "a.wav", "duration": []}', "duration must be a number"),
    ('{"audio_filepath": "a.wav", "duration": true}', "duration must be a number"),
    ('{"audio_filepath": "a.wav", "duration": NaN}', "duration must be a finite number"),
    ('{"audio_filepath": "a.wav", "duration": -1}', "duration must be a finite number"),
    ('{"audio_filepath": "a.wav", "text": {"a": 1}}', "text must be a string"),
    ('{"audio_filepath": "a.wav", "text": 12}', "text must be a string"),
])
def test_a_line_that_is_not_a_record_is_named_and_the_others_are_read(tmp_path, line, reason):
    from speech.manifest import iter_manifest

    path = tmp_path / "m.jsonl"
    path.write_text(line + "\n" + json.dumps({"audio_filepath": "b.wav", "duration": "1.5", "text": None}) + "\n")
    with pytest.raises(ManifestError, match=f"line 1 .*{reason}"):
        read_manifest(path)
    bad: list = []
    assert [(u.duration, u.text) for u in iter_manifest(path, bad_lines=bad)] == [(1.5, "")]
    assert bad == [(f"{path}:1", bad[0][1])] and reason in bad[0][1]


def test_bytes_that_are_not_utf8_cost_their_line_only(tmp_path):
    from speech.manifest import iter_manifest

    good = json.dumps({"audio_filepath": "a.wav", "duration": 1.0, "text": "café"}).encode()
    path = tmp_path / "m.jsonl"
    # A BOM and CRLF line ends (Windows editors), and one line in Latin-1 among UTF-8 ones.
    path.write_bytes(b"\xef\xbb\xbf" + good + b"\r\n" + b'{"audio_filepath": "caf\xe9.wav"}\r\n' + good + b"\r\n")
    bad: list = []
    assert [u.text for u in iter_manifest(path, bad_lines=bad)] == ["café", "café"]
    assert bad == [(f"{path}:2", "not a manifest record (not UTF-8 text)")]


def test_file_names_that_are_not_utf8_or_hold_a_newline_round_trip(tmp_path):
    # Corpora from old tools name files in Latin-1; such a name must not stop the writer (a stack trace before).
    names = [os.fsdecode(b"caf\xe9.wav"), "new\nline.wav", "ok.wav"]
    write_manifest(tmp_path / "m.jsonl", [Utterance(str(tmp_path / n), 1.0, "x") for n in names],
                   relative_to=tmp_path)
    (tmp_path / "m.jsonl").read_bytes().decode("utf-8")  # valid UTF-8, one line per record
    assert len((tmp_path / "m.jsonl").read_text().splitlines()) == 3
    assert [u.audio_filepath for u in read_manifest(tmp_path / "m.jsonl")] == [str(tmp_path / n) for n in names]
