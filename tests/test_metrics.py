import pytest

from speech.metrics import error_rates, non_speech_rates, utterance_errors


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
