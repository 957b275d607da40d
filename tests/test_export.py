"""The serving SavedModel: plain TensorFlow (no project code) gives what the Python transcriber gives."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import SR, tone_speech, write_arpa

from speech.decoding import DecodingOptions, GreedyDecoder
from speech.text import Vocabulary

# Runs in a fresh interpreter that never imports the project: only TensorFlow and numpy.
CLIENT = r"""
import json, sys
import numpy as np
import tensorflow as tf

model_dir, request_path = sys.argv[1], sys.argv[2]
request = json.load(open(request_path))
model = tf.saved_model.load(model_dir)

def plain(outputs):
    return {k: [x.decode() if isinstance(x, bytes) else x for x in v.numpy().tolist()] for k, v in outputs.items()}

audio = [open(p, "rb").read() for p in request["files"]] + [bytes.fromhex(h) for h in request["raw"]]
result = {"signatures": sorted(model.signatures)}
result["serving_default"] = plain(model.signatures["serving_default"](audio=tf.constant(audio)))
result["greedy"] = plain(model.signatures["greedy"](audio=tf.constant(audio)))
arrays = np.load(request["arrays"])
result["transcribe_waveform"] = plain(model.signatures["transcribe_waveform"](
    waveform=tf.constant(arrays["waveform"]), lengths=tf.constant(arrays["wave_lengths"])))
logits = model.signatures["logits"](features=tf.constant(arrays["features"]),
                                    lengths=tf.constant(arrays["feature_lengths"]))
