"""``speech lm --text T --output lm.npz``: build an n-gram language model from text with KenLM's lmplz
(:func:`speech.lm.build_ngram_lm`), the text normalised with the model vocabulary's alphabet unless ``--raw``; or
``--from-arpa`` an existing ARPA model (e.g. a published one) into the ``.npz`` that decoding reads.
Put it in a model folder as ``lm.npz`` (with the ``decoder`` section of its ``config.json``), or pass ``--lm``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from speech.cli import setup_logging
from speech.errors import ModelError
from speech.lm import KenLMNotFoundError, build_ngram_lm
from speech.ngram import read_arpa
from speech.text import Vocabulary

EXAMPLES = """examples:
  speech lm --text sentences.txt --output lm.npz                  3-gram, for decoding
  speech lm --text sentences.txt --output lm.arpa --arpa --order 4 --prune "0 0 1"
  speech lm --from-arpa 3-gram.arpa.gz --output lm.npz             convert a published ARPA model
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="speech lm", description=__doc__, epilog=EXAMPLES,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--text", help="training text, one sentence a line")
    source.add_argument("--from-arpa", help="an ARPA model (.arpa or .arpa.gz) to convert instead")
    p.add_argument("--output", required=True, help="LM file to write (.npz, or .arpa with --arpa)")
    p.add_argument("--order", type=int, default=3, help="n-gram order (default 3)")
    p.add_argument("--prune", default=None, help='lmplz --prune thresholds, e.g. "0 0 1"')
    p.add_argument("--arpa", action="store_true", help="write ARPA text instead of the .npz")
    p.add_argument("--raw", action="store_true", help="do not normalise the text with the vocabulary")
    p.add_argument("--vocab", default=None, help="vocabulary JSON (default: the standard alphabet)")
    p.add_argument("--memory", default="20%", help="lmplz -S sort memory (default 20%%)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging()
    vocab = None if args.raw else (Vocabulary.load(args.vocab) if args.vocab else Vocabulary())
    try:
        if args.from_arpa:
            path = read_arpa(args.from_arpa).save(args.output)
        else:
            path = build_ngram_lm(args.text, args.output, args.order, args.prune, args.arpa, vocab, args.memory)
    except (KenLMNotFoundError, ModelError, RuntimeError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {path} ({path.stat().st_size} bytes)")
    return 0
