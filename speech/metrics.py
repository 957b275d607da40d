"""Word and character error rates, computed by jiwer (the field's standard implementation)."""

from __future__ import annotations

from collections.abc import Sequence

import jiwer


def error_rates(references: Sequence[str], hypotheses: Sequence[str]) -> dict[str, float]:
    """Corpus-level WER and CER (total edits / total reference words or characters).

    Empty hypotheses are allowed. An empty reference (a clip with no speech) adds every hypothesis word and
    character to the errors as insertions and nothing to the reference count; with no reference words at
    all the rates are inserted words (characters) per utterance.
    """
    if len(references) != len(hypotheses):
        raise ValueError("references and hypotheses differ in length")
    if not references:
        return {"wer": 0.0, "cer": 0.0}
    spoken = [i for i, r in enumerate(references) if r.strip()]
    inserted_words = sum(len(hypotheses[i].split()) for i, r in enumerate(references) if not r.strip())
    inserted_chars = sum(len(hypotheses[i]) for i, r in enumerate(references) if not r.strip())
    if not spoken:
        return {"wer": inserted_words / len(references), "cer": inserted_chars / len(references)}
    refs, hyps = [references[i] for i in spoken], [hypotheses[i] for i in spoken]
    words = jiwer.process_words(refs, hyps)
    chars = jiwer.process_characters(refs, hyps)
    ref_words = words.hits + words.substitutions + words.deletions
    ref_chars = chars.hits + chars.substitutions + chars.deletions
    return {"wer": (words.wer * ref_words + inserted_words) / ref_words,
            "cer": (chars.cer * ref_chars + inserted_chars) / ref_chars}


def utterance_errors(reference: str, hypothesis: str) -> dict[str, float]:
    """Per-utterance WER/CER with the raw counts, for reports."""
    words = jiwer.process_words(reference, hypothesis)
    chars = jiwer.process_characters(reference, hypothesis)
    return {"wer": float(words.wer), "cer": float(chars.cer),
            "word_errors": words.substitutions + words.deletions + words.insertions,
            "words": len(reference.split())}
