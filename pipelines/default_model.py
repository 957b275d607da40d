"""Rebuild the bundled default model end to end: ``bash scripts/build_default_model.sh``.

The build plan is data: ``default_model.json`` beside this file (another with ``--recipe``), loaded by
:func:`load_recipe`. This job runs it. Each step is skipped when its output exists, so a re-run resumes: synthesise
the main corpus (train/dev/test, the recipe's unseen voices held out of training), train stage 1 on it, then each
later stage (the recipe's ``stages``, then the first ``--consolidation-rounds`` of its ``rounds``; by default its
``shipped_rounds``) from the stage before, on the train-only corpora the recipe names (synthesised beside
``--corpus`` when missing, with none of the main corpus's dev or test sentences and without its test-only speakers);
then build a 3-gram LM (KenLM's lmplz) from the corpus text and WordNet's definitions (dev/test sentences and their
synsets excluded), tune the LM weights on the dev split only, score greedy and LM decoding on the unseen-voice test
split, and copy the shipped files (config, weights, LM, metrics, the stage records ``stages.json`` and the model card)
into ``models/default``.

``--continue`` goes on from the model in ``--output`` instead: its ``stages.json`` says which stages of the plan it
has been through, and only the later ones run (a new machine needs no earlier run, only the corpora those
stages train on, synthesised again). ``--rescore`` builds the LM again and scores the shipped weights again.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from speech.augment import AugmentConfig
from speech.cli import run_job, setup_logging
from speech.corpus_plan import CorpusConfig, same_speaker
from speech.decoding import DEFAULT_BEAM_WIDTH
from speech.errors import SpeechError
from speech.features import FeatureConfig

log = logging.getLogger("speech.default_model")
ROOT = Path(__file__).resolve().parent.parent
RECIPE_FILE = Path(__file__).resolve().with_name("default_model.json")
STAGES_FILE = "stages.json"  # the stage records the model card is made from
SHIPPED = ["config.json", "model.weights.h5", "lm.npz", "metrics.json"]


class RecipeError(SpeechError):
    """A build recipe that cannot be run; the message names the file and the entry at fault."""


@dataclass(frozen=True)
class TrainSettings:
    """A stage's optimiser settings; ``dropout`` None keeps the dropout of the model the stage starts from."""

    batch_size: int
    learning_rate: float  # the peak of the stage's warm-up and cosine decay
    warmup_steps: int
    checkpoint_every_steps: int
    max_batch_frames: int | None = None
    dropout: float | None = None

    def config(self) -> dict:
        """The stage's ``speech train --config``."""
        # Every epoch runs (no early stopping): a stage is the recipe's epochs, so a rebuild repeats it exactly.
        train = {"batch_size": self.batch_size, "learning_rate": self.learning_rate,
                 "warmup_steps": self.warmup_steps, "checkpoint_every_steps": self.checkpoint_every_steps,
                 "early_stopping_patience": 0}
        if self.max_batch_frames:
            train["max_batch_frames"] = self.max_batch_frames
        return {"train": train, **({"model": {"dropout": self.dropout}} if self.dropout is not None else {})}


@dataclass(frozen=True)
class Corpus:
    """A train-only corpus, synthesised beside the main corpus (``--corpus``) if missing; ``synth_args``: its extra
    ``speech synth`` options."""

    name: str
    seed: int
    hours: float
    synth_args: tuple[str, ...] = ()


@dataclass(frozen=True)
class Stage:
    """A training stage after the first: it starts from the previous stage's weights."""

    name: str
    suffix: str  # of its run folder
    epochs: int
    train: TrainSettings
    corpora: tuple[Corpus, ...]  # the train-only corpora it trains on; the first is its own (its record's)
    with_main: bool  # trained on the main corpus's train split too


@dataclass(frozen=True)
class MainStage:
    """Stage 1: the main corpus (train/dev/test) and the preset trained on it from nothing."""

    hours: float
    seed: int
    preset: str
    epochs: int
    train: TrainSettings


@dataclass(frozen=True)
class Recipe:
    """A build plan, as :func:`load_recipe` reads it."""

    main: MainStage
    unseen_voices: tuple[str, ...]  # the main corpus's test-only voices
    stages: tuple[Stage, ...]  # always trained
    rounds: tuple[Stage, ...]  # trained after them, as many as asked for
    shipped_rounds: int  # the rounds of the bundled model; later ones are trials

    def plan(self, rounds: int | None = None) -> tuple[Stage, ...]:
        """The training stages after the first, in order: every stage, then the first ``rounds`` rounds (default:
        those of the bundled model)."""
        return self.stages + self.rounds[:self.shipped_rounds if rounds is None else rounds]


# What a stage trains on: its own corpus; that and the main corpus's train split; or that (if it has one) and every
# train-only corpus of the stages before it, in the order they came.
TRAINS_ON = ("corpus", "corpus_and_main", "all_corpora")
STAGE_KEYS, TRAIN_KEYS = ("suffix", "epochs", "train", "trains_on"), ("batch", "learning_rate", "warmup_steps")


class _Entry:
    """One JSON object of a recipe, read with its types checked; every error names the file and the entry
    (``rounds[3].train.learning_rate``)."""

    def __init__(self, data: object, where: str, path: Path, required: Sequence[str] = (),
                 optional: Sequence[str] | None = ()):
        """``optional`` None: any other key is allowed (a table of named entries)."""
        self.data, self.where, self.path = data, where, path
        if not isinstance(data, dict):
            self.fail(f"expected an object, got {json.dumps(data)[:60]}")
        unknown = [] if optional is None else sorted(set(data) - {*required, *optional})
        if unknown:
            self.fail(f"unknown key{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}")
        missing = [k for k in required if k not in data]
        if missing:
            self.fail(f"missing {', '.join(map(repr, missing))}")

    def _at(self, key: str | None) -> str:
        return ".".join(p for p in (self.where, key) if p)

    def fail(self, reason: str, key: str | None = None) -> NoReturn:
        raise RecipeError(f"{self._at(key)}: {reason}" if self._at(key) else reason, str(self.path))

    def __contains__(self, key: str) -> bool:
        return key in self.data

    def entry(self, key: str, required: Sequence[str] = (), optional: Sequence[str] | None = ()) -> _Entry:
        return _Entry(self.data[key], self._at(key), self.path, required, optional)

    def whole(self, key: str, minimum: int = 0) -> int:
        value = self.data[key]
        if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
            self.fail(f"expected a whole number of at least {minimum}, got {json.dumps(value)}", key)
        return value

    def number(self, key: str, minimum: float = 0.0, below: float | None = None, *, positive: bool = True) -> float:
        value = self.data[key]
        if (not isinstance(value, (int, float)) or isinstance(value, bool) or value < minimum
                or (positive and value == minimum) or (below is not None and value >= below)):
            self.fail(f"expected a number {'above' if positive else 'of at least'} {minimum:g}"
                      + (f" and below {below:g}" if below is not None else "") + f", got {json.dumps(value)}", key)
        return float(value)

    def text(self, key: str, choices: Sequence[str] = ()) -> str:
        value = self.data[key]
        if not isinstance(value, str) or not value or (choices and value not in choices):
            self.fail(f"expected {'one of ' + ', '.join(map(repr, choices)) if choices else 'a non-empty string'}, "
                      f"got {json.dumps(value)}", key)
        return value

    def texts(self, key: str) -> tuple[str, ...]:
        value = self.data[key]
        if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
            self.fail(f"expected a non-empty list of strings, got {json.dumps(value)[:60]}", key)
        return tuple(value)


