"""The transcriber: audio in, text with word timings and confidences out.

One object shared by the CLI, evaluation, the batch script and benchmarks. Audio decoding and
feature extraction run in worker processes; the model runs on length-sorted batches; long recordings
are cut into segments of at most 8 s at their quietest points (bounded memory: they are streamed block by block).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from speech.audio import DECODE_ERRORS, failure_reason, iter_audio_blocks
from speech.decoding import BeamSearchDecoder, DecodingOptions, Hypothesis, Word, best_hypothesis, make_decoder
from speech.errors import SpeechError
from speech.features import FeatureConfig, speech_feature_variants, worker_pool

log = logging.getLogger("speech.transcribe")

# Longer audio is cut into segments of at most this length. The bundled model trained on sentence-length clips
# (median 2.2 s, 99% under 10 s), and it reads long recordings worse than their parts: dev clips joined four by
# four into 11 s recordings (scripts/bench_long.py) gave WER 0.225 with 30 s segments, 0.217 with 10 and 0.216
# with 8, against 0.175 for the same clips one by one.
MAX_SEGMENT_SECONDS = 8.0
# Audio per chunk of files decoded together: a few full batches of segments, and the most a killed job can lose.
CHUNK_AUDIO_SECONDS = 300.0
# A file longer than this is featurized and decoded as it streams (Transcriber.transcribe_long) rather than whole in
# a worker, so that memory stays flat with a recording's length.
LONG_FILE_SECONDS = 600.0
PROGRESS_SECONDS = 60.0  # audio decoded between two progress reports (Transcriber.transcribe_files' on_audio)
# Files featurized in worker processes from this many on. A file's features cost a small part of decoding it: 200
# clips (scripts/bench.py's) took less CPU and less wall time in this process than with a worker per core (session
# 29, when a pool took 1.5-2 s to start), and 400 took the same CPU and wall time either way once it took 0.3 s
# (session 30; greedy 0.008-0.009, default 0.018-0.020 CPU-s per audio-s, 2 rounds each).
PARALLEL_MIN_FILES = 1000
SEARCH_SECONDS = 6.0  # a cut is placed at the quietest 100 ms in the last SEARCH_SECONDS (at most a third) of a segment


@dataclass
class Transcript:
    audio_filepath: str
    duration: float = 0.0
    text: str = ""
    confidence: float = 0.0
    words: list[Word] = field(default_factory=list)
    error: str | None = None
    warning: str | None = None  # transcribed, but the user should know (e.g. the file was cut short)

    def to_json(self) -> dict:
        record = {"audio_filepath": self.audio_filepath, "duration": round(self.duration, 3), "text": self.text,
                  "confidence": round(float(self.confidence), 4),
                  "words": [w.to_json() for w in self.words]}
        if self.error:
            record["error"] = self.error
        if self.warning:
            record["warning"] = self.warning
        return record


def quietest_cut(wave: np.ndarray, sample_rate: int, lo: int, hi: int) -> int:
    """Sample index in ``[lo, hi)`` at the centre of the lowest-energy 100 ms window."""
    win = max(1, sample_rate // 10)
    region = wave[lo:hi].astype(np.float64)
    if len(region) <= win:
        return hi
    # Every window's energy as a difference of running sums: linear in the region, where a convolution with the
    # window took 8 ms a cut (a tenth of a long recording's CPU with greedy decoding).
    running = np.concatenate(([0.0], np.cumsum(np.square(region))))
    energy = running[win:] - running[:-win]
    return lo + int(np.argmin(energy)) + win // 2


def segment_blocks(blocks: Iterable[np.ndarray], sample_rate: int, max_seconds: float = MAX_SEGMENT_SECONDS,
                   search_seconds: float | None = None) -> Iterator[tuple[int, np.ndarray]]:
    """``(start sample, wave)`` segments of at most ``max_seconds`` of consecutive audio blocks, each cut at the
    quietest 100 ms of its last ``search_seconds`` (default: ``SEARCH_SECONDS``, at most a third of a segment).
    The one segmentation of long recordings: the CLI streams a file's blocks through it, the Beam job one wave."""
    if search_seconds is None:
        search_seconds = min(SEARCH_SECONDS, max_seconds / 3)
    max_len = int(max_seconds * sample_rate)
    search = int(search_seconds * sample_rate)
    if max_len <= 0 or not 0 <= search <= max_len:
        raise ValueError(f"segments need max_seconds > 0 and 0 <= search_seconds <= max_seconds, got {max_seconds} "
                         f"and {search_seconds}")
    pending = np.zeros(0, np.float32)
    offset = 0
    for block in blocks:
        pending = np.concatenate([pending, block])
        while len(pending) > max_len:
            cut = quietest_cut(pending, sample_rate, max_len - search, max_len)
            yield offset, pending[:cut]
            pending, offset = pending[cut:], offset + cut
    if len(pending) or offset == 0:
        yield offset, pending


