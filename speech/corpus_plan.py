"""The plan of a synthetic corpus: which prompt, voice (and fallbacks), rate, pitch and augmentation each utterance
gets, drawn from one seed before any audio is made (``speech synth`` runs it: :mod:`speech.pipelines.synth_corpus`,
whose docstring gives the design).

Splits are disjoint by sentence; held-out voices, and every voice of the same recorded speaker
(:func:`same_speaker`), are heard only in test; the voice mix is weighted by engine (:data:`ENGINE_WEIGHTS`).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections import Counter, defaultdict
from dataclasses import dataclass, field

import numpy as np

from speech.augment import AugmentConfig
from speech.nonspeech import NON_SPEECH_KINDS
from speech.prompts import Prompt
from speech.synth import DEFAULT_ENGINES, ENGINES, Voice

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


def non_speech_kind(voice_id: str) -> str | None:
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
