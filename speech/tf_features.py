"""TensorFlow twin of :func:`speech.features.compute_features`, for padded batches inside a graph.

Same recipe, step for step: librosa's centring (``n_fft // 2`` zeros each side of each row's *true*
samples), librosa's own periodic Hann window zero-padded to ``n_fft`` and its Slaney mel matrix (both
computed once with librosa and baked in as constants), power spectrum, ``10 * log10(max(power, 1e-10))``,
an orthonormal DCT-II, then per-utterance mean/variance normalisation over each row's valid frames.

The spectrum is computed in float64: float32 FFTs from two libraries disagree by about 3e-4 on MFCCs of
up to about 400, and the normalisation divides by a coefficient's spread, so that noise would grow on
nearly constant coefficients. It costs little next to the acoustic model.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from speech.features import (
    MAX_SAFE_PEAK,
    NORM_EPS,
    TRIM_FLOOR_PERCENTILE,
    TRIM_FRAME_SECONDS,
    TRIM_KEEP_SECONDS,
    FeatureConfig,
)


def feature_constants(config: FeatureConfig) -> dict[str, np.ndarray]:
    """Window ``[n_fft]``, mel matrix ``[n_fft // 2 + 1, n_mels]``, DCT ``[n_mels, n_mfcc]`` (float64), via librosa."""
    import librosa

    window = librosa.filters.get_window("hann", config.win_length, fftbins=True)
    window = librosa.util.pad_center(window, size=config.n_fft)
    mel = librosa.filters.mel(sr=config.sample_rate, n_fft=config.n_fft, n_mels=config.n_mels, fmin=config.fmin,
                              fmax=config.fmax, htk=False, norm="slaney")
    # Orthonormal DCT-II (scipy's dct(type=2, norm="ortho")), keeping the first n_mfcc coefficients.
    n = config.n_mels
    k = np.arange(config.n_mfcc)[None, :]
    m = np.arange(n)[:, None]
    dct = np.sqrt(2.0 / n) * np.cos(np.pi * k * (2 * m + 1) / (2 * n))
    dct[:, 0] /= np.sqrt(2.0)
    return {"window": window.astype(np.float64), "mel": mel.T.astype(np.float64), "dct": dct}


def frame_lengths(lengths: tf.Tensor, config: FeatureConfig) -> tf.Tensor:
    """Valid frames per row: ``1 + samples // hop`` (as librosa with centring)."""
    return 1 + tf.cast(lengths, tf.int32) // config.hop_length


def _clean_rows(waves: tf.Tensor, lengths: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Right-padded rows as float32 ``[B, N]`` with zeros past each row's length (the centred frames near the end
    of a short row reach into its padding, and librosa sees zeros there), and, as compute_features does, a row
    scaled far outside [-1, 1] (a float file at 1e20) scaled down before its power overflows; other rows are left
    bit for bit as they are. Returns ``(waves, lengths)``, lengths int32 ``[B]``."""
    waves = tf.convert_to_tensor(waves, tf.float32)
    lengths = tf.cast(tf.reshape(lengths, [-1]), tf.int32)
    valid = tf.range(tf.shape(waves)[1])[None, :] < lengths[:, None]
    waves = tf.where(valid, waves, 0.0)
    peak = tf.reduce_max(tf.abs(waves), axis=1, keepdims=True)
    return tf.where(peak > MAX_SAFE_PEAK, waves / tf.maximum(peak, 1.0), waves), lengths


def _at_least(waves: tf.Tensor, width: int) -> tf.Tensor:
    """``waves [B, N]`` right-padded with zeros to at least ``width`` columns: a batch whose rows are all empty or
    shorter than a frame has nothing to frame or gather from (GatherV2 on an empty axis), and must still give each
    row its result."""
    return tf.pad(waves, [[0, 0], [0, tf.maximum(0, width - tf.shape(waves)[1])]])


def tf_features(waves: tf.Tensor, lengths: tf.Tensor, config: FeatureConfig,
                constants: dict[str, np.ndarray] | None = None) -> tuple[tf.Tensor, tf.Tensor]:
    """Features ``[B, T, n_mfcc]`` float32 and valid frames ``[B]`` of right-padded mono waves ``[B, N]``.

    ``lengths`` are valid samples per row; ``T = 1 + N // hop``. Frames past a row's valid frames are zero.
    ``constants`` (from :func:`feature_constants`) may be passed to avoid recomputing them per trace.
    """
    if config.n_fft % 2:
        raise ValueError("n_fft must be even (librosa's centring is then exactly 1 + N // hop frames)")
    c = constants or feature_constants(config)
    waves, lengths = _clean_rows(waves, lengths)
    pad = config.n_fft // 2
    padded = tf.pad(tf.cast(waves, tf.float64), [[0, 0], [pad, pad]])
    frames = tf.signal.frame(padded, config.n_fft, config.hop_length, pad_end=False)  # [B, T, n_fft]
    spectrum = tf.signal.rfft(frames * tf.constant(c["window"], tf.float64))
    power = tf.math.square(tf.math.real(spectrum)) + tf.math.square(tf.math.imag(spectrum))
    mel = tf.tensordot(power, tf.constant(c["mel"], tf.float64), axes=1)
    log_mel = (10.0 / np.log(10.0)) * tf.math.log(tf.maximum(mel, 1e-10))
    mfcc = tf.tensordot(log_mel, tf.constant(c["dct"], tf.float64), axes=1)  # [B, T, n_mfcc]
    n_frames = frame_lengths(lengths, config)
    mask = tf.cast(tf.range(tf.shape(mfcc)[1])[None, :] < n_frames[:, None], tf.float64)[:, :, None]
    if config.normalize:
        # librosa's features are float32 and normalised in float64; round to float32 first to match.
        mfcc = tf.cast(tf.cast(mfcc, tf.float32), tf.float64)
        count = tf.cast(n_frames, tf.float64)[:, None, None]
        mean = tf.reduce_sum(mfcc * mask, axis=1, keepdims=True) / count
        std = tf.sqrt(tf.reduce_sum(tf.square((mfcc - mean) * mask), axis=1, keepdims=True) / count)
        mfcc = (mfcc - mean) / (std + NORM_EPS)
    return tf.cast(mfcc * mask, tf.float32), n_frames


def _percentile(values: tf.Tensor, counts: tf.Tensor, q: float) -> tf.Tensor:
    """``np.percentile(row[:count], q)`` (linear interpolation) of each row of ``values [B, N]``; a row with no
    values gives 0 (its bounds are the whole row anyway)."""
    valid = tf.range(tf.shape(values)[1])[None, :] < counts[:, None]
    ordered = tf.sort(tf.where(valid, values, np.inf), axis=1)
    position = tf.cast(tf.maximum(counts - 1, 0), tf.float32) * (q / 100.0)
    below = tf.cast(tf.floor(position), tf.int32)
    above = tf.minimum(below + 1, tf.maximum(counts - 1, 0))
    low = tf.gather(ordered, below, batch_dims=1)
    high = tf.gather(ordered, above, batch_dims=1)
    value = low + (high - low) * (position - tf.cast(below, tf.float32))
    return tf.where(counts > 0, value, 0.0)


def tf_speech_bounds(waves: tf.Tensor, lengths: tf.Tensor, sample_rate: int, threshold_db: float,
                     keep_seconds: float = TRIM_KEEP_SECONDS, floor_margin_db: float | None = None
                     ) -> tuple[tf.Tensor, tf.Tensor]:
    """Twin of :func:`speech.features.speech_bounds` for right-padded rows: ``(start, end)`` int32 ``[B]``.

    A row's frames are its whole 10 ms frames, and its noise floor their 10th percentile level; a row with no
    frame above the threshold (constant, noise alone, shorter than a frame) is kept whole. Samples past a row's
    length are ignored.
    """
    frame = int(TRIM_FRAME_SECONDS * sample_rate)
    keep = int(keep_seconds * sample_rate)
    waves, lengths = _clean_rows(waves, lengths)
    waves = _at_least(waves, frame)
    num_frames = tf.shape(waves)[1] // frame
    frames = tf.reshape(waves[:, : num_frames * frame], [tf.shape(waves)[0], num_frames, frame])
    frames = tf.cast(frames, tf.float64)
    frames -= tf.reduce_mean(frames, axis=2, keepdims=True)  # about each frame's own mean: DC is not sound
    energy = tf.cast(tf.sqrt(tf.reduce_mean(tf.square(frames), axis=2) + 1e-12), tf.float32)  # [B, F]
    whole = tf.range(num_frames)[None, :] < (lengths // frame)[:, None]  # frames wholly inside the row
    loudest = tf.reduce_max(tf.where(whole, energy, 0.0), axis=1, keepdims=True)
    level = 20.0 * tf.math.log(energy / (loudest + 1e-12)) / np.log(10.0)
    threshold = tf.fill([tf.shape(waves)[0]], tf.constant(threshold_db, tf.float32))
    if floor_margin_db is not None:
        threshold = tf.maximum(threshold, _percentile(level, lengths // frame, TRIM_FLOOR_PERCENTILE) + floor_margin_db)
    loud = tf.logical_and(whole, level > threshold[:, None])
    any_loud = tf.reduce_any(loud, axis=1)
    first = tf.argmax(tf.cast(loud, tf.int32), axis=1, output_type=tf.int32)
    last = num_frames - 1 - tf.argmax(tf.cast(tf.reverse(loud, [1]), tf.int32), axis=1, output_type=tf.int32)
    start = tf.where(any_loud, tf.maximum(0, first * frame - keep), 0)
    end = tf.where(any_loud, tf.minimum(lengths, (last + 1) * frame + keep), lengths)
    return start, end


def tf_speech_features(waves: tf.Tensor, lengths: tf.Tensor, config: FeatureConfig,
                       constants: dict[str, np.ndarray] | None = None) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Twin of :func:`speech.features.speech_features`: features and valid frames of each row's speech
    (:func:`tf_speech_bounds` when ``config.trim_silence_db`` is set, else the whole row), and the first sample
    of it ``[B]`` int32."""
    waves = _at_least(tf.convert_to_tensor(waves, tf.float32), 1)
    lengths = tf.cast(tf.reshape(lengths, [-1]), tf.int32)
    if config.trim_silence_db is None:
        return (*tf_features(waves, lengths, config, constants), tf.zeros_like(lengths))
    start, end = tf_speech_bounds(waves, lengths, config.sample_rate, config.trim_silence_db,
                                  floor_margin_db=config.trim_floor_margin_db)
    kept = end - start
    index = start[:, None] + tf.range(tf.reduce_max(tf.concat([kept, [0]], 0)))[None, :]
    inside = index < end[:, None]
    rows = tf.gather(waves, tf.clip_by_value(index, 0, tf.maximum(tf.shape(waves)[1] - 1, 0)), batch_dims=1)
    trimmed = tf.where(inside, rows, 0.0)
    return (*tf_features(trimmed, kept, config, constants), start)