def iter_segments(path: str, sample_rate: int, max_seconds: float = MAX_SEGMENT_SECONDS,
                  search_seconds: float | None = None, notes: list[str] | None = None
                  ) -> Iterator[tuple[float, np.ndarray]]:
    """``(offset seconds, wave)`` segments of a file (:func:`segment_blocks`), streamed with bounded memory.
    A note on a file cut short goes to ``notes`` (:func:`speech.audio.iter_audio_blocks`)."""
    blocks = (block for _, block in iter_audio_blocks(path, block_seconds=max_seconds, sample_rate=sample_rate,
                                                      notes=notes))
    for start, wave in segment_blocks(blocks, sample_rate, max_seconds, search_seconds):
        yield start / sample_rate, wave


def segment_features(path: str, config: FeatureConfig, max_segment_seconds: float = MAX_SEGMENT_SECONDS,
                     variants: Sequence[FeatureConfig] | None = None, notes: list[str] | None = None
                     ) -> Iterator[tuple[float, list[np.ndarray], float]]:
    """``(offset seconds, [features under each variant], seconds read so far)`` of each speech segment of a file,
    streamed (:func:`iter_segments`; the edge silence cut moves each offset to its speech). Raises SpeechError."""
    variants = list(variants or [config])
    for offset, wave in iter_segments(path, config.sample_rate, max_segment_seconds, notes=notes):
        if wave.size == 0:
            if offset == 0:
                raise SpeechError("audio has no samples", path)
            continue
        if not np.all(np.isfinite(wave)):
            raise SpeechError("audio contains NaN or infinite samples", path)
        start, features = speech_feature_variants(wave, variants)  # edge silence cut: timings shift by it
        yield offset + start / config.sample_rate, features, offset + len(wave) / config.sample_rate


def featurize_file(path: str, config: FeatureConfig, max_segment_seconds: float = MAX_SEGMENT_SECONDS,
                   variants: Sequence[FeatureConfig] | None = None, max_seconds: float | None = None
                   ) -> tuple[str, float, list[tuple[float, list[np.ndarray], float]] | None, str | None]:
    """Decode and featurize one file: ``(path, duration, [(offset, [features under each variant], end)], warning)``
    (``end``: the segment's end, seconds; its words end by then), the
    variants of ``config`` the decoding search reads (default: ``config`` alone). A file longer than ``max_seconds``
    gives ``None`` for its segments instead: the caller streams it (:meth:`Transcriber.transcribe_long`), so that
    memory does not grow with a recording's length. Raises SpeechError."""
    segments, duration, notes = [], 0.0, []
    for offset, features, duration in segment_features(path, config, max_segment_seconds, variants, notes):
        if max_seconds is not None and duration > max_seconds:
            return path, duration, None, None
        segments.append((offset, features, duration))
    return path, duration, segments, notes[0] if notes else None


def _featurize_worker(args: tuple[str, FeatureConfig, float, list[FeatureConfig], float | None]):
    path, config, max_segment_seconds, variants, max_seconds = args
    try:
        return featurize_file(path, config, max_segment_seconds, variants, max_seconds)
    except DECODE_ERRORS as e:
        return path, 0.0, failure_reason(e), None


