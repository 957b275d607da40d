from pathlib import Path

import numpy as np
import pytest

from speech.dataset import (
    Example,
    ExampleSource,
    SpecAugment,
    count_batches,
    ctc_min_frames,
    make_dataset,
    prepare_examples,
    read_cached_features,
    summarize_skipped,
)
from speech.features import FeatureConfig
from speech.manifest import Utterance, read_manifest
from speech.model import preset
from speech.text import Vocabulary


def test_ctc_min_frames_counts_repeats():
    assert ctc_min_frames([1, 2, 3]) == 3
    assert ctc_min_frames([1, 1, 2, 2, 2]) == 8


def test_unusable_utterances_are_skipped_with_reasons(tone_corpus, tmp_path):
    utts = read_manifest(tone_corpus)
    utts.append(Utterance(utts[0].audio_filepath, 1.0, "日本"))
    utts.append(Utterance(utts[0].audio_filepath, 1.0, "this label is far too long for a clip this short " * 3))
    utts.append(Utterance(utts[1].audio_filepath, 1.0, "and this one is too long for its clip as well " * 4))
    utts.append(Utterance(str(tmp_path / "missing.wav"), 1.0, "gone"))
    # A copy cut short: its transcript is of the whole recording, so it does not train.
    whole = Path(utts[2].audio_filepath).read_bytes()
    (tmp_path / "cut.wav").write_bytes(whole[:len(whole) // 2])
    utts.append(Utterance(str(tmp_path / "cut.wav"), 1.0, utts[2].text))
    examples, skipped = prepare_examples(utts, Vocabulary(), FeatureConfig(), preset("tiny"), tmp_path / "c", jobs=1)
    assert len(examples) == len(utts) - 5
    reasons = " | ".join(s.reason for s in skipped)
    assert "outside the vocabulary" in reasons and "after subsampling" in reasons and "not found" in reasons
    assert [s.audio_path for s in skipped if s.reason.startswith("truncated file")] == [str(tmp_path / "cut.wav")]
    # The summary counts alike reasons together, whatever their frame counts, and names a few files.
    summary = summarize_skipped(skipped, "train")
    assert "train: skipped 5 utterance(s)" in summary
    assert "  2 x label needs more frames than the clip gives after subsampling" in summary
    assert "  1 x file not found" in summary and "missing.wav" in summary


def test_a_non_speech_clip_trains_on_an_empty_label_and_an_empty_transcript_otherwise_does_not(tone_corpus,
                                                                                                  tmp_path):
    audio = read_manifest(tone_corpus)[0].audio_filepath
    utts = [Utterance(audio, 1.0, "", {"non_speech": True}), Utterance(audio, 1.0, ""),
            Utterance(audio, 1.0, "words", {"non_speech": True})]
    examples, skipped = prepare_examples(utts, Vocabulary(), FeatureConfig(), preset("tiny"), tmp_path / "c", jobs=1)
    assert [(e.labels, e.text) for e in examples] == [([], "")]
    assert [s.reason for s in skipped] == ["transcript is empty after normalisation",
                                           "a non-speech clip with a transcript"]
    batch = next(iter(make_dataset(examples, 26, 4)))
    assert batch[3].numpy().tolist() == [0]


def test_batches_are_padded_with_true_lengths_and_deterministic(tone_corpus, tmp_path):
    examples, _ = prepare_examples(read_manifest(tone_corpus), Vocabulary(), FeatureConfig(), preset("tiny"),
                                   tmp_path / "c", jobs=1)

    def collect(**kwargs):
        return [(f.numpy(), n.numpy(), lab.numpy(), ln.numpy(), i.numpy())
                for f, n, lab, ln, i in make_dataset(examples, 26, 4, **kwargs)]

    batches = collect(shuffle=True, seed=3, epoch=1, spec_augment=SpecAugment())
    seen = sorted(int(i) for b in batches for i in b[4])
    assert seen == list(range(len(examples)))
    for feats, lengths, labels, label_lengths, ids in batches:
        for row, idx in enumerate(ids):
            assert lengths[row] == examples[idx].num_frames
            assert np.all(feats[row, lengths[row]:] == 0)
            assert list(labels[row, :label_lengths[row]]) == examples[idx].labels
    again = collect(shuffle=True, seed=3, epoch=1, spec_augment=SpecAugment())
    assert all(np.array_equal(a[0], b[0]) and np.array_equal(a[4], b[4]) for a, b in zip(batches, again))
    other_epoch = collect(shuffle=True, seed=3, epoch=2)
    assert [list(b[4]) for b in other_epoch] != [list(b[4]) for b in batches]
    skipped = collect(shuffle=True, seed=3, epoch=1, spec_augment=SpecAugment(), skip_batches=1)
    assert [list(b[4]) for b in skipped] == [list(b[4]) for b in batches[1:]]


@pytest.mark.parametrize("batch_size,max_batch_frames,min_batch", [(4, None, 1), (7, None, 3), (8, 900, 1),
                                                                   (16, 700, 2)])
def test_batches_are_counted_without_reading_them(tmp_path, batch_size, max_batch_frames, min_batch):
    # The trainer sizes its learning-rate schedule and progress bar from this count, not from a pass over the data.
    rng = np.random.default_rng(0)
    examples = []
    for i, frames in enumerate(rng.integers(5, 400, 57)):
        path = tmp_path / f"{i}.npy"
        np.save(path, np.zeros((int(frames), 26), np.float32))
        examples.append(Example(str(path), str(path), int(frames), [1, 2], "ab"))
    kwargs = {"max_batch_frames": max_batch_frames, "min_batch": min_batch}
    made = sum(1 for _ in make_dataset(examples, 26, batch_size, shuffle=True, seed=1, **kwargs))
    assert made > 3
    assert count_batches([e.num_frames for e in examples], batch_size, **kwargs) == made
    assert ExampleSource(examples, 26).num_batches(batch_size, **kwargs) == made
    assert count_batches([], batch_size) == 0


def test_spec_augment_masks_some_features(tone_corpus, tmp_path):
    examples, _ = prepare_examples(read_manifest(tone_corpus), Vocabulary(), FeatureConfig(), preset("tiny"),
                                   tmp_path / "c", jobs=1)
    plain = next(iter(make_dataset(examples[:1], 26, 1)))[0].numpy()
    masked = next(iter(make_dataset(examples[:1], 26, 1, spec_augment=SpecAugment(freq_width=8))))[0].numpy()
    assert (masked == 0).sum() > (plain == 0).sum()


def test_cached_features_are_read_in_graph_exactly_and_bad_entries_refused(tmp_path):
    import tensorflow as tf

    path = str(tmp_path / "f.npy")
    for shape, order in [((1, 26), "C"), ((57, 26), "C"), ((57, 26), "F"), ((1500, 40), "F")]:
        feats = np.asarray(np.random.default_rng(0).standard_normal(shape), np.float32, order=order)
        np.save(path, feats)
        assert np.array_equal(read_cached_features(tf.constant(path), tf.constant(shape[0]), shape[1]).numpy(),
                              feats)
    for bad in (np.zeros((5, 26), np.float64), np.zeros((5, 26), np.float16), np.zeros((6, 26), np.float32),
                np.zeros((26, 5), np.float32, order="F")[None], np.zeros((13, 10), np.float32),
                b"not numpy at all", b""):
        if isinstance(bad, bytes):
            open(path, "wb").write(bad)
        else:
            np.save(path, bad)
        with pytest.raises(tf.errors.InvalidArgumentError):
            read_cached_features(tf.constant(path), tf.constant(5), 26)


@pytest.mark.parametrize("utts", [[], [Utterance("a.wav", 1.0, "日本")]], ids=["empty manifest", "no usable text"])
def test_nothing_to_read_is_an_empty_result_not_a_crash(tmp_path, utts):
    # train and featurize say "no usable utterance" for it; before, the feature pool refused zero workers (a stack
    # trace, "max_workers must be greater than 0").
    examples, skipped = prepare_examples(utts, Vocabulary(), FeatureConfig(), preset("tiny"), tmp_path / "c", jobs=2)
    assert examples == [] and len(skipped) == len(utts)
