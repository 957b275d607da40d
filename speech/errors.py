"""Typed errors a user can cause. Each names the file (or item) and the reason.

Entry points catch :class:`SpeechError` and turn it into a per-item failure and a summary line;
anything else is a bug and is allowed to raise.
"""

from __future__ import annotations


class SpeechError(Exception):
    """Base class for errors caused by user input (bad files, bad config), not by bugs."""

    def __init__(self, reason: str, path: str | None = None):
        self.reason = reason
        self.path = path
        super().__init__(f"{path}: {reason}" if path else reason)


class AudioError(SpeechError):
    """Audio that is missing, unreadable, empty, too short or not finite."""


class TranscriptError(SpeechError):
    """A transcript that is empty, not UTF-8, or has characters outside the vocabulary."""


class ManifestError(SpeechError):
    """A manifest line or corpus layout that cannot be read."""


class ModelError(SpeechError):
    """A model folder that is missing files or has an incompatible config."""
