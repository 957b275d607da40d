"""From manifests to training batches: labels, cached features, and a tf.data pipeline.

Every utterance that cannot be used (unreadable audio, transcript outside the vocabulary, a label too
long for its frames after subsampling) is skipped with its file and reason, never a crash.
"""

from __future__ import annotations

import itertools
import logging
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from speech.errors import TranscriptError
from speech.features import FeatureConfig, extract_features
from speech.manifest import Utterance
from speech.model import ModelConfig
from speech.text import Vocabulary

log = logging.getLogger(__name__)


@dataclass
class Example:
    audio_path: str
    cache_path: str
    num_frames: int
    labels: list[int]
    text: str  # normalised reference


@dataclass
class Skipped:
    audio_path: str
    reason: str


def ctc_min_frames(labels: Sequence[int]) -> int:
    """Fewest frames CTC needs for ``labels``: one per label plus a blank between each repeated pair."""
    return len(labels) + sum(1 for a, b in itertools.pairwise(labels) if a == b)


def prepare_examples(utterances: Sequence[Utterance], vocab: Vocabulary, features: FeatureConfig,
                     model: ModelConfig, cache_dir: str | os.PathLike, jobs: int | None = None,
                     progress: bool = False) -> tuple[list[Example], list[Skipped]]:
    """Encode transcripts, extract (cached) features and drop what cannot train, saying why.

    An empty transcript is an error unless the manifest line says ``"non_speech": true``.
    """
    skipped: list[Skipped] = []
    encoded: list[tuple[Utterance, list[int]]] = []
    for utt in utterances:
        if utt.non_speech:
            # A clip with nothing said in it (speech.nonspeech) trains toward all blanks: the empty label.
            if vocab.normalize(utt.text):
                skipped.append(Skipped(utt.audio_filepath, "a non-speech clip with a transcript"))
            else:
                encoded.append((utt, []))
            continue
        try:
            encoded.append((utt, vocab.encode(utt.text, utt.audio_filepath)))
        except TranscriptError as e:
            skipped.append(Skipped(utt.audio_filepath, e.reason))
    # Nothing left to read (an empty manifest, or every transcript refused) is an empty result, for the caller to
    # report as it reports a set with no usable utterance.
    results = extract_features([u.audio_filepath for u, _ in encoded], features, cache_dir, jobs, progress)
    examples: list[Example] = []
    for (utt, labels), result in zip(encoded, results):
        if result.error:
            skipped.append(Skipped(utt.audio_filepath, result.error))
            continue
        frames_out = model.output_length(result.num_frames)
        needed = max(ctc_min_frames(labels), 1)  # an empty label still needs a frame to be all blank
        if frames_out < needed:
            skipped.append(Skipped(utt.audio_filepath,
                                   f"label needs {needed} frames but the clip gives {frames_out} after subsampling"))
            continue
        examples.append(Example(utt.audio_filepath, result.cache_path, result.num_frames, labels,
                                vocab.decode(labels)))
    return examples, skipped


def _reason_kind(reason: str) -> str:
    """A skip reason without its particulars (characters, paths, frame counts), for counting alike ones together."""
    if reason.startswith("label needs"):
        return "label needs more frames than the clip gives after subsampling"
    return reason.split(":")[0]


def summarize_skipped(skipped: Sequence[Skipped], name: str) -> str:
    """Counts per kind of reason, then the first few skipped files with their full reasons."""
    if not skipped:
        return f"{name}: no utterance skipped"
    reasons = Counter(_reason_kind(s.reason) for s in skipped)
    lines = [f"{name}: skipped {len(skipped)} utterance(s):"]
    lines += [f"  {count} x {reason}" for reason, count in reasons.most_common()]
    lines += [f"  e.g. {s.audio_path}: {s.reason}" for s in skipped[:5]]
    return "\n".join(lines)