np.savez(request["logits_out"], log_probs=logits["log_probs"].numpy(), lengths=logits["lengths"].numpy())
result["project_modules"] = sorted(m for m in sys.modules if m.split(".")[0] in ("speech", "pipelines"))
json.dump(result, open(request["out"], "w"))
"""

# (name, waveform builder, sample rate, soundfile subtype): what the SavedModel must decode like the Python path.
GOOD = [
    ("pcm16", lambda: tone_speech("go stop", seed=21), SR, "PCM_16"),
    ("pcm8", lambda: tone_speech("left", seed=22), SR, "PCM_U8"),
    ("pcm24", lambda: tone_speech("right", seed=23), SR, "PCM_24"),
    ("pcm32", lambda: tone_speech("up", seed=27), SR, "PCM_32"),
    ("float", lambda: tone_speech("down", seed=24), SR, "FLOAT"),
    ("stereo", lambda: np.stack([tone_speech("yes", seed=25), 0.5 * tone_speech("yes", seed=26)], axis=1), SR,
     "PCM_16"),
    ("stereo_inverted", lambda: np.stack([tone_speech("no", seed=28), -tone_speech("no", seed=28)], axis=1), SR,
     "PCM_16"),
    # A training clip after 1.5 s of quiet (and before 1 s): cut as the CLI cuts it, word times shifted.
    ("quiet_edges", lambda: np.concatenate([np.zeros(int(1.5 * SR), np.float32), tone_speech("three four", seed=11),
                                            np.zeros(SR, np.float32)]), SR, "PCM_16"),
]
RESAMPLED = [("rate44100", "one two", 44100), ("rate22050", "stop", 22050), ("rate11025", "left", 11025),
             ("rate8000", "on", 8000)]
# The test corpus's tones reach 5.7 kHz: below an 11 kHz rate some are gone and the tiny model may hear nothing.
FULL_BAND_RATE = 11025


def _resampled(text: str, rate: int, seed: int) -> np.ndarray:
    import librosa

    return librosa.resample(tone_speech(text, seed=seed), orig_sr=SR, target_sr=rate).astype(np.float32)


@pytest.fixture(scope="module")
def exported(tiny_model, tmp_path_factory):
    """``(model_dir, savedmodel version dir, base)``: the tiny model with an LM over its corpus's sentences (and
    a beam search as its default decoding) exported through the CLI job."""
    from speech.manifest import read_manifest
    from speech.model import CONFIG_FILE
    from speech.ngram import load_ngram_lm
    from speech.pipelines.export import main
    from speech.transcribe import LM_FILE

    root = tmp_path_factory.mktemp("with_lm")
    model_dir = root / "model"
    shutil.copytree(tiny_model[0], model_dir, ignore=shutil.ignore_patterns("checkpoints", "logs"))
    arpa = write_arpa(sorted({u.text for u in read_manifest(tiny_model[1])}), root / "lm.arpa")
    load_ngram_lm(arpa).save(model_dir / LM_FILE)
    config = json.loads((model_dir / CONFIG_FILE).read_text())
    config["decoder"] = {"beam_width": 8, "alpha": 0.5, "beta": 1.0, "blank_penalty": 0.5}
    (model_dir / CONFIG_FILE).write_text(json.dumps(config))
    base = tmp_path_factory.mktemp("serving") / "speech"
    assert main(["--model", str(model_dir), "--output", str(base)]) == 0
    return model_dir, base / "1", base


@pytest.fixture(scope="module")
def client_run(exported, tiny_model, tmp_path_factory):
    """Files written, the SavedModel run on them in a project-free subprocess, and the Python transcriber's view."""
    from speech.audio import load_audio
    from speech.features import compute_features
    from speech.transcribe import Transcriber

    model_dir, version_dir, _ = exported
    _, manifest = tiny_model
    root = tmp_path_factory.mktemp("client")
    files: dict[str, Path] = {}
    for name, make, rate, subtype in GOOD:
        files[name] = root / f"{name}.wav"
        sf.write(files[name], make(), rate, subtype=subtype)
    for i, (name, text, rate) in enumerate(RESAMPLED):
        files[name] = root / f"{name}.wav"
        sf.write(files[name], _resampled(text, rate, 30 + i), rate, subtype="PCM_16")
    for clip in sorted(manifest.parent.glob("*.wav"))[:4]:
        files[clip.stem] = clip
    # Bad items, in the same batch as the good ones.
    files["mulaw"] = root / "mulaw.wav"
    sf.write(files["mulaw"], tone_speech("no"), SR, subtype="ULAW")
    files["no_samples"] = root / "no_samples.wav"
    sf.write(files["no_samples"], np.zeros(0, np.float32), SR, subtype="PCM_16")
    files["header_cut"] = root / "header_cut.wav"
    files["header_cut"].write_bytes(files["pcm16"].read_bytes()[:30])
    raw = {"not_audio": b"this is not a wav file", "empty_bytes": b""}

    transcriber = Transcriber(str(model_dir))
    assert transcriber.decoding.options.lm_path  # the model's default decoding: the LM-fused beam search
    python = {name: t for name, t in zip(files, transcriber.transcribe_files([str(p) for p in files.values()],
                                                                              jobs=1))}
    greedy = Transcriber(str(model_dir), DecodingOptions())
    python_greedy = {name: t for name, t in zip(files, greedy.transcribe_files([str(p) for p in files.values()],
                                                                                jobs=1))}
    sixteen = [name for name, *_ in GOOD] + [name for name in files if name.startswith("clip_")]
    waves = [load_audio(files[name]) for name in sixteen] + [np.zeros(10, np.float32), np.full(5, np.nan, np.float32)]
    wave_lengths = np.array([len(w) for w in waves[:-2]] + [0, 5], np.int32)
    waveform = np.zeros((len(waves), max(len(w) for w in waves)), np.float32)
    for row, w in enumerate(waves):
        waveform[row, : len(w)] = w
    features = [compute_features(w, transcriber.spec.features) for w in waves[:3]]
    feature_lengths = np.array([len(f) for f in features], np.int32)
    padded = np.zeros((3, feature_lengths.max(), features[0].shape[1]), np.float32)
    for row, f in enumerate(features):
        padded[row, : len(f)] = f
    np.savez(root / "arrays.npz", waveform=waveform, wave_lengths=wave_lengths, features=padded,
             feature_lengths=feature_lengths)
    request = {"files": [str(p) for p in files.values()], "raw": [b.hex() for b in raw.values()],
               "arrays": str(root / "arrays.npz"), "logits_out": str(root / "logits.npz"),
               "out": str(root / "out.json")}
    (root / "request.json").write_text(json.dumps(request))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    subprocess.run([sys.executable, "-c", CLIENT, str(version_dir), str(root / "request.json")], cwd=root, env=env,
                   check=True, timeout=300)
    result = json.loads((root / "out.json").read_text())
    names = [*files, *raw]
    served = {name: {k: v[i] for k, v in result["serving_default"].items()} for i, name in enumerate(names)}
    served_greedy = {name: {k: v[i] for k, v in result["greedy"].items()} for i, name in enumerate(names)}
    return {"python": python, "served": served, "python_greedy": python_greedy, "served_greedy": served_greedy,
            "result": result, "sixteen": sixteen, "transcriber": transcriber, "features": features,
            "logits": np.load(root / "logits.npz"), "files": files}


