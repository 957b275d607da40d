"""Transcript normalisation and the character vocabulary (the one definition of both).

Normalisation policy, applied to every transcript before it meets the vocabulary:
- Unicode NFKC; accents stripped from letters outside the vocabulary (``café`` -> ``cafe``);
- lower case; curly apostrophes become ``'``;
- digits are spelled out in English with num2words (``42`` -> ``forty two``, ``3rd`` -> ``third``,
  ``1.5`` -> ``one point five``); a comma between digit groups is a thousands separator; four-digit numbers
  from 1100 to 2099 are read as years (``1984`` -> ``nineteen eighty four``), decades too (``1990s``,
  ``80s``); amounts of money as said (``$5.50`` -> ``five dollars and fifty cents``, also ``£`` and ``€``);
- ``&`` -> ``and``, ``%`` -> ``percent``; hyphens, slashes and underscores separate words;
- every other punctuation mark is removed; whitespace is collapsed.
Characters still outside the vocabulary after this are an error (:class:`TranscriptError`), never
silently dropped, so a user learns that their alphabet needs a custom vocabulary.

CTC blank: the vocabulary's labels are ``0 .. len(chars) - 1`` and the blank is ``len(chars)``, the last
class. Label padding is never fed to the loss (it receives per-utterance label lengths), so padding
cannot collide with the blank or a real label.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from num2words import num2words

from speech.errors import TranscriptError

DEFAULT_CHARS = " abcdefghijklmnopqrstuvwxyz'"

_ORDINAL = re.compile(r"(\d+)(st|nd|rd|th)\b")
_DECIMAL = re.compile(r"(\d+)\.(\d+)")
_GROUPED = re.compile(r"(?<!\d)\d{1,3}(?:,\d{3})+(?!\d)")
# Put before a number written with thousands separators: a quantity, never read as a year. Private use, so
# the punctuation pass below removes it.
_QUANTITY = "\ue000"
# A minus sign before a number that starts a word ("-5 degrees"), not a hyphen between two ("1-2").
_NEGATIVE = re.compile(r"(?<![^\s(\[])[-\u2212](?=\.?\d)")
_NUMBER = re.compile(f"({_QUANTITY}?)" + r"(\d+)")
_DECADE = re.compile(r"(?<![\w.])" + f"({_QUANTITY}?)" + r"(\d*0)'?s\b")
# Symbol, whole part, fraction, scale word: "$5", "£3.20", "$1.5 million", "€2bn".
_MONEY = re.compile(r"([$\u00a3\u20ac])\s?" + f"{_QUANTITY}?" + r"(\d+)(?:\.(\d+))?"
                    r"(?:\s?(thousand|million|billion|trillion|bn)\b)?")
# Currency symbol -> (unit, units, hundredth, hundredths).
_CURRENCIES = {"$": ("dollar", "dollars", "cent", "cents"), "\u00a3": ("pound", "pounds", "penny", "pence"),
               "\u20ac": ("euro", "euros", "cent", "cents")}
_SEPARATORS = re.compile(r"[-_/\u2010-\u2015]")
_APOSTROPHES = re.compile(r"[\u2018\u2019\u02bc`\u00b4]")
_SPACES = re.compile(r"\s+")


def _spell(number: str, to: str = "cardinal") -> str:
    return " " + num2words(int(number), to=to, lang="en") + " "


def _say_decimal(whole: str, fraction: str) -> str:
    return _spell(whole) + " point " + " ".join(_spell(d) for d in fraction)


def _say_number(digits: str, quantity: bool = False) -> str:
    is_year = not quantity and len(digits) == 4 and 1100 <= int(digits) <= 2099
    return _spell(digits, "year" if is_year else "cardinal")


def _say_decade(match: re.Match) -> str:
    *words, last = _say_number(match.group(2), bool(match.group(1))).split()
    if words == ["one"] and last in ("hundred", "thousand"):  # "100s" -> "hundreds"
        words = []
    return " " + " ".join([*words, last[:-1] + "ies" if last.endswith("y") else last + "s"]) + " "


def _say_money(match: re.Match) -> str:
    unit, units, hundredth, hundredths = _CURRENCIES[match.group(1)]
    whole, fraction, scale = match.group(2), match.group(3) or "", match.group(4)
    if scale or (fraction and len(fraction) != 2):  # "$1.5 million" -> "one point five million dollars"
        amount = _say_decimal(whole, fraction) if fraction else _spell(whole)
        scale = {"bn": "billion"}.get(scale, scale) or ""
        return f" {amount} {scale} {unit if whole == '1' and not fraction and not scale else units} "
    parts = []
    if int(whole) or not int(fraction or 0):
        parts.append(f"{_spell(whole)} {unit if int(whole) == 1 else units}")
    if int(fraction or 0):
        parts.append(f"{_spell(fraction)} {hundredth if int(fraction) == 1 else hundredths}")
    return " " + " and ".join(parts) + " "


def normalize_text(text: str, allowed: str = DEFAULT_CHARS) -> str:
    """Normalise ``text`` by the policy in the module docstring. Punctuation outside ``allowed`` goes."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = _APOSTROPHES.sub("'", text)
    # Accents are stripped only from letters the vocabulary lacks (a French vocabulary keeps its "é").
    text = "".join(c if c in allowed else "".join(d for d in unicodedata.normalize("NFKD", c)
                                                  if not unicodedata.combining(d)) for c in text)
    text = text.replace("&", " and ").replace("%", " percent ")
    text = text.replace("\u00df", "ss").replace("\u00e6", "ae").replace("\u0153", "oe")
    text = _NEGATIVE.sub(" minus ", text)
    text = _GROUPED.sub(lambda m: _QUANTITY + m.group(0).replace(",", ""), text)
    text = _MONEY.sub(_say_money, text)
    text = _DECADE.sub(_say_decade, text)
    text = _ORDINAL.sub(lambda m: _spell(m.group(1), "ordinal"), text)
    text = _DECIMAL.sub(lambda m: _say_decimal(m.group(1), m.group(2)), text)
    text = _NUMBER.sub(lambda m: _say_number(m.group(2), bool(m.group(1))), text)
    text = _SEPARATORS.sub(" ", text)
    # num2words writes "forty-two" and "one hundred and five"; hyphens were handled above, so redo them.
    text = _SEPARATORS.sub(" ", text).replace(",", " ")
    kept = []
    for char in text:
        if char in allowed or char.isspace():
            kept.append(char)
        elif unicodedata.category(char)[0] in "PSC":  # punctuation, symbols, control: removed
            kept.append(" ")
        else:  # a letter or mark the vocabulary lacks: keep it, so encode() reports it
            kept.append(char)
    text = _SPACES.sub(" ", "".join(kept)).strip()
    # Apostrophes only inside words ("don't"), not as quotes.
    text = " ".join(w.strip("'") for w in text.split(" "))
    return _SPACES.sub(" ", text).strip()