@dataclass(frozen=True)
class SpecAugment:
    """Frequency and time masking on features (Park et al., 2019), seeded per utterance and epoch."""

    freq_masks: int = 2
    freq_width: int = 5
    time_masks: int = 2
    time_width: float = 0.05  # fraction of the utterance per mask

    def to_json(self) -> dict:
        return self.__dict__.copy()


def _spec_augment(features, length, seed, config: SpecAugment):
    import tensorflow as tf

    num_features = tf.shape(features)[1]
    frame = tf.range(tf.shape(features)[0])[:, None]
    channel = tf.range(num_features)[None, :]
    keep = tf.ones_like(features, dtype=tf.bool)
    for i in range(config.freq_masks):
        r = tf.random.stateless_uniform([2], seed=seed + tf.constant([0, 2 * i], tf.int64))
        width = tf.cast(r[0] * (config.freq_width + 1), tf.int32)
        start = tf.cast(r[1] * tf.cast(num_features - width, tf.float32), tf.int32)
        keep &= ~((channel >= start) & (channel < start + width))
    for i in range(config.time_masks):
        r = tf.random.stateless_uniform([2], seed=seed + tf.constant([1, 2 * i + 1], tf.int64))
        width = tf.cast(r[0] * config.time_width * tf.cast(length, tf.float32), tf.int32)
        start = tf.cast(r[1] * tf.cast(length - width, tf.float32), tf.int32)
        keep &= ~((frame >= start) & (frame < start + width))
    return tf.where(keep, features, tf.zeros_like(features))


def bucket_boundaries(frames: Sequence[int], buckets: int = 8) -> list[int]:
    qs = np.quantile(np.asarray(frames), np.linspace(0, 1, buckets + 1)[1:-1])
    return sorted({int(q) + 1 for q in qs})


def epoch_seed(seed: int, epoch: int) -> int:
    """The shuffle (and SpecAugment) seed of one epoch: a fixed order per ``(seed, epoch)``."""
    return seed * 100003 + epoch


def read_cached_features(path, frames, num_features: int):
    """A feature-cache ``.npy`` entry (float32 ``[frames, num_features]``, C or Fortran order) read by TensorFlow ops.

    No Python runs in tf.data's threads this way: ``np.load`` parses the header with ``ast.literal_eval``, and
    CPython 3.11 fails at random when two threads build ASTs at once ("AST constructor recursion depth
    mismatch", python/cpython#106905), which stopped training. A file whose header is not that of a
    little-endian float32 2-D array of this size raises ``InvalidArgumentError``.
    """
    import tensorflow as tf

    raw = tf.io.read_file(path)
    data_bytes = frames * num_features * 4
    # np.save writes: magic + version (8 bytes), header length (uint16 LE, format 1.0), header text, data.
    is_npy = tf.debugging.Assert(tf.equal(tf.strings.substr(raw, 0, 8), b"\x93NUMPY\x01\x00"),
                                 ["not a .npy file in format 1.0:", path])
    with tf.control_dependencies([is_npy]):
        header_len = tf.cast(tf.io.decode_raw(tf.strings.substr(raw, 8, 2), tf.uint16)[0], tf.int32)
    header = tf.strings.substr(raw, 10, header_len)
    is_2d_float32 = tf.debugging.Assert(tf.strings.regex_full_match(
        header, r"\{'descr': '<f4', 'fortran_order': (True|False), 'shape': \(\d+, \d+\), \}\s*"),
        ["not a float32 2-D array:", path, header])
    with tf.control_dependencies([is_2d_float32]):
        shape = tf.strings.to_number(tf.strings.split(tf.strings.regex_replace(
            header, r"(?s).*'shape': \((\d+), (\d+)\).*", r"\1 \2")), tf.int32)
    checks = [
        tf.debugging.Assert(tf.reduce_all(tf.equal(shape, tf.stack([tf.cast(frames, tf.int32), num_features]))),
                            ["cached features are not the shape the example was built with:", path, shape]),
        tf.debugging.Assert(tf.equal(tf.strings.length(raw), 10 + header_len + data_bytes),
                            ["cached features are not the size their header says:", path]),
    ]
    with tf.control_dependencies(checks):
        data = tf.io.decode_raw(tf.strings.substr(raw, 10 + header_len, data_bytes), tf.float32)
    # librosa's MFCCs are a transposed view, so np.save usually writes them column-major.
    fortran = tf.strings.regex_full_match(header, r".*'fortran_order': True.*\s*")
    return tf.cond(fortran, lambda: tf.transpose(tf.reshape(data, [num_features, frames])),
                   lambda: tf.reshape(data, [frames, num_features]))


