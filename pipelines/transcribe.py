"""``python -m speech transcribe`` / ``scripts/transcribe.py``: batch transcription.

Inputs: files, folders (recursive), glob patterns, list files (``.txt``/``.lst``: one path a line) and
manifests (``.json``/``.jsonl``). Without ``--output-dir``: one JSON object per input on stdout
(``{"audio_filepath", "error"}`` for one that failed). With it: one file per input and format, mirroring the
input tree, each written atomically; ``--resume`` skips inputs whose outputs all exist, so a killed job loses
nothing finished and does nothing twice.
A bad file never stops the batch: it is reported (stderr summary, ``failures.jsonl``) and the exit
code is 1 when any input failed.
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import logging
import os
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from speech.audio import scan_folder
from speech.cli import run_job, setup_logging
from speech.errors import SpeechError

log = logging.getLogger("speech.transcribe")
STDIN, STDIN_NAME = "-", "stdin"  # the input that reads audio piped to stdin, and the file it is kept in

EXAMPLES = """examples:
  speech transcribe recording.wav                      one JSON line on stdout
  speech transcribe talks/ --output-dir out/ --format all --resume
  speech transcribe corpus.jsonl --output-dir hyp/     keeps each line's reference "text", adds "pred_text"
  speech transcribe talks/ --beam 1                    greedy: fastest
  ffmpeg -i talk.mp4 -f wav - | speech transcribe -     audio piped to stdin
"""


def parse_hop_lengths(text: str) -> list[int]:
    """``--hops 132,140,148``: the feature hops (samples) of the decoding search; one value searches no rate."""
    try:
        hops = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated hop lengths in samples, got {text!r}") from None
    if not hops or any(h <= 0 for h in hops):
        raise argparse.ArgumentTypeError(f"hop lengths must be positive integers, got {text!r}")
    return hops


def add_decoding_arguments(p: argparse.ArgumentParser) -> None:
    """The decoding options every job that transcribes takes (transcribe, evaluate); :func:`transcriber_from_args`
    reads them."""
    p.add_argument("--beam", type=int, help="beam width; 1: greedy (default: the model's own decoding, which "
                   "for the bundled model is a beam search with its language model)")
    p.add_argument("--lm", help="n-gram LM for beam search, .npz (speech lm) or ARPA (default: the model folder's "
                   "lm.npz; 'none': no LM)")
    p.add_argument("--alpha", type=float, help="LM weight of the beam search (default: the model's tuned weight)")
    p.add_argument("--beta", type=float, help="word insertion bonus of the beam search (default: the model's)")
    p.add_argument("--blank-penalty", type=float, help="taken off the CTC blank's log-probability in each frame "
                   "before the beam search: more letters, fewer dropped words (default: the model's)")
    p.add_argument("--hotwords", type=lambda text: [w.strip() for w in text.split(",") if w.strip()], default=[],
                   help="comma-separated words or phrases the beam search favours (names, jargon), e.g. "
                   "'kubernetes,anna karenina'")
    p.add_argument("--hotword-weight", type=float, help="score added per hotword matched (default 10)")
    p.add_argument("--hops", type=parse_hop_lengths,
                   help="feature hops (samples) the beam search decodes at, its best-scoring result kept: the "
                   "speaking-rate search (default: the model's own decoding's)")
    p.add_argument("--no-search", action="store_true", help="decode the model's own features only, with no search "
                   "over hops or mel filterbank edges (several times faster)")
    p.add_argument("--threads", type=int, default=0, help="TensorFlow threads for the network and the search (default "
                   "0: TensorFlow's choice, about one per core); 1 took a third less CPU per audio-second on 2 cores, "
                   "for 10-20%% more wall time")


def decoding_from_args(args: argparse.Namespace):
    """The :class:`speech.decoding.DecodingOptions` that :func:`add_decoding_arguments`'s options ask for, on top of
    the model folder's own; options that do not fit together are a SpeechError."""
    from speech.text import normalize_text
    from speech.transcribe import model_decoding

    # Hotwords typed as people write them ("Anna Karenina", "R2D2") are spelled as transcripts are.
    hotwords = tuple(normalize_text(h) for h in args.hotwords) or None
    try:
        options = model_decoding(args.model, args.beam, args.lm, hotwords=hotwords)
        if not options.greedy:  # greedy decoding takes none of these
            options = options.updated(alpha=args.alpha, beta=args.beta, blank_penalty=args.blank_penalty,
                                      hotword_weight=args.hotword_weight)
        return options.updated(hop_lengths=() if args.no_search else args.hops,
                               fmaxes=() if args.no_search else None)
    except ValueError as e:
        raise SpeechError(str(e)) from None


