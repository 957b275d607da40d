"""The LM-fused prefix beam search with hotwords: the numpy reference (against pyctcdecode where it is installed), and
the graph against the reference."""

from __future__ import annotations

import math

import numpy as np
import pytest
import tensorflow as tf

from speech import ngram
from speech.ngram import read_arpa
from speech.prefix_search import (
    LN10,
    hotword_phrases,
    hotword_prefix_lengths,
    prefix_beam_search,
    unknown_part_score,
    word_log10,
    word_prefixes,
)
from speech.text import Vocabulary
from speech.tf_prefix_search import HotwordTables, LMTables, SearchSettings
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


class _PyctcdecodeLM:
    """An :class:`speech.ngram.NGramLM` behind pyctcdecode's language-model interface (order, start state, partial
    and word scores), scoring as :mod:`speech.prefix_search` does. An empty last word is the sentence end only
    (pyctcdecode 0.5 scored it as an unknown word, so with an LM silence could never decode to nothing)."""

    def __init__(self, lm, vocab: Vocabulary, alpha: float, beta: float):
        self.lm, self.alpha, self.beta = lm, alpha, beta
        self.prefixes = word_prefixes(lm, vocab)

    @property
    def order(self) -> int:
        return self.lm.order

    def get_start_state(self) -> tuple[int, ...]:
        return (self.lm.bos,)

    def score_partial_token(self, partial_token: str) -> float:
        return unknown_part_score(partial_token, self.prefixes)

    def score(self, prev_state: tuple[int, ...], word: str, is_last_word: bool = False) -> tuple[float, tuple]:
        if not word:
            end = self.lm.log10_prob(prev_state, self.lm.eos) if is_last_word else 0.0
            return self.alpha * LN10 * end, prev_state
        log10, word_id = word_log10(self.lm, prev_state, word)
        state = (*prev_state, word_id)[-max(self.lm.order - 1, 1):]
        if is_last_word:
            log10 += self.lm.log10_prob(state, self.lm.eos)
        return self.alpha * LN10 * log10 + self.beta, state


@pytest.mark.parametrize("hotwords", [(), ("cat",)])  # one-word hotwords in the LM score as pyctcdecode's do
def test_the_reference_equals_pyctcdecode(lm, hotwords):
    # pyctcdecode is no dependency: where it is installed, this shows the reference is its algorithm.
    pyctcdecode = pytest.importorskip("pyctcdecode")
    rng = np.random.default_rng(5)
    for use_lm in (True, False):
        decoder = pyctcdecode.BeamSearchDecoderCTC(pyctcdecode.Alphabet.build_alphabet([*VOCAB.chars, ""]),
                                                   _PyctcdecodeLM(lm, VOCAB, 0.7, 0.5) if use_lm else None)
        for spell in ("the cat sat on the mat ", "a dog at a mat "):
            for row in _random_log_probs(rng, 3, 30, spell):
                beams = decoder.decode_beams(row.astype(np.float64), beam_width=16, beam_prune_logp=-10.0,
                                             token_min_logp=-5.0, hotwords=hotwords, hotword_weight=3.0)
                spoken = [b for b in beams if b[0].strip()]
                expected = prefix_beam_search(row, VOCAB, lm if use_lm else None, 0.7, 0.5, 16, hotwords=hotwords,
                                              hotword_weight=3.0)
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


def _clear(spec: str) -> np.ndarray:
    """Every frame certain: each character of ``spec`` then a blank."""
    log_probs = np.full((len(spec) * 2, VOCAB.num_classes), math.log(1e-6), np.float32)
    for t, char in enumerate(spec):
        log_probs[2 * t, VOCAB.chars.index(char)] = 0.0
        log_probs[2 * t + 1, VOCAB.blank] = 0.0
    return log_probs


@pytest.mark.parametrize("width", [8, pytest.param(32, marks=pytest.mark.slow)])  # width 1: the test without hotwords
def test_the_graph_finds_the_reference_best_path_and_score_with_hotwords(lm, width):
    # One-word hotwords in and out of the LM ("mats": its prefixes "m", "ma", "mat" score too), and phrases of two
    # and three words, one of them ending in another hotword.
    rng = np.random.default_rng(100 + width)
    lengths = np.array([30, 0, 40, 12])
    tables = LMTables(lm, VOCAB)
    for hotwords, weight in [(("cat",), 10.0), (("mats", "on the", "sat on the", "the"), 4.0), (("a dog",), 2.5)]:
        graph_hotwords = HotwordTables(hotwords, VOCAB, weight)
        for spell in (None, "the cat sat on the mat ", "a dog at a mat "):
            log_probs = _random_log_probs(rng, 4, 40, spell)
            for use_lm in (True, False):
                settings = SearchSettings(alpha=0.7, beta=0.5, beam_width=width)
                text, total, found, letters = graph_search(tf.constant(log_probs), tf.constant(lengths), VOCAB,
                                                           settings, tables if use_lm else None, graph_hotwords)
                for b, n in enumerate(lengths):
                    expected = prefix_beam_search(log_probs[b, :n], VOCAB, lm if use_lm else None, 0.7, 0.5, width,
                                                  hotwords=hotwords, hotword_weight=weight) if n else None
                    if expected is None:
                        assert not found[b] and text[b] == b""
                        continue
                    assert found[b] and text[b].numpy().decode() == expected[0], (hotwords, spell, use_lm, b)
                    assert float(total[b]) == pytest.approx(expected[1], rel=1e-9, abs=1e-9)
                    assert "".join(VOCAB.chars[c] for c in letters[b].numpy() if c >= 0).strip() == expected[0]


def test_hotwords_score_their_prefixes_and_each_phrase_the_last_words_complete(lm):
    # One clear path, no LM: the total is the hotwords' alone (acoustic ~ 0).
    log_probs = _clear("anna karenina")
    settings = SearchSettings(beam_width=8)

    def totals(hotwords: tuple[str, ...], weight: float = 3.0) -> tuple[float, float]:
        text, total = prefix_beam_search(log_probs, VOCAB, None, beam_width=8, hotwords=hotwords,
                                         hotword_weight=weight)
        graph_text, graph_total, _, _ = graph_search(tf.constant(log_probs[None]), tf.constant([len(log_probs)]),
                                                     VOCAB, settings, None, HotwordTables(hotwords, VOCAB, weight))
        assert text == graph_text[0].numpy().decode() == "anna karenina"
        assert float(graph_total[0]) == pytest.approx(total, rel=1e-9, abs=1e-9)
        return total

    acoustic = prefix_beam_search(log_probs, VOCAB, None, beam_width=8)[1]
    assert totals(("anna karenina",)) == pytest.approx(acoustic + 3.0)
    assert totals(("anna karenina", "karenina", "anna")) == pytest.approx(acoustic + 9.0)
    assert totals(("karenina anna", "ann", "karen")) == pytest.approx(acoustic)  # no match: order and whole words
    assert totals(("anna karenina",), weight=0.0) == pytest.approx(acoustic)
    # The part being spelled scores by the shortest hotword word it begins: "kare" by "karen" (5 letters).
    assert hotword_prefix_lengths([("anna", "karenina"), ("karen",)]) == {
        **{"karenina"[:n]: 8 for n in range(6, 9)}, **{"karen"[:n]: 5 for n in range(1, 6)},
        **{"anna"[:n]: 4 for n in range(1, 5)}}
    assert hotword_phrases(["anna  karenina", "", "anna karenina", "cat"], VOCAB) == [("anna", "karenina"), ("cat",)]
    with pytest.raises(ValueError, match="characters"):
        hotword_phrases(["Cat!"], VOCAB)
