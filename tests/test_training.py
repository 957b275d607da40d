import numpy as np
import pytest

from speech.model import load_model
from speech.training import TrainConfig, Trainer, ctc_loss
from tests.conftest import SPEC


def _config(**kw):
    return TrainConfig(**{"epochs": 3, "batch_size": 4, "learning_rate": 3e-3, "warmup_steps": 2,
                          "checkpoint_every_steps": 1, **kw})


def _weights(trainer):
    return [v.numpy().copy() for v in trainer.model.weights]


def test_resume_after_an_interruption_mid_epoch_gives_the_same_weights(examples, tmp_path):
    straight = Trainer(SPEC, _config(), tmp_path / "a")
    straight_history = straight.fit(examples, progress=False)

    interrupted = Trainer(SPEC, _config(), tmp_path / "b")
    interrupted._build_steps()
    step, calls = interrupted._train_step, []

    per_epoch = int(straight.optimizer.iterations.numpy()) // 3
    assert per_epoch >= 2

    def dying_step(*args):
        if len(calls) == per_epoch + 1:  # mid-way through epoch 2, one step into it
            raise KeyboardInterrupt
        calls.append(1)
        return step(*args)

    interrupted._train_step = dying_step
    with pytest.raises(KeyboardInterrupt):
        interrupted.fit(examples, progress=False)

    resumed = Trainer(SPEC, _config(), tmp_path / "b")
    history = resumed.fit(examples, resume=True, progress=False)
    assert [h["epoch"] for h in history] == [0, 1, 2]
    # The interrupted epoch's logged loss covers all its steps, those before the interruption too.
    for a, b in zip(straight_history, history):
        assert b["train_loss"] == pytest.approx(a["train_loss"], rel=1e-4)
    assert int(resumed.optimizer.iterations.numpy()) == int(straight.optimizer.iterations.numpy())
    for a, b in zip(_weights(straight), _weights(resumed)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_non_finite_loss_skips_the_update(examples, tmp_path):
    poisoned = np.load(examples[0].cache_path)
    poisoned[:] = np.nan
    np.save(examples[0].cache_path, poisoned)
    trainer = Trainer(SPEC, _config(epochs=1, batch_size=len(examples)), tmp_path / "nan")
    history = trainer.fit(examples, progress=False)
    batches = int(trainer.step_in_epoch.numpy()) or sum(1 for _ in trainer._epoch_batches(examples, 0))
    assert history[0]["skipped_steps"] == 1
    assert int(trainer.optimizer.iterations.numpy()) == batches - 1  # every other batch was applied
    assert all(np.all(np.isfinite(w)) for w in _weights(trainer))


def test_best_weights_and_config_are_saved_and_loadable(examples, tmp_path):
    trainer = Trainer(SPEC, _config(epochs=2), tmp_path / "m")
    history = trainer.fit(examples, dev=examples[:4], progress=False)
    assert all("dev_wer" in h for h in history)
    _, spec = load_model(tmp_path / "m")
    assert spec == SPEC
    assert (tmp_path / "m" / "history.json").is_file() and (tmp_path / "m" / "logs").is_dir()


def test_early_stopping(examples, tmp_path, monkeypatch):
    trainer = Trainer(SPEC, _config(epochs=10, early_stopping_patience=2), tmp_path / "es")
    monkeypatch.setattr(trainer, "_evaluate_batches",
                        lambda dev: {"wer": 1.0 + 0.1 * len(dev_calls.append(1) or dev_calls), "cer": 1.0})
    dev_calls: list = []
    history = trainer.fit(examples, dev=examples, progress=False)
    assert len(history) == 3  # best at epoch 1, then two worse epochs


def test_sparse_and_dense_ctc_labels_give_the_same_loss_and_gradients():
    # The Trainer feeds sparse labels to the CTC loss on CPU (C++ kernel) and dense ones on GPU: both must train
    # the same model. Padded batch: different label and logit lengths, repeated letters, padding values that
    # are valid classes (0), and a blank that is the last class.
    import tensorflow as tf

    rng = np.random.default_rng(0)
    blank, frames = 5, 20
    logits = tf.Variable(rng.normal(size=(3, frames, blank + 1)).astype(np.float32))
    labels = tf.constant([[1, 1, 2, 3, 0, 0], [4, 0, 4, 4, 2, 1], [3, 0, 0, 0, 0, 0]], tf.int32)
    label_lengths = tf.constant([4, 6, 1], tf.int32)
    logit_lengths = tf.constant([frames, 15, 9], tf.int32)
    results = []
    for sparse in (False, True):
        with tf.GradientTape() as tape:
            loss = ctc_loss(labels, logits, label_lengths, logit_lengths, blank, sparse)
            total = tf.reduce_sum(loss)
        results.append((loss.numpy(), tape.gradient(total, logits).numpy()))
    (dense_loss, dense_grad), (sparse_loss, sparse_grad) = results
    assert np.all(np.isfinite(dense_loss)) and dense_loss.min() > 0
    np.testing.assert_allclose(sparse_loss, dense_loss, rtol=1e-4)
    np.testing.assert_allclose(sparse_grad, dense_grad, atol=1e-4)
    # Frames past an utterance's logit length get no gradient.
    assert np.abs(sparse_grad[1, 15:]).max() == 0 and np.abs(sparse_grad[2, 9:]).max() == 0


def test_an_empty_label_costs_the_all_blank_path_in_both_ctc_forms():
    # Non-speech clips train toward saying nothing. TensorFlow's CTC kernel refuses an empty label, so
    # ctc_loss gives such a row the all-blank path's loss, -sum_t log p(blank), in a batch with other
    # labels and in a batch where every label is empty.
    import tensorflow as tf

    rng = np.random.default_rng(1)
    frames = 12
    for blank in (5, 0):  # the blank last (this project) or first: the stand-in label is never the blank
        other = 3 if blank == 5 else 4
        logits = tf.Variable(rng.normal(size=(4, frames, 6)).astype(np.float32))
        logit_lengths = tf.constant([frames, 7, 10, 0], tf.int32)  # the last: an empty clip with no frame
        log_blank = tf.nn.log_softmax(logits)[:, :, blank].numpy()
        all_blank = -np.array([log_blank[i, :n].sum() for i, n in enumerate([frames, 7, 10, 0])])
        plain = tf.nn.ctc_loss(tf.constant([[1, 2], [other, 0]]), logits[::2], tf.constant([2, 1]),
                               tf.constant([frames, 10]), logits_time_major=False, blank_index=blank).numpy()
        for labels, lengths in (([[1, 2], [0, 0], [other, 0], [0, 0]], [2, 0, 1, 0]),
                                (np.zeros((4, 0), np.int32), [0, 0, 0, 0])):
            labels, lengths = tf.constant(labels, tf.int32), tf.constant(lengths, tf.int32)
            for sparse in (False, True):
                with tf.GradientTape() as tape:
                    loss = ctc_loss(labels, logits, lengths, logit_lengths, blank, sparse)
                    total = tf.reduce_sum(loss)
                grad = tape.gradient(total, logits).numpy()
                empty = lengths.numpy() == 0
                np.testing.assert_allclose(loss.numpy()[empty], all_blank[empty], rtol=1e-5, atol=1e-6)
                if not empty[0]:  # rows with labels: exactly the plain CTC loss
                    np.testing.assert_allclose(loss.numpy()[::2], plain, rtol=1e-5)
                assert np.all(np.isfinite(grad)) and np.abs(grad[1, 7:]).max() == 0 and np.abs(grad[3]).max() == 0
                # the gradient of an empty row pushes only toward the blank: p(blank) - 1 < 0, p(other) > 0
                row = grad[1, :7]
                assert np.all(row[:, blank] < 0) and np.all(np.delete(row, blank, axis=1) > 0)