def transcriber_from_args(args: argparse.Namespace, **options):
    """The :class:`speech.transcribe.Transcriber` that :func:`add_decoding_arguments`'s options ask for (``options``:
    its other arguments); decoding options that do not fit together (e.g. hotwords with greedy) are a SpeechError."""
    from speech.transcribe import Transcriber, set_tensorflow_threads

    set_tensorflow_threads(args.threads)
    decoding = decoding_from_args(args)
    try:
        return Transcriber(args.model, decoding, **options)
    except ValueError as e:
        raise SpeechError(str(e)) from None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="speech transcribe", description=__doc__, epilog=EXAMPLES,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("inputs", nargs="+", help="audio files, folders, glob patterns, list files or manifests; '-': "
                   "audio piped to stdin")
    p.add_argument("--model", help="model folder (default, or 'default': the bundled model)")
    p.add_argument("--output-dir", help="write one file per input and format here")
    p.add_argument("--format", help="with --output-dir: any of txt,jsonl,srt,vtt, comma-separated, or all "
                   "(default: txt,jsonl)")
    p.add_argument("--resume", action="store_true", help="skip inputs whose outputs already exist")
    add_decoding_arguments(p)
    p.add_argument("--jobs", type=int, help="audio decoding processes (default: all cores)")
    p.add_argument("--batch-size", type=int, default=16, help="utterances per network call (default 16)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    return p


def expand_inputs(inputs: list[str], references: dict[str, str] | None = None
                  ) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """``([(audio path, root it is relative to)], [(input, reason)])`` in a stable, de-duplicated order.
    ``references`` (if given) receives each manifest line's reference transcript by audio path."""
    from speech.manifest import iter_manifest

    found: list[tuple[str, str]] = []
    missing: list[tuple[str, str]] = []
    for item in inputs:
        path = Path(item)
        try:
            if path.is_dir():
                found += _scan(path)
            elif path.is_file() and path.suffix.lower() in (".json", ".jsonl"):
                # Outputs mirror the paths below the manifest's folder; a bad line is one failure, not the batch's.
                root = str(path.resolve().parent)
                bad: list[tuple[str, str]] = []
                lines = list(iter_manifest(path, bad_lines=bad))
                missing += bad
                if not lines and not bad:  # an empty input is a failure of its own, as an empty list is
                    missing.append((item, "the manifest has no record"))
                found += [(u.audio_filepath, root) for u in lines]
                if references is not None:
                    references.update((u.audio_filepath, u.text) for u in lines)
            elif path.is_file() and path.suffix.lower() in (".txt", ".lst", ".list"):
                base = path.resolve().parent
                # A list names files by their bytes: a name that is not UTF-8 (Latin-1 from an old tool) still names
                # its file, as it would on the command line (surrogateescape is how Python spells such names).
                text = path.read_bytes().decode("utf-8", "surrogateescape").removeprefix("\ufeff")
                named = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]
                if not named:
                    missing.append((item, "the list names no file"))
                for line in named:
                    p = Path(line) if Path(line).is_absolute() else base / line
                    if p.is_dir():  # a folder in a list is read as a folder on the command line is
                        found += _scan(p)
                    else:
                        found.append((str(p), str(base)))
            elif path.is_file():
                found.append((str(path), str(path.parent)))
            elif glob.has_magic(item):
                matches = sorted(glob.glob(item, recursive=True))
                files = [m for m in matches if os.path.isfile(m)]
                if not files:  # folders alone are not read: say so rather than transcribe nothing without a word
                    missing.append((item, "pattern matched no file" + (" (only folders: name a folder to read "
                                                                        "the audio below it)" if matches else "")))
                found += [(m, _glob_root(item)) for m in files]
            elif path.exists():
                missing.append((item, "not a regular file (a device, pipe or socket); pipe audio to stdin with '-'"))
            else:
                missing.append((item, "file not found"))
        except (OSError, UnicodeError, SpeechError) as e:  # an unreadable list or manifest: that input fails
            missing.append((item, getattr(e, "reason", None) or f"cannot read it ({type(e).__name__}: {e})"))
    seen, unique = set(), []
    for audio, root in found:
        key = os.path.realpath(audio)
        if key not in seen:
            seen.add(key)
            unique.append((audio, root))
    return unique, missing


def _scan(folder: Path) -> list[tuple[str, str]]:
    """``[(audio path, folder)]`` below ``folder``, saying which files the scan left out (not named like audio), so
    none is lost unseen; a file named on the command line is read whatever its name."""
    audio, left = scan_folder(folder)
    if left:
        shown = ", ".join(str(p) for p in left[:3]) + (f" and {len(left) - 3} more" if len(left) > 3 else "")
        log.warning("%s: %d file(s) not named like audio left out (%s); name them directly to transcribe them",
                    printable(str(folder)), len(left), printable(shown))
    return [(str(p), str(folder)) for p in audio]


