import numpy as np
import pytest
import soundfile as sf

from speech.decoding import DecodingOptions
from speech.manifest import read_manifest
from speech.transcribe import Transcriber, iter_segments
from tests.conftest import tone_speech


@pytest.fixture(scope="module")
def transcriber(tiny_model):
    return Transcriber(str(tiny_model[0]))


def test_transcribes_training_clips_with_word_timings(transcriber, tiny_model):
    utts = read_manifest(tiny_model[1])
    results = list(transcriber.transcribe_files([u.audio_filepath for u in utts], jobs=1))
    assert [r.audio_filepath for r in results] == [u.audio_filepath for u in utts]
    correct = sum(r.text == u.text for r, u in zip(results, utts))
    assert correct >= len(utts) - 3
    for r in results:
        assert 0 < r.confidence <= 1 and r.duration > 0
        assert [w.word for w in r.words] == r.text.split()
        assert all(0 <= w.start < w.end <= r.duration + 0.05 for w in r.words)
        assert all(a.end <= b.start + 1e-6 for a, b in zip(r.words, r.words[1:]))


def test_same_transcript_for_every_encoding(transcriber, tmp_path):
    import librosa

    wave = tone_speech("stop")
    expected = transcriber.transcribe_waveform(wave).text
    sf.write(tmp_path / "a16.wav", wave, 16000, subtype="PCM_16")
    sf.write(tmp_path / "a24.wav", wave, 16000, subtype="PCM_24")
    sf.write(tmp_path / "f.wav", wave, 16000, subtype="FLOAT")
    sf.write(tmp_path / "st.flac", np.stack([wave, wave], 1), 16000)
    sf.write(tmp_path / "a.ogg", wave, 16000, format="OGG", subtype="VORBIS")
    # 8-bit WAV loads to the same scale (test_audio); its quantisation noise (-48 dB) is louder than this
    # fixture's noise floor, which the tone-trained test model notices, so it is not in this comparison.
    # MP3 at its highest quality: at the default bitrate its coding noise, like 8-bit's, can flip a letter of
    # the tone-trained test model (seen: "stop" -> "sop"); the test is about decoding the container, not the codec.
    sf.write(tmp_path / "a.mp3", wave, 16000, format="MP3", subtype="MPEG_LAYER_III", compression_level=0.0)
    for sr in (44100, 48000, 8000 * 3):
        sf.write(tmp_path / f"r{sr}.wav", librosa.resample(wave, orig_sr=16000, target_sr=sr), sr)
    results = list(transcriber.transcribe_files(sorted(str(p) for p in tmp_path.iterdir()), jobs=2))
    assert {r.audio_filepath.rsplit("/", 1)[1]: r.text for r in results} == {
        r.audio_filepath.rsplit("/", 1)[1]: expected for r in results}


def test_quiet_edges_do_not_change_the_words_and_shift_their_times(transcriber, tmp_path):
    # Real recordings start and end with seconds of quiet the training clips do not have: it is cut to the
    # 0.15 s the corpus's clips keep, and word times still count from the start of the file.
    from speech.features import speech_bounds

    wave = tone_speech("three four", seed=11)  # a training clip: the tiny model reads it reliably
    rng = np.random.default_rng(0)
    quiet = [(1e-4 * rng.standard_normal(n)).astype(np.float32) for n in (int(1.5 * 16000), 16000)]
    padded_wave = np.concatenate([quiet[0], wave, quiet[1]])
    sf.write(tmp_path / "plain.wav", wave, 16000, subtype="FLOAT")
    sf.write(tmp_path / "quiet.wav", padded_wave, 16000, subtype="FLOAT")
    plain, padded = transcriber.transcribe_files([str(tmp_path / "plain.wav"), str(tmp_path / "quiet.wav")], jobs=1)
    assert plain.text == padded.text == "three four"
    assert padded.duration == pytest.approx(plain.duration + 2.5)
    start, end = speech_bounds(padded_wave, 16000, transcriber.spec.features.trim_silence_db)
    assert start == int(1.35 * 16000) and end == len(padded_wave) - 16000 + 2400
    cut = transcriber.transcribe_waveform(padded_wave[start:end])  # nothing more to cut: times from its start
    shifted = [(w.word, w.start + 1.35, w.end + 1.35) for w in cut.words]
    cut_end = 1.35 + (end - start) / 16000
    for got, want in zip(padded.words, shifted, strict=True):
        if want[2] < cut_end - 1e-6:
            assert (got.word, got.start, got.end) == pytest.approx(want, abs=1e-6)
        else:  # the cut audio's last word ends with it; in the file, with its last output frame
            assert (got.word, got.start) == pytest.approx(want[:2], abs=1e-6) and got.end >= want[2] - 1e-6
    alone = transcriber.transcribe_waveform(padded_wave)
    assert [(w.word, w.start, w.end) for w in alone.words] == [(w.word, w.start, w.end) for w in padded.words]


