"""TTS engines (skipped when not installed) and the synthetic-corpus job."""

from __future__ import annotations

import json
import os
import subprocess
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from speech import corpus_plan, synth
from speech.manifest import read_manifest
from speech.mbrola_english import replace_lines
from speech.pipelines import synth_corpus
from speech.prompts import Prompt
from speech.synth import (
    DEFAULT_ENGINES,
    ENGINES,
    SAMPLE_RATE,
    SynthesisError,
    Voice,
    available_voices,
    synthesize,
    trim_silence,
)

TEXT = "The quick brown fox jumps over the lazy dog near the river bank."
WORDS = len(TEXT.split())
ALL_VOICES = available_voices()
BY_ENGINE = {e: [v for v in ALL_VOICES if v.engine == e] for e in ENGINES}


def _voice(engine: str) -> Voice:
    if not BY_ENGINE[engine]:
        pytest.skip(f"TTS engine {engine} not installed (scripts/install_tts.sh)")
    preferred = {"festival": "festival:kal_diphone", "flite": "flite:kal", "espeak": "espeak:en-us+m1"}
    return next((v for v in BY_ENGINE[engine] if v.id == preferred.get(engine)), BY_ENGINE[engine][0])


@pytest.mark.parametrize("engine", ENGINES)
def test_engine_speaks_16k_mono_float32(engine):
    voice = _voice(engine)
    wave = synthesize(voice, TEXT)
    assert wave.dtype == np.float32 and wave.ndim == 1
    seconds = len(wave) / SAMPLE_RATE
    # plausible speaking rate: 1.5 to 6 words per second, plus up to ~0.3 s of kept silence
    assert WORDS / 6.0 < seconds < WORDS / 1.5 + 0.5, seconds
    assert np.sqrt(np.mean(wave**2)) > 0.02 and 0.5 < np.max(np.abs(wave)) <= 0.91
    # speech energy lies mostly below 4 kHz and the signal is not a constant tone
    spectrum = np.abs(np.fft.rfft(wave)) ** 2
    freqs = np.fft.rfftfreq(len(wave), 1 / SAMPLE_RATE)
    assert spectrum[freqs < 4000].sum() > 0.7 * spectrum.sum()


@pytest.mark.parametrize("engine", ENGINES)
def test_rate_changes_duration(engine):
    voice = _voice(engine)
    slow = synthesize(voice, TEXT, rate=0.8)
    fast = synthesize(voice, TEXT, rate=1.25)
    assert len(fast) < 0.9 * len(slow)


@pytest.mark.parametrize("engine", ["espeak", "flite", "pico", "mbrola", "mbrola-accented", "mbrola-foreign",
                                    "mbrola-mapped"])
def test_pitch_changes_f0(engine):
    voice = _voice(engine)

    def f0(wave: np.ndarray) -> float:  # autocorrelation pitch of the loudest 0.5 s
        frame = int(0.04 * SAMPLE_RATE)
        hop = frame // 2
        values = []
        for start in range(0, len(wave) - frame, hop):
            x = wave[start:start + frame] - wave[start:start + frame].mean()
            if np.sqrt(np.mean(x**2)) < 0.05:
                continue
            ac = np.correlate(x, x, "full")[frame - 1:]
            lo, hi = SAMPLE_RATE // 400, SAMPLE_RATE // 60
            lag = lo + int(np.argmax(ac[lo:hi]))
            if ac[lag] > 0.3 * ac[0]:
                values.append(SAMPLE_RATE / lag)
        return float(np.median(values))

    low, high = f0(synthesize(voice, TEXT, pitch=0.85)), f0(synthesize(voice, TEXT, pitch=1.15))
    assert high > 1.1 * low, (low, high)