def _train_settings(e: _Entry, batches: dict[str, dict]) -> TrainSettings:
    """A ``train`` entry: a named batch setting (the recipe's ``batch_settings``), the peak learning rate, the
    warm-up and, optionally, another dropout."""
    return TrainSettings(**batches[e.text("batch", tuple(batches))], learning_rate=e.number("learning_rate"),
                         warmup_steps=e.whole("warmup_steps"),
                         dropout=e.number("dropout", 0.0, 1.0, positive=False) if "dropout" in e else None)


def load_recipe(path: Path | str = RECIPE_FILE) -> Recipe:
    """Read and check a build recipe (``default_model.json`` is the bundled model's); a :class:`RecipeError` says
    what is wrong and where."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise RecipeError(f"cannot read it ({e.strerror})", str(path)) from e
    except json.JSONDecodeError as e:
        raise RecipeError(f"not valid JSON ({e})", str(path)) from e
    top = _Entry(data, "", path, ("main", "unseen_voices", "shipped_rounds", "batch_settings", "synth_options",
                                  "stages", "rounds"), ("about",))
    table = top.entry("batch_settings", optional=None)
    batches = {}
    for name in table.data:
        b = table.entry(name, ("batch_size", "checkpoint_every_steps"), ("max_batch_frames",))
        batches[name] = {"batch_size": b.whole("batch_size", 1),
                         "checkpoint_every_steps": b.whole("checkpoint_every_steps", 1),
                         "max_batch_frames": b.whole("max_batch_frames", 1) if "max_batch_frames" in b else None}
    table = top.entry("synth_options", optional=None)
    synth_options = {name: table.texts(name) for name in table.data}
    m = top.entry("main", ("hours", "seed", "preset", "epochs", "train"))
    main = MainStage(hours=m.number("hours"), seed=m.whole("seed"), preset=m.text("preset"),
                     epochs=m.whole("epochs", 1), train=_train_settings(m.entry("train", TRAIN_KEYS, ("dropout",)),
                                                                        batches))
    corpora: dict[str, Corpus] = {}  # every train-only corpus so far, in the order the stages bring them
    seeds = {main.seed: "the main corpus"}
    suffixes: set[str] = set()

    def new_corpus(c: _Entry) -> Corpus:
        name, seed = c.text("name"), c.whole("seed")
        if name in corpora:
            c.fail(f"{name!r} is an earlier stage's corpus: name it as a string to train on it again", "name")
        if "/" in name or name.startswith("."):
            c.fail(f"{name!r} is not a folder name", "name")
        if seed in seeds:
            c.fail(f"seed {seed} is {seeds[seed]}'s too: a new corpus needs new draws", "seed")
        groups = c.texts("synth") if "synth" in c else ()
        unknown = [g for g in groups if g not in synth_options]
        if unknown:
            c.fail(f"no synth_options named {', '.join(map(repr, unknown))}", "synth")
        seeds[seed] = name
        corpora[name] = Corpus(name, seed, c.number("hours"), tuple(a for g in groups for a in synth_options[g]))
        return corpora[name]

    def stage(e: _Entry) -> Stage:
        trains_on, suffix = e.text("trains_on", TRAINS_ON), e.text("suffix")
        if suffix in suffixes:
            e.fail(f"{suffix!r} is an earlier stage's: each stage needs a run folder of its own", "suffix")
        suffixes.add(suffix)
        own = None
        if "corpus" in e and isinstance(e.data["corpus"], str):
            if e.data["corpus"] not in corpora:
                e.fail(f"no earlier stage brings a corpus {e.data['corpus']!r}", "corpus")
            own = corpora[e.data["corpus"]]
        elif "corpus" in e:
            own = new_corpus(e.entry("corpus", ("name", "seed", "hours"), ("synth",)))
        elif trains_on != "all_corpora" or not corpora:
            e.fail(f"a stage that trains on {trains_on!r} needs a corpus (an object, or an earlier one's name)")
        trained = (*([own] if own else []), *(c for c in corpora.values() if c != own)) \
            if trains_on == "all_corpora" else (own,)
        return Stage(name=e.text("name") if "name" in e else suffix, suffix=suffix, epochs=e.whole("epochs", 1),
                     train=_train_settings(e.entry("train", TRAIN_KEYS, ("dropout",)), batches), corpora=trained,
                     with_main=trains_on == "corpus_and_main")

    def stages(key: str) -> tuple[Stage, ...]:
        if not isinstance(top.data[key], list):
            top.fail("expected a list of stages", key)
        return tuple(stage(_Entry(e, f"{key}[{k}]", path, STAGE_KEYS, ("name", "corpus")))
                     for k, e in enumerate(top.data[key]))

    unseen, fixed, rounds, shipped = top.texts("unseen_voices"), stages("stages"), stages("rounds"), \
        top.whole("shipped_rounds")
    if shipped > len(rounds):
        top.fail(f"{shipped}, but the recipe has {len(rounds)} rounds", "shipped_rounds")
    return Recipe(main=main, unseen_voices=unseen, stages=fixed, rounds=rounds, shipped_rounds=shipped)


EXAMPLES = """examples:
  speech build-default                                 rebuild the bundled model (resumes where it stopped)
  speech build-default --rescore                       rebuild the LM and score the shipped weights again
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="speech build-default", description=__doc__, epilog=EXAMPLES,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--recipe", default=str(RECIPE_FILE),
                   help="the build plan: corpora, stages, epochs, learning rates (default: %(default)s)")
    p.add_argument("--corpus", default=str(ROOT / "data" / "synth"),
                   help="the main corpus; the train-only corpora go beside it")
    p.add_argument("--run", default=str(ROOT / "runs" / "default"),
                   help="stage 1's training folder (checkpoints, logs); each later stage's is beside it")
    p.add_argument("--consolidation-rounds", type=int, metavar="N",
                   help="train the first N of the recipe's rounds after its stages (default: its shipped_rounds, "
                        "those of the bundled model; later ones are trials)")
    p.add_argument("--output", default=str(ROOT / "models" / "default"))
    p.add_argument("--tune-utterances", type=int,
                   help="dev utterances used to tune the LM weights (default: all; decoding 251 of them over the "
                        "grid takes a few minutes at beam 128)")
    p.add_argument("--beam", type=int, default=DEFAULT_BEAM_WIDTH)
    p.add_argument("--jobs", type=int)
    p.add_argument("--continue", dest="resume_from_output", action="store_true",
                   help="go on from the model in --output (its stages.json) with the plan's later stages, instead "
                        "of from this machine's runs")
    p.add_argument("--rescore", action="store_true",
                   help="no training: build the LM again and score the model in --output again on --corpus "
                        "(synthesised if missing); rewrites its lm.npz, metrics.json, LM weights and model card")
    p.add_argument("--real-figures", metavar="JSON",
                   help="no training: store scripts/bench_real.py --json figures (real recordings, beside "
                        "PocketSphinx) in --output's metrics.json under real_speech and write its model card again")
    return p