@dataclass(frozen=True)
class Vocabulary:
    """Characters the model emits. Index ``i`` is ``chars[i]``; the CTC blank is ``len(chars)``."""

    chars: str = DEFAULT_CHARS
    _index: dict = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if len(set(self.chars)) != len(self.chars):
            raise ValueError(f"vocabulary has repeated characters: {self.chars!r}")
        if " " not in self.chars:
            raise ValueError("vocabulary must contain the space character (word separator)")
        object.__setattr__(self, "_index", {c: i for i, c in enumerate(self.chars)})

    @property
    def blank(self) -> int:
        return len(self.chars)

    @property
    def num_classes(self) -> int:
        """Output classes of the acoustic model: the characters plus the blank."""
        return len(self.chars) + 1

    def normalize(self, text: str) -> str:
        return normalize_text(text, self.chars)

    def encode(self, text: str, path: str | None = None) -> list[int]:
        """Normalise and encode ``text``. Raises TranscriptError if empty or out of vocabulary."""
        normalized = self.normalize(text)
        if not normalized:
            raise TranscriptError("transcript is empty after normalisation", path)
        unknown = sorted({c for c in normalized if c not in self._index})
        if unknown:
            raise TranscriptError(f"characters outside the vocabulary: {''.join(unknown)!r}", path)
        return [self._index[c] for c in normalized]

    def decode(self, labels) -> str:
        """Labels (no blanks, already collapsed) to text."""
        return "".join(self.chars[i] for i in labels if 0 <= i < len(self.chars))

    def to_json(self) -> dict:
        return {"chars": self.chars, "blank": self.blank}

    @classmethod
    def from_json(cls, data: dict) -> Vocabulary:
        return cls(chars=data["chars"])

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_json(), ensure_ascii=False, indent=1) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> Vocabulary:
        return cls.from_json(json.loads(Path(path).read_text()))