def _python_words(transcript) -> list[dict]:
    return transcript.to_json()["words"]  # the CLI's rounding: times to 3 decimals, confidence to 4


def _assert_same(served: dict, expected, time_tolerance: float = 0.0, confidence_tolerance: float = 2e-4) -> None:
    assert served["error"] == ""
    assert served["transcript"] == expected.text
    words, reference = json.loads(served["words"]), _python_words(expected)
    assert [w["word"] for w in words] == [w["word"] for w in reference]
    for got, want in zip(words, reference):
        assert got["start"] == pytest.approx(want["start"], abs=time_tolerance)
        assert got["end"] == pytest.approx(want["end"], abs=time_tolerance)
        # Features differ from librosa's by ~1e-5, so the 4th decimal of a confidence may round the other way.
        assert got["confidence"] == pytest.approx(want["confidence"], abs=confidence_tolerance)
    assert served["confidence"] == pytest.approx(expected.confidence, abs=confidence_tolerance)
    assert served["duration"] == pytest.approx(expected.duration, abs=1e-3)
    assert all(w["end"] <= served["duration"] + 5e-4 for w in words)  # no word ends after the audio


def test_savedmodel_loads_without_project_code(client_run) -> None:
    result = client_run["result"]
    assert result["signatures"] == ["greedy", "logits", "serving_default", "transcribe_waveform"]
    assert result["project_modules"] == []


def test_wav_files_match_the_python_transcriber(client_run) -> None:
    python, served = client_run["python"], client_run["served"]
    checked = [name for name, *_ in GOOD] + [name for name in python if name.startswith("clip_")]
    assert any(python[name].words for name in checked)
    for name in checked:
        assert python[name].error is None, name
        _assert_same(served[name], python[name])


def test_the_greedy_signature_matches_the_greedy_transcriber(client_run) -> None:
    python, served = client_run["python_greedy"], client_run["served_greedy"]
    checked = [name for name, *_ in GOOD] + [name for name in python if name.startswith("clip_")]
    for name in checked:
        _assert_same(served[name], python[name])
    assert served["mulaw"]["error"] and served["mulaw"]["transcript"] == ""


def test_quiet_edges_are_cut_and_word_times_count_from_the_start(client_run) -> None:
    # The same words as the Python path, at the same times (test_wav_files_match_the_python_transcriber); here:
    # they are the clip's words, none in the quiet the graph cut.
    served, python = client_run["served"]["quiet_edges"], client_run["python"]["quiet_edges"]
    assert served["transcript"] == python.text == "three four"
    words = json.loads(served["words"])
    # Kept: 0.15 s of quiet each side; a word may end up to an output frame past the audio kept.
    assert len(words) == 2 and all(1.35 - 1e-3 <= w["start"] < w["end"] <= python.duration - 0.8 for w in words)


def test_other_rates_are_resampled_in_the_graph(client_run) -> None:
    # The graph's FFT resampler is not soxr: same words, word times within one output frame, close confidences
    # (measured: 44.1 kHz word confidences within 1e-3; 8 kHz within 0.04, the tone test signal reaching Nyquist).
    python, served = client_run["python"], client_run["served"]
    for name, _, rate in RESAMPLED:
        if rate >= FULL_BAND_RATE:
            assert python[name].text, name
        _assert_same(served[name], python[name], time_tolerance=0.021, confidence_tolerance=0.05)