def _search_texts(decodes: list[list], letter_bonus: float) -> list[str]:
    """The decoding search's choice for each utterance among its decodes (one per feature variant)."""
    from speech.decoding import best_hypothesis

    return [best_hypothesis([(h, 1.0) for h in hyps], letter_bonus).text for hyps in decodes]


# The bundled decoding's search: the tuned hop and those of SEARCH_HOP_LENGTHS (speaking rate) under each mel
# filterbank top edge of SEARCH_FMAXES (None: the Nyquist frequency; lower: VTLN's warp, as from a shorter vocal
# tract), and the per-letter bonus of the choice (speech.decoding.best_hypothesis), tuned on dev over LETTER_BONUSES.
# Chosen over all 7 hops of HOP_LENGTHS with no warp: the voice check lower, dev no worse (docs/experiments.md).
SEARCH_HOP_LENGTHS = (148, 140, 132, 160)
SEARCH_FMAXES: tuple[float | None, ...] = (None, 7600.0, 7200.0)
LETTER_BONUSES = (0.0, 0.5, 1.0, 2.0)


NON_SPEECH_PER_KIND = 6  # clips of each speech.nonspeech kind in the model's no-speech check


def _non_speech_metrics(transcriber, per_kind: int = NON_SPEECH_PER_KIND) -> dict:
    """What ``transcriber`` says over clips with no speech in them (each kind of :mod:`speech.nonspeech`, 1-5 s,
    fixed seeds), transcribed as a user's files are: it should say nothing."""
    import tempfile

    import numpy as np
    import soundfile as sf

    from speech.metrics import non_speech_rates
    from speech.nonspeech import NON_SPEECH_KINDS, non_speech_clip

    rng = np.random.default_rng(1125)
    with tempfile.TemporaryDirectory(prefix="speech-non-speech-") as tmp:
        clips = []
        for kind in NON_SPEECH_KINDS:
            for k in range(per_kind):
                seconds, seed = float(rng.uniform(1.0, 5.0)), int(rng.integers(2**31))
                path = f"{tmp}/{kind}-{k}.wav"
                sf.write(path, non_speech_clip(kind, seconds, 16000, np.random.default_rng(seed)), 16000)
                clips.append((kind, path))
        transcripts = list(transcriber.transcribe_files([p for _, p in clips], jobs=1))
    failed = [t for t in transcripts if t.error]
    if failed:  # our own clips: a failure is a bug, not a clip that rightly got no words
        raise RuntimeError(f"the no-speech check could not transcribe {failed[0].audio_filepath}: {failed[0].error}")
    said = [t.text for t in transcripts]
    return {**non_speech_rates(said),
            "with_words_by_kind": {kind: non_speech_rates([t for (k, _), t in zip(clips, said) if k == kind])
                                   ["with_words"] for kind in NON_SPEECH_KINDS}}


def _log_probs(transcriber, manifest: Path, limit: int | None = None, seed: int = 0,
               features: FeatureConfig | None = None) -> dict:
    """The network's log-probabilities over ``manifest`` (a sample of ``limit`` utterances), from the model's own
    features or ``features`` (a :class:`speech.features.FeatureConfig`)."""
    from speech.features import FeatureCache, default_cache_dir
    from speech.manifest import read_manifest

    utts = read_manifest(manifest)
    if limit and len(utts) > limit:
        utts = random.Random(seed).sample(utts, limit)
    cache = FeatureCache(default_cache_dir(), features or transcriber.spec.features)
    feats = [cache.get_or_compute(u.audio_filepath)[1] for u in utts]
    return {"refs": [transcriber.spec.vocab.normalize(u.text) for u in utts],
            "log_probs": transcriber.log_probs(feats), "voices": [u.extra.get("voice") for u in utts]}


# Feature hops (samples at 16 kHz: 10 ms down to 8.25 ms) the model is decoded at on dev by _tune_hop_length.
HOP_LENGTHS = (160, 152, 148, 144, 140, 136, 132)


def _write_atomically(path: Path, text: str) -> None:
    """``--rescore`` rewrites the shipped model's files in place: a killed job must leave each old or new, never cut."""
    from speech.manifest import atomic_write

    with atomic_write(path) as f:
        f.write(text)


def _write_card(model_dir: Path, config: dict, metrics: dict) -> None:
    """The whole model card again, from ``config``, ``metrics`` and the folder's stage records."""
    _write_atomically(model_dir / "MODEL_CARD.md",
                      model_card(config, metrics, json.loads((model_dir / STAGES_FILE).read_text())))


def _write_json(path: Path, data: dict) -> None:
    _write_atomically(path, json.dumps(data, indent=1))


def _set_hop_length(model_dir: Path, hop_length: int) -> None:
    config = json.loads((model_dir / "config.json").read_text())
    config["features"]["hop_length"] = hop_length
    _write_json(model_dir / "config.json", config)


def _tune_hop_length(model_dir: Path, corpus: Path, args: argparse.Namespace
                     ) -> tuple[int, dict[str, dict], dict[int, dict]]:
    """Decode dev (beam + LM at the model's saved weights) with the features at each of :data:`HOP_LENGTHS` and
    leave the hop of the lowest dev WER (then CER; then the longer hop) in ``model_dir``'s config, where every
    path (transcription, evaluation, the Beam job, the SavedModel) reads it. Returns ``(hop, dev rates by hop,
    dev log-probabilities by hop)``.

    Why: the network sees 3 feature frames per output frame, so at a 10 ms hop each output frame is 30 ms, coarse
    for fast speech, where a frame must hold a character and the blank between a double letter; 58% of the
    character errors on the unseen voices are deletions. A shorter hop gives the same audio more output frames, as
    if it were spoken slower (the training corpora span speaking rates x0.75-1.35 and speed perturbation, so the
    model knows slower speech). The hop is the model's feature config, so a build that goes on from a tuned model
    (``--continue``) trains its later stages at the tuned hop, and tunes again from there. Figures by hop:
    docs/experiments.md."""
    import dataclasses

    from speech.metrics import error_rates
    from speech.transcribe import LM_FILE, Transcriber, model_decoding

    saved = json.loads((model_dir / "config.json").read_text()).get("decoder", {})
    beam = Transcriber(str(model_dir), model_decoding(str(model_dir), args.beam, str(model_dir / LM_FILE),
                                                      alpha=saved.get("alpha"), beta=saved.get("beta")))
    rates, devs = {}, {}
    for hop in HOP_LENGTHS:  # the config is written once, at the end: a killed job leaves it as it was
        devs[hop] = _log_probs(beam, corpus / "dev.jsonl", args.tune_utterances,
                               features=dataclasses.replace(beam.spec.features, hop_length=hop))
        rates[hop] = error_rates(devs[hop]["refs"], [h.text for h in beam.decode(devs[hop]["log_probs"])])
        log.info("dev at hop %d: WER %.4f, CER %.4f", hop, rates[hop]["wer"], rates[hop]["cer"])
    best = min(HOP_LENGTHS, key=lambda h: (rates[h]["wer"], rates[h]["cer"], -h))
    _set_hop_length(model_dir, best)
    return best, {str(h): {"wer": rates[h]["wer"], "cer": rates[h]["cer"]} for h in HOP_LENGTHS}, devs


