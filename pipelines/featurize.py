"""``python -m speech featurize``: manifests -> MFCCs -> TFRecord shards that many trainers can read.

Extract features once (with the same feature cache as train) and write them as ``--shards`` TFRecord files
plus ``shards.json``; then ``train --train DIR [--dev DIR]`` reads the shards instead of audio, so no trainer
(and no worker of a multi-worker run) decodes audio or computes MFCCs. Use the ``--preset``/``--config`` you
will train with: train refuses shards whose features or vocabulary differ from the model's.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from speech.cli import run_job, setup_logging
from speech.errors import SpeechError

log = logging.getLogger("speech.featurize")


EXAMPLES = """examples:
  speech featurize --manifest train.jsonl --output shards/train --shards 16
  speech train --train shards/train --dev dev.jsonl --output runs/small    trains from the shards
"""


def build_parser() -> argparse.ArgumentParser:
    from speech.features import default_cache_dir

    p = argparse.ArgumentParser(prog="speech featurize", description=__doc__, epilog=EXAMPLES,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--manifest", required=True, action="append", help="manifest to featurize (repeatable)")
    p.add_argument("--output", required=True, help="shard folder to write")
    p.add_argument("--shards", type=int, default=16,
                   help="number of shard files, capped at the utterance count (default %(default)s)")
    p.add_argument("--preset", default="small", help="model preset of the training run (default: small)")
    p.add_argument("--config", help="the training run's JSON config (sections features and vocab matter)")
    p.add_argument("--cache-dir", default=default_cache_dir(), help="feature cache (default: %(default)s)")
    p.add_argument("--jobs", type=int, help="feature extraction processes (default: all cores)")
    p.add_argument("--overwrite", action="store_true", help="rewrite --output if it holds shards already")
    p.add_argument("--no-progress", action="store_true")
    return p


def _featurize(args: argparse.Namespace) -> int:
    from speech.dataset import prepare_examples, summarize_skipped
    from speech.manifest import read_manifest
    from speech.pipelines.train import configured_settings
    from speech.shards import is_shard_dir, write_shards

    if args.shards < 1:
        raise SpeechError("--shards must be at least 1")
    if is_shard_dir(args.output) and not args.overwrite:
        raise SpeechError("holds feature shards already: pass --overwrite to rewrite them", args.output)
    spec, _ = configured_settings(args.preset, args.config)
    utterances = [u for m in args.manifest for u in read_manifest(m)]
    # The same extraction and checks as train: labels too long for the preset's subsampling are skipped here.
    examples, skipped = prepare_examples(utterances, spec.vocab, spec.features, spec.model, args.cache_dir,
                                         args.jobs, progress=not args.no_progress)
    print(summarize_skipped(skipped, "featurize"), file=sys.stderr)
    if not examples:
        raise SpeechError("no usable utterance (see the reasons above)", ",".join(args.manifest))
    info = write_shards(examples, Path(args.output), args.shards, spec.features, spec.vocab,
                        progress=not args.no_progress)
    print(json.dumps({"output": args.output, "utterances": info["num_examples"], "skipped": len(skipped),
                      "shards": len(info["shards"]), "hours": round(info["hours"], 4)}))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging()
    return run_job(lambda: _featurize(args))
