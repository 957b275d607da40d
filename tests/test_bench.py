"""scripts/bench.py runs end to end at tiny sizes and reports positive figures."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow  # about 55 s on 2 cores
def test_quick_benchmark_reports_positive_figures(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "bench.py"), "--quick", "--skip", "torch,export",
                           "--threads", "1", "--json", str(out)], cwd=tmp_path, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(out.read_text())

    assert report["mode"] == "quick" and report["preset"] == "small"
    assert report["machine"]["cores"] >= 1 and report["machine"]["tensorflow"]
    # --threads sets TensorFlow's threads as `speech transcribe --threads` does, before its first op.
    assert report["tensorflow_threads"] == 1 and report["machine"]["tensorflow_op_threads"] == [1, 1]
    for section, keys in {
        "features": ["cold_audio_s_per_s", "cached_audio_s_per_s", "naive_librosa_audio_s_per_s",
                     "naive_librosa_one_blas_thread_audio_s_per_s", "cold_over_naive_one_blas_thread"],
        "input": ["pass_audio_s_per_s", "count_ms"],
        "training": ["audio_s_per_s"],
        "inference": ["rtf"],
        "transcribe": ["audio_s_per_cpu_s"],
    }.items():
        for key in keys:
            assert report[section][key] > 0, (section, key, report[section])
    # The naive loop it is compared with makes the same features.
    assert report["features"]["max_abs_diff"] < 1e-4
    assert report["training"]["steps"] >= 1
    assert report["transcribe"]["files"] == report["data"]["clips"]
    assert report["torch"] == {"skipped": "--skip"} and report["export"] == {"skipped": "--skip"}
    # The table names every section; skipped ones say so.
    assert "cold path (extract_features, empty cache)" in proc.stdout and "torch: skipped" in proc.stdout
    assert "naive loop on one BLAS thread" in proc.stdout and "TensorFlow 2" in proc.stdout
    assert "on 1 thread(s)" in proc.stdout


def _script(name: str):
    """A script of ``scripts/`` imported as a module (they are not a package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_noisy_copies_are_at_the_asked_snr_and_the_same_for_a_seed(tmp_path: Path) -> None:
    import numpy as np
    import soundfile as sf

    from speech.manifest import read_manifest

    bench_noise = _script("bench_noise")
    utts = read_manifest(ROOT / "samples" / "samples.jsonl")[:2]
    for snr in (10.0, 0.0):
        first, again = (tmp_path / f"a{snr:g}", tmp_path / f"b{snr:g}")
        first.mkdir()
        again.mkdir()
        noisy = bench_noise.noisy_copies(utts, first, snr, "white", 0, 16000)
        bench_noise.noisy_copies(utts, again, snr, "white", 0, 16000)
        for utt, out in zip(utts, noisy):
            clean, _ = sf.read(utt.audio_filepath, dtype="float64")
            mixed, rate = sf.read(out.audio_filepath, dtype="float64")
            assert rate == 16000 and out.text == utt.text and len(mixed) == len(clean)
            measured = 10 * np.log10(np.mean(clean**2) / np.mean((mixed - clean) ** 2))
            assert abs(measured - snr) < 0.3
            assert np.array_equal(mixed, sf.read(again / Path(out.audio_filepath).name, dtype="float64")[0])


def test_noise_benchmark_scores_clean_and_each_snr(tmp_path: Path, capsys) -> None:
    out = tmp_path / "noise.json"
    assert _script("bench_noise").main(["--manifest", str(ROOT / "samples" / "samples.jsonl"), "--snr", "10,0",
                                        "--beam", "1", "--json", str(out)]) == 0
    rows = json.loads(out.read_text())["rows"]
    assert [r["condition"] for r in rows] == ["clean", "white 10 dB", "white 0 dB"]
    assert all(r["failed"] == 0 and r["utterances"] == 4 for r in rows)
    assert rows[0]["wer"] < rows[2]["wer"]  # speech under as much noise as signal is much harder
    assert "white 0 dB" in capsys.readouterr().out


def test_long_recordings_join_one_voices_utterances_in_order(tmp_path: Path) -> None:
    import soundfile as sf

    from speech.manifest import Utterance, read_manifest

    bench_long = _script("bench_long")
    utts = [Utterance(f"{i}.wav", 1.0, f"text {i}", {"voice": voice}) for i, voice in enumerate("aabaaab")]
    groups = bench_long.group_by_voice(utts, join=2)
    assert [[u.text for u in g] for g in groups] == [["text 0", "text 1"], ["text 3", "text 4"],
                                                      ["text 2", "text 6"]]  # "text 5" is alone: left out
    samples = read_manifest(ROOT / "samples" / "samples.jsonl")[:3]
    [joined] = bench_long.joined_recordings([samples], tmp_path, 0.5, 16000)
    wave, rate = sf.read(joined.audio_filepath)
    lengths = [len(sf.read(u.audio_filepath)[0]) for u in samples]
    assert rate == 16000 and len(wave) == sum(lengths) + 2 * 8000
    assert abs(wave[lengths[0]:lengths[0] + 8000]).max() == 0  # the gap is silent
    assert joined.text == " ".join(u.text for u in samples)
    assert joined.duration == pytest.approx(len(wave) / 16000)


def test_long_form_benchmark_scores_the_clips_and_each_segment_limit(tmp_path: Path, capsys) -> None:
    from speech.manifest import read_manifest

    manifest = tmp_path / "samples.jsonl"  # no voice field: the four samples are joined two by two, in order
    manifest.write_text("".join(json.dumps({"audio_filepath": u.audio_filepath, "duration": u.duration,
                                            "text": u.text}) + "\n"
                                for u in read_manifest(ROOT / "samples" / "samples.jsonl")))
    out = tmp_path / "long.json"
    assert _script("bench_long").main(["--manifest", str(manifest), "--join", "2", "--segments", "30,3",
                                       "--beam", "1", "--json", str(out)]) == 0
    rows = json.loads(out.read_text())["rows"]
    assert [r["condition"] for r in rows] == ["one by one", "joined, 30 s segments", "joined, 3 s segments"]
    assert [r["utterances"] for r in rows] == [4, 2, 2] and all(r["failed"] == 0 for r in rows)
    assert rows[0]["wer"] < 0.5 and rows[1]["wer"] < 0.5  # the bundled model reads its samples, joined or not
    assert "joined, 3 s segments" in capsys.readouterr().out


def test_voice_benchmark_scores_each_conversion_of_the_same_words(tmp_path: Path, capsys) -> None:
    import soundfile as sf

    from speech.manifest import read_manifest

    bench_voices = _script("bench_voices")
    utts = read_manifest(ROOT / "samples" / "samples.jsonl")[:2]
    copies = bench_voices.converted_copies(utts, tmp_path, 1.4, 0.9, 16000)
    for utt, out in zip(utts, copies):
        assert out.text == utt.text and sf.info(out.audio_filepath).frames == sf.info(utt.audio_filepath).frames
    out = tmp_path / "voices.json"
    assert bench_voices.main(["--manifest", str(ROOT / "samples" / "samples.jsonl"), "--beam", "1",
                              "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert len(report["rows"]) == 1 + len(bench_voices.CONDITIONS)
    assert all(r["failed"] == 0 and r["utterances"] == 4 for r in report["rows"])
    converted = [r["wer"] for r in report["rows"][1:]]
    assert report["converted_mean"]["wer"] == sum(converted) / len(converted)
    assert "converted, mean" in capsys.readouterr().out


def test_bench_real_says_what_is_wrong_with_its_manifest(tmp_path):
    script = Path(__file__).resolve().parent.parent / "scripts" / "bench_real.py"
    for manifest in (tmp_path / "missing.jsonl", tmp_path / "bad.jsonl"):
        if manifest.name == "bad.jsonl":
            manifest.write_text("not json\n")
        run = subprocess.run([sys.executable, str(script), "--manifest", str(manifest)], capture_output=True,
                             text=True, timeout=120)
        assert run.returncode == 2 and run.stderr.startswith("error: ") and "Traceback" not in run.stderr, run.stderr