def _score(model_dir: Path, corpus: Path, corpus_info: dict, args: argparse.Namespace, rescored: bool = False,
           trained_hop_length: int | None = None) -> dict:
    """Tune the feature hop (:func:`_tune_hop_length`), then the LM weights, on dev; score greedy and LM decoding
    on the test split (overall, unseen voices, each unseen voice); write ``metrics.json``, the hop (``config.json``'s
    features) and the tuned weights (its decoder) into ``model_dir``. ``trained_hop_length``: the hop the network
    was trained at (default: the config's before tuning)."""

    from speech.decoding import tune_lm_weights
    from speech.metrics import error_rates
    from speech.transcribe import LM_FILE, Transcriber, model_decoding

    if trained_hop_length is None:
        trained_hop_length = json.loads((model_dir / "config.json").read_text())["features"]["hop_length"]
    hop_length, dev_by_hop, devs = _tune_hop_length(model_dir, corpus, args)
    dev = devs[hop_length]
    log.info("decoding at hop %d (trained at %d)", hop_length, trained_hop_length)
    greedy = Transcriber(str(model_dir), model_decoding(str(model_dir), beam_width=1))
    test = _log_probs(greedy, corpus / "test.jsonl")
    beam = Transcriber(str(model_dir), model_decoding(
        str(model_dir), args.beam, str(model_dir / LM_FILE), hop_lengths=(hop_length, *SEARCH_HOP_LENGTHS),
        fmaxes=SEARCH_FMAXES, letter_bonus=0.0))
    alpha, beta, dev_wer = tune_lm_weights(beam.decoder, dev["log_probs"], dev["refs"],
                                           alphas=(0.3, 0.5, 0.7, 0.9, 1.2),
                                           betas=(-2.0, -1.5, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0, 3.0))
    log.info("tuned on %d dev utterances: alpha=%.2f beta=%.2f (dev WER %.4f)", len(dev["refs"]), alpha, beta,
             dev_wer)
    beam.decoder.set_lm_weights(alpha, beta)

    def decodes(manifest: Path, known: dict[int, dict], limit: int | None = None) -> list[list]:
        """Each utterance's decodes under each feature variant of the search (in beam.variants' order); ``known``:
        log-probabilities already computed at the model's own fmax, by hop (the same ``limit`` sample)."""
        per_variant = []
        for v in beam.variants:
            ex = known[v.hop_length] if v.fmax == beam.spec.features.fmax and v.hop_length in known else \
                _log_probs(greedy, manifest, limit, features=v)
            per_variant.append(beam.decode(ex["log_probs"]))
        return [list(hyps) for hyps in zip(*per_variant)]

    dev_decodes = decodes(corpus / "dev.jsonl", devs, args.tune_utterances)
    dev_by_bonus = {b: error_rates(dev["refs"], _search_texts(dev_decodes, b)) for b in LETTER_BONUSES}
    letter_bonus = min(LETTER_BONUSES, key=lambda b: (dev_by_bonus[b]["wer"], dev_by_bonus[b]["cer"], b))
    log.info("search over %d feature variants: letter bonus %.1f (dev WER %.4f)", len(beam.variants), letter_bonus,
             dev_by_bonus[letter_bonus]["wer"])
    test_decodes = decodes(corpus / "test.jsonl", {hop_length: test})
    test_texts = _search_texts(test_decodes, letter_bonus)
    one_hop_texts = [hyps[0].text for hyps in test_decodes]  # the first variant is the model's own features
    search = {"hop_lengths": list(beam.hop_lengths), "fmaxes": list(dict.fromkeys(v.fmax for v in beam.variants)),
              "letter_bonus": letter_bonus}
    greedy_hyps = [h.text for h in greedy.decode(test["log_probs"])]
    metrics = {"test_utterances": len(test["refs"]), "greedy": error_rates(test["refs"], greedy_hyps),
               "lm": error_rates(test["refs"], test_texts), "lm_one_hop": error_rates(test["refs"], one_hop_texts),
               "decoder": {"alpha": alpha, "beta": beta, "beam_width": args.beam, "dev_wer": dev_wer, **search,
                           "dev_search": dev_by_bonus[letter_bonus],
                           "dev_by_letter_bonus": {str(b): r for b, r in dev_by_bonus.items()}},
               "hop_length": hop_length, "trained_hop_length": trained_hop_length, "dev_by_hop_length": dev_by_hop,
               "rescored": rescored}
    beam.letter_bonus = letter_bonus
    metrics["non_speech"] = _non_speech_metrics(beam)
    unseen = set(corpus_info.get("voices", {}).get("test_only") or [])
    if unseen:
        def subset(voices: set[str], texts: list[str] = test_texts) -> tuple[dict, dict, int]:
            idx = [i for i, v in enumerate(test["voices"]) if v in voices]
            refs = [test["refs"][i] for i in idx]
            return (error_rates(refs, [greedy_hyps[i] for i in idx]), error_rates(refs, [texts[i] for i in idx]),
                    len(idx))

        metrics["greedy_unseen_voices"], metrics["lm_unseen_voices"], metrics["unseen_voice_utterances"] = \
            subset(unseen)
        metrics["unseen_voices"] = sorted(unseen)
        metrics["lm_one_hop_unseen_voices"] = subset(unseen, one_hop_texts)[1]
        metrics["per_unseen_voice"] = {v: dict(zip(("greedy", "lm", "utterances"), subset({v})))
                                       for v in sorted(unseen)}
    _write_json(model_dir / "metrics.json", metrics)
    config = json.loads((model_dir / "config.json").read_text())
    config["decoder"] = {"alpha": alpha, "beta": beta, "beam_width": args.beam, **search}
    _write_json(model_dir / "config.json", config)
    return metrics


LM_SHORT_PROMPTS = 40_000  # short prompts in the LM text: single words, numbers, letters get sentence-level odds
LM_SHORT_PROMPT_SEED = 7


