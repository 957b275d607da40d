"""Generate a synthetic English speech corpus with the offline TTS engines (``python -m speech synth``).

Output (``--output DIR``)::

    DIR/audio/{train,dev,test}/<id>.wav   16-bit 16 kHz mono
    DIR/{train,dev,test}.jsonl           manifests, paths relative to DIR (extra keys: voice, rate, ...)
    DIR/corpus.json                      settings, voices per split, counts, hours, failures
    DIR/sentences.txt                    normalised sentences NOT in dev/test, for the language model

Design decisions:

* Splits are disjoint by sentence. ``--test-voices`` voices (at least 2, picked from engines that keep
  another voice for training) are heard only in test; about half the test utterances use them, the rest
  use training voices, so test WER shows both unseen text and unseen speakers.
* Voice mix is weighted by engine toward the natural-sounding ones (piper, festival with the HTS voice
  boosted, flite, MBROLA, pico); plain espeak-ng is kept small (~13% when all engines are installed)
  because it is robotic, but its many accents add variety. ``--engines ...,mbrola-accented`` adds 16
  speakers reading English with MBROLA's foreign-language databases (7 women; accented English, which real
  users speak too); ``mbrola-foreign`` adds 23 more through databases espeak-ng has no English voice for,
  ``mbrola-mapped`` 11 more whose missing English phonemes are swapped for their nearest
  (:mod:`speech.mbrola_english`). All are opt-in so that the default corpus stays the same.
* ``--non-speech-fraction F`` adds F x (train utterances) clips with no speech in them (tones, chords,
  sweeps, melodies, beeps, noise, hum, clicks; :mod:`speech.nonspeech`) to train, with an empty transcript
  and ``"non_speech": true``, so that the model learns to say nothing for them. They are planned after
  the speech, from their own random stream: a corpus made without them is unchanged.
* ``--multi-sentence-prob P`` makes P of the train utterances read 2 to ``--max-sentences`` train sentences in
  one go (each ended with a full stop, so the engine pauses and falls in pitch between them), so the model
  also hears recordings as long as real read speech (LibriSpeech's average about 7 s, against 2.2 s for one
  sentence here). The joins come from a random stream of their own: for a given ``--num-prompts``, voices,
  rates and the rest of the plan stay as without them (``--hours`` plans fewer utterances for the same audio);
  dev and test keep one sentence per utterance.
* Rate (0.85-1.15) and pitch (0.88-1.12) vary per utterance; ``--augment-prob`` of train utterances
  (default 0.5) are augmented (voice conversion with ``--voice-prob``, speed, noise, reverb, telephone,
  gain; :mod:`speech.augment`). dev/test are clean by default (``--eval-augment-prob``) so their WER compares
  across runs and voice mixes.
* Deterministic: the whole plan (sentence, voice, rate, pitch, augmentation seed per utterance) is drawn
  in the parent from ``--seed`` before any work is handed out, so ``--jobs`` does not change it. Piper's
  neural vocoder samples noise internally, so its waveforms (not its plan) differ between runs.
* Resumable: every WAV is written to a temp file and renamed; a re-run skips files that exist. An
  utterance's id includes a hash of its plan, so changing the settings never reuses a stale file.
* A voice that fails the start-up probe is dropped; an utterance whose voice fails at run time falls back
  to two other voices of the same split, and is skipped (and counted) if all fail.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import multiprocessing as mp
import os
import sys
import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

from speech.augment import AugmentConfig, augment_with_log
from speech.manifest import Utterance, atomic_write, read_manifest, write_manifest
from speech.nonspeech import NON_SPEECH_KINDS, non_speech_clip
from speech.prompts import Prompt, load_prompts, load_sentences, prompts_from_file, short_prompts
from speech.synth import DEFAULT_ENGINES, ENGINES, SAMPLE_RATE, SynthesisError, Voice, available_voices, synthesize

SPLITS = ("train", "dev", "test")
# Share of utterances per engine (renormalised over the engines found): natural voices first.
ENGINE_WEIGHTS = {"piper": 0.22, "festival": 0.20, "flite": 0.17, "mbrola": 0.15, "pico": 0.13, "espeak": 0.13,
                  "mbrola-accented": 0.2, "mbrola-foreign": 0.2, "mbrola-mapped": 0.2, "kokoro": 0.25,
                  "kokoro-blend": 0.25}
# Within an engine voices share equally, except: festival's HTS voice is by far its most natural, and
# flite's kal is the 8 kHz version of kal16.
VOICE_BOOST = {"festival:cmu_us_slt_arctic_hts": 4.0, "flite:kal": 0.5}
# Never held out: train should keep the best voice of an engine.
NEVER_HOLD_OUT = {"festival:cmu_us_slt_arctic_hts", "piper:en_US-joe-medium"}
# One recorded speaker behind two engines (the same MBROLA or diphone database, the same CMU Arctic
# speaker): a held-out voice keeps its siblings out of training too, or "unseen" would not be unseen.
SAME_SPEAKER = ({"mbrola:us1", "festival:us1_mbrola"}, {"mbrola:us2", "festival:us2_mbrola"},
                {"mbrola:us3", "festival:us3_mbrola"}, {"mbrola:en1", "festival:en1_mbrola"},
                {"flite:slt", "festival:cmu_us_slt_arctic_hts"}, {"flite:kal", "flite:kal16", "festival:kal_diphone"})


def same_speaker(voice_id: str) -> set[str]:
    """Every voice id that is the same recorded speaker as ``voice_id`` (itself included); a blended Kokoro voice
    is each of its two parents too, so that holding out a Kokoro voice keeps its blends out of training."""
    engine, _, name = voice_id.partition(":")
    if engine == "kokoro-blend":
        return {voice_id, *(f"kokoro:{parent}" for parent in name.split("+"))}
    return next((set(g) for g in SAME_SPEAKER if voice_id in g), {voice_id})
ENGINE_ALIASES = {"espeak-ng": "espeak", "pico2wave": "pico", "text2wave": "festival", "piper-tts": "piper"}
SECONDS_PER_WORD, SECONDS_PER_PROMPT = 0.30, 0.35  # duration estimate for --hours (measured mix average)
PROBE_TEXT = "This is a short test of the voice."
LOG_NAME = ".synth_log.jsonl"


@dataclass
class CorpusConfig:
    output: str
    num_prompts: int | None = None
    hours: float | None = None
    seed: int = 0
    jobs: int = 1
    test_voices: int = 2
    holdout: tuple[str, ...] = ()
    dev_fraction: float = 0.05
    test_fraction: float = 0.05
    augment_prob: float = 0.5
    eval_augment_prob: float = 0.0
    engines: tuple[str, ...] = DEFAULT_ENGINES
    engine_weights: dict[str, float] = field(default_factory=dict)  # overrides of ENGINE_WEIGHTS
    min_words: int = 4
    max_words: int = 20
    rate_range: tuple[float, float] = (0.85, 1.15)
    pitch_range: tuple[float, float] = (0.88, 1.12)
    timeout: float = 60.0
    prompts_file: str | None = None  # one prompt a line instead of the offline text sources
    short_prompts: int = 0  # this many short prompts (speech.prompts.short_prompts) instead of the sentences
    exclude_manifests: tuple[str, ...] = ()  # their transcripts never become (or give) a short prompt
    augment: AugmentConfig = field(default_factory=AugmentConfig)  # of the augmented train utterances
    non_speech_fraction: float = 0.0  # non-speech train clips per train utterance
    multi_sentence_prob: float = 0.0  # train utterances that read several sentences
    max_sentences: int = 3


@dataclass
class Job:
    """One planned utterance. Everything random about it is fixed here, in the parent process."""

    index: int
    uid: str
    split: str
    text: str
    spoken: str
    voices: list[str]  # primary voice id, then fallbacks
    rate: float
    pitch: float
    variation: float
    augment: bool
    seed: int
    path: str = ""
    extra: dict = field(default_factory=dict)


# ------------------------------------------------------------------------------------------------ planning

def _voice_weights(voices: list[Voice], overrides: dict[str, float] | None = None) -> np.ndarray:
    engine_weights = {**ENGINE_WEIGHTS, **(overrides or {})}
    boost = {v.id: VOICE_BOOST.get(v.id, 1.0) for v in voices}
    engine_boost = defaultdict(float)
    for v in voices:
        engine_boost[v.engine] += boost[v.id]
    w = np.array([engine_weights.get(v.engine, 0.1) * boost[v.id] / engine_boost[v.engine] for v in voices])
    if not w.sum() > 0:
        raise ValueError("the engine weights of the training voices are all zero")
    return w / w.sum()


def choose_holdout(voices: list[Voice], k: int, rng: np.random.Generator,
                   explicit: tuple[str, ...] = ()) -> list[Voice]:
    """``k`` test-only voices, from different engines where possible, each leaving its engine another voice."""
    by_id = {v.id: v for v in voices}
    if explicit:
        missing = [v for v in explicit if v not in by_id]
        if missing:
            raise ValueError(f"--holdout voices not available: {', '.join(missing)}")
        return [by_id[v] for v in explicit]
    k = min(k, len(voices) - 1)
    per_engine: dict[str, list[Voice]] = defaultdict(list)
    for v in voices:
        if not same_speaker(v.id) & NEVER_HOLD_OUT:
            per_engine[v.engine].append(v)
    counts = Counter(v.engine for v in voices)
    # Prefer natural engines (an unseen espeak variant of a seen accent is a weak "new speaker").
    engines = [e for e in ENGINES if e != "espeak" and counts[e] >= 2 and per_engine[e]]
    engines = [engines[i] for i in rng.permutation(len(engines))]
    if counts["espeak"] >= 2:
        engines.append("espeak")
    chosen: list[Voice] = []
    while len(chosen) < k and engines:
        for e in list(engines):
            left = [v for v in per_engine[e] if v not in chosen]
            # keep at least one voice of the engine for training
            if not left or counts[e] - sum(c.engine == e for c in chosen) <= 1:
                engines.remove(e)
                continue
            chosen.append(left[int(rng.integers(len(left)))])
            if len(chosen) == k:
                break
    if len(chosen) < k:  # engines with a single voice each: hold out whole engines, keep one voice in train
        rest = [v for v in voices if v not in chosen]
        for i in rng.permutation(len(rest))[: k - len(chosen)]:
            chosen.append(rest[int(i)])
    return chosen


def _uid(split: str, index: int, job_fields: tuple) -> str:
    digest = hashlib.sha1(json.dumps(job_fields, sort_keys=True).encode()).hexdigest()[:8]
    return f"{split}-{index:06d}-{digest}"


def plan_corpus(cfg: CorpusConfig, voices: list[Voice], prompts: list[Prompt]) -> tuple[list[Job], list[Voice]]:
    """Assign sentences to splits and a voice, rate, pitch and augmentation to each utterance."""
    if not prompts:
        raise ValueError("no prompt sentences available")
    rng = np.random.default_rng(cfg.seed)
    order = [prompts[int(i)] for i in rng.permutation(len(prompts))]
    if cfg.num_prompts is not None:
        n = cfg.num_prompts
    else:
        mean = np.mean([SECONDS_PER_PROMPT + SECONDS_PER_WORD * (p.text.count(" ") + 1) for p in order[:5000]])
        # Joined utterances read (2 + max) / 2 sentences on average; only train has them.
        train_share = 1 - cfg.dev_fraction - cfg.test_fraction
        mean *= 1 + train_share * cfg.multi_sentence_prob * (cfg.max_sentences / 2 if cfg.max_sentences > 1 else 0)
        n = math.ceil(cfg.hours * 3600.0 / mean)
    holdout = choose_holdout(voices, cfg.test_voices, rng, cfg.holdout)
    withheld = set().union(*(same_speaker(v.id) for v in holdout))
    train_voices = [v for v in voices if not same_speaker(v.id) & withheld]
    if not train_voices:
        raise ValueError("every voice is held out for test: no voice left for training")
    # At least one sentence per requested split (and one per held-out voice), even for tiny corpora.
    n_test = max(round(n * cfg.test_fraction), len(holdout), 1) if cfg.test_fraction > 0 else 0
    n_dev = max(round(n * cfg.dev_fraction), 1) if cfg.dev_fraction > 0 else 0
    n_train = max(n - n_test - n_dev, 0)
    if n_test + n_dev >= len(order):
        raise ValueError(f"only {len(order)} prompts: too few for {n_dev} dev + {n_test} test sentences")
    eval_pool, train_pool = order[: n_test + n_dev], order[n_test + n_dev:]
    assignments = [("test", p) for p in eval_pool[:n_test]] + [("dev", p) for p in eval_pool[n_test:]]
    # Train reuses its own sentences (with other voices) only when asked for more than the pool holds.
    assignments += [("train", train_pool[i % len(train_pool)]) for i in range(n_train)]
    if n_train > len(train_pool):
        print(f"note: {n_train} train utterances from {len(train_pool)} sentences: sentences repeat with other voices")
    joined: dict[int, list[str]] = {}  # assignment index -> the transcripts it reads, for those that read several
    if cfg.multi_sentence_prob > 0 and cfg.max_sentences > 1:
        join_rng = np.random.default_rng([cfg.seed, 15485863])
        for index, (split, prompt) in enumerate(assignments):
            if split == "train" and join_rng.random() < cfg.multi_sentence_prob:
                count = int(join_rng.integers(2, cfg.max_sentences + 1))
                read = [prompt, *(train_pool[int(k)] for k in join_rng.integers(len(train_pool), size=count - 1))]
                assignments[index] = ("train", join_prompts(read))
                joined[index] = [p.text for p in read]

    weights = _voice_weights(train_voices, cfg.engine_weights)
    jobs = []
    counters = Counter()
    for index, (split, prompt) in enumerate(assignments):
        i = counters[split]
        counters[split] += 1
        if split == "test" and holdout and (i < len(holdout) or i % 2 == 0):
            pool = holdout
            primary = holdout[i] if i < len(holdout) else holdout[int(rng.integers(len(holdout)))]
        else:
            pool = train_voices
            primary = train_voices[int(rng.choice(len(train_voices), p=weights))]
        others = [v for v in pool if v != primary]
        fallbacks = [others[int(j)] for j in rng.permutation(len(others))[:2]]
        rate = round(float(rng.uniform(*cfg.rate_range)), 3)
        pitch = round(float(rng.uniform(*cfg.pitch_range)), 3)
        variation = round(float(rng.uniform(0.8, 1.2)), 3)
        prob = cfg.augment_prob if split == "train" else cfg.eval_augment_prob
        do_aug = bool(rng.random() < prob)
        seed = int(rng.integers(2**31))
        fields = (prompt.spoken, primary.id, rate, pitch, variation, do_aug, seed)
        if do_aug and cfg.augment.voice_prob > 0:  # (only then: the ids of older corpora stay as they were)
            fields += (cfg.augment.voice_prob, cfg.augment.f0_range, cfg.augment.formant_range)
        uid = _uid(split, index, fields)
        path = os.path.join(cfg.output, "audio", split, uid + ".wav")
        jobs.append(Job(index, uid, split, prompt.text, prompt.spoken, [primary.id] + [v.id for v in fallbacks],
                        rate, pitch, variation, do_aug, seed, path,
                        {"sentences": joined[index]} if index in joined else {}))
    jobs += _plan_non_speech(cfg, len(jobs), round(cfg.non_speech_fraction * n_train))
    return jobs, holdout


def join_prompts(prompts: list[Prompt]) -> Prompt:
    """One prompt that reads ``prompts`` in turn, each ended as a sentence (a full stop if it has no end mark)."""
    spoken = [p.spoken.strip() for p in prompts]
    spoken = [s if s[-1:] in ".!?" else s + "." for s in spoken]
    return Prompt(" ".join(p.text for p in prompts), " ".join(spoken), prompts[0].source)


NON_SPEECH = "non-speech"  # the engine name of non-speech clips in manifests ("non-speech:<kind>" the voice)


def _non_speech_kind(voice_id: str) -> str | None:
    """The :data:`NON_SPEECH_KINDS` kind of a planned non-speech clip's voice id; None for a real voice."""
    engine, _, kind = voice_id.partition(":")
    return kind if engine == NON_SPEECH else None


