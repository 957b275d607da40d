"""Feature shards: write, read back, batch like make_dataset, train and evaluate the same, CLI round trip."""

import json
from dataclasses import replace

import numpy as np
import pytest

from speech.cli import main as cli_main
from speech.dataset import SpecAugment, make_dataset
from speech.errors import SpeechError
from speech.features import FeatureConfig
from speech.model import load_model
from speech.shards import SHARDS_FILE, ShardSource, make_shard_dataset, write_shards
from speech.text import Vocabulary
from speech.training import TrainConfig, Trainer
from tests.conftest import SPEC, train_tiny


@pytest.fixture
def shard_dir(examples, tmp_path):
    write_shards(examples, tmp_path / "shards", 5, SPEC.features, SPEC.vocab)
    return tmp_path / "shards"


def _collect(ds):
    return [(f.numpy(), n.numpy(), lab.numpy(), ln.numpy(), i.numpy()) for f, n, lab, ln, i in ds]


def _by_id(batches):
    return {int(i): (f[row, :n[row]], list(lab[row, :ln[row]]))
            for f, n, lab, ln, ids in batches for row, i in enumerate(ids)}


def test_shards_hold_the_cached_features_labels_and_an_index(examples, shard_dir):
    import tensorflow as tf

    info = json.loads((shard_dir / SHARDS_FILE).read_text())
    assert info["num_examples"] == len(examples) == sum(s["examples"] for s in info["shards"])
    assert [s["file"] for s in info["shards"]] == [f"shard-{i:05d}-of-00005.tfrecord" for i in range(5)]
    assert info["total_frames"] == sum(e.num_frames for e in examples)
    assert info["features"] == SPEC.features.to_json() and info["vocab"]["chars"] == SPEC.vocab.chars
    assert sorted(p.name for p in shard_dir.iterdir()) == sorted([SHARDS_FILE, *(s["file"] for s in info["shards"])])
    spec = {"id": tf.io.FixedLenFeature([], tf.int64), "features": tf.io.FixedLenFeature([], tf.string),
            "num_frames": tf.io.FixedLenFeature([], tf.int64), "labels": tf.io.VarLenFeature(tf.int64),
            "text": tf.io.FixedLenFeature([], tf.string)}
    files = [str(shard_dir / s["file"]) for s in info["shards"]]
    records = [tf.io.parse_single_example(r, spec) for r in tf.data.TFRecordDataset(files)]
    assert [int(r["id"]) for r in records] == list(range(len(examples)))  # shards in order = ids in order
    for r, e in zip(records, examples):
        feats = np.frombuffer(r["features"].numpy(), "<f4").reshape(int(r["num_frames"]), -1)
        np.testing.assert_array_equal(feats, np.load(e.cache_path))
        assert list(tf.sparse.to_dense(r["labels"]).numpy()) == e.labels
        assert r["text"].numpy().decode() == e.text


def test_batches_are_make_datasets_when_the_folder_fits_the_shuffle_buffer(examples, shard_dir):
    kwargs = {"shuffle": True, "seed": 3, "epoch": 1, "spec_augment": SpecAugment()}
    expected = _collect(make_dataset(examples, 26, 4, **kwargs))
    got = _collect(make_shard_dataset(shard_dir, 4, model=SPEC.model, **kwargs))
    assert len(got) == len(expected)
    for a, b in zip(expected, got):
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x, y)
    # Evaluation order (no shuffle) too.
    for a, b in zip(_collect(make_dataset(examples, 26, 32)), _collect(make_shard_dataset(shard_dir, 32))):
        np.testing.assert_array_equal(a[4], b[4])


def test_streaming_order_is_fixed_per_seed_and_epoch_and_resumable(examples, shard_dir):
    # A folder bigger than the buffer reads shards in a per-epoch order: not make_dataset's order, but every
    # utterance once per epoch with the same (SpecAugmented) features, and the same order every time.
    source = ShardSource(shard_dir, SPEC.model, shuffle_buffer=3)
    kwargs = {"shuffle": True, "seed": 3, "spec_augment": SpecAugment()}
    reference = _by_id(_collect(make_dataset(examples, 26, 4, epoch=1, **kwargs)))
    batches = _collect(source.dataset(4, epoch=1, **kwargs))
    got = _by_id(batches)
    assert sorted(got) == list(range(len(examples)))
    for i, (feats, labels) in got.items():
        np.testing.assert_array_equal(feats, reference[i][0])
        assert labels == examples[i].labels == reference[i][1]
    order = [list(b[4]) for b in batches]
    assert source.num_batches(4) == len(batches)
    assert [list(b[4]) for b in _collect(source.dataset(4, epoch=1, **kwargs))] == order
    assert [list(b[4]) for b in _collect(source.dataset(4, epoch=1, skip_batches=1, **kwargs))] == order[1:]
    assert [list(b[4]) for b in _collect(source.dataset(4, epoch=2, **kwargs))] != order


