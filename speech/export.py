"""SavedModel for TensorFlow Serving: WAV bytes in, text, confidence and word timings out.

Everything runs in the graph, so the exported model needs plain TensorFlow and no project code:
WAV parsing, resampling, the MFCC twin (:mod:`speech.tf_features`), the acoustic model, and greedy
decoding that mirrors :class:`speech.decoding.GreedyDecoder` op for op. Signatures:

- ``serving_default``: ``audio`` (tf.string ``[B]``, encoded WAV files);
- ``transcribe_waveform``: ``waveform`` (float32 ``[B, N]`` at the model's rate) and ``lengths`` (int32 ``[B]``);
- ``logits``: ``features`` (float32 ``[B, T, F]``) and ``lengths`` -> ``log_probs`` ``[B, T', C]`` and ``lengths``.

The first two return ``transcript`` (string), ``confidence`` (float32), ``words`` (string: a JSON list of
``{"word", "start", "end", "confidence"}``, seconds to 3 decimals, confidence to 4, as the CLI's JSON),
``duration`` (float32 seconds) and ``error`` (string, empty when the item is fine).

Per-item errors: a bad item never fails the batch. WAVs are parsed in the graph (not with ``tf.audio.decode_wav``,
which reads only 16-bit PCM and raises for the whole batch): 8/16/24/32-bit integer PCM and 32/64-bit float, plain
or WAVE_FORMAT_EXTENSIBLE, any channel count (mixed down as ``speech.audio.to_mono`` does), any rate from 1 to 384
kHz (band-limited FFT resampling to the model's rate, close to soxr's response). A file that is not a WAV, uses
another encoding (A-law, mu-law, ADPCM...), has no samples, or holds NaN/inf samples gets an ``error`` message, an
empty transcript, confidence 0 and ``words = "[]"``. A truncated file is read up to its last whole sample frame.
Leading and trailing silence is cut as the CLI cuts it (:func:`speech.features.speech_features`, its twin
:func:`speech.tf_features.tf_speech_features`); word times count from the start of the audio sent.
Differences from ``python -m speech transcribe``: no segmentation of recordings longer than 8 s (the whole clip
goes through the network at once, so memory grows with the clip, and the model reads clips much longer than its
training clips less well: split long recordings client-side, as ``speech.transcribe.segment_blocks``), and resampling
is this graph's FFT filter rather than soxr, so audio at other rates can give slightly different confidences.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import tensorflow as tf

from speech.audio import MAX_SAMPLE_RATE, MIN_SAMPLE_RATE
from speech.decoding import DEFAULT_BEAM_WIDTH, DecodingOptions
from speech.features import FeatureConfig
from speech.ngram import load_ngram_lm
from speech.text import Vocabulary
from speech.tf_features import feature_constants, tf_speech_features
from speech.tf_prefix_search import LMTables, Search, SearchSettings, ctc_align, prefix_beam_search

log = logging.getLogger(__name__)
RESAMPLE_PASS, RESAMPLE_STOP = 0.93, 0.99  # low-pass transition, as fractions of the lower Nyquist frequency

# ---------------------------------------------------------------------------------------------------------
# WAV parsing in the graph.


def _clamped_substr(data: tf.Tensor, pos: tf.Tensor, length: tf.Tensor | int) -> tf.Tensor:
    # tf.strings.substr raises when pos is past the end; a malformed header must give an error string instead.
    size = tf.cast(tf.strings.length(data), tf.int64)
    pos = tf.clip_by_value(tf.cast(pos, tf.int64), 0, size)
    return tf.strings.substr(data, pos, tf.maximum(tf.cast(length, tf.int64), 0))


def _le_uint(data: tf.Tensor, pos: tf.Tensor, num_bytes: int) -> tf.Tensor:
    """Little-endian unsigned integer of ``num_bytes`` at ``pos`` (int64); missing bytes read as zero."""
    raw = tf.io.decode_raw(_clamped_substr(data, pos, num_bytes), tf.uint8, fixed_length=num_bytes)
    weights = tf.constant([256 ** i for i in range(num_bytes)], tf.int64)
    return tf.reduce_sum(tf.cast(tf.reshape(raw, [num_bytes]), tf.int64) * weights)


def _wav_layout(data: tf.Tensor) -> dict[str, tf.Tensor]:
    """Walk the RIFF chunks: offsets and sizes of ``fmt `` and ``data`` (-1 when missing)."""
    size = tf.cast(tf.strings.length(data), tf.int64)
    is_wav = tf.logical_and(tf.equal(_clamped_substr(data, 0, 4), "RIFF"),
                            tf.equal(_clamped_substr(data, 8, 4), "WAVE"))
    minus_one = tf.constant(-1, tf.int64)

    def cond(pos, fmt_pos, fmt_size, data_pos, data_size):
        missing = tf.logical_or(fmt_pos < 0, data_pos < 0)
        return tf.logical_and(tf.logical_and(is_wav, pos + 8 <= size), missing)

    def body(pos, fmt_pos, fmt_size, data_pos, data_size):
        chunk_id = _clamped_substr(data, pos, 4)
        chunk_size = _le_uint(data, pos + 4, 4)
        new_fmt = tf.logical_and(tf.equal(chunk_id, "fmt "), fmt_pos < 0)
        new_data = tf.logical_and(tf.equal(chunk_id, "data"), data_pos < 0)
        fmt_pos, fmt_size = tf.where(new_fmt, pos + 8, fmt_pos), tf.where(new_fmt, chunk_size, fmt_size)
        data_pos, data_size = tf.where(new_data, pos + 8, data_pos), tf.where(new_data, chunk_size, data_size)
        return pos + 8 + chunk_size + chunk_size % 2, fmt_pos, fmt_size, data_pos, data_size  # chunks are word-aligned

    start = (tf.constant(12, tf.int64), minus_one, minus_one, minus_one, minus_one)
    _, fmt_pos, fmt_size, data_pos, data_size = tf.while_loop(cond, body, start)
    return {"size": size, "is_wav": is_wav, "fmt_pos": fmt_pos, "fmt_size": fmt_size, "data_pos": data_pos,
            "data_size": data_size}


# Encodings the parser decodes, as (format tag, bits per sample); the index is the tf.switch_case branch.
_ENCODINGS = ((1, 8), (1, 16), (1, 24), (1, 32), (3, 32), (3, 64))


def _decode_samples(raw: tf.Tensor, branch: tf.Tensor) -> tf.Tensor:
    """Interleaved samples of one encoding, scaled as libsndfile reads them as float ([-1, 1) for integers)."""

    def pcm8():
        return (tf.cast(tf.io.decode_raw(raw, tf.uint8), tf.float32) - 128.0) / 128.0

    def pcm16():
        return tf.cast(tf.io.decode_raw(raw, tf.int16), tf.float32) / 32768.0

    def pcm24():
        b = tf.cast(tf.reshape(tf.io.decode_raw(raw, tf.uint8), [-1, 3]), tf.int32)
        value = b[:, 0] + b[:, 1] * 256 + b[:, 2] * 65536
        value = tf.where(value >= 2 ** 23, value - 2 ** 24, value)
        return tf.cast(value, tf.float32) / float(2 ** 23)

    def pcm32():
        return tf.cast(tf.cast(tf.io.decode_raw(raw, tf.int32), tf.float64) / float(2 ** 31), tf.float32)

    def float32():
        return tf.io.decode_raw(raw, tf.float32)

    def float64():
        return tf.cast(tf.io.decode_raw(raw, tf.float64), tf.float32)

    return tf.switch_case(branch, [pcm8, pcm16, pcm24, pcm32, float32, float64])


def decode_wav(data: tf.Tensor, sample_rate: int) -> tuple[tf.Tensor, tf.Tensor]:
    """One encoded WAV (scalar tf.string) -> ``(mono float32 wave at sample_rate, error)``.

    Never raises on bad bytes: the error is a message (empty when fine) and the wave is then empty.
    """
    layout = _wav_layout(data)
    fmt_pos, data_pos = layout["fmt_pos"], layout["data_pos"]
    tag = _le_uint(data, fmt_pos, 2)
    channels = _le_uint(data, fmt_pos + 2, 2)
    rate = _le_uint(data, fmt_pos + 4, 4)
    bits = _le_uint(data, fmt_pos + 14, 2)
    # WAVE_FORMAT_EXTENSIBLE keeps the real format tag in the first two bytes of its sub-format GUID.
    extensible = tf.logical_and(tf.equal(tag, 0xFFFE), layout["fmt_size"] >= 40)
    tag = tf.where(extensible, _le_uint(data, fmt_pos + 24, 2), tag)
    branch = tf.constant(-1, tf.int32)
    for i, (t, b) in enumerate(_ENCODINGS):
        branch = tf.where(tf.logical_and(tf.equal(tag, t), tf.equal(bits, b)), i, branch)
    sample_bytes = bits // 8
    frame_bytes = tf.maximum(channels * sample_bytes, 1)
    available = tf.maximum(tf.minimum(layout["data_size"], layout["size"] - data_pos), 0)
    num_frames = available // frame_bytes  # a truncated file is read up to its last whole sample frame

    checks = [  # (failed, message), the first failure wins
        (tf.logical_not(layout["is_wav"]), tf.constant("not a WAV file (no RIFF/WAVE header)")),
        (fmt_pos < 0, tf.constant("WAV file has no fmt chunk")),
        (data_pos < 0, tf.constant("WAV file has no data chunk")),
        (branch < 0, tf.strings.format(
            "unsupported WAV encoding (format tag {}, {} bits per sample); supported: 8/16/24/32-bit integer PCM "
            "and 32/64-bit float", (tag, bits))),
        (tf.equal(channels, 0), tf.constant("WAV file declares 0 channels")),
        (tf.logical_or(rate < MIN_SAMPLE_RATE, rate > MAX_SAMPLE_RATE), tf.strings.format(
            "unsupported sample rate {} Hz (supported: {} to {})", (rate, MIN_SAMPLE_RATE, MAX_SAMPLE_RATE))),
        (tf.equal(num_frames, 0), tf.constant("audio has no samples")),
    ]
    error = tf.constant("")
    for failed, message in reversed(checks):
        error = tf.where(failed, message, error)

    def decode() -> tf.Tensor:
        raw = _clamped_substr(data, data_pos, num_frames * frame_bytes)
        samples = tf.reshape(_decode_samples(raw, tf.maximum(branch, 0)), [-1, tf.cast(channels, tf.int32)])
        return resample(_to_mono(samples), rate, sample_rate)

    wave = tf.cond(tf.equal(error, ""), decode, lambda: tf.zeros([0], tf.float32))
    finite = tf.reduce_all(tf.math.is_finite(wave))
    error = tf.where(tf.logical_or(tf.not_equal(error, ""), finite), error, "audio contains NaN or infinite samples")
    wave = wave[: tf.where(tf.equal(error, ""), tf.size(wave), 0)]
    return wave, error


def _to_mono(samples: tf.Tensor) -> tf.Tensor:
    """``speech.audio.to_mono`` in the graph: the channels' average, or the loudest channel if they cancel out."""
    mix = tf.reduce_mean(samples, axis=1)
    power = tf.reduce_mean(tf.square(samples), axis=0)
    cancel = tf.logical_and(tf.shape(samples)[1] > 1,
                            tf.reduce_mean(tf.square(mix)) < 0.25 * tf.reduce_mean(power))
    return tf.where(cancel, tf.gather(samples, tf.argmax(power), axis=1), mix)


