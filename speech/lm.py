"""Build n-gram language models for :mod:`speech.decoding` with KenLM's ``lmplz``.

``build_ngram_lm`` normalises the text with the vocabulary (so LM words match decoder output), runs ``lmplz``
(``--discount_fallback`` so tiny corpora work) and writes the result atomically: the ``.npz`` of
:mod:`speech.ngram` that the beam search and the SavedModel read, or the ARPA text itself. ``lmplz`` is only needed
to build an LM, never to decode; it is looked up in ``$KENLM_BIN``, then ``.tools/kenlm/bin`` of this repository
(where ``scripts/install_kenlm.sh`` builds it), then ``PATH``.

Usage: ``python -m speech lm --text sentences.txt --output lm.npz --order 3``
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from speech.ngram import read_arpa
from speech.text import Vocabulary

REPO_ROOT = Path(__file__).resolve().parents[1]
TOOLS_BIN = REPO_ROOT / ".tools" / "kenlm" / "bin"
DEFAULT_VOCAB = Vocabulary()


class KenLMNotFoundError(FileNotFoundError):
    """lmplz is not installed."""


def find_kenlm_binary(name: str) -> Path:
    """Path of a KenLM program (``lmplz``) from ``$KENLM_BIN``, ``.tools/kenlm/bin`` or PATH."""
    candidates = []
    if os.environ.get("KENLM_BIN"):
        candidates.append(Path(os.environ["KENLM_BIN"]) / name)
    candidates.append(TOOLS_BIN / name)
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which(name)
    if found:
        return Path(found)
    raise KenLMNotFoundError(
        f"KenLM binary '{name}' not found in $KENLM_BIN, {TOOLS_BIN} or PATH: run scripts/install_kenlm.sh"
    )


def _normalized_lines(text_file: str | Path, vocab: Vocabulary | None) -> Iterator[str]:
    """Lines of ``text_file``; normalised, and words with characters outside ``vocab`` dropped, if given."""
    allowed = set(vocab.chars) if vocab is not None else set()
    with open(text_file, encoding="utf-8") as f:
        for line in f:
            if vocab is None:
                line = " ".join(line.split())
            else:
                line = " ".join(w for w in vocab.normalize(line).split() if set(w) <= allowed)
            if line:
                yield line


def unigrams_from_text(text_file: str | Path, vocab: Vocabulary | None = DEFAULT_VOCAB) -> list[str]:
    """Sorted distinct words of ``text_file`` after the same normalisation as :func:`build_ngram_lm`."""
    return sorted({w for line in _normalized_lines(text_file, vocab) for w in line.split()})


def _run(cmd: list[str], **kwargs) -> None:
    result = subprocess.run(cmd, stderr=subprocess.PIPE, text=True, **kwargs)
    if result.returncode != 0:
        tail = "\n".join(result.stderr.strip().splitlines()[-15:])
        raise RuntimeError(f"{Path(cmd[0]).name} failed (exit {result.returncode}):\n{tail}")


def build_ngram_lm(
    text_file: str,
    output: str,
    order: int = 3,
    prune: str | None = None,
    arpa: bool = False,
    vocab: Vocabulary | None = DEFAULT_VOCAB,
    memory: str = "20%",
) -> Path:
    """Train an ``order``-gram LM on ``text_file`` (one sentence a line) and write it to ``output``.

    ``prune``: lmplz's ``--prune`` thresholds, e.g. ``"0 0 1"``. ``arpa``: write the ARPA text rather than the
    ``.npz`` that decoding loads fastest. ``vocab``: normalise the text with it (``None``: use the text as it
    is). ``memory``: lmplz's ``-S`` sort memory (it allocates all of it up front, so small corpora run faster with
    e.g. ``"64M"``). Returns the output path.
    """
    if order < 1:
        raise ValueError(f"order must be >= 1, got {order}")
    lmplz = find_kenlm_binary("lmplz")
    out = Path(output)
    out.parent.mkdir(parents=True, exist_ok=True)
    words: set[str] = set()
    # Temp files live next to the output so the final rename is atomic (same filesystem).
    with tempfile.TemporaryDirectory(prefix=".lm-", dir=out.parent) as tmp:
        tmpdir = Path(tmp)
        corpus = tmpdir / "corpus.txt"
        with open(corpus, "w", encoding="utf-8") as f:
            for line in _normalized_lines(text_file, vocab):
                words.update(line.split())
                f.write(line + "\n")
        if not words:
            raise ValueError(f"{text_file}: no usable text for a language model")
        arpa_file = tmpdir / "lm.arpa"
        cmd = [str(lmplz), "-o", str(order), "--discount_fallback", "-S", memory, "-T", str(tmpdir)]
        if prune:
            cmd += ["--prune", *prune.split()]
        with open(corpus, "rb") as stdin, open(arpa_file, "wb") as stdout:
            _run(cmd, stdin=stdin, stdout=stdout)
        result = arpa_file if arpa else read_arpa(arpa_file).save(tmpdir / "lm.npz")
        result.chmod(0o644)
        os.replace(result, out)
    return out
