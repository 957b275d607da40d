"""``python -m speech train``: manifests -> cached features -> tf.data -> LSTM-CTC -> checkpoints.

The output folder is self-describing (config.json with features, model, vocabulary and training
settings; model.weights.h5 = best by dev WER), and ``--resume`` continues exactly where a killed run
stopped (the last checkpoint, at most ``checkpoint_every_steps`` steps back).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import replace
from pathlib import Path

from speech.cli import run_job, setup_logging
from speech.errors import SpeechError
from speech.features import default_cache_dir

log = logging.getLogger("speech.train")
RUN_FILE = "run.json"


EXAMPLES = """examples:
  speech train --train train.jsonl --dev dev.jsonl --output runs/small
  speech train --train train.jsonl --dev dev.jsonl --output runs/small --resume      after a kill
  speech train --train mine.jsonl --dev mine-dev.jsonl --output runs/ft --init-from default --learning-rate 1e-4
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="speech train", description=__doc__, epilog=EXAMPLES,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--train", required=True, action="append",
                   help="training manifest (repeatable), or one shard folder written by featurize")
    p.add_argument("--dev", action="append",
                   help="dev manifest or shard folder, for WER, best checkpoint, early stopping")
    p.add_argument("--output", required=True, help="model folder to write")
    p.add_argument("--preset", default="small", help="model preset: tiny, small (default), large")
    p.add_argument("--config", help="JSON file with optional sections model, features, train, vocab")
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--learning-rate", type=float)
    p.add_argument("--seed", type=int)
    p.add_argument("--resume", action="store_true", help="continue the run in --output from its last checkpoint")
    p.add_argument("--init-from", metavar="MODEL_DIR",
                   help="fine-tune: start from this model's weights (its features, network and vocabulary are "
                   "kept; the optimiser and learning-rate schedule start afresh). 'default' = the bundled model")
    p.add_argument("--overwrite", action="store_true", help="start afresh even if --output holds a run")
    p.add_argument("--cache-dir", default=default_cache_dir(), help="feature cache (default: %(default)s)")
    p.add_argument("--jobs", type=int, help="feature extraction processes (default: all cores)")
    p.add_argument("--strategy", choices=["default", "mirrored", "multiworker"], default="default",
                   help="tf.distribute strategy: one device, local GPUs, or hosts from TF_CONFIG")
    p.add_argument("--cpu-replicas", type=int, default=0,
                   help="with --strategy mirrored and no GPU: split the CPU into N logical devices")
    p.add_argument("--mixed-precision", action="store_true", help="float16 compute (GPU only)")
    p.add_argument("--no-progress", action="store_true")
    return p


def configured_settings(preset_name: str, config_path: str | None):
    """Model spec and training config from a preset and an optional --config JSON file."""
    from speech.features import FeatureConfig
    from speech.model import ModelSpec, preset
    from speech.text import Vocabulary
    from speech.training import PRESET_TRAIN_DEFAULTS, TrainConfig

    overrides = json.loads(Path(config_path).read_text()) if config_path else {}
    unknown = set(overrides) - {"model", "features", "train", "vocab"}
    if unknown:
        raise SpeechError(f"unknown sections {sorted(unknown)} in config", config_path)
    try:
        features = FeatureConfig(**overrides.get("features", {}))
        model = preset(preset_name, num_features=features.n_mfcc, **overrides.get("model", {}))
        vocab = Vocabulary(**overrides.get("vocab", {}))
        train = TrainConfig.from_json({**TrainConfig().to_json(), **PRESET_TRAIN_DEFAULTS.get(preset_name, {}),
                                       **overrides.get("train", {})})
    except (TypeError, ValueError) as e:
        raise SpeechError(f"bad configuration: {e}", config_path) from e
    return ModelSpec(features, model, vocab), train


# What --config may change in a model that --init-from starts from: settings that own no weights.
INIT_FROM_MODEL_KEYS = {"dropout"}


def init_spec(model_dir: str, config_path: str | None):
    """The spec of the model a fine-tuning run starts from; --config may change only its dropout."""
    from speech.model import load_spec

    overrides = json.loads(Path(config_path).read_text()) if config_path else {}
    model_overrides = overrides.get("model") or {}
    if not isinstance(model_overrides, dict):
        raise SpeechError("the config's \"model\" section must be an object", config_path)
    changed = sorted(set(overrides) & {"features", "vocab"})
    changed += [f"model.{k}" for k in sorted(set(model_overrides) - INIT_FROM_MODEL_KEYS)]
    if changed:
        raise SpeechError(f"--init-from keeps the starting model's {', '.join(changed)}: remove them from --config "
                          "(of the network, only its dropout may change)", config_path)
    spec = load_spec(model_dir)
    try:
        return replace(spec, model=replace(spec.model, **model_overrides))
    except (TypeError, ValueError) as e:
        raise SpeechError(f"bad configuration: {e}", config_path) from e