def merge_segments(parts: Sequence[tuple[float, Hypothesis, float]]) -> tuple[str, float, list[Word]]:
    """Join segment hypotheses ``(offset, hypothesis, end)``: words shifted by their offsets and ending by their
    segment's end (a word's last output frame may reach past the audio), mean confidence."""
    words = [w.shifted(offset, end) for offset, hyp, end in parts for w in hyp.words]
    text = " ".join(hyp.text for _, hyp, _ in parts if hyp.text)
    confidence = float(np.mean([hyp.confidence for _, hyp, _ in parts])) if parts else 0.0
    return text, confidence, words


LM_FILE = "lm.npz"  # speech.ngram's format: the same tables the SavedModel's graph holds


def model_decoding(model_dir: str | None = None, beam_width: int | None = None, lm_path: str | None = None,
                   **changes) -> DecodingOptions:
    """The :class:`DecodingOptions` to decode a model folder's output with (:func:`resolve_decoding`), with
    ``changes`` (alpha, beta, blank_penalty, hotwords, ..., ``None``: the model's own) applied."""
    import json

    from speech.model import CONFIG_FILE, resolve_model_dir

    folder = resolve_model_dir(model_dir)
    saved = json.loads((folder / CONFIG_FILE).read_text()).get("decoder", {})
    lm_file = str(folder / LM_FILE) if (folder / LM_FILE).is_file() else None
    return resolve_decoding(saved, lm_file, beam_width, lm_path).updated(**changes)


def resolve_decoding(saved: dict, lm_file: str | None, beam_width: int | None = None,
                     lm_path: str | None = None) -> DecodingOptions:
    """Options from a model's ``decoder`` config section and its LM file: the saved settings (LM weights, blank
    penalty, decoding search) were all tuned with that LM.

    ``beam_width=None`` is the model's own default decoding: ``saved`` (the bundled model ships an n-gram LM with
    weights tuned on dev, and a beam width) when ``lm_file`` exists, else greedy. A beam search asked for
    explicitly uses the model's LM and tuned settings too, unless ``lm_path`` names another LM (``"none"``: no LM)
    with default settings.
    """
    if beam_width is None:
        beam_width = int(saved.get("beam_width", 1)) if lm_file and lm_path is None else 1
    if lm_path is not None:
        return DecodingOptions(beam_width, None if lm_path.lower() == "none" else lm_path)
    if beam_width <= 1 or not lm_file:
        return DecodingOptions(beam_width)
    return DecodingOptions.from_config({**saved, "beam_width": beam_width}, lm_file)


def search_hop_lengths(hop_length: int, hop_lengths: Sequence[int] | None, decoder) -> tuple[int, ...]:
    """The feature hops the speaking-rate search decodes at: ``hop_lengths`` (the model's own hop first when among
    them, so a tie keeps it), or just ``hop_length`` when none are given or the decoder is greedy (which has no
    score to choose by)."""
    if not hop_lengths or not isinstance(decoder, BeamSearchDecoder):
        return (hop_length,)
    hops = tuple(dict.fromkeys(int(h) for h in hop_lengths))
    if any(h <= 0 for h in hops):
        raise ValueError(f"hop lengths must be positive, got {list(hops)}")
    return tuple(sorted(hops, key=lambda h: h != hop_length))


def search_variants(config: FeatureConfig, hop_lengths: Sequence[int] | None, fmaxes: Sequence[float | None] | None,
                    decoder) -> list[FeatureConfig]:
    """The feature configs the decoding search reads: each of ``fmaxes`` (the mel filterbank's top edge; below the
    Nyquist frequency it stretches the spectrum over the filters, as a shorter vocal tract would: VTLN's warp) with
    each hop of :func:`search_hop_lengths` (speaking rate); ``config`` itself first, so that a tie keeps it. Just
    ``config`` for a greedy decoder, which has no score to choose by."""
    hops = search_hop_lengths(config.hop_length, hop_lengths, decoder)
    warps: tuple[float | None, ...] = (config.fmax,)
    if fmaxes and isinstance(decoder, BeamSearchDecoder):
        warps = tuple(dict.fromkeys(None if f is None else float(f) for f in fmaxes))
        if any(f is not None and not 0 < f <= config.sample_rate / 2 for f in warps):
            raise ValueError(f"fmax values must be in (0, {config.sample_rate / 2:g}] or None, got {list(warps)}")
        warps = tuple(sorted(warps, key=lambda f: f != config.fmax))
    return [config if (f, h) == (config.fmax, config.hop_length) else replace(config, hop_length=h, fmax=f)
            for f in warps for h in hops]