def _gcd(a: tf.Tensor, b: tf.Tensor) -> tf.Tensor:
    _, g = tf.while_loop(lambda x, y: x > 0, lambda x, y: (y % x, x), (tf.cast(a, tf.int64), tf.cast(b, tf.int64)))
    return g


def _smooth_numbers(limit: int) -> np.ndarray:
    """Sorted numbers ``2^a 3^b 5^c <= limit``: FFT sizes that are fast."""
    out = []
    p2 = 1
    while p2 <= limit:
        p3 = p2
        while p3 <= limit:
            p5 = p3
            while p5 <= limit:
                out.append(p5)
                p5 *= 5
            p3 *= 3
        p2 *= 2
    return np.array(sorted(out), np.int64)


def resample(wave: tf.Tensor, in_rate: tf.Tensor, out_rate: int) -> tf.Tensor:
    """Band-limited resampling of a 1-D wave to ``ceil(N * out / in)`` samples, in the frequency domain.

    One FFT of the zero-padded wave, a raised-cosine low-pass from 0.93 to 0.99 of the lower Nyquist frequency
    (close to soxr's "HQ" response, which the Python path uses), one inverse FFT at the output rate. The
    zero padding (at least 100 ms) keeps the circular convolution from wrapping the end onto the start.
    """
    in_rate = tf.cast(in_rate, tf.int64)

    def convert() -> tf.Tensor:
        g = _gcd(in_rate, out_rate)
        up, down = out_rate // g, in_rate // g
        n_in = tf.size(wave, out_type=tf.int64)
        n_out = (n_in * out_rate + in_rate - 1) // in_rate
        # FFT sizes n_fft_in = q * down and n_fft_out = q * up describe the same duration exactly.
        need = (n_in + in_rate // 10 + down - 1) // down
        sizes = tf.constant(_smooth_numbers(2 ** 40))
        q = tf.gather(sizes, tf.searchsorted(sizes, tf.reshape(need, [1]))[0])
        n_fft_in, n_fft_out = q * down, q * up
        spectrum = tf.signal.rfft(tf.pad(wave, [[0, n_fft_in - n_in]]), fft_length=tf.cast([n_fft_in], tf.int32))
        bins = tf.minimum(n_fft_in, n_fft_out) // 2 + 1
        hz = tf.cast(tf.range(bins), tf.float32) * tf.cast(in_rate, tf.float32) / tf.cast(n_fft_in, tf.float32)
        nyquist = tf.cast(tf.minimum(in_rate, out_rate), tf.float32) / 2.0
        ramp = tf.clip_by_value((hz / nyquist - RESAMPLE_PASS) / (RESAMPLE_STOP - RESAMPLE_PASS), 0.0, 1.0)
        gain = 0.5 + 0.5 * tf.cos(np.pi * ramp)
        kept = spectrum[:bins] * tf.cast(gain, tf.complex64)
        kept = tf.pad(kept, [[0, n_fft_out // 2 + 1 - bins]])
        out = tf.signal.irfft(kept, fft_length=tf.cast([n_fft_out], tf.int32))
        return out[:n_out] * tf.cast(up, tf.float32) / tf.cast(down, tf.float32)

    return tf.cond(tf.equal(in_rate, out_rate), lambda: tf.identity(wave), convert)


# ---------------------------------------------------------------------------------------------------------
# Greedy decoding in the graph (speech.decoding's definition, rules 1-6).


def _json_number(x: tf.Tensor, decimals: int) -> tf.Tensor:
    return tf.strings.as_string(x, precision=decimals)


def path_decode_one(path: tf.Tensor, path_log_probs: tf.Tensor, chars: tf.Tensor, blank: int, space: int,
                    frame_duration: float, offset: tf.Tensor | float = 0.0, limit: tf.Tensor | float = float("inf")
                    ) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """``(text, confidence float64, words JSON)`` of a frame path ``[T]`` (class per frame) and its log-probabilities
    by the greedy rules (:mod:`speech.decoding`); word times are ``offset`` seconds plus their frames', at most
    ``limit`` (the audio's end, as :meth:`speech.decoding.Word.shifted`)."""
    num_frames = tf.shape(path)[0]
    best, best_lp = path, path_log_probs
    confidence = tf.exp(tf.reduce_sum(tf.cast(best_lp, tf.float64)) / tf.cast(tf.maximum(num_frames, 1), tf.float64))
    # Runs of equal class.
    previous = tf.pad(best, [[1, 0]], constant_values=-1)[:num_frames]
    run_id = tf.cumsum(tf.cast(tf.not_equal(best, previous), tf.int32)) - 1
    num_runs = tf.reduce_sum(tf.cast(tf.not_equal(best, previous), tf.int32))
    frame = tf.range(num_frames)
    run_start = tf.math.unsorted_segment_min(frame, run_id, num_runs)
    run_end = tf.math.unsorted_segment_max(frame, run_id, num_runs) + 1
    run_max = tf.math.unsorted_segment_max(best_lp, run_id, num_runs)
    token = tf.gather(best, run_start)
    keep = tf.not_equal(token, blank)
    token, run_start, run_end, run_max = (tf.boolean_mask(x, keep) for x in (token, run_start, run_end, run_max))
    # Words: maximal runs of non-space tokens.
    is_space = tf.equal(token, space)
    after_space = tf.pad(is_space, [[1, 0]], constant_values=True)[: tf.size(token)]
    word_begins = tf.logical_and(tf.logical_not(is_space), after_space)
    word_id = tf.cumsum(tf.cast(word_begins, tf.int32)) - 1
    num_words = tf.reduce_sum(tf.cast(word_begins, tf.int32))
    letter = tf.logical_not(is_space)
    token, word_id, run_start, run_end, run_max = (
        tf.boolean_mask(x, letter) for x in (token, word_id, run_start, run_end, run_max))
    prob = tf.exp(tf.cast(run_max, tf.float64))
    start = tf.math.unsorted_segment_min(run_start, word_id, num_words)
    end = tf.math.unsorted_segment_max(run_end, word_id, num_words)
    word_conf = (tf.math.unsorted_segment_sum(prob, word_id, num_words)
                 / tf.cast(tf.math.unsorted_segment_sum(tf.ones_like(word_id), word_id, num_words), tf.float64))
    letters = tf.RaggedTensor.from_value_rowids(tf.gather(chars, token), word_id, nrows=num_words)
    words = tf.strings.reduce_join(letters, axis=1)
    text = tf.strings.reduce_join(words, separator=" ")
    escaped = tf.strings.regex_replace(words, r'(["\\])', r"\\\1")
    seconds = tf.constant(frame_duration, tf.float64)
    offset, limit = tf.cast(offset, tf.float64), tf.cast(limit, tf.float64)
    items = tf.strings.join([
        '{"word": "', escaped,
        '", "start": ', _json_number(tf.minimum(tf.cast(start, tf.float64) * seconds + offset, limit), 3),
        ', "end": ', _json_number(tf.minimum(tf.cast(end, tf.float64) * seconds + offset, limit), 3),
        ', "confidence": ', _json_number(word_conf, 4), "}"])
    words_json = tf.strings.join(["[", tf.strings.reduce_join(items, separator=", "), "]"])
    return text, confidence, words_json


def greedy_decode_one(log_probs: tf.Tensor, chars: tf.Tensor, blank: int, space: int, frame_duration: float,
                      offset: tf.Tensor | float = 0.0, limit: tf.Tensor | float = float("inf")
                      ) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """:class:`speech.decoding.GreedyDecoder` of one utterance's ``log_probs [T, C]`` (valid frames only)."""
    best = tf.argmax(log_probs, axis=1, output_type=tf.int32)  # ties -> lowest index, as numpy
    return path_decode_one(best, tf.reduce_max(log_probs, axis=1), chars, blank, space, frame_duration, offset, limit)


def penalize_blank(log_probs: tf.Tensor, penalty: float, blank: int) -> tf.Tensor:
    """:func:`speech.decoding.penalize_blank` in the graph (float64 arithmetic, the input's dtype out)."""
    if not penalty:
        return log_probs
    scores = tf.cast(log_probs, tf.float64) - penalty * tf.one_hot(blank, tf.shape(log_probs)[-1], dtype=tf.float64)
    return tf.cast(scores - tf.reduce_logsumexp(scores, axis=-1, keepdims=True), log_probs.dtype)


def decode(log_probs: tf.Tensor, lengths: tf.Tensor, vocab: Vocabulary, frame_duration: float,
           offsets: tf.Tensor | None = None, limits: tf.Tensor | None = None, search: Search | None = None
           ) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """``log_probs [B, T, C]`` and ``lengths [B]`` -> text, confidence (float32), words JSON, each ``[B]``;
    ``offsets [B]`` (seconds, default 0) are added to each row's word times, which end by ``limits [B]`` (seconds,
    default none). Greedy without a ``search``; with one, :class:`speech.decoding.PrefixBeamDecoder`'s decoding:
    the blank penalty, the LM-fused beam search, the best path where the search finds no word or the best path says
    no letter, and word timings from the forced alignment of the chosen text."""
    chars = tf.constant(list(vocab.chars))
    space = vocab.chars.index(" ")
    lengths = tf.cast(lengths, tf.int32)
    offsets = tf.zeros(tf.shape(lengths), tf.float64) if offsets is None else tf.cast(offsets, tf.float64)
    limits = tf.fill(tf.shape(lengths), tf.constant(float("inf"), tf.float64)) if limits is None else tf.cast(
        limits, tf.float64)
    if search is None:
        def one(args):
            lp, n, offset, limit = args
            text, confidence, words = greedy_decode_one(lp[:n], chars, vocab.blank, space, frame_duration, offset,
                                                        limit)
            return text, tf.cast(confidence, tf.float32), words

        return tf.map_fn(one, (log_probs, lengths, offsets, limits),
                         fn_output_signature=(tf.string, tf.float32, tf.string))

    log_probs = penalize_blank(log_probs, search.blank_penalty, vocab.blank)
    _, _, found, letters = prefix_beam_search(log_probs, lengths, vocab, search.settings, search.tables)

    def one_searched(args):
        lp, n, offset, limit, found, letters = args
        lp = lp[:n]
        best = tf.argmax(lp, axis=1, output_type=tf.int32)
        heard = tf.reduce_any(tf.not_equal(best, vocab.blank) & tf.not_equal(best, space))
        labels = tf.boolean_mask(letters, letters >= 0)
        # A word completed by a space at the very end leaves that space last; the text has none.
        ends_in_space = tf.equal(tf.concat([[-1], labels], axis=0)[tf.size(labels)], space)
        labels = labels[:tf.size(labels) - tf.cast(ends_in_space, tf.int32)]
        path = tf.cond(found & heard, lambda: ctc_align(lp, labels, vocab), lambda: best)
        path_lp = tf.gather(lp, path[:, None], batch_dims=1)[:, 0]
        text, confidence, words = path_decode_one(path, path_lp, chars, vocab.blank, space, frame_duration, offset,
                                                  limit)
        return text, tf.cast(confidence, tf.float32), words

    return tf.map_fn(one_searched, (log_probs, lengths, offsets, limits, found, letters),
                     fn_output_signature=(tf.string, tf.float32, tf.string))


# ---------------------------------------------------------------------------------------------------------
# The exported module.


class SpeechServingModule(tf.Module):
    """The three serving functions around one Keras model (see the module docstring)."""

    def __init__(self, model, spec, search: Search | None = None):
        super().__init__(name="speech")
        # Tracked, so the SavedModel saves the LM's hash tables and restores them on load.
        self.lm_tables = search.tables if search is not None else None
        # The model is only captured by the traced functions (export_saved_model tracks its variables): as an
        # attribute, tf.Module would try to serialise the Keras object graph itself.
        config: FeatureConfig = spec.features
        constants = feature_constants(config)
        n_mfcc, num_classes = config.n_mfcc, spec.vocab.num_classes
        output_length = spec.model.output_length

        def log_probs_of(features, lengths):
            logits = model({"features": features, "lengths": lengths}, training=False)
            return tf.nn.log_softmax(logits), output_length(lengths)

        def transcribe(waveform, lengths, errors, search):
            def run():
                # The edge silence cut (config.trim_silence_db) as the CLI cuts it; word times count from the row's
                # start.
                features, n_frames, first = tf_speech_features(waveform, tf.maximum(lengths, 0), config, constants)
                log_probs, out_lengths = log_probs_of(features, n_frames)
                return decode(log_probs, out_lengths, spec.vocab, spec.frame_seconds,
                              tf.cast(first, tf.float64) / config.sample_rate,
                              tf.cast(tf.maximum(lengths, 0), tf.float64) / config.sample_rate, search)

            def nothing():
                return tf.zeros([0], tf.string), tf.zeros([0], tf.float32), tf.zeros([0], tf.string)

            # A request of no items (a batching client flushing an empty batch) gets no items back: the model's
            # layers cannot run on an empty batch.
            text, confidence, words = tf.cond(tf.size(lengths) > 0, run, nothing)
            ok = tf.equal(errors, "")
            return {"transcript": tf.where(ok, text, ""), "confidence": tf.where(ok, confidence, 0.0),
                    "words": tf.where(ok, words, "[]"), "error": errors,
                    "duration": tf.cast(lengths, tf.float32) / float(config.sample_rate)}

        @tf.function(input_signature=[tf.TensorSpec([None, None, n_mfcc], tf.float32, name="features"),
                                      tf.TensorSpec([None], tf.int32, name="lengths")])
        def logits(features, lengths):
            # A malformed request is the caller's bug: a clear error, never outputs with made-up lengths. The
            # checks run before the model (control dependencies), whose own error would be less clear.
            checks = [
                tf.debugging.assert_equal(tf.size(lengths), tf.shape(features)[0],
                                          message="lengths must have one entry per row of features"),
                tf.debugging.assert_non_negative(lengths, message="lengths must not be negative"),
                tf.debugging.assert_less_equal(lengths, tf.shape(features)[1],
                                               message="lengths must not exceed the number of frames"),
                tf.debugging.assert_positive(tf.shape(features)[1],
                                             message="features must have at least one frame"),
            ]
            with tf.control_dependencies(checks):
                features, lengths = tf.identity(features), tf.identity(lengths)
            log_probs, out_lengths = log_probs_of(features, lengths)
            log_probs = tf.ensure_shape(log_probs, [None, None, num_classes])
            return {"log_probs": log_probs, "lengths": out_lengths}

        @tf.function(input_signature=[tf.TensorSpec([None, None], tf.float32, name="waveform"),
                                      tf.TensorSpec([None], tf.int32, name="lengths")])
        def transcribe_waveform(waveform, lengths):
            tf.debugging.assert_equal(tf.size(lengths), tf.shape(waveform)[0],
                                      message="lengths must have one entry per row of waveform")
            num_samples = tf.shape(waveform)[1]
            valid = tf.range(num_samples)[None, :] < lengths[:, None]
            finite = tf.reduce_all(tf.math.is_finite(tf.where(valid, waveform, 0.0)), axis=1)
            errors = tf.where(tf.logical_or(lengths < 1, lengths > num_samples),
                              tf.strings.format("length must lie in [1, {}]", num_samples), "")
            errors = tf.where(tf.logical_or(tf.not_equal(errors, ""), finite), errors,
                              "audio contains NaN or infinite samples")
            ok = tf.equal(errors, "")
            lengths = tf.where(ok, lengths, 0)
            waveform = tf.where(ok[:, None] & valid, waveform, 0.0)  # a bad row must not poison the others
            return transcribe(waveform, lengths, errors, search)

        def read_wavs(audio):
            waves, errors = tf.map_fn(
                lambda data: decode_wav(data, config.sample_rate), audio,
                fn_output_signature=(tf.RaggedTensorSpec([None], tf.float32, ragged_rank=0), tf.string))
            return waves.to_tensor(), tf.cast(waves.row_lengths(), tf.int32), errors

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="audio")])
        def serving_default(audio):
            return transcribe(*read_wavs(audio), search)

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="audio")])
        def greedy(audio):
            return transcribe(*read_wavs(audio), None)

        self.logits = logits
        self.transcribe_waveform = transcribe_waveform
        self.serving_default = serving_default
        self.greedy = greedy

    def signatures(self) -> dict:
        return {"serving_default": self.serving_default.get_concrete_function(),
                "greedy": self.greedy.get_concrete_function(),
                "transcribe_waveform": self.transcribe_waveform.get_concrete_function(),
                "logits": self.logits.get_concrete_function()}