def build_default_lm(corpus: Path, model_dir: Path, held_out_manifests: Sequence[str | Path] = ()) -> Path:
    """The bundled model's ``lm.npz``: a 3-gram LM (trigrams seen once pruned) over the corpus's LM sentences
    (``sentences.txt``), WordNet's definitions (:func:`speech.prompts.load_glosses`), general English
    (:func:`speech.prompts.load_lm_text`, when installed) and :data:`LM_SHORT_PROMPTS` short prompts
    (:func:`speech.prompts.short_prompts`: what people say in a few words). No line holds a dev or test transcript of
    the corpus, no definition comes from the synset of a dev or test sentence, none of the general text's evaluation
    share is in it, and no short prompt is a transcript of ``held_out_manifests`` (other corpora's dev/test splits).

    The definitions cut dev WER and the dev words outside the LM's vocabulary (docs/experiments.md); part of that is
    the shared source (dev and test sentences are mostly WordNet examples), so expect less on other text."""
    import tempfile

    from speech.lm import build_ngram_lm
    from speech.manifest import read_manifest
    from speech.prompts import load_glosses, load_lm_text, phrase_finder, short_prompts
    from speech.transcribe import LM_FILE

    held_out = {u.text for split in ("dev", "test") for u in read_manifest(corpus / f"{split}.jsonl")}
    other_held_out = {u.text for m in held_out_manifests for u in read_manifest(m)}
    holds_held_out = phrase_finder(held_out)
    with tempfile.TemporaryDirectory(prefix=".lm-text-", dir=model_dir) as tmp:
        text = Path(tmp) / "lm-text.txt"
        with open(text, "w", encoding="utf-8") as f:
            for line in (corpus / "sentences.txt").read_text(encoding="utf-8").splitlines():
                if not holds_held_out(line):
                    f.write(line + "\n")
            f.writelines(g + "\n" for g in load_glosses(exclude=held_out))
            f.writelines(line + "\n" for line in load_lm_text(exclude=held_out))
            f.writelines(p.text + "\n" for p in short_prompts(LM_SHORT_PROMPTS, LM_SHORT_PROMPT_SEED, exclude=held_out)
                         if p.text not in other_held_out)
        return build_ngram_lm(str(text), str(model_dir / LM_FILE), order=3, prune="0 0 1", memory="2G")


def _main_corpus(args: argparse.Namespace, recipe: Recipe) -> int:
    """Synthesise the main corpus (train/dev/test) unless it is there; an exit code."""
    from speech.pipelines.synth_corpus import main as synth_main

    if (Path(args.corpus) / "test.jsonl").is_file():
        return 0
    return synth_main(["--output", args.corpus, "--hours", str(recipe.main.hours), "--seed", str(recipe.main.seed),
                       "--holdout", ",".join(recipe.unseen_voices), *(["--jobs", str(args.jobs)] if args.jobs else [])])


def _rescore(args: argparse.Namespace) -> int:
    """Score the model in ``--output`` again on the main corpus as ``speech synth`` makes it now, with its LM built
    again as :func:`build_default_lm` makes it now: new ``lm.npz``, ``metrics.json``, tuned LM weights and the model
    card; the acoustic weights are untouched."""
    out, corpus = Path(args.output), Path(args.corpus)
    code = _main_corpus(args, load_recipe(args.recipe))
    if code:
        return code
    corpus_info = json.loads((corpus / "corpus.json").read_text())
    scored_on = json.loads((out / "metrics.json").read_text()).get("unseen_voices")
    if scored_on and sorted(corpus_info["voices"]["test_only"]) != sorted(scored_on):
        log.error("%s holds out %s, but the model was scored on %s: not the same unseen voices", corpus,
                  ", ".join(corpus_info["voices"]["test_only"]), ", ".join(scored_on))
        return 2
    missing = [name for name in ("config.json", "model.weights.h5", STAGES_FILE) if not (out / name).is_file()]
    if missing:
        log.error("%s has no %s: not a model folder this build made", out, ", ".join(missing))
        return 2
    build_default_lm(corpus, out)
    # The hop the network was trained at: a model scored before hops were tuned was decoded at it.
    trained_hop = json.loads((out / "metrics.json").read_text()).get(
        "trained_hop_length", json.loads((out / "config.json").read_text())["features"]["hop_length"])
    metrics = _score(out, corpus, corpus_info, args, rescored=True, trained_hop_length=trained_hop)
    config = json.loads((out / "config.json").read_text())
    # The whole card again: the beam width and the LM's text are in its other sections too.
    _write_card(out, config, metrics)
    print(json.dumps(metrics))
    return 0


def _plan(args: argparse.Namespace, recipe: Recipe) -> tuple[Stage, ...]:
    """The training stages after the first, in order: the recipe's stages, then ``--consolidation-rounds`` of its
    rounds."""
    rounds = args.consolidation_rounds
    if rounds is not None and not 0 <= rounds <= len(recipe.rounds):
        raise SpeechError(f"--consolidation-rounds {rounds}: {args.recipe} has {len(recipe.rounds)} rounds")
    return recipe.plan(rounds)


def _commands(recipe: Recipe, plan: Sequence[Stage]) -> list[str]:
    """What the card says each stage ran (stage 1 first)."""
    main = recipe.main
    commands = [f"speech synth --hours {main.hours:g} --seed {main.seed} --holdout {','.join(recipe.unseen_voices)}; "
                f"speech train --preset {main.preset}"]
    synthesised = set()
    for i, stage in enumerate(plan):
        data = " + ".join([*(["main"] if stage.with_main else []), *(c.name for c in stage.corpora)])
        own = stage.corpora[0]
        if own in synthesised:
            how = f"same data ({data}); "
        else:
            synthesised.add(own)
            how = (f"speech synth --hours {own.hours:g} --seed {own.seed} --prompts sentences.txt "
                   + "".join(a + " " for a in own.synth_args) + f"(train only; trained on {data}); ")
        dropout = stage.train.dropout
        commands.append(how + f"speech train --init-from STAGE{i + 1} (batch {stage.train.batch_size}, "
                              f"peak learning rate {stage.train.learning_rate:g}"
                              + (f", dropout {dropout:g}" if dropout is not None else "") + ")")
    return commands


def stage_record(command: str, history: list[dict], corpus_info: dict) -> dict:
    """What the model card says of one training stage; ``stages.json`` keeps them with the model so that a later
    build can go on from it (``--continue``) without the earlier runs. Its dev figures are those of the epoch whose
    weights the stage kept (the best by dev WER, ties to the later epoch, as :class:`speech.training.Trainer`)."""
    scored = [(k, h) for k, h in enumerate(history, start=1) if h.get("dev_wer") is not None]
    epoch, kept = min(reversed(scored), key=lambda kh: kh[1]["dev_wer"]) if scored else (len(history), {})
    voices = corpus_info.get("voices", {})
    return {"command": command, "epochs": len(history), "seconds": sum(h.get("seconds", 0) for h in history),
            "dev_wer": kept.get("dev_wer"), "dev_cer": kept.get("dev_cer"), "dev_epoch": epoch,
            "corpus": {"hours": corpus_info["hours"], "counts": corpus_info["counts"],
                       "settings": corpus_info.get("settings", {}),
                       "voices": {k: voices[k] for k in ("train", "test_only", "withheld_same_speaker")
                                  if k in voices},
                       **({"non_speech": corpus_info["non_speech"]}
                          if corpus_info.get("non_speech", {}).get("clips") else {})}}