def search_choice(decodes: Sequence[Hypothesis], variants: Sequence[FeatureConfig], config: FeatureConfig,
                  letter_bonus: float) -> Hypothesis:
    """The decoding search's result for one segment from its decodes under each of ``variants`` (by a decoder built
    for ``config``'s hop): the best-scoring one (:func:`speech.decoding.best_hypothesis`), word times at its hop."""
    if len(decodes) != len(variants):
        raise ValueError(f"expected decodes under {len(variants)} variant(s), got {len(decodes)}")
    return best_hypothesis([(h, v.hop_length / config.hop_length) for h, v in zip(decodes, variants)], letter_bonus)


Predict = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


def length_sorted_batches(lengths: Sequence[int], batch_size: int, max_padded: int) -> list[list[int]]:
    """Indices of ``lengths`` in batches sorted by length, each of at most ``batch_size`` items and ``max_padded``
    padded elements (longest x count; one item alone may exceed it)."""
    batches: list[list[int]] = []
    for i in sorted(range(len(lengths)), key=lambda i: lengths[i]):
        batch = batches[-1] if batches else None
        if batch is None or len(batch) >= batch_size or lengths[i] * (len(batch) + 1) > max_padded:
            batches.append([i])
        else:
            batch.append(i)
    return batches


def padded_batches(arrays: Sequence[np.ndarray], batch_size: int,
                   max_padded: int) -> Iterator[tuple[list[int], np.ndarray, np.ndarray]]:
    """``(indices, padded float32 [B, T, D], lengths int32 [B])`` of ``arrays`` (each ``[T_i, D]``) in the batches of
    :func:`length_sorted_batches`."""
    for batch in length_sorted_batches([len(a) for a in arrays], batch_size, max_padded):
        lengths = np.array([len(arrays[i]) for i in batch], np.int32)
        padded = np.zeros((len(batch), lengths.max(), arrays[batch[0]].shape[1]), np.float32)
        for row, i in enumerate(batch):
            padded[row, :lengths[row]] = arrays[i]
        yield batch, padded, lengths


def batched_log_probs(predict: Predict, features: Sequence[np.ndarray], batch_size: int,
                      max_batch_frames: int) -> list[np.ndarray]:
    """Per-utterance log-probabilities ``[T', C]`` (valid frames only) of ``features`` (each ``[T, n_mfcc]``), run
    through ``predict(padded [B, T, n_mfcc], lengths [B]) -> (log_probs [B, T', C], lengths [B])`` in length-sorted
    batches of at most ``batch_size`` utterances and ``max_batch_frames`` padded frames. ``predict`` is the Keras
    model (:class:`Transcriber`) or a SavedModel's ``logits`` signature (the Beam job)."""
    out: list[np.ndarray | None] = [None] * len(features)
    for batch, padded, lengths in padded_batches(features, batch_size, max_batch_frames):
        log_probs, out_lengths = predict(padded, lengths)
        for row, i in enumerate(batch):
            out[i] = np.asarray(log_probs[row, :out_lengths[row]])
    return out  # type: ignore[return-value]


DECODE_BATCH = 16  # utterances the beam search decodes at once (it runs as graph ops, a batch per call)