def test_bad_files_do_not_stop_the_batch(transcriber, tmp_path):
    sf.write(tmp_path / "good.wav", tone_speech("go"), 16000)
    (tmp_path / "corrupt.wav").write_bytes(b"RIFF" + b"\x00" * 100)
    (tmp_path / "empty.wav").write_bytes(b"")
    (tmp_path / "text.mp3").write_text("not audio")
    sf.write(tmp_path / "nan.wav", np.full(8000, np.nan, np.float32), 16000, subtype="FLOAT")
    sf.write(tmp_path / "silence.wav", np.zeros(16000, np.float32), 16000)
    sf.write(tmp_path / "tiny.wav", np.zeros(160, np.float32) + 0.01, 16000)  # 10 ms
    paths = [str(tmp_path / n) for n in
             ["good.wav", "corrupt.wav", "empty.wav", "text.mp3", "nan.wav", "silence.wav", "tiny.wav", "nope.wav"]]
    results = {r.audio_filepath.rsplit("/", 1)[1]: r for r in transcriber.transcribe_files(paths, jobs=2)}
    assert results["good.wav"].text and not results["good.wav"].error
    for name in ["corrupt.wav", "empty.wav", "text.mp3", "nan.wav", "nope.wav"]:
        assert results[name].error, name
    assert results["silence.wav"].error is None and results["silence.wav"].text == ""
    assert results["tiny.wav"].error is None
    assert all(r.warning is None for r in results.values())


def test_transcripts_come_out_chunk_by_chunk_capped_by_audio_seconds(transcriber, tmp_path, monkeypatch):
    # What a batch job has written when it is killed is every chunk before the current one: a chunk of 64
    # hour-long recordings would be 64 hours of work lost, so chunks also end at an amount of audio.
    paths = []
    for i, seconds in enumerate([1.0, 1.0, 3.0, 1.0, 1.0]):
        sf.write(tmp_path / f"{i}.wav", np.zeros(int(seconds * 16000), np.float32) + 0.01, 16000)
        paths.append(str(tmp_path / f"{i}.wav"))
    sizes = []
    decode_chunk = transcriber._transcribe_chunk
    monkeypatch.setattr(transcriber, "_transcribe_chunk", lambda chunk, on_audio=None: sizes.append(len(chunk)) or
                        decode_chunk(chunk, on_audio))
    out = list(transcriber.transcribe_files(paths, jobs=1, seconds_per_batch=2.0))
    assert [t.audio_filepath for t in out] == paths and sizes == [2, 1, 2]
    sizes.clear()
    assert len(list(transcriber.transcribe_files(paths, jobs=1, files_per_batch=4))) == 5 and sizes == [4, 1]


def test_a_truncated_wav_is_transcribed_with_a_warning(transcriber, tmp_path):
    speech = tone_speech("go")
    sf.write(tmp_path / "go.wav", np.concatenate([speech, np.zeros(8000, np.float32)]), 16000, subtype="PCM_16")
    data = (tmp_path / "go.wav").read_bytes()
    (tmp_path / "cut.wav").write_bytes(data[:len(data) - 16000])  # the trailing silence is cut away
    whole, cut = transcriber.transcribe_files([str(tmp_path / "go.wav"), str(tmp_path / "cut.wav")], jobs=1)
    assert whole.warning is None and "warning" not in whole.to_json()
    assert cut.error is None and cut.text == transcriber.transcribe_waveform(speech).text
    assert cut.duration == pytest.approx(len(speech) / 16000, abs=0.01)
    assert cut.warning and "truncated" in cut.warning and cut.to_json()["warning"] == cut.warning


