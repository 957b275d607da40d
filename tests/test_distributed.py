"""tf.distribute training: MirroredStrategy on two logical CPU devices and a two-process
MultiWorkerMirroredStrategy run on localhost. Both run the real CLI in subprocesses, because logical
devices and collective ops must be configured before TensorFlow starts."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from speech.cli import main as cli_main
from tests.conftest import WORDS, write_corpus

ROOT = Path(__file__).resolve().parent.parent
CONFIG = {"train": {"batch_size": 2, "learning_rate": 0.003, "warmup_steps": 5, "spec_augment": None,
                    "early_stopping_patience": 0}}


def _train_cmd(manifest: Path, out: Path, epochs: int, *extra: str) -> list[str]:
    config = out.parent / "config.json"
    config.write_text(json.dumps(CONFIG))
    return [sys.executable, "-m", "speech", "train", "--train", str(manifest), "--dev", str(manifest), "--output",
            str(out), "--preset", "tiny", "--epochs", str(epochs), "--config", str(config), "--no-progress",
            "--cache-dir", str(out.parent / "cache"), *extra]


def _run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600, **kwargs)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


@pytest.mark.slow  # about 70 s on 2 cores
def test_mirrored_on_two_cpu_replicas_then_resume_and_evaluate_on_one(tmp_path, capsys):
    manifest = write_corpus(tmp_path / "corpus", WORDS)
    out = tmp_path / "model"
    result = _run(_train_cmd(manifest, out, 2, "--strategy", "mirrored", "--cpu-replicas", "2"))
    assert "2 replica(s)" in result.stderr
    # The checkpoint written by two replicas restores on one device and trains on.
    _run(_train_cmd(manifest, out, 3, "--resume"))
    assert [h["epoch"] for h in json.loads((out / "history.json").read_text())] == [0, 1, 2]
    assert cli_main(["evaluate", "--model", str(out), "--manifest", str(manifest)]) == 0
    metrics = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert metrics["utterances"] == len(WORDS)


def _free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@pytest.mark.slow
def test_two_worker_multiworker_run_on_localhost(tmp_path):
    manifest = write_corpus(tmp_path / "corpus", WORDS)
    out = tmp_path / "model"
    workers = [f"127.0.0.1:{p}" for p in _free_ports(2)]
    procs = []
    for index in range(2):
        env = {**os.environ, "TF_CONFIG": json.dumps({"cluster": {"worker": workers},
                                                      "task": {"type": "worker", "index": index}})}
        procs.append(subprocess.Popen(_train_cmd(manifest, out, 2, "--strategy", "multiworker"), cwd=ROOT, env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outputs = [p.communicate(timeout=600) for p in procs]
    for p, (_, err) in zip(procs, outputs):
        assert p.returncode == 0, err[-3000:]
    assert "2 replica(s)" in outputs[0][1]
    # The chief (worker 0) owns the output folder; the other worker only wrote scratch checkpoints.
    assert [h["epoch"] for h in json.loads((out / "history.json").read_text())] == [0, 1]
    assert (out / "model.weights.h5").is_file() and (out / ".worker-1").is_dir()