def _plan_non_speech(cfg: CorpusConfig, first_index: int, count: int) -> list[Job]:
    """``count`` train clips of :data:`NON_SPEECH_KINDS`, 0.5-6 s each, from a random stream of their own."""
    rng = np.random.default_rng([cfg.seed, 7919])
    jobs = []
    for k in range(count):
        kind = NON_SPEECH_KINDS[int(rng.integers(len(NON_SPEECH_KINDS)))]
        seconds = round(float(rng.uniform(0.5, 6.0)), 3)
        seed = int(rng.integers(2**31))
        index = first_index + k
        uid = _uid("train", index, (NON_SPEECH, kind, seconds, seed))
        jobs.append(Job(index, uid, "train", "", "", [f"{NON_SPEECH}:{kind}"], 1.0, 1.0, 1.0, False, seed,
                        os.path.join(cfg.output, "audio", "train", uid + ".wav"), {"seconds": seconds}))
    return jobs


# ------------------------------------------------------------------------------------------------ workers

_VOICES: dict[str, Voice] = {}
_TIMEOUT = 60.0
_AUGMENT = AugmentConfig()


def _init_worker(voices: list[dict], timeout: float, threads: int, augment: AugmentConfig) -> None:
    global _TIMEOUT, _AUGMENT
    # Parallelism comes from processes; keep each engine/library to its share of the cores.
    os.environ["SPEECH_SYNTH_THREADS"] = str(threads)
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    _VOICES.clear()
    _VOICES.update({v["id"]: Voice(v["engine"], v["name"], v["settings"]) for v in voices})
    _TIMEOUT = timeout
    _AUGMENT = augment