def test_long_recordings_are_segmented_at_quiet_points(tiny_model, tmp_path):
    # 80 s of "left" every 0.8 s. Segments stay under the limit (6 s here), every cut falls in a pause
    # between words, and the words keep their place in time.
    clip = tone_speech("left")
    period = np.zeros(int(0.8 * 16000), np.float32)
    period[:len(clip)] = clip
    wave = np.tile(period, 100)
    sf.write(tmp_path / "long.wav", wave, 16000)
    segments = list(iter_segments(str(tmp_path / "long.wav"), 16000, max_seconds=6.0, search_seconds=2.0))
    assert len(segments) >= 14 and all(len(w) <= 6 * 16000 for _, w in segments)
    assert sum(len(w) for _, w in segments) == len(wave)
    for offset, _ in segments[1:]:
        assert np.abs(wave[int(offset * 16000) - 400:int(offset * 16000) + 400]).max() < 0.02  # silence
    transcriber = Transcriber(str(tiny_model[0]), max_segment_seconds=6.0)
    result = next(transcriber.transcribe_files([str(tmp_path / "long.wav")], jobs=1))
    assert result.duration == pytest.approx(80.0)
    alone = [transcriber.transcribe_waveform(w) for _, w in segments]
    assert result.text == " ".join(h.text for h in alone if h.text)
    assert result.words[-1].start == pytest.approx(segments[-1][0] + alone[-1].words[-1].start)
    starts = [w.start for w in result.words]
    assert starts == sorted(starts) and starts[-1] > 75


def test_default_decoding_is_the_model_folders_own(tiny_model, tmp_path):
    import json
    import shutil

    from speech import transcribe
    from speech.decoding import DecodingOptions as Options

    assert transcribe.model_decoding(str(tiny_model[0])) == Options()  # no LM shipped: greedy
    folder = tmp_path / "with_lm"
    shutil.copytree(tiny_model[0], folder, ignore=shutil.ignore_patterns("checkpoints", "logs"))
    config = json.loads((folder / "config.json").read_text())
    config["decoder"] = {"alpha": 0.7, "beta": 1.2, "beam_width": 8}
    (folder / "config.json").write_text(json.dumps(config))
    (folder / transcribe.LM_FILE).write_bytes(b"lm")
    lm = str(folder / transcribe.LM_FILE)
    assert transcribe.model_decoding(str(folder)) == Options(8, lm, alpha=0.7, beta=1.2)
    assert transcribe.model_decoding(str(folder), beam_width=1) == Options()
    assert transcribe.model_decoding(str(folder), beam_width=4) == Options(4, lm, alpha=0.7, beta=1.2)
    assert transcribe.model_decoding(str(folder), lm_path="none") == Options()
    search = {"hop_lengths": [148, 160], "fmaxes": [None, 7600], "letter_bonus": 1.0,  # tuned with the model's LM
              "blank_penalty": 0.5}
    config["decoder"].update(search)
    (folder / "config.json").write_text(json.dumps(config))
    assert transcribe.model_decoding(str(folder)) == Options(8, lm, alpha=0.7, beta=1.2, **search)
    assert transcribe.model_decoding(str(folder), beam_width=4, lm_path="other.bin") == Options(4, "other.bin")
    assert transcribe.model_decoding(str(folder), beam_width=1) == Options()  # greedy: no blank penalty
    # The options round-trip through the config section they were read from.
    assert Options.from_config(transcribe.model_decoding(str(folder)).to_config(), lm) == transcribe.model_decoding(
        str(folder))


def test_a_cut_falls_at_the_centre_of_the_quietest_100_ms():
    from speech.transcribe import quietest_cut

    wave = np.random.default_rng(0).uniform(-0.5, 0.5, 48000).astype(np.float32)
    wave[30000:31600] *= 0.01  # the one quiet 100 ms
    assert quietest_cut(wave, 16000, 16000, 48000) == 30800
    assert quietest_cut(wave, 16000, 29900, 31700) == 30800  # its first and last windows half as quiet
    assert quietest_cut(wave, 16000, 40000, 41000) == 41000  # shorter than a window: its end
    wave[36000:44000] = 0.0  # digital silence: its first window
    assert quietest_cut(wave, 16000, 16000, 48000) == 36800