def test_foreign_voice_file_is_the_native_voice_reading_english(tmp_path):
    (tmp_path / "voices" / "mb").mkdir(parents=True)
    (tmp_path / "mbrola_ph").mkdir()
    (tmp_path / "voices" / "mb" / "mb-es1").write_text(
        "language es-es 7\nlanguage es 7\nname spanish-mbrola-1\ngender male\npitch 82 117\n\n"
        "mbrola es1 es_phtrans\nvoicing 120\ndictrules 3\nreplace 00 T s\n")
    # without the database's phoneme table espeak-ng could not drive it: no voice
    assert synth._foreign_voice_file(str(tmp_path), "es1") is None
    (tmp_path / "mbrola_ph" / "es_phtrans").write_bytes(b"\0")
    text = synth._foreign_voice_file(str(tmp_path), "es1")
    lines = text.splitlines()
    # English spelling and phonemes, the database's voice: its pitch, voicing and phoneme table; none of the
    # native language's dictionary rules or phoneme replacements
    assert "language en" in lines
    assert not any(line.startswith(("language es", "dictrules", "replace")) for line in lines)
    assert {"gender male", "pitch 82 117", "voicing 120", "mbrola es1 es_phtrans"} <= set(lines)
    assert synth._foreign_voice_file(str(tmp_path), "xx9") is None  # no native voice


def test_foreign_voices_are_opt_in_and_distinct_from_the_accented_ones():
    assert "mbrola-foreign" in ENGINES and "mbrola-foreign" not in DEFAULT_ENGINES
    assert not set(synth.MBROLA_FOREIGN_VOICES) & set(synth.MBROLA_ACCENTED_VOICES + synth.MBROLA_VOICES)
    if not BY_ENGINE["mbrola-foreign"]:
        pytest.skip("no mbrola-foreign database installed (scripts/install_tts.sh)")
    for voice in BY_ENGINE["mbrola-foreign"]:
        assert voice.name in synth.MBROLA_FOREIGN_VOICES and voice.settings["voice"] == f"speech/mb-{voice.name}-en"


def test_mapped_voice_file_swaps_the_english_phonemes_its_database_lacks(tmp_path):
    (tmp_path / "voices" / "mb").mkdir(parents=True)
    (tmp_path / "mbrola_ph").mkdir()
    (tmp_path / "voices" / "mb" / "mb-tr1").write_text("language tr\ngender male\nmbrola tr1 tr1_phtrans\n")
    (tmp_path / "mbrola_ph" / "tr1_phtrans").write_bytes(b"\0")
    lines = synth._foreign_voice_file(str(tmp_path), "tr1").splitlines()
    # Turkish has no dental fricatives: "the" is read "de". The lines come after "language en", which selects the
    # phoneme table espeak-ng looks their phonemes up in, and after the voice's own lines.
    assert "replace 0 D d" in lines and "replace 0 T t" in lines
    assert lines.index("language en") < lines.index("replace 0 D d")
    assert lines.index("mbrola tr1 tr1_phtrans") < lines.index("replace 0 D d")
    # espeak-ng reads at most 60 replace lines of a voice file
    assert all(len(replace_lines(name)) <= 60 for name in synth.MBROLA_MAPPED_VOICES)


def test_mapped_voices_are_opt_in_and_fill_the_gaps_of_their_databases(tmp_path):
    assert "mbrola-mapped" in ENGINES and "mbrola-mapped" not in DEFAULT_ENGINES
    assert not set(synth.MBROLA_MAPPED_VOICES) & set(synth.MBROLA_FOREIGN_VOICES + synth.MBROLA_ACCENTED_VOICES
                                                     + synth.MBROLA_VOICES)
    if not BY_ENGINE["mbrola-mapped"]:
        pytest.skip("no mbrola-mapped database installed (scripts/install_tts.sh)")
    voice = BY_ENGINE["mbrola-mapped"][0]
    assert voice.settings["voice"] == f"speech/mb-{voice.name}-en"
    # Without its map such a database leaves a silent gap for every English diphone it lacks (22-37 in this
    # sentence); with it, a few (2-6).
    sentence = "The weather was thick with thunder, though the children hardly noticed it."
    root = synth._foreign_voice_dir()
    voices = Path(root) / "espeak-ng-data" / "voices" / "speech"

    def gaps(data_root: str, voice_name: str) -> int:
        run = subprocess.run(["espeak-ng", f"--path={data_root}", "-v", voice_name, "-w", str(tmp_path / "o.wav"),
                              sentence], capture_output=True, text=True, timeout=60)
        assert run.returncode == 0 and (tmp_path / "o.wav").stat().st_size > 44
        return run.stderr.count("unknown")

    # The same voice file without its replace lines, in a data folder of the test's own (espeak-ng loads voices
    # only from its data folder)
    data = tmp_path / "espeak-ng-data"
    (data / "voices" / "test").mkdir(parents=True)
    for entry in (voices.parent.parent).iterdir():
        if entry.name != "voices":
            (data / entry.name).symlink_to(entry)
    unmapped = [line for line in (voices / f"mb-{voice.name}-en").read_text().splitlines()
                if not line.startswith("replace")]
    (data / "voices" / "test" / "unmapped").write_text("\n".join(unmapped) + "\n")
    mapped, without = gaps(root, voice.settings["voice"]), gaps(str(tmp_path), "test/unmapped")
    assert without >= 15 and mapped <= without / 4, (mapped, without)


