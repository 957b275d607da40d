"""The LM-fused CTC prefix beam search of :mod:`speech.prefix_search` as TensorFlow graph ops (stock ops only: a
``tf.while_loop`` over frames, hash tables for the LM), batched over utterances and beams; and the forced alignment
of :func:`speech.decoding.ctc_align`, for word timings. The SavedModel runs both in its graph; the CLI runs the
search through the same function.

A beam's text is kept as hashes (two 31-bit lanes each for the completed words and the part being spelled, as
:func:`speech.prefix_search.word_and_prefix_keys`), so beams merge and LM lookups happen on integers; the letters
come back at the end by following each step's back-pointers from the best beam.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from speech.ngram import LANE_BITS, PRIMES, WORD_ID_MULTIPLIERS, NGramLM
from speech.prefix_search import (
    AVG_WORD_LENGTH,
    BEAM_PRUNE_LOGP,
    CHAR_MULTIPLIERS,
    LN10,
    PHRASE_MULTIPLIERS,
    TOKEN_MIN_LOGP,
    UNK_SCORE_OFFSET,
    hotword_phrases,
    hotword_prefix_lengths,
    phrase_keys,
    spellable_words,
    word_and_prefix_keys,
)
from speech.text import Vocabulary

TEXT_MULTIPLIERS = (1000033, 999979)  # folds a completed word's lane into the text's lane
KEY_CLASSES = 64  # room for the last class in a beam's merge key
ROW_SLOTS = 1 << 16  # the row mixed into a merge key's first lane


@dataclass(frozen=True)
class SearchSettings:
    """The search's numbers (:func:`speech.prefix_search.prefix_beam_search` has the same); ``alpha`` and ``beta``
    may be scalar float64 tensors."""

    alpha: float | tf.Tensor = 0.5
    beta: float | tf.Tensor = 1.0
    beam_width: int = 128
    beam_prune_logp: float = BEAM_PRUNE_LOGP
    token_min_logp: float = TOKEN_MIN_LOGP
    unk_score_offset: float = UNK_SCORE_OFFSET


class LMTables(tf.Module):
    """The LM as lookup tables: spelled word -> word id, spelled prefix -> known, n-gram key -> row of the
    probability and back-off arrays. As a tf.Module its tables are saved with a SavedModel that holds it."""

    def __init__(self, lm: NGramLM, vocab: Vocabulary):
        super().__init__(name="lm_tables")
        words = spellable_words(lm, vocab)
        self.order, self.unk, self.bos, self.eos, self.id_bits = lm.order, lm.unk, lm.bos, lm.eos, lm.id_bits
        whole, prefixes = word_and_prefix_keys([w for w, _ in words], vocab)
        self.word_ids = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(tf.constant(whole), tf.constant([i for _, i in words], tf.int32)),
            default_value=lm.unk)
        self.prefixes = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(tf.constant(prefixes), tf.ones(len(prefixes), tf.int32)),
            default_value=0)
        keys, probs, backoffs = lm.table()
        self.ngrams = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(tf.constant(keys), tf.range(len(keys), dtype=tf.int32)),
            default_value=len(keys))
        self.unlisted = len(keys)  # the row an n-gram that is not listed reads: the 0 appended to each array
        # float32 as in the LM file (half the export's size), float64 in the sums.
        self.probs = tf.constant(np.append(probs, 0.0).astype(np.float32))
        self.backoffs = tf.constant(np.append(backoffs, 0.0).astype(np.float32))

    def _ngram(self, ids: list[tf.Tensor]) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """(listed, log10 prob, log10 back-off) of the n-grams ``ids`` (oldest first); an id < 0 is no word.
        The keys are :func:`speech.ngram.ngram_keys`'."""
        if self.id_bits is not None:
            bits = tf.constant(self.id_bits, tf.int64)
            keys = tf.zeros(tf.shape(ids[0]), tf.int64)
            for word in ids:
                keys = tf.bitwise.bitwise_or(tf.bitwise.left_shift(keys, bits), tf.cast(word, tf.int64) + 1)
            keys = tf.bitwise.bitwise_or(keys, tf.constant(len(ids) << (self.order * self.id_bits), tf.int64))
        else:
            lanes = []
            for prime, mult in zip(PRIMES, WORD_ID_MULTIPLIERS):
                lane = tf.fill(tf.shape(ids[0]), tf.constant(len(ids), tf.int64))
                for word in ids:
                    lane = (lane * mult + tf.cast(word, tf.int64) + 1) % prime
                lanes.append(lane)
            keys = _key(lanes[0], lanes[1])
        some_missing = tf.reduce_any(tf.stack([w < 0 for w in ids]), axis=0) if len(ids) > 1 else ids[0] < 0
        keys = tf.where(some_missing, tf.constant(-1, tf.int64), keys)
        row = self.ngrams.lookup(keys)
        listed = row < self.unlisted
        prob, backoff = tf.gather(self.probs, row), tf.gather(self.backoffs, row)
        return listed, tf.cast(prob, tf.float64), tf.cast(backoff, tf.float64)

    def log10_prob(self, context: tf.Tensor, word: tf.Tensor) -> tf.Tensor:
        """``log10 p(word | context)``: ``context [..., order - 1]`` (word ids, oldest first, -1 for none)."""
        _, score, _ = self._ngram([word])
        for n in range(2, self.order + 1):
            history = [context[..., self.order - n + j] for j in range(n - 1)]
            listed, prob, _ = self._ngram([*history, word])
            _, _, backoff = self._ngram(history)
            score = tf.where(listed, prob, score + backoff)
        return score


