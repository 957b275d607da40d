"""Transcript writers: plain text, JSON lines, SubRip (.srt) and WebVTT (.vtt) from CTC word timings."""

from __future__ import annotations

from collections.abc import Sequence

from speech.decoding import Word
from speech.manifest import json_line

FORMATS = ("txt", "jsonl", "srt", "vtt")
MAX_CUE_SECONDS = 6.0
MAX_CUE_CHARS = 42  # one subtitle line, by common broadcast guidelines


def cues(words: Sequence[Word], max_seconds: float = MAX_CUE_SECONDS,
         max_chars: int = MAX_CUE_CHARS) -> list[tuple[float, float, str]]:
    """Group words into subtitle cues ``(start, end, text)``; a pause over 1 s also starts a new cue."""
    out: list[tuple[float, float, str]] = []
    current: list[Word] = []
    for word in words:
        if current:
            text = " ".join(w.word for w in current) + " " + word.word
            if (word.end - current[0].start > max_seconds or len(text) > max_chars
                    or word.start - current[-1].end > 1.0):
                out.append((current[0].start, current[-1].end, " ".join(w.word for w in current)))
                current = []
        current.append(word)
    if current:
        out.append((current[0].start, current[-1].end, " ".join(w.word for w in current)))
    return out


def _timestamp(seconds: float, separator: str) -> str:
    ms = max(0, round(seconds * 1000))
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{separator}{ms:03d}"


def to_srt(words: Sequence[Word]) -> str:
    blocks = [f"{i}\n{_timestamp(s, ',')} --> {_timestamp(e, ',')}\n{t}\n"
              for i, (s, e, t) in enumerate(cues(words), 1)]
    return "\n".join(blocks)


def to_vtt(words: Sequence[Word]) -> str:
    blocks = [f"{_timestamp(s, '.')} --> {_timestamp(e, '.')}\n{t}\n" for s, e, t in cues(words)]
    return "WEBVTT\n\n" + "\n".join(blocks)


def render(record: dict, words: Sequence[Word], fmt: str) -> str:
    """The file content of one transcript in ``fmt`` (``record`` is ``Transcript.to_json()``)."""
    if fmt == "txt":  # the hypothesis, also for a manifest line (whose "text" is its reference)
        return record.get("pred_text", record["text"]) + "\n"
    if fmt == "jsonl":
        return json_line(record) + "\n"
    if fmt == "srt":
        return to_srt(words)
    if fmt == "vtt":
        return to_vtt(words)
    raise ValueError(f"unknown format {fmt!r}; choose from {', '.join(FORMATS)}")