def make_dataset(examples: Sequence[Example], num_features: int, batch_size: int, *, shuffle: bool = False,
                 seed: int = 0, epoch: int = 0, spec_augment: SpecAugment | None = None,
                 max_batch_frames: int | None = None, skip_batches: int = 0, min_batch: int = 1):
    """Batches ``(features [B,T,F], lengths [B], labels [B,L], label_lengths [B], ids [B])``, zero-padded.

    ``ids`` index ``examples``. Batches smaller than ``min_batch`` (the replica count) are dropped.

    Length-bucketed; the order for a given ``(seed, epoch)`` is fixed, so a resumed epoch can skip the
    batches it already trained on and see exactly the rest.
    """
    import tensorflow as tf

    frames = [e.num_frames for e in examples]
    # From flat values and row lengths: tf.ragged.constant walks the Python lists and took minutes on 60k labels.
    labels = tf.RaggedTensor.from_row_lengths(
        np.fromiter((t for e in examples for t in e.labels), np.int32, sum(len(e.labels) for e in examples)),
        np.fromiter((len(e.labels) for e in examples), np.int64, len(examples)))
    index = tf.data.Dataset.from_tensor_slices({
        "path": [e.cache_path for e in examples], "frames": np.asarray(frames, np.int32), "labels": labels,
        "id": np.arange(len(examples), dtype=np.int32)})

    def load(item):
        return read_cached_features(item["path"], item["frames"], num_features)

    return index_to_batches(index, load, frames, num_features, batch_size, shuffle_buffer=len(examples) if shuffle
                            else 0, seed=seed, epoch=epoch, spec_augment=spec_augment,
                            max_batch_frames=max_batch_frames, skip_batches=skip_batches, min_batch=min_batch)


