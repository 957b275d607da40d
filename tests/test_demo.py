"""Acceptance: 40 synthetic commands and digit strings, ``train --preset tiny --epochs 60``, then
``evaluate`` on the same manifest reaches CER < 0.5 on a 2-core CPU (a few minutes). Needs the TTS
engines from scripts/install_tts.sh."""

import json
import shutil
from pathlib import Path

import pytest

from speech.cli import main as cli_main

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_forty_command_clips_train_to_cer_below_half(tmp_path, capsys):
    if not (shutil.which("espeak-ng") or shutil.which("flite")):
        pytest.skip("no TTS engine installed (run scripts/install_tts.sh)")
    corpus = tmp_path / "demo"
    assert cli_main(["synth", "--output", str(corpus), "--prompts", str(ROOT / "samples" / "demo_prompts.txt"),
                     "--num-prompts", "40", "--augment-prob", "0", "--jobs", "2"]) == 0
    manifest = tmp_path / "all.jsonl"
    manifest.write_text("".join((corpus / f"{split}.jsonl").read_text() for split in ("train", "dev", "test"))
                        .replace('"audio_filepath": "', f'"audio_filepath": "{corpus}/'))
    assert len(manifest.read_text().splitlines()) == 40
    capsys.readouterr()
    assert cli_main(["train", "--train", str(manifest), "--output", str(tmp_path / "model"), "--preset", "tiny",
                     "--epochs", "60", "--no-progress", "--cache-dir", str(tmp_path / "cache")]) == 0
    capsys.readouterr()
    assert cli_main(["evaluate", "--model", str(tmp_path / "model"), "--manifest", str(manifest)]) == 0
    metrics = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert metrics["utterances"] == 40 and metrics["cer"] < 0.5, metrics
