"""Word and character error rates, computed by jiwer (the field's standard implementation)."""

from __future__ import annotations

from collections.abc import Sequence

import jiwer


def error_rates(references: Sequence[str], hypotheses: Sequence[str]) -> dict[str, float]:
    """Corpus-level WER and CER (total edits / total reference words or characters).

    References must be non-empty (the data pipeline guarantees it); empty hypotheses are allowed.
    """
    if len(references) != len(hypotheses):
        raise ValueError("references and hypotheses differ in length")
    if not references:
        return {"wer": 0.0, "cer": 0.0}
    words = jiwer.process_words(list(references), list(hypotheses))
    chars = jiwer.process_characters(list(references), list(hypotheses))
    return {"wer": float(words.wer), "cer": float(chars.cer)}


def utterance_errors(reference: str, hypothesis: str) -> dict[str, float]:
    """Per-utterance WER/CER with the raw counts, for reports."""
    words = jiwer.process_words(reference, hypothesis)
    chars = jiwer.process_characters(reference, hypothesis)
    return {"wer": float(words.wer), "cer": float(chars.cer),
            "word_errors": words.substitutions + words.deletions + words.insertions,
            "words": len(reference.split())}
