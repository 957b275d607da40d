"""Greedy and beam-search decoding on hand-made log-probability matrices (no model needed)."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest

from speech.decoding import (
    BeamSearchDecoder,
    Decoder,
    DecodingOptions,
    GreedyDecoder,
    Hypothesis,
    Word,
    best_hypothesis,
    ctc_align,
    make_decoder,
    penalize_blank,
    tune_lm_weights,
    word_error_rate,
)
from speech.errors import ModelError
from speech.ngram import load_ngram_lm
from speech.text import Vocabulary
from tests.conftest import write_arpa

VOCAB = Vocabulary()
FD = 0.02  # seconds per output frame
C = VOCAB.num_classes


def _index(char: str) -> int:
    return VOCAB.blank if char == "_" else VOCAB.chars.index(char)


def frames(spec, peak: float = 0.9) -> np.ndarray:
    """Log-probs [T, C]: each item is a char ("_" = blank) with probability ``peak``, or a dict char -> prob;
    the remaining mass is spread evenly over the other classes."""
    rows = []
    for item in spec:
        probs = {item: peak} if isinstance(item, str) else dict(item)
        row = np.full(C, (1.0 - sum(probs.values())) / (C - len(probs)))
        for char, p in probs.items():
            row[_index(char)] = p
        rows.append(row)
    return np.log(np.array(rows, dtype=np.float64)).astype(np.float32).reshape(-1, C)


def greedy(spec, **kwargs) -> Hypothesis:
    return GreedyDecoder(VOCAB, FD).decode(frames(spec, **kwargs))


# --- greedy -------------------------------------------------------------------------------------------


def test_repeats_collapse_and_blank_separates_double_letter():
    assert greedy("hheelllo").text == "helo"
    assert greedy("hh_e_ll_l_oo").text == "hello"


def test_spaces_leading_trailing_and_double_vanish():
    hyp = greedy("  ab__ _  cd  ")
    assert hyp.text == "ab cd"
    assert [w.word for w in hyp.words] == ["ab", "cd"]


def test_empty_output_has_defined_confidence():
    hyp = greedy("___ __", peak=0.8)
    assert hyp.text == "" and hyp.words == []
    assert hyp.confidence == pytest.approx(0.8, rel=1e-6)
    zero = GreedyDecoder(VOCAB, FD).decode(np.zeros((0, C), np.float32))
    assert zero == Hypothesis("", 1.0, [])


def test_timings_and_confidences_exact():
    spec = [
        "_",  # 0
        {"h": 0.6},  # 1  run h: frames 1-2, max 0.7
        {"h": 0.7},  # 2
        "_",  # 3
        {"i": 0.5},  # 4  run i: frame 4
        " ",  # 5
        {"y": 0.8},  # 6  run y: frame 6
        {"o": 0.9},  # 7  run o: frames 7-8, max 0.95
        {"o": 0.95},  # 8
        "_",  # 9
    ]
    log_probs = frames(spec)
    hyp = GreedyDecoder(VOCAB, FD).decode(log_probs)
    assert hyp.text == "hi yo"
    hi, yo = hyp.words
    assert (hi.word, hi.start, hi.end) == ("hi", 1 * FD, 5 * FD)
    assert (yo.word, yo.start, yo.end) == ("yo", 6 * FD, 9 * FD)
    p = np.exp(log_probs.max(axis=1).astype(np.float64))  # float32 values, as the decoder sees them
    assert hi.confidence == pytest.approx((p[2] + p[4]) / 2, abs=1e-12)
    assert yo.confidence == pytest.approx((p[6] + p[8]) / 2, abs=1e-12)
    assert hi.confidence == pytest.approx((0.7 + 0.5) / 2, rel=1e-6)
    expected = math.exp(float(np.mean(log_probs.max(axis=1).astype(np.float64))))
    assert hyp.confidence == pytest.approx(expected, abs=1e-12)


def test_argmax_ties_go_to_lowest_index():
    log_probs = np.full((2, C), -10.0, np.float32)
    log_probs[:, _index("a")] = log_probs[:, _index("b")] = math.log(0.5)
    assert GreedyDecoder(VOCAB, FD).decode(log_probs).text == "a"


def test_decode_batch_ignores_padding():
    decoder = GreedyDecoder(VOCAB, FD)
    a, b = frames("_hh_i_"), frames("__yo")
    batch = np.stack([a, np.concatenate([b, frames("zz")])])  # padding frames would decode as "z"
    hyps = decoder.decode_batch(batch, np.array([6, 4]))
    assert hyps == [decoder.decode(a), decoder.decode(b)]
    assert [h.text for h in hyps] == ["hi", "yo"]


def test_bad_shapes_raise():
    decoder = GreedyDecoder(VOCAB, FD)
    with pytest.raises(ValueError, match="shape"):
        decoder.decode(np.zeros((3, C - 1), np.float32))
    with pytest.raises(ValueError, match="lengths"):
        decoder.decode_batch(np.zeros((2, 3, C), np.float32), np.array([3, 4]))


def test_make_decoder_picks_greedy_for_width_one():
    assert isinstance(make_decoder(VOCAB, FD), GreedyDecoder)
    assert isinstance(make_decoder(VOCAB, FD, DecodingOptions(beam_width=1)), Decoder)


# --- optional stack missing ---------------------------------------------------------------------------


def test_hotwords_need_no_pyctcdecode(monkeypatch):
    monkeypatch.setitem(sys.modules, "pyctcdecode", None)  # makes `import pyctcdecode` raise ImportError
    decoder = make_decoder(VOCAB, FD, DecodingOptions(beam_width=8, hotwords=("cat", "a cat")))
    assert decoder.decode(frames("_c_a_t_")).text == "cat"
    assert make_decoder(VOCAB, FD, DecodingOptions(beam_width=8)).decode(frames("_a_")).text == "a"
    assert greedy("_a_").text == "a"


def test_a_kenlm_binary_is_refused_with_a_clear_error(tmp_path):
    lm = tmp_path / "lm.binary"
    lm.write_bytes(b"mmap lm http://kheafield.com/code format version 5\n\0\0")
    with pytest.raises(ModelError, match="KenLM binary cannot be read"):
        BeamSearchDecoder(VOCAB, FD, lm_path=str(lm))


# --- beam search without LM --------------------------------------------------------------------------


def _random_peaked(rng: np.random.Generator, num_frames: int, peak: float) -> np.ndarray:
    # Mostly blanks, letters in short runs, spaces (also leading/trailing/double) now and then.
    spec = []
    while len(spec) < num_frames:
        char = rng.choice(list("abcdefghijklmnopqrstuvwxyz'  "))
        spec += [char] * int(rng.integers(1, 3)) + ["_"] * int(rng.integers(0, 3))
    return frames(spec[:num_frames], peak=peak)


@pytest.mark.parametrize("peak", [0.97, 0.8])  # 0.8: every class is above pyctcdecode's token_min_logp
def test_beam_without_lm_agrees_with_greedy(peak):
    rng = np.random.default_rng(0)
    greedy_decoder = GreedyDecoder(VOCAB, FD)
    beam = make_decoder(VOCAB, FD, DecodingOptions(beam_width=16))
    assert isinstance(beam, BeamSearchDecoder)
    for _ in range(8):
        log_probs = _random_peaked(rng, 60, peak)
        g, b = greedy_decoder.decode(log_probs), beam.decode(log_probs)
        assert b == g  # same text, and the forced alignment reproduces greedy's timings and confidences
    batch = np.stack([log_probs, log_probs])
    assert beam.decode_batch(batch, np.array([60, 30])) == [g, greedy_decoder.decode(log_probs[:30])]
    assert beam.decode(np.zeros((0, C), np.float32)) == Hypothesis("", 1.0, [])


def _path_string(path: np.ndarray) -> str:
    return "".join("_" if i == VOCAB.blank else VOCAB.chars[i] for i in path)


@pytest.mark.parametrize("spec", ["_ll_l_", "  a_ _ b  ", "a b", "___", " _ ", "a", "ab_c d" * 50])
def test_ctc_align_reproduces_the_argmax_path(spec):
    text = GreedyDecoder(VOCAB, FD).decode(frames(spec)).text
    assert _path_string(ctc_align(frames(spec), text, VOCAB)) == spec


def test_ctc_align_forces_the_text():
    # Forcing "ll" onto frames that say "lll" needs a blank somewhere: the cheapest spot.
    log_probs = frames([{"l": 0.9}, {"l": 0.6, "_": 0.3}, {"l": 0.9}])
    assert _path_string(ctc_align(log_probs, "ll", VOCAB)) == "l_l"
    log_probs = frames(["a", {"_": 0.5, " ": 0.4}, "b"])
    assert _path_string(ctc_align(log_probs, "a b", VOCAB)) == "a b"  # two words need a space between them
    assert _path_string(ctc_align(log_probs, "ab", VOCAB)) == "a_b"


# --- beam search with an n-gram LM ----------------------------------------------------------------------

SENTENCES = [
    "the cat sat on the mat",
    "the dog sat on the log",
    "a cat and a dog",
    "the cat ate the fish",
    "my dog likes the mat",
]


def _ambiguous(words: list[list]) -> np.ndarray:
    """Noisy frames for a word sequence: each word is a list of chars or {char: p} dicts, two frames per
    character, blanks between characters, a space between words."""
    spec: list = ["_"]
    for i, word in enumerate(words):
        if i:
            spec += [" ", "_"]
        for char in word:
            spec += [char, char, "_"]
    return frames(spec, peak=0.8)


# "the cot sat on the mat" by the acoustic argmax (o 0.5 vs a 0.4), "the cat ..." with the LM.
NOISY = _ambiguous([list("the"), ["c", {"o": 0.5, "a": 0.4}, "t"], list("sat"), list("on"), list("the"), list("mat")])
# "the dog sot on the log"
NOISY2 = _ambiguous(
    [list("the"), list("dog"), ["s", {"o": 0.45, "a": 0.35}, "t"], list("on"), list("the"), list("log")]
)


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("lm")
    return load_ngram_lm(write_arpa(SENTENCES, root / "lm.arpa")).save(root / "lm.npz")


def test_lm_fused_beam_fixes_ambiguous_example(tiny_lm):
    greedy_hyp = GreedyDecoder(VOCAB, FD).decode(NOISY)
    assert greedy_hyp.text == "the cot sat on the mat"
    assert make_decoder(VOCAB, FD, DecodingOptions(beam_width=16)).decode(NOISY).text == "the cot sat on the mat"
    fused = make_decoder(VOCAB, FD, DecodingOptions(beam_width=16, lm_path=str(tiny_lm), alpha=0.5, beta=1.0))
    hyp = fused.decode(NOISY)
    assert hyp.text == "the cat sat on the mat"
    assert fused.decode(NOISY2).text == "the dog sat on the log"
    # The LM overruled the acoustic model: the best path spelling "cat" is less probable than the argmax path.
    assert 0.0 < hyp.confidence < greedy_hyp.confidence
    assert [(w.start, w.end) for w in hyp.words] == [(w.start, w.end) for w in greedy_hyp.words]
    cat, cot = hyp.words[1], greedy_hyp.words[1]
    assert cat.confidence == pytest.approx((0.8 + 0.4 + 0.8) / 3, rel=1e-6)
    assert cot.confidence == pytest.approx((0.8 + 0.5 + 0.8) / 3, rel=1e-6)


def test_an_arpa_file_and_its_npz_decode_alike(tiny_lm, tmp_path):
    arpa = write_arpa(SENTENCES, tmp_path / "lm.arpa")
    for path in (arpa, tiny_lm):
        decoder = BeamSearchDecoder(VOCAB, FD, beam_width=16, lm_path=str(path))
        assert [decoder.decode(x).text for x in (NOISY, NOISY2)] == ["the cat sat on the mat", "the dog sat on the log"]


def test_tune_lm_weights_picks_the_best_grid_point(tiny_lm):
    decoder = BeamSearchDecoder(VOCAB, FD, beam_width=16, lm_path=str(tiny_lm))
    refs = ["the cat sat on the mat", "the dog sat on the log"]
    inputs = [NOISY, NOISY2]
    alphas, betas = [0.0, 0.5, 4.0], [-8.0, 1.0]
    alpha, beta, wer = tune_lm_weights(decoder, inputs, refs, alphas=alphas, betas=betas)
    assert (decoder.alpha, decoder.beta) == (alpha, beta)
    grid = {}
    for a in alphas:
        for b in betas:
            decoder.set_lm_weights(a, b)
            grid[a, b] = word_error_rate(refs, [decoder.decode(x).text for x in inputs])
    assert wer == min(grid.values()) == grid[alpha, beta] == 0.0
    assert max(grid.values()) > 0.0, grid  # the grid really contains bad weights
    decoder.close()


def test_tune_lm_weights_with_a_factory():
    class Fake:
        def __init__(self, alpha: float, beta: float):
            self.text = "a b" if (alpha, beta) == (1.0, 2.0) else "a c"

        def decode(self, log_probs):
            return Hypothesis(self.text, 1.0, [])

    result = tune_lm_weights(Fake, [np.zeros((1, C))] * 2, ["a b", "a b"], alphas=[0.0, 1.0], betas=[2.0, 3.0])
    assert result == (1.0, 2.0, 0.0)
    with pytest.raises(ValueError, match="references"):
        tune_lm_weights(Fake, [np.zeros((1, C))], ["a", "b"], alphas=[0.0], betas=[0.0])


def test_lm_fused_beam_keeps_silence_empty(tiny_lm):
    # Every frame's best class is the blank: the transcript is empty, with or without an LM, even with a large
    # word bonus (the bundled model's LM used to turn a second of digital silence into "a").
    silence = frames(["_"] * 50, peak=0.6)
    assert GreedyDecoder(VOCAB, FD).decode(silence).text == ""
    for beta in (0.0, 1.0, 3.0):
        decoder = BeamSearchDecoder(VOCAB, FD, beam_width=16, lm_path=str(tiny_lm), alpha=0.5, beta=beta)
        hyp = decoder.decode(silence)
        assert (hyp.text, hyp.words) == ("", []), beta
        assert hyp.confidence == pytest.approx(GreedyDecoder(VOCAB, FD).decode(silence).confidence)
        assert decoder.decode(NOISY).text == "the cat sat on the mat"
        decoder.close()


# --- the speaking-rate search's choice -------------------------------------------------------------------


def test_best_hypothesis_keeps_the_highest_score_with_its_word_times_rescaled():
    slow = Hypothesis("cat", 0.9, [Word("cat", 0.1, 0.3, 0.9)], score=-5.0)
    fast = Hypothesis("cart", 0.8, [Word("cart", 0.2, 0.4, 0.8)], score=-3.0)
    best = best_hypothesis([(slow, 1.0), (fast, 0.5)])  # fast: decoded at half the hop its decoder was built for
    assert (best.text, best.score) == ("cart", -3.0)
    assert (best.words[0].start, best.words[0].end) == pytest.approx((0.1, 0.2))
    assert best_hypothesis([(Hypothesis("x", 1.0), 1.0), (slow, 1.0)]) is slow  # greedy (no score) never wins
    tie = Hypothesis("dog", 0.9, [], score=-5.0)
    assert best_hypothesis([(slow, 1.0), (tie, 1.2)]) is slow  # a tie keeps the first (the model's own hop)
    with pytest.raises(ValueError, match="no candidate"):
        best_hypothesis([])
    # A bonus per letter (spaces do not count) can outweigh a lower score: "cart" has one letter more than "cat".
    fewer = Hypothesis("a cat", 0.9, [], score=-3.0)
    more = Hypothesis("a cart", 0.9, [], score=-3.8)
    assert best_hypothesis([(fewer, 1.0), (more, 1.0)], letter_bonus=0.5) is fewer
    assert best_hypothesis([(fewer, 1.0), (more, 1.0)], letter_bonus=1.0) is more


def test_beam_search_scores_its_result_and_a_silent_one():
    decoder = BeamSearchDecoder(VOCAB, FD, beam_width=8)
    clear, unsure = decoder.decode(frames("hh_i_")), decoder.decode(frames("hh_i_", peak=0.5))
    assert clear.text == unsure.text == "hi"
    assert unsure.score < clear.score < 0  # the objective the search compares: surer frames score higher
    silent = decoder.decode(frames("____"))
    assert silent.text == "" and silent.score == pytest.approx(4 * math.log(0.9), abs=1e-5)
    assert decoder.decode(np.zeros((0, C), np.float32)).score == 0.0


def test_lm_fused_beam_never_erases_letters_the_acoustic_model_heard(tiny_lm):
    # Letters the LM has no word for ("zq", "k") once decoded to an empty transcript: a short real word outside
    # the LM's vocabulary came out as nothing. Now the LM may change the words, not erase them.
    for spec in (["_"] * 5 + ["z", "z", "_", "q", "q"] + ["_"] * 5, ["_"] * 8 + ["k", "k"] + ["_"] * 8):
        heard = frames(spec, peak=0.6)
        for beta in (0.0, 1.0):
            decoder = BeamSearchDecoder(VOCAB, FD, beam_width=16, lm_path=str(tiny_lm), alpha=0.5, beta=beta)
            hyp = decoder.decode(heard)
            assert hyp.text.strip() and hyp.words, (spec, beta)
            assert hyp.score is not None
            decoder.close()


# --- the blank penalty -----------------------------------------------------------------------------------


def test_penalize_blank_renormalises_and_zero_is_the_identity():
    log_probs = frames("h_i__", peak=0.7)
    assert penalize_blank(log_probs, 0.0, VOCAB.blank) is log_probs
    out = penalize_blank(log_probs, 1.0, VOCAB.blank)
    assert out.dtype == log_probs.dtype
    np.testing.assert_allclose(np.exp(out).sum(axis=1), 1.0, atol=1e-5)
    # Every other class keeps its odds against every other non-blank class; the blank loses e^1 against each.
    np.testing.assert_allclose(out[:, 0] - out[:, 1], log_probs[:, 0] - log_probs[:, 1], atol=1e-5)
    np.testing.assert_allclose(out[:, VOCAB.blank] - out[:, 1], log_probs[:, VOCAB.blank] - log_probs[:, 1] - 1.0,
                               atol=1e-5)


def test_blank_penalty_gives_back_a_letter_the_blank_narrowly_outranked():
    # A quiet "k": the blank wins every frame by a little (0.5 against 0.4), so the plain search hears nothing.
    quiet = frames(["_"] * 6 + [{"_": 0.5, "k": 0.4}] * 3 + ["_"] * 6)
    plain = BeamSearchDecoder(VOCAB, FD, beam_width=8)
    penalised = BeamSearchDecoder(VOCAB, FD, beam_width=8, blank_penalty=1.0)
    assert plain.decode(quiet).text == ""
    hyp = penalised.decode(quiet)
    assert hyp.text == "k" and [w.word for w in hyp.words] == ["k"]
    # Clear speech and clear silence do not change.
    assert penalised.decode(frames("hh_i_")).text == "hi"
    assert penalised.decode(frames("______")).text == ""
    with pytest.raises(ValueError, match="blank_penalty"):
        BeamSearchDecoder(VOCAB, FD, beam_width=8, blank_penalty=-1.0)
    # greedy: the plain path
    assert isinstance(make_decoder(VOCAB, FD, DecodingOptions(beam_width=1, blank_penalty=1.0)), GreedyDecoder)
    assert make_decoder(VOCAB, FD, DecodingOptions(beam_width=8, blank_penalty=1.0)).blank_penalty == 1.0


# --- hotwords ---------------------------------------------------------------------------------------------


def test_hotwords_tip_an_ambiguous_word_and_never_fill_silence():
    # "k" narrowly beats "c" in the first letter's frames: the plain search reads "kat".
    ambiguous = frames(["_", {"k": 0.5, "c": 0.4}, {"k": 0.5, "c": 0.4}, "_", "a", "_", "t", "_"])
    assert BeamSearchDecoder(VOCAB, FD, beam_width=16).decode(ambiguous).text == "kat"
    boosted = BeamSearchDecoder(VOCAB, FD, beam_width=16, hotwords=["cat"])
    hyp = boosted.decode(ambiguous)
    assert hyp.text == "cat" and [w.word for w in hyp.words] == ["cat"]
    assert boosted.decode(frames("______")).text == ""  # silence stays silent
    assert BeamSearchDecoder(VOCAB, FD, beam_width=16, hotwords=["cat"], hotword_weight=0.0).decode(
        ambiguous).text == "kat"
    with pytest.raises(ValueError, match="beam search"):
        make_decoder(VOCAB, FD, DecodingOptions(beam_width=1, hotwords=["cat"]))
    with pytest.raises(ValueError, match="characters"):
        BeamSearchDecoder(VOCAB, FD, beam_width=4, hotwords=["Cat!"])


def test_hotwords_overrule_the_lm_and_phrases_need_their_words_in_order(tiny_lm):
    fused = {"beam_width": 16, "lm_path": str(tiny_lm), "alpha": 0.5, "beta": 1.0}
    assert BeamSearchDecoder(VOCAB, FD, **fused).decode(NOISY).text == "the cat sat on the mat"
    boosted = BeamSearchDecoder(VOCAB, FD, **fused, hotwords=["cot"])
    assert boosted.decode(NOISY).text == "the cot sat on the mat"
    assert boosted.decode(frames(["_"] * 50, peak=0.6)).text == ""  # silence stays silent with an LM too
    # A phrase scores when its words are said in its order: "a cat" tips "kat" after "a", "cat a" does not.
    a_kat = frames(["a", "_", " ", "_", {"k": 0.5, "c": 0.4}, {"k": 0.5, "c": 0.4}, "_", "a", "_", "t", "_"])
    assert BeamSearchDecoder(VOCAB, FD, beam_width=16).decode(a_kat).text == "a kat"
    assert BeamSearchDecoder(VOCAB, FD, beam_width=16, hotwords=["a cat"]).decode(a_kat).text == "a cat"
    assert BeamSearchDecoder(VOCAB, FD, beam_width=16, hotwords=["cat a"]).decode(a_kat).text == "a kat"