def decoding_search(options: DecodingOptions, vocab: Vocabulary) -> Search | None:
    """The graph's search for a model's decoding options (None: greedy); the LM's tables are built here."""
    if options.greedy:
        return None
    if options.hotwords or options.hop_lengths or options.fmaxes:
        log.warning("the SavedModel's search runs without the model's hotwords and decoding search (the CLI's "
                    "hotword tables and feature variants); only the beam search, LM and blank penalty are in the graph")
    tables = LMTables(load_ngram_lm(options.lm_path), vocab) if options.lm_path else None
    width = options.beam_width if options.beam_width > 1 else DEFAULT_BEAM_WIDTH
    settings = SearchSettings(alpha=options.alpha, beta=options.beta, beam_width=width)
    return Search(settings, options.blank_penalty, tables)


def next_version(base: str | os.PathLike) -> int:
    """1 + the highest numeric subfolder of ``base`` (TF Serving's layout), or 1."""
    base = Path(base)
    versions = [int(p.name) for p in base.iterdir() if p.is_dir() and p.name.isdigit()] if base.is_dir() else []
    return max(versions, default=0) + 1


EXTRA_DIR = "assets.extra"  # TF Serving's folder for files the graph does not use


def copy_decoder_files(model_dir: Path, extra: Path) -> None:
    """The model's config (vocabulary, decoder settings) and its LM, for decoders outside the graph: the Beam
    job's LM decoding reads them from here, and plain TensorFlow ignores them."""
    from speech.model import CONFIG_FILE
    from speech.transcribe import LM_FILE

    extra.mkdir(parents=True, exist_ok=True)
    for name in (CONFIG_FILE, LM_FILE):
        if (model_dir / name).is_file():
            shutil.copy2(model_dir / name, extra / name)


