"""The LM-fused prefix beam search: the numpy reference against pyctcdecode, and the graph against the reference."""

from __future__ import annotations

import math

import numpy as np
import pytest
import tensorflow as tf

from speech import ngram
from speech.ngram import read_arpa
from speech.prefix_search import LN10, prefix_beam_search
from speech.text import Vocabulary
from speech.tf_prefix_search import LMTables, SearchSettings
from speech.tf_prefix_search import prefix_beam_search as graph_search
from tests.conftest import write_arpa

VOCAB = Vocabulary()
SENTENCES = ["the cat sat on the mat", "the dog sat on the log", "a cat and a dog", "at a mat"]


@pytest.fixture(scope="module")
def lm(tmp_path_factory):
    return read_arpa(write_arpa(SENTENCES, tmp_path_factory.mktemp("lm") / "lm.arpa"))


def _random_log_probs(rng, batch: int, frames: int, spell: str | None = None) -> np.ndarray:
    """Random log-softmax rows; with ``spell``, its letters lead their frames so that LM words come up."""
    logits = rng.normal(size=(batch, frames, VOCAB.num_classes)) * 2.0
    if spell:
        for t in range(frames):
            char = spell[(t // 2) % len(spell)]
            logits[:, t, VOCAB.blank if t % 2 else VOCAB.chars.index(char)] += 3.0
    return (logits - np.logaddexp.reduce(logits, axis=2, keepdims=True)).astype(np.float32)


@pytest.mark.parametrize("width,keys", [(1, "packed"), (8, "packed"), (128, "packed"), (8, "hashed")])
def test_the_graph_finds_the_reference_best_path_and_score(lm, width, keys, tmp_path, monkeypatch):
    # "hashed": the n-gram keys of an LM too large to pack its ids into 62 bits.
    if keys == "hashed":
        monkeypatch.setattr(ngram, "packed_id_bits", lambda num_words, order: None)
        lm = read_arpa(write_arpa(SENTENCES, tmp_path / "lm.arpa"))
        assert lm.id_bits is None
    rng = np.random.default_rng(width)
    tables = LMTables(lm, VOCAB)
    lengths = np.array([23, 0, 40, 1, 23])  # out of order, and a tie: the search reorders its rows and back
    for spell in (None, "the cat sat on the mat ", "a dog at a mat "):
        log_probs = _random_log_probs(rng, 5, 40, spell)
        for use_lm in (True, False):
            settings = SearchSettings(alpha=0.7, beta=0.5, beam_width=width)
            text, total, found, letters = graph_search(tf.constant(log_probs), tf.constant(lengths), VOCAB, settings,
                                                       tables if use_lm else None)
            for b, n in enumerate(lengths):
                expected = prefix_beam_search(log_probs[b, :n], VOCAB, lm if use_lm else None, 0.7, 0.5, width) \
                    if n else None
                if expected is None:
                    assert not found[b] and text[b] == b"" and np.all(letters[b] < 0)
                    continue
                assert found[b] and text[b].numpy().decode() == expected[0], (spell, use_lm, b)
                assert float(total[b]) == pytest.approx(expected[1], rel=1e-9, abs=1e-9)
                spelled = "".join(VOCAB.chars[c] for c in letters[b].numpy() if c >= 0).strip()
                assert spelled == expected[0]


def test_the_reference_scores_words_with_the_lm_and_the_sentence_end(lm):
    # One clear path: "the cat", every frame certain. The total is the LM's alone (acoustic ~ 0).
    spec = "the cat"
    log_probs = np.full((len(spec) * 2, VOCAB.num_classes), math.log(1e-6), np.float32)
    for t, char in enumerate(spec):
        log_probs[2 * t, VOCAB.chars.index(char)] = 0.0
        log_probs[2 * t + 1, VOCAB.blank] = 0.0
    text, total = prefix_beam_search(log_probs, VOCAB, lm, alpha=0.5, beta=1.0, beam_width=8)
    the, cat = lm.word_id("the"), lm.word_id("cat")
    lm_total = sum(0.5 * LN10 * lm.log10_prob(ctx, w) + 1.0 for ctx, w in [([lm.bos], the), ([lm.bos, the], cat)])
    lm_total += 0.5 * LN10 * lm.log10_prob([the, cat], lm.eos)
    assert text == "the cat"
    assert total == pytest.approx(lm_total, abs=1e-3)


def test_the_reference_equals_pyctcdecode(lm, tmp_path):
    pyctcdecode = pytest.importorskip("pyctcdecode")
    from speech.decoding import _PyctcdecodeLM

    decoder = pyctcdecode.BeamSearchDecoderCTC(
        pyctcdecode.Alphabet.build_alphabet([*VOCAB.chars, ""]), _PyctcdecodeLM(lm, VOCAB, 0.7, 0.5))
    rng = np.random.default_rng(5)
    for spell in ("the cat sat on the mat ", "a dog at a mat "):
        for row in _random_log_probs(rng, 3, 30, spell):
            beams = decoder.decode_beams(row.astype(np.float64), beam_width=16, beam_prune_logp=-10.0,
                                         token_min_logp=-5.0)
            spoken = [b for b in beams if b[0].strip()]
            expected = prefix_beam_search(row, VOCAB, lm, 0.7, 0.5, 16)
            assert (spoken[0][0], spoken[0][-1]) == pytest.approx(expected) if spoken else expected is None


def test_word_and_prefix_keys_are_the_letters_hashed_one_by_one(lm):
    from speech.ngram import PRIMES, combine_lanes
    from speech.prefix_search import CHAR_MULTIPLIERS, word_and_prefix_keys, word_prefixes

    def by_hand(word: str) -> int:
        lanes = [0, 0]
        for char in word:
            lanes = [(lane * mult + VOCAB.chars.index(char) + 1) % prime
                     for lane, mult, prime in zip(lanes, CHAR_MULTIPLIERS, PRIMES)]
        return int(combine_lanes(np.array([lanes[0]]), np.array([lanes[1]]))[0])

    words = ["the", "cat's", "a", "", "mat", "at"]
    assert word_and_prefix_keys(words, VOCAB)[0].tolist() == [by_hand(w) for w in words]
    prefixes = word_prefixes(lm, VOCAB)
    spelled = [w for w in lm.words if w.isalpha()]
    assert word_and_prefix_keys(spelled, VOCAB)[1].tolist() == sorted({by_hand(p) for p in prefixes})