def resolve_settings(args: argparse.Namespace):
    """Model spec and training config from (in order) a resumed run, the preset, --config, the flags."""
    from speech.model import ModelSpec
    from speech.training import TrainConfig

    out = Path(args.output)
    if args.resume and (out / RUN_FILE).is_file():
        saved = json.loads((out / RUN_FILE).read_text())
        spec, train = ModelSpec.from_json(saved["spec"]), TrainConfig.from_json(saved["train"])
    else:
        spec, train = configured_settings(args.preset, args.config)
        if args.init_from:
            spec = init_spec(args.init_from, args.config)
    flags = {"epochs": args.epochs, "batch_size": args.batch_size, "learning_rate": args.learning_rate,
             "seed": args.seed, "mixed_precision": args.mixed_precision or None}
    train = replace(train, **{k: v for k, v in flags.items() if v is not None})
    return spec, train


def _train(args: argparse.Namespace) -> int:
    from speech.dataset import prepare_examples, summarize_skipped
    from speech.manifest import atomic_write, read_manifest
    from speech.training import make_strategy

    # Strategies (logical devices, collective ops) must be set up before TensorFlow runs anything.
    strategy = make_strategy(args.strategy, args.cpu_replicas)
    out = Path(args.output)
    has_run = (out / "checkpoints").is_dir() and any((out / "checkpoints").iterdir())
    if has_run and not (args.resume or args.overwrite):
        raise SpeechError("holds a training run already: pass --resume to continue it or --overwrite", str(out))
    if has_run and args.overwrite:
        import shutil

        shutil.rmtree(out / "checkpoints")
    spec, train_config = resolve_settings(args)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_write(out / RUN_FILE) as f:
        json.dump({"spec": spec.to_json(), "train": train_config.to_json(),
                   "train_manifests": args.train, "dev_manifests": args.dev or []}, f, indent=1)

    def load(manifests: list[str], name: str):
        if any(Path(m).is_dir() for m in manifests):
            return load_shards(manifests, name)
        utterances = [u for m in manifests for u in read_manifest(m)]
        examples, skipped = prepare_examples(utterances, spec.vocab, spec.features, spec.model, args.cache_dir,
                                             args.jobs, progress=not args.no_progress)
        print(summarize_skipped(skipped, name), file=sys.stderr)
        hours = sum(e.num_frames for e in examples) * spec.features.frame_seconds / 3600
        log.info("%s: %d utterances, %.2f h", name, len(examples), hours)
        return examples

    def load_shards(paths: list[str], name: str):
        from speech.shards import ShardSource

        if len(paths) > 1:
            raise SpeechError(f"--{name} takes manifests or one shard folder, not both or several folders",
                              ",".join(paths))
        source = ShardSource(paths[0], spec.model)
        source.check(spec)
        if source.skipped:
            print(f"{name}: skipped {source.skipped} utterance(s) of the shard folder: label needs more frames "
                  "than the clip gives after subsampling", file=sys.stderr)
        hours = float(source.frames.sum()) * spec.features.frame_seconds / 3600
        log.info("%s: %d utterances, %.2f h in %d shard(s)", name, len(source), hours, len(source.files))
        return source

    train = load(args.train, "train")
    if not train:
        raise SpeechError("no usable training utterance (see the reasons above)", ",".join(args.train))
    dev = load(args.dev, "dev") if args.dev else None

    from speech.training import Trainer

    trainer = Trainer(spec, train_config, out, strategy=strategy)
    if args.init_from:
        from speech.model import WEIGHTS_FILE, resolve_model_dir

        # A resumed run's checkpoint, when there is one, replaces these weights inside fit().
        trainer.model.load_weights(resolve_model_dir(args.init_from) / WEIGHTS_FILE)
        log.info("initial weights from %s", args.init_from)
    log.info("model: %s parameters, %d replica(s)", f"{trainer.model.count_params():,}",
             strategy.num_replicas_in_sync)
    history = trainer.fit(train, dev, resume=args.resume, progress=not args.no_progress)
    summary = {"output": str(out), "epochs": len(history)}
    if history:
        summary.update({k: history[-1][k] for k in ("train_loss", "dev_wer", "dev_cer") if k in history[-1]})
    if dev:
        summary["best_dev_wer"] = float(trainer.best_wer.numpy())
    print(json.dumps(summary))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging()
    return run_job(lambda: _train(args))