def export_saved_model(model_dir: str | os.PathLike | None, base: str | os.PathLike,
                       version: int | None = None) -> Path:
    """Write ``base/<version>/`` (atomically: a temp folder in ``base`` renamed into place); returns its path."""
    from speech.errors import ModelError
    from speech.model import load_model, resolve_model_dir
    from speech.transcribe import model_decoding

    resolve_model_dir(model_dir)  # a missing model is reported before anything is created
    base = Path(base)
    base.mkdir(parents=True, exist_ok=True)
    version = next_version(base) if version is None else int(version)
    if version < 1:
        raise ModelError(f"version must be a positive integer, got {version}", str(base))
    target = base / str(version)
    if target.exists():
        raise ModelError(f"version {version} already exists; choose another --version", str(target))
    model, spec = load_model(model_dir)
    module = SpeechServingModule(model, spec, decoding_search(model_decoding(model_dir), spec.vocab))
    signatures = module.signatures()
    # Track exactly the variables the traced functions capture: without this, the Keras 3 model's variables
    # are saved under paths that `saved_model_cli run` cannot find ("Could not find variable").
    seen: dict[int, tf.Variable] = {}
    for fn in signatures.values():
        for v in fn.variables:
            seen.setdefault(id(v), v)
    module.model_variables = list(seen.values())
    # A dot name that is not a number: TF Serving ignores it until the rename.
    tmp = Path(tempfile.mkdtemp(prefix=f".{version}.tmp-", dir=base))
    try:
        tmp.chmod(0o755)  # mkdtemp makes it private; a server running as another user must read it
        tf.saved_model.save(module, str(tmp), signatures=signatures)
        copy_decoder_files(resolve_model_dir(model_dir), tmp / EXTRA_DIR)
        os.replace(tmp, target)  # TF Serving polls base/: it must never see a half-written version
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target