def _build(args: argparse.Namespace) -> int:
    from speech.pipelines.synth_corpus import main as synth_main
    from speech.pipelines.train import main as train_main

    recipe = load_recipe(args.recipe)
    corpus, stage1, out = Path(args.corpus), Path(args.run), Path(args.output)
    plan = _plan(args, recipe)
    if corpus.name in {c.name for stage in plan for c in stage.corpora}:
        raise SpeechError(f"--corpus {corpus}: the recipe has a train-only corpus of that name beside it")
    code = _main_corpus(args, recipe)
    if code:
        return code
    corpus_info = json.loads((corpus / "corpus.json").read_text())
    commands = _commands(recipe, plan)
    done: list[dict] = []  # records of the stages the model in --output has been through (--continue)
    if args.resume_from_output:
        done = json.loads((out / STAGES_FILE).read_text())
        # Stage 1's command may differ in form (the unseen voices were pinned later); the rest must be this plan.
        same = [(r["command"], r["epochs"]) for r in done[1:]] == \
               [(c, st.epochs) for c, st in zip(commands[1:len(done)], plan)]
        if len(done) > len(commands) or not same:
            log.error("%s was built by another plan than this one's first %d stages: cannot go on from it", out,
                      len(done))
            return 2
        log.info("going on from %s after its %d stages", out, len(done))
    if not done:
        history = stage1 / "history.json"
        if not history.is_file() or len(json.loads(history.read_text())) < recipe.main.epochs:
            stage1.mkdir(parents=True, exist_ok=True)
            (stage1 / "train-config.json").write_text(json.dumps(recipe.main.train.config()))
            code = train_main(["--train", str(corpus / "train.jsonl"), "--dev", str(corpus / "dev.jsonl"),
                               "--output", str(stage1), "--preset", recipe.main.preset, "--epochs",
                               str(recipe.main.epochs), "--config", str(stage1 / "train-config.json"), "--resume",
                               "--no-progress"])
            if code:
                return code
        done = [stage_record(commands[0], json.loads(history.read_text()), corpus_info)]
    voices = corpus_info.get("voices", {})
    withheld = voices.get("test_only", []) + voices.get("withheld_same_speaker", [])
    records, run = list(done), out if args.resume_from_output else stage1
    for i, stage in enumerate(plan, start=1):
        if i < len(done):
            continue
        for c in stage.corpora:  # a continued build may not have synthesised earlier ones yet
            if not (corpus.with_name(c.name) / "train.jsonl").is_file():
                code = synth_main(["--output", str(corpus.with_name(c.name)), "--hours", str(c.hours), "--seed",
                                   str(c.seed), "--prompts", str(corpus / "sentences.txt"), "--holdout",
                                   ",".join(withheld), "--dev-fraction", "0", "--test-fraction", "0", *c.synth_args,
                                   *(["--jobs", str(args.jobs)] if args.jobs else [])])
                if code:
                    return code
        previous, run = run, stage1.with_name(stage1.name + stage.suffix)
        history = run / "history.json"
        if not history.is_file() or len(json.loads(history.read_text())) < stage.epochs:
            run.mkdir(parents=True, exist_ok=True)
            (run / "train-config.json").write_text(json.dumps(stage.train.config()))
            sources = [*([corpus / "train.jsonl"] if stage.with_main else []),
                       *(corpus.with_name(c.name) / "train.jsonl" for c in stage.corpora)]
            code = train_main([*(a for src in sources for a in ("--train", str(src))),
                               "--dev", str(corpus / "dev.jsonl"), "--output", str(run), "--init-from",
                               str(previous), "--epochs", str(stage.epochs), "--config",
                               str(run / "train-config.json"), "--resume", "--no-progress"])
            if code:
                return code
        records.append(stage_record(commands[i], json.loads(history.read_text()),
                                    json.loads((corpus.with_name(stage.corpora[0].name) / "corpus.json").read_text())))
    if run == out:
        log.info("%s has been through every stage of the plan already", out)
        return 0
    build_default_lm(corpus, run)  # always: a run folder may hold an LM an older recipe made
    metrics = _score(run, corpus, corpus_info, args)
    config = json.loads((run / "config.json").read_text())
    (run / STAGES_FILE).write_text(json.dumps(records, indent=1))
    (run / "MODEL_CARD.md").write_text(model_card(config, metrics, records))
    out.mkdir(parents=True, exist_ok=True)
    for name in (*SHIPPED, STAGES_FILE, "MODEL_CARD.md"):
        shutil.copy2(run / name, out / name)
    print(json.dumps(metrics))
    return 0