def test_labels_too_long_for_the_model_are_left_out_and_counted(examples, tmp_path):
    examples = list(examples)
    examples[2] = replace(examples[2], labels=[1, 2] * 200)
    write_shards(examples, tmp_path / "s", 2, SPEC.features, SPEC.vocab)
    source = ShardSource(tmp_path / "s", SPEC.model)
    assert source.skipped == 1 and len(source) == len(examples) - 1
    batches = _collect(source.dataset(4, shuffle=True))
    assert sorted(int(i) for b in batches for i in b[4]) == [i for i in range(len(examples)) if i != 2]
    assert source.num_batches(4) == len(batches)


def test_a_non_speech_clip_with_an_empty_label_survives_the_shards(examples, tmp_path):
    examples = list(examples)
    examples[1] = replace(examples[1], labels=[], text="")
    write_shards(examples, tmp_path / "s", 2, SPEC.features, SPEC.vocab)
    source = ShardSource(tmp_path / "s", SPEC.model)
    assert source.skipped == 0 and len(source) == len(examples)
    labels = _by_id(_collect(source.dataset(4)))
    assert labels[1][1] == [] and labels[0][1] == examples[0].labels


def test_an_unfinished_or_mismatched_folder_is_refused(shard_dir, tmp_path, capsys):
    with pytest.raises(SpeechError, match="featurize"):
        ShardSource(shard_dir, SPEC.model).check(replace(SPEC, features=FeatureConfig(n_mfcc=20)))
    with pytest.raises(SpeechError, match="vocabulary"):
        ShardSource(shard_dir, SPEC.model).check(replace(SPEC, vocab=Vocabulary(chars=" abc")))
    (shard_dir / SHARDS_FILE).unlink()  # as if featurize had been killed before its last step
    with pytest.raises(SpeechError, match="not a finished shard folder"):
        ShardSource(shard_dir)
    assert train_tiny(tmp_path, shard_dir, epochs=1) == 2
    assert "not a finished shard folder" in capsys.readouterr().err


def test_trainer_fits_and_evaluates_shards_exactly_as_examples(examples, shard_dir, tmp_path):
    config = TrainConfig(epochs=2, batch_size=4, learning_rate=3e-3, warmup_steps=2, checkpoint_every_steps=0)
    a = Trainer(SPEC, config, tmp_path / "a")
    history_a = a.fit(examples, dev=examples, progress=False)
    b = Trainer(SPEC, config, tmp_path / "b")
    history_b = b.fit(ShardSource(shard_dir, SPEC.model), dev=ShardSource(shard_dir, SPEC.model), progress=False)
    assert [h["dev_wer"] for h in history_a] == [h["dev_wer"] for h in history_b]
    assert [h["train_loss"] for h in history_b] == pytest.approx([h["train_loss"] for h in history_a], rel=1e-5)
    for x, y in zip(a.model.weights, b.model.weights):
        np.testing.assert_allclose(x.numpy(), y.numpy(), rtol=1e-5, atol=1e-6)
    assert b.evaluate(ShardSource(shard_dir, SPEC.model)) == b.evaluate(examples)


def test_featurize_cli_then_train_from_shards_matches_training_from_the_manifest(tone_corpus, tmp_path, capsys):
    featurize = ["featurize", "--manifest", str(tone_corpus), "--output", str(tmp_path / "shards"), "--shards", "3",
                 "--preset", "tiny", "--cache-dir", str(tmp_path / "fcache"), "--jobs", "1", "--no-progress"]
    assert cli_main(featurize) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["utterances"] == 12 and summary["shards"] == 3 and summary["skipped"] == 0
    assert cli_main(featurize) == 2 and "--overwrite" in capsys.readouterr().err

    # Same seed, same batches in the same order: the same run, from audio or from shards.
    for root, data in (("m", tone_corpus), ("s", tmp_path / "shards")):
        (tmp_path / root).mkdir()
        assert train_tiny(tmp_path / root, data, epochs=2) == 0
    from_manifest, from_shards = (json.loads((tmp_path / r / "model" / "history.json").read_text()) for r in "ms")
    assert [h["dev_wer"] for h in from_manifest] == [h["dev_wer"] for h in from_shards]
    assert [h["train_loss"] for h in from_shards] == pytest.approx([h["train_loss"] for h in from_manifest], rel=1e-5)
    (model_m, _), (model_s, _) = load_model(tmp_path / "m" / "model"), load_model(tmp_path / "s" / "model")
    for x, y in zip(model_m.weights, model_s.weights):
        np.testing.assert_allclose(x.numpy(), y.numpy(), rtol=1e-5, atol=1e-6)

    # Shards made with other features are refused by a model that expects the defaults.
    (tmp_path / "x").mkdir()
    config = tmp_path / "n20.json"
    config.write_text(json.dumps({"features": {"n_mfcc": 20}}))
    assert cli_main([*featurize[:4], str(tmp_path / "shards20"), *featurize[5:], "--config", str(config)]) == 0
    capsys.readouterr()
    assert train_tiny(tmp_path / "x", tmp_path / "shards20", epochs=1) == 2
    assert "shard features differ" in capsys.readouterr().err