def test_tensorflow_threads_are_set_before_its_first_op_or_said_to_be_too_late():
    import tensorflow as tf

    from speech.errors import SpeechError
    from speech.transcribe import set_tensorflow_threads

    tf.add(tf.constant(1.0), 1.0)  # the runtime has started, with whatever threads it had
    current = tf.config.threading.get_intra_op_parallelism_threads()
    set_tensorflow_threads(current)  # what it has already: nothing to do
    with pytest.raises(SpeechError, match="once it has run an op"):
        set_tensorflow_threads(current + 3)
    with pytest.raises(SpeechError, match="must be 0"):
        set_tensorflow_threads(-1)


def test_segment_limits_must_leave_room_for_a_cut():
    from speech.transcribe import segment_blocks

    wave = np.zeros(16000 * 3, np.float32)
    pieces = list(segment_blocks([wave], 16000, max_seconds=1.0))
    assert all(len(w) <= 16000 for _, w in pieces) and sum(len(w) for _, w in pieces) == len(wave)
    for max_seconds, search in ((0.0, None), (-1.0, None), (1.0, 2.0)):
        with pytest.raises(ValueError, match="max_seconds > 0"):
            list(segment_blocks([wave], 16000, max_seconds, search))


def test_rate_search_hops_keep_the_models_own_first_and_need_a_beam_search():
    from speech.decoding import BeamSearchDecoder, GreedyDecoder
    from speech.text import Vocabulary
    from speech.transcribe import search_hop_lengths

    beam, greedy = BeamSearchDecoder(Vocabulary(), 0.03, beam_width=4), GreedyDecoder(Vocabulary(), 0.03)
    assert search_hop_lengths(160, [132, 160, 132, 148], beam) == (160, 132, 148)
    assert search_hop_lengths(160, [132, 148], beam) == (132, 148)
    assert search_hop_lengths(160, None, beam) == search_hop_lengths(160, [132, 148], greedy) == (160,)
    with pytest.raises(ValueError, match="positive"):
        search_hop_lengths(160, [148, 0], beam)


def test_search_variants_cross_hops_with_mel_top_edges_the_models_own_first():
    from speech.decoding import BeamSearchDecoder, GreedyDecoder
    from speech.features import FeatureConfig
    from speech.text import Vocabulary
    from speech.transcribe import search_variants

    config = FeatureConfig(hop_length=148)
    beam, greedy = BeamSearchDecoder(Vocabulary(), 0.03, beam_width=4), GreedyDecoder(Vocabulary(), 0.03)
    variants = search_variants(config, [140, 148], [7600, None], beam)
    assert [(v.hop_length, v.fmax) for v in variants] == [(148, None), (140, None), (148, 7600.0), (140, 7600.0)]
    assert variants[0] is config and all(v.n_mfcc == config.n_mfcc for v in variants)
    assert search_variants(config, [140, 148], [7600, None], greedy) == [config]
    assert search_variants(config, None, None, beam) == search_variants(config, [], [], beam) == [config]  # --no-search
    with pytest.raises(ValueError, match="fmax"):
        search_variants(config, None, [9000], beam)  # above the Nyquist frequency


def test_rate_search_keeps_the_best_scoring_hop_with_its_timings(tiny_model):
    from speech.features import speech_feature_variants

    hops = (120, 208, 184)  # the model's own hop (160) left out, so that every choice rescales the timings
    searching = Transcriber(str(tiny_model[0]), DecodingOptions(4, hop_lengths=hops))
    assert searching.hop_lengths == hops
    utts = read_manifest(tiny_model[1])[:6]
    results = list(searching.transcribe_files([u.audio_filepath for u in utts], jobs=1))
    for utt, result in zip(utts, results):
        wave, _ = sf.read(utt.audio_filepath, dtype="float32")
        start, feats = speech_feature_variants(wave, searching.variants)
        singles = searching.decode(searching.log_probs(feats))  # one decode per hop, times at the model's hop
        best = max(range(len(hops)), key=lambda j: singles[j].score)
        assert result.text == singles[best].text
        scale, shift = hops[best] / 160, start / 16000
        assert [t for w in result.words for t in (w.start, w.end)] == pytest.approx(
            [min(t * scale + shift, len(wave) / 16000) for w in singles[best].words for t in (w.start, w.end)])
    assert searching.transcribe_waveform(wave).text == result.text
    # Greedy decoding has no score to choose by: it reads the model's own hop only.
    assert Transcriber(str(tiny_model[0]), DecodingOptions(1, hop_lengths=hops)).hop_lengths == (160,)


