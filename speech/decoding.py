"""CTC decoding: one interface (:class:`Decoder`) for greedy and beam search, with optional KenLM fusion.

Every decoder takes log-probabilities ``[T, C]`` (log-softmax of the acoustic model, valid frames only,
``C = vocab.num_classes``, blank = last class) and returns a :class:`Hypothesis` with word timings.
Times are in seconds: ``frame * frame_duration`` where ``frame_duration`` is the duration of one *output*
frame of the model (after any subsampling).

Greedy decoding (exact definition; the TensorFlow graph mirrors it op for op):

1. best path: ``a[t] = argmax_c log_probs[t, c]`` (ties go to the lowest class index, as numpy and
   ``tf.argmax`` do on CPU), and ``m[t] = log_probs[t, a[t]]``;
2. maximal runs of equal ``a[t]`` collapse to one token; blank tokens are dropped (so a blank between two
   equal letters keeps both: ``l _ l`` -> ``ll``);
3. token probability = ``max over the token's run of exp(m[t])``;
4. words = maximal runs of non-space tokens; word ``start = first frame of its first token's run *
   frame_duration``, ``end = (last frame of its last token's run + 1) * frame_duration``; word confidence =
   mean of its token probabilities;
5. text = the words joined by one space (leading, trailing and repeated spaces vanish);
6. utterance confidence = ``exp(sum_t m[t] / max(T, 1))``: the per-frame geometric mean of the best
   path's probability. It is defined for an empty transcript too, and is 1.0 for ``T == 0``.

Nothing is rounded.

Beam search (:class:`BeamSearchDecoder`) is the CTC prefix beam search of :mod:`speech.prefix_search`
(pyctcdecode's algorithm), optionally fused with a word n-gram LM (:mod:`speech.ngram`; shallow fusion:
``score = acoustic + alpha * lm_log10_prob * ln(10) + beta * words``) and with hotwords, run as TensorFlow graph ops
(:mod:`speech.tf_prefix_search`, the same function the SavedModel runs). Only its text is used: the text is then
force-aligned to the frames (Viterbi CTC alignment, :func:`ctc_align`) and the aligned path goes through greedy
rules 2-6 in place of the argmax path. So word timings and confidences follow the greedy conventions exactly, and
the utterance confidence is the per-frame geometric mean of the best path that spells the chosen text. When the
beam returns the greedy text, the best such path is the argmax path and the hypothesis equals greedy's (up to
argmax ties); when the LM overrules the acoustic model, the confidence drops. When the argmax path spells no letter
at all (silence), the result is greedy's empty hypothesis: an LM's word bonus never puts words into silence.
``blank_penalty`` (natural-log units, default 0) is taken off the blank's log-probability in every frame before all
of this, and each frame renormalised (:func:`penalize_blank`): a model trained on synthetic voices under-emits
letters on real ones, and a small penalty gives back letters it heard but ranked below the blank (the "blank
penalty" of k2/sherpa decoders). (The search's own word frames are not used: they come from whichever alignment
survived its prefix merges, and were seen off by several frames on noisy input.)

Decoding needs nothing beyond TensorFlow and numpy, hotwords included.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Protocol, runtime_checkable

import numpy as np

from speech.prefix_search import HOTWORD_WEIGHT
from speech.text import Vocabulary

log = logging.getLogger(__name__)

# pyctcdecode's own default is 100. The bundled model (stage 29) at 64 against 128, scored by `speech compare`:
# real speech (../shared/realdev, 169 clips) WER 0.908 against 0.921 (64 better), synthetic test split 0.2324
# against 0.2305 (no clear difference); 96 was no better than 64. The search's cost is about linear in the width
# (docs/experiments.md, "Decoding cost (session 29)").
DEFAULT_BEAM_WIDTH = 64
DEFAULT_HOTWORD_WEIGHT = HOTWORD_WEIGHT


@dataclass(frozen=True)
class DecodingOptions:
    """How a model's log-probabilities become text; a model folder keeps its own as the ``decoder`` section of
    its ``config.json`` (:meth:`to_config`), its LM as ``lm.npz`` beside it.

    ``beam_width`` 1 with no ``lm_path`` is greedy decoding (the SavedModel's in-graph twin), which takes none of
    the other settings. Otherwise a beam search (``beam_width`` 1 with an LM: :data:`DEFAULT_BEAM_WIDTH`) with
    shallow LM fusion (``alpha``, ``beta``), a ``blank_penalty`` (:func:`penalize_blank`) and ``hotwords``. The
    decoding search (:func:`speech.transcribe.search_variants`) reads the audio under each feature hop of
    ``hop_lengths`` (speaking rate) and mel filterbank top edge of ``fmaxes`` (vocal tract; None: Nyquist) and keeps
    the best-scoring decode, ``letter_bonus`` added per letter; empty: the model's own features only.
    """

    beam_width: int = 1
    lm_path: str | None = None
    alpha: float = 0.5
    beta: float = 1.0
    blank_penalty: float = 0.0
    hotwords: tuple[str, ...] = ()
    hotword_weight: float = DEFAULT_HOTWORD_WEIGHT
    hop_lengths: tuple[int, ...] = ()
    fmaxes: tuple[float | None, ...] = ()
    letter_bonus: float = 0.0

    def __post_init__(self) -> None:
        # Lists from JSON or a caller become tuples: options are hashable and compare by value.
        for name in ("hotwords", "hop_lengths", "fmaxes"):
            object.__setattr__(self, name, tuple(getattr(self, name) or ()))
        if self.lm_path is not None:
            object.__setattr__(self, "lm_path", str(self.lm_path))
        if self.beam_width < 1:
            raise ValueError(f"beam_width must be >= 1, got {self.beam_width}")
        if not (math.isfinite(self.blank_penalty) and self.blank_penalty >= 0):
            raise ValueError(f"blank_penalty must be a finite number >= 0, got {self.blank_penalty}")

    @property
    def greedy(self) -> bool:
        return self.beam_width <= 1 and self.lm_path is None

    def updated(self, **changes) -> DecodingOptions:
        """A copy with the given fields changed; ``None`` values leave a field as it is (unset CLI flags)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    def to_config(self) -> dict:
        """The ``decoder`` section of a model's ``config.json``: every setting but the LM's path."""
        config = asdict(self)
        del config["lm_path"]
        return {k: list(v) if isinstance(v, tuple) else v for k, v in config.items()}

    @classmethod
    def from_config(cls, section: dict, lm_path: str | None = None) -> DecodingOptions:
        """Options from a ``decoder`` config section (other keys, such as tuning figures, are ignored)."""
        names = {f.name for f in fields(cls)} - {"lm_path"}
        return cls(lm_path=lm_path, **{k: v for k, v in section.items() if k in names and v is not None})


@dataclass
class Word:
    word: str
    start: float  # seconds
    end: float  # seconds
    confidence: float  # 0..1

    def shifted(self, seconds: float, limit: float = math.inf) -> Word:
        """The word ``seconds`` later (a segment's offset, the edge silence cut), its times at most ``limit``: the
        end of the audio it was heard in (its last output frame may reach past it)."""
        return Word(self.word, min(self.start + seconds, limit), min(self.end + seconds, limit), self.confidence)

    def to_json(self) -> dict:
        """As the CLI, the Beam job and the SavedModel write a word: seconds to 3 decimals, confidence to 4."""
        return {"word": self.word, "start": round(self.start, 3), "end": round(self.end, 3),
                "confidence": round(float(self.confidence), 4)}


@dataclass
class Hypothesis:
    text: str
    confidence: float  # 0..1
    words: list[Word] = field(default_factory=list)
    # The beam search's own objective (acoustic log-probability + alpha * LM + beta * words); None from greedy.
    # Not part of equality: the same words at the same times are the same transcript, however they were found.
    score: float | None = field(default=None, compare=False)


def best_hypothesis(candidates: Sequence[tuple[Hypothesis, float]], letter_bonus: float = 0.0) -> Hypothesis:
    """The highest-scoring of several decodes of the same audio, each ``(hypothesis, time scale)``, its word times
    multiplied by its scale (a decode of features at hop ``h`` by a decoder built for hop ``h0`` has scale
    ``h / h0``). Used by the decoding search over feature variants (hop and mel filterbank edge;
    :func:`speech.transcribe.search_variants`): the decoding objective picks the speaking rate and the warp, as
    maximum likelihood picks a speaker's warp factor in VTLN.

    ``letter_bonus`` is added to a candidate's score per letter of its text, for this choice only: every letter
    costs a decode some log-probability, so a raw score prefers the candidate that dropped letters (deletions are
    most of the errors on voices faster than the training ones); the bonus is tuned on dev, as the LM's word bonus
    is."""
    if not candidates:
        raise ValueError("no candidate hypotheses")

    def key(candidate: tuple[Hypothesis, float]) -> float:
        hyp = candidate[0]
        return -np.inf if hyp.score is None else hyp.score + letter_bonus * (len(hyp.text) - hyp.text.count(" "))

    hyp, scale = max(candidates, key=key)
    if scale == 1.0:
        return hyp
    words = [Word(w.word, w.start * scale, w.end * scale, w.confidence) for w in hyp.words]
    return Hypothesis(hyp.text, hyp.confidence, words, hyp.score)


@runtime_checkable
class Decoder(Protocol):
    def decode(self, log_probs: np.ndarray) -> Hypothesis:
        """Decode one utterance: ``log_probs`` ``[T, C]`` log-softmax over the valid frames only."""
        ...

    def decode_batch(self, log_probs: np.ndarray, lengths: np.ndarray) -> list[Hypothesis]:
        """Decode a padded batch ``[B, T, C]``; ``lengths[b]`` valid frames of row ``b``."""
        ...


def _check_matrix(log_probs: np.ndarray, vocab: Vocabulary) -> np.ndarray:
    log_probs = np.asarray(log_probs)
    if log_probs.ndim != 2 or log_probs.shape[1] != vocab.num_classes:
        raise ValueError(
            f"log_probs must have shape [T, {vocab.num_classes}] (characters + blank), got {log_probs.shape}"
        )
    return log_probs


def penalize_blank(log_probs: np.ndarray, penalty: float, blank: int) -> np.ndarray:
    """``log_probs`` with ``penalty`` taken off the blank's log-probability in every frame, each frame renormalised
    (a log-softmax over the changed scores). ``penalty=0`` returns the input unchanged."""
    if not penalty:
        return log_probs
    out = np.array(log_probs, dtype=np.float64, copy=True)
    out[:, blank] -= penalty
    out -= np.logaddexp.reduce(out, axis=1, keepdims=True)
    return out.astype(log_probs.dtype, copy=False)


def _split_batch(log_probs: np.ndarray, lengths: np.ndarray) -> list[np.ndarray]:
    log_probs = np.asarray(log_probs)
    lengths = np.asarray(lengths).reshape(-1)
    if log_probs.ndim != 3 or lengths.shape[0] != log_probs.shape[0]:
        raise ValueError(f"need log_probs [B, T, C] and lengths [B], got {log_probs.shape} and {lengths.shape}")
    if np.any(lengths < 0) or np.any(lengths > log_probs.shape[1]):
        raise ValueError(f"lengths must lie in [0, {log_probs.shape[1]}], got {lengths.tolist()}")
    return [log_probs[b, : int(n)] for b, n in enumerate(lengths)]


def _words_from_path(
    path: np.ndarray, path_log_probs: np.ndarray, vocab: Vocabulary, frame_duration: float
) -> tuple[str, float, list[Word]]:
    """Text, confidence and words of a frame-level path (class per frame) by the greedy rules 2-6."""
    num_frames = len(path)
    # Geometric mean of the path's per-frame probabilities; exp(0) = 1.0 when there are no frames.
    confidence = float(np.exp(np.sum(path_log_probs, dtype=np.float64) / max(num_frames, 1)))
    if num_frames == 0:
        return "", confidence, []
    # Runs of equal class: start indices, exclusive ends, and the max log-prob within each run.
    starts = np.flatnonzero(np.concatenate(([True], path[1:] != path[:-1])))
    ends = np.append(starts[1:], num_frames)
    run_max = np.maximum.reduceat(path_log_probs, starts)
    keep = path[starts] != vocab.blank
    words: list[Word] = []
    chars: list[str] = []
    probs: list[float] = []
    word_start = word_end = 0

    def close_word() -> None:
        if chars:
            words.append(
                Word("".join(chars), word_start * frame_duration, word_end * frame_duration, sum(probs) / len(probs))
            )
            chars.clear()
            probs.clear()

    for token, start, end, lp in zip(path[starts][keep], starts[keep], ends[keep], run_max[keep]):
        char = vocab.chars[token]
        if char == " ":
            close_word()
            continue
        if not chars:
            word_start = int(start)
        chars.append(char)
        probs.append(math.exp(float(lp)))
        word_end = int(end)
    close_word()
    return " ".join(w.word for w in words), confidence, words


class GreedyDecoder:
    """Best-path decoding, exactly as defined in the module docstring."""

    def __init__(self, vocab: Vocabulary, frame_duration: float):
        self.vocab = vocab
        self.frame_duration = float(frame_duration)

    def decode(self, log_probs: np.ndarray) -> Hypothesis:
        log_probs = _check_matrix(log_probs, self.vocab)
        best = np.argmax(log_probs, axis=1)
        frame_max = np.take_along_axis(log_probs, best[:, None], axis=1)[:, 0]
        return Hypothesis(*_words_from_path(best, frame_max, self.vocab, self.frame_duration))

    def decode_batch(self, log_probs: np.ndarray, lengths: np.ndarray) -> list[Hypothesis]:
        return [self.decode(x) for x in _split_batch(log_probs, lengths)]


_ALIGN_FLOOR = math.log(1e-30)  # keeps every path finite, so only infeasibility (a bug) gives -inf


def ctc_align(log_probs: np.ndarray, text: str, vocab: Vocabulary) -> np.ndarray:
    """Viterbi forced alignment: the most probable frame path (class per frame) that the greedy rules turn
    into ``text`` (words separated by single spaces). For the greedy transcript it is the argmax path itself.

    The state chain is CTC's (letters with blanks between, skippable between different letters), widened so
    that the spaces the greedy rules ignore may appear: before the first word and after the last, any of
    blank/space; between words, blanks, then at least one space, then any of blank/space.
    """
    blank, space = vocab.blank, vocab.chars.index(" ")
    index = {c: i for i, c in enumerate(vocab.chars)}
    # (class a, class b, may be entered from two states back): the state emits the likelier of a and b.
    states = [(blank, space, False)]  # leading gap
    for w, word in enumerate(text.split()):
        if w:
            states += [(blank, blank, False), (space, space, True), (blank, space, False)]  # gap: _* ' '+ [_ ]*
        for i, char in enumerate(word):
            if i:
                states.append((blank, blank, False))
            skip = (i > 0 and char != word[i - 1]) or (i == 0 and w > 0)
            states.append((index[char], index[char], skip))
    if len(states) > 1:
        states.append((blank, space, False))  # trailing gap
    class_a, class_b, can_skip = (np.array(column) for column in zip(*states))
    num_frames, num_states = log_probs.shape[0], len(states)
    score_a = log_probs[:, class_a].astype(np.float64)
    score_b = log_probs[:, class_b].astype(np.float64)
    emit = np.maximum(np.maximum(score_a, score_b), _ALIGN_FLOOR)
    emit_class = np.where(score_a >= score_b, class_a, class_b)
    back = np.zeros((num_frames, num_states), np.int8)  # how many states back the best predecessor is
    score = np.full(num_states, -np.inf)
    score[:2] = emit[0, :2]  # start in the leading gap or on the first letter
    # Each frame's candidates (stay, advance one, skip one), in one array reused from frame to frame: the entries
    # no path can come from stay -inf.
    choices = np.full((3, num_states), -np.inf)
    skips = can_skip[2:]
    for t in range(1, num_frames):
        choices[0] = score
        choices[1, 1:] = score[:-1]
        np.copyto(choices[2, 2:], score[:-2], where=skips)
        back[t] = np.argmax(choices, axis=0)
        np.max(choices, axis=0, out=score)  # the value at back[t]
        score += emit[t]
    # End in the trailing gap or on the last letter.
    last = num_states - 1 if num_states == 1 or score[-1] >= score[-2] else num_states - 2
    if not np.isfinite(score[last]):
        raise RuntimeError(f"cannot align {text!r} to {num_frames} frames")
    path = np.empty(num_frames, np.int64)
    for t in range(num_frames - 1, -1, -1):
        path[t] = emit_class[t, last]
        last -= int(back[t, last])  # int: numpy would keep int8 and overflow past 127 states
    return path


class BeamSearchDecoder:
    """CTC prefix beam search, fused with a word n-gram LM when ``lm_path`` is given (an ``.npz`` from ``speech lm``
    or an ARPA file): the search :mod:`speech.prefix_search` defines, run as TensorFlow graph ops
    (:func:`speech.tf_prefix_search.prefix_beam_search`, the function the SavedModel runs in its graph), a batch
    of utterances at a time. ``hotwords`` (phrases) steer the same search (:mod:`speech.prefix_search` defines
    their scores; ``hotword_weight`` 0 turns them off).
    """

    def __init__(
        self,
        vocab: Vocabulary,
        frame_duration: float,
        beam_width: int = DEFAULT_BEAM_WIDTH,
        lm_path: str | None = None,
        alpha: float = 0.5,
        beta: float = 1.0,
        blank_penalty: float = 0.0,
        hotwords: Sequence[str] = (),
        hotword_weight: float = DEFAULT_HOTWORD_WEIGHT,
    ):
        from speech.ngram import load_ngram_lm
        from speech.prefix_search import hotword_phrases

        if beam_width < 1:
            raise ValueError(f"beam_width must be >= 1, got {beam_width}")
        if not (math.isfinite(blank_penalty) and blank_penalty >= 0):
            raise ValueError(f"blank_penalty must be a finite number >= 0, got {blank_penalty}")
        self.vocab = vocab
        self.frame_duration = float(frame_duration)
        self.beam_width = int(beam_width)
        self.lm_path = None if lm_path is None else str(lm_path)
        self.alpha = float(alpha)
        self.beta = float(beta)
        self.blank_penalty = float(blank_penalty)
        # Words and phrases to favour (names, jargon; in the LM or not): the search adds hotword_weight per phrase
        # said and part of it per partial word.
        self.hotwords = [h.strip() for h in hotwords if h.strip()]
        self.hotword_weight = float(hotword_weight)
        hotword_phrases(self.hotwords, vocab)  # a ValueError names hotwords the model cannot spell
        self.lm = load_ngram_lm(self.lm_path) if self.lm_path is not None else None
        self._build()

    def _build(self) -> None:
        import tensorflow as tf

        from speech.tf_prefix_search import HotwordTables, LMTables, SearchSettings, prefix_beam_search

        tables = LMTables(self.lm, self.vocab) if self.lm is not None else None
        hot = HotwordTables(self.hotwords, self.vocab, self.hotword_weight) \
            if self.hotwords and self.hotword_weight else None
        vocab, width = self.vocab, self.beam_width
        scalar = tf.TensorSpec([], tf.float64)

        # The LM weights are inputs, so tuning them does not trace the search again.
        def search(log_probs, lengths, alpha, beta):
            settings = SearchSettings(alpha=alpha, beta=beta, beam_width=width)
            return prefix_beam_search(log_probs, lengths, vocab, settings, tables, hot)[1:]

        self._search = tf.function(search, input_signature=[
            tf.TensorSpec([None, None, vocab.num_classes], tf.float32), tf.TensorSpec([None], tf.int32), scalar,
            scalar])

    def set_lm_weights(self, alpha: float, beta: float) -> None:
        """Change the LM weights without reloading the LM (used by :func:`tune_lm_weights`)."""
        self.alpha, self.beta = float(alpha), float(beta)

    def decode(self, log_probs: np.ndarray) -> Hypothesis:
        log_probs = _check_matrix(log_probs, self.vocab)
        return self.decode_batch(log_probs[None], np.array([log_probs.shape[0]]))[0]

    def _search_texts(self, rows: list[np.ndarray]) -> list[tuple[str, float] | None]:
        """``(text, score)`` of the search's best spoken beam per row, None where no beam says a word."""
        batch = np.zeros((len(rows), max(len(x) for x in rows), self.vocab.num_classes), np.float32)
        for i, x in enumerate(rows):
            batch[i, :len(x)] = x
        lengths = np.array([len(x) for x in rows], np.int32)
        totals, found, letters = (t.numpy() for t in self._search(batch, lengths, self.alpha, self.beta))
        chars = self.vocab.chars
        return [("".join(chars[c] for c in row if c >= 0).strip(), float(total)) if ok else None
                for total, ok, row in zip(totals, found, letters)]

    def decode_batch(self, log_probs: np.ndarray, lengths: np.ndarray) -> list[Hypothesis]:
        rows = [penalize_blank(_check_matrix(x, self.vocab), self.blank_penalty, self.vocab.blank)
                for x in _split_batch(log_probs, lengths)]
        space = self.vocab.chars.index(" ")
        # Where the acoustic model hears no letter in any frame (silence), the LM's word bonus must not invent one.
        best = [np.argmax(x, axis=1) for x in rows]
        heard = [i for i, path in enumerate(best) if np.any((path != self.vocab.blank) & (path != space))]
        found = dict(zip(heard, self._search_texts([rows[i] for i in heard]))) if heard else {}
        out = []
        for i, x in enumerate(rows):
            if not len(x):
                out.append(Hypothesis("", 1.0, [], 0.0))
            elif found.get(i) is None:
                # No surviving beam says a word, though the acoustic model heard letters: out-of-vocabulary pieces
                # cost a penalty that alpha does not scale, and the best path keeps what was heard.
                out.append(self._best_path(x))
            else:
                text, score = found[i]
                # The search's own word frames would come from whichever alignment survived its prefix merges; a
                # forced alignment of the chosen text gives the greedy conventions.
                path = ctc_align(x, text, self.vocab)
                path_log_probs = np.take_along_axis(x, path[:, None], axis=1)[:, 0]
                aligned, confidence, words = _words_from_path(path, path_log_probs, self.vocab, self.frame_duration)
                if aligned != text:  # cannot happen: the path collapses to the labels by construction
                    raise RuntimeError(f"alignment of {text!r} produced {aligned!r}")
                out.append(Hypothesis(text, confidence, words, score))
        return out

    def _best_path(self, log_probs: np.ndarray) -> Hypothesis:
        """The greedy result, scored as the search would score it: the best path's log-probability."""
        hyp = GreedyDecoder(self.vocab, self.frame_duration).decode(log_probs)
        hyp.score = float(np.max(log_probs, axis=1).sum())
        return hyp

    def close(self) -> None:
        """Release the LM and the compiled search."""
        self._search = self.lm = None


def make_decoder(vocab: Vocabulary, frame_duration: float, options: DecodingOptions | None = None) -> Decoder:
    """The decoder of ``options`` (default: greedy): :class:`GreedyDecoder` for greedy options, else
    :class:`BeamSearchDecoder` (``blank_penalty``: beam search only; greedy decoding stays the plain best path that
    the SavedModel's graph mirrors). The decoding search's settings are the caller's (:mod:`speech.transcribe`).

    An LM with ``beam_width`` 1 uses a beam of ``DEFAULT_BEAM_WIDTH``: a one-wide beam would make the LM
    almost useless, and ``--lm`` alone should just work.
    """
    options = options or DecodingOptions()
    if options.greedy:
        if options.hotwords:
            raise ValueError("hotwords need the beam search: greedy decoding has no search to steer")
        return GreedyDecoder(vocab, frame_duration)
    beam_width = options.beam_width
    if beam_width <= 1:
        log.info("language model given with beam_width=%s: using beam_width=%s", beam_width, DEFAULT_BEAM_WIDTH)
        beam_width = DEFAULT_BEAM_WIDTH
    return BeamSearchDecoder(vocab, frame_duration, beam_width, options.lm_path, options.alpha, options.beta,
                             blank_penalty=options.blank_penalty, hotwords=options.hotwords,
                             hotword_weight=options.hotword_weight)


def word_error_rate(references: Sequence[str], hypotheses: Sequence[str]) -> float:
    """Corpus WER (total word errors / total reference words) with jiwer."""
    import jiwer

    return float(jiwer.wer(list(references), list(hypotheses)))


def tune_lm_weights(
    decoder: BeamSearchDecoder | Callable[[float, float], Decoder],
    log_probs_list: Sequence[np.ndarray],
    references: Sequence[str],
    alphas: Iterable[float] = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0),
    betas: Iterable[float] = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0),
) -> tuple[float, float, float]:
    """Grid-search LM weights on a dev set; returns ``(alpha, beta, wer)`` of the lowest WER.

    ``decoder`` is a :class:`BeamSearchDecoder` with an LM (its weights are reset in place and left at the
    best values) or a factory ``(alpha, beta) -> Decoder``. ``references`` are normalised transcripts.
    Ties keep the first grid point (alphas outer, betas inner, in the order given). Use the dev split only.
    """
    if len(log_probs_list) != len(references):
        raise ValueError(f"{len(log_probs_list)} utterances but {len(references)} references")
    if not references:
        raise ValueError("tuning needs at least one utterance")
    best: tuple[float, float, float] | None = None
    for alpha, beta in itertools.product(list(alphas), list(betas)):
        if isinstance(decoder, BeamSearchDecoder):
            decoder.set_lm_weights(alpha, beta)
            current: Decoder = decoder
        else:
            current = decoder(alpha, beta)
        hypotheses = [current.decode(x).text for x in log_probs_list]
        wer = word_error_rate(references, hypotheses)
        log.info("alpha=%.3f beta=%.3f WER=%.4f", alpha, beta, wer)
        if best is None or wer < best[2]:
            best = (float(alpha), float(beta), wer)
    if best is None:
        raise ValueError("alphas and betas must not be empty")
    if isinstance(decoder, BeamSearchDecoder):
        decoder.set_lm_weights(best[0], best[1])
    return best