def test_unknown_voice_raises_synthesis_error():
    if not BY_ENGINE["espeak"]:
        pytest.skip("espeak-ng not installed")
    with pytest.raises(SynthesisError):
        synthesize(Voice("espeak", "nope", {"voice": "xx-nonexistent"}), TEXT)
    with pytest.raises(SynthesisError):
        synthesize(BY_ENGINE["espeak"][0], "   ")


def test_festival_bad_voice_fails_cleanly_and_good_voice_still_works():
    if not BY_ENGINE["festival"]:
        pytest.skip("festival not installed")
    import glob
    import tempfile

    leftovers = os.path.join(tempfile.gettempdir(), "speech-festival-*")
    before = set(glob.glob(leftovers))
    with pytest.raises(SynthesisError):
        synthesize(Voice("festival", "nope", {"voice": "no_such_voice", "kind": "diphone"}), TEXT, timeout=20)
    assert len(synthesize(_voice("festival"), TEXT)) > SAMPLE_RATE
    # Nothing is left in the temp folder while the session lives on (pool workers exit without atexit handlers).
    assert set(glob.glob(leftovers)) <= before


@pytest.mark.parametrize("name", ["af_heart", "bm_george"])
def test_kokoro_speaks_us_and_uk_english_at_16k(name):
    voice = next((v for v in BY_ENGINE["kokoro"] if v.name == name), None)
    if voice is None:
        pytest.skip("Kokoro not installed (scripts/install_tts.sh)")
    assert voice.settings["lang"] == ("en-gb" if name.startswith("b") else "en-us")
    wave = synthesize(voice, "hello world")
    assert wave.dtype == np.float32 and wave.ndim == 1
    assert 0.3 < len(wave) / SAMPLE_RATE < 5.0, len(wave) / SAMPLE_RATE
    assert np.sqrt(np.mean(wave**2)) > 0.02 and 0.5 < np.max(np.abs(wave)) <= 0.91


def test_kokoro_is_opt_in_and_lists_nothing_without_its_files(tmp_path, monkeypatch):
    assert "kokoro" in ENGINES and "kokoro" not in DEFAULT_ENGINES
    monkeypatch.setattr(synth, "KOKORO_DIR", tmp_path / "absent")
    assert available_voices(["kokoro"]) == []
    # voice files without the model are no voices either
    (tmp_path / "absent" / "voices").mkdir(parents=True)
    np.zeros((510, 1, 256), "<f4").tofile(tmp_path / "absent" / "voices" / "af_test.bin")
    assert available_voices(["kokoro"]) == []


def test_kokoro_long_phoneme_strings_are_cut_to_the_model_limit():
    vocab = {c: i + 1 for i, c in enumerate("abcdefgh .,")}
    phonemes = ", ".join("abc defgh" for _ in range(120)) + "."
    tokens = [vocab[c] for c in phonemes]
    chunks = synth._kokoro_chunks(tokens, phonemes, vocab)
    assert len(chunks) > 1 and all(0 < len(c) <= synth.KOKORO_MAX_TOKENS for c in chunks)
    # only the spaces at the cuts are dropped
    assert len(tokens) - len(chunks) < sum(map(len, chunks)) <= len(tokens)
    assert synth._kokoro_chunks(tokens[:50], phonemes[:50], vocab) == [tokens[:50]]


def test_voice_ids_unique_and_engines_known():
    ids = [v.id for v in ALL_VOICES]
    assert len(ids) == len(set(ids))
    assert {v.engine for v in ALL_VOICES} <= set(ENGINES)
    with pytest.raises(ValueError):
        available_voices(["nonesuch"])


