"""A word n-gram language model held as arrays: the LM format that the prefix beam search reads, in numpy
(:mod:`speech.prefix_search`) and as lookup tables inside the SavedModel (:mod:`speech.tf_prefix_search`).

It is read from an ARPA file (what KenLM's ``lmplz`` writes) and saved as ``.npz``. Scores follow the ARPA back-off
rule exactly as KenLM computes them: ``log10 p(w | h)`` is the longest listed n-gram's probability plus the
back-off weights of the contexts that were shortened to reach it. Words outside the LM score as ``<unk>``.

N-grams are found by an int64 key of their word ids (:func:`ngram_keys`): the ids packed side by side under the
n-gram's order when they fit in 62 bits (a 3-gram LM of up to a million words), else two 31-bit polynomial hashes
with the order mixed in; the same integer arithmetic in numpy and in TensorFlow's int64 ops, so the graph's hash
table and this module's sorted keys agree bit for bit.
"""

from __future__ import annotations

import gzip
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from speech.errors import ModelError

# Two prime moduli below 2**31: a lane times a multiplier below 2**21 stays inside int64.
PRIMES = (2147483647, 2147483629)
WORD_ID_MULTIPLIERS = (1000003, 999983)
LANE_BITS = 31
UNK, BOS, EOS = "<unk>", "<s>", "</s>"


def combine_lanes(lane1: np.ndarray, lane2: np.ndarray) -> np.ndarray:
    """One int64 key of two 31-bit hash lanes."""
    return (np.asarray(lane1, np.int64) << LANE_BITS) | np.asarray(lane2, np.int64)


def packed_id_bits(num_words: int, order: int) -> int | None:
    """Bits per word id when ``order`` ids (plus one, so 0 is no word) and the order fit in an int64 key; None
    when they do not (the keys are hashed instead)."""
    bits = max(1, int(num_words).bit_length())
    return bits if order * bits + max(1, order.bit_length()) <= 62 else None


def ngram_keys(ids: np.ndarray, id_bits: int | None = None, order: int = 0) -> np.ndarray:
    """Keys of n-grams ``ids [N, n]`` (word ids, oldest first): int64 ``[N]``. With ``id_bits``
    (:func:`packed_id_bits` of the LM's size and ``order``), ``n`` above the ids packed ``id_bits`` apiece (exact);
    without, a two-lane hash whose start value is ``n``. Either way an n-gram never shares a key with a shorter
    one."""
    ids = np.asarray(ids, np.int64)
    if id_bits is not None:
        key = np.zeros(ids.shape[0], np.int64)
        for j in range(ids.shape[1]):
            key = (key << id_bits) | (ids[:, j] + 1)
        return key | (np.int64(ids.shape[1]) << (order * id_bits))
    lanes = []
    for prime, mult in zip(PRIMES, WORD_ID_MULTIPLIERS):
        lane = np.full(ids.shape[0], ids.shape[1], np.int64)
        for j in range(ids.shape[1]):
            lane = (lane * mult + ids[:, j] + 1) % prime
        lanes.append(lane)
    return combine_lanes(*lanes)


