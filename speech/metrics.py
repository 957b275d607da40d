"""Word and character error rates, computed by jiwer (the field's standard implementation)."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import jiwer
import numpy as np


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


def paired_bootstrap(errors_a: Sequence[int], errors_b: Sequence[int], words: Sequence[int],
                     confidence: float = 0.95, resamples: int = 10000, seed: int = 0) -> dict[str, float]:
    """Is system B's WER different from system A's on the same utterances? (Bisani & Ney, ICASSP 2004.)

    ``errors_a[i]`` / ``errors_b[i]``: word errors of each system on utterance ``i``; ``words[i]``: its reference
    words. Utterances are resampled with replacement, the same draw for both systems (paired), and the WER difference
    ``B - A`` (total errors over total words) recomputed; SciPy's ``stats.bootstrap`` (BCa interval) does the
    resampling. Returns ``wer_a``, ``wer_b``, ``difference``, the ``low``/``high`` ends of its ``confidence``
    interval, and ``b_better``: the share of resamples in which B had fewer errors. An interval that holds zero
    means the data cannot tell the two apart.
    """
    from scipy import stats

    ea, eb, w = (np.asarray(x, dtype=np.float64) for x in (errors_a, errors_b, words))
    if not (len(ea) == len(eb) == len(w)):
        raise ValueError("errors_a, errors_b and words differ in length")
    if len(w) < 2 or w.sum() <= 0:
        raise ValueError("a paired bootstrap needs at least two utterances with reference words")

    def difference(a, b, n, axis=-1):
        return (b.sum(axis=axis) - a.sum(axis=axis)) / n.sum(axis=axis)

    diff = float(difference(ea, eb, w))
    rng = np.random.default_rng(seed)
    with warnings.catch_warnings():  # a degenerate distribution is handled below
        warnings.simplefilter("ignore", stats.DegenerateDataWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        result = stats.bootstrap((ea, eb, w), difference, paired=True, vectorized=True, n_resamples=resamples,
                                 confidence_level=confidence, method="BCa", random_state=rng)
    dist = result.bootstrap_distribution
    low, high = float(result.confidence_interval.low), float(result.confidence_interval.high)
    if not (np.isfinite(low) and np.isfinite(high)):
        # BCa divides 0 by 0 when every resample gives the same difference (A and B alike, or B's extra errors
        # proportional to each utterance's words): then the percentile interval is that difference, which for a
        # gap is not "no clear difference".
        low, high = (float(q) for q in np.quantile(dist, [(1 - confidence) / 2, (1 + confidence) / 2]))
    b_better = float(np.mean(dist < 0))
    return {"wer_a": float(ea.sum() / w.sum()), "wer_b": float(eb.sum() / w.sum()), "difference": diff,
            "low": low, "high": high, "confidence": confidence, "b_better": b_better}
