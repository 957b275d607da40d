"""Word and character error rates, computed by jiwer (the field's standard implementation)."""

from __future__ import annotations

from collections.abc import Sequence

import jiwer


def error_rates(references: Sequence[str], hypotheses: Sequence[str]) -> dict[str, float]:
    """Corpus-level WER and CER (total edits / total reference words or characters).

    References must be non-empty: a clip with no speech has no error rate (score it with
    :func:`non_speech_rates`). Empty hypotheses are allowed.
    """
    if len(references) != len(hypotheses):
        raise ValueError("references and hypotheses differ in length")
    if not references:
        return {"wer": 0.0, "cer": 0.0}
    if not all(r.strip() for r in references):
        raise ValueError("an empty reference has no error rate (a non-speech clip: see non_speech_rates)")
    words = jiwer.process_words(list(references), list(hypotheses))
    chars = jiwer.process_characters(list(references), list(hypotheses))
    return {"wer": float(words.wer), "cer": float(chars.cer)}


def non_speech_rates(hypotheses: Sequence[str]) -> dict[str, int]:
    """What was said over clips with no speech in them: ``clips``, ``with_words`` (clips that got any word) and
    ``words`` (in all). Zero is right."""
    counts = [len(h.split()) for h in hypotheses]
    return {"clips": len(counts), "with_words": sum(c > 0 for c in counts), "words": sum(counts)}


def utterance_errors(reference: str, hypothesis: str) -> dict[str, float]:
    """Per-utterance WER/CER with the raw counts, for reports."""
    words = jiwer.process_words(reference, hypothesis)
    chars = jiwer.process_characters(reference, hypothesis)
    return {"wer": float(words.wer), "cer": float(chars.cer),
            "word_errors": words.substitutions + words.deletions + words.insertions,
            "words": len(reference.split())}
