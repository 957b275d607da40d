import pytest

from speech.metrics import error_rates, utterance_errors


def test_corpus_rates_count_edits_over_reference_length():
    rates = error_rates(["hello world", "a b"], ["hello", ""])
    assert rates["wer"] == pytest.approx(3 / 4)
    assert rates["cer"] == pytest.approx(9 / 14)  # "hello world" -> "hello": 6 deletions; "a b": 3


def test_perfect_and_empty_inputs():
    assert error_rates(["same text"], ["same text"]) == {"wer": 0.0, "cer": 0.0}
    assert error_rates([], []) == {"wer": 0.0, "cer": 0.0}
    with pytest.raises(ValueError):
        error_rates(["a"], [])


def test_words_said_over_a_clip_without_speech_count_as_insertions():
    # "a b c" -> "a b x": 1 error in 3 words; the non-speech clip adds 2 inserted words (10 characters)
    rates = error_rates(["a b c", "", "d"], ["a b x", "noise here", "d"])
    assert rates["wer"] == pytest.approx(3 / 4) and rates["cer"] == pytest.approx(11 / 6)
    assert error_rates(["a b", ""], ["a b", ""]) == {"wer": 0.0, "cer": 0.0}
    # only non-speech clips: inserted words (characters) per clip
    assert error_rates(["", ""], ["x y", ""]) == {"wer": 1.0, "cer": 1.5}


def test_utterance_errors_report_counts():
    errors = utterance_errors("the cat sat", "the bat sat down")
    assert errors["word_errors"] == 2 and errors["words"] == 3
    assert errors["wer"] == pytest.approx(2 / 3)