def _glob_root(pattern: str) -> str:
    """The folder a glob pattern's matches are mirrored below: its leading part without wildcards."""
    parts = Path(pattern).parts
    fixed = next((i for i, part in enumerate(parts) if glob.has_magic(part)), len(parts))
    return str(Path(*parts[:fixed])) if fixed else "."


# The job's own report in the output folder; no input's outputs may take its name.
FAILURES_FILE = "failures.jsonl"
NAME_MAX = 255  # bytes in one file name on Linux, macOS and Windows file systems alike
OUTPUT_SUFFIX_BYTES = len(".jsonl")  # the longest suffix an output gets (speech.outputs.FORMATS)


def output_stems(items: list[tuple[str, str]], output_dir: Path) -> dict[str, Path]:
    """Output path stem per input, mirroring its tree below its root. Inputs that would still share a stem keep
    their extension (``a.wav`` and ``a.flac`` side by side: ``a.wav.txt``), and if that is not enough (one name
    in two folders outside any root) a short hash of their full path, so no output overwrites another."""
    stems: dict[str, Path] = {}
    for audio, root in items:
        rel = Path(os.path.relpath(os.path.abspath(audio), os.path.abspath(root)))
        if rel.parts and rel.parts[0] == "..":
            rel = Path(Path(audio).name)
        stems[audio] = output_dir / rel.with_suffix("")

    def clashing(candidates: dict[str, Path]) -> set[Path]:
        counts = Counter(candidates.values())
        return {s for s, n in counts.items() if n > 1} | {output_dir / Path(FAILURES_FILE).stem}

    clash = clashing(stems)
    stems = {a: (s.with_name(Path(a).name) if s in clash else s) for a, s in stems.items()}
    clash = clashing(stems)
    for audio, stem in stems.items():
        digest = hashlib.sha1(os.path.abspath(audio).encode("utf-8", "surrogateescape")).hexdigest()[:8]
        if stem in clash:
            stem = stems[audio] = stem.with_name(f"{stem.name}.{digest}")
        # A legal input name (up to 255 bytes) plus ".jsonl" may pass the file system's limit: such a name keeps
        # what fits and the path's hash, which keeps it apart from other inputs and the same on a --resume.
        name = os.fsencode(stem.name)
        if len(name) + OUTPUT_SUFFIX_BYTES > NAME_MAX:
            keep = name[:NAME_MAX - OUTPUT_SUFFIX_BYTES - len(digest) - 1].decode("utf-8", "ignore")
            stems[audio] = stem.with_name(f"{keep}.{digest}")
    return stems


def _transcribe(args: argparse.Namespace) -> int:
    from speech.outputs import FORMATS

    if args.resume and not args.output_dir:
        raise SpeechError("--resume needs --output-dir (it skips inputs whose output files exist)")
    if args.format and not args.output_dir:
        raise SpeechError("--format needs --output-dir: without it each input is one JSON line on stdout")
    requested = args.format or "txt,jsonl"
    formats = list(FORMATS) if requested.strip() == "all" else [f.strip() for f in requested.split(",") if f.strip()]
    bad = [f for f in formats if f not in FORMATS]
    if bad:
        raise SpeechError(f"unknown format(s) {bad}; choose from {', '.join(FORMATS)} or all")
    with tempfile.TemporaryDirectory(prefix="speech-stdin-") as tmp:
        stdin_path = _read_stdin(Path(tmp)) if STDIN in args.inputs else None
        inputs = [stdin_path if item == STDIN else item for item in args.inputs]
        return _transcribe_inputs(args, inputs, formats, stdin_path)


def _read_stdin(folder: Path) -> str:
    """Audio piped to stdin (``-``), in a file of ``folder`` named ``stdin`` (any format the decoders sniff)."""
    if sys.stdin is None or sys.stdin.isatty():
        raise SpeechError("'-' reads audio from stdin, but nothing is piped to it (e.g. cat a.wav | speech "
                          "transcribe -)")
    path = folder / STDIN_NAME
    with open(path, "wb") as f:
        shutil.copyfileobj(sys.stdin.buffer, f)
    return str(path)