def test_trim_silence_keeps_a_margin():
    wave = np.zeros(SAMPLE_RATE * 3, dtype=np.float32)
    wave[SAMPLE_RATE:2 * SAMPLE_RATE] = 0.5 * np.sin(np.arange(SAMPLE_RATE) * 0.1)
    out = trim_silence(wave, keep=0.1)
    assert abs(len(out) - 1.2 * SAMPLE_RATE) < 0.02 * SAMPLE_RATE


# ----------------------------------------------------------------------------------------- planning (no engines)

FAKE_VOICES = ([Voice("espeak", f"en-us+m{i}", {"accent": "en-us"}) for i in range(1, 6)]
               + [Voice("flite", n) for n in ("kal16", "slt", "awb")]
               + [Voice("festival", "cmu_us_slt_arctic_hts"), Voice("festival", "kal_diphone")]
               + [Voice("mbrola", n) for n in ("us1", "us2")] + [Voice("piper", "en_US-joe-medium")])
FAKE_PROMPTS = [Prompt(f"sentence number {i} here", f"Sentence number {i} here.", "test") for i in range(3000)]


def test_a_held_out_speaker_is_withheld_from_training_under_every_engine():
    cfg = corpus_plan.CorpusConfig(output="/tmp/x", num_prompts=600, seed=0, holdout=("mbrola:us2", "flite:kal16"))
    jobs, holdout = corpus_plan.plan_corpus(cfg, FAKE_VOICES, FAKE_PROMPTS)
    assert {v.id for v in holdout} == {"mbrola:us2", "flite:kal16"}
    trained = {v for j in jobs if j.split != "test" for v in j.voices}
    # festival's kal_diphone is the same recorded speaker as flite's kal16
    assert "festival:kal_diphone" not in trained and not trained & {"mbrola:us2", "flite:kal16"}
    assert "mbrola:us1" in trained
    for seed in range(20):  # automatic choice never takes the speaker of a voice that must stay in training
        auto = corpus_plan.choose_holdout(FAKE_VOICES, 2, np.random.default_rng(seed))
        assert "flite:slt" not in {v.id for v in auto}


def test_a_held_out_kokoro_voice_keeps_its_blends_out_of_training():
    voices = [Voice("kokoro", n) for n in ("af_a", "af_b", "af_c")]
    voices += [Voice("kokoro-blend", f"{a}+{b}") for a, b in (("af_a", "af_b"), ("af_a", "af_c"), ("af_b", "af_c"))]
    cfg = corpus_plan.CorpusConfig(output="/tmp/x", num_prompts=300, seed=0, holdout=("kokoro:af_a",))
    jobs, _ = corpus_plan.plan_corpus(cfg, voices, FAKE_PROMPTS)
    trained = {v for j in jobs if j.split != "test" for v in j.voices}
    assert trained == {"kokoro:af_b", "kokoro:af_c", "kokoro-blend:af_b+af_c"}


def test_plan_splits_disjoint_holdout_only_in_test_and_mix_weighted():
    cfg = corpus_plan.CorpusConfig(output="/tmp/x", num_prompts=2000, seed=3, test_voices=2)
    jobs, holdout = corpus_plan.plan_corpus(cfg, FAKE_VOICES, FAKE_PROMPTS)
    assert len(jobs) == 2000 and len(holdout) == 2
    assert len({v.engine for v in holdout}) == 2 and "piper:en_US-joe-medium" not in {v.id for v in holdout}
    texts = {s: {j.text for j in jobs if j.split == s} for s in ("train", "dev", "test")}
    assert not texts["train"] & texts["dev"] and not texts["train"] & texts["test"] and not texts["dev"] & texts["test"]
    held = {v.id for v in holdout}
    for j in jobs:
        if j.split != "test":
            assert not held & set(j.voices), "a test-only voice (or fallback) leaked into train/dev"
    test_voices = Counter(j.voices[0] for j in jobs if j.split == "test")
    assert all(test_voices[v] > 0 for v in held)
    engines = Counter(j.voices[0].split(":")[0] for j in jobs if j.split == "train")
    n = sum(engines.values())
    assert 0.08 < engines["espeak"] / n < 0.18 and engines["piper"] > engines["espeak"]
    # same plan for the same seed, a different one for another seed
    again, _ = corpus_plan.plan_corpus(cfg, FAKE_VOICES, FAKE_PROMPTS)
    assert [j.uid for j in again] == [j.uid for j in jobs]
    other, _ = corpus_plan.plan_corpus(corpus_plan.CorpusConfig(output="/tmp/x", num_prompts=2000, seed=4),
                                        FAKE_VOICES, FAKE_PROMPTS)
    assert [j.uid for j in other] != [j.uid for j in jobs]
    rates = [j.rate for j in jobs]
    assert min(rates) < 0.9 and max(rates) > 1.1
    augmented = sum(j.augment for j in jobs if j.split == "train") / len(texts["train"])
    assert 0.4 < augmented < 0.6 and not any(j.augment for j in jobs if j.split != "train")


