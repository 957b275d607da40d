"""Batch transcription on Apache Beam: audio files matched by a pattern -> JSON lines, through RunInference.

    python -m speech beam --input 'audio/**.wav' --model exports/speech --output out/transcripts \\
        [--runner DataflowRunner --project P --region R --temp_location gs://B/tmp ...]

Steps: ``MatchFiles``/``ReadMatches`` (local paths and whatever Beam's filesystems read: gs://, s3://, hdfs://;
Beam globs: ``*`` within a folder, ``**`` across folders) -> decode as a stream, as the CLI does (any format;
recordings longer than ``--max-segment-seconds`` are cut at their quietest 100 ms, the CLI's rule, each segment
passed on as it is read, so memory stays flat with a recording's length) ->
``RunInference`` with :class:`SavedModelHandler`, which loads the exported SavedModel (``python -m speech
export``) with ``tf.saved_model.load`` and calls its ``transcribe_waveform`` signature on length-sorted, padded
sub-batches -> segments merged per file -> ``WriteToText``. Decoding is the CLI's: when the model's own decoding
(its ``assets.extra/config.json``) or ``--beam N`` is a beam search, the handler computes the CLI's features,
calls the ``logits`` signature and decodes with :mod:`speech.decoding` and the exported LM, so the records equal
``python -m speech transcribe``'s; otherwise the graph's greedy decoder is used (the same output as ``--beam 1``).

Outputs: ``PREFIX-SSSSS-of-NNNNN.jsonl``, one record per file, the same as ``python -m speech transcribe``
prints (``audio_filepath`` as matched, ``duration``, ``text``, ``confidence``, ``words``), and
``PREFIX.failures-SSSSS-of-NNNNN.jsonl``: ``{"audio_filepath", "error"}`` for files that could not be decoded
or that the model reported an error for. A bad file never fails the pipeline.

Arguments this script does not know are Beam pipeline options (``--runner``, ``--project``, ``--region``,
``--temp_location``, ``--flink_master``, ``--requirements_file``, ``--setup_file``...). DirectRunner by default.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import apache_beam as beam
import numpy as np
from apache_beam.io import fileio
from apache_beam.io.filesystems import FileSystems
from apache_beam.ml.inference.base import ModelHandler, PredictionResult, RunInference
from apache_beam.options.pipeline_options import PipelineOptions

from speech.decoding import Word

log = logging.getLogger(__name__)

NAMESPACE = "speech"
FAILURES_SUFFIX = ".failures"
SHARD_SUFFIX = ".jsonl"


class Segment(NamedTuple):
    """One piece of one file on its way to the model (most files are one segment)."""

    path: str
    index: int
    count: int
    offset: float  # seconds from the start of the file
    # count, num_samples (the file's duration once merged) and warning (speech.transcribe.Transcript.warning) are
    # the whole file's, known once it is read: the last segment carries them, the others have 0, 0 and None.
    num_samples: int
    wave: np.ndarray
    warning: str | None = None


class SegmentResult(NamedTuple):
    path: str
    index: int
    count: int
    offset: float
    num_samples: int
    text: str
    confidence: float
    words: list[dict]
    error: str
    warning: str | None = None


# ---------------------------------------------------------------------------------------------------------
# Decoding.


def _stream(readable: fileio.ReadableFile, sample_rate: int, max_seconds: float, notes: list[str]
            ) -> Iterator[tuple[int, np.ndarray]]:
    """``(start sample, wave)`` segments of the file at ``sample_rate``, streamed as the CLI streams them
    (:func:`speech.transcribe.segment_blocks` over :func:`speech.audio.iter_audio_blocks`), so that memory does not
    grow with a recording's length; a note on a file cut short or damaged goes to ``notes`` once it is read.
    Raises what :func:`speech.audio.load_audio` raises."""
    path = readable.metadata.path
    if FileSystems.get_scheme(path) is None:  # a local path: the loader says what it is if not a file (gone, a folder)
        yield from _local_segments(path, path, sample_rate, max_seconds, notes)
        return
    # Remote files (gs://, s3://...): the decoders need a local file; the suffix tells ffmpeg the format.
    with tempfile.NamedTemporaryFile(suffix=os.path.splitext(path)[1]) as tmp:
        with readable.open(compression_type=beam.io.filesystem.CompressionTypes.UNCOMPRESSED) as f:
            while chunk := f.read(1 << 20):
                tmp.write(chunk)
        tmp.flush()
        yield from _local_segments(tmp.name, path, sample_rate, max_seconds, notes)


def _local_segments(local: str, path: str, sample_rate: int, max_seconds: float, notes: list[str]
                    ) -> Iterator[tuple[int, np.ndarray]]:
    from speech.audio import iter_audio_blocks
    from speech.errors import AudioError
    from speech.transcribe import segment_blocks

    try:
        blocks = (block for _, block in iter_audio_blocks(local, block_seconds=max_seconds, sample_rate=sample_rate,
                                                          notes=notes))
        for start, wave in segment_blocks(blocks, sample_rate, max_seconds):
            if wave.size == 0:
                raise AudioError("audio has no samples", local)
            if not np.all(np.isfinite(wave)):
                raise AudioError("audio contains NaN or infinite samples", local)
            yield start, wave
    except AudioError as e:  # decoder messages quote the file name: name the real one, not a remote file's copy
        raise AudioError(e.reason.replace(local, path), path) from e


class DecodeAudio(beam.DoFn):
    """ReadableFile -> Segments; files that cannot be decoded go to the ``failures`` output with the reason."""

    FAILURES = "failures"

    def __init__(self, sample_rate: int, max_segment_seconds: float):
        self.sample_rate = sample_rate
        self.max_segment_seconds = max_segment_seconds
        self.failed = beam.metrics.Metrics.counter(NAMESPACE, "decode_failures")

    def process(self, readable: fileio.ReadableFile) -> Iterator[Any]:
        from speech.errors import SpeechError

        path = readable.metadata.path
        notes: list[str] = []
        previous, count, end = None, 0, 0
        try:
            # Each segment goes on as the next is read (one ahead: the last is told apart by the stream's end).
            for start, wave in _stream(readable, self.sample_rate, self.max_segment_seconds, notes):
                if previous is not None:
                    yield previous
                previous = Segment(path, count, 0, start / self.sample_rate, 0, wave)
                count, end = count + 1, start + len(wave)
        except SpeechError as e:
            reason = e.reason  # not str(e): for a remote file that would name the temp copy
        except (OSError, ValueError, RuntimeError, MemoryError) as e:  # decoders fail in many ways on broken files
            reason = f"cannot decode audio ({type(e).__name__}: {e})"
        else:
            # The last segment carries what only the stream's end tells: the file's segments, length and warning.
            yield previous._replace(count=count, num_samples=end, warning=notes[0] if notes else None)
            return
        self.failed.inc()
        yield beam.pvalue.TaggedOutput(self.FAILURES, {"audio_filepath": path, "error": reason})


# ---------------------------------------------------------------------------------------------------------
# The model.


@dataclass
class LoadedModel:  # not a tuple: Beam's Shared keeps a weak reference to it
    saved_model: Any
    decoding: Any = None  # the CLI's speech.transcribe.Decoding, or None for the graph's greedy decoding


def _local_copy(path: str) -> str:
    """A local path for ``path`` (the LM is read from local files only): itself, or a copy in a temp folder."""
    import tensorflow as tf

    if os.path.isfile(path):
        return path
    local = os.path.join(tempfile.mkdtemp(prefix="speech-lm-"), os.path.basename(path))
    tf.io.gfile.copy(path, local)
    return local


def resolve_version(base: str) -> str:
    """``base`` itself when it holds ``saved_model.pb``, else its highest numeric version folder (TF Serving's
    layout, as ``python -m speech export`` writes it)."""
    import tensorflow as tf

    from speech.errors import ModelError

    if tf.io.gfile.exists(f"{base.rstrip('/')}/saved_model.pb"):
        return base
    if not tf.io.gfile.isdir(base):
        raise ModelError("SavedModel folder not found", base)
    versions = [int(name.rstrip("/")) for name in tf.io.gfile.listdir(base) if name.rstrip("/").isdigit()]
    for version in sorted(versions, reverse=True):
        path = f"{base.rstrip('/')}/{version}"
        if tf.io.gfile.exists(f"{path}/saved_model.pb"):
            return path
    raise ModelError("no SavedModel (saved_model.pb) in it nor in a numeric version folder", base)


class SavedModelHandler(ModelHandler[Segment, PredictionResult, Any]):
    """RunInference handler for the exported speech SavedModel.

    Beam's ``TFModelHandlerTensor`` imports tensorflow_hub (and so tf-keras and the full ``tensorflow``
    package, which clashes with tensorflow-cpu); this one needs only TensorFlow. Beam hands it bundles of
    segments bounded in samples; it sorts them by length and runs sub-batches of
    at most ``batch_size`` rows and ``max_batch_samples`` padded samples, so short clips are not padded to
    the longest clip of the bundle.
    """

    def __init__(self, model_path: str, sample_rate: int = 16000, batch_size: int = 16,
                 max_batch_samples: int = 16 * 10 * 16000, bundle_batches: int = 4, beam_width: int | None = None,
                 lm_path: str | None = None):
        # BatchElements measures a batch with element_size_fn, so its sizes are in samples here: bundles of one
        # to `bundle_batches` full model calls. (Beam 2.77's ModelHandler accepts max_batch_weight but its
        # BatchElements rejects it, hence sizes rather than weights.)
        super().__init__(min_batch_size=max_batch_samples, max_batch_size=bundle_batches * max_batch_samples,
                         element_size_fn=lambda segment: len(segment.wave))
        self.model_path = model_path
        self.sample_rate = sample_rate
        self.batch_size = batch_size
        self.max_batch_samples = max_batch_samples
        self.beam_width, self.lm_path = beam_width, lm_path

    def load_model(self) -> Any:
        import tensorflow as tf

        from speech.errors import ModelError

        path = resolve_version(self.model_path)
        model = tf.saved_model.load(path)
        if "transcribe_waveform" not in model.signatures:
            raise ModelError("SavedModel has no transcribe_waveform signature (export it with "
                             "`python -m speech export`)", path)
        # The SavedModel reports duration = samples / its rate: one second of silence tells its rate, and a
        # mismatch would silently give wrong transcripts.
        probe = model.signatures["transcribe_waveform"](waveform=tf.zeros([1, self.sample_rate]),
                                                        lengths=tf.constant([self.sample_rate]))
        rate = self.sample_rate / float(probe["duration"].numpy()[0])
        if abs(rate - self.sample_rate) > 0.5:
            raise ModelError(f"the model expects {rate:.0f} Hz audio, not {self.sample_rate} (--sample-rate)", path)
        decoding = self._decoding(path)
        log.info("loaded SavedModel %s; decoding: %s", path,
                 type(decoding.decoder).__name__ if decoding else "in-graph greedy")
        return LoadedModel(model, decoding)

    def _decoding(self, path: str) -> Any:
        """The CLI's :class:`speech.transcribe.Decoding` when the decoding asked for, or the model's own (its
        ``assets.extra/config.json``, as ``speech export`` writes it), is a beam search; None: in-graph greedy."""
        import tensorflow as tf

        from speech.export import EXTRA_DIR
        from speech.model import CONFIG_FILE, ModelSpec
        from speech.transcribe import LM_FILE, Decoding, resolve_decoding

        extra = f"{path.rstrip('/')}/{EXTRA_DIR}"
        if self.beam_width == 1 or not tf.io.gfile.exists(f"{extra}/{CONFIG_FILE}"):
            return None  # greedy: the graph's own decoder gives the same result
        with tf.io.gfile.GFile(f"{extra}/{CONFIG_FILE}") as f:
            config = json.load(f)
        lm_file = _local_copy(f"{extra}/{LM_FILE}") if tf.io.gfile.exists(f"{extra}/{LM_FILE}") else None
        lm_path = _local_copy(self.lm_path) if self.lm_path and self.lm_path.lower() != "none" else self.lm_path
        options = resolve_decoding(config.get("decoder", {}), lm_file, self.beam_width, lm_path)
        return None if options.greedy else Decoding(ModelSpec.from_json(config), options)

    def run_inference(self, batch: Sequence[Segment], model: Any,
                      inference_args: dict[str, Any] | None = None) -> Iterable[PredictionResult]:
        if model.decoding is not None:
            return self._run_with_decoder(batch, model)
        model = model.saved_model
        results: list[PredictionResult | None] = [None] * len(batch)
        for rows in self._sub_batches(batch):
            lengths = np.array([len(batch[i].wave) for i in rows], np.int32)
            padded = np.zeros((len(rows), lengths.max()), np.float32)
            for row, i in enumerate(rows):
                padded[row, :lengths[row]] = batch[i].wave
            out = model.signatures["transcribe_waveform"](waveform=padded, lengths=lengths)
            out = {k: v.numpy() for k, v in out.items()}
            for row, i in enumerate(rows):
                s = batch[i]
                result = SegmentResult(
                    s.path, s.index, s.count, s.offset, s.num_samples, out["transcript"][row].decode("utf-8"),
                    float(out["confidence"][row]), json.loads(out["words"][row].decode("utf-8")),
                    out["error"][row].decode("utf-8"), s.warning)
                # The wave is not carried on: the example is the segment's key.
                results[i] = PredictionResult((s.path, s.index), result)
        return results  # type: ignore[return-value]

    def _run_with_decoder(self, batch: Sequence[Segment], model: LoadedModel) -> list[PredictionResult]:
        """The CLI's path (:class:`speech.transcribe.Decoding`): librosa features, the model's ``logits``
        signature, the :mod:`speech.decoding` decoder and the decoding search."""
        from speech.errors import SpeechError
        from speech.transcribe import batched_log_probs

        signature, decoding = model.saved_model.signatures["logits"], model.decoding
        rate = decoding.features.sample_rate

        def log_probs(features: list[np.ndarray]) -> list[np.ndarray]:
            def predict(padded, lengths):
                out = signature(features=padded, lengths=lengths)
                return out["log_probs"].numpy(), out["lengths"].numpy()

            return batched_log_probs(predict, features, self.batch_size,
                                     max(1, self.max_batch_samples // decoding.features.hop_length))

        results: list[PredictionResult] = [None] * len(batch)  # type: ignore[list-item]
        good, candidates, starts = [], [], []
        for i, s in enumerate(batch):
            try:  # as the graph does, a bad segment becomes an error record, never a failed bundle
                if not np.all(np.isfinite(s.wave)):
                    raise SpeechError("audio contains NaN or infinite samples")
                start, features = decoding.featurize(s.wave)  # edge silence cut: word times shift by it
            except SpeechError as e:
                results[i] = PredictionResult((s.path, s.index), SegmentResult(
                    s.path, s.index, s.count, s.offset, s.num_samples, "", 0.0, [], e.reason, s.warning))
                continue
            good.append(i)
            candidates.append(features)
            starts.append(start / rate)
        hyps = decoding.decode(candidates, log_probs) if candidates else []
        for i, start, hyp in zip(good, starts, hyps):
            s = batch[i]
            words = [w.shifted(start, len(s.wave) / rate).to_json() for w in hyp.words]
            results[i] = PredictionResult((s.path, s.index), SegmentResult(
                s.path, s.index, s.count, s.offset, s.num_samples, hyp.text, float(hyp.confidence), words, "",
                s.warning))
        return results

    def _sub_batches(self, batch: Sequence[Segment]) -> list[list[int]]:
        from speech.transcribe import length_sorted_batches

        return length_sorted_batches([len(s.wave) for s in batch], self.batch_size, self.max_batch_samples)

    def get_num_bytes(self, batch: Sequence[Segment]) -> int:
        return sum(segment.wave.nbytes for segment in batch)  # the default pickles the whole batch

    def get_metrics_namespace(self) -> str:
        return NAMESPACE


# ---------------------------------------------------------------------------------------------------------
# Records.


def merge_file(item: tuple[str, Iterable[SegmentResult]], sample_rate: int) -> Iterator[Any]:
    """All segments of one file -> the CLI's JSON record (:meth:`speech.transcribe.Transcript.to_json`),
    or a failure when the model reported an error for any segment."""
    path, parts = item
    parts = sorted(parts, key=lambda r: r.index)
    last = max(parts, key=lambda r: r.count)  # the one segment that carries the file's count, length and warning
    if not last.count:  # the file's stream broke off: DecodeAudio has reported it, its first segments are moot
        return
    errors = [r.error for r in parts if r.error]
    if errors or len(parts) != last.count:
        reason = errors[0] if errors else f"{len(parts)} of {last.count} segments transcribed"
        yield beam.pvalue.TaggedOutput(DecodeAudio.FAILURES, {"audio_filepath": path, "error": reason})
        return
    # speech.transcribe.merge_segments: words shifted by their segment's offset (each already ends by its
    # segment's end), mean confidence.
    words = [Word(**w).shifted(r.offset).to_json() for r in parts for w in r.words]
    record = {"audio_filepath": path, "duration": round(last.num_samples / sample_rate, 3),
              "text": " ".join(r.text for r in parts if r.text),
              "confidence": round(float(np.mean([r.confidence for r in parts])), 4), "words": words}
    if last.warning:
        record["warning"] = last.warning
    yield record


def to_json_line(record: dict) -> str:
    from speech.manifest import json_line

    return json_line(record)  # a local file name that is not UTF-8 would stop WriteToText (surrogates)


# ---------------------------------------------------------------------------------------------------------
# The pipeline.


EXAMPLES = """examples:
  speech export --output serving/speech
  speech beam --input 'talks/**/*.wav' --model serving/speech --output out/transcripts
  speech beam --input 'gs://bucket/audio/*.flac' --model gs://bucket/serving/speech --output gs://bucket/out \
      --runner DataflowRunner --project P --region R --temp_location gs://bucket/tmp