def _transcribe_inputs(args: argparse.Namespace, inputs: list[str], formats: list[str], stdin_path: str | None) -> int:
    from tqdm import tqdm

    from speech.manifest import atomic_write, remove_stale_temp_files
    from speech.outputs import json_line, render

    references: dict[str, str] = {}
    items, failures = expand_inputs(inputs, references)
    out_dir = Path(args.output_dir) if args.output_dir else None
    stems = output_stems(items, out_dir) if out_dir else {}
    done = 0
    if out_dir and out_dir.is_dir():
        remove_stale_temp_files(out_dir)  # left by a killed run; the finished outputs are whole
    if out_dir and args.resume:
        todo = [a for a, _ in items if not all(Path(f"{stems[a]}.{f}").exists() for f in formats)]
        done = len(items) - len(todo)
    else:
        todo = [a for a, _ in items]
    if not todo and not done and not failures:
        raise SpeechError("no audio input found")

    transcriber = transcriber_from_args(args, batch_size=args.batch_size)
    # disable=None: tqdm turns itself off when stderr is not a terminal (a log file, CI).
    bar = tqdm(total=len(todo), unit="file", disable=True if args.no_progress else None, file=sys.stderr,
               dynamic_ncols=True)
    started, audio_seconds, ok = time.perf_counter(), 0.0, 0
    warned: list[tuple[str, str]] = []
    if out_dir is None:  # on stdout every input gets its object, a failed one too (as failures.jsonl has it)
        for path, reason in failures:
            print(json_line(_failure(path, reason)), flush=True)
    decoded = 0.0  # audio seconds decoded, long files' parts too: the bar moves within a long recording

    def on_audio(seconds: float) -> None:
        nonlocal decoded
        decoded += seconds
        elapsed = time.perf_counter() - started
        bar.set_postfix_str(f"{decoded / 3600:.2f} h audio, {decoded / max(elapsed, 1e-9):.0f}x real time")

    for t in transcriber.transcribe_files(todo, jobs=args.jobs, on_audio=on_audio):
        bar.update()
        if t.error:
            failures.append((STDIN if t.audio_filepath == stdin_path else t.audio_filepath, t.error))
            if out_dir is None:
                print(json_line(_failure(*failures[-1])), flush=True)
            continue
        record = t.to_json()
        if t.audio_filepath == stdin_path:
            record["audio_filepath"] = STDIN
        if t.audio_filepath in references:  # a manifest line: its reference stays, the hypothesis goes beside it
            record = {"audio_filepath": record["audio_filepath"], "duration": record["duration"],
                      "text": references[t.audio_filepath], "pred_text": record["text"],
                      **{k: v for k, v in record.items() if k not in ("audio_filepath", "duration", "text")}}
        try:
            if out_dir is None:
                print(json_line(record), flush=True)
            else:
                for fmt in formats:
                    with atomic_write(f"{stems[t.audio_filepath]}.{fmt}") as f:
                        f.write(render(record, t.words, fmt))
        except (OSError, ValueError) as e:  # e.g. an output path the file system refuses: this file fails
            failures.append((record["audio_filepath"], f"cannot write its output ({type(e).__name__}: {e})"))
            continue
        ok += 1
        if t.warning:
            warned.append((t.audio_filepath, t.warning))
        audio_seconds += t.duration
    bar.close()
    if out_dir:
        with atomic_write(out_dir / FAILURES_FILE) as f:
            for path, reason in failures:
                f.write(json_line(_failure(path, reason)) + "\n")
    elapsed = time.perf_counter() - started
    summary = f"transcribed {ok} file(s), {audio_seconds / 3600:.3f} h of audio in {elapsed:.1f} s"
    if done:
        summary += f"; {done} already done (--resume)"
    summary += f"; {len(failures)} failed"
    if warned:
        summary += f"; {len(warned)} with a warning"
    print(summary, file=sys.stderr)
    _list_files("warning", warned, 20, 'the "warning" field of their JSON records')
    # Without --output-dir there is no failures.jsonl: list them all.
    _list_files("failed", failures, 20 if out_dir else len(failures), "see failures.jsonl")
    return 1 if failures else 0


def _failure(path: str, reason: str) -> dict:
    return {"audio_filepath": path, "error": reason}


def printable(text: str) -> str:
    """``text`` on one line of a UTF-8 terminal: control characters (a newline in a file name) and bytes that are
    not UTF-8 escaped, so that each failure stays one line of stderr."""
    text = text.encode("utf-8", "backslashreplace").decode()
    return "".join(c if c.isprintable() or c == " " else c.encode("unicode_escape").decode() for c in text)


def _list_files(label: str, items: list[tuple[str, str]], shown: int, rest: str) -> None:
    """The first ``shown`` (path, reason) pairs on stderr, then how many more there are and where to find them."""
    for path, reason in items[:shown]:
        print(f"  {label}: {printable(path)}: {reason}", file=sys.stderr)
    if len(items) > shown:
        print(f"  ... and {len(items) - shown} more ({rest})", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging()
    return run_job(lambda: _transcribe(args))
