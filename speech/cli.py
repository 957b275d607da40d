"""``speech <verb>`` (or ``python -m speech <verb>``): one command-line entry point; each verb's job lives in
``pipelines/`` (installed as ``speech.pipelines``)."""

from __future__ import annotations

import importlib
import logging
import os
import signal
import sys
from collections.abc import Callable, Sequence

from speech.errors import SpeechError

VERBS = {
    "prepare": ("speech.pipelines.prepare", "convert a corpus layout on disk into a JSON-lines manifest"),
    "synth": ("speech.pipelines.synth_corpus", "generate the built-in synthetic English corpus with offline TTS"),
    "featurize": ("speech.pipelines.featurize", "extract features once into TFRecord shards for (many) trainers"),
    "train": ("speech.pipelines.train", "train an LSTM-CTC model from manifests"),
    "evaluate": ("speech.pipelines.evaluate", "WER/CER of a model on a manifest"),
    "compare": ("speech.pipelines.compare", "is one model's WER really lower than another's? (paired bootstrap)"),
    "transcribe": ("speech.pipelines.transcribe", "transcribe audio files, folders, lists or manifests"),
    "export": ("speech.pipelines.export", "export a SavedModel for TensorFlow Serving"),
    "beam": ("speech.pipelines.beam_transcribe", "transcribe at scale with an exported model on Apache Beam"),
    "lm": ("speech.pipelines.lm", "build an n-gram language model from text (KenLM's lmplz) or convert an ARPA one"),
    "build-default": ("speech.pipelines.default_model", "rebuild or rescore the bundled default model"),
}


# The verbs that run TensorFlow (the rest start without importing it).
TENSORFLOW_VERBS = ("featurize", "train", "evaluate", "transcribe", "export", "beam", "build-default")

# Libraries whose INFO lines are noise to a user (Beam's start-up notes); -v lets them through.
QUIET_LOGGERS = ("absl", "h5py", "numba", "apache_beam")


def setup_logging(verbose: bool = False, quiet: bool = False) -> None:
    """Logging to stderr: INFO (``verbose``: DEBUG with the libraries' own lines; ``quiet``: warnings and errors
    only). The first call wins (``speech -v VERB`` configures before the verb's own call)."""
    # TensorFlow's C++ start-up chatter (oneDNN and CPU-feature notes, and "E0000" lines about AVX-512 kernels it
    # does not have) comes before any Python logging: only -v shows it. Set before TensorFlow is imported.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0" if verbose else "3")
    os.environ.setdefault("NUMBA_CACHE_DIR", os.path.join(os.path.expanduser("~"), ".cache", "numba"))
    if logging.getLogger().handlers:
        return
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO,
                        stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S")
    if not verbose:
        for name in QUIET_LOGGERS:
            logging.getLogger(name).setLevel(logging.WARNING)


def import_tensorflow_quietly() -> None:
    """Import TensorFlow with the process's stderr (fd 2) shut: its C++ start-up lines (absl's "All log messages
    before absl::InitializeLog()" and oneDNN's note) are written at import, before TF_CPP_MIN_LOG_LEVEL or any
    Python logging applies. An import error is raised as usual, with stderr back."""
    if "tensorflow" in sys.modules:
        return
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import tensorflow  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


class Terminated(BaseException):
    """SIGTERM (``kill``, a scheduler ending the job), raised in the main thread so that the job unwinds as it does on
    Ctrl-C: its worker pools shut down and its temp files go, instead of the process vanishing mid-write."""


def _terminate(signum: int, frame: object) -> None:
    raise Terminated


def run_job(job: Callable[[], int]) -> int:
    """Run a job; a user error becomes one line on stderr and exit code 2, never a stack trace. Ctrl-C and SIGTERM
    end it cleanly (exit codes 130 and 143, as a shell reports the signals)."""
    try:
        previous = signal.signal(signal.SIGTERM, _terminate)
    except ValueError:  # not the main thread (a job run from a library's thread): leave SIGTERM alone
        previous = None
    try:
        return job()
    except SpeechError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Terminated:
        print("terminated", file=sys.stderr)
        return 143
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # -v/--verbose and -q/--quiet go with every verb, before or after it.
    verbose = any(a in ("-v", "--verbose") for a in argv)
    quiet = any(a in ("-q", "--quiet") for a in argv)
    argv = [a for a in argv if a not in ("-v", "--verbose", "-q", "--quiet")]
    if verbose or quiet:
        setup_logging(verbose=verbose, quiet=quiet and not verbose)
    if argv[:1] == ["--version"]:
        from speech import __version__

        print(f"speech {__version__}")
        return 0
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in VERBS:
        lines = ["usage: speech [-v | -q] <verb> [options]   (speech <verb> --help for each; also python -m speech)",
                 "", "-v: debug logging and the libraries' own messages; -q: warnings and errors only", "", "verbs:"]
        lines += [f"  {verb:<13} {help_}" for verb, (_, help_) in VERBS.items()]
        print("\n".join(lines), file=sys.stdout if argv[:1] in (["-h"], ["--help"]) else sys.stderr)
        return 0 if argv[:1] in (["-h"], ["--help"]) else 2
    if argv[0] in TENSORFLOW_VERBS and not verbose and not {"-h", "--help"} & set(argv):
        setup_logging(quiet=quiet)
        import_tensorflow_quietly()
    module = importlib.import_module(VERBS[argv[0]][0])
    return module.main(argv[1:])