def test_engine_weights_change_the_mix_and_accented_voices_are_opt_in():
    voices = [*FAKE_VOICES, *(Voice("mbrola-accented", n) for n in ("de4", "fr1", "sw2"))]
    cfg = corpus_plan.CorpusConfig(output="/tmp/x", num_prompts=3000, seed=1, holdout=("mbrola:us2", "flite:awb"))

    def accented_share(config: corpus_plan.CorpusConfig) -> float:
        jobs, _ = corpus_plan.plan_corpus(config, voices, FAKE_PROMPTS)
        train = [j.voices[0].split(":")[0] for j in jobs if j.split == "train"]
        return train.count("mbrola-accented") / len(train)

    # engine shares are renormalised over the engines found: 0.2 of 1.2 by default, 0.8 of 1.8 when raised
    assert 0.13 < accented_share(cfg) < 0.20
    cfg.engine_weights = {"mbrola-accented": 0.8}
    assert 0.40 < accented_share(cfg) < 0.49
    cfg.engine_weights = {e: 0.0 for e in ENGINES}
    with pytest.raises(ValueError, match="all zero"):
        corpus_plan.plan_corpus(cfg, voices, FAKE_PROMPTS)
    # the defaults leave the new engine out, so a corpus made with them stays what it was
    args = synth_corpus.build_parser().parse_args(["--output", "x", "--hours", "1"])
    assert args.engines == DEFAULT_ENGINES and "mbrola-accented" not in DEFAULT_ENGINES
    assert set(DEFAULT_ENGINES) < set(ENGINES)


