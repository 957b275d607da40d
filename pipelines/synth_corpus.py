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
import json
import multiprocessing as mp
import os
import sys
import time
from collections import Counter
from dataclasses import asdict
from pathlib import Path

import numpy as np
import soundfile as sf
from tqdm import tqdm

from speech.augment import AugmentConfig, augment_with_log
from speech.corpus_plan import (
    ENGINE_ALIASES,
    ENGINE_WEIGHTS,
    SPLITS,
    CorpusConfig,
    Job,
    non_speech_kind,
    plan_corpus,
    same_speaker,
)
from speech.manifest import Utterance, atomic_write, read_manifest, write_manifest
from speech.nonspeech import non_speech_clip
from speech.prompts import load_prompts, load_sentences, prompts_from_file, short_prompts
from speech.synth import (
    DEFAULT_ENGINES,
    ENGINES,
    SAMPLE_RATE,
    SynthesisError,
    Voice,
    available_voices,
    set_engine_threads,
    synthesize,
)

PROBE_TEXT = "This is a short test of the voice."
LOG_NAME = ".synth_log.jsonl"


# ------------------------------------------------------------------------------------------------ workers

_VOICES: dict[str, Voice] = {}
_TIMEOUT = 60.0
_AUGMENT = AugmentConfig()


def _init_worker(voices: list[dict], timeout: float, threads: int, augment: AugmentConfig) -> None:
    global _TIMEOUT, _AUGMENT
    # Parallelism comes from processes; keep each engine/library to its share of the cores.
    set_engine_threads(threads)
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
    if (kind := non_speech_kind(job.voices[0])) is not None:
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


EXAMPLES = """examples:
  speech synth --output data/synth --hours 4                         train/dev/test with every engine found
  speech synth --output data/short --num-prompts 3000 --short-prompts 5000 --engines kokoro,kokoro-blend
  speech synth --list-voices
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="speech synth", description=__doc__.split("\n\n")[0], epilog=EXAMPLES,
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
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr (without a terminal, a "
                   "line every 200 utterances on stdout instead)")
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


def run(cfg: CorpusConfig, progress: bool = True) -> int:
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
        # disable=None: a bar on stderr only when it is a terminal; a log file gets a line every 200 utterances.
        bar = tqdm(total=len(todo), unit="utt", file=sys.stderr, disable=None if progress else True,
                   dynamic_ncols=True)
        with open(log_path, "a", encoding="utf-8") as log, bar:
            for i, res in enumerate(pool.imap_unordered(_work, todo, chunksize=2), 1):
                bar.update()
                failures.extend(res["failures"])
                if res["voice"] is None:
                    continue
                results[res["uid"]] = res
                synth_audio += res["duration"]
                log.write(json.dumps({k: res[k] for k in ("uid", "voice", "duration", "augment")}) + "\n")
                log.flush()
                rate = synth_audio / max(time.time() - t_synth, 1e-9)
                bar.set_postfix_str(f"{synth_audio / 3600:.2f} h audio, {rate:.1f}x real time", refresh=False)
                if bar.disable and (i % 200 == 0 or i == len(todo)):
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
        if (kind := non_speech_kind(voice)) is not None:
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
            # every other voice of a held-out speaker (the same recording behind two engines, a Kokoro blend of it)
            "withheld_same_speaker": sorted(v.id for v in voices if v not in holdout
                                            and same_speaker(v.id) & {h.id for h in holdout}),
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
    return run(_config_from_args(args), progress=not args.no_progress)


if __name__ == "__main__":
    sys.exit(main())