def decode_all(decoder, log_probs: Sequence[np.ndarray], batch_size: int = DECODE_BATCH) -> list[Hypothesis]:
    """One hypothesis per utterance of ``log_probs`` (each ``[T', C]``), decoded in length-sorted batches."""
    out: list[Hypothesis | None] = [None] * len(log_probs)
    longest = max((len(x) for x in log_probs), default=0)
    for batch, padded, lengths in padded_batches(log_probs, batch_size, max_padded=batch_size * longest):
        for i, hyp in zip(batch, decoder.decode_batch(padded, lengths)):
            out[i] = hyp
    return out  # type: ignore[return-value]


class Decoding:
    """:class:`DecodingOptions` made ready for one model: its decoder and the feature variants of its decoding
    search. The one path from features to hypotheses, shared by the :class:`Transcriber` (and so the CLI and
    evaluation) and the Beam job, whatever runs the network."""

    def __init__(self, spec, options: DecodingOptions):
        self.options, self.features = options, spec.features
        self.decoder = make_decoder(spec.vocab, spec.frame_seconds, options)
        # The decoding search: the beam search under each of these feature variants (speaking rate x vocal tract),
        # its best-scoring result kept.
        self.variants = search_variants(spec.features, options.hop_lengths, options.fmaxes, self.decoder)
        if len(options.hop_lengths) > 1 and len(self.variants) == 1:
            log.warning("greedy decoding has no score to choose a hop by: decoding at the model's own hop, %d",
                        spec.features.hop_length)

    def featurize(self, wave: np.ndarray) -> tuple[int, list[np.ndarray]]:
        """``(samples of edge silence cut, [features under each variant])`` of one segment's wave."""
        return speech_feature_variants(wave, self.variants)

    def decode(self, candidates: Sequence[Sequence[np.ndarray]],
               log_probs: Callable[[list[np.ndarray]], list[np.ndarray]]) -> list[Hypothesis]:
        """One hypothesis per utterance from its features under each of :attr:`variants` (in that order), the
        network run by ``log_probs`` (features in, log-probabilities out): the decode the beam search scores
        highest (with the letter bonus), its word times in seconds at its hop.

        Why: an output frame spans 3 feature hops, and a voice faster than any in training runs its letters
        together (deletions are most of the unseen voices' character errors). Decoding at a shorter hop reads the
        same audio as if spoken slower; the search's own objective picks the rate for each utterance."""
        flat = [f for feats in candidates for f in feats]
        hyps = decode_all(self.decoder, log_probs(flat))
        out, k = [], 0
        for feats in candidates:
            out.append(search_choice(hyps[k:k + len(feats)], self.variants, self.features,
                                     self.options.letter_bonus))
            k += len(feats)
        return out


def set_tensorflow_threads(threads: int) -> None:
    """Run this process's TensorFlow ops on ``threads`` threads each, and one op at a time where ``threads`` is 1
    (0: TensorFlow's own choice, about one per core). Call before TensorFlow's first op; after it, a SpeechError.

    On 2 cores one thread took 30-35% less CPU per audio-second than TensorFlow's two, for 10-20% more wall time
    (the bundled model's decoding, ``docs/benchmarks.md``): the other thread mostly waits for work. A batch job on
    a machine of its own wants the wall time; jobs that share the machine, the CPU."""
    import tensorflow as tf

    if threads < 0:
        raise SpeechError(f"threads must be 0 (TensorFlow's choice) or more, got {threads}")
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError as e:  # TensorFlow's runtime already started with its own
        current = (tf.config.threading.get_intra_op_parallelism_threads(),
                   tf.config.threading.get_inter_op_parallelism_threads())
        if current != (threads, threads):
            raise SpeechError(f"cannot set TensorFlow's threads to {threads} once it has run an op ({e})") from None