@pytest.mark.parametrize("value", ["nonesuch=1", "mbrola-accented=-1", "mbrola-accented", "piper=x"])
def test_a_bad_engine_weight_is_refused_with_a_clear_message(value, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        synth_corpus.main(["--output", str(tmp_path / "x"), "--hours", "1", "--engine-weights", value])
    assert e.value.code == 2 and "--engine-weights" in capsys.readouterr().err


def test_hours_estimate_and_repeated_train_sentences():
    cfg = corpus_plan.CorpusConfig(output="/tmp/x", hours=0.5, seed=0)
    jobs, _ = corpus_plan.plan_corpus(cfg, FAKE_VOICES, FAKE_PROMPTS[:200])
    assert 400 < len(jobs) < 1200  # ~1.6 s per 4-word prompt
    dev_test = {j.text for j in jobs if j.split != "train"}
    assert not dev_test & {j.text for j in jobs if j.split == "train"}


# ----------------------------------------------------------------------------------------- the corpus job

FAST_ENGINES = [e for e in ("espeak", "flite", "pico", "mbrola") if BY_ENGINE[e]]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    if sum(len(BY_ENGINE[e]) for e in FAST_ENGINES) < 3:
        pytest.skip("needs at least 3 voices of espeak/flite/pico/mbrola")
    root = tmp_path_factory.mktemp("corpus")
    args = ["--num-prompts", "14", "--seed", "5", "--engines", ",".join(FAST_ENGINES), "--dev-fraction", "0.15",
            "--test-fraction", "0.3", "--augment-prob", "0.5"]
    assert synth_corpus.main(["--output", str(root / "a"), "--jobs", "2", *args]) == 0
    return root, args


def test_corpus_layout_and_manifests(corpus):
    root, _ = corpus
    out = root / "a"
    utts = {s: read_manifest(out / f"{s}.jsonl") for s in ("train", "dev", "test")}
    assert sum(len(u) for u in utts.values()) == 14 and all(utts.values())
    for line in (out / "train.jsonl").read_text().splitlines():
        assert not os.path.isabs(json.loads(line)["audio_filepath"])
    for split, items in utts.items():
        for u in items:
            info = sf.info(u.audio_filepath)
            assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
            assert abs(info.duration - u.duration) < 1e-3 and u.duration > 0.5
            assert f"/audio/{split}/" in u.audio_filepath and u.text
    texts = {s: {u.text for u in items} for s, items in utts.items()}
    assert not texts["train"] & texts["dev"] and not texts["train"] & texts["test"] and not texts["dev"] & texts["test"]
    summary = json.loads((out / "corpus.json").read_text())
    held = set(summary["voices"]["test_only"])
    assert len(held) >= 2
    assert not held & set(summary["voices"]["train"]) and not held & set(summary["voices"]["dev"])
    assert held & set(summary["voices"]["test"])
    assert summary["counts"] == {s: len(utts[s]) for s in utts}
    lm = set((out / "sentences.txt").read_text().splitlines())
    assert texts["train"] <= lm and not (texts["dev"] | texts["test"]) & lm
    assert not list(out.glob("audio/*/.*.tmp"))


def test_corpus_rerun_is_a_noop_and_jobs_do_not_change_the_plan(corpus):
    root, args = corpus
    out = root / "a"
    wavs = sorted(out.glob("audio/*/*.wav"))
    mtimes = {p: p.stat().st_mtime_ns for p in wavs}
    manifest = (out / "train.jsonl").read_text()
    assert synth_corpus.main(["--output", str(out), "--jobs", "1", *args]) == 0
    assert sorted(out.glob("audio/*/*.wav")) == wavs
    assert all(p.stat().st_mtime_ns == mtimes[p] for p in wavs), "a finished file was rewritten"
    assert (out / "train.jsonl").read_text() == manifest
    # a fresh run with another --jobs plans the same utterances (ids hash the sentence, voice, rate, ...)
    assert synth_corpus.main(["--output", str(root / "b"), "--jobs", "1", *args]) == 0
    for split in ("train", "dev", "test"):
        a = [(os.path.basename(u.audio_filepath), u.text, u.extra["voice"], u.extra["augment"])
             for u in read_manifest(out / f"{split}.jsonl")]
        b = [(os.path.basename(u.audio_filepath), u.text, u.extra["voice"], u.extra["augment"])
             for u in read_manifest(root / "b" / f"{split}.jsonl")]
        assert a == b


def _four_train_utterances(out, *options: str) -> None:
    """A train-only corpus of 4 utterances by the fast engines in ``out``, with ``options``."""
    if sum(len(BY_ENGINE[e]) for e in FAST_ENGINES) < 3:
        pytest.skip("needs at least 3 voices of espeak/flite/pico/mbrola")
    assert synth_corpus.main(["--output", str(out), "--num-prompts", "4", "--seed", "1", "--engines",
                              ",".join(FAST_ENGINES), "--dev-fraction", "0", "--test-fraction", "0", *options]) == 0


def test_rate_pitch_and_resampling_ranges_reach_every_utterance_and_the_corpus_record(tmp_path):
    out = tmp_path / "wide"
    _four_train_utterances(out, "--augment-prob", "1", "--rate-range", "1.2,1.2", "--pitch-range", "0.9,0.9",
                           "--speed-range", "0.8,0.8", "--speed-prob", "1", "--noise-prob", "1")
    utts = read_manifest(out / "train.jsonl")
    assert len(utts) == 4
    for u in utts:
        assert (u.extra["rate"], u.extra["pitch"]) == (1.2, 0.9)
        assert "speed=0.800" in u.extra["augment"], u.extra["augment"]
        assert any(a.startswith("noise=") for a in u.extra["augment"]), u.extra["augment"]
    settings = json.loads((out / "corpus.json").read_text())["settings"]
    assert settings["rate_range"] == [1.2, 1.2] and settings["pitch_range"] == [0.9, 0.9]
    assert settings["augment_config"]["speed_range"] == [0.8, 0.8] and settings["augment_config"]["speed_prob"] == 1
    assert settings["augment_config"]["noise_prob"] == 1
    quiet = tmp_path / "quiet"
    _four_train_utterances(quiet, "--augment-prob", "1", "--noise-prob", "0")
    assert not any(a.startswith("noise=") for u in read_manifest(quiet / "train.jsonl") for a in u.extra["augment"])
    converted = tmp_path / "converted"
    _four_train_utterances(converted, "--augment-prob", "1", "--voice-prob", "1")
    assert all(u.extra["augment"][0].startswith("voice=f0x") for u in read_manifest(converted / "train.jsonl"))
    assert json.loads((converted / "corpus.json").read_text())["settings"]["augment_config"]["voice_prob"] == 1


def test_voice_conversion_changes_the_ids_of_the_utterances_it_reaches_and_no_others():
    cfg = corpus_plan.CorpusConfig(output="/tmp/x", num_prompts=400, seed=2)
    before, _ = corpus_plan.plan_corpus(cfg, FAKE_VOICES, FAKE_PROMPTS)
    cfg.augment = corpus_plan.AugmentConfig(voice_prob=0.6)
    after, _ = corpus_plan.plan_corpus(cfg, FAKE_VOICES, FAKE_PROMPTS)
    assert len(before) == len(after)
    for old, new in zip(before, after):
        assert (old.uid != new.uid) == old.augment  # a re-run never takes an unconverted file for a converted one
        assert (old.text, old.voices, old.seed) == (new.text, new.voices, new.seed)


def test_probabilities_outside_zero_to_one_are_refused(tmp_path, capsys):
    for flag in ("--noise-prob", "--speed-prob", "--augment-prob", "--voice-prob"):
        with pytest.raises(SystemExit) as exit_:
            synth_corpus.main(["--output", str(tmp_path / "x"), "--num-prompts", "4", flag, "1.5"])
        assert exit_.value.code == 2 and f"{flag} must be in [0, 1]" in capsys.readouterr().err


def test_non_speech_clips_come_after_the_speech_and_leave_its_plan_unchanged():
    cfg = corpus_plan.CorpusConfig(output="/tmp/x", num_prompts=400, seed=2)
    speech_only, _ = corpus_plan.plan_corpus(cfg, FAKE_VOICES, FAKE_PROMPTS)
    cfg.non_speech_fraction = 0.1
    jobs, _ = corpus_plan.plan_corpus(cfg, FAKE_VOICES, FAKE_PROMPTS)
    assert jobs[:len(speech_only)] == speech_only
    added = jobs[len(speech_only):]
    assert len(added) == round(0.1 * sum(j.split == "train" for j in speech_only))
    assert all(j.split == "train" and j.text == "" and j.voices[0].startswith("non-speech:") for j in added)
    assert len({j.voices[0] for j in added}) >= 6 and len({j.uid for j in jobs}) == len(jobs)
    assert all(0.5 <= j.extra["seconds"] <= 6.0 for j in added)


def test_multi_sentence_utterances_read_train_sentences_in_one_go_and_leave_the_rest_of_the_plan():
    cfg = corpus_plan.CorpusConfig(output="/tmp/x", num_prompts=600, seed=2)
    single, _ = corpus_plan.plan_corpus(cfg, FAKE_VOICES, FAKE_PROMPTS)
    cfg.multi_sentence_prob, cfg.max_sentences = 0.5, 3
    jobs, _ = corpus_plan.plan_corpus(cfg, FAKE_VOICES, FAKE_PROMPTS)
    assert len(jobs) == len(single)
    # Voices, rates, pitches and augmentation draws are those of the single-sentence plan; dev and test too.
    same = ("split", "voices", "rate", "pitch", "variation", "augment", "seed")
    assert [[getattr(j, k) for k in same] for j in jobs] == [[getattr(j, k) for k in same] for j in single]
    assert all(j == o for j, o in zip(jobs, single) if j.split != "train")
    multi = [j for j in jobs if "sentences" in j.extra]
    train = [j for j in jobs if j.split == "train"]
    assert 0.4 < len(multi) / len(train) < 0.6 and {len(j.extra["sentences"]) for j in multi} == {2, 3}
    eval_texts = {j.text for j in jobs if j.split != "train"}
    for job, old in zip(jobs, single):
        if "sentences" in job.extra:
            parts = job.extra["sentences"]
            assert parts[0] == old.text and job.text == " ".join(parts) and not set(parts) & eval_texts
            assert job.spoken.count(". ") == len(parts) - 1 and job.spoken.endswith(".")  # read as sentences
        else:
            assert job == old
    assert len({j.uid for j in jobs}) == len(jobs)
    # --hours plans fewer, longer utterances for the same audio
    by_hours = [corpus_plan.plan_corpus(corpus_plan.CorpusConfig(output="/tmp/x", hours=0.5, seed=0,
                                                                   multi_sentence_prob=p), FAKE_VOICES,
                                         FAKE_PROMPTS)[0] for p in (0.0, 1.0)]
    assert len(by_hours[1]) < 0.6 * len(by_hours[0])


def test_a_multi_sentence_corpus_lists_its_sentences_one_a_line_for_the_lm(tmp_path):
    # Prompts no offline text source holds, so that only the corpus's own train sentences can put them in
    # sentences.txt.
    made_up = [f"the {animal} from planet {n} hums" for animal in ("walrus", "heron", "badger")
               for n in ("nine", "ten", "eleven")]
    (tmp_path / "prompts.txt").write_text("\n".join(made_up) + "\n")
    out = tmp_path / "multi"
    _four_train_utterances(out, "--multi-sentence-prob", "1", "--max-sentences", "3",
                           "--prompts", str(tmp_path / "prompts.txt"))
    utts = read_manifest(out / "train.jsonl")
    assert len(utts) == 4 and all(u.extra["sentences"] in (2, 3) for u in utts)
    lines = set((out / "sentences.txt").read_text().splitlines())
    assert not any(u.text in lines for u in utts)  # the joins are not LM sentences; their parts are
    for u in utts:
        words = u.text.split()
        assert len(words) == 6 * u.extra["sentences"]
        assert all(" ".join(words[i:i + 6]) in lines for i in range(0, len(words), 6))


def test_a_corpus_with_non_speech_clips_marks_them_in_its_manifest(tmp_path):
    out = tmp_path / "ns"
    _four_train_utterances(out, "--non-speech-fraction", "0.5")
    utts = read_manifest(out / "train.jsonl")
    silent = [u for u in utts if u.extra.get("non_speech")]
    assert len(utts) == 6 and len(silent) == 2
    for u in silent:
        assert u.text == "" and u.extra["engine"] == "non-speech" and u.duration >= 0.5
        assert abs(sf.info(u.audio_filepath).duration - u.duration) < 1e-3
    assert all(u.text for u in utts if u not in silent)
    assert "" not in (out / "sentences.txt").read_text().splitlines()
    summary = json.loads((out / "corpus.json").read_text())
    assert summary["non_speech"]["clips"] == 2 and sum(summary["non_speech"]["per_kind"].values()) == 2
    # not voices: the voice lists and counts are the speakers'
    assert not any(v.startswith("non-speech") for v in summary["voices"]["train"])
    assert sum(summary["per_voice"]["train"].values()) == 4
    # a rerun finds every file, speech and not, already there, and writes the same manifest
    manifest = (out / "train.jsonl").read_text()
    _four_train_utterances(out, "--non-speech-fraction", "0.5")
    assert (out / "train.jsonl").read_text() == manifest


@pytest.mark.parametrize("value", ["1.2", "1.2,0.8", "0,1", "a,b"])
def test_a_bad_range_is_refused_with_a_clear_message(value, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        synth_corpus.main(["--output", str(tmp_path / "x"), "--rate-range", value])
    assert e.value.code == 2 and "--rate-range" in capsys.readouterr().err


def test_kokoro_blends_pair_voices_of_one_accent_and_sex_and_speak():
    voices = BY_ENGINE.get("kokoro-blend", [])
    if not voices:
        pytest.skip("Kokoro not installed (scripts/install_tts.sh)")
    for v in voices:
        a, b = v.name.split("+")
        assert a[:2] == b[:2] and a < b, v.id
    assert len(voices) == sum(n * (n - 1) // 2 for n in Counter(v.name[:2] for v in BY_ENGINE["kokoro"]).values())
    blend = voices[0]
    wave = synthesize(blend, "hello world")
    parents = [next(v for v in BY_ENGINE["kokoro"] if v.name == n) for n in blend.name.split("+")]
    # the blend is a voice of its own: not either parent's audio
    for parent in parents:
        other = synthesize(parent, "hello world")
        assert len(other) != len(wave) or not np.allclose(other, wave, atol=1e-3)