def _buckets(frames: Sequence[int], batch_size: int, max_batch_frames: int | None) -> tuple[list[int], list[int]]:
    """Length-bucket boundaries and each bucket's batch size (fewer clips where they are long, under
    ``max_batch_frames``)."""
    boundaries = bucket_boundaries(frames)
    sizes = [batch_size] * (len(boundaries) + 1)
    if max_batch_frames:
        uppers = [*boundaries, max(frames) + 1]
        sizes = [max(1, min(batch_size, max_batch_frames // upper)) for upper in uppers]
    return boundaries, sizes


def count_batches(frames: Sequence[int], batch_size: int, max_batch_frames: int | None = None,
                  min_batch: int = 1) -> int:
    """How many batches :func:`index_to_batches` makes of clips with these lengths, without reading any.

    The count does not depend on the order: a bucket of ``n`` clips and batch size ``s`` gives ``n // s`` full
    batches and one of ``n % s`` (kept if it holds at least ``min_batch`` clips), whatever the shuffle.
    """
    if not len(frames):
        return 0
    boundaries, sizes = _buckets(frames, batch_size, max_batch_frames)
    # tf.data's bucket_by_sequence_length: bucket i holds boundaries[i-1] <= length < boundaries[i].
    counts = np.bincount(np.searchsorted(boundaries, np.asarray(frames), side="right"), minlength=len(sizes))
    return int(sum((n // size if size >= min_batch else 0) + (0 < n % size and n % size >= min_batch)
                   for n, size in zip(counts, sizes)))


def index_to_batches(index, load, frames: Sequence[int], num_features: int, batch_size: int, *,
                     shuffle_buffer: int = 0, seed: int = 0, epoch: int = 0, spec_augment: SpecAugment | None = None,
                     max_batch_frames: int | None = None, skip_batches: int = 0, min_batch: int = 1):
    """The shared tail of every input pipeline: shuffle, load, SpecAugment, bucket, pad, skip.

    ``index`` yields dicts with ``frames`` (int32), ``labels`` (int32 [L]), ``id`` (int32) and whatever
    ``load(item)`` needs to return the item's features ``[frames, num_features]`` float32; ``frames`` are
    the lengths of every item (for the bucket boundaries). ``shuffle_buffer`` 0 keeps the index order.
    """
    import tensorflow as tf

    if shuffle_buffer:
        index = index.shuffle(shuffle_buffer, seed=epoch_seed(seed, epoch), reshuffle_each_iteration=False)

    @tf.autograph.experimental.do_not_convert  # plain TF ops only: converting it cost 0.3 s per pipeline
    def to_batch_item(item):
        feats = tf.ensure_shape(load(item), [None, num_features])
        if spec_augment is not None:
            utterance_seed = tf.stack([tf.cast(item["id"], tf.int64), tf.constant(epoch_seed(seed, epoch), tf.int64)])
            feats = _spec_augment(feats, item["frames"], utterance_seed, spec_augment)
        return feats, item["frames"], item["labels"], tf.shape(item["labels"])[0], item["id"]

    ds = index.map(to_batch_item, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    boundaries, sizes = _buckets(frames, batch_size, max_batch_frames)
    ds = ds.bucket_by_sequence_length(
        element_length_func=lambda f, n, lab, ln, i: n, bucket_boundaries=boundaries, bucket_batch_sizes=sizes,
        padded_shapes=([None, num_features], [], [None], [], []), padding_values=(0.0, 0, 0, 0, 0),
        drop_remainder=False)
    if min_batch > 1:
        # Each replica needs at least one utterance; a bucket's last, smaller batch is dropped instead.
        ds = ds.filter(lambda f, *rest: tf.shape(f)[0] >= min_batch)
    if skip_batches:
        ds = ds.skip(skip_batches)
    return ds.prefetch(tf.data.AUTOTUNE)


@runtime_checkable
class DataSource(Protocol):
    """What the Trainer trains and evaluates on: anything that makes :func:`make_dataset`-shaped batches.

    ``auto_shard_policy`` names the ``tf.data.experimental.AutoShardPolicy`` a multi-worker run uses:
    ``"DATA"`` (every worker reads everything and keeps its part) or ``"FILE"`` (each worker reads its files).
    """

    auto_shard_policy: str

    def __len__(self) -> int: ...

    def dataset(self, batch_size: int, *, shuffle: bool = False, seed: int = 0, epoch: int = 0,
                spec_augment: SpecAugment | None = None, max_batch_frames: int | None = None,
                skip_batches: int = 0, min_batch: int = 1): ...

    def num_batches(self, batch_size: int, max_batch_frames: int | None = None, min_batch: int = 1) -> int:
        """What ``dataset`` with these settings yields, counted without reading (:func:`count_batches`)."""
        ...


class ExampleSource:
    """Prepared examples (features in the cache) as a :class:`DataSource`; ids index ``examples``."""

    auto_shard_policy = "DATA"  # in-memory lists name no files: every worker builds the same batches

    def __init__(self, examples: Sequence[Example], num_features: int):
        self.examples, self.num_features = list(examples), num_features

    def __len__(self) -> int:
        return len(self.examples)

    def dataset(self, batch_size: int, **kwargs):
        return make_dataset(self.examples, self.num_features, batch_size, **kwargs)

    def num_batches(self, batch_size: int, max_batch_frames: int | None = None, min_batch: int = 1) -> int:
        return count_batches([e.num_frames for e in self.examples], batch_size, max_batch_frames, min_batch)


def as_source(data: Sequence[Example] | DataSource, num_features: int) -> DataSource:
    """A list of examples becomes an :class:`ExampleSource`; a data source is returned as it is."""
    return data if isinstance(data, DataSource) else ExampleSource(data, num_features)
