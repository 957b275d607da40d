"""``speech lm --text T --output lm.binary``: build a KenLM n-gram language model from text
(:func:`speech.lm.build_ngram_lm`), the text normalised with the model vocabulary's alphabet unless ``--raw``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from speech.cli import setup_logging
from speech.decoding import UNIGRAMS_SUFFIX
from speech.lm import KenLMNotFoundError, build_ngram_lm
from speech.text import Vocabulary

EXAMPLES = """examples:
  speech lm --text sentences.txt --output lm.binary               3-gram, KenLM binary
  speech lm --text sentences.txt --output lm.arpa --arpa --order 4 --prune "0 0 1"
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="speech lm", description=__doc__, epilog=EXAMPLES,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--text", required=True, help="training text, one sentence a line")
    p.add_argument("--output", required=True, help="LM file to write (.binary, or .arpa with --arpa)")
    p.add_argument("--order", type=int, default=3, help="n-gram order (default 3)")
    p.add_argument("--prune", default=None, help='lmplz --prune thresholds, e.g. "0 0 1"')
    p.add_argument("--arpa", action="store_true", help="write ARPA text instead of KenLM binary")
    p.add_argument("--raw", action="store_true", help="do not normalise the text with the vocabulary")
    p.add_argument("--vocab", default=None, help="vocabulary JSON (default: the standard alphabet)")
    p.add_argument("--memory", default="20%", help="lmplz -S sort memory (default 20%%)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging()
    vocab = None if args.raw else (Vocabulary.load(args.vocab) if args.vocab else Vocabulary())
    try:
        path = build_ngram_lm(args.text, args.output, args.order, args.prune, not args.arpa, vocab, args.memory)
    except (KenLMNotFoundError, RuntimeError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {path} ({path.stat().st_size} bytes) and {path}{UNIGRAMS_SUFFIX}")
    return 0
