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
                           "--json", str(out)], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(out.read_text())

    assert report["mode"] == "quick" and report["preset"] == "small"
    assert report["machine"]["cores"] >= 1 and report["machine"]["tensorflow"]
    for section, keys in {
        "features": ["cold_audio_s_per_s", "cached_audio_s_per_s", "naive_librosa_audio_s_per_s"],
        "input": ["pass_audio_s_per_s", "count_ms"],
        "training": ["audio_s_per_s"],
        "inference": ["rtf"],
        "transcribe": ["audio_s_per_cpu_s"],
    }.items():
        for key in keys:
            assert report[section][key] > 0, (section, key, report[section])
    assert report["training"]["steps"] >= 1
    assert report["transcribe"]["files"] == report["data"]["clips"]
    assert report["torch"] == {"skipped": "--skip"} and report["export"] == {"skipped": "--skip"}
    # The table names every section; skipped ones say so.
    assert "extract_features, cold" in proc.stdout and "torch: skipped" in proc.stdout
