import pytest
import soundfile as sf

from speech.corpora import prepare
from speech.errors import SpeechError
from tests.conftest import tone_speech


def _wav(path, text="ab"):
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, tone_speech(text), 16000, format="FLAC" if path.suffix == ".flac" else "WAV")


def test_deepspeech_csv(tmp_path):
    _wav(tmp_path / "clips" / "a.wav")
    (tmp_path / "clips" / "bad.wav").write_bytes(b"junk" * 10)
    (tmp_path / "train.csv").write_text("wav_filename,wav_filesize,transcript\n"
                                        "clips/a.wav,100,hello there\nclips/bad.wav,10,broken\n"
                                        "clips/missing.wav,10,gone\nclips/a.wav,100,\n")
    utts, failures = prepare("deepspeech", tmp_path / "train.csv")
    assert [u.text for u in utts] == ["hello there"] and utts[0].duration > 0.2
    reasons = sorted(f.reason for f in failures)
    assert len(reasons) == 3 and any("not found" in r for r in reasons) and "empty transcript" in reasons


def test_librispeech_tree(tmp_path):
    chapter = tmp_path / "LibriSpeech" / "dev-clean" / "84" / "121123"
    for i in range(2):
        _wav(chapter / f"84-121123-000{i}.flac")
    (chapter / "84-121123.trans.txt").write_text("84-121123-0000 GO DO YOU HEAR\n84-121123-0001 BUT IN LESS\n")
    utts, failures = prepare("librispeech", tmp_path / "LibriSpeech")
    assert [u.text for u in utts] == ["GO DO YOU HEAR", "BUT IN LESS"] and not failures


def test_ljspeech_prefers_normalized_column(tmp_path):
    _wav(tmp_path / "wavs" / "LJ001-0001.wav")
    (tmp_path / "metadata.csv").write_text("LJ001-0001|Printing, in 1455.|Printing, in fourteen fifty-five.\n")
    utts, _ = prepare("ljspeech", tmp_path)
    assert utts[0].text == "Printing, in fourteen fifty-five."


def test_commonvoice_tsv(tmp_path):
    _wav(tmp_path / "clips" / "x.wav")
    (tmp_path / "train.tsv").write_text('client_id\tpath\tsentence\tup_votes\nc1\tx.wav\t"Quoted" words\t2\n')
    utts, failures = prepare("commonvoice", tmp_path)
    assert utts[0].text == '"Quoted" words' and not failures


def test_folder_layout_reports_missing_and_non_utf8_transcripts(tmp_path):
    _wav(tmp_path / "a" / "one.wav")
    (tmp_path / "a" / "one.txt").write_text("first clip")
    _wav(tmp_path / "a" / "two.wav")
    _wav(tmp_path / "b" / "three.flac")
    (tmp_path / "b" / "three.txt").write_bytes(b"\xff\xfe bad bytes \x80")
    (tmp_path / "b" / "four.wav").symlink_to(tmp_path / "deleted.wav")
    (tmp_path / "b" / "four.txt").write_text("a dangling link")
    utts, failures = prepare("folder", tmp_path)
    assert [u.text for u in utts] == ["first clip"]
    assert sorted(f.reason.split(" ")[0] for f in failures) == ["file", "no", "transcript"]


def test_unknown_layout_and_missing_source(tmp_path):
    with pytest.raises(SpeechError, match="unknown corpus layout"):
        prepare("timit", tmp_path)
    with pytest.raises(SpeechError, match="not found"):
        prepare("folder", tmp_path / "nope")


def test_a_csv_with_windows_line_ends_naming_a_folder_reports_the_folder(tmp_path):
    _wav(tmp_path / "clips" / "a.wav")
    (tmp_path / "train.csv").write_bytes(b"\xef\xbb\xbfwav_filename,wav_filesize,transcript\r\n"
                                         b"clips/a.wav,100,hello\r\nclips,1,a folder\r\n")
    utts, failures = prepare("deepspeech", tmp_path / "train.csv")
    assert [u.text for u in utts] == ["hello"]
    assert [(f.path, f.reason) for f in failures] == [(str(tmp_path / "clips"), "is a folder, not an audio file")]


@pytest.mark.parametrize("layout, make", [
    ("deepspeech", lambda root: (root / "train.csv").write_bytes(b"")),  # a zero-byte CSV
    ("folder", lambda root: (root / "notes.txt").write_text("no audio here")),
    ("librispeech", lambda root: _wav(root / "a.flac")),  # audio, but no .trans.txt: not this layout
])
def test_a_source_with_nothing_to_prepare_is_an_error_not_an_empty_manifest(tmp_path, layout, make):
    make(tmp_path)
    src = tmp_path / "train.csv" if layout == "deepspeech" else tmp_path
    with pytest.raises(SpeechError, match=f"no utterance found: is it a {layout} corpus"):
        prepare(layout, src)
