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
    rng = np.random.default_rng(1)
    words = rng.integers(3, 15, 300)
    errors_a = rng.binomial(words, rng.uniform(0, 0.9, 300))  # utterances vary far more than the two systems
    errors_b = errors_a.copy()
    errors_b[:30] += 1  # B: A's errors plus one on a tenth of the utterances
    worse = paired_bootstrap(errors_a, errors_b, words)
    assert worse["low"] > 0 and worse["b_better"] == 0
    # Resampled unpaired (each system's utterances drawn on their own), the same gap is lost in the spread.
    draws = rng.integers(0, 300, (2000, 2, 300))
    unpaired = (errors_b[draws[:, 1]].sum(1) - errors_a[draws[:, 0]].sum(1)) / words.sum()
    assert np.quantile(unpaired, 0.025) < 0 < np.quantile(unpaired, 0.975)
    assert paired_bootstrap(errors_a, errors_a + 1, words, seed=3) == paired_bootstrap(errors_a, errors_a + 1, words,
                                                                                       seed=3)
    same = paired_bootstrap(errors_a, errors_a, words)
    assert same["difference"] == same["low"] == same["high"] == 0


def test_paired_bootstrap_of_a_constant_gap_is_that_gap_not_no_difference():
    # B makes one more error per five words on every utterance: every resample gives the same difference, where
    # the BCa interval is undefined (NaN), which must not read as "no clear difference".
    worse = paired_bootstrap([0] * 5, [1] * 5, [5] * 5)
    assert worse["low"] == worse["high"] == pytest.approx(0.2) and worse["b_better"] == 0
    better = paired_bootstrap([1] * 5, [0] * 5, [5] * 5)
    assert better["low"] == better["high"] == pytest.approx(-0.2) and better["b_better"] == 1


def test_paired_bootstrap_refuses_what_it_cannot_score():
    with pytest.raises(ValueError, match="length"):
        paired_bootstrap([1, 2], [1], [3, 3])
    with pytest.raises(ValueError, match="at least two"):
        paired_bootstrap([1], [0], [3])
