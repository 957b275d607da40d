import numpy as np
import pytest

from speech.metrics import error_rates, non_speech_rates, paired_bootstrap, utterance_errors


def test_corpus_rates_count_edits_over_reference_length():
    rates = error_rates(["hello world", "a b"], ["hello", ""])
    assert rates["wer"] == pytest.approx(3 / 4)
    assert rates["cer"] == pytest.approx(9 / 14)  # "hello world" -> "hello": 6 deletions; "a b": 3


def test_perfect_and_empty_inputs():
    assert error_rates(["same text"], ["same text"]) == {"wer": 0.0, "cer": 0.0}
    assert error_rates([], []) == {"wer": 0.0, "cer": 0.0}
    with pytest.raises(ValueError):
        error_rates(["a"], [])


def test_a_clip_without_speech_has_no_error_rate_but_its_words_are_counted():
    with pytest.raises(ValueError, match="non-speech"):
        error_rates(["a b", " "], ["a b", "noise"])
    assert non_speech_rates(["", "two words", "one", ""]) == {"clips": 4, "with_words": 2, "words": 3}
    assert non_speech_rates([]) == {"clips": 0, "with_words": 0, "words": 0}


def test_utterance_errors_report_counts():
    errors = utterance_errors("the cat sat", "the bat sat down")
    assert errors["word_errors"] == 2 and errors["words"] == 3
    assert errors["wer"] == pytest.approx(2 / 3)


def _two_systems(rate_a: float, rate_b: float, utterances: int = 400):
    rng = np.random.default_rng(7)
    words = rng.integers(3, 15, utterances)
    return rng.binomial(words, rate_a), rng.binomial(words, rate_b), words


def test_paired_bootstrap_finds_a_real_gap_and_not_a_tiny_one():
    errors_a, errors_b, words = _two_systems(0.30, 0.15)
    result = paired_bootstrap(errors_a, errors_b, words)
    assert result["difference"] == pytest.approx(result["wer_b"] - result["wer_a"])
    assert result["low"] < result["difference"] < result["high"] < 0 and result["b_better"] > 0.99
    # One utterance with one error fewer out of thousands of words is not evidence of anything.
    nudged = errors_a.copy()
    nudged[np.argmax(nudged)] -= 1
    close = paired_bootstrap(errors_a, nudged, words)
    assert close["low"] < 0 < close["high"] or close["high"] == 0


def test_paired_bootstrap_is_paired_and_reproducible():
    errors_a, _, words = _two_systems(0.30, 0.30)
    # B makes exactly A's errors plus one on every utterance: unpaired resampling would give a wide interval that
    # holds zero; paired, every resample shows B worse.
    worse = paired_bootstrap(errors_a, errors_a + 1, words)
    assert worse["low"] > 0 and worse["b_better"] == 0
    assert paired_bootstrap(errors_a, errors_a + 1, words, seed=3) == paired_bootstrap(errors_a, errors_a + 1, words,
                                                                                       seed=3)
    same = paired_bootstrap(errors_a, errors_a, words)
    assert same["difference"] == same["low"] == same["high"] == 0


def test_paired_bootstrap_refuses_what_it_cannot_score():
    with pytest.raises(ValueError, match="length"):
        paired_bootstrap([1, 2], [1], [3, 3])
    with pytest.raises(ValueError, match="at least two"):
        paired_bootstrap([1], [0], [3])