def _number(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def _rates(m: dict) -> str:
    return f"WER {m['wer']:.3f}, CER {m['cer']:.3f}"


def _draws(settings: dict) -> str:
    """How a corpus's rate, pitch and augmentation draws differ from ``speech synth``'s defaults ("" if not)."""
    default, aug, default_aug = CorpusConfig(output=""), settings.get("augment_config", {}), AugmentConfig()
    parts = [f"{label} x{settings[key][0]:g}-{settings[key][1]:g}" for key, label in
             (("rate_range", "speaking rate"), ("pitch_range", "pitch"))
             if key in settings and tuple(settings[key]) != getattr(default, key)]
    if settings.get("augment_prob", default.augment_prob) != default.augment_prob:
        parts.append(f"{settings['augment_prob']:.0%} of utterances augmented")
    if aug and (aug["speed_prob"], tuple(aug["speed_range"])) != (default_aug.speed_prob, default_aug.speed_range):
        parts.append(f"{aug['speed_prob']:.0%} of augmented utterances resampled by x{aug['speed_range'][0]:g}-"
                     f"{aug['speed_range'][1]:g}")
    if aug and aug.get("noise_prob", default_aug.noise_prob) != default_aug.noise_prob:
        parts.append(f"{aug['noise_prob']:.0%} of augmented utterances with noise")
    if aug.get("voice_prob"):
        parts.append(f"{aug['voice_prob']:.0%} of augmented utterances in a converted voice (F0 "
                     f"x{aug['f0_range'][0]:g}-{aug['f0_range'][1]:g}, formants x{aug['formant_range'][0]:g}-"
                     f"{aug['formant_range'][1]:g})")
    if settings.get("multi_sentence_prob"):
        parts.append(f"{settings['multi_sentence_prob']:.0%} of utterances reading 2-{settings['max_sentences']} "
                     "sentences")
    added = [e for e in settings.get("engines", default.engines) if e not in default.engines]
    if added:
        weights = settings.get("engine_weights") or {}
        parts.append("engines added: " + ", ".join(e + (f" (weight {weights[e]:g})" if e in weights else "")
                                                   for e in added))
    return f" ({', '.join(parts)})" if parts else ""


RESULTS_HEADING, LIMITS_HEADING = "## Results on the test split", "## Known limits"


def results_section(metrics: dict, sample_rate: int) -> list[str]:
    """The model card's results section."""
    unseen = metrics.get("unseen_voices", [])
    return [
        RESULTS_HEADING, "",
        "| decoding | all test voices | unseen voices only |", "|---|---|---|",
        f"| greedy (`--beam 1`) | {_rates(metrics['greedy'])} | "
        f"{_rates(metrics['greedy_unseen_voices']) if 'greedy_unseen_voices' in metrics else '-'} |",
        *([f"| beam + LM, no search (`--no-search`: {metrics['hop_length']}-sample hop) | "
           f"{_rates(metrics['lm_one_hop'])} | {_rates(metrics['lm_one_hop_unseen_voices'])} |"]
          if "lm_one_hop_unseen_voices" in metrics else []),
        f"| beam {metrics['decoder']['beam_width']} + 3-gram LM (alpha {metrics['decoder']['alpha']}, beta "
        f"{metrics['decoder']['beta']}"
        + ", tuned on dev" + (f"; blank penalty {bp:g}, chosen on dev and real speech: docs/experiments.md"
                              if (bp := metrics["decoder"].get("blank_penalty")) else "") + ")"
        + (f" + speaking-rate search over hops {', '.join(map(str, metrics['decoder']['hop_lengths']))}"
           + (f" and mel top edges {', '.join(_fmax(f, sample_rate) for f in metrics['decoder']['fmaxes'])} Hz"
              if len(metrics["decoder"].get("fmaxes") or [None]) > 1 else "")
           if metrics["decoder"].get("hop_lengths") else "")
        + f"; the default | {_rates(metrics['lm'])} | "
        f"{_rates(metrics['lm_unseen_voices']) if 'lm_unseen_voices' in metrics else '-'} |",
        "", f"{metrics['test_utterances']} test utterances"
        + (f", {metrics['unseen_voice_utterances']} of them by unseen voices." if unseen else "."),
        *(["", f"Clips with no speech in them ({ns['clips']}: {', '.join(ns['with_words_by_kind'])}; 1-5 s; "
            f"`speech.nonspeech`), default decoding: {ns['with_words']} got words ({ns['words']} words in all)."]
          if (ns := metrics.get("non_speech")) else []),
        *(["", "| unseen voice | utterances | greedy | beam + LM |", "|---|---|---|---|"]
          + [f"| {v} | {m['utterances']} | {_rates(m['greedy'])} | {_rates(m['lm'])} |"
             for v, m in metrics.get("per_unseen_voice", {}).items()]),
        *(["", "Scored again by `python -m speech build-default --rescore`, on the test split that `speech synth "
            f"--hours 4 --seed 0 --holdout {','.join(unseen)}` makes with the current code."]
          if metrics.get("rescored") else []),
    ]


REAL_SPEECH_HEADING = "## Results on real speech"


def real_speech_section(metrics: dict) -> list[str]:
    """The model card's real-speech section, from ``scripts/bench_real.py --json`` figures (``metrics["real_speech"]``):
    every system of one run on the same real recordings, the peer (PocketSphinx) among them."""
    real = metrics.get("real_speech")
    if not real:
        return []
    names = {"default": "this model, default decoding", "no-search": "this model, `--no-search`",
             "greedy": "this model, greedy (`--beam 1`)", "pocketsphinx": "PocketSphinx 5.1.1, stock en-us model"}
    rows = [f"| {names.get(r['system'], r['system'])} | {r['wer']:.3f} | {r['cer']:.3f} | {r['empty']} of {r['clips']} "
            f"| {r['cpu_per_audio_s']:.3f} |" for r in real["systems"] if "error" not in r]
    return [REAL_SPEECH_HEADING, "",
            f"{real['description']}: {real['clips']} clips, {real['audio_seconds']:.0f} s. Measured with "
            f"`{real['command']}` (all systems in one run).", "",
            "| system | WER | CER | empty outputs | CPU-s per audio-s |", "|---|---|---|---|---|", *rows, ""]


def _store_real_figures(args: argparse.Namespace) -> int:
    """``--real-figures``: bench_real's figures into ``--output``'s metrics.json, and the model card again."""
    out = Path(args.output)
    figures = json.loads(Path(args.real_figures).read_text())
    manifest = Path(figures["manifest"])
    real = {"description": figures.get("description") or f"real recordings ({manifest.parent.name})",
            "command": figures.get("command", "scripts/bench_real.py"),
            "clips": max((r.get("clips", 0) for r in figures["systems"]), default=0),
            "audio_seconds": figures["audio_seconds"], "systems": figures["systems"]}
    metrics = json.loads((out / "metrics.json").read_text())
    metrics["real_speech"] = real
    _write_json(out / "metrics.json", metrics)
    config = json.loads((out / "config.json").read_text())
    _write_card(out, config, metrics)
    return 0


def _dev_figures(stage: dict) -> str:
    figures = f"WER {_number(stage['dev_wer'])}, CER {_number(stage['dev_cer'])}"
    if "dev_epoch" not in stage:  # records written before the kept epoch was noted give the last epoch's
        return f"final dev (greedy) {figures}"
    return f"dev (greedy) {figures} with the weights kept (epoch {stage['dev_epoch']})"


def _features_line(config: dict, metrics: dict) -> str:
    """The model card's line on the features: window, hop, output frame, and the hop it was trained at if the
    decoding hop was tuned away from it."""
    feats, stride = config["features"], config["model"]["conv_stride"]

    def ms(samples: int) -> str:
        return f"{samples * 1000 / feats['sample_rate']:g} ms"

    hop, trained = feats["hop_length"], metrics.get("trained_hop_length", feats["hop_length"])
    line = (f"- Features: {feats['n_mfcc']} MFCCs (librosa, {ms(feats['win_length'])} window, {ms(hop)} hop, "
            f"{feats['n_mels']} mel bands), per-utterance mean/variance normalisation. Output frame: "
            f"{ms(hop * stride)}.")
    if trained != hop:
        by_hop = ", ".join(f"{ms(int(h))} {r['wer']:.3f}" for h, r in metrics["dev_by_hop_length"].items())
        line += (f" Trained at a {ms(trained)} hop, decoded at {ms(hop)}: the hop of the lowest dev WER (dev WER by"
                 f" hop: {by_hop}), more output frames for the same audio, as if it were spoken slower.")
    return line


def _fmax(fmax: float | None, sample_rate: int) -> str:
    """A mel filterbank top edge in Hz (None: the Nyquist frequency)."""
    return f"{sample_rate / 2 if fmax is None else fmax:g}"


LICENCE_SECTION = (
    "## Licence and intended use",
    "- Code: MIT (`LICENSE`). Weights and LM: released under the same terms, subject to the terms of the voices and "
    "text they were made from (below); no recording of a person went into them.",
    "- Intended use: transcribing English speech offline (dictation, commands, short prompts, read speech) where "
    "errors are acceptable or checked, and as a starting point for fine-tuning on a real corpus; measuring and "
    "teaching speech recognition.",
    "- Out of scope: decisions about people (hiring, legal, medical, surveillance), captions or records that must "
    "be accurate without review, languages other than English, identifying speakers.",
    "- Voices used to make the training audio, as their packages state their terms: Kokoro-82M weights and voices "
    "(Apache-2.0); SVOX pico (Apache-2.0); piper-tts (MIT; the joe voice under its own model card); flite and its "
    "CMU voices, festival and its festvox voices (BSD-style); espeak-ng (GPL-3.0-or-later); the MBROLA voice "
    "databases (`mbrola-*`, and festival's us1/us2/us3/en1, which use them) are free for non-commercial, "
    "non-military use only: check their licence before any commercial use of a model trained on their output.",
    "- Text used for prompts and the LM: Debian's fortunes, wordnet-base (WordNet licence) and dict-devil (public "
    "domain); the Brown corpus (redistribution permitted by its copyright holder); the State of the Union addresses "
    "(US government works, CC0) and SpamAssassin's ham mails (PDDL / CC0) from the @stdlib datasets.",
)


def model_card(config: dict, metrics: dict, stages: list[dict]) -> str:
    """The model card, from the runs' own records (nothing typed by hand). ``stages``: the training stages in
    order, each a :func:`stage_record`."""
    model, first, rate = config["model"], stages[0]["corpus"], config["features"]["sample_rate"]
    hours, counts, voices = first["hours"], first["counts"], first["voices"]
    train_voices = sorted({v for st in stages for v in st["corpus"]["voices"]["train"]})
    engines = sorted({v.split(":")[0] for v in train_voices})
    unseen = metrics.get("unseen_voices", [])
    withheld = voices.get("withheld_same_speaker") or []
    leaked = sorted({v for st in stages for v in st["corpus"]["voices"]["train"]}
                    & {v for u in unseen for v in same_speaker(u)} - set(unseen))
    corpora = []  # each corpus once, though several stages may train on it
    for st in stages:
        if st["corpus"] not in corpora:
            corpora.append(st["corpus"])
    total_train_hours = sum(c["hours"]["train"] for c in corpora)
    lines = [
        "# Default model: `small` LSTM-CTC, English, trained on the built-in synthetic corpus", "",
        "## Model",
        f"- Conv1D ({model['conv_channels']} channels, kernel {model['conv_kernel']}, stride {model['conv_stride']})"
        f" + {model['lstm_layers']} x {'bidirectional ' if model['bidirectional'] else ''}LSTM {model['lstm_units']}"
        f" + dense CTC head over {len(config['vocab']['chars'])} characters and the blank.",
        _features_line(config, metrics),
        "- Files: `config.json` (features, network, vocabulary, training settings, decoder: beam width and LM "
        "weights), `model.weights.h5`, `lm.npz` (3-gram LM built with KenLM's lmplz, as `speech.ngram` arrays), "
        "`metrics.json`.",
        f"- Default decoding: beam search (width {config['decoder']['beam_width']}) fused with `lm.npz`"
        + (f", the blank's log-probability lowered by {bp:g} in each frame (`blank_penalty`)"
           if (bp := config["decoder"].get("blank_penalty")) else "")
        + (f", run at each feature hop of {', '.join(map(str, hops))} samples"
           + (f" under each mel filterbank top edge of {', '.join(_fmax(f, rate) for f in fmaxes)} Hz" if len(
               fmaxes := config["decoder"].get("fmaxes") or [None]) > 1 else "")
           + ", the best-scoring result kept"
           + (f" with a bonus of {bonus:g} per letter" if (bonus := config["decoder"].get("letter_bonus")) else "")
           + " (a speaking-rate search: a shorter hop reads the audio as if spoken slower"
           + ("; a lower top edge, as if from a shorter vocal tract" if len(fmaxes) > 1 else "") + ")"
           if (hops := config["decoder"].get("hop_lengths")) else "")
        + "; the SavedModel's `serving_default` runs the same search in its graph; `--beam 1` (its `greedy`"
        " signature) decodes greedily at one hop.",
        "", "## Data",
        f"- Main corpus (`{stages[0]['command'].split(';')[0]}`): {counts['train']} train / {counts['dev']} dev / "
        f"{counts['test']} test utterances ({hours['train']:.2f} / {hours['dev']:.2f} / {hours['test']:.2f} h).",
        *[f"- Extra training corpus: {c['counts']['train']} utterances ({c['hours']['train']:.2f} h"
          + (f"; {c['non_speech']['clips']} of them clips without speech, {c['non_speech']['hours']:.2f} h"
             if c.get("non_speech") else "")
          + ("), short prompts (single words, 2-4 word phrases, numbers, letters, 3-5 word sentences; "
             "`speech.prompts.short_prompts`), none from a dev or test sentence"
             if c.get("settings", {}).get("short_prompts") else
             "), sentences drawn again from the training pool (never a dev or test sentence)")
          + ", other voice/rate/augmentation draws, without the test-only speakers"
          + _draws(c.get("settings", {})) + "." for c in corpora[1:]],
        f"- {total_train_hours:.2f} h of training audio in all. Engines: {', '.join(engines)}; {len(train_voices)} "
        "voices in training. Half of the training utterances augmented (speed, noise, reverberation, telephone "
        "band, gain) unless a corpus says otherwise; SpecAugment during training.",
        f"- Test-only (unseen) voices: {', '.join(unseen) or 'none'}"
        + (f" (their same-speaker voices under other engines, {', '.join(withheld)}, are withheld too)"
           if withheld else "") + ". No sentence is in two splits.",
        *([f"- Caveat: {', '.join(leaked)} (the same recorded speaker as an unseen voice, through another engine) "
           "is in the main corpus's training split, which was made before such siblings were withheld; the "
           "per-voice figures below show each unseen voice on its own."] if leaked else []),
        "- Prompts: sentences from Debian's fortunes, wordnet-base and dict-devil; the LM is built from the same "
        "sources, WordNet's definitions, general English (the Brown corpus, State of the Union addresses, informal "
        "mail; `speech.prompts.load_lm_text`) and 40,000 short prompts, with every dev and test sentence (and the "
        "definitions of their WordNet synsets) removed.",
        "", "## Training",
        *[f"- Stage {i + 1} (`{st['command']}`): {st['epochs']} epoch{'s' if st['epochs'] != 1 else ''}, "
          f"{st['seconds'] / 60:.0f} minutes on a 2-core CPU (shared with other jobs); {_dev_figures(st)}."
          for i, st in enumerate(stages)],
        "- Adam with warm-up and cosine decay (afresh in each stage), best weights by dev WER; stage 1 at batch 16.",
        "", *real_speech_section(metrics), *results_section(metrics, rate), "",
        LIMITS_HEADING,
        "- Trained on synthetic speech only, for a few hours of CPU time: expect much higher error rates on real "
        "human speech, accents, spontaneous speech, noise and far-field audio. It is a working default and a "
        "starting point for fine-tuning on a real corpus (`python -m speech train --init-from default ...`), "
        "not a production model.",
        "- Lower-case letters, space and apostrophe only: no punctuation, no casing; numbers come out as words.",
        "- English only. The LM's text is edited written English (proverbs, dictionary examples and definitions, "
        "news and fiction of 1961, speeches) with some informal mail; it helps less on conversation and technical "
        "domains (`--lm none` turns it off).",
        "", *LICENCE_SECTION,
        "", "## Rebuild", "", "```bash", "bash scripts/build_default_model.sh", "```", "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging()
    if args.real_figures:
        return run_job(lambda: _store_real_figures(args))
    return run_job(lambda: _rescore(args) if args.rescore else _build(args))


if __name__ == "__main__":
    sys.exit(main())