class Transcriber:
    """Loads a model folder (the bundled default when ``model_dir`` is None) and transcribes audio, decoding as
    ``options`` say (default: the folder's own decoding, :func:`model_decoding`)."""

    def __init__(self, model_dir: str | None = None, options: DecodingOptions | None = None, batch_size: int = 16,
                 max_batch_frames: int = 48000, max_segment_seconds: float = MAX_SEGMENT_SECONDS,
                 long_file_seconds: float = LONG_FILE_SECONDS):
        import tensorflow as tf

        from speech.model import load_model

        self.model, self.spec = load_model(model_dir)
        self.options = model_decoding(model_dir) if options is None else options
        self.decoding = Decoding(self.spec, self.options)
        self.decoder, self.variants = self.decoding.decoder, self.decoding.variants
        self.hop_lengths = tuple(dict.fromkeys(v.hop_length for v in self.variants))
        self.batch_size, self.max_batch_frames = batch_size, max_batch_frames
        self.max_segment_seconds = max_segment_seconds
        self.long_file_seconds = long_file_seconds
        model, output_length = self.model, self.spec.model.output_length
        signature = [tf.TensorSpec([None, None, self.spec.features.n_mfcc], tf.float32),
                     tf.TensorSpec([None], tf.int32)]

        @tf.function(input_signature=signature)
        def predict(features, lengths):
            logits = model({"features": features, "lengths": lengths}, training=False)
            return tf.nn.log_softmax(logits), output_length(lengths)

        self._predict = predict

    # -- features in, hypotheses out ------------------------------------------------------------------------
    def log_probs(self, features: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Per-utterance log-probabilities ``[T', C]`` (valid frames only), computed in length-sorted batches."""
        def predict(padded, lengths):
            log_probs, out_lengths = self._predict(padded, lengths)
            return log_probs.numpy(), out_lengths.numpy()

        return batched_log_probs(predict, features, self.batch_size, self.max_batch_frames)

    def decode(self, log_probs: Sequence[np.ndarray]) -> list[Hypothesis]:
        return decode_all(self.decoder, log_probs)

    def transcribe_features(self, features: Sequence[np.ndarray]) -> list[Hypothesis]:
        """Features of the model's own config in, hypotheses out (no decoding search)."""
        return self.decode(self.log_probs(features))

    def transcribe_candidates(self, candidates: Sequence[Sequence[np.ndarray]]) -> list[Hypothesis]:
        """One hypothesis per utterance from its features under each of :attr:`variants` (:meth:`Decoding.decode`)."""
        return self.decoding.decode(candidates, self.log_probs)

    def transcribe_waveform(self, wave: np.ndarray) -> Hypothesis:
        """One mono waveform at the model's sample rate (no segmentation); word times from the wave's start."""
        start, features = self.decoding.featurize(wave)
        hyp = self.transcribe_candidates([features])[0]
        rate = self.spec.features.sample_rate
        hyp.words = [w.shifted(start / rate, len(wave) / rate) for w in hyp.words]
        return hyp

    # -- files in, transcripts out ---------------------------------------------------------------------------
    def transcribe_files(self, paths: Iterable[str], jobs: int | None = None, files_per_batch: int = 64,
                         seconds_per_batch: float = CHUNK_AUDIO_SECONDS,
                         on_audio: Callable[[float], None] | None = None) -> Iterator[Transcript]:
        """Transcripts in input order. Bad files yield a Transcript with ``error`` set, never raise.

        Files are decoded together in chunks of up to ``files_per_batch`` files or ``seconds_per_batch`` of audio,
        whichever comes first: a chunk's transcripts come out (and a batch job writes them) when it is done, so a
        killed job loses at most one chunk of work, however long its recordings. ``on_audio(seconds)`` is called as
        each :data:`PROGRESS_SECONDS` or so of audio is decoded (a progress bar that moves within a long file)."""
        paths = list(paths)
        jobs = jobs or (os.cpu_count() or 1 if len(paths) >= PARALLEL_MIN_FILES else 1)
        tasks = ((str(p), self.spec.features, self.max_segment_seconds, self.variants, self.long_file_seconds)
                 for p in paths)
        if jobs == 1:
            yield from self._transcribe_chunks(map(_featurize_worker, tasks), files_per_batch, seconds_per_batch,
                                               on_audio)
            return
        with worker_pool(jobs, [self.spec.features, *self.variants]) as pool:
            yield from self._transcribe_chunks(pool.map(_featurize_worker, tasks, chunksize=4), files_per_batch,
                                               seconds_per_batch, on_audio)

    def _transcribe_chunks(self, featurized: Iterable, files_per_batch: int,
                           seconds_per_batch: float = CHUNK_AUDIO_SECONDS,
                           on_audio: Callable[[float], None] | None = None) -> Iterator[Transcript]:
        chunk: list = []
        seconds = 0.0
        for item in featurized:
            if item[2] is None:  # a long recording: streamed here, in order, with bounded memory
                if chunk:
                    yield from self._transcribe_chunk(chunk, on_audio)
                    chunk, seconds = [], 0.0
                yield self.transcribe_long(item[0], seconds_per_batch, on_audio)
                continue
            chunk.append(item)
            seconds += item[1]  # the file's duration (0 for a failure)
            if len(chunk) >= files_per_batch or seconds >= seconds_per_batch:
                yield from self._transcribe_chunk(chunk, on_audio)
                chunk, seconds = [], 0.0
        if chunk:
            yield from self._transcribe_chunk(chunk, on_audio)

    def transcribe_long(self, path: str, seconds_per_batch: float = CHUNK_AUDIO_SECONDS,
                        on_audio: Callable[[float], None] | None = None) -> Transcript:
        """One recording of any length, featurized and decoded ``seconds_per_batch`` of audio at a time: memory
        holds one such batch of segments (under every feature variant) and the words so far, whatever the
        length. The same segments, features and decodes as :meth:`transcribe_files` gives a shorter file."""
        parts: list[tuple[float, Hypothesis, float]] = []
        pending: list[tuple[float, list[np.ndarray], float]] = []
        notes: list[str] = []
        duration = flushed = 0.0  # seconds read in all, and when the last batch was decoded

        def flush() -> None:
            parts.extend(self._decode_segments(pending, on_audio))
            pending.clear()

        try:
            for offset, features, end in segment_features(path, self.spec.features, self.max_segment_seconds,
                                                          self.variants, notes):
                pending.append((offset, features, end))
                duration = end
                if duration - flushed >= seconds_per_batch:
                    flush()
                    flushed = duration
            if pending:
                flush()
        except DECODE_ERRORS as e:
            return Transcript(path, error=failure_reason(e))
        text, confidence, words = merge_segments(parts)
        return Transcript(path, duration, text, confidence, words, warning=notes[0] if notes else None)

    def _decode_segments(self, segments: Sequence[tuple[float, list[np.ndarray], float]],
                         on_audio: Callable[[float], None] | None) -> list[tuple[float, Hypothesis, float]]:
        """``(offset, hypothesis, end)`` of each ``(offset, features, end)`` segment, decoded about
        :data:`PROGRESS_SECONDS` of audio at a time, ``on_audio`` told of each such step."""
        out: list[tuple[float, Hypothesis, float]] = []
        start = 0
        while start < len(segments):
            stop, seconds = start, 0.0
            while stop < len(segments) and seconds < PROGRESS_SECONDS:
                seconds += segments[stop][2] - segments[stop][0]
                stop += 1
            group = segments[start:stop]
            hyps = self.transcribe_candidates([features for _, features, _ in group])
            out.extend((offset, hyp, end) for (offset, _, end), hyp in zip(group, hyps))
            if on_audio is not None:
                on_audio(seconds)
            start = stop
        return out

    def _transcribe_chunk(self, chunk: list, on_audio: Callable[[float], None] | None = None
                          ) -> Iterator[Transcript]:
        flat = [(i, segment) for i, (_, _, segs, _) in enumerate(chunk) if not isinstance(segs, str)
                for segment in segs]
        decoded = self._decode_segments([segment for _, segment in flat], on_audio)
        per_file: dict[int, list[tuple[float, Hypothesis, float]]] = {}
        for (i, _), part in zip(flat, decoded):
            per_file.setdefault(i, []).append(part)
        for i, (path, duration, segs, warning) in enumerate(chunk):
            if isinstance(segs, str):
                yield Transcript(path, error=segs)
                continue
            text, confidence, words = merge_segments(per_file.get(i, []))
            yield Transcript(path, duration, text, confidence, words, warning=warning)
