"""Features in TFRecord shards, for many readers: extract MFCCs once, train anywhere.

A shard folder holds ``shard-SSSSS-of-NNNNN.tfrecord`` files and ``shards.json`` (feature config, vocabulary,
counts, the shard list and a per-utterance index of frame and label lengths). Every file is written to a temp
name and renamed, and ``shards.json`` is written last: a folder without it is unfinished and is refused.

Each record is one utterance: ``id`` (its position in the folder), ``features`` (float32 ``[T, F]``, raw
little-endian bytes), ``num_frames``, ``labels`` (int64) and ``text``. Utterance ``i`` lies in shard
``i * N // count`` (contiguous runs), so reading the shards in order yields ids ``0, 1, 2, ...``.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from speech.dataset import Example, SpecAugment, count_batches, ctc_min_frames, epoch_seed, index_to_batches
from speech.errors import SpeechError
from speech.features import FeatureConfig
from speech.manifest import atomic_write
from speech.model import ModelConfig, ModelSpec
from speech.text import Vocabulary

log = logging.getLogger(__name__)

SHARDS_FILE = "shards.json"
FORMAT = "speech-feature-shards"
# Utterances held in the shuffle buffer. A folder that fits is shuffled as a whole, exactly like
# make_dataset; a bigger one reads its shards in a per-epoch order, interleaved, through a buffer this big.
DEFAULT_SHUFFLE_BUFFER = 10_000
INTERLEAVE_FILES = 16


def shard_name(index: int, count: int) -> str:
    return f"shard-{index:05d}-of-{count:05d}.tfrecord"


def is_shard_dir(path: str | os.PathLike) -> bool:
    return (Path(path) / SHARDS_FILE).is_file()


def _record(example_id: int, features: np.ndarray, labels: Sequence[int], text: str) -> bytes:
    import tensorflow as tf

    def ints(values):
        return tf.train.Feature(int64_list=tf.train.Int64List(value=list(values)))

    def raw(value: bytes):
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))

    return tf.train.Example(features=tf.train.Features(feature={
        "id": ints([example_id]), "features": raw(np.ascontiguousarray(features, "<f4").tobytes()),
        "num_frames": ints([features.shape[0]]), "labels": ints(labels), "text": raw(text.encode()),
    })).SerializeToString()


def write_shards(examples: Sequence[Example], output_dir: str | os.PathLike, num_shards: int,
                 features: FeatureConfig, vocab: Vocabulary, progress: bool = False) -> dict:
    """Write ``examples`` (their cached features) as ``num_shards`` TFRecord shards; returns ``shards.json``.

    ``num_shards`` is capped at the number of examples (no empty shards). An existing folder is rewritten:
    its ``shards.json`` goes first, so a reader never takes a half-rewritten folder for a finished one.
    """
    import tensorflow as tf

    if not examples:
        raise SpeechError("no utterance to write", str(output_dir))
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / SHARDS_FILE).unlink(missing_ok=True)
    count = max(1, min(num_shards, len(examples)))
    bounds = [i * len(examples) // count for i in range(count + 1)]
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(examples), desc="shards", unit="utt", dynamic_ncols=True, disable=None)
    shards = []
    for s in range(count):
        name = shard_name(s, count)
        tmp = out / f".{name}.{os.getpid()}.tmp"
        with tf.io.TFRecordWriter(str(tmp)) as writer:
            for i in range(bounds[s], bounds[s + 1]):
                e = examples[i]
                feats = np.load(e.cache_path, allow_pickle=False)
                if feats.shape != (e.num_frames, features.n_mfcc) or feats.dtype != np.float32:
                    raise SpeechError(f"cached features have shape {feats.shape}, expected "
                                      f"({e.num_frames}, {features.n_mfcc}): the cache changed", e.cache_path)
                writer.write(_record(i, feats, e.labels, e.text))
                if bar:
                    bar.update()
        os.replace(tmp, out / name)
        shards.append({"file": name, "examples": bounds[s + 1] - bounds[s]})
    if bar:
        bar.close()
    names = {s["file"] for s in shards}
    for stale in out.glob("shard-*-of-*.tfrecord"):  # left by an earlier run with another shard count
        if stale.name not in names:
            stale.unlink()
    frames = [e.num_frames for e in examples]
    info = {"format": FORMAT, "version": 1, "features": features.to_json(), "vocab": vocab.to_json(),
            "num_examples": len(examples), "total_frames": int(sum(frames)),
            "hours": sum(frames) * features.frame_seconds / 3600, "shards": shards,
            # Per utterance, by id: bucket boundaries and the label-fits-the-frames check need no record read.
            "num_frames": frames, "ctc_min_frames": [ctc_min_frames(e.labels) for e in examples]}
    with atomic_write(out / SHARDS_FILE) as f:
        json.dump(info, f)
    return info


def read_shard_info(directory: str | os.PathLike) -> dict:
    """``shards.json`` of a finished shard folder; a clear SpeechError for anything else."""
    path = Path(directory)
    if not path.is_dir():
        raise SpeechError("no such shard folder", str(path))
    if not is_shard_dir(path):
        raise SpeechError(f"not a finished shard folder (no {SHARDS_FILE}; was featurize interrupted?)", str(path))
    try:
        info = json.loads((path / SHARDS_FILE).read_text())
    except (OSError, ValueError) as e:
        raise SpeechError(f"unreadable {SHARDS_FILE}: {e}", str(path)) from e
    if info.get("format") != FORMAT or info.get("version") != 1:
        raise SpeechError(f"{SHARDS_FILE} is not a version-1 {FORMAT} index", str(path))
    missing = [s["file"] for s in info["shards"] if not (path / s["file"]).is_file()]
    if missing:
        raise SpeechError(f"{len(missing)} shard file(s) missing, e.g. {missing[0]}", str(path))
    return info


class ShardSource:
    """A shard folder as a training/evaluation data source (see :class:`speech.dataset.DataSource`).

    Utterances whose label needs more frames than ``model`` gives after subsampling are left out (counted in
    ``skipped``), the rule :func:`speech.dataset.prepare_examples` applies. ``ids`` are the folder's ids.
    """

    # Not FILE: tf.data's FILE rewrite cannot see through bucket_by_sequence_length (group_by_window) and
    # fails with "Did not find a shardable source". Every worker reads the shards and keeps its own part of
    # every global batch, as with example lists; what the shards save is the audio decoding and MFCCs.
    auto_shard_policy = "DATA"

    def __init__(self, directory: str | os.PathLike, model: ModelConfig | None = None,
                 shuffle_buffer: int = DEFAULT_SHUFFLE_BUFFER):
        self.directory = Path(directory)
        self.info = read_shard_info(directory)
        self.features = FeatureConfig.from_json(self.info["features"])
        self.vocab = Vocabulary(chars=self.info["vocab"]["chars"])
        self.files = [str(self.directory / s["file"]) for s in self.info["shards"]]
        self.shuffle_buffer = shuffle_buffer
        frames = np.asarray(self.info["num_frames"], np.int64)
        needed = np.asarray(self.info["ctc_min_frames"], np.int64)
        self.keep = model.output_length(frames) >= needed if model else np.ones(len(frames), bool)
        self.frames = frames[self.keep]
        self.skipped = int((~self.keep).sum())
        if self.skipped:
            log.warning("%s: %d utterance(s) left out: label needs more frames than the clip gives after "
                        "subsampling", self.directory, self.skipped)

    def __len__(self) -> int:
        return int(self.keep.sum())

    def check(self, spec: ModelSpec) -> None:
        """Raise SpeechError unless the folder's features and vocabulary are the model's."""
        if self.features != spec.features:
            diff = {k: (v, spec.features.to_json()[k]) for k, v in self.features.to_json().items()
                    if spec.features.to_json()[k] != v}
            raise SpeechError(f"shard features differ from the model's (shards, model): {diff}; run featurize "
                              "with the same --preset/--config as train", str(self.directory))
        if self.vocab.chars != spec.vocab.chars:
            raise SpeechError(f"shard vocabulary {self.vocab.chars!r} differs from the model's {spec.vocab.chars!r}",
                              str(self.directory))

    def dataset(self, batch_size: int, *, shuffle: bool = False, seed: int = 0, epoch: int = 0,
                spec_augment: SpecAugment | None = None, max_batch_frames: int | None = None,
                skip_batches: int = 0, min_batch: int = 1):
        """Batches shaped like :func:`speech.dataset.make_dataset`'s, in a fixed order per ``(seed, epoch)``."""
        import tensorflow as tf

        num_features = self.features.n_mfcc
        buffer = min(len(self), self.shuffle_buffer) if shuffle else 0
        streaming = shuffle and len(self) > self.shuffle_buffer
        # Listing the shard files (not a glob) keeps their order and ignores stray files.
        files = tf.data.Dataset.list_files(self.files, shuffle=False)
        if streaming:
            # Too big to shuffle whole: mix shards in a per-epoch order, several at a time, then the buffer.
            files = files.shuffle(len(self.files), seed=epoch_seed(seed, epoch), reshuffle_each_iteration=False)
        cycle = min(len(self.files), INTERLEAVE_FILES) if streaming else 1
        parallel = {"num_parallel_calls": tf.data.AUTOTUNE, "deterministic": True} if cycle > 1 else {}
        records = files.interleave(tf.data.TFRecordDataset, cycle_length=cycle, block_length=1, **parallel)
        spec = {"id": tf.io.FixedLenFeature([], tf.int64), "features": tf.io.FixedLenFeature([], tf.string),
                "num_frames": tf.io.FixedLenFeature([], tf.int64), "labels": tf.io.VarLenFeature(tf.int64)}
        keep = tf.constant(self.keep)

        def parse(record):
            item = tf.io.parse_single_example(record, spec)
            return {"raw": item["features"], "frames": tf.cast(item["num_frames"], tf.int32),
                    "labels": tf.cast(tf.sparse.to_dense(item["labels"]), tf.int32),
                    "id": tf.cast(item["id"], tf.int32)}

        index = records.map(parse, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        index = index.filter(lambda item: tf.gather(keep, item["id"]))

        def load(item):
            return tf.reshape(tf.io.decode_raw(item["raw"], tf.float32, little_endian=True), [-1, num_features])

        return index_to_batches(index, load, self.frames.tolist(), num_features, batch_size, shuffle_buffer=buffer,
                                seed=seed, epoch=epoch, spec_augment=spec_augment, max_batch_frames=max_batch_frames,
                                skip_batches=skip_batches, min_batch=min_batch)

    def num_batches(self, batch_size: int, max_batch_frames: int | None = None, min_batch: int = 1) -> int:
        return count_batches(self.frames.tolist(), batch_size, max_batch_frames, min_batch)


def make_shard_dataset(directory: str | os.PathLike, batch_size: int, *, model: ModelConfig | None = None,
                       shuffle_buffer: int = DEFAULT_SHUFFLE_BUFFER, **kwargs):
    """:func:`speech.dataset.make_dataset` for a shard folder (keyword arguments as there)."""
    return ShardSource(directory, model, shuffle_buffer).dataset(batch_size, **kwargs)