class HotwordTables(tf.Module):
    """Hotwords (phrases, words separated by spaces) and their weight as lookup tables: spelled prefix of a hotword's
    word -> the length of the shortest such word, phrase key (:func:`speech.prefix_search.phrase_keys`) -> 1.
    Beams keep the keys of their last ``history`` completed words to match phrases of more than one word."""

    def __init__(self, hotwords: list[str] | tuple[str, ...], vocab: Vocabulary, weight: float):
        super().__init__(name="hotword_tables")
        phrases = hotword_phrases(hotwords, vocab)
        if not phrases:
            raise ValueError("no hotwords")
        self.weight = float(weight)
        self.lengths = sorted({len(p) for p in phrases})
        self.history = self.lengths[-1] - 1
        prefixes = hotword_prefix_lengths(phrases)
        keys, _ = word_and_prefix_keys(list(prefixes), vocab)
        self.prefixes = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(tf.constant(keys), tf.constant(list(prefixes.values()), tf.int32)),
            default_value=0)
        self.phrases = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(tf.constant(phrase_keys(phrases, vocab)),
                                                tf.ones(len(phrases), tf.int32)), default_value=0)

    def partial(self, part1: tf.Tensor, part2: tf.Tensor, plen: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """``(length of the shortest hotword's word it begins, 0: none; its score)`` of parts given by their lanes
        and lengths. A part is a hotword's word where that length is its own."""
        shortest = self.prefixes.lookup(_key(part1, part2))
        score = self.weight * tf.cast(plen, tf.float64) / tf.cast(tf.maximum(shortest, 1), tf.float64)
        return shortest, score

    def complete(self, recent: tf.Tensor | None, part1: tf.Tensor, part2: tf.Tensor
                 ) -> tuple[tf.Tensor, tf.Tensor | None]:
        """``(bonus, recent words)`` when the parts ``part1``, ``part2`` complete a word: ``weight`` per phrase that
        the last words equal; ``recent [..., history]`` the earlier words' keys (oldest first; -1: none)."""
        mask = tf.constant((1 << LANE_BITS) - 1, tf.int64)
        shift = tf.constant(LANE_BITS, tf.int64)
        words = [(tf.bitwise.right_shift(recent[..., j], shift), tf.bitwise.bitwise_and(recent[..., j], mask))
                 for j in range(self.history)] + [(part1, part2)]
        matched = tf.zeros(tf.shape(part1), tf.int32)
        for n in self.lengths:
            lanes = []
            for lane, (prime, mult) in enumerate(zip(PRIMES, PHRASE_MULTIPLIERS)):
                value = tf.fill(tf.shape(part1), tf.constant(n, tf.int64))
                for word in words[len(words) - n:]:
                    value = (value * mult + word[lane] + 1) % prime
                lanes.append(value)
            found = self.phrases.lookup(_key(*lanes)) > 0
            if n > 1:  # the beam has said fewer words than the phrase has
                found &= recent[..., self.history - n + 1] >= 0
            matched += tf.cast(found, tf.int32)
        bonus = self.weight * tf.cast(matched, tf.float64)
        if not self.history:
            return bonus, recent
        return bonus, tf.concat([recent[..., 1:], _key(part1, part2)[..., None]], axis=-1)


def _key(lane1: tf.Tensor, lane2: tf.Tensor) -> tf.Tensor:
    return tf.bitwise.bitwise_or(tf.bitwise.left_shift(lane1, tf.constant(LANE_BITS, tf.int64)), lane2)


def _lanes_of_letter(lane1: tf.Tensor, lane2: tf.Tensor, code: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    return ((lane1 * CHAR_MULTIPLIERS[0] + code) % PRIMES[0], (lane2 * CHAR_MULTIPLIERS[1] + code) % PRIMES[1])


def _merge(keys: tf.Tensor, scores: tf.Tensor, valid: tf.Tensor) -> tf.Tensor:
    """Rows of candidates ``[B, N]`` whose ``keys`` already tell rows apart (:func:`_row_lane`): at the first valid
    candidate of each key in its row, the log-sum-exp of the scores of that key's valid candidates; -inf elsewhere.
    Equal keys are found by hashing (``tf.unique``) the valid candidates only, often under half of them."""
    shape = tf.shape(keys)
    where = tf.where(tf.reshape(valid, [-1]))
    _, group = tf.unique(tf.gather_nd(tf.reshape(keys, [-1]), where), out_idx=tf.int32)
    scores = tf.gather_nd(tf.reshape(scores, [-1]), where)
    count = tf.size(scores)
    top = tf.math.unsorted_segment_max(scores, group, count)
    top = tf.where(tf.math.is_finite(top), top, tf.zeros_like(top))
    total = tf.math.unsorted_segment_sum(tf.exp(scores - tf.gather(top, group)), group, count)
    merged = tf.gather(tf.math.log(total) + top, group)
    position = tf.range(count)
    first = tf.equal(tf.gather(tf.math.unsorted_segment_min(position, group, count), group), position)
    minus_inf = tf.fill([tf.reduce_prod(shape)], tf.constant(-np.inf, tf.float64))
    out = tf.tensor_scatter_nd_update(minus_inf, where, tf.where(first, merged, tf.constant(-np.inf, tf.float64)))
    return tf.reshape(out, shape)


def _row_lane(lane: tf.Tensor, rows: tf.Tensor) -> tf.Tensor:
    """A first key lane that also says the row (``rows`` broadcast against ``lane``): one-to-one within a row,
    so rows merge nothing they did not merge before, and keys of different rows collide only by hash chance."""
    return (lane * ROW_SLOTS + rows) % PRIMES[0]


@dataclass
class Search:
    """What a decoding graph needs for the LM-fused search: its numbers, the blank penalty applied before it, and
    the LM's tables (None: the search without an LM)."""

    settings: SearchSettings
    blank_penalty: float = 0.0
    tables: LMTables | None = None


def prefix_beam_search(log_probs: tf.Tensor, lengths: tf.Tensor, vocab: Vocabulary, settings: SearchSettings,
                       tables: LMTables | None = None, hotwords: HotwordTables | None = None
                       ) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]:
    """``log_probs [B, T, C]`` (log-softmax, blank last) and ``lengths [B]`` -> ``(text [B] string, total [B]
    float64, found [B] bool, letters [B, T'] int32)``: the best beam that says a word, as
    :func:`speech.prefix_search.prefix_beam_search` (``found`` false where that returns None; the text is then
    empty), and its classes in order (letters and the spaces between words; -1 fills the rest). ``hotwords``
    (None: none) add their scores as that function's ``hotwords`` and ``hotword_weight`` do."""
    hot = hotwords if hotwords is not None and hotwords.weight else None  # weight 0: no hotwords
    log_probs = tf.cast(log_probs, tf.float64)
    lengths = tf.cast(lengths, tf.int32)
    # At least one frame, so that the loops' arrays are never empty (a row of length 0 ignores it).
    log_probs = tf.pad(log_probs, [[0, 0], [0, tf.maximum(1 - tf.shape(log_probs)[1], 0)], [0, 0]])
    # Longest rows first: at every frame the rows still speaking are the first few, and only they are searched (a
    # batch's rows end at different frames; the ended ones would otherwise cost as much as the rest).
    order = tf.argsort(lengths, direction="DESCENDING", stable=True)
    log_probs, lengths = tf.gather(log_probs, order), tf.gather(lengths, order)
    batch, num_frames = tf.shape(log_probs)[0], tf.shape(log_probs)[1]
    width, blank, space = settings.beam_width, vocab.blank, vocab.chars.index(" ")
    context_size = max(tables.order - 1, 1) if tables is not None else 1
    alpha_ln10 = settings.alpha * LN10
    zeros64 = tf.zeros([batch, width], tf.int64)
    rows = tf.range(tf.cast(batch, tf.int64))[:, None]

    # The state that completing a word changes besides the text: the LM's context, the hotwords' recent words.
    scored = ["lm", *(["context"] if tables is not None else []), *(["recent"] if hot is not None and hot.history
                                                                    else [])]

    def complete_word(state, need: tf.Tensor | None = None):
        """Per beam, what completing its part as a word gives: the text lanes and the ``scored`` state (the lm
        total, ...). With ``need`` ([B, K] bool), the LM scores only those beams (the others keep their own): in
        most frames few beams can complete a word, as a space is tried in about one row-frame in ten."""
        text1, text2 = state["text1"], state["text2"]
        done = {"text1": (text1 * TEXT_MULTIPLIERS[0] + state["part1"] + 1) % PRIMES[0],
                "text2": (text2 * TEXT_MULTIPLIERS[1] + state["part2"] + 1) % PRIMES[1]}
        if tables is None and hot is None:
            return {**done, "lm": state["lm"]}
        where = tf.where(need) if need is not None else None

        def pick(x):
            return x if where is None else tf.gather_nd(x, where)

        new = {name: pick(state[name]) for name in scored}
        part1, part2, plen = pick(state["part1"]), pick(state["part2"]), pick(state["plen"])
        if tables is not None:
            word = tables.word_ids.lookup(_key(part1, part2))
            context = new["context"]
            log10 = tables.log10_prob(context, word)
            unknown = tf.equal(word, tables.unk)
            if hot is not None:  # a hotword's word is no unknown word
                unknown &= tf.not_equal(hot.partial(part1, part2, plen)[0], plen)
            log10 += tf.where(unknown, tf.constant(settings.unk_score_offset, tf.float64),
                              tf.constant(0.0, tf.float64))
            new["lm"] = new["lm"] + alpha_ln10 * log10 + settings.beta
            new["context"] = tf.concat([context[..., 1:], word[..., None]], axis=-1)
        if hot is not None:
            bonus, recent = hot.complete(new.get("recent"), part1, part2)
            new["lm"] += bonus
            if hot.history:
                new["recent"] = recent
        if where is not None:
            new = {name: tf.tensor_scatter_nd_update(state[name], where, value) for name, value in new.items()}
        return {**done, **new}

    def step(t, all_rows, parents, emits):
        speaking = tf.reduce_sum(tf.cast(t < lengths, tf.int32))
        state = {name: value[:speaking] for name, value in all_rows.items()}
        batch, rows = speaking, tf.range(tf.cast(speaking, tf.int64))[:, None]
        # Only the classes tried in some row of this frame become candidates (often 1-3 of the C): the rows' classes
        # in descending order, as many as the row that tries most; those a row does not try are invalid there.
        frame = log_probs[:speaking, t, :]  # [B, C]
        tried_count = tf.reduce_sum(tf.cast(frame >= settings.token_min_logp, tf.int32), axis=1)
        num_tried = tf.maximum(tf.reduce_max(tried_count), 1)
        values, top_classes = tf.math.top_k(frame, k=num_tried)  # [B, M]
        tried = (values >= settings.token_min_logp) | (tf.range(num_tried)[None, :] < 1)
        space_tried = tf.reduce_any(tried & tf.equal(top_classes, space), axis=1)
        plen = state["plen"]
        done = complete_word(state, state["valid"] & (plen > 0) & space_tried[:, None])
        # What a space gives each beam: the part completed as a word, or nothing when there is no part.
        has_part = plen > 0
        space_lm = tf.where(has_part, done["lm"], state["lm"])
        space_text1 = tf.where(has_part, done["text1"], state["text1"])
        space_text2 = tf.where(has_part, done["text2"], state["text2"])

        # Every candidate [B, K, M] (beam k followed by class m) gets only what choosing the beams needs: its merge
        # key and its score. The chosen K then take the rest of their state from their parents.
        classes = top_classes[:, None, :]
        codes = tf.cast(classes, tf.int64) + 1
        same = tf.equal(classes, blank) | tf.equal(classes, state["last"][..., None])
        is_space = tf.logical_not(same) & tf.equal(classes, space)
        is_letter = tf.logical_not(same | is_space)
        letter1, letter2 = _lanes_of_letter(state["part1"][..., None], state["part2"][..., None], codes)
        lm_partial = (state["lm"] + state["partial"])[..., None]
        valid = state["valid"][..., None] & tried[:, None, :]
        if tables is not None or hot is not None:
            # Looked up for the valid letters only, often under half of the candidates.
            where = tf.where(valid & is_letter)
            valid_letter1, valid_letter2 = tf.gather_nd(letter1, where), tf.gather_nd(letter2, where)
            letter_shape = tf.shape(letter1, tf.int64)
        if tables is not None:
            known = tf.scatter_nd(where, tables.prefixes.lookup(_key(valid_letter1, valid_letter2)), letter_shape) > 0
            unknown_letter = settings.unk_score_offset * tf.maximum(
                tf.constant(1.0, tf.float64), tf.cast(plen + 1, tf.float64) / AVG_WORD_LENGTH)
            letter_partial = tf.where(known, tf.constant(0.0, tf.float64), unknown_letter[..., None])
        else:
            letter_partial = tf.zeros(tf.shape(letter1), tf.float64)
        if hot is not None:
            # A hotword's prefix scores as the hotword, in place of the LM's unknown-part penalty.
            shortest, hot_score = hot.partial(valid_letter1, valid_letter2, tf.gather_nd(plen, where[:, :2]) + 1)
            letter_partial = tf.where(tf.scatter_nd(where, shortest, letter_shape) > 0,
                                      tf.scatter_nd(where, hot_score, letter_shape), letter_partial)
        if tables is not None or hot is not None:
            letter_extra = state["lm"][..., None] + letter_partial
        else:
            letter_extra = state["lm"][..., None]
        extra = tf.where(is_letter, letter_extra, tf.where(is_space, space_lm[..., None], lm_partial))
        acoustic = tf.where(valid, state["acoustic"][..., None] + values[:, None, :], tf.constant(-np.inf, tf.float64))
        # The merge key: text, part and last class, mixed by multiplication (a short word's lanes are small numbers,
        # which XOR alone would let collide); an invalid candidate gets a key of its own (negative).
        def merge_lane(lane):
            text, part, letter, space_text = (state[f"text{lane}"], state[f"part{lane}"], (letter1, letter2)[lane - 1],
                                              (space_text1, space_text2)[lane - 1])
            prime, mult = PRIMES[lane - 1], TEXT_MULTIPLIERS[lane - 1]
            text_part = tf.where(is_letter, (text[..., None] * mult + letter) % prime,
                                 tf.where(is_space, (space_text * mult % prime)[..., None],
                                          ((text * mult + part) % prime)[..., None]))
            return (text_part * KEY_CLASSES + codes) % prime

        key1, key2 = _row_lane(merge_lane(1), rows[..., None]), merge_lane(2)
        flat = width * num_tried
        merged = _merge(tf.reshape(_key(key1, key2), [batch, flat]), tf.reshape(acoustic, [batch, flat]),
                        tf.reshape(valid, [batch, flat]))
        total = merged + tf.reshape(extra, [batch, flat])
        floor = tf.reduce_max(total, axis=1, keepdims=True) + settings.beam_prune_logp
        total = tf.where(total >= floor, total, tf.constant(-np.inf, tf.float64))
        best_total, source = tf.math.top_k(total, k=width, sorted=True)  # flat candidate index

        # The chosen beams' state, from their parents and classes.
        parent, column = source // num_tried, source % num_tried

        def of_parent(x):
            return tf.gather(x, parent, batch_dims=1)

        cls = tf.gather(top_classes, column, batch_dims=1)  # [B, K]
        last, part1, part2, parent_plen = of_parent(state["last"]), of_parent(state["part1"]), of_parent(
            state["part2"]), of_parent(plen)
        chose_same = tf.equal(cls, blank) | tf.equal(cls, last)
        chose_space = tf.logical_not(chose_same) & tf.equal(cls, space)
        chose_letter = tf.logical_not(chose_same | chose_space)
        complete = chose_space & (parent_plen > 0)
        new_part1, new_part2 = _lanes_of_letter(part1, part2, tf.cast(cls, tf.int64) + 1)
        zero64 = tf.constant(0, tf.int64)
        if tables is not None or hot is not None:
            chosen_partial = tf.gather(tf.reshape(letter_partial, [batch, flat]), source, batch_dims=1)
        else:
            chosen_partial = tf.zeros([batch, width], tf.float64)
        new_state = {
            "valid": tf.math.is_finite(best_total),
            "acoustic": tf.gather(merged, source, batch_dims=1),
            "lm": tf.where(complete, of_parent(done["lm"]), of_parent(state["lm"])),
            "partial": tf.where(chose_letter, chosen_partial,
                                tf.where(chose_space, tf.constant(0.0, tf.float64), of_parent(state["partial"]))),
            "last": cls,
            "text1": tf.where(complete, of_parent(done["text1"]), of_parent(state["text1"])),
            "text2": tf.where(complete, of_parent(done["text2"]), of_parent(state["text2"])),
            "part1": tf.where(chose_letter, new_part1, tf.where(chose_space, zero64, part1)),
            "part2": tf.where(chose_letter, new_part2, tf.where(chose_space, zero64, part2)),
            "plen": tf.where(chose_letter, parent_plen + 1, tf.where(chose_space, 0, parent_plen)),
            "words": of_parent(state["words"]) + tf.cast(complete, tf.int32),
            "context": tf.where(complete[..., None], of_parent(done["context"]), of_parent(state["context"]))
            if tables is not None else of_parent(state["context"]),
        }
        if "recent" in scored:
            new_state["recent"] = tf.where(complete[..., None], of_parent(done["recent"]), of_parent(state["recent"]))
        emit = tf.where(chose_letter, cls, tf.where(complete, space, -1))
        ended = tf.shape(lengths)[0] - speaking  # rows whose audio has ended keep their beams
        parents = parents.write(t, tf.concat([parent, tf.tile(tf.range(width)[None, :], [ended, 1])], axis=0))
        emits = emits.write(t, tf.concat([emit, tf.fill([ended, width], -1)], axis=0))
        all_rows = {name: tf.concat([new_state[name], value[speaking:]], axis=0) for name, value in all_rows.items()}
        return t + 1, all_rows, parents, emits

    first_beam = tf.range(width)[None, :] < 1
    state = {
        "valid": tf.broadcast_to(first_beam, [batch, width]),
        "acoustic": tf.where(first_beam, tf.constant(0.0, tf.float64), tf.constant(-np.inf, tf.float64))
        + tf.zeros([batch, width], tf.float64),
        "lm": tf.zeros([batch, width], tf.float64), "partial": tf.zeros([batch, width], tf.float64),
        "last": tf.fill([batch, width], blank), "text1": zeros64, "text2": zeros64, "part1": zeros64,
        "part2": zeros64, "plen": tf.zeros([batch, width], tf.int32), "words": tf.zeros([batch, width], tf.int32),
        "context": tf.concat([tf.fill([batch, width, context_size - 1], -1),
                              tf.fill([batch, width, 1], tables.bos if tables is not None else -1)], axis=-1),
    }
    if "recent" in scored:
        state["recent"] = tf.fill([batch, width, hot.history], tf.constant(-1, tf.int64))
    parents = tf.TensorArray(tf.int32, size=num_frames, element_shape=[None, width])
    emits = tf.TensorArray(tf.int32, size=num_frames, element_shape=[None, width])
    _, state, parents, emits = tf.while_loop(
        lambda t, *_: t < num_frames, step, (tf.constant(0), state, parents, emits),
        shape_invariants=(tf.TensorShape([]), {k: v.shape for k, v in state.items()},
                          tf.TensorShape(None), tf.TensorShape(None)))

    # End of the utterance: complete the part, add the sentence end, merge beams that now say the same words.
    has_part = state["plen"] > 0
    done = complete_word(state)
    lm = tf.where(has_part, done["lm"], state["lm"])
    text1, text2 = tf.where(has_part, done["text1"], state["text1"]), tf.where(has_part, done["text2"], state["text2"])
    words = state["words"] + tf.cast(has_part, tf.int32)
    if tables is not None:
        context = tf.where(has_part[..., None], done["context"], state["context"])
        lm += alpha_ln10 * tables.log10_prob(context, tf.fill(tf.shape(words), tables.eos))
    total = _merge(_key(_row_lane(text1, rows), text2), state["acoustic"], state["valid"]) + lm
    floor = tf.reduce_max(total, axis=1, keepdims=True) + settings.beam_prune_logp
    spoken = (total >= floor) & (words > 0)
    spoken_total = tf.where(spoken, total, tf.constant(-np.inf, tf.float64))
    best = tf.argmax(spoken_total, axis=1, output_type=tf.int32)
    found = tf.reduce_any(spoken, axis=1)
    best_total = tf.gather(spoken_total, best, batch_dims=1)
    beam = best

    # Follow the back-pointers from the best beam to read its letters.
    parents, emits = parents.stack(), emits.stack()  # [T, B, K]

    def back(t, beam, letters):
        letters = letters.write(t, tf.gather(emits[t], beam[:, None], batch_dims=1)[:, 0])
        return t - 1, tf.gather(parents[t], beam[:, None], batch_dims=1)[:, 0], letters

    _, _, letters = tf.while_loop(lambda t, *_: t >= 0, back,
                                  (num_frames - 1, beam, tf.TensorArray(tf.int32, size=num_frames)))
    letters = tf.transpose(letters.stack())  # [B, T], -1 where a frame added nothing
    table = tf.constant(["", *vocab.chars])
    text = tf.strings.strip(tf.strings.reduce_join(tf.gather(table, letters + 1), axis=1))
    letters = tf.where(found[:, None], letters, -1)
    back_in_order = tf.math.invert_permutation(order)
    return tuple(tf.gather(x, back_in_order) for x in (
        tf.where(found, text, ""), tf.where(found, best_total, tf.constant(-np.inf, tf.float64)), found, letters))


ALIGN_FLOOR = float(np.log(1e-30))  # as speech.decoding's: every path stays finite


def ctc_align(log_probs: tf.Tensor, labels: tf.Tensor, vocab: Vocabulary) -> tf.Tensor:
    """:func:`speech.decoding.ctc_align` in the graph: the most probable frame path ``[T]`` (int32) of one
    utterance's ``log_probs [T, C]`` that spells ``labels [L]`` (class ids, words separated by single spaces)."""
    blank, space = vocab.blank, vocab.chars.index(" ")
    labels = tf.cast(labels, tf.int32)
    previous = tf.pad(labels, [[1, 0]], constant_values=-1)[:-1]
    after_letter = (previous >= 0) & tf.not_equal(previous, space)
    is_space = tf.equal(labels, space)
    # Up to three states per label (class a, class b, may be entered from two states back), as speech.decoding
    # lays them out: a letter is its own state, after a blank state when it follows a letter; a space between
    # words is blanks, at least one space, then blanks or spaces.
    skip = (after_letter & tf.not_equal(labels, previous)) | tf.equal(previous, space)
    false = tf.zeros_like(is_space)
    class_a = tf.stack([tf.fill(tf.shape(labels), blank), labels, tf.fill(tf.shape(labels), blank)], axis=1)
    class_b = tf.stack([tf.fill(tf.shape(labels), blank), labels, tf.where(is_space, space, blank)], axis=1)
    can_skip = tf.stack([false, tf.where(is_space, True, skip), false], axis=1)
    used = tf.stack([after_letter | is_space, tf.ones_like(is_space), is_space], axis=1)
    edge_a, edge_b = tf.constant([blank]), tf.constant([space])
    some = tf.size(labels) > 0
    trailing = tf.cast(some, tf.int32)
    class_a = tf.concat([edge_a, tf.boolean_mask(class_a, used), tf.tile(edge_a, [trailing])], axis=0)
    class_b = tf.concat([edge_b, tf.boolean_mask(class_b, used), tf.tile(edge_b, [trailing])], axis=0)
    can_skip = tf.concat([[False], tf.boolean_mask(can_skip, used), tf.zeros([trailing], tf.bool)], axis=0)

    log_probs = tf.cast(log_probs, tf.float64)
    score_a, score_b = tf.gather(log_probs, class_a, axis=1), tf.gather(log_probs, class_b, axis=1)
    emit = tf.maximum(tf.maximum(score_a, score_b), ALIGN_FLOOR)
    emit_class = tf.where(score_a >= score_b, class_a, class_b)
    num_frames, num_states = tf.shape(log_probs)[0], tf.size(class_a)
    minus_inf = tf.constant(-np.inf, tf.float64)
    start = tf.range(num_states) < 2  # the leading gap or the first letter
    score = tf.where(start, emit[0], minus_inf)

    def forward(t, score, back):
        stay = score
        step = tf.concat([[minus_inf], score[:-1]], axis=0)
        jump = tf.where(can_skip, tf.concat([[minus_inf, minus_inf], score[:-2]], axis=0)[:num_states], minus_inf)
        choices = tf.stack([stay, step, jump])
        best = tf.argmax(choices, axis=0, output_type=tf.int32)  # ties -> fewest states back, as numpy
        return t + 1, tf.reduce_max(choices, axis=0) + emit[t], back.write(t, best)

    back = tf.TensorArray(tf.int32, size=num_frames, element_shape=[None])
    back = back.write(0, tf.zeros([num_states], tf.int32))
    _, score, back = tf.while_loop(lambda t, *_: t < num_frames, forward, (tf.constant(1), score, back))
    back = back.stack()
    last = tf.where(tf.equal(num_states, 1) | (score[-1] >= score[tf.maximum(num_states - 2, 0)]), num_states - 1,
                    num_states - 2)

    def backward(t, last, path):
        path = path.write(t, emit_class[t, last])
        return t - 1, last - back[t, last], path

    _, _, path = tf.while_loop(lambda t, *_: t >= 0, backward,
                               (num_frames - 1, last, tf.TensorArray(tf.int32, size=num_frames)))
    return tf.reshape(path.stack(), [num_frames])