"""


def build_parser() -> argparse.ArgumentParser:
    from speech.transcribe import MAX_SEGMENT_SECONDS

    p = argparse.ArgumentParser(prog="speech beam", description=__doc__, epilog=EXAMPLES,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--input", required=True, help="file pattern (glob; local or any Beam filesystem)")
    p.add_argument("--model", required=True, help="SavedModel base (python -m speech export --output) "
                                                  "or one version folder")
    p.add_argument("--output", required=True, help="output prefix: PREFIX-*.jsonl and PREFIX.failures-*.jsonl")
    p.add_argument("--sample-rate", type=int, default=16000, help="the model's sample rate (checked at load)")
    p.add_argument("--batch-size", type=int, default=16, help="rows per model call")
    p.add_argument("--max-batch-seconds", type=float, default=160.0,
                   help="padded audio per model call, in seconds (bounds memory)")
    p.add_argument("--max-segment-seconds", type=float, default=MAX_SEGMENT_SECONDS,
                   help=f"longer recordings are cut at quiet points, as the CLI does (default {MAX_SEGMENT_SECONDS:g})")
    p.add_argument("--num-shards", type=int, default=0, help="output shards (0: the runner chooses)")
    p.add_argument("--beam", type=int, help="beam width; 1: the graph's greedy decoding (default: the model's own "
                   "decoding, as the CLI: for the bundled model, a beam search with the LM exported beside it)")
    p.add_argument("--lm", help="n-gram LM for the beam search, .npz or ARPA (default: the export's "
                   "assets.extra/lm.npz; 'none': no LM)")
    return p


def build_pipeline(pipeline: beam.Pipeline, args: argparse.Namespace) -> dict[str, beam.PCollection]:
    """Add the transforms to ``pipeline``; returns the ``transcripts`` and ``failures`` record collections."""
    handler = SavedModelHandler(args.model, sample_rate=args.sample_rate, batch_size=args.batch_size,
                                max_batch_samples=int(args.max_batch_seconds * args.sample_rate),
                                beam_width=getattr(args, "beam", None), lm_path=getattr(args, "lm", None))
    decoded = (pipeline
               | "Match" >> fileio.MatchFiles(args.input)
               | "Read" >> fileio.ReadMatches()
               # Reshuffle so that decoding spreads over workers (a few huge match results would not).
               | "Spread" >> beam.Reshuffle()
               | "Decode" >> beam.ParDo(DecodeAudio(args.sample_rate, args.max_segment_seconds))
               .with_outputs(DecodeAudio.FAILURES, main="segments"))
    merged = (decoded.segments
              | "Transcribe" >> RunInference(handler)
              | "KeyByFile" >> beam.Map(lambda r: (r.inference.path, r.inference))
              | "GroupSegments" >> beam.GroupByKey()
              | "Merge" >> beam.FlatMap(merge_file, sample_rate=args.sample_rate)
              .with_outputs(DecodeAudio.FAILURES, main="transcripts"))
    failures = ((decoded[DecodeAudio.FAILURES], merged[DecodeAudio.FAILURES])
                | "AllFailures" >> beam.Flatten())
    shards = {"num_shards": args.num_shards, "file_name_suffix": SHARD_SUFFIX}
    _ = (merged.transcripts | "TranscriptLines" >> beam.Map(to_json_line)
         | "WriteTranscripts" >> beam.io.WriteToText(args.output, **shards))
    _ = (failures | "FailureLines" >> beam.Map(to_json_line)
         | "WriteFailures" >> beam.io.WriteToText(args.output + FAILURES_SUFFIX, **shards))
    return {"transcripts": merged.transcripts, "failures": failures}


def input_pattern(text: str) -> str:
    """``--input`` as a pattern: a local folder means every file below it (``DIR/**``), as a folder on ``speech
    transcribe``'s command line does; Beam would match the folder itself, one "file" that is not audio."""
    if FileSystems.get_scheme(text) is None and os.path.isdir(text):
        log.info("--input %s is a folder: reading every file below it (%s)", text, os.path.join(text, "**"))
        return os.path.join(text, "**")
    return text


def main(argv: list[str] | None = None) -> int:
    """Run the pipeline and wait for it; the exit code is 0 (a failed file is a record, not an error)."""
    args, beam_args = build_parser().parse_known_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s")
    args.input = input_pattern(args.input)
    # A pattern with wildcards that matches nothing would run to an empty output without a word (one without
    # wildcards fails deep in the pipeline): one line instead. limits: the first match is enough.
    try:
        matched = FileSystems.match([args.input], limits=[1])[0].metadata_list
    except (OSError, ValueError) as e:  # BeamIOError (an OSError); ValueError: a scheme with no filesystem
        matched, reason = [], f"cannot list it ({type(e).__name__}: {e})"
    else:
        reason = "matched no file"
    if not matched:
        print(f"error: --input {args.input}: {reason}", file=sys.stderr)
        return 2
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    options = PipelineOptions(beam_args)
    with beam.Pipeline(options=options) as pipeline:
        build_pipeline(pipeline, args)
    log.info("transcripts: %s-*%s; failures: %s%s-*%s", args.output, SHARD_SUFFIX, args.output, FAILURES_SUFFIX,
             SHARD_SUFFIX)
    return 0


if __name__ == "__main__":
    # `python pipelines/beam_transcribe.py` from a checkout: make `speech` importable as with `python -m`.
    # Run the importable module's main, not __main__'s copy: workers unpickle the DoFns and named tuples by
    # module name.
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from speech.pipelines.beam_transcribe import main as _main

    sys.exit(_main())
