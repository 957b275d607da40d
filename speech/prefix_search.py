"""CTC prefix beam search fused with a word n-gram LM: the plain reference of the search that the SavedModel runs
in its graph (:mod:`speech.tf_prefix_search`) and that the CLI runs through that same graph.

The algorithm is pyctcdecode's (0.5), restated:

- A beam is ``(words, part, last)``: the completed words, the word being spelled, and the last frame's class (the
  blank included). It starts as ``((), "", blank)`` with acoustic score 0.
- Each frame, the classes tried are those with ``log p >= token_min_logp`` and the frame's best class. Class ``c``
  extends a beam: blank, or ``c == last``, keeps its text; a space completes ``part`` as a word (a space with no
  part changes nothing but ``last``); a letter appends to ``part``. The acoustic score adds ``log p(c)``; beams
  that become equal merge, their acoustic scores added in probability (log-sum-exp).
- A beam's total is ``acoustic + lm(words) + partial(part)``: ``lm`` sums, for each completed word,
  ``alpha * ln(10) * (log10 p(word | previous words) + unk_score_offset if the word is not in the LM) + beta``
  (the LM's context starts at ``<s>``); ``partial`` is ``unk_score_offset`` when ``part`` is no prefix of an LM
  word (times ``len(part) / 6`` past 6 letters; not scaled by ``alpha``, as pyctcdecode), else 0.
- Beams below the best total plus ``beam_prune_logp`` are dropped, and the ``beam_width`` best are kept.
- After the last frame each beam completes its part (if any) and adds ``alpha * ln(10) * log10 p(</s> | words)``;
  beams with equal words merge; the result is the best total among those within ``beam_prune_logp`` of the best
  that say at least one word, or ``None`` when none does (the caller then keeps the best path).

Hotwords (phrases of one or more words, weight ``w``; pyctcdecode's intent, restated on our beams) add to a beam's
LM score, so they steer ranking and pruning as the LM does:

- a part that is a prefix of some word of a hotword scores ``w * len(part) / len(shortest such word)`` in place of
  ``partial(part)``, so a hotword survives pruning while it is being spelled;
- completing a word (a space, or the end of the utterance) adds ``w`` for each hotword phrase that the last completed
  words equal (the last ``n`` for a phrase of ``n`` words: with hotwords "anna karenina" and "karenina", completing
  "karenina" after "anna" adds ``2 w``). pyctcdecode instead adds ``w`` per word of any hotword said anywhere.
- a word of a hotword that the LM lacks scores without ``unk_score_offset`` (the LM's ``<unk>`` probability only).
  pyctcdecode adds it: completing such a word then cost more than ``w``, so the beams that kept spelling it (at
  ``w``) pruned those that completed it, and the rest of the utterance was lost.

A weight of 0 is no hotwords. Without an LM the totals are the acoustic scores plus the hotwords'.

Ties are broken by the order of first appearance here and by hash order in the graph: on real logits exact ties do
not occur, and the tests compare on random ones.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from speech.ngram import LANE_BITS, PRIMES, NGramLM, combine_lanes
from speech.text import Vocabulary

TOKEN_MIN_LOGP = -5.0  # pyctcdecode's defaults, which the bundled model's decoding was tuned with
BEAM_PRUNE_LOGP = -10.0
UNK_SCORE_OFFSET = -10.0
AVG_WORD_LENGTH = 6  # letters; a longer unknown part costs proportionally more
LN10 = math.log(10.0)
HOTWORD_WEIGHT = 10.0  # pyctcdecode's default
# Hashing of spelled words for the graph's tables (word_and_prefix_keys): one multiplier per lane, letters 1..C-1.
CHAR_MULTIPLIERS = (131, 137)
PHRASE_MULTIPLIERS = (1000037, 999961)  # folds a word's lane into a hotword phrase's lane (phrase_keys)


def _spelled_lanes(words: list[str], vocab: Vocabulary) -> tuple[list[np.ndarray], np.ndarray]:
    """The hash lanes of every prefix of every word: ``[lane [N, L] per lane]`` (column ``j``: the first ``j + 1``
    letters) and the lengths ``[N]``. Vectorised over the words: a word list of 100k entries takes well under a
    second, where a loop over letters takes several."""
    lengths = np.array([len(w) for w in words], np.int64)
    width = max(int(lengths.max(initial=0)), 1)
    points = np.array(words, dtype=f"<U{width}").view(np.uint32).reshape(len(words), width).astype(np.int64)
    table = np.zeros(max(max(map(ord, vocab.chars)), int(points.max(initial=0))) + 1, np.int64)
    table[[ord(c) for c in vocab.chars]] = np.arange(1, len(vocab.chars) + 1)
    codes = table[points]
    # Longest words first: column j then only touches the words longer than j (the letters, not words x longest).
    order = np.argsort(-lengths, kind="stable")
    longer = np.searchsorted(-lengths[order], -np.arange(width), side="left")  # longer[j]: words with > j letters
    codes = codes[order]
    lanes = []
    for prime, mult in zip(PRIMES, CHAR_MULTIPLIERS):
        lane, column = np.zeros(len(words), np.int64), np.zeros((len(words), width), np.int64)
        for j in range(width):
            n = longer[j]
            lane[:n] = (lane[:n] * mult + codes[:n, j]) % prime
            column[:n, j] = lane[:n]
        unsorted = np.empty_like(column)
        unsorted[order] = column
        lanes.append(unsorted)
    return lanes, lengths


def word_and_prefix_keys(words: Iterable[str], vocab: Vocabulary) -> tuple[np.ndarray, np.ndarray]:
    """``(keys of words, sorted distinct keys of every non-empty prefix of them, the words included)``: int64, as the
    graph hashes the letters of a beam's part (each character is its class index + 1; the empty word is 0)."""
    words = list(words)
    if not words:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    lanes, lengths = _spelled_lanes(words, vocab)
    last, rows = np.maximum(lengths - 1, 0), np.arange(len(words))
    whole = np.where(lengths > 0, combine_lanes(*(lane[rows, last] for lane in lanes)), 0)
    inside = np.arange(lanes[0].shape[1])[None, :] < lengths[:, None]
    return whole, np.unique(combine_lanes(*(lane[inside] for lane in lanes)))


