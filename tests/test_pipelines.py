"""End-to-end: the CLI jobs composed the way a user runs them."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from speech.cli import VERBS
from speech.cli import main as cli_main
from tests.conftest import SR, TINY_EPOCHS, tone_speech, write_corpus

ROOT = Path(__file__).resolve().parent.parent


def _json_stdout(capsys) -> dict:
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_prepare_then_evaluate_the_trained_tiny_model(tiny_model, tmp_path, capsys):
    model_dir, manifest = tiny_model
    # The training clips laid out as a "folder" corpus, prepared into a new manifest.
    corpus = tmp_path / "folder"
    for i, line in enumerate(manifest.read_text().splitlines()):
        record = json.loads(line)
        shutil.copy(manifest.parent / record["audio_filepath"], corpus / f"{i}.wav" if corpus.exists()
                    else (corpus.mkdir() or corpus / f"{i}.wav"))
        (corpus / f"{i}.txt").write_text(record["text"].upper() + ".")
    assert cli_main(["prepare", "folder", str(corpus), str(tmp_path / "m.jsonl")]) == 0
    # a clip without speech is scored apart: the words said over it, not a WER
    sf.write(tmp_path / "hum.wav", 0.3 * np.sin(2 * np.pi * 50 * np.arange(16000) / 16000), 16000)
    with open(tmp_path / "m.jsonl", "a") as f:
        f.write(json.dumps({"audio_filepath": str(tmp_path / "hum.wav"), "duration": 1.0, "text": "",
                            "non_speech": True}) + "\n")
    assert cli_main(["evaluate", "--model", str(model_dir), "--manifest", str(tmp_path / "m.jsonl"),
                     "--report", str(tmp_path / "report.jsonl")]) == 0
    metrics = _json_stdout(capsys)
    assert metrics["utterances"] == 12 and metrics["failed"] == 0
    assert metrics["cer"] < 0.1, metrics
    report = [json.loads(line) for line in (tmp_path / "report.jsonl").read_text().splitlines()]
    assert len(report) == 13 and {"reference", "hypothesis", "wer", "cer"} <= set(report[0])
    hum = [r for r in report if r.get("non_speech")]
    assert len(hum) == 1 and hum[0]["reference"] == "" and hum[0]["word_errors"] == len(hum[0]["hypothesis"].split())
    assert metrics["non_speech"] == {"clips": 1, "with_words": int(bool(hum[0]["hypothesis"].split())),
                                     "words": hum[0]["word_errors"]}


def test_train_refuses_to_clobber_a_run_and_user_errors_are_one_line(tiny_model, tmp_path, capsys):
    model_dir, manifest = tiny_model
    assert cli_main(["train", "--train", str(manifest), "--output", str(model_dir), "--preset", "tiny"]) == 2
    assert "--resume" in capsys.readouterr().err
    assert cli_main(["evaluate", "--model", str(tmp_path), "--manifest", str(manifest)]) == 2
    assert "not a model folder" in capsys.readouterr().err
    assert cli_main(["train", "--train", str(tmp_path / "none.jsonl"), "--output", str(tmp_path / "o")]) == 2
    assert cli_main(["nonsense"]) == 2


def test_fine_tuning_starts_from_the_given_model_and_keeps_its_architecture(tiny_model, tmp_path, capsys):
    model_dir, manifest = tiny_model
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"train": {"batch_size": 4, "learning_rate": 1e-5, "warmup_steps": 1,
                                            "checkpoint_every_steps": 0}}))
    out = tmp_path / "tuned"
    # One epoch at a tiny learning rate: only a run that really starts from the trained weights is accurate.
    assert cli_main(["train", "--train", str(manifest), "--dev", str(manifest), "--output", str(out),
                     "--init-from", str(model_dir), "--epochs", "1", "--config", str(config), "--no-progress",
                     "--preset", "small"]) == 0
    assert _json_stdout(capsys)["dev_cer"] < 0.1
    assert json.loads((out / "config.json").read_text())["model"] == json.loads(
        (model_dir / "config.json").read_text())["model"]  # the starting model's network, not --preset's
    config.write_text(json.dumps({"model": {"lstm_units": 8, "dropout": 0.1}}))
    assert cli_main(["train", "--train", str(manifest), "--output", str(tmp_path / "x"), "--init-from",
                     str(model_dir), "--config", str(config)]) == 2
    assert "--init-from keeps the starting model's model.lstm_units" in capsys.readouterr().err
    config.write_text(json.dumps({"model": {"dropout": 1.5}}))
    assert cli_main(["train", "--train", str(manifest), "--output", str(tmp_path / "x"), "--init-from",
                     str(model_dir), "--config", str(config)]) == 2
    assert "dropout must be in [0, 1)" in capsys.readouterr().err


def test_fine_tuning_may_change_only_the_dropout(tiny_model, tmp_path, capsys):
    # Dropout owns no weights, so a later stage may train with more or less of it (the tiny model has none:
    # its Dropout layers are new, and every weight still comes from the starting model).
    model_dir, manifest = tiny_model
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"model": {"dropout": 0.3},
                                  "train": {"batch_size": 4, "learning_rate": 1e-5, "warmup_steps": 1,
                                            "checkpoint_every_steps": 0}}))
    out = tmp_path / "tuned"
    assert cli_main(["train", "--train", str(manifest), "--dev", str(manifest), "--output", str(out),
                     "--init-from", str(model_dir), "--epochs", "1", "--config", str(config), "--no-progress"]) == 0
    assert _json_stdout(capsys)["dev_cer"] < 0.1
    saved, start = (json.loads((d / "config.json").read_text())["model"] for d in (out, model_dir))
    assert saved == {**start, "dropout": 0.3}


def test_transcribe_to_stdout_and_exit_code(tiny_model, tmp_path, capsys):
    model_dir, manifest = tiny_model
    (tmp_path / "bad.wav").write_bytes(b"not audio" * 50)
    sf.write(tmp_path / "whole.wav", tone_speech("go"), 16000, subtype="PCM_16")
    (tmp_path / "cut.wav").write_bytes((tmp_path / "whole.wav").read_bytes()[:-4000])
    rc = cli_main(["transcribe", "--model", str(model_dir), str(manifest), str(tmp_path / "bad.wav"),
                   str(tmp_path / "cut.wav"), "--no-progress"])
    captured = capsys.readouterr()
    records = [json.loads(line) for line in captured.out.splitlines()]
    assert rc == 1 and len(records) == 14  # one object per input, the failed one too
    assert {"audio_filepath", "duration", "text", "words"} <= set(records[0])
    failed = [r for r in records if "error" in r]
    assert [r["audio_filepath"] for r in failed] == [str(tmp_path / "bad.wav")]
    assert "cannot decode audio" in failed[0]["error"]
    assert "1 failed" in captured.err and "failed: " + str(tmp_path / "bad.wav") in captured.err
    assert "1 with a warning" in captured.err and "warning: " + str(tmp_path / "cut.wav") in captured.err


def test_transcribe_to_stdout_reports_every_failure(tiny_model, tmp_path, capsys):
    # Without --output-dir there is no failures.jsonl: stderr is the only report, so it names every bad file.
    model_dir, _ = tiny_model
    sf.write(tmp_path / "good.wav", tone_speech("go"), 16000)
    for i in range(25):
        (tmp_path / f"bad_{i:02d}.wav").write_bytes(b"not audio" * 50)
    assert cli_main(["transcribe", "--model", str(model_dir), str(tmp_path), "--no-progress"]) == 1
    captured = capsys.readouterr()
    records = [json.loads(line) for line in captured.out.splitlines()]
    assert len(records) == 26 and sum("error" in r for r in records) == 25
    assert all(f"bad_{i:02d}.wav" in captured.err for i in range(25)) and "more" not in captured.err


def test_transcribe_resume_without_output_dir_is_refused(tmp_path, capsys):
    # --resume skips inputs whose output files exist; on stdout it could only silently redo everything.
    sf.write(tmp_path / "a.wav", tone_speech("go"), 16000)
    assert cli_main(["transcribe", str(tmp_path / "a.wav"), "--resume", "--no-progress"]) == 2
    assert "--resume needs --output-dir" in capsys.readouterr().err


def _write_tone_files(src: Path, files: list[tuple[str, str]]) -> Path:
    """``src`` with each ``(relative path, text)`` written as tone speech (folders made as needed)."""
    for rel, text in files:
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        sf.write(src / rel, tone_speech(text), 16000)
    return src


def test_transcribe_output_dir_formats_mirror_the_tree_and_resume(tiny_model, tmp_path, capsys):
    model_dir, _ = tiny_model
    src = _write_tone_files(tmp_path / "in", [("a/one.wav", "yes"), ("a/b/two.wav", "left"), ("three.flac", "stop")])
    (src / "a" / "broken.wav").write_bytes(b"RIFF....WAVE")
    (src / "a" / "gone.wav").symlink_to(tmp_path / "deleted.wav")  # a dangling link is a failure, not left out
    out = tmp_path / "out"
    args = ["transcribe", "--model", str(model_dir), str(src), "--output-dir", str(out), "--format",
            "txt,jsonl,srt,vtt", "--no-progress"]
    assert cli_main(args) == 1
    for stem in ["a/one", "a/b/two", "three"]:
        for fmt in ["txt", "jsonl", "srt", "vtt"]:
            assert (out / f"{stem}.{fmt}").is_file(), f"{stem}.{fmt}"
    assert (out / "three.vtt").read_text().startswith("WEBVTT")
    failures = [json.loads(line) for line in (out / "failures.jsonl").read_text().splitlines()]
    assert [Path(f["audio_filepath"]).name for f in failures] == ["broken.wav", "gone.wav"]
    assert "not found" in failures[1]["error"]
    mtimes = {p: p.stat().st_mtime_ns for p in out.rglob("*.txt")}
    capsys.readouterr()
    assert cli_main([*args, "--resume"]) == 1  # the broken file is retried, and fails again
    assert "3 already done" in capsys.readouterr().err
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.txt")} == mtimes


def test_transcribe_output_names_never_clash_and_bad_list_entries_fail_alone(tiny_model, tmp_path, capsys):
    model_dir, _ = tiny_model
    src = _write_tone_files(tmp_path / "in", [("a/x.wav", "yes"), ("b/x.wav", "left"), ("failures.wav", "stop")])
    odd = os.fsencode(src) + b"/caf\xe9.wav"  # a name that is not UTF-8
    sf.write(odd, tone_speech("go"), 16000)
    out = tmp_path / "out"
    base = ["transcribe", "--model", str(model_dir), "--format", "txt,jsonl", "--no-progress"]
    # A glob across folders mirrors the tree below its fixed part; the input called failures.wav keeps its own.
    assert cli_main([*base, str(src / "**" / "*.wav"), "--output-dir", str(out)]) == 0
    texts = {p.relative_to(out).as_posix(): p.read_text().strip() for p in out.rglob("*.txt")}
    assert set(texts) == {"a/x.txt", "b/x.txt", "failures.wav.txt", "caf\udce9.txt"}, texts
    assert (out / "failures.jsonl").read_text() == ""
    records = {p.relative_to(out).as_posix(): json.loads(p.read_text()) for p in out.rglob("*.jsonl")
               if p.name != "failures.jsonl"}
    assert {k: Path(r["audio_filepath"]).relative_to(src).as_posix() for k, r in records.items()} == {
        "a/x.jsonl": "a/x.wav", "b/x.jsonl": "b/x.wav", "failures.wav.jsonl": "failures.wav",
        "caf\udce9.jsonl": "caf\udce9.wav"}
    assert all(r["text"] == texts[k.replace(".jsonl", ".txt")] for k, r in records.items())

    # Files of one name outside any common root (a list naming them by absolute path from elsewhere) do not
    # overwrite each other either; a list with a byte-order mark and a manifest with a bad line still run.
    listing = tmp_path / "lists" / "files.txt"
    listing.parent.mkdir()
    listing.write_text("\ufeff" + f"{src / 'a' / 'x.wav'}\n{src / 'b' / 'x.wav'}\n", encoding="utf-8")
    manifest = tmp_path / "lists" / "m.jsonl"
    manifest.write_text(json.dumps({"audio_filepath": str(src / "failures.wav")}) + "\n{not json\n")
    capsys.readouterr()
    assert cli_main([*base, str(listing), str(manifest), "--output-dir", str(tmp_path / "out2")]) == 1
    got = sorted(p.name for p in (tmp_path / "out2").rglob("*.txt"))
    assert len(got) == 3 and len({(tmp_path / "out2" / n).read_text() for n in got if n.startswith("x")}) == 2, got
    failures = [json.loads(line) for line in (tmp_path / "out2" / "failures.jsonl").read_text().splitlines()]
    assert [f["audio_filepath"] for f in failures] == [f"{manifest}:2"]
    assert "3 file(s)" in capsys.readouterr().err


@pytest.mark.slow
def test_kill_9_during_batch_transcription_then_resume_loses_nothing(tiny_model, tmp_path):
    model_dir, _ = tiny_model
    src = tmp_path / "in"
    src.mkdir()
    for i in range(300):
        sf.write(src / f"{i:03d}.wav", tone_speech(["yes", "no", "left"][i % 3], seed=i), 16000)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "speech", "transcribe", "--model", str(model_dir), str(src), "--output-dir",
           str(out), "--format", "txt,jsonl", "--no-progress", "--batch-size", "4", "--jobs", "1"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.time() + 240
    while time.time() < deadline and len(list(out.glob("*.jsonl"))) < 70:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    finished = {p: p.stat().st_mtime_ns for p in out.glob("[0-9]*.jsonl")}
    assert 0 < len(finished) < 300
    assert subprocess.run([*cmd, "--resume"], cwd=ROOT, capture_output=True).returncode == 0
    assert not [p for p in out.rglob("*") if p.name.startswith(".")]  # no temp files left
    outputs = sorted(out.glob("[0-9]*.jsonl"))
    assert len(outputs) == 300 and len(list(out.glob("*.txt"))) == 300
    assert all(p.stat().st_mtime_ns == t for p, t in finished.items())  # nothing done twice
    for p in outputs:
        record = json.loads(p.read_text())
        assert Path(record["audio_filepath"]).stem == p.stem


@pytest.mark.slow
def test_kill_9_during_training_then_resume_gives_the_same_model(tiny_model, tmp_path, capsys):
    model_dir, manifest = tiny_model
    config = model_dir.parent / "tiny.json"
    out = tmp_path / "model"
    cmd = [sys.executable, "-m", "speech", "train", "--train", str(manifest), "--dev", str(manifest), "--output",
           str(out), "--preset", "tiny", "--epochs", str(TINY_EPOCHS), "--config", str(config), "--no-progress",
           "--cache-dir", str(tmp_path / "cache")]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.time() + 300
    while time.time() < deadline:
        history = out / "history.json"
        try:
            if history.exists() and len(json.loads(history.read_text())) >= TINY_EPOCHS // 3:
                break
        except ValueError:
            pass
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done = len(json.loads((out / "history.json").read_text()))
    assert 0 < done < TINY_EPOCHS
    assert subprocess.run([*cmd, "--resume"], cwd=ROOT, capture_output=True).returncode == 0
    history = json.loads((out / "history.json").read_text())
    assert [h["epoch"] for h in history] == list(range(TINY_EPOCHS))
    results = []
    for folder in (model_dir, out):
        assert cli_main(["evaluate", "--model", str(folder), "--manifest", str(manifest)]) == 0
        results.append(_json_stdout(capsys))
    assert results[0]["cer"] == pytest.approx(results[1]["cer"], abs=0.02)
    assert results[1]["cer"] < 0.1


def test_a_brand_new_corpus_with_bad_items_trains_and_reports_them(tmp_path, capsys):
    manifest = write_corpus(tmp_path / "c", ["go", "no"])
    lines = manifest.read_text().splitlines()
    lines.append(json.dumps({"audio_filepath": "missing.wav", "duration": 1.0, "text": "gone"}))
    lines.append(json.dumps({"audio_filepath": json.loads(lines[0])["audio_filepath"], "duration": 1.0,
                             "text": "Ωμέγα"}))
    manifest.write_text("\n".join(lines) + "\n")
    rc = cli_main(["train", "--train", str(manifest), "--output", str(tmp_path / "m"), "--preset", "tiny",
                   "--epochs", "1", "--no-progress", "--cache-dir", str(tmp_path / "cache")])
    captured = capsys.readouterr()
    assert rc == 0
    assert "skipped 2 utterance(s)" in captured.err and "file not found" in captured.err
    assert "outside the vocabulary" in captured.err
    assert json.loads(captured.out.strip().splitlines()[-1])["epochs"] == 1
    assert np.isfinite(json.loads((tmp_path / "m" / "history.json").read_text())[0]["train_loss"])


def _report(path: Path, errors: list[int], words: int = 10, non_speech_words: int = 0) -> str:
    lines = [{"audio_filepath": f"a/{i}.wav", "reference": "x " * words, "hypothesis": "", "word_errors": e,
              "words": words} for i, e in enumerate(errors)]
    lines.append({"audio_filepath": "a/hum.wav", "reference": "", "hypothesis": "", "non_speech": True,
                  "word_errors": non_speech_words, "words": 0})
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return str(path)


def test_compare_reports_says_when_a_model_is_really_better(tmp_path, capsys):
    errors = [3, 4, 2, 5, 3, 4, 3, 2, 4, 3] * 10
    baseline = _report(tmp_path / "a.jsonl", errors, non_speech_words=4)
    better = _report(tmp_path / "b.jsonl", [e - 2 for e in errors])
    assert cli_main(["compare", baseline, better]) == 0
    result = _json_stdout(capsys)
    assert result["verdict"] == "B better" and result["utterances"] == 100 and result["words"] == 1000
    assert result["wer_a"] == pytest.approx(0.33) and result["wer_b"] == pytest.approx(0.13)
    assert result["non_speech_words"] == {"a": 4, "b": 0}
    nearly = _report(tmp_path / "c.jsonl", [*errors[:-1], errors[-1] - 1])
    assert cli_main(["compare", baseline, nearly]) == 0
    assert _json_stdout(capsys)["verdict"] == "no clear difference"
    assert cli_main(["compare", better, baseline]) == 0
    assert _json_stdout(capsys)["verdict"] == "B worse"


def test_compare_refuses_reports_of_different_utterances(tmp_path, capsys):
    a = _report(tmp_path / "a.jsonl", [1, 2, 3])
    b = _report(tmp_path / "b.jsonl", [1, 2])
    assert cli_main(["compare", a, b]) == 2
    assert "not of the same utterances" in capsys.readouterr().err
    (tmp_path / "junk.jsonl").write_text("this is not json\n")
    assert cli_main(["compare", a, str(tmp_path / "junk.jsonl")]) == 2
    assert "not a JSON-lines evaluate report" in capsys.readouterr().err
    assert cli_main(["compare", a, str(tmp_path / "missing.jsonl")]) == 2
    for bad in ("5", "[[1]]", json.dumps({"audio_filepath": "a/0.wav", "reference": "x", "word_errors": None,
                                           "words": 1})):
        (tmp_path / "bad.jsonl").write_text(bad + "\n")
        assert cli_main(["compare", a, str(tmp_path / "bad.jsonl")]) == 2
        assert "not an evaluate report line" in capsys.readouterr().err
    # The same speech rows but the non-speech clip missing from one: not the same utterances.
    speech_only = tmp_path / "speech-only.jsonl"
    speech_only.write_text("".join(line + "\n" for line in Path(a).read_text().splitlines()
                                   if '"non_speech"' not in line))
    assert cli_main(["compare", a, str(speech_only)]) == 2
    assert "not of the same utterances" in capsys.readouterr().err


def test_compare_refuses_a_file_that_failed_in_one_evaluation_only(tmp_path, capsys):
    a = _report(tmp_path / "a.jsonl", [1, 2, 3])
    lines = [json.loads(line) for line in Path(a).read_text().splitlines()]
    lines[1] = {**lines[1], "error": "cannot decode", "word_errors": lines[1]["words"]}
    b = tmp_path / "b.jsonl"
    b.write_text("".join(json.dumps(line) + "\n" for line in lines))
    assert cli_main(["compare", a, str(b)]) == 2
    err = capsys.readouterr().err
    assert "failed in one evaluation only" in err and "a/1.wav" in err
    # Failed in both: compared, and counted.
    assert cli_main(["compare", str(b), str(b)]) == 0
    assert _json_stdout(capsys)["failed"] == 1


def test_inputs_leave_no_file_out_without_a_word(tmp_path, caplog):
    from speech.pipelines.transcribe import expand_inputs

    audio = tmp_path / "audio"
    (audio / "sub").mkdir(parents=True)
    for name in ("a.wav", "b.w64", "c.mkv", "sub/d.rf64", "notes.txt"):
        (audio / name).write_bytes(b"x")
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing\n\n")
    listed = tmp_path / "list.txt"
    listed.write_text("audio/sub\n")
    with caplog.at_level("WARNING"):
        found, missing = expand_inputs([str(audio), str(empty), str(listed)])
    names = sorted(Path(p).name for p, _ in found)
    assert names == ["a.wav", "b.w64", "c.mkv", "d.rf64"]  # the folder in the list is scanned as a folder
    assert missing == [(str(empty), "the list names no file")]
    assert "notes.txt" in caplog.text and "not named like audio" in caplog.text


def _descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(parent, []).append(int(entry))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_a_killed_batch_job_leaves_no_worker_behind(tiny_model, tmp_path, sig):
    model_dir, _ = tiny_model
    src = tmp_path / "in"
    src.mkdir()
    for i in range(64):
        sf.write(src / f"{i:03d}.wav", tone_speech(["yes", "no", "left"][i % 3], seed=i), 16000)
    cmd = [sys.executable, "-m", "speech", "transcribe", "--model", str(model_dir), str(src), "--output-dir",
           str(tmp_path / "out"), "--no-progress", "--jobs", "2"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline, workers = time.time() + 120, set()
    while time.time() < deadline and len(workers) < 3:  # the fork server and its two workers
        time.sleep(0.1)
        workers = _descendants(proc.pid)
    assert len(workers) >= 3, "the job never started its workers"
    proc.send_signal(sig)
    # SIGTERM unwinds the job as Ctrl-C does (speech.cli.run_job), and says so in its exit code, as a shell would.
    assert proc.wait() == (143 if sig == signal.SIGTERM else -signal.SIGKILL)
    deadline = time.time() + 30
    while time.time() < deadline and any(_alive(p) for p in workers):
        time.sleep(0.2)
    assert not [p for p in workers if _alive(p)]


def test_transcribe_conventions_format_all_references_kept_and_format_needs_a_folder(tiny_model, tmp_path, capsys):
    model_dir, _ = tiny_model
    src = _write_tone_files(tmp_path / "in", [("one.wav", "yes"), ("two.wav", "left")])
    base = ["transcribe", "--model", str(model_dir), "--no-progress", "--jobs", "1"]
    # --format all: every format whisper users expect, without listing them.
    assert cli_main([*base, str(src / "one.wav"), "--output-dir", str(tmp_path / "all"), "--format", "all"]) == 0
    assert sorted(p.suffix for p in (tmp_path / "all").glob("one.*")) == [".jsonl", ".srt", ".txt", ".vtt"]
    # A file format with no folder to write it to is a clear error, not JSON on stdout.
    capsys.readouterr()
    assert cli_main([*base, str(src / "one.wav"), "--format", "srt"]) == 2
    assert "--format needs --output-dir" in capsys.readouterr().err
    # A manifest keeps each line's reference "text" and gets the hypothesis as "pred_text" (NeMo's convention);
    # the .txt file holds the hypothesis.
    manifest = tmp_path / "refs.jsonl"
    manifest.write_text("".join(json.dumps({"audio_filepath": f"in/{name}.wav", "duration": 1.0, "text": ref}) + "\n"
                                for name, ref in (("one", "yes"), ("two", "left"))))
    out = tmp_path / "hyp"
    assert cli_main([*base, str(manifest), "--output-dir", str(out)]) == 0
    for name, ref in (("one", "yes"), ("two", "left")):
        record = json.loads((out / "in" / f"{name}.jsonl").read_text())
        assert record["text"] == ref and "pred_text" in record
        assert (out / "in" / f"{name}.txt").read_text() == record["pred_text"] + "\n"
    capsys.readouterr()
    assert cli_main([*base, str(manifest)]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["text"] for r in lines] == ["yes", "left"] and all("pred_text" in r for r in lines)


def test_transcribe_reads_audio_piped_to_stdin(tiny_model, tmp_path):
    model_dir, _ = tiny_model
    src = _write_tone_files(tmp_path / "in", [("one.wav", "yes")])
    cmd = [sys.executable, "-m", "speech", "transcribe", "--model", str(model_dir), "--jobs", "1", "-"]

    def run(stdin_file, *extra):
        with open(stdin_file, "rb") as f:
            return subprocess.run([*cmd, *extra], stdin=f, capture_output=True, text=True, timeout=300, cwd=ROOT)

    piped = run(src / "one.wav")
    assert piped.returncode == 0, piped.stderr
    record = json.loads(piped.stdout)
    assert record["audio_filepath"] == "-" and record["text"] == "yes" and record["duration"] > 0
    written = run(src / "one.wav", "--output-dir", str(tmp_path / "out"))
    assert written.returncode == 0 and (tmp_path / "out" / "stdin.txt").read_text() == "yes\n"
    (tmp_path / "empty").write_bytes(b"")
    empty = run(tmp_path / "empty")
    assert empty.returncode == 1
    assert json.loads(empty.stdout) == {"audio_filepath": "-", "error": "empty file (0 bytes)"}


def test_hotwords_reach_the_beam_search_from_the_cli_and_need_one(tiny_model, tmp_path, capsys, monkeypatch):
    from speech import transcribe

    model_dir, _ = tiny_model
    src = _write_tone_files(tmp_path / "in", [("one.wav", "yes")])
    built = {}
    real = transcribe.make_decoder

    def spy(vocab, frame_duration, options=None, *args):
        built["options"] = options
        return real(vocab, frame_duration, options, *args)

    monkeypatch.setattr(transcribe, "make_decoder", spy)
    base = ["transcribe", "--model", str(model_dir), str(src / "one.wav"), "--no-progress", "--jobs", "1"]
    assert cli_main([*base, "--beam", "4", "--hotwords", "Anna Karenina, R2D2", "--hotword-weight", "5"]) == 0
    options = built["options"]
    assert options.hotwords == ("anna karenina", "r two d two") and options.hotword_weight == 5.0  # normalised
    capsys.readouterr()
    assert cli_main([*base, "--beam", "1", "--hotwords", "anna"]) == 2
    assert "hotwords need the beam search" in capsys.readouterr().err


def test_stderr_carries_no_library_chatter_or_bar_when_not_a_terminal(tmp_path):
    sample = Path(__file__).resolve().parent.parent / "samples" / "festival_slt.wav"
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    run = subprocess.run([sys.executable, "-m", "speech", "transcribe", str(sample), "--jobs", "1"], env=env,
                         capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert run.returncode == 0 and json.loads(run.stdout)["text"]
    # TF's C++ start-up lines (errors, absl's notice, oneDNN's), a tqdm bar
    for noise in ("E0000", "absl::InitializeLog", "oneDNN custom operations", "%|"):
        assert noise not in run.stderr, run.stderr
    assert "transcribed 1 file(s)" in run.stderr
    verbose = subprocess.run([sys.executable, "-m", "speech", "-v", "transcribe", str(sample), "--jobs", "1"],
                             env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert verbose.returncode == 0 and "oneDNN custom operations" in verbose.stderr  # -v lets the libraries speak


@pytest.mark.parametrize("verb", sorted(VERBS))
def test_every_verb_says_how_to_use_it(verb, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli_main([verb, "--help"])
    assert exit_.value.code == 0
    help_text = capsys.readouterr().out
    assert "examples:" in help_text and f"speech {verb}" in help_text.split("examples:")[1]


def test_inputs_that_name_no_audio_file_are_failures_of_their_own(tmp_path):
    from pipelines.transcribe import expand_inputs

    sf.write(tmp_path / "a.wav", np.zeros(160, np.float32), SR)
    latin = os.fsdecode(b"caf\xe9.wav")  # a name that is not UTF-8, as an old tool writes it
    shutil.copy(tmp_path / "a.wav", tmp_path / latin)
    (tmp_path / "names.txt").write_bytes(b"a.wav\ncaf\xe9.wav\n")
    (tmp_path / "empty.jsonl").write_bytes(b"")
    (tmp_path / "folders" / "sub").mkdir(parents=True)
    found, missing = expand_inputs([str(tmp_path / "names.txt"), str(tmp_path / "empty.jsonl"), "/dev/null",
                                    str(tmp_path / "folders" / "*")])
    assert [Path(p).name for p, _ in found] == ["a.wav", latin]  # the Latin-1 line names its file
    reasons = dict(missing)
    assert reasons[str(tmp_path / "empty.jsonl")] == "the manifest has no record"
    assert reasons["/dev/null"].startswith("not a regular file")
    assert reasons[str(tmp_path / "folders" / "*")].startswith("pattern matched no file (only folders")


def test_failures_are_listed_one_line_each_whatever_the_file_name(capsys):
    from pipelines.transcribe import _list_files

    _list_files("failed", [("talks/a\nb.wav", "file not found"), (os.fsdecode(b"caf\xe9.wav"), "x")], 20, "")
    assert capsys.readouterr().err.splitlines() == ["  failed: talks/a\\nb.wav: file not found",
                                                    "  failed: caf\\udce9.wav: x"]


def test_outputs_of_the_longest_legal_input_names_fit_the_file_system(tmp_path):
    from pipelines.transcribe import output_stems
    from speech.manifest import atomic_write
    from speech.outputs import FORMATS

    names = ["é" * 50 + "x" * 147 + end + ".wav" for end in ("aaaa", "bbbb")]  # 255 bytes each, as long as allowed
    assert {len(n.encode()) for n in names} == {255}
    items = [(str(tmp_path / n), str(tmp_path)) for n in names]
    stems = output_stems(items, tmp_path / "out")
    assert len(set(stems.values())) == 2 and stems == output_stems(items, tmp_path / "out")  # apart, and stable
    for stem in stems.values():
        for fmt in FORMATS:
            with atomic_write(f"{stem}.{fmt}") as f:  # File name too long before
                f.write("x")
    assert len(os.listdir(tmp_path / "out")) == 2 * len(FORMATS)


def test_evaluate_names_bad_manifest_lines_and_refuses_to_score_nothing(tmp_path, capsys):
    from pipelines.evaluate import read_manifests

    good = json.dumps({"audio_filepath": "a.wav", "duration": 1.0, "text": "yes"})
    (tmp_path / "m.jsonl").write_text(f'{good}\n["a.wav"]\n{good}\n')
    (tmp_path / "empty.jsonl").write_bytes(b"")
    utterances, bad = read_manifests([str(tmp_path / "m.jsonl"), str(tmp_path / "empty.jsonl")])
    assert len(utterances) == 2
    assert [where for where, _ in bad] == [f"{tmp_path / 'm.jsonl'}:2", str(tmp_path / "empty.jsonl")]
    # Nothing to score is an error, not a WER of 0.0 (checked before any model is loaded).
    assert cli_main(["evaluate", "--model", str(tmp_path), "--manifest", str(tmp_path / "empty.jsonl")]) == 2
    err = capsys.readouterr().err
    assert "the manifest has no record" in err and "error: no utterance to score" in err


def test_evaluate_scores_the_good_lines_and_exits_1_for_a_bad_one(tiny_model, tmp_path, capsys):
    model_dir, manifest = tiny_model
    lines = manifest.read_text().splitlines()
    broken = tmp_path / "m.jsonl"
    records = [json.loads(line) for line in lines[:3]]
    for record in records:
        record["audio_filepath"] = str(manifest.parent / record["audio_filepath"])
    broken.write_text("\n".join([json.dumps(records[0]), '{"audio_filepath": "x.wav", "duration": NaN}',
                                 *map(json.dumps, records[1:])]) + "\n")
    assert cli_main(["evaluate", "--model", str(model_dir), "--manifest", str(broken), "--no-progress"]) == 1
    captured = capsys.readouterr()
    metrics = json.loads(captured.out.strip().splitlines()[-1])
    assert metrics["utterances"] == 3 and metrics["bad_manifest_lines"] == 1
    assert f"{broken}:2: not a manifest record (duration must be a finite number" in captured.err


def test_prepare_writes_and_reports_any_file_name_the_disk_has(tmp_path, capsys):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    sf.write(corpus / "a.wav", tone_speech("yes"), SR)
    latin = os.fsdecode(b"caf\xe9")
    for stem in (latin, "new\nline"):
        shutil.copy(corpus / "a.wav", corpus / f"{stem}.wav")
        (corpus / f"{stem}.txt").write_text("yes")
    shutil.copy(corpus / "a.wav", corpus / "no\ntext.wav")  # fails: no transcript beside it
    assert cli_main(["prepare", "folder", str(corpus), str(tmp_path / "m.jsonl")]) == 0  # a stack trace before
    from speech.manifest import read_manifest

    assert sorted(Path(u.audio_filepath).stem for u in read_manifest(tmp_path / "m.jsonl")) == [latin, "new\nline"]
    assert "  e.g. " + str(corpus) + "/no\\ntext.wav: no transcript" in capsys.readouterr().err
