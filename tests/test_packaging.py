"""The pip route: the wheel holds the package, its jobs, the bundled model and LM, and a ``speech`` command, and
transcribes from anywhere with nothing of the checkout on the path."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    pytest.importorskip("setuptools")
    out = tmp_path_factory.mktemp("wheel")
    # Build from a copy of what the wheel is made of, so that setuptools' build/ and *.egg-info never land in the
    # checkout (the links speech/pipelines and speech/models are copied as links).
    src = tmp_path_factory.mktemp("build-src")
    for path in ("speech", "pipelines", "models", "pyproject.toml", "README.md", "LICENSE"):
        subprocess.run(["cp", "-a", str(ROOT / path), str(src / path)], check=True)
    shutil.rmtree(src / "speech" / "__pycache__", ignore_errors=True)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(out),
                    str(src)], check=True)
    (found,) = out.glob("speech_lstm_ctc-*.whl")
    return found


def test_the_wheel_holds_the_model_the_lm_the_jobs_and_a_command(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for name in ("model.weights.h5", "config.json", "lm.npz", "MODEL_CARD.md"):
        assert f"speech/models/default/{name}" in names
    assert {"speech/pipelines/transcribe.py", "speech/pipelines/train.py", "speech/cli.py",
            "speech/pipelines/default_model.json"} <= names  # the jobs, and the default model's recipe
    assert {n.split("/")[0] for n in names} == {"speech", wheel.name.split("-")[0] + "-" + wheel.name.split("-")[1]
                                                + ".dist-info"}  # no top-level ``pipelines`` or ``models``
    meta = zipfile.ZipFile(wheel)
    (entry_points,) = [n for n in names if n.endswith("entry_points.txt")]
    assert "speech = speech.cli:main" in meta.read(entry_points).decode()
    (metadata,) = [n for n in names if n.endswith("METADATA")]
    requires = [line for line in meta.read(metadata).decode().splitlines() if line.startswith("Requires-Dist:")]
    assert any("tensorflow" in r for r in requires)
    # Decoding with the LM and hotwords needs no compiled extension or decoder package: neither kenlm nor pyctcdecode.
    assert not any("kenlm" in r or "pyctcdecode" in r for r in requires)


def test_the_installed_package_transcribes_with_its_own_model_and_lm(wheel, tmp_path):
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)  # what pip does with a pure-Python wheel
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(site), "TF_CPP_MIN_LOG_LEVEL": "3"}
    run = subprocess.run([sys.executable, "-m", "speech", "transcribe", str(ROOT / "samples"), "--output-dir",
                          str(out), "--format", "jsonl", "--no-progress", "--jobs", "1"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    probe = subprocess.run([sys.executable, "-c", "import speech, speech.model as m; print(speech.__file__); "
                            "print(m.DEFAULT_MODEL_DIR)"], cwd=tmp_path, env=env, capture_output=True, text=True)
    speech_file, model_dir = probe.stdout.split()
    assert speech_file.startswith(str(site)) and model_dir.startswith(str(site))  # not the checkout's
    records = [json.loads(p.read_text()) for p in sorted(out.glob("*.jsonl")) if p.name != "failures.jsonl"]
    assert records and all(r["text"] for r in records)
    version = subprocess.run([sys.executable, "-m", "speech", "--version"], cwd=tmp_path, env=env,
                             capture_output=True, text=True)
    assert version.stdout.startswith("speech ")