def hotword_phrases(hotwords: Iterable[str], vocab: Vocabulary) -> list[tuple[str, ...]]:
    """The distinct phrases of ``hotwords`` as word tuples, in order of first appearance (blank ones dropped);
    a ValueError names any that the vocabulary cannot spell."""
    allowed = set(vocab.chars)
    bad = [h for h in hotwords if not set(h) <= allowed]
    if bad:
        raise ValueError(f"hotwords must be spelled with the model's characters ({vocab.chars!r}): {bad}")
    return list(dict.fromkeys(tuple(h.split()) for h in hotwords if h.split()))


def hotword_prefix_lengths(phrases: Iterable[tuple[str, ...]]) -> dict[str, int]:
    """Every non-empty prefix of every word of the phrases -> the length of the shortest of those words it begins."""
    lengths: dict[str, int] = {}
    for word in {w for phrase in phrases for w in phrase}:
        for n in range(1, len(word) + 1):
            lengths[word[:n]] = min(lengths.get(word[:n], len(word)), len(word))
    return lengths


def split_key(key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The two hash lanes of keys made by :func:`speech.ngram.combine_lanes`."""
    key = np.asarray(key, np.int64)
    return key >> LANE_BITS, key & ((1 << LANE_BITS) - 1)


def phrase_keys(phrases: list[tuple[str, ...]], vocab: Vocabulary) -> np.ndarray:
    """int64 keys of word sequences, as the graph hashes a beam's last completed words: each lane starts at the
    number of words and folds in each word's lane (of :func:`word_and_prefix_keys`) plus 1."""
    keys = []
    for phrase in phrases:
        lanes = [len(phrase), len(phrase)]
        for word_lanes in zip(*split_key(word_and_prefix_keys(phrase, vocab)[0])):
            lanes = [(lane * mult + int(w) + 1) % prime
                     for lane, w, mult, prime in zip(lanes, word_lanes, PHRASE_MULTIPLIERS, PRIMES)]
        keys.append(int(combine_lanes(np.array(lanes[0]), np.array(lanes[1]))))
    return np.array(keys, np.int64)


def spellable_words(lm: NGramLM, vocab: Vocabulary) -> list[tuple[str, int]]:
    """``(word, id)`` of the LM's words that the vocabulary can spell (not ``<s>``, ``</s>``, ``<unk>``)."""
    allowed = set(vocab.chars) - {" "}
    return [(w, i) for i, w in enumerate(lm.words) if w and set(w) <= allowed]


def word_prefixes(lm: NGramLM, vocab: Vocabulary) -> set[str]:
    """Every non-empty prefix of every spellable LM word (the words included): pyctcdecode's character trie."""
    return {w[:n] for w, _ in spellable_words(lm, vocab) for n in range(1, len(w) + 1)}


def _log_add(a: float, b: float) -> float:
    if a < b:
        a, b = b, a
    return a if b == -math.inf else a + math.log1p(math.exp(b - a))


def word_log10(lm: NGramLM, context: tuple[int, ...], word: str,
               unk_score_offset: float = UNK_SCORE_OFFSET) -> tuple[float, int]:
    """``(log10 p(word | context), plus unk_score_offset for a word the LM lacks; the word's id)``."""
    word_id = lm.word_id(word)
    return lm.log10_prob(context, word_id) + (unk_score_offset if word_id == lm.unk else 0.0), word_id


def unknown_part_score(part: str, prefixes: set[str], unk_score_offset: float = UNK_SCORE_OFFSET) -> float:
    """The score of a word being spelled: 0 when empty or a prefix of an LM word (``prefixes``), else
    ``unk_score_offset``, times ``len(part) / 6`` past 6 letters (not scaled by alpha, as pyctcdecode)."""
    if not part or part in prefixes:
        return 0.0
    return unk_score_offset * max(1.0, len(part) / AVG_WORD_LENGTH)


class _LMScorer:
    """Cumulative LM (and hotword) scores of word sequences, cached by sequence (words -> (score, context ids))."""

    def __init__(self, lm: NGramLM | None, vocab: Vocabulary, alpha: float, beta: float, unk_score_offset: float,
                 hotwords: list[tuple[str, ...]], hotword_weight: float):
        self.lm, self.alpha, self.beta, self.unk = lm, alpha, beta, unk_score_offset
        self.prefixes = word_prefixes(lm, vocab) if lm is not None else set()
        self.phrases, self.weight = set(hotwords), hotword_weight
        self.hot_prefixes = hotword_prefix_lengths(hotwords)
        self.hot_words = {w for phrase in hotwords for w in phrase}
        self.longest = max(map(len, hotwords), default=0)
        self.cache: dict[tuple[str, ...], tuple[float, tuple[int, ...]]] = {
            (): (0.0, (lm.bos,) if lm is not None else ())}

    def words(self, words: tuple[str, ...]) -> tuple[float, tuple[int, ...]]:
        if words not in self.cache:
            score, context = self.words(words[:-1])
            if self.lm is not None:
                unk = 0.0 if words[-1] in self.hot_words else self.unk
                log10, word_id = word_log10(self.lm, context, words[-1], unk)
                score, context = score + self.alpha * LN10 * log10 + self.beta, (*context, word_id)
            if self.phrases:
                matched = sum(words[-n:] in self.phrases for n in range(1, min(self.longest, len(words)) + 1))
                score += self.weight * matched
            self.cache[words] = (score, context)
        return self.cache[words]

    def total(self, words: tuple[str, ...]) -> float:
        return 0.0 if self.lm is None and not self.phrases else self.words(words)[0]

    def partial(self, part: str) -> float:
        if part in self.hot_prefixes:
            return self.weight * len(part) / self.hot_prefixes[part]
        return 0.0 if self.lm is None else unknown_part_score(part, self.prefixes, self.unk)

    def end(self, words: tuple[str, ...]) -> float:
        if self.lm is None:
            return self.total(words)
        score, context = self.words(words)
        return score + self.alpha * LN10 * self.lm.log10_prob(context, self.lm.eos)


def prefix_beam_search(
    log_probs: np.ndarray,
    vocab: Vocabulary,
    lm: NGramLM | None = None,
    alpha: float = 0.5,
    beta: float = 1.0,
    beam_width: int = 128,
    beam_prune_logp: float = BEAM_PRUNE_LOGP,
    token_min_logp: float = TOKEN_MIN_LOGP,
    unk_score_offset: float = UNK_SCORE_OFFSET,
    hotwords: Iterable[str] = (),
    hotword_weight: float = HOTWORD_WEIGHT,
) -> tuple[str, float] | None:
    """``(text, total score)`` of the best beam that says a word, for ``log_probs [T, C]`` (log-softmax, blank
    last); ``None`` when no surviving beam says a word. ``hotwords``: phrases, words separated by spaces. The module
    docstring defines the search."""
    log_probs = np.asarray(log_probs, np.float64)
    blank, space = vocab.blank, vocab.chars.index(" ")
    phrases = hotword_phrases(hotwords, vocab) if hotword_weight else []
    scorer = _LMScorer(lm, vocab, alpha, beta, unk_score_offset, phrases, hotword_weight)
    beams: dict[tuple[tuple[str, ...], str, int], float] = {((), "", blank): 0.0}
    for row in log_probs:
        classes = [c for c in range(len(row)) if row[c] >= token_min_logp or c == int(np.argmax(row))]
        extended: dict[tuple[tuple[str, ...], str, int], float] = {}
        for (words, part, last), acoustic in beams.items():
            for c in classes:
                if c == blank or c == last:
                    key = (words, part, c)
                elif c == space:
                    key = ((*words, part) if part else words, "", c)
                else:
                    key = (words, part + vocab.chars[c], c)
                score = acoustic + float(row[c])
                extended[key] = _log_add(extended[key], score) if key in extended else score
        totals = {key: ac + scorer.total(key[0]) + scorer.partial(key[1]) for key, ac in extended.items()}
        floor = max(totals.values()) + beam_prune_logp
        kept = sorted((key for key in extended if totals[key] >= floor), key=lambda k: -totals[k])[:beam_width]
        beams = {key: extended[key] for key in kept}
    final: dict[tuple[str, ...], float] = {}
    for (words, part, _), acoustic in beams.items():
        words = (*words, part) if part else words
        final[words] = _log_add(final[words], acoustic) if words in final else acoustic
    totals = {words: ac + scorer.end(words) for words, ac in final.items()}
    floor = max(totals.values()) + beam_prune_logp
    spoken = [(total, words) for words, total in totals.items() if words and total >= floor]
    if not spoken:
        return None
    total, words = max(spoken, key=lambda item: item[0])
    return " ".join(words), total