def _probe(voice_id: str) -> tuple[str, str | None]:
    try:
        synthesize(_VOICES[voice_id], PROBE_TEXT, timeout=_TIMEOUT)
        return voice_id, None
    except SynthesisError as e:
        return voice_id, str(e)


def _write_wav(path: str, wave: np.ndarray) -> None:
    tmp = f"{os.path.dirname(path)}/.{os.path.basename(path)}.{os.getpid()}.tmp"
    try:
        sf.write(tmp, wave, SAMPLE_RATE, subtype="PCM_16", format="WAV")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _work(job: Job) -> dict:
    if (kind := _non_speech_kind(job.voices[0])) is not None:
        wave = non_speech_clip(kind, job.extra["seconds"], SAMPLE_RATE, np.random.default_rng(job.seed))
        _write_wav(job.path, wave)
        return {"uid": job.uid, "voice": job.voices[0], "duration": len(wave) / SAMPLE_RATE, "augment": [],
                "failures": []}
    failures = []
    for voice_id in job.voices:
        try:
            wave = synthesize(_VOICES[voice_id], job.spoken, job.rate, job.pitch, job.variation, timeout=_TIMEOUT)
        except SynthesisError as e:
            failures.append({"uid": job.uid, "voice": voice_id, "error": str(e)})
            continue
        applied: list[str] = []
        if job.augment:
            rng = np.random.default_rng(job.seed)
            wave, applied = augment_with_log(wave, SAMPLE_RATE, rng, _AUGMENT)
        _write_wav(job.path, wave)
        return {"uid": job.uid, "voice": voice_id, "duration": len(wave) / SAMPLE_RATE, "augment": applied,
                "failures": failures}
    return {"uid": job.uid, "voice": None, "duration": 0.0, "augment": [], "failures": failures}


