"""Building n-gram models with KenLM's lmplz (skipped where it is not installed), and converting ARPA files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from speech import lm
from speech.lm import KenLMNotFoundError, build_ngram_lm, find_kenlm_binary, unigrams_from_text
from speech.ngram import load_ngram_lm
from speech.pipelines.lm import main
from tests.conftest import write_arpa

TEXT = "The cat sat on the mat.\nThe DOG sat on 2 logs!\n\n  a cat and a dog  \n"


def _need_binaries() -> None:
    try:
        find_kenlm_binary("lmplz")
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


def test_built_lm_scores_in_domain_text_higher(text_file, tmp_path):
    _need_binaries()
    out = build_ngram_lm(str(text_file), str(tmp_path / "out" / "lm.npz"), order=3, memory="64M")
    assert out == tmp_path / "out" / "lm.npz" and out.is_file()
    assert sorted(p.name for p in out.parent.iterdir()) == ["lm.npz"]  # no temp files
    model = load_ngram_lm(out)
    assert model.order == 3
    assert set(model.words) - {"<s>", "</s>", "<unk>"} == set(unigrams_from_text(text_file))  # normalised words

    def score(sentence: str) -> float:
        ids = [model.word_id(w) for w in sentence.split()] + [model.eos]
        return sum(model.log10_prob([model.bos, *ids[:i]], w) for i, w in enumerate(ids))

    assert score("the cat sat on the mat") > score("mat the on sat cat the")
    assert model.word_id("two") != model.unk and model.word_id("The") == model.unk


def test_an_arpa_file_converts_to_npz(tmp_path, capsys):
    arpa = write_arpa(["the cat sat", "a dog sat"], tmp_path / "lm.arpa")
    assert main(["--from-arpa", str(arpa), "--output", str(tmp_path / "lm.npz")]) == 0
    assert load_ngram_lm(tmp_path / "lm.npz").words == load_ngram_lm(arpa).words
    assert "wrote" in capsys.readouterr().out
    (tmp_path / "bad.arpa").write_text("\\data\\\nngram 1=1\n\n\\1-grams:\n-1.0\n")
    assert main(["--from-arpa", str(tmp_path / "bad.arpa"), "--output", str(tmp_path / "x.npz")]) == 1
    assert "line 5" in capsys.readouterr().err and not (tmp_path / "x.npz").exists()


def test_arpa_and_prune(text_file, tmp_path):
    _need_binaries()
    out = build_ngram_lm(str(text_file), str(tmp_path / "lm.arpa"), order=2, prune="0 1", arpa=True, memory="64M")
    text = out.read_text()
    assert text.lstrip().startswith("\\data\\") and "ngram 2=" in text


def test_cli(text_file, tmp_path, capsys):
    _need_binaries()
    out = tmp_path / "cli.npz"
    assert main(["--text", str(text_file), "--output", str(out), "--order", "2", "--memory", "64M"]) == 0
    assert out.is_file() and "wrote" in capsys.readouterr().out


def test_lmplz_failure_leaves_no_output(text_file, tmp_path):
    _need_binaries()
    out = tmp_path / "bad.npz"
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
        build_ngram_lm(str(text_file), str(tmp_path / "lm.npz"))
    assert main(["--text", str(text_file), "--output", str(tmp_path / "lm.npz")]) == 1


def test_kenlm_bin_env_is_searched_first(tmp_path, monkeypatch):
    fake = tmp_path / "lmplz"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    monkeypatch.setenv("KENLM_BIN", str(tmp_path))
    assert find_kenlm_binary("lmplz") == fake
    assert os.access(fake, os.X_OK)