@dataclass
class NGramLM:
    """``words[i]`` is word id ``i``; ``ngrams[n - 1]`` holds the n-grams of order ``n`` as word ids ``[N_n, n]`` with
    their ``log10_probs [N_n]`` and ``log10_backoffs [N_n]`` (0 where the ARPA file gives none)."""

    words: list[str]
    ngrams: list[np.ndarray]
    log10_probs: list[np.ndarray]
    log10_backoffs: list[np.ndarray]

    def __post_init__(self) -> None:
        self.index = {w: i for i, w in enumerate(self.words)}
        for name in (UNK, BOS, EOS):
            if name not in self.index:
                raise ModelError(f"the language model has no {name} word")
        self.id_bits = packed_id_bits(len(self.words), self.order)
        keys = np.concatenate([self.keys(g) for g in self.ngrams])
        order = np.argsort(keys, kind="stable")
        self._keys = keys[order]
        if np.any(self._keys[1:] == self._keys[:-1]):  # a repeated n-gram or (never seen) a hash collision
            raise ModelError("the language model lists an n-gram twice")
        self._probs = np.concatenate(self.log10_probs).astype(np.float64)[order]
        self._backoffs = np.concatenate(self.log10_backoffs).astype(np.float64)[order]

    @property
    def order(self) -> int:
        return len(self.ngrams)

    def keys(self, ids: np.ndarray) -> np.ndarray:
        """This LM's keys of n-grams ``ids [N, n]`` (:func:`ngram_keys`)."""
        return ngram_keys(ids, self.id_bits, self.order)

    @property
    def unk(self) -> int:
        return self.index[UNK]

    @property
    def bos(self) -> int:
        return self.index[BOS]

    @property
    def eos(self) -> int:
        return self.index[EOS]

    def word_id(self, word: str) -> int:
        return self.index.get(word, self.unk)

    def table(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(keys, log10_probs, log10_backoffs)`` of every n-gram, keys sorted: what the graph's table holds."""
        return self._keys, self._probs, self._backoffs

    def _lookup(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        pos = np.clip(np.searchsorted(self._keys, keys), 0, len(self._keys) - 1)
        found = self._keys[pos] == keys
        return found, np.where(found, self._probs[pos], 0.0), np.where(found, self._backoffs[pos], 0.0)

    def log10_prob(self, context: list[int] | tuple[int, ...], word: int) -> float:
        """``log10 p(word | context)`` (context: word ids, oldest first; only the last ``order - 1`` count)."""
        context = list(context)[-(self.order - 1):] if self.order > 1 else []
        _, score, _ = self._lookup(self.keys(np.array([[word]])))
        score = float(score[0])
        # Upward: an n-gram that is listed replaces the lower-order estimate; one that is not adds its context's
        # back-off weight (0 for a context that is not listed either).
        for n in range(2, len(context) + 2):
            gram = [*context[len(context) - n + 1:], word]
            found, prob, _ = self._lookup(self.keys(np.array([gram])))
            if found[0]:
                score = float(prob[0])
            else:
                _, _, backoff = self._lookup(self.keys(np.array([gram[:-1]])))
                score += float(backoff[0])
        return score

    def save(self, path: str | os.PathLike) -> Path:
        """Write the model as ``.npz`` (atomically)."""
        path = Path(path)
        arrays: dict[str, np.ndarray] = {
            "words": np.frombuffer("\n".join(self.words).encode("utf-8"), np.uint8)}
        for n, (ids, probs, backoffs) in enumerate(zip(self.ngrams, self.log10_probs, self.log10_backoffs), 1):
            arrays[f"ids{n}"] = ids.astype(np.int32)
            arrays[f"prob{n}"] = probs.astype(np.float32)
            arrays[f"backoff{n}"] = backoffs.astype(np.float32)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez_compressed(f, **arrays)
            os.chmod(tmp, 0o644)  # mkstemp's file is private; a model folder is read by others (a server, a CI user)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path


def load_ngram_lm(path: str | os.PathLike) -> NGramLM:
    """An :class:`NGramLM` from ``.npz`` (:meth:`NGramLM.save`) or an ARPA file (``.arpa``, ``.arpa.gz``)."""
    path = Path(path)
    if not path.is_file():
        raise ModelError("language model not found", str(path))
    if path.suffix == ".npz":
        try:
            with np.load(path) as data:
                words = bytes(data["words"]).decode("utf-8").split("\n")
                order = sum(1 for k in data.files if k.startswith("ids"))
                return NGramLM(words, [data[f"ids{n}"] for n in range(1, order + 1)],
                               [data[f"prob{n}"] for n in range(1, order + 1)],
                               [data[f"backoff{n}"] for n in range(1, order + 1)])
        except (OSError, ValueError, KeyError) as exc:
            raise ModelError(f"not a language model file: {exc}", str(path)) from exc
    with open(path, "rb") as f:
        head = f.read(64)
    if path.suffix != ".gz" and not head.lstrip().startswith(b"\\data\\"):
        raise ModelError("not a language model this toolkit reads (an ARPA file or the .npz that `speech lm` "
                         "writes; a KenLM binary cannot be read: build the LM again with `speech lm`)", str(path))
    return read_arpa(path)


def read_arpa(path: str | os.PathLike) -> NGramLM:
    """Parse an ARPA back-off LM (plain or gzip)."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    words: list[str] = []
    index: dict[str, int] = {}
    ngrams: list[list[list[int]]] = []
    probs: list[list[float]] = []
    backoffs: list[list[float]] = []
    order = 0
    with opener(path, "rt", encoding="utf-8") as f:
        for line_number, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith("ngram ") or line == "\\data\\":
                continue
            if line.startswith("\\") and line.endswith("-grams:"):
                order = int(line[1:-len("-grams:")])
                if order != len(ngrams) + 1:
                    raise ModelError(f"line {line_number}: {order}-grams out of order", str(path))
                ngrams.append([]), probs.append([]), backoffs.append([])
                continue
            if line == "\\end\\":
                break
            if order == 0:
                raise ModelError(f"line {line_number}: not an ARPA language model", str(path))
            fields = line.split()
            if len(fields) not in (order + 1, order + 2):
                raise ModelError(f"line {line_number}: expected {order} words and a log10 probability", str(path))
            gram = fields[1:order + 1]
            if order == 1:
                index[gram[0]] = len(words)
                words.append(gram[0])
            try:
                ids = [index[w] for w in gram]
            except KeyError as exc:
                raise ModelError(f"line {line_number}: word {exc} is not among the unigrams", str(path)) from None
            ngrams[-1].append(ids)
            probs[-1].append(float(fields[0]))
            backoffs[-1].append(float(fields[order + 1]) if len(fields) == order + 2 else 0.0)
    if not ngrams:
        raise ModelError("not an ARPA language model (no \\1-grams: section)", str(path))
    return NGramLM(words, [np.array(g, np.int32).reshape(-1, n) for n, g in enumerate(ngrams, 1)],
                   [np.array(p, np.float32) for p in probs], [np.array(b, np.float32) for b in backoffs])