# ------------------------------------------------------------------------------------------------ main job

def _parse_engines(value: str) -> tuple[str, ...]:
    names = []
    for raw in value.split(","):
        name = ENGINE_ALIASES.get(raw.strip().lower(), raw.strip().lower())
        if not name:
            continue
        if name not in ENGINES:
            raise argparse.ArgumentTypeError(f"unknown engine {raw!r}; choose from {', '.join(ENGINES)}")
        names.append(name)
    return tuple(dict.fromkeys(names))


def _parse_engine_weights(value: str) -> dict[str, float]:
    weights = {}
    for item in value.split(","):
        if not item.strip():
            continue
        name, _, number = item.partition("=")
        engine = _parse_engines(name)
        try:
            weight = float(number)
        except ValueError:
            weight = -1.0
        if len(engine) != 1 or not weight >= 0:
            raise argparse.ArgumentTypeError(f"expected ENGINE=WEIGHT (a number >= 0), got {item.strip()!r}")
        weights[engine[0]] = weight
    return weights


def _parse_range(value: str) -> tuple[float, float]:
    try:
        lo, hi = (float(x) for x in value.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected two numbers LO,HI, got {value!r}") from None
    if not 0 < lo <= hi:
        raise argparse.ArgumentTypeError(f"expected 0 < LO <= HI, got {value!r}")
    return lo, hi


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="speech synth", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--output", help="corpus folder (created; re-running resumes); required")
    size = p.add_mutually_exclusive_group()
    size.add_argument("--num-prompts", type=int, help="number of utterances in all splits together")
    size.add_argument("--hours", type=float, help="approximate total audio hours (estimated from word counts)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="worker processes (default: all cores)")
    p.add_argument("--test-voices", type=int, default=2, help="voices heard only in the test split (>= 2)")
    p.add_argument("--holdout", default="", help="explicit test-only voice ids, comma separated (e.g. flite:awb)")
    p.add_argument("--dev-fraction", type=float, default=0.05)
    p.add_argument("--test-fraction", type=float, default=0.05)
    p.add_argument("--augment-prob", type=float, default=0.5, help="fraction of train utterances augmented")
    p.add_argument("--eval-augment-prob", type=float, default=0.0, help="fraction of dev/test augmented")
    p.add_argument("--engines", type=_parse_engines, default=DEFAULT_ENGINES,
                   help=f"comma list of {','.join(ENGINES)} (default: all but mbrola-accented)")
    p.add_argument("--engine-weights", type=_parse_engine_weights, default={},
                   help="share of train utterances per engine before renormalising, e.g. mbrola-accented=0.8 "
                        f"(defaults: {', '.join(f'{k}={v:g}' for k, v in ENGINE_WEIGHTS.items())})")
    p.add_argument("--min-words", type=int, default=4)
    p.add_argument("--max-words", type=int, default=20)
    p.add_argument("--timeout", type=float, default=60.0, help="seconds per engine call")
    p.add_argument("--prompts", help="text file, one prompt a line, instead of the offline text sources "
                   "(read as written; the transcript is its normalised form, e.g. digits spelled out)")
    p.add_argument("--rate-range", type=_parse_range, default=CorpusConfig.rate_range, metavar="LO,HI",
                   help="speaking-rate multipliers drawn per utterance (default %(default)s)")
    p.add_argument("--pitch-range", type=_parse_range, default=CorpusConfig.pitch_range, metavar="LO,HI",
                   help="pitch multipliers drawn per utterance, where the engine can (default %(default)s)")
    p.add_argument("--speed-range", type=_parse_range, default=AugmentConfig.speed_range, metavar="LO,HI",
                   help="resampling factors of the speed augmentation: shift pitch and formants together, as a "
                        "longer or shorter vocal tract would (default %(default)s)")
    p.add_argument("--speed-prob", type=float, default=AugmentConfig.speed_prob,
                   help="chance that an augmented utterance is resampled (default %(default)s)")
    p.add_argument("--noise-prob", type=float, default=AugmentConfig.noise_prob,
                   help="chance that an augmented utterance gets noise (white, pink, brown or babble at one of "
                        f"{', '.join(f'{x:g}' for x in AugmentConfig.snr_db_choices)} dB SNR; default %(default)s)")
    p.add_argument("--voice-prob", type=float, default=AugmentConfig.voice_prob,
                   help="chance that an augmented utterance is turned into another voice: F0 and formants moved "
                        "independently through the WORLD vocoder (speech.augment.convert_voice; default %(default)s)")
    p.add_argument("--non-speech-fraction", type=float, default=0.0,
                   help="add this many clips without speech (tones, music, noise, hum, ...; empty transcript) per "
                        "train utterance, so the model learns to stay silent on them (default %(default)s)")
    p.add_argument("--multi-sentence-prob", type=float, default=0.0,
                   help="share of train utterances that read 2 to --max-sentences train sentences in one go, so the "
                        "model also hears long recordings (default %(default)s)")
    p.add_argument("--max-sentences", type=int, default=3, help="most sentences in one such utterance "
                   "(default %(default)s)")
    p.add_argument("--short-prompts", type=int, default=0, metavar="N",
                   help="read N short prompts instead of sentences: single words, 2-4 word phrases, numbers and digit "
                        "strings, spelled letters, 3-5 word sentences (speech.prompts.short_prompts)")
    p.add_argument("--exclude-manifest", action="append", default=[], metavar="JSONL",
                   help="no short prompt is taken from a transcript of this manifest (e.g. another corpus's dev and "
                        "test splits); repeatable")
    p.add_argument("--pad-prob", type=float, default=AugmentConfig.pad_prob,
                   help="chance that an augmented utterance gets 0.1-1.2 s pauses of quiet room tone at each end "
                        "(default %(default)s)")
    p.add_argument("--bandwidth-prob", type=float, default=AugmentConfig.bandwidth_prob,
                   help="chance that an augmented utterance is band-limited through 8, 11.025 or 12 kHz "
                        "(default %(default)s)")
    p.add_argument("--telephone-prob", type=float, default=AugmentConfig.telephone_prob,
                   help="chance that an augmented utterance goes through a telephone band (default %(default)s)")
    p.add_argument("--list-voices", action="store_true", help="print the voices found and exit")
    return p


def _config_from_args(args: argparse.Namespace) -> CorpusConfig:
    return CorpusConfig(
        output=os.path.abspath(args.output), num_prompts=args.num_prompts, hours=args.hours, seed=args.seed,
        jobs=max(1, args.jobs), test_voices=args.test_voices,
        holdout=tuple(h.strip() for h in args.holdout.split(",") if h.strip()),
        dev_fraction=args.dev_fraction, test_fraction=args.test_fraction, augment_prob=args.augment_prob,
        eval_augment_prob=args.eval_augment_prob, engines=tuple(args.engines),
        engine_weights=dict(args.engine_weights), min_words=args.min_words,
        max_words=args.max_words, timeout=args.timeout, rate_range=args.rate_range, pitch_range=args.pitch_range,
        prompts_file=os.path.abspath(args.prompts) if args.prompts else None,
        augment=AugmentConfig(speed_prob=args.speed_prob, speed_range=args.speed_range, noise_prob=args.noise_prob,
                              voice_prob=args.voice_prob, pad_prob=args.pad_prob,
                              bandwidth_prob=args.bandwidth_prob, telephone_prob=args.telephone_prob),
        short_prompts=args.short_prompts,
        exclude_manifests=tuple(os.path.abspath(m) for m in args.exclude_manifest),
        non_speech_fraction=args.non_speech_fraction, multi_sentence_prob=args.multi_sentence_prob,
        max_sentences=args.max_sentences)


def _report_voices(voices: list[Voice], engines: tuple[str, ...]) -> None:
    counts = Counter(v.engine for v in voices)
    print("TTS engines:")
    for e in engines:
        names = [v.name for v in voices if v.engine == e]
        if names:
            shown = ", ".join(names[:8]) + (f", ... ({len(names)} voices)" if len(names) > 8 else "")
            print(f"  {e:15s} {counts[e]:4d} voices: {shown}")
        else:
            print(f"  {e:15s} MISSING (run scripts/install_tts.sh)")


def _load_log(path: str) -> dict[str, dict]:
    records = {}
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as f:
            for line in f:
                try:
                    rec = json.loads(line)
                    records[rec["uid"]] = rec
                except (ValueError, KeyError):
                    continue  # a line cut by a kill
    return records


def run(cfg: CorpusConfig) -> int:
    t0 = time.time()
    voices = available_voices(cfg.engines)
    _report_voices(voices, cfg.engines)
    if not voices:
        print("error: no TTS voice found; install engines with scripts/install_tts.sh", file=sys.stderr)
        return 1
    out = Path(cfg.output)
    for split in SPLITS:
        (out / "audio" / split).mkdir(parents=True, exist_ok=True)
        for stale in (out / "audio" / split).glob(".*.tmp"):  # left by a killed run
            stale.unlink(missing_ok=True)

    ctx = mp.get_context("spawn")  # fork is unsafe if the caller already started threads (TensorFlow)
    threads = max(1, (os.cpu_count() or 1) // cfg.jobs)
    init = ([v.to_json() for v in voices], cfg.timeout, threads, cfg.augment)
    with ctx.Pool(cfg.jobs, initializer=_init_worker, initargs=init) as pool:
        # Probe each voice once (one espeak variant per accent: variants share the accent's engine path).
        probe_ids, seen_accents = [], set()
        for v in voices:
            if v.engine == "espeak":
                if v.settings["accent"] in seen_accents:
                    continue
                seen_accents.add(v.settings["accent"])
            probe_ids.append(v.id)
        broken = {vid: err for vid, err in pool.imap_unordered(_probe, probe_ids) if err}
        for vid, err in sorted(broken.items()):
            print(f"  voice {vid} FAILED its probe and is skipped: {err}")
        bad_accents = {vid.split(":", 1)[1].split("+")[0] for vid in broken if vid.startswith("espeak:")}
        voices = [v for v in voices if v.id not in broken and v.settings.get("accent") not in bad_accents]
        if not voices:
            print("error: every voice failed its probe", file=sys.stderr)
            return 1

        if cfg.prompts_file:
            prompts = prompts_from_file(cfg.prompts_file)
            print(f"prompts: {len(prompts)} from {cfg.prompts_file}")
        elif cfg.short_prompts:
            excluded = {u.text for m in cfg.exclude_manifests for u in read_manifest(m)}
            prompts = short_prompts(cfg.short_prompts, cfg.seed, exclude=excluded)
            print(f"prompts: {len(prompts)} short prompts ({len(excluded)} transcripts excluded)")
        else:
            prompts = load_prompts(cfg.min_words, cfg.max_words)
            print(f"prompts: {len(prompts)} sentences of {cfg.min_words}-{cfg.max_words} words")
        try:
            jobs, holdout = plan_corpus(cfg, voices, prompts)
        except ValueError as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
        print(f"test-only voices: {', '.join(v.id for v in holdout) or 'none'}")
        if len(holdout) < cfg.test_voices:
            print(f"warning: only {len(voices)} voices: {len(holdout)} held out for test instead of {cfg.test_voices}")

        log_path = str(out / LOG_NAME)
        done = _load_log(log_path)
        todo = [j for j in jobs if not os.path.isfile(j.path)]
        print(f"utterances: {len(jobs)} planned, {len(jobs) - len(todo)} already on disk, {len(todo)} to synthesise "
              f"with {cfg.jobs} processes")
        results: dict[str, dict] = {}
        failures: list[dict] = []
        synth_audio = 0.0
        t_synth = time.time()
        with open(log_path, "a", encoding="utf-8") as log:
            for i, res in enumerate(pool.imap_unordered(_work, todo, chunksize=2), 1):
                failures.extend(res["failures"])
                if res["voice"] is None:
                    continue
                results[res["uid"]] = res
                synth_audio += res["duration"]
                log.write(json.dumps({k: res[k] for k in ("uid", "voice", "duration", "augment")}) + "\n")
                log.flush()
                if i % 200 == 0 or i == len(todo):
                    rate = synth_audio / max(time.time() - t_synth, 1e-9)
                    print(f"  {i}/{len(todo)} done, {synth_audio / 3600:.2f} h audio, {rate:.0f}x real time",
                          flush=True)
        synth_wall = time.time() - t_synth

    return _finish(cfg, jobs, holdout, voices, done, results, failures, synth_audio, synth_wall, time.time() - t0)


def _finish(cfg: CorpusConfig, jobs: list[Job], holdout: list[Voice], voices: list[Voice], done: dict, results: dict,
            failures: list[dict], synth_audio: float, synth_wall: float, total_wall: float) -> int:
    out = Path(cfg.output)
    utts: dict[str, list[Utterance]] = {s: [] for s in SPLITS}
    per_voice: dict[str, Counter] = {s: Counter() for s in SPLITS}
    seconds = Counter()
    non_speech: Counter = Counter()  # clips per kind, kept out of the voice counts: they are not voices
    non_speech_seconds = 0.0
    skipped = 0
    for job in jobs:  # plan order, not completion order: manifests are the same whatever --jobs
        if not os.path.isfile(job.path):
            skipped += 1
            continue
        rec = results.get(job.uid) or done.get(job.uid)
        if rec is None:  # file written but the log line was lost in a kill
            rec = {"voice": job.voices[0], "duration": sf.info(job.path).duration, "augment": []}
        voice = rec["voice"]
        extra = {"voice": voice, "engine": voice.split(":", 1)[0], "rate": job.rate, "pitch": job.pitch,
                 "augment": rec.get("augment", []),
                 **({"sentences": len(job.extra["sentences"])} if "sentences" in job.extra else {})}
        utts[job.split].append(Utterance(job.path, float(rec["duration"]), job.text, extra))
        seconds[job.split] += float(rec["duration"])
        if (kind := _non_speech_kind(voice)) is not None:
            extra["non_speech"] = True
            non_speech[kind] += 1
            non_speech_seconds += float(rec["duration"])
        else:
            per_voice[job.split][voice] += 1
    for split in SPLITS:
        write_manifest(out / f"{split}.jsonl", utts[split], relative_to=out)

    eval_texts = {u.text for s in ("dev", "test") for u in utts[s]} | {j.text for j in jobs if j.split != "train"}
    lm_sentences = [s for s in load_sentences(3, 40) if s not in eval_texts]
    known = set(lm_sentences)
    for job in jobs:  # train sentences outside the 3-40 word LM range are still training text
        for text in job.extra.get("sentences", [job.text]) if job.split == "train" else []:
            if text and text not in known:
                known.add(text)
                lm_sentences.append(text)
    with atomic_write(out / "sentences.txt") as f:
        f.writelines(s + "\n" for s in lm_sentences)

    failed_voices = Counter(f["voice"] for f in failures)
    summary = {
        "settings": {**{k: v for k, v in asdict(cfg).items() if k != "augment"},
                     "augment_config": asdict(cfg.augment)},
        "engine_weights": ENGINE_WEIGHTS,
        "voices": {
            "all": [v.to_json() for v in voices],
            "test_only": [v.id for v in holdout],
            "withheld_same_speaker": sorted(set().union(*(same_speaker(v.id) for v in holdout))
                                            - {v.id for v in holdout}),
            **{s: sorted(per_voice[s]) for s in SPLITS},
        },
        "counts": {s: len(utts[s]) for s in SPLITS},
        "hours": {s: round(seconds[s] / 3600, 4) for s in SPLITS},
        "per_voice": {s: dict(sorted(per_voice[s].items())) for s in SPLITS},
        "failures": {"utterances_missing": skipped, "engine_failures": len(failures),
                     "by_voice": dict(failed_voices), "examples": failures[:20]},
        "lm_sentences": len(lm_sentences),
        "non_speech": {"clips": sum(non_speech.values()), "hours": round(non_speech_seconds / 3600, 4),
                       "per_kind": dict(sorted(non_speech.items()))},
    }
    with atomic_write(out / "corpus.json") as f:
        json.dump(summary, f, indent=1)

    total = sum(seconds.values())
    print("summary:")
    for s in SPLITS:
        print(f"  {s:5s} {len(utts[s]):6d} utterances  {seconds[s] / 3600:7.3f} h  {len(per_voice[s])} voices")
    print(f"  total {total / 3600:.3f} h; sentences.txt: {len(lm_sentences)} sentences (dev/test excluded)")
    if non_speech:
        print(f"  train includes {sum(non_speech.values())} clips without speech ({non_speech_seconds / 3600:.3f} h): "
              + ", ".join(f"{k} {c}" for k, c in sorted(non_speech.items())))
    by_engine = Counter()
    for s in SPLITS:
        for v, c in per_voice[s].items():
            by_engine[v.split(":", 1)[0]] += c
    n_all = max(sum(by_engine.values()), 1)
    print("  engines: " + ", ".join(f"{e} {c} ({100 * c / n_all:.0f}%)" for e, c in by_engine.most_common()))
    top = Counter()
    for s in SPLITS:
        top.update(per_voice[s])
    print("  voices: " + ", ".join(f"{v} {c}" for v, c in top.most_common(12))
          + (f", ... ({len(top)} voices)" if len(top) > 12 else ""))
    if synth_wall > 0 and synth_audio > 0:
        print(f"  synthesised {synth_audio:.0f} s of audio in {synth_wall:.1f} s wall "
              f"({synth_audio / synth_wall:.1f} audio-seconds per second, {cfg.jobs} processes)")
    print(f"  failures: {len(failures)} engine calls failed ({dict(failed_voices) or 'none'}), "
          f"{skipped} utterances missing; wall time {total_wall:.1f} s")
    if not utts["train"] or (cfg.test_fraction > 0 and not utts["test"]):
        print("error: a split came out empty", file=sys.stderr)
        return 1
    return 0 if skipped <= 0.5 * len(jobs) else 1


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.list_voices:
        _report_voices(available_voices(args.engines), tuple(args.engines))
        for v in available_voices(args.engines):
            print(v.id)
        return 0
    if not args.output or (args.num_prompts is None and args.hours is None):
        parser.error("--output and one of --num-prompts/--hours are required")
    if args.test_voices < 2 and not args.holdout:
        parser.error("--test-voices must be at least 2")
    if (args.num_prompts is not None and args.num_prompts < 1) or (args.hours is not None and args.hours <= 0):
        parser.error("--num-prompts/--hours must be positive")
    if not (0 <= args.dev_fraction < 1 and 0 <= args.test_fraction < 1 and args.dev_fraction + args.test_fraction < 1):
        parser.error("--dev-fraction and --test-fraction must be in [0, 1) and sum below 1")
    if args.max_sentences < 1:
        parser.error("--max-sentences must be at least 1")
    for name in ("non_speech_fraction", "augment_prob", "eval_augment_prob", "speed_prob", "noise_prob",
                 "voice_prob", "multi_sentence_prob"):
        if not 0 <= getattr(args, name) <= 1:
            parser.error(f"--{name.replace('_', '-')} must be in [0, 1]")
    return run(_config_from_args(args))


if __name__ == "__main__":
    sys.exit(main())