def test_bad_items_get_an_error_and_do_not_fail_the_batch(client_run) -> None:
    served = client_run["served"]
    expected = {"mulaw": "unsupported WAV encoding (format tag 7", "no_samples": "audio has no samples",
                "header_cut": "WAV file has no data chunk", "not_audio": "not a WAV file",
                "empty_bytes": "not a WAV file"}
    for name, message in expected.items():
        item = served[name]
        assert item["error"].startswith(message), (name, item["error"])
        assert (item["transcript"], item["words"], item["confidence"]) == ("", "[]", 0.0)
    assert served["pcm16"]["transcript"] == client_run["python"]["pcm16"].text != ""


def test_transcribe_waveform_signature(client_run) -> None:
    python, sixteen = client_run["python"], client_run["sixteen"]
    out = client_run["result"]["transcribe_waveform"]
    rows = [{k: v[i] for k, v in out.items()} for i in range(len(out["transcript"]))]
    for name, row in zip(sixteen, rows):
        _assert_same(row, python[name])
    assert rows[-2]["error"].startswith("length must lie in [1, ")
    assert rows[-1]["error"] == "audio contains NaN or infinite samples"
    assert rows[-1]["transcript"] == "" and rows[-1]["words"] == "[]"


def test_malformed_requests_are_refused_not_broadcast(exported) -> None:
    # One length for a batch of two, or lengths past the frames, used to give outputs for made-up lengths.
    import tensorflow as tf

    model = tf.saved_model.load(str(exported[1]))
    waveform = model.signatures["transcribe_waveform"]
    with pytest.raises(tf.errors.InvalidArgumentError, match="one entry per row of waveform"):
        waveform(waveform=tf.zeros([2, 16000]), lengths=tf.constant([8000], tf.int32))
    logits = model.signatures["logits"]
    with pytest.raises(tf.errors.InvalidArgumentError, match="one entry per row of features"):
        logits(features=tf.zeros([2, 50, 26]), lengths=tf.constant([50], tf.int32))
    with pytest.raises(tf.errors.InvalidArgumentError, match="must not exceed the number of frames"):
        logits(features=tf.zeros([1, 50, 26]), lengths=tf.constant([80], tf.int32))
    with pytest.raises(tf.errors.InvalidArgumentError, match="at least one frame"):
        logits(features=tf.zeros([1, 0, 26]), lengths=tf.constant([0], tf.int32))
    assert logits(features=tf.zeros([1, 50, 26]), lengths=tf.constant([50], tf.int32))["lengths"].shape == [1]


def test_logits_signature_matches_the_keras_model(client_run) -> None:
    transcriber, logits = client_run["transcriber"], client_run["logits"]
    expected = transcriber.log_probs(client_run["features"])
    for row, want in enumerate(expected):
        assert logits["lengths"][row] == len(want)
        np.testing.assert_allclose(logits["log_probs"][row, : len(want)], want, atol=1e-4)


