"""JSON-lines manifests: the one interface between data preparation and everything after it.

One object per line, NeMo-compatible: ``{"audio_filepath": str, "duration": float, "text": str}``
(extra keys are kept). Relative ``audio_filepath`` values are resolved against the manifest's folder.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from speech.errors import ManifestError


@dataclass
class Utterance:
    audio_filepath: str
    duration: float
    text: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def non_speech(self) -> bool:
        """A clip with no speech in it (``"non_speech": true``): its transcript is empty on purpose."""
        return self.extra.get("non_speech") is True

    def to_json(self) -> dict:
        return {"audio_filepath": self.audio_filepath, "duration": round(self.duration, 4), "text": self.text,
                **self.extra}


def read_manifest(path: str | Path, resolve: bool = True) -> list[Utterance]:
    """Read a manifest. With ``resolve``, relative audio paths become absolute (against the manifest)."""
    return list(iter_manifest(path, resolve))


def iter_manifest(path: str | Path, resolve: bool = True, bad_lines: list[tuple[str, str]] | None = None
                  ) -> Iterator[Utterance]:
    """The records of a JSON-lines manifest. A line that is not a record raises :class:`ManifestError`, or, with
    ``bad_lines``, is added to it as ``(f"{path}:{line}", reason)`` and skipped (a batch job goes on)."""
    path = Path(path)
    if not path.is_file():
        raise ManifestError("not a file" if path.exists() else "manifest not found", str(path))
    base = path.resolve().parent
    # Bytes that are not UTF-8 are kept (surrogateescape) and refused line by line: one bad byte must not lose the
    # other lines, as a decode error while iterating the file would.
    with open(path, encoding="utf-8-sig", errors="surrogateescape") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                audio, duration, text, data = parse_record(line)
            except ValueError as e:
                if bad_lines is None:
                    raise ManifestError(f"line {number} is not a manifest record ({e})", str(path)) from e
                bad_lines.append((f"{path}:{number}", f"not a manifest record ({e})"))
                continue
            if resolve and not os.path.isabs(audio):
                audio = str(base / audio)
            yield Utterance(audio, duration, text, data)


def parse_record(line: str) -> tuple[str, float, str, dict]:
    """``(audio_filepath, duration, text, other keys)`` of one manifest line; ValueError saying what is wrong with
    it. ``duration`` (absent or null: 0) must be a finite number of seconds, not negative: a NaN would break every
    sort and bucket by length. ``text`` (absent or null: empty) must be a string, not an object printed as one."""
    try:
        line.encode("utf-8")
    except UnicodeEncodeError as e:
        raise ValueError("not UTF-8 text") from e
    try:
        data = json.loads(line)
    except ValueError as e:
        raise ValueError(f"not JSON: {e}") from e
    if not isinstance(data, dict):
        raise ValueError(f"a JSON {type(data).__name__}, not an object with audio_filepath")
    audio = data.pop("audio_filepath", None)
    if not isinstance(audio, str) or not audio.strip():
        raise ValueError(f"audio_filepath must be a file path, got {audio!r}")
    duration = data.pop("duration", None)
    if duration is None:
        duration = 0.0
    elif isinstance(duration, bool) or not isinstance(duration, (int, float, str)):
        raise ValueError(f"duration must be a number of seconds, got {duration!r}")
    try:
        duration = float(duration)
    except ValueError:
        raise ValueError(f"duration must be a number of seconds, got {duration!r}") from None
    if not math.isfinite(duration) or duration < 0:
        raise ValueError(f"duration must be a finite number of seconds, not negative, got {duration!r}")
    text = data.pop("text", None)
    if text is None:
        text = ""
    elif not isinstance(text, str):
        raise ValueError(f"text must be a string, got {text!r}")
    return audio, duration, text, data


def json_line(record: dict, allow_nan: bool = False) -> str:
    """One JSON object on a line: UTF-8 text as it is, but a file name that is not valid UTF-8 (read from the disk
    as lone surrogates) escaped (``\\udce9``), so that the line is still valid JSON in a UTF-8 file; read back, the
    escape gives the same name, and so the same file."""
    line = json.dumps(record, ensure_ascii=False, allow_nan=allow_nan)
    try:
        line.encode("utf-8")
    except UnicodeEncodeError:
        line = json.dumps(record, allow_nan=allow_nan)
    return line


def write_manifest(path: str | Path, utterances: Iterable[Utterance], relative_to: str | Path | None = None) -> int:
    """Write atomically (temp file + rename). With ``relative_to``, paths under it are made relative."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with atomic_write(path) as f:
        for utt in utterances:
            record = utt.to_json()
            if relative_to is not None:
                try:
                    record["audio_filepath"] = os.path.relpath(utt.audio_filepath, relative_to)
                except ValueError:  # other drive on Windows
                    pass
            f.write(json_line(record, allow_nan=True) + "\n")
            count += 1
    return count


# Temp files of :class:`atomic_write` end so, and only they are swept: a user's own ``.*.tmp`` files are left alone.
TEMP_SUFFIX = ".speech-partial"


def remove_stale_temp_files(directory: str | Path) -> int:
    """Delete temp files that :class:`atomic_write` left behind when its process was killed."""
    count = 0
    for tmp in Path(directory).rglob(f".*{TEMP_SUFFIX}"):
        if tmp.is_file():
            tmp.unlink(missing_ok=True)
            count += 1
    return count


class atomic_write:
    """``with atomic_write(path) as f:`` writes text to a temp file beside ``path`` and renames it into
    place on success, so a reader (or a ``kill -9``) never sees a partial file."""

    def __init__(self, path: str | Path, mode: str = "w", encoding: str | None = "utf-8"):
        self.path = Path(path)
        self.mode = mode
        self.encoding = None if "b" in mode else encoding

    def __enter__(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # The temp name keeps at most 100 bytes of the real one: a legal 255-byte name plus the prefix and suffix
        # would pass the file system's limit.
        stem = os.fsencode(self.path.name)[:100].decode("utf-8", "ignore")
        fd, self.tmp = tempfile.mkstemp(prefix=f".{stem}.", suffix=TEMP_SUFFIX, dir=self.path.parent)
        # mkstemp makes the file private (0600); give it the permissions an ordinary open() would.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(fd, 0o666 & ~umask)
        self.file = os.fdopen(fd, self.mode, encoding=self.encoding)
        return self.file

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                self.file.flush()
                os.fsync(self.file.fileno())
            self.file.close()
            if exc_type is None:
                os.replace(self.tmp, self.path)
        finally:
            if os.path.exists(self.tmp):
                os.unlink(self.tmp)
