"""Corpus recipes: one function per standard layout, each turning files on disk into a manifest.

Corpora are read in place and never modified. Every recipe returns ``(utterances, failures)``:
a file that is missing, unreadable or empty, or a transcript that is empty or not UTF-8, becomes a
:class:`Failure` with the file and the reason, and preparation goes on with the rest.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from speech.audio import audio_duration, find_audio_files
from speech.errors import SpeechError
from speech.manifest import Utterance

# Transcripts of long recordings run past csv's default 128 KiB field limit (set where a corpus is read, not on import).
CSV_FIELD_LIMIT = 1 << 24


@dataclass
class Failure:
    path: str
    reason: str


Recipe = Callable[[Path], tuple[list[Utterance], list[Failure]]]


def _measure(pairs: Iterable[tuple[Path, str | None]], failures: list[Failure]) -> list[Utterance]:
    """Duration for each (audio, transcript) pair; ``None`` transcripts were already reported."""
    utterances = []
    for audio, text in pairs:
        if text is None:
            continue
        if not text.strip():
            failures.append(Failure(str(audio), "empty transcript"))
            continue
        try:
            duration = audio_duration(audio)
        except SpeechError as e:
            failures.append(Failure(str(audio), e.reason))
            continue
        except OSError as e:
            failures.append(Failure(str(audio), f"cannot read: {e}"))
            continue
        if duration <= 0:
            failures.append(Failure(str(audio), "audio has no samples"))
            continue
        utterances.append(Utterance(str(audio), duration, text.strip()))
    return utterances


def _read_text(path: Path, failures: list[Failure]) -> str | None:
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        failures.append(Failure(str(path), "transcript is not valid UTF-8"))
    except OSError as e:
        failures.append(Failure(str(path), f"cannot read transcript: {e}"))
    return None


def _read_lines(path: Path, failures: list[Failure]) -> list[str]:
    text = _read_text(path, failures)
    return text.splitlines() if text is not None else []


def prepare_deepspeech(src: Path) -> tuple[list[Utterance], list[Failure]]:
    """DeepSpeech CSV: ``wav_filename,wav_filesize,transcript``; paths relative to the CSV's folder."""
    failures: list[Failure] = []
    csv.field_size_limit(CSV_FIELD_LIMIT)
    rows = list(csv.DictReader(_read_lines(src, failures)))
    if rows and not {"wav_filename", "transcript"} <= set(rows[0]):
        raise SpeechError("not a DeepSpeech CSV (needs wav_filename and transcript columns)", str(src))
    pairs = [((src.parent / r["wav_filename"]) if r["wav_filename"] else src.parent, r["transcript"] or "")
             for r in rows]
    return _measure(pairs, failures), failures


def prepare_librispeech(src: Path) -> tuple[list[Utterance], list[Failure]]:
    """LibriSpeech tree: ``SPEAKER/CHAPTER/SPEAKER-CHAPTER.trans.txt`` listing ``ID TEXT`` for ``ID.flac``."""
    failures: list[Failure] = []
    pairs = []
    for trans in sorted(src.rglob("*.trans.txt")):
        for line in _read_lines(trans, failures):
            if not line.strip():
                continue
            utt_id, _, text = line.strip().partition(" ")
            pairs.append((trans.parent / f"{utt_id}.flac", text))
    return _measure(pairs, failures), failures


def prepare_ljspeech(src: Path) -> tuple[list[Utterance], list[Failure]]:
    """LJSpeech: ``metadata.csv`` (``ID|text|normalized text``) and ``wavs/ID.wav``."""
    failures: list[Failure] = []
    metadata = src / "metadata.csv" if src.is_dir() else src
    root = metadata.parent
    pairs = []
    for line in _read_lines(metadata, failures):
        if not line.strip():
            continue
        fields = line.split("|")
        text = fields[2] if len(fields) > 2 and fields[2].strip() else (fields[1] if len(fields) > 1 else "")
        pairs.append((root / "wavs" / f"{fields[0]}.wav", text))
    return _measure(pairs, failures), failures


def prepare_commonvoice(src: Path) -> tuple[list[Utterance], list[Failure]]:
    """Common Voice: a ``*.tsv`` (``path``, ``sentence`` columns) with audio in ``clips/``.

    ``src`` is a TSV file, or a release folder (``train.tsv`` is used, else ``validated.tsv``).
    """
    failures: list[Failure] = []
    if src.is_dir():
        tsv = next((src / n for n in ("train.tsv", "validated.tsv") if (src / n).is_file()), None)
        if tsv is None:
            raise SpeechError("no train.tsv or validated.tsv in this Common Voice folder", str(src))
    else:
        tsv = src
    csv.field_size_limit(CSV_FIELD_LIMIT)
    rows = list(csv.DictReader(_read_lines(tsv, failures), delimiter="\t", quoting=csv.QUOTE_NONE))
    if rows and not {"path", "sentence"} <= set(rows[0]):
        raise SpeechError("not a Common Voice TSV (needs path and sentence columns)", str(tsv))
    pairs = [(tsv.parent / "clips" / r["path"], r["sentence"] or "") for r in rows]
    return _measure(pairs, failures), failures


def prepare_folder(src: Path) -> tuple[list[Utterance], list[Failure]]:
    """A folder tree of audio files, each with a same-named ``.txt`` transcript beside it."""
    failures: list[Failure] = []
    pairs = []
    for audio in find_audio_files(src):
        transcript = audio.with_suffix(".txt")
        if not transcript.is_file():
            failures.append(Failure(str(audio), f"no transcript {transcript.name} beside it"))
            continue
        pairs.append((audio, _read_text(transcript, failures)))
    return _measure(pairs, failures), failures


RECIPES: dict[str, Recipe] = {
    "deepspeech": prepare_deepspeech,
    "librispeech": prepare_librispeech,
    "ljspeech": prepare_ljspeech,
    "commonvoice": prepare_commonvoice,
    "folder": prepare_folder,
}


def prepare(layout: str, src: str | os.PathLike) -> tuple[list[Utterance], list[Failure]]:
    if layout not in RECIPES:
        raise SpeechError(f"unknown corpus layout {layout!r}; choose from {', '.join(RECIPES)}")
    src = Path(src)
    if not src.exists():
        raise SpeechError("corpus not found", str(src))
    utterances, failures = RECIPES[layout](src)
    if not utterances and not failures:  # the wrong layout or folder (or an empty file): not an empty manifest
        expected = (RECIPES[layout].__doc__ or "").splitlines()[0].rstrip(".")
        raise SpeechError(f"no utterance found: is it a {layout} corpus? ({expected})", str(src))
    return utterances, failures