def test_in_graph_greedy_decoding_is_the_python_definition() -> None:
    import tensorflow as tf

    from speech.export import decode

    vocab = Vocabulary("ab \"\\c")  # quote and backslash must come out as valid JSON
    rng = np.random.default_rng(3)
    batch, frames = 32, 50
    logits = rng.standard_normal((batch, frames, vocab.num_classes)).astype(np.float32)
    for row in range(batch):  # peaked runs of letters, spaces and blanks, like a real model's output
        path = np.repeat(rng.integers(0, vocab.num_classes, frames // 2), 2)
        logits[row, np.arange(frames), path] += 4.0
    logits[0, 3] = 0.0  # an exact tie: the lowest class index wins on both sides
    log_probs = tf.nn.log_softmax(logits).numpy()
    lengths = rng.integers(0, frames + 1, batch).astype(np.int32)
    lengths[:3] = [frames, 0, 1]
    decoder = GreedyDecoder(vocab, 0.03)
    texts, confidences, words = decode(log_probs, lengths, vocab, 0.03)
    for row in range(batch):
        expected = decoder.decode(log_probs[row, : lengths[row]])
        assert texts[row].numpy().decode() == expected.text
        assert confidences[row].numpy() == pytest.approx(expected.confidence, rel=1e-6)
        reference = [{"word": w.word, "start": round(w.start, 3), "end": round(w.end, 3),
                      "confidence": round(w.confidence, 4)} for w in expected.words]
        assert json.loads(words[row].numpy().decode()) == reference
    assert any('"' in t.numpy().decode() for t in texts)


def test_saved_model_cli_shows_and_runs_the_signatures(exported, tmp_path) -> None:
    _, version_dir, _ = exported
    cli = Path(sys.executable).with_name("saved_model_cli")
    command = [str(cli)] if cli.exists() else [sys.executable, "-m", "tensorflow.python.tools.saved_model_cli"]
    shown = subprocess.run([*command, "show", "--all", "--dir", str(version_dir)], capture_output=True, text=True,
                           check=True, timeout=120).stdout
    for name in ("serving_default", "greedy", "transcribe_waveform", "logits"):
        assert f"signature_def['{name}']" in shown
    assert "inputs['audio']" in shown and "outputs['words']" in shown
    wav = tmp_path / "go.wav"
    sf.write(wav, tone_speech("go", seed=5), SR, subtype="PCM_16")
    np.save(tmp_path / "audio.npy", np.array([wav.read_bytes(), b"junk"], dtype=object), allow_pickle=True)
    ran = subprocess.run([*command, "run", "--dir", str(version_dir), "--tag_set", "serve", "--signature_def",
                          "serving_default", "--inputs", f"audio={tmp_path / 'audio.npy'}"],
                         capture_output=True, text=True, check=True, timeout=120).stdout
    assert "Result for output key transcript:\n[b'go' b'']" in ran
    assert "not a WAV file" in ran


def test_versions_are_numbered_and_never_overwritten(exported, tmp_path, capsys) -> None:
    from speech.export import next_version
    from speech.pipelines.export import main

    model_dir, version_dir, base = exported
    assert next_version(base) == 2
    assert not [p.name for p in base.iterdir() if p.name != "1"]  # no temp folder left behind
    assert (version_dir / "saved_model.pb").is_file()
    assert main(["--model", str(model_dir), "--output", str(base), "--version", "1"]) == 2
    assert "version 1 already exists" in capsys.readouterr().err
    other = tmp_path / "base"
    for name in ("3", "10", "latest", ".11.tmp-x"):
        (other / name).mkdir(parents=True)
    assert next_version(other) == 11
    assert next_version(tmp_path / "missing") == 1
    shutil.rmtree(other)


def test_wav_parser_never_raises_on_corrupted_headers() -> None:
    import io

    import tensorflow as tf

    from speech.export import decode_wav

    buffer = io.BytesIO()
    sf.write(buffer, tone_speech("go", seed=9)[:4000], SR, format="WAV", subtype="PCM_16")
    wav = buffer.getvalue()
    rng = np.random.default_rng(0)
    items = [wav[:n] for n in range(0, 60, 3)]  # every truncation of the header
    for _ in range(300):  # random bytes over the header (sizes, tags, channels, rates, bits)
        data = bytearray(wav[:2000])
        for pos in rng.integers(0, 48, rng.integers(1, 4)):
            data[pos] = int(rng.integers(0, 256))
        items.append(bytes(data))

    @tf.function
    def decode_all(audio):
        return tf.map_fn(lambda x: decode_wav(x, SR), audio,
                         fn_output_signature=(tf.RaggedTensorSpec([None], tf.float32, ragged_rank=0), tf.string))

    waves, errors = decode_all(tf.constant(items))
    errors = [e.decode() for e in errors.numpy()]
    lengths = waves.row_lengths().numpy()
    assert all((e == "") == (n > 0) for e, n in zip(errors, lengths))
    assert sum(e == "" for e in errors) > 50 and sum(e != "" for e in errors) > 50
    assert np.all(np.isfinite(waves.flat_values.numpy()))


def test_wav_parser_mixes_channels_down_as_the_python_loader(tmp_path) -> None:
    import tensorflow as tf

    from speech.audio import load_audio
    from speech.export import decode_wav

    wave = tone_speech("go", seed=9)
    other = np.random.default_rng(1).standard_normal(len(wave)).astype(np.float32) * 0.1
    for name, channels in [("inverted", [wave, -wave]), ("independent", [wave, other]), ("three", [wave, other, wave])]:
        path = tmp_path / f"{name}.wav"
        sf.write(path, np.stack(channels, axis=1), SR, subtype="FLOAT")
        decoded, error = decode_wav(tf.constant(path.read_bytes()), SR)
        assert error.numpy() == b""
        np.testing.assert_allclose(decoded.numpy(), load_audio(path), atol=1e-6, err_msg=name)
    assert np.abs(load_audio(tmp_path / "inverted.wav") - wave).max() < 1e-6  # the speech, not silence


def test_requests_with_no_usable_item_get_per_item_errors(exported) -> None:
    # A single-file request is the usual one in serving: a bad file alone, or a tiny valid one, must come back as
    # an item (with its error), never as the server's error.
    import io

    import tensorflow as tf

    model = tf.saved_model.load(str(exported[1]))
    serve = model.signatures["serving_default"]

    def wav(samples: np.ndarray) -> bytes:
        buffer = io.BytesIO()
        sf.write(buffer, samples, SR, format="WAV", subtype="PCM_16")
        return buffer.getvalue()

    for batch, errors in [([b""], ["not a WAV file"]), ([b"junk", b""], ["not a WAV file"] * 2),
                          ([wav(np.zeros(0, np.float32))], ["audio has no samples"]),
                          ([wav(np.full(1, 0.5, np.float32))], [""]), ([wav(np.full(100, 0.5, np.float32))], [""])]:
        out = serve(audio=tf.constant(batch))
        got = [e.decode() for e in out["error"].numpy()]
        assert len(got) == len(batch) and all(g.startswith(e) for g, e in zip(got, errors)), (batch[:1], got)
        assert all(t == b"" for t, e in zip(out["transcript"].numpy(), got) if e)
    waveform = model.signatures["transcribe_waveform"]
    for wave, lengths in [(tf.zeros([1, 0]), [0]), (tf.zeros([1, 5]), [0]), (tf.zeros([1, 5]), [9]),
                          (tf.zeros([2, 5]), [0, 7]), (tf.fill([1, 1], 0.5), [1])]:
        out = waveform(waveform=wave, lengths=tf.constant(lengths, tf.int32))
        got = [e.decode() for e in out["error"].numpy()]
        expected = ["" if 1 <= n <= wave.shape[1] else "length must lie in" for n in lengths]
        assert all(g.startswith(e) for g, e in zip(got, expected)) and len(got) == len(lengths), (lengths, got)


def test_a_request_of_no_items_gets_no_items_back(exported) -> None:
    # A batching client that flushes an empty batch must get an empty answer, not the server's error.
    import tensorflow as tf

    model = tf.saved_model.load(str(exported[1]))
    out = model.signatures["serving_default"](audio=tf.constant([], tf.string))
    assert all(v.shape[0] == 0 for v in out.values())
    out = model.signatures["transcribe_waveform"](waveform=tf.zeros([0, 0]), lengths=tf.zeros([0], tf.int32))
    assert all(v.shape[0] == 0 for v in out.values())


def test_the_readme_rest_request_has_the_shape_the_signature_takes(exported, tmp_path) -> None:
    # TF Serving's REST "instances" (row) format: one object per item, input name -> value, {"b64": ...} for bytes.
    import base64
    import re

    import tensorflow as tf

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    template = re.search(r"printf '(\{.*\})'", readme).group(1)
    wav = tmp_path / "go.wav"
    sf.write(wav, tone_speech("go", seed=5), SR, subtype="PCM_16")
    body = json.loads(template.replace("%s", base64.b64encode(wav.read_bytes()).decode()))
    signature = tf.saved_model.load(str(exported[1])).signatures[body["signature_name"]]
    specs = signature.structured_input_signature[1]
    inputs: dict[str, list] = {name: [] for name in specs}
    for instance in body["instances"]:
        assert set(instance) == set(specs)
        for name, value in instance.items():
            assert specs[name].dtype == tf.string and specs[name].shape.rank == 1 and set(value) == {"b64"}
            inputs[name].append(base64.b64decode(value["b64"]))
    out = signature(**{name: tf.constant(values) for name, values in inputs.items()})
    assert out["error"].numpy().tolist() == [b""] and out["transcript"].numpy()[0] == b"go"
