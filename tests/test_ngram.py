"""The n-gram LM as arrays: ARPA back-off scores as KenLM computes them, and its .npz round trip."""

from __future__ import annotations

import math

import numpy as np
import pytest

from speech.errors import ModelError
from speech.ngram import load_ngram_lm, ngram_keys, read_arpa
from tests.conftest import write_arpa

SENTENCES = ["the cat sat on the mat", "the dog sat on the log", "a cat and a dog"]


@pytest.fixture
def arpa(tmp_path):
    return write_arpa(SENTENCES, tmp_path / "lm.arpa")


def _line_prob(arpa_path, gram: str) -> float:
    """The log10 probability an ARPA file lists for ``gram`` (words separated by spaces)."""
    for line in arpa_path.read_text().splitlines():
        fields = line.split("\t")
        if len(fields) >= 2 and fields[1] == gram:
            return float(fields[0])
    raise KeyError(gram)


def _backoff(arpa_path, gram: str) -> float:
    for line in arpa_path.read_text().splitlines():
        fields = line.split("\t")
        if len(fields) == 3 and fields[1] == gram:
            return float(fields[2])
    return 0.0


def test_scores_follow_the_back_off_rule(arpa):
    lm = read_arpa(arpa)
    ids = lm.word_id
    # A listed trigram is its own probability.
    assert lm.log10_prob([ids("the"), ids("cat")], ids("sat")) == pytest.approx(_line_prob(arpa, "the cat sat"), 1e-6)
    # An unlisted trigram backs off to the bigram, adding the context's back-off weight.
    expected = _backoff(arpa, "a cat") + _line_prob(arpa, "cat sat")
    assert lm.log10_prob([ids("a"), ids("cat")], ids("sat")) == pytest.approx(expected, 1e-6)
    # And on down to the unigram; an unknown word scores as <unk>.
    expected = _backoff(arpa, "on the") + _backoff(arpa, "the") + _line_prob(arpa, "and")
    assert lm.log10_prob([ids("on"), ids("the")], ids("and")) == pytest.approx(expected, 1e-6)
    assert lm.word_id("zebra") == lm.unk
    assert lm.log10_prob([ids("the")], lm.unk) == pytest.approx(_backoff(arpa, "the") + _line_prob(arpa, "<unk>"))
    # Only the last order - 1 words of a longer context count.
    assert lm.log10_prob([ids("a"), ids("the"), ids("cat")], ids("sat")) == lm.log10_prob(
        [ids("the"), ids("cat")], ids("sat"))


def test_scores_equal_kenlm_on_the_same_arpa(arpa):
    kenlm = pytest.importorskip("kenlm", reason="kenlm Python module not installed")
    lm, reference = read_arpa(arpa), kenlm.Model(str(arpa))
    for sentence in ["the cat sat on the log", "a dog sat", "zebra on the mat", "the the the"]:
        state, context = kenlm.State(), [lm.bos]
        reference.BeginSentenceWrite(state)
        for word in [*sentence.split(), "</s>"]:
            out = kenlm.State()
            expected = reference.BaseScore(state, word, out)
            state = out
            assert lm.log10_prob(context, lm.word_id(word)) == pytest.approx(expected, abs=1e-5), (sentence, word)
            context.append(lm.word_id(word))


def test_npz_round_trip_and_bad_files(arpa, tmp_path):
    lm = read_arpa(arpa)
    saved = load_ngram_lm(lm.save(tmp_path / "lm.npz"))
    assert saved.words == lm.words and saved.order == lm.order == 3
    for a, b in zip(saved.table(), lm.table()):
        np.testing.assert_array_equal(a, b)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lm.arpa", "lm.npz"]  # no temp file left
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(ModelError, match="not a language model"):
        load_ngram_lm(tmp_path / "bad.npz")
    (tmp_path / "text.arpa").write_text("hello\n")
    with pytest.raises(ModelError, match="KenLM binary cannot be read"):
        load_ngram_lm(tmp_path / "text.arpa")
    with pytest.raises(ModelError, match="not found"):
        load_ngram_lm(tmp_path / "missing.npz")
    broken = tmp_path / "broken.arpa"
    broken.write_text("\\data\\\nngram 1=1\n\n\\1-grams:\n-1.0\n")
    with pytest.raises(ModelError, match="line 5"):
        read_arpa(broken)


def test_ngram_keys_mix_in_the_order():
    keys = ngram_keys(np.array([[1, 2], [2, 1], [0, 1]]))
    assert len(set(keys.tolist())) == 3 and all(k >= 0 for k in keys)
    assert ngram_keys(np.array([[1]]))[0] != ngram_keys(np.array([[0, 1]]))[0]
    assert math.isfinite(float(keys[0]))
