"""Building KenLM n-gram models with lmplz / build_binary (skipped where they are not installed)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from speech import lm
from speech.lm import KenLMNotFoundError, build_ngram_lm, find_kenlm_binary, unigrams_from_text
from speech.pipelines.lm import main

TEXT = "The cat sat on the mat.\nThe DOG sat on 2 logs!\n\n  a cat and a dog  \n"


def _need_binaries() -> None:
    try:
        find_kenlm_binary("lmplz")
        find_kenlm_binary("build_binary")
    except KenLMNotFoundError as exc:
        pytest.skip(f"KenLM binaries unavailable, run scripts/install_kenlm.sh ({exc})")


@pytest.fixture
def text_file(tmp_path: Path) -> Path:
    path = tmp_path / "sentences.txt"
    path.write_text(TEXT, encoding="utf-8")
    return path


def test_unigrams_are_normalised_words(text_file):
    assert unigrams_from_text(text_file) == ["a", "and", "cat", "dog", "logs", "mat", "on", "sat", "the", "two"]
    assert "The" in unigrams_from_text(text_file, vocab=None)


def test_build_binary_lm_scores_in_domain_text_higher(text_file, tmp_path):
    _need_binaries()
    kenlm = pytest.importorskip("kenlm", reason="kenlm Python module not installed: run scripts/install_kenlm.sh")
    out = build_ngram_lm(str(text_file), str(tmp_path / "out" / "lm.binary"), order=3, memory="64M")
    assert out == tmp_path / "out" / "lm.binary" and out.is_file()
    assert out.read_bytes()[:4] != b"\n\\da"  # binary, not ARPA text
    assert Path(str(out) + ".unigrams.txt").read_text().split() == unigrams_from_text(text_file)
    assert sorted(p.name for p in out.parent.iterdir()) == ["lm.binary", "lm.binary.unigrams.txt"]  # no temp
    model = kenlm.Model(str(out))
    assert model.order == 3
    assert model.score("the cat sat on the mat") > model.score("mat the on sat cat the")
    assert "two" in model and "The" not in model  # normalised: lower case, digits spelled out


def test_arpa_and_prune(text_file, tmp_path):
    _need_binaries()
    out = build_ngram_lm(str(text_file), str(tmp_path / "lm.arpa"), order=2, prune="0 1", binary=False, memory="64M")
    text = out.read_text()
    assert text.lstrip().startswith("\\data\\") and "ngram 2=" in text


def test_cli(text_file, tmp_path, capsys):
    _need_binaries()
    out = tmp_path / "cli.binary"
    assert main(["--text", str(text_file), "--output", str(out), "--order", "2", "--memory", "64M"]) == 0
    assert out.is_file() and "wrote" in capsys.readouterr().out


def test_lmplz_failure_leaves_no_output(text_file, tmp_path):
    _need_binaries()
    out = tmp_path / "bad.binary"
    with pytest.raises(RuntimeError, match="lmplz failed"):
        build_ngram_lm(str(text_file), str(out), order=2, prune="not-a-number", memory="64M")
    assert list(tmp_path.iterdir()) == [text_file]
    empty = tmp_path / "empty.txt"
    empty.write_text("!!!\n\n")
    with pytest.raises(ValueError, match="no usable text"):
        build_ngram_lm(str(empty), str(out))


def test_missing_binaries_are_a_clear_error(text_file, tmp_path, monkeypatch):
    monkeypatch.setenv("KENLM_BIN", str(tmp_path / "nothing"))
    monkeypatch.setenv("PATH", str(tmp_path / "nothing"))
    monkeypatch.setattr(lm, "TOOLS_BIN", tmp_path / "nothing")
    with pytest.raises(KenLMNotFoundError, match=r"lmplz.*scripts/install_kenlm\.sh"):
        build_ngram_lm(str(text_file), str(tmp_path / "lm.binary"))
    assert main(["--text", str(text_file), "--output", str(tmp_path / "lm.binary")]) == 1


def test_kenlm_bin_env_is_searched_first(tmp_path, monkeypatch):
    fake = tmp_path / "lmplz"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    monkeypatch.setenv("KENLM_BIN", str(tmp_path))
    assert find_kenlm_binary("lmplz") == fake
    assert os.access(fake, os.X_OK)
