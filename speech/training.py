"""The training loop: CTC loss with true lengths, Adam with warm-up + cosine decay, clipping, a
non-finite-loss guard, checkpoints every N steps, best-by-dev-WER weights, early stopping, exact resume.

The loop runs under a ``tf.distribute`` strategy (the default one when none is given), so the same code
trains on one CPU, several GPUs (MirroredStrategy) or several hosts (MultiWorkerMirroredStrategy).
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from speech.dataset import DataSource, Example, SpecAugment, as_source
from speech.manifest import atomic_write
from speech.metrics import error_rates, non_speech_rates
from speech.model import ModelSpec, save_model

log = logging.getLogger(__name__)


def ctc_loss(labels, logits, label_lengths, logit_lengths, blank: int, sparse: bool):
    """Per-utterance CTC loss of padded ``labels [B, L]`` against ``logits [B, T, C]``.

    ``sparse``: hand ``tf.nn.ctc_loss`` the labels as a SparseTensor, which runs TensorFlow's C++ CTC kernel.
    With dense labels it runs a forward-backward written in TF ops whose work per frame grows with the square
    of the label length; on 2 CPU cores that made a training step about 2x slower at batch 64 on 8-second clips
    (``scripts/bench.py``, "ctc" section: 37.8 vs 74.2 audio-seconds a second). The Trainer uses sparse labels
    on CPU and keeps the dense form, which stays on the device, on GPU. Both give the same loss and gradients;
    labels must fit the frames (see :func:`speech.dataset.ctc_min_frames`), which the data pipeline ensures.

    An empty label (a clip with no speech in it) is allowed: its loss is that of the all-blank path,
    ``-sum_t log p(blank)``, the CTC loss of the empty sequence. TensorFlow's CTC kernel refuses empty labels,
    so those rows get a one-label stand-in (a class that is not the blank, over at least one frame) whose loss
    is computed and then replaced; the replaced value passes no gradient.
    """
    import tensorflow as tf

    empty = tf.equal(label_lengths, 0)
    labels = tf.pad(labels, [[0, 0], [0, 1]])  # room for the stand-in even when every label is empty
    stand_in = tf.fill(tf.shape(labels[:, :1]), tf.cast((blank + 1) % tf.shape(logits)[-1], labels.dtype))
    labels = tf.concat([tf.where(empty[:, None], stand_in, labels[:, :1]), labels[:, 1:]], axis=1)
    ctc_label_lengths = tf.maximum(label_lengths, 1)
    ctc_logit_lengths = tf.where(empty, tf.maximum(logit_lengths, 1), logit_lengths)
    if sparse:
        indices = tf.where(tf.sequence_mask(ctc_label_lengths, tf.shape(labels)[1]))
        labels = tf.SparseTensor(indices, tf.gather_nd(labels, indices), tf.shape(labels, out_type=tf.int64))
    loss = tf.nn.ctc_loss(labels, logits, ctc_label_lengths, ctc_logit_lengths, logits_time_major=False,
                          blank_index=blank)
    log_probs = tf.nn.log_softmax(tf.cast(logits, tf.float32))
    frames = tf.sequence_mask(logit_lengths, tf.shape(logits)[1], dtype=tf.float32)
    all_blank = -tf.reduce_sum(log_probs[:, :, blank] * frames, axis=1)
    return tf.where(empty, tf.cast(all_blank, loss.dtype), loss)


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 30
    batch_size: int = 16  # per replica
    max_batch_frames: int | None = 24000  # caps batch size for long clips (~4 min of audio per batch)
    learning_rate: float = 1e-3
    warmup_steps: int = 300
    final_lr_fraction: float = 0.05
    clip_norm: float = 5.0
    mixed_precision: bool = False  # float16 compute on GPU; ignored on CPU
    early_stopping_patience: int = 8  # epochs without a better dev WER; 0 disables
    checkpoint_every_steps: int = 200
    seed: int = 0
    spec_augment: SpecAugment | None = field(default_factory=SpecAugment)
    eval_batch_size: int = 32

    def to_json(self) -> dict:
        data = asdict(self)
        data["spec_augment"] = self.spec_augment.to_json() if self.spec_augment else None
        return data

    @classmethod
    def from_json(cls, data: dict) -> TrainConfig:
        data = dict(data)
        if isinstance(data.get("spec_augment"), dict):
            data["spec_augment"] = SpecAugment(**data["spec_augment"])
        return cls(**data)


# Training defaults that differ by model preset: a tiny network on a tiny corpus wants small batches (more
# steps) and a higher learning rate. --config and flags still override them.
PRESET_TRAIN_DEFAULTS: dict[str, dict] = {
    "tiny": {"batch_size": 8, "learning_rate": 3e-3},
}


class Trainer:
    """Trains ``spec``'s model into ``output_dir`` (weights, config, checkpoints, logs)."""

    def __init__(self, spec: ModelSpec, config: TrainConfig, output_dir: str | Path, strategy=None):
        import keras
        import tensorflow as tf

        self.spec, self.config, self.output_dir = spec, config, Path(output_dir)
        self.strategy = strategy or tf.distribute.get_strategy()
        mixed = config.mixed_precision and bool(tf.config.list_physical_devices("GPU"))
        # The run's seed drives Python's, numpy's and TensorFlow's generators: the same run gives the same weights.
        keras.utils.set_random_seed(config.seed)
        with self.strategy.scope():
            # Layers take Keras's global dtype policy when they are built: float16 compute for this model only,
            # the policy put back for whatever the process builds next.
            previous = keras.mixed_precision.global_policy()
            keras.mixed_precision.set_global_policy("mixed_float16" if mixed else previous)
            try:
                self.model = spec.build()
            finally:
                keras.mixed_precision.set_global_policy(previous)
            self.schedule_total = tf.Variable(1, dtype=tf.int64, trainable=False, name="schedule_total")
            self.optimizer = keras.optimizers.Adam(learning_rate=self._learning_rate,
                                                   global_clipnorm=config.clip_norm)
            if mixed:
                self.optimizer = keras.optimizers.LossScaleOptimizer(self.optimizer)
            self.optimizer.build(self.model.trainable_variables)
            # Progress lives in the checkpoint itself, so weights and position can never disagree.
            self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
            self.step_in_epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="step_in_epoch")
            self.best_wer = tf.Variable(math.inf, dtype=tf.float64, trainable=False, name="best_wer")
            self.bad_epochs = tf.Variable(0, dtype=tf.int64, trainable=False, name="bad_epochs")
            self.skipped_steps = tf.Variable(0, dtype=tf.int64, trainable=False, name="skipped_steps")
            # The epoch's loss so far, so that an epoch interrupted and resumed logs the loss of all its steps.
            self.epoch_loss_sum = tf.Variable(0.0, dtype=tf.float64, trainable=False, name="epoch_loss_sum")
            self.epoch_loss_steps = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch_loss_steps")
        self.checkpoint = tf.train.Checkpoint(
            model=self.model, optimizer=self.optimizer, epoch=self.epoch, step_in_epoch=self.step_in_epoch,
            best_wer=self.best_wer, bad_epochs=self.bad_epochs, skipped_steps=self.skipped_steps,
            schedule_total=self.schedule_total, epoch_loss_sum=self.epoch_loss_sum,
            epoch_loss_steps=self.epoch_loss_steps)
        # Under MultiWorkerMirroredStrategy every worker takes part in saving, but only the chief writes
        # to the output folder; the others write to a scratch folder of their own.
        resolver = getattr(self.strategy, "cluster_resolver", None)
        task_type = getattr(resolver, "task_type", None)
        self.is_chief = task_type in (None, "chief") or (task_type == "worker" and resolver.task_id == 0
                                                          and "chief" not in resolver.cluster_spec().as_dict())
        checkpoint_dir = self.output_dir / "checkpoints"
        if not self.is_chief:
            checkpoint_dir = self.output_dir / f".worker-{resolver.task_id}" / "checkpoints"
        self.manager = tf.train.CheckpointManager(self.checkpoint, checkpoint_dir, max_to_keep=2)
        self._train_step = None
        self._predict_step = None

    def _learning_rate(self):
        import tensorflow as tf

        c = self.config
        step = tf.cast(self.optimizer.iterations, tf.float32)
        total = tf.cast(self.schedule_total, tf.float32)
        # A short run (a small corpus) warms up over at most a tenth of its steps.
        warmup = tf.maximum(1.0, tf.minimum(float(c.warmup_steps), total / 10.0))
        warm = tf.minimum(1.0, (step + 1.0) / warmup)
        progress = tf.clip_by_value((step - warmup) / tf.maximum(total - warmup, 1.0), 0.0, 1.0)
        cosine = c.final_lr_fraction + (1 - c.final_lr_fraction) * 0.5 * (1 + tf.cos(math.pi * progress))
        return c.learning_rate * warm * cosine

    # -- compiled steps -------------------------------------------------------------------------------------
    def _build_steps(self):
        import tensorflow as tf

        model, optimizer, blank = self.model, self.optimizer, self.spec.vocab.blank
        output_length = self.spec.model.output_length
        strategy = self.strategy
        sparse_labels = not tf.config.list_logical_devices("GPU")

        def replica_gradients(features, lengths, labels, label_lengths):
            with tf.GradientTape() as tape:
                logits = model({"features": features, "lengths": lengths}, training=True)
                per_utt = ctc_loss(labels, tf.cast(logits, tf.float32), label_lengths, output_length(lengths), blank,
                                   sparse_labels)
                loss = tf.nn.compute_average_loss(per_utt)
                scaled = optimizer.scale_loss(loss)
            grads = tape.gradient(scaled, model.trainable_variables)
            finite = tf.math.is_finite(loss)
            for g in grads:
                finite &= tf.reduce_all(tf.math.is_finite(g))
            return loss, 1.0 - tf.cast(finite, tf.float32), grads

        def replica_apply(grads):
            optimizer.apply(grads, model.trainable_variables)

        # One trace for every batch shape. With a strategy of several replicas the inputs are distributed
        # values, whose specs are not known here: those steps relax their shapes after a second trace instead.
        n_mfcc, single = self.spec.features.n_mfcc, strategy.num_replicas_in_sync == 1
        features_spec = [tf.TensorSpec([None, None, n_mfcc], tf.float32), tf.TensorSpec([None], tf.int32)]
        train_signature = [*features_spec, tf.TensorSpec([None, None], tf.int32), tf.TensorSpec([None], tf.int32)]

        @tf.function(input_signature=train_signature if single else None, reduce_retracing=not single)
        def train_step(features, lengths, labels, label_lengths):
            loss, not_finite, grads = strategy.run(replica_gradients, args=(features, lengths, labels, label_lengths))
            # The update is skipped on every replica if the loss or a gradient is NaN/inf on any of them.
            # The branch is taken in the cross-replica context: a cond inside a replica cannot hold the
            # gradient all-reduce that optimizer.apply performs.
            all_finite = strategy.reduce("SUM", not_finite, axis=None) == 0.0

            def apply():
                strategy.run(replica_apply, args=(grads,))
                return tf.constant(True)

            def skip():
                self.skipped_steps.assign_add(1)
                return tf.constant(False)

            applied = tf.cond(all_finite, apply, skip)
            return strategy.reduce("SUM", loss, axis=None), applied

        @tf.function(input_signature=features_spec, reduce_retracing=True)
        def predict_step(features, lengths):
            logits = model({"features": features, "lengths": lengths}, training=False)
            return tf.nn.log_softmax(logits), output_length(lengths)

        self._train_step, self._predict_step = train_step, predict_step

    # -- evaluation -----------------------------------------------------------------------------------------
    def evaluate(self, data: Sequence[Example] | DataSource) -> dict[str, float]:
        """Greedy WER/CER of the current weights on ``data`` (examples or a data source such as shards)."""
        return self._evaluate_batches(self._eval_batches(data))

    def _eval_batches(self, data: Sequence[Example] | DataSource):
        return as_source(data, self.spec.features.n_mfcc).dataset(self.config.eval_batch_size,
                                                                  max_batch_frames=self.config.max_batch_frames)

    def _evaluate_batches(self, ds) -> dict[str, float]:
        from speech.decoding import GreedyDecoder

        if self._predict_step is None:
            self._build_steps()
        decoder = GreedyDecoder(self.spec.vocab, self.spec.frame_seconds)
        hypotheses: dict[int, str] = {}
        references: dict[int, str] = {}
        for features, lengths, labels, label_lengths, ids in ds:
            log_probs, out_lengths = self._predict_step(features, lengths)
            hyps = decoder.decode_batch(log_probs.numpy(), out_lengths.numpy())
            for i, hyp, label, n in zip(ids.numpy(), hyps, labels.numpy(), label_lengths.numpy()):
                hypotheses[int(i)] = hyp.text
                # The reference is the decoded label, which is what Example.text holds: a source need not
                # carry its texts separately.
                references[int(i)] = self.spec.vocab.decode(label[:n])
        # WER over the speech; clips with no speech (empty labels) are counted apart, as `speech evaluate` does.
        spoken = sorted(i for i in references if references[i])
        rates = error_rates([references[i] for i in spoken], [hypotheses[i] for i in spoken])
        if len(spoken) < len(references):
            said = non_speech_rates([hypotheses[i] for i in references if not references[i]])
            rates.update({f"non_speech_{k}": v for k, v in said.items()})
        return rates

    # -- the loop -------------------------------------------------------------------------------------------
    def fit(self, train: Sequence[Example] | DataSource, dev: Sequence[Example] | DataSource | None = None,
            resume: bool = False, progress: bool = True) -> list[dict]:
        """Train on ``train`` (examples or a data source such as a shard folder), choosing weights on ``dev``."""
        import tensorflow as tf
        from tqdm import tqdm

        c = self.config
        train = as_source(train, self.spec.features.n_mfcc)
        dev = as_source(dev, self.spec.features.n_mfcc) if dev is not None else None
        history_path = self.output_dir / "history.json"
        history: list[dict] = []
        if resume and self.manager.latest_checkpoint:
            self.checkpoint.restore(self.manager.latest_checkpoint).assert_existing_objects_matched()
            if history_path.exists():
                history = [h for h in json.loads(history_path.read_text()) if h["epoch"] < int(self.epoch.numpy())]
            log.info("resumed from %s at epoch %d, step %d", self.manager.latest_checkpoint,
                     int(self.epoch.numpy()), int(self.step_in_epoch.numpy()))
        elif resume:
            log.info("no checkpoint in %s: starting a new run", self.output_dir / "checkpoints")
        if self._train_step is None:
            self._build_steps()

        # Counted from the clip lengths: iterating an epoch to count it read every feature file first (about 8
        # minutes before the first step on 48k utterances).
        steps_per_epoch = max(1, as_source(train, self.spec.features.n_mfcc).num_batches(**self._batching()))
        self.schedule_total.assign(steps_per_epoch * c.epochs)
        writer = tf.summary.create_file_writer(str(self.output_dir / "logs"))
        audio_seconds_per_frame = self.spec.features.frame_seconds

        # Built once: the dev batches are the same every epoch, and building a pipeline traces its functions.
        dev_batches = self._eval_batches(dev) if dev else None
        while int(self.epoch.numpy()) < c.epochs:
            epoch = int(self.epoch.numpy())
            start_step = int(self.step_in_epoch.numpy())
            batches = self._epoch_batches(train, epoch, skip=start_step)
            bar = tqdm(total=steps_per_epoch, initial=start_step, desc=f"epoch {epoch + 1}/{c.epochs}",
                       unit="batch", disable=None if progress else True, dynamic_ncols=True, leave=False)
            audio_seconds, started = 0.0, time.perf_counter()
            for features, lengths, labels, label_lengths, _ in batches:
                loss, applied = self._train_step(features, lengths, labels, label_lengths)
                loss = float(loss)
                if bool(applied):
                    self.epoch_loss_sum.assign_add(loss)
                    self.epoch_loss_steps.assign_add(1)
                else:
                    log.warning("non-finite loss or gradient at epoch %d step %d: update skipped", epoch + 1,
                                int(self.step_in_epoch.numpy()))
                frames = sum(float(tf.reduce_sum(x)) for x in self.strategy.experimental_local_results(lengths))
                audio_seconds += frames * audio_seconds_per_frame
                self.step_in_epoch.assign_add(1)
                step = int(self.optimizer.iterations.numpy())
                with writer.as_default(step=step):
                    tf.summary.scalar("train/loss", loss)
                    tf.summary.scalar("train/learning_rate", self._learning_rate())
                speed = audio_seconds / (time.perf_counter() - started)
                bar.set_postfix(loss=f"{loss:.3f}", audio_s_per_s=f"{speed:.0f}")
                bar.update()
                if c.checkpoint_every_steps and int(self.step_in_epoch.numpy()) % c.checkpoint_every_steps == 0:
                    self.manager.save(checkpoint_number=step)
            bar.close()
            elapsed = time.perf_counter() - started
            loss_steps = int(self.epoch_loss_steps.numpy())
            record = {"epoch": epoch,
                      "train_loss": float(self.epoch_loss_sum.numpy()) / loss_steps if loss_steps else None,
                      "audio_seconds_per_second": audio_seconds / max(elapsed, 1e-9), "seconds": elapsed,
                      "skipped_steps": int(self.skipped_steps.numpy())}
            stop = False
            if dev:
                metrics = self._evaluate_batches(dev_batches)
                record.update({"dev_wer": metrics["wer"], "dev_cer": metrics["cer"],
                               **{f"dev_{k}": v for k, v in metrics.items() if k.startswith("non_speech")}})
                # Ties go to the later epoch: the same WER at a lower loss is usually the better model.
                if metrics["wer"] <= float(self.best_wer.numpy()):
                    self.best_wer.assign(metrics["wer"])
                    self.bad_epochs.assign(0)
                    self._save_weights(record)
                else:
                    self.bad_epochs.assign_add(1)
                    stop = bool(c.early_stopping_patience) and int(self.bad_epochs.numpy()) >= c.early_stopping_patience
                with writer.as_default(step=epoch + 1):
                    tf.summary.scalar("dev/wer", metrics["wer"])
                    tf.summary.scalar("dev/cer", metrics["cer"])
            else:
                self._save_weights(record)
            log.info("epoch %d: %s", epoch + 1, json.dumps({k: round(v, 4) if isinstance(v, float) else v
                                                             for k, v in record.items()}))
            history.append(record)
            self.epoch.assign(epoch + 1)
            self.step_in_epoch.assign(0)
            self.epoch_loss_sum.assign(0.0)
            self.epoch_loss_steps.assign(0)
            self.manager.save(checkpoint_number=int(self.optimizer.iterations.numpy()))
            if self.is_chief:
                with atomic_write(history_path) as f:
                    json.dump(history, f, indent=1)
            if stop:
                log.info("early stopping: dev WER has not improved for %d epochs", c.early_stopping_patience)
                break
        writer.flush()
        return history

    def _batching(self) -> dict:
        """Global batch settings (every replica's share together): what an epoch is made and counted with."""
        c, replicas = self.config, self.strategy.num_replicas_in_sync
        return {"batch_size": c.batch_size * replicas, "min_batch": replicas,
                "max_batch_frames": c.max_batch_frames and c.max_batch_frames * replicas}

    def _epoch_batches(self, data: Sequence[Example] | DataSource, epoch: int, skip: int = 0):
        import tensorflow as tf

        c = self.config
        source = as_source(data, self.spec.features.n_mfcc)
        ds = source.dataset(shuffle=True, seed=c.seed, epoch=epoch, spec_augment=c.spec_augment, skip_batches=skip,
                            **self._batching())
        if self.strategy.num_replicas_in_sync == 1:
            return ds
        # The source says how a multi-worker run splits it; with DATA (examples and shards alike) every worker
        # builds the same batches and each replica takes its slice of every global batch.
        options = tf.data.Options()
        policy = getattr(tf.data.experimental.AutoShardPolicy, source.auto_shard_policy)
        options.experimental_distribute.auto_shard_policy = policy
        return self.strategy.experimental_distribute_dataset(ds.with_options(options))

    def _save_weights(self, record: dict) -> None:
        if not self.is_chief:
            return
        save_model(self.output_dir, self.model, self.spec,
                   extra={"train": self.config.to_json(), "trained": {k: v for k, v in record.items()}})


def make_strategy(name: str, cpu_replicas: int = 0):
    """A tf.distribute strategy. ``cpu_replicas`` > 1 splits the CPU into that many logical devices
    (for trying the distributed path on a machine without GPUs; it must run before TensorFlow starts)."""
    import tensorflow as tf

    if cpu_replicas > 1:
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * cpu_replicas)
    if name == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        devices = None if gpus or cpu_replicas < 2 else [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices=devices)
    if name == "multiworker":
        return tf.distribute.MultiWorkerMirroredStrategy()  # hosts and ranks come from TF_CONFIG
    return tf.distribute.get_strategy()