def test_long_recordings_stream_in_batches_and_read_as_a_short_one_would(tiny_model, tmp_path, monkeypatch):
    # Memory must not grow with a recording's length: past long_file_seconds a file is featurized and decoded a
    # few segments at a time. The transcript is the one the whole-file path gives, in the inputs' order.
    clip = tone_speech("left")
    period = np.zeros(int(0.8 * 16000), np.float32)
    period[:len(clip)] = clip
    sf.write(tmp_path / "long.wav", np.tile(period, 40), 16000)  # 32 s
    sf.write(tmp_path / "short.wav", tone_speech("yes"), 16000)
    (tmp_path / "bad.wav").write_bytes(b"RIFF junk")
    files = [str(tmp_path / n) for n in ("short.wav", "long.wav", "bad.wav", "short.wav")]
    whole = Transcriber(str(tiny_model[0]), max_segment_seconds=6.0)
    streamed = Transcriber(str(tiny_model[0]), max_segment_seconds=6.0, long_file_seconds=10.0)
    batches = []
    original = streamed.transcribe_candidates
    monkeypatch.setattr(streamed, "transcribe_candidates", lambda c: batches.append(len(c)) or original(c))
    expected = [t.to_json() for t in whole.transcribe_files(files, jobs=1)]
    got = [t.to_json() for t in streamed.transcribe_files(files, jobs=1, seconds_per_batch=12.0)]
    assert got == expected and expected[1]["text"] and "error" in expected[2]
    assert len(batches) >= 4 and max(batches) <= 3  # 32 s of 6 s segments, 12 s at a time (+ the short files)


def test_progress_moves_within_a_recording(tiny_model, tmp_path, monkeypatch):
    # A progress bar must not sit still for the whole of a long file: the transcriber reports the audio it has
    # decoded every PROGRESS_SECONDS or so, before the file's transcript is out, on both the whole-file path and
    # the streamed one.
    from speech import transcribe

    monkeypatch.setattr(transcribe, "PROGRESS_SECONDS", 10.0)
    clip = tone_speech("left")
    period = np.zeros(int(0.8 * 16000), np.float32)
    period[:len(clip)] = clip
    sf.write(tmp_path / "long.wav", np.tile(period, 40), 16000)  # 32 s
    for long_file_seconds in (transcribe.LONG_FILE_SECONDS, 10.0):
        transcriber = Transcriber(str(tiny_model[0]), max_segment_seconds=6.0, long_file_seconds=long_file_seconds)
        reports: list[float] = []
        [result] = transcriber.transcribe_files([str(tmp_path / "long.wav")], jobs=1, on_audio=reports.append)
        assert len(reports) >= 3 and all(r >= 10.0 or r is reports[-1] for r in reports)
        assert 0.8 * result.duration < sum(reports) <= result.duration  # speech decoded, edge silence cut


def test_word_times_never_pass_the_end_of_the_audio(transcriber, tmp_path):
    # A word's last output frame covers 3 feature hops and may reach past the last sample: a word must still end
    # by the end of the file (subtitle players and aligners reject cues past the media's end).
    wave = tone_speech("three four", seed=11)
    cut = wave[: len(wave) - 600]  # the last word runs to the file's last sample
    sf.write(tmp_path / "cut.wav", cut, 16000, subtype="FLOAT")
    [result] = transcriber.transcribe_files([str(tmp_path / "cut.wav")], jobs=1)
    assert result.text == "three four"
    start, features = transcriber.decoding.featurize(cut)
    [raw] = transcriber.transcribe_candidates([features])
    assert raw.words[-1].end + start / 16000 > result.duration  # unclipped, the last word would end too late
    assert result.words[-1].end == pytest.approx(result.duration, abs=1e-3)
    assert all(w.start <= w.end <= result.duration for w in result.words)
    served = transcriber.transcribe_waveform(cut)
    assert [(w.start, w.end) for w in served.words] == [(w.start, w.end) for w in result.words]
