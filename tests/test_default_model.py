"""The bundled model and samples: the README's first command must work on a fresh clone."""

import json
import os
from pathlib import Path

import pytest
import soundfile as sf

from speech.cli import main as cli_main
from speech.metrics import error_rates
from speech.model import DEFAULT_MODEL_DIR, load_spec

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"


def test_bundled_model_is_shipped_and_small():
    spec = load_spec(None)
    assert spec.vocab.blank == len(spec.vocab.chars)
    size = sum(p.stat().st_size for p in DEFAULT_MODEL_DIR.iterdir() if p.is_file())
    assert size <= 25 * 2**20
    assert (DEFAULT_MODEL_DIR / "MODEL_CARD.md").is_file()


def test_transcribe_the_samples_with_the_default_model(capsys):
    rc = cli_main(["transcribe", str(SAMPLES), "--no-progress", "--jobs", "1"])
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert rc == 0 and len(records) == len(list(SAMPLES.glob("*.wav")))
    refs = [Path(r["audio_filepath"]).with_suffix(".txt").read_text().strip() for r in records]
    rates = error_rates(refs, [r["text"] for r in records])
    # A regression guard, not the model's score (that is in models/default/metrics.json).
    assert rates["cer"] < 0.45, (rates, [r["text"] for r in records])
    assert all(r["words"] and 0 < r["confidence"] <= 1 for r in records)


@pytest.mark.skipif(not (DEFAULT_MODEL_DIR / "lm.npz").is_file(), reason="no bundled LM")
def test_the_bundled_model_decodes_with_its_lm_by_default_and_greedy_on_request(capsys):
    from speech.transcribe import model_decoding

    options = model_decoding(None)
    assert options.beam_width > 1 and options.lm_path == str(DEFAULT_MODEL_DIR / "lm.npz")
    # The decoding search over feature variants is not the bundled default: on real speech it did not pay for its
    # twelve decodes (docs/experiments.md); it stays a flag away (--hops). A blank penalty gives back the letters a
    # synthetic-trained model under-emits on real voices.
    assert options.blank_penalty > 0 and not options.hop_lengths and not options.fmaxes
    decoders = {}
    for flags in ([], ["--beam", "1"]):
        assert cli_main(["evaluate", "--manifest", str(SAMPLES / "samples.jsonl"), *flags]) == 0
        metrics = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert metrics["utterances"] == len(list(SAMPLES.glob("*.wav"))) and metrics["cer"] < 0.45
        decoders[bool(flags)] = metrics["decoder"]
    assert decoders == {False: "BeamSearchDecoder", True: "GreedyDecoder"}


def test_model_card_reports_every_stage_each_unseen_voice_and_a_same_speaker_leak():
    from speech.pipelines.default_model import model_card, stage_record

    config = json.loads((DEFAULT_MODEL_DIR / "config.json").read_text())
    config["decoder"] = {"alpha": 0.5, "beta": 1.0, "beam_width": 32}
    rates = {"wer": 0.25, "cer": 0.08}
    metrics = {"test_utterances": 10, "greedy": rates, "lm": rates, "greedy_unseen_voices": rates,
               "lm_unseen_voices": {"wer": 0.2, "cer": 0.07}, "unseen_voice_utterances": 4,
               "unseen_voices": ["flite:awb", "mbrola:us2"],
               "decoder": config["decoder"],
               "per_unseen_voice": {"flite:awb": {"greedy": rates, "lm": rates, "utterances": 2},
                                    "mbrola:us2": {"greedy": rates, "lm": rates, "utterances": 2}}}
    main = {"hours": {"train": 3.0, "dev": 0.1, "test": 0.1}, "counts": {"train": 90, "dev": 5, "test": 10},
            "voices": {"train": ["piper:x", "festival:us2_mbrola"], "test_only": ["flite:awb", "mbrola:us2"]}}
    extra = {"hours": {"train": 5.0}, "counts": {"train": 150}, "voices": {"train": ["piper:x", "pico:en-US"]}}
    history = [{"epoch": 0, "seconds": 600, "dev_wer": 0.5, "dev_cer": 0.2}]
    card = model_card(config, metrics, [stage_record("one", history, main), stage_record("two", history * 2, extra),
                                        stage_record("three", history, dict(extra))])
    assert "Stage 1 (`one`): 1 epoch," in card and "Stage 2 (`two`): 2 epochs" in card and "Stage 3 (`three`)" in card
    # Stages 2 and 3 train on the same extra corpus: its hours count once.
    assert card.count("Extra training corpus") == 1 and "8.00 h of training audio" in card
    assert "3 voices in training" in card
    # A company can tell whether it may use the model: licence, intended and out-of-scope use, each source's terms.
    assert "## Licence and intended use" in card and "MIT (`LICENSE`)" in card and "Out of scope" in card
    assert "MBROLA voice databases" in card and "non-commercial" in card and "Kokoro-82M" in card
    assert "| flite:awb | 2 |" in card and "WER 0.200, CER 0.070" in card
    assert "Caveat: festival:us2_mbrola" in card
    main["voices"]["train"] = ["piper:x"]
    assert "Caveat" not in model_card(config, metrics, [stage_record("one", history, main)])
    assert "Clips with no speech" not in card and "without speech" not in card  # not measured: not claimed
    silent = {**extra, "non_speech": {"clips": 40, "hours": 0.04, "per_kind": {"tone": 40}}}
    assert "150 utterances (5.00 h; 40 of them clips without speech, 0.04 h)" in model_card(
        config, metrics, [stage_record("one", history, main), stage_record("two", history, silent)])
    metrics["non_speech"] = {"clips": 16, "with_words": 3, "words": 5, "with_words_by_kind": {"tone": 1, "hum": 2}}
    assert ("Clips with no speech in them (16: tone, hum; 1-5 s; `speech.nonspeech`), default decoding: 3 got "
            "words (5 words in all).") in model_card(config, metrics, [stage_record("one", history, main)])
    # A corpus synthesised with other than the default draws says how.
    wide = {**extra, "settings": {"rate_range": [0.8, 1.25], "pitch_range": [0.88, 1.12], "augment_prob": 0.5,
                                  "augment_config": {"speed_prob": 0.6, "speed_range": [0.85, 1.15]}}}
    card = model_card(config, metrics, [stage_record("one", history, main), stage_record("two", history, wide)])
    assert "(speaking rate x0.8-1.25, 60% of augmented utterances resampled by x0.85-1.15)." in card
    accented = {**extra, "settings": {"engines": ["piper", "mbrola-accented"],
                                      "engine_weights": {"mbrola-accented": 0.8}}}
    card = model_card(config, metrics, [stage_record("one", history, main), stage_record("two", history, accented)])
    assert "(engines added: mbrola-accented (weight 0.8))." in card
    assert "pitch x" not in card and "of utterances augmented" not in card
    assert "speaking-rate search" not in card and "no search (" not in card
    # The speaking-rate search: named in the decoding line and the default's row, one hop's figures beside it.
    config["decoder"]["hop_lengths"] = metrics["decoder"]["hop_lengths"] = [148, 140, 156]
    metrics.update(hop_length=148, lm_one_hop={"wer": 0.3, "cer": 0.1}, lm_one_hop_unseen_voices={"wer": 0.4,
                                                                                                   "cer": 0.2})
    card = model_card(config, metrics, [stage_record("one", history, main)])
    assert "run at each feature hop of 148, 140, 156 samples, the best-scoring result kept" in card
    assert ("| beam + LM, no search (`--no-search`: 148-sample hop) | WER 0.300, CER 0.100 | WER 0.400, CER 0.200 |"
            in card)
    assert "+ speaking-rate search over hops 148, 140, 156; the default | WER 0.250, CER 0.080 |" in card
    assert "mel filterbank top edge" not in card and "per letter" not in card
    config["decoder"].update(fmaxes=[None, 7600], letter_bonus=0.5)
    metrics["decoder"] = config["decoder"]
    card = model_card(config, metrics, [stage_record("one", history, main)])
    assert ("run at each feature hop of 148, 140, 156 samples under each mel filterbank top edge of 8000, 7600 Hz, "
            "the best-scoring result kept with a bonus of 0.5 per letter") in card
    assert "+ speaking-rate search over hops 148, 140, 156 and mel top edges 8000, 7600 Hz; the default |" in card


def test_the_card_gives_the_hop_the_model_decodes_at_and_the_one_it_was_trained_at():
    from speech.pipelines.default_model import _features_line

    config = json.loads((DEFAULT_MODEL_DIR / "config.json").read_text())
    config["features"]["hop_length"] = 160
    line = _features_line(config, {})
    assert "25 ms window, 10 ms hop" in line and "Output frame: 30 ms." in line and "Trained at" not in line
    config["features"]["hop_length"] = 148
    metrics = {"trained_hop_length": 160, "dev_by_hop_length": {"160": {"wer": 0.157, "cer": 0.06},
                                                                "148": {"wer": 0.147, "cer": 0.053}}}
    line = _features_line(config, metrics)
    assert "9.25 ms hop" in line and "Output frame: 27.75 ms." in line
    assert "Trained at a 10 ms hop, decoded at 9.25 ms" in line and "10 ms 0.157, 9.25 ms 0.147" in line


def test_a_stage_record_gives_the_dev_figures_of_the_weights_it_kept():
    from speech.pipelines.default_model import _dev_figures, stage_record

    corpus = {"hours": {"train": 1.0}, "counts": {"train": 9}}
    history = [{"dev_wer": 0.5, "dev_cer": 0.2, "seconds": 60}, {"dev_wer": 0.45, "dev_cer": 0.19, "seconds": 60},
               {"dev_wer": 0.47, "dev_cer": 0.18, "seconds": 60}]
    record = stage_record("x", history, corpus)
    assert (record["dev_wer"], record["dev_cer"], record["dev_epoch"], record["epochs"]) == (0.45, 0.19, 2, 3)
    assert _dev_figures(record) == "dev (greedy) WER 0.450, CER 0.190 with the weights kept (epoch 2)"
    # ties go to the later epoch, as the trainer keeps them
    assert stage_record("x", [history[0], history[0]], corpus)["dev_epoch"] == 2
    old = {k: v for k, v in record.items() if k != "dev_epoch"}  # written before the kept epoch was noted
    assert _dev_figures(old).startswith("final dev (greedy) WER 0.450")


def test_the_shipped_card_is_what_the_code_makes_of_the_shipped_files():
    """``--rescore`` and the build write the whole card from config, metrics and stage records: none of it stale
    (the beam width and the LM's text appear outside the results too)."""
    from speech.pipelines.default_model import STAGES_FILE, model_card

    def read(name):
        return json.loads((DEFAULT_MODEL_DIR / name).read_text())

    card = model_card(read("config.json"), read("metrics.json"), read(STAGES_FILE))
    assert (DEFAULT_MODEL_DIR / "MODEL_CARD.md").read_text() == card
    assert f"beam {read('config.json')['decoder']['beam_width']} + 3-gram LM" in card
    rescored = read("metrics.json")["rescored"]
    assert ("`python -m speech build-default --rescore`" in card) == rescored
    flipped = model_card(read("config.json"), {**read("metrics.json"), "rescored": not rescored}, read(STAGES_FILE))
    assert ("`python -m speech build-default --rescore`" in flipped) == (not rescored)


def test_the_lm_text_holds_no_dev_or_test_sentence(tmp_path, monkeypatch):
    import speech.lm
    from speech import prompts
    from speech.pipelines.default_model import build_default_lm

    wordnet = tmp_path / "wordnet"
    wordnet.mkdir()
    (wordnet / "data.adv").write_text(
        '00000001 02 r 01 much 0 000 | to a great degree or extent; "she is much taller"\n'
        '00000002 02 r 01 somewhat 0 000 | to a certain degree; "it is somewhat better"\n'
        '00000003 02 r 01 well 0 000 | in a good or proper way; "the baby can walk well now"\n')
    monkeypatch.setattr(prompts, "WORDNET_DIR", str(wordnet))
    sotu = tmp_path / "lm-text" / "sotu" / "data"
    sotu.mkdir(parents=True)
    (sotu / "1790_george_washington_n.txt").write_text("Some say the baby can walk well now. We go on from here.\n")
    monkeypatch.setattr(prompts, "LM_TEXT_DIR", tmp_path / "lm-text")
    monkeypatch.setattr(prompts, "is_eval_sentence", lambda text: False)
    # Short prompts: the test's own list, then what build_default_lm keeps of it.
    asked = {}

    def fake_short_prompts(count, seed, exclude=()):
        asked.update(count=count, exclude=set(exclude))
        return [prompts.Prompt(t, t, "fake") for t in ("seven", "open the door", "zebra crossing")]

    monkeypatch.setattr(prompts, "short_prompts", fake_short_prompts)
    other = tmp_path / "other_dev.jsonl"
    other.write_text(json.dumps({"audio_filepath": "y.wav", "duration": 1.0, "text": "zebra crossing"}) + "\n")
    corpus, model = tmp_path / "corpus", tmp_path / "model"
    corpus.mkdir()
    model.mkdir()
    (corpus / "sentences.txt").write_text("a sentence for the lm\nthe baby can walk well now they say\n")
    for split, text in (("dev", "to a certain degree"), ("test", "the baby can walk well now")):
        (corpus / f"{split}.jsonl").write_text(json.dumps({"audio_filepath": "x.wav", "duration": 1.0,
                                                          "text": text}) + "\n")
    seen = {}

    def fake_build(text_file, output, **kwargs):
        seen["lines"] = Path(text_file).read_text().splitlines()
        return Path(output)

    monkeypatch.setattr(speech.lm, "build_ngram_lm", fake_build)
    build_default_lm(corpus, model, held_out_manifests=[other])
    # the test sentence's synset gives no definition, the dev transcript's own definition is dropped, the corpus
    # sentence and the general-English sentence holding the test sentence go too, and no short prompt is another
    # corpus's dev transcript
    assert seen["lines"] == ["a sentence for the lm", "to a great degree or extent", "we go on from here", "seven",
                             "open the door"]
    assert asked["exclude"] == {"to a certain degree", "the baby can walk well now"}
    assert sorted(p.name for p in model.iterdir()) == []  # the text file was temporary


def test_rescore_refuses_a_corpus_with_other_unseen_voices(tmp_path, caplog):
    from speech.pipelines.default_model import main

    corpus, model = tmp_path / "corpus", tmp_path / "model"
    corpus.mkdir()
    model.mkdir()
    (corpus / "test.jsonl").write_text("")
    (corpus / "corpus.json").write_text(json.dumps({"voices": {"test_only": ["flite:kal16", "mbrola:us2"]}}))
    (model / "metrics.json").write_text(json.dumps({"unseen_voices": ["flite:awb", "mbrola:us2"]}))
    assert main(["--rescore", "--corpus", str(corpus), "--output", str(model)]) == 2
    assert "not the same unseen voices" in caplog.text
    assert sorted(p.name for p in model.iterdir()) == ["metrics.json"]


def _fake_build(tmp_path, monkeypatch):
    """The build job's corpora, trainer and scorer replaced by fakes that record what they were asked to do."""
    import speech.pipelines.default_model as dm
    import speech.pipelines.synth_corpus
    import speech.pipelines.train

    corpus_info = {"hours": {"train": 1.0, "dev": 0.1, "test": 0.1}, "counts": {"train": 9, "dev": 1, "test": 1},
                   "voices": {"train": ["piper:x"], "test_only": list(dm.load_recipe().unseen_voices)}}
    calls = {"synth": [], "train": [], "config": []}

    def synth(argv):
        out = Path(argv[argv.index("--output") + 1])
        out.mkdir(parents=True)
        (out / "train.jsonl").write_text("")
        (out / "test.jsonl").write_text("")
        (out / "sentences.txt").write_text("a sentence\n")
        (out / "corpus.json").write_text(json.dumps(corpus_info))
        calls["synth"].append(out.name)
        return 0

    def train(argv):
        out = Path(argv[argv.index("--output") + 1])
        init = argv[argv.index("--init-from") + 1] if "--init-from" in argv else None
        sources = [Path(argv[i + 1]).parent.name for i, a in enumerate(argv) if a == "--train"]
        calls["train"].append((out.name, init and Path(init).name, sources))
        calls["config"].append(json.loads(Path(argv[argv.index("--config") + 1]).read_text()))
        epochs = int(argv[argv.index("--epochs") + 1])
        (out / "history.json").write_text(json.dumps([{"epoch": e, "seconds": 60, "dev_wer": 0.5, "dev_cer": 0.2}
                                                      for e in range(epochs)]))
        config = json.loads((DEFAULT_MODEL_DIR / "config.json").read_text())
        (out / "config.json").write_text(json.dumps(config))
        for name in ("model.weights.h5", "lm.npz"):
            (out / name).write_text(name)
        return 0

    def score(model_dir, corpus, info, args, rescored=False):
        metrics = json.loads((DEFAULT_MODEL_DIR / "metrics.json").read_text())
        (model_dir / "metrics.json").write_text(json.dumps(metrics))
        return metrics

    def build_lm(corpus, model_dir):
        (model_dir / "lm.npz").write_text("lm")
        return model_dir / "lm.npz"

    monkeypatch.setattr(speech.pipelines.synth_corpus, "main", synth)
    monkeypatch.setattr(speech.pipelines.train, "main", train)
    monkeypatch.setattr(dm, "_score", score)
    monkeypatch.setattr(dm, "build_default_lm", build_lm)
    data = tmp_path / "data"
    args = ["--corpus", str(data / "synth"), "--run", str(tmp_path / "runs" / "default"), "--output",
            str(tmp_path / "model")]
    return dm, calls, args


def test_a_build_goes_on_from_a_shipped_model_with_the_plans_later_stages(tmp_path, monkeypatch):
    dm, calls, args = _fake_build(tmp_path, monkeypatch)
    recipe = dm.load_recipe()
    rounds = len(recipe.rounds)
    # A whole build but the last round, from nothing: every stage trains, each from the one before.
    assert dm.main([*args, "--consolidation-rounds", str(rounds - 1)]) == 0
    first = [name for name, _, _ in calls["train"]]
    assert first[0] == "default" and len(first) == 1 + len(recipe.stages) + rounds - 1
    assert first[1:] == ["default" + st.suffix for st in recipe.plan(rounds - 1)]
    assert [init for _, init, _ in calls["train"]][1:] == first[:-1]
    records = json.loads((tmp_path / "model" / dm.STAGES_FILE).read_text())
    assert len(records) == len(first) and records[-1]["epochs"] == recipe.rounds[rounds - 2].epochs
    assert f"Stage {len(first)} (`" in (tmp_path / "model" / "MODEL_CARD.md").read_text()

    # On a new machine (no runs, no train-only corpora), --continue trains only the last round, from the model
    # folder, after synthesising every corpus that round trains on.
    import shutil

    shutil.rmtree(tmp_path / "runs")
    for path in (tmp_path / "data").iterdir():
        if path.name != "synth":
            shutil.rmtree(path)
    calls["train"].clear()
    calls["synth"].clear()
    assert dm.main([*args, "--continue", "--consolidation-rounds", str(rounds)]) == 0
    (name, init, sources), = calls["train"]
    assert name == "default" + recipe.rounds[-1].suffix and init == "model"
    assert sources == [c.name for c in recipe.rounds[-1].corpora] and sorted(calls["synth"]) == sorted(set(sources))
    records = json.loads((tmp_path / "model" / dm.STAGES_FILE).read_text())
    assert len(records) == len(first) + 1
    card = (tmp_path / "model" / "MODEL_CARD.md").read_text()
    assert f"Stage {len(first) + 1} (`" in card and f"Stage {len(first) + 2} (" not in card
    # The round trains with its own settings, and a stage with a dropout of its own says so on the card.
    assert calls["config"][-1] == recipe.rounds[-1].train.config()
    plan = dm._plan(dm.build_parser().parse_args(["--consolidation-rounds", str(rounds)]), recipe)
    commands = dm._commands(recipe, plan)[1:]
    with_dropout = [(c, st.train.config()["model"]["dropout"]) for c, st in zip(commands, plan)
                    if st.train.dropout is not None]
    assert with_dropout and all(c.endswith(f", dropout {d:g})") for c, d in with_dropout)
    assert all("dropout" not in c for c, st in zip(commands, plan) if st.train.dropout is None)
    # Nothing left to do: it says so and changes nothing.
    calls["train"].clear()
    assert dm.main([*args, "--continue", "--consolidation-rounds", str(rounds)]) == 0 and not calls["train"]
    # The default plan builds the bundled model's first stages, all of them; the stages after them fine-tune it for
    # real speech by hand (their commands are on the card and in docs/experiments.md).
    shipped = json.loads((DEFAULT_MODEL_DIR / dm.STAGES_FILE).read_text())
    built = 1 + len(recipe.stages) + recipe.shipped_rounds
    assert built <= len(first) + 1 and len(shipped) >= built
    assert all("short-prompts" in st["command"] for st in shipped[built:])
    assert dm._plan(dm.build_parser().parse_args([]), recipe) == recipe.stages + recipe.rounds[:recipe.shipped_rounds]


def test_the_recipe_loads_and_is_the_shipped_models_lineage():
    import speech.pipelines.default_model as dm

    recipe = dm.load_recipe()
    raw = json.loads(dm.RECIPE_FILE.read_text())
    new = [st["corpus"] for st in raw["stages"] + raw["rounds"] if isinstance(st.get("corpus"), dict)]
    names, seeds = [c["name"] for c in new], [raw["main"]["seed"], *(c["seed"] for c in new)]
    assert len(set(names)) == len(names) and len(set(seeds)) == len(seeds)  # each corpus its own folder and draws
    stages = recipe.stages + recipe.rounds
    assert len({st.suffix for st in stages}) == len(stages)  # each stage its own run folder
    assert {c.name for st in stages for c in st.corpora} == set(names)
    # The shipped model's stage records are this recipe's first stages, command for command: what --continue needs.
    shipped = json.loads((DEFAULT_MODEL_DIR / dm.STAGES_FILE).read_text())
    plan = recipe.plan()
    assert [(r["command"], r["epochs"]) for r in shipped[1:1 + len(plan)]] == \
           [(c, st.epochs) for c, st in zip(dm._commands(recipe, plan)[1:], plan)]


def test_a_malformed_recipe_is_a_clear_error(tmp_path, monkeypatch, capsys):
    import speech.pipelines.default_model as dm

    good = json.loads(dm.RECIPE_FILE.read_text())
    path = tmp_path / "recipe.json"

    def error(edit) -> str:
        recipe = json.loads(json.dumps(good))
        edit(recipe)
        path.write_text(json.dumps(recipe))
        with pytest.raises(dm.RecipeError) as e:
            dm.load_recipe(path)
        assert str(e.value).startswith(f"{path}: ")
        return str(e.value)

    assert "rounds[2].train: unknown key 'lerning_rate'" in error(
        lambda r: r["rounds"][2]["train"].update(lerning_rate=r["rounds"][2]["train"].pop("learning_rate")))
    assert "stages[0]: missing 'epochs'" in error(lambda r: r["stages"][0].pop("epochs"))
    assert "main.epochs: expected a whole number of at least 1, got \"12\"" in error(
        lambda r: r["main"].update(epochs="12"))
    assert "rounds[4].corpus.seed: seed 1 is synth2's too" in error(lambda r: r["rounds"][4]["corpus"].update(seed=1))
    assert "rounds[5].corpus.name: 'synth5' is an earlier stage's corpus" in error(
        lambda r: r["rounds"][5]["corpus"].update(name="synth5"))
    assert "no synth_options named 'widder_draws'" in error(
        lambda r: r["rounds"][4]["corpus"].update(synth=["widder_draws"]))
    assert "stages[1].corpus: no earlier stage brings a corpus 'synth9'" in error(
        lambda r: r["stages"][1].update(corpus="synth9"))
    assert "trains_on: expected one of" in error(lambda r: r["rounds"][0].update(trains_on="everything"))
    assert "train.batch: expected one of 'small', 'large'" in error(lambda r: r["main"]["train"].update(batch="huge"))
    assert "shipped_rounds: 99, but the recipe has" in error(lambda r: r.update(shipped_rounds=99))
    path.write_text('{"main": ')
    with pytest.raises(dm.RecipeError, match="not valid JSON"):
        dm.load_recipe(path)
    # The job says so in one line and exits 2 before it synthesises or trains anything.
    _, calls, args = _fake_build(tmp_path, monkeypatch)
    assert dm.main([*args, "--recipe", str(path)]) == 2
    assert "not valid JSON" in capsys.readouterr().err and not calls["synth"] and not calls["train"]
    assert dm.main([*args, "--consolidation-rounds", str(len(good["rounds"]) + 1)]) == 2
    assert f"has {len(good['rounds'])} rounds" in capsys.readouterr().err and not calls["synth"]


def test_continue_refuses_a_model_built_by_another_plan(tmp_path, monkeypatch, caplog):
    dm, calls, args = _fake_build(tmp_path, monkeypatch)
    model = tmp_path / "model"
    model.mkdir()
    record = {"command": "something else", "epochs": 1, "seconds": 60, "dev_wer": 0.5, "dev_cer": 0.2,
              "corpus": {}}
    (model / dm.STAGES_FILE).write_text(json.dumps([record, record]))
    assert dm.main([*args, "--continue"]) == 2
    assert "another plan" in caplog.text and not calls["train"]


def test_the_no_speech_check_transcribes_every_kind_as_files_and_counts_what_was_said():
    from speech.nonspeech import NON_SPEECH_KINDS
    from speech.pipelines.default_model import _non_speech_metrics

    class Said:
        def __init__(self, path, text, error=None):
            self.audio_filepath, self.text, self.error = path, text, error

    seen = []

    class Transcriber:  # says two words over hum, nothing over anything else
        def transcribe_files(self, paths, jobs=None):
            for p in paths:
                assert sf.info(p).duration >= 1.0
                seen.append(p)
                yield Said(p, "a word" if "/hum-" in p else "")

    metrics = _non_speech_metrics(Transcriber(), per_kind=2)
    assert metrics["clips"] == 2 * len(NON_SPEECH_KINDS) and metrics["with_words"] == 2 and metrics["words"] == 4
    assert metrics["with_words_by_kind"] == {k: 2 if k == "hum" else 0 for k in NON_SPEECH_KINDS}
    assert seen and not any(os.path.exists(p) for p in seen)  # written to a temporary folder, then gone

    class Broken(Transcriber):
        def transcribe_files(self, paths, jobs=None):
            yield from (Said(p, "", "cannot read") for p in paths)

    with pytest.raises(RuntimeError, match="cannot read"):  # a failure is not a clip that rightly got no words
        _non_speech_metrics(Broken(), per_kind=1)


def test_the_card_says_how_a_corpus_was_drawn_where_it_differs_from_the_defaults():
    from speech.pipelines.default_model import _draws

    assert _draws({}) == ""
    said = _draws({"rate_range": [0.75, 1.35], "multi_sentence_prob": 0.5, "max_sentences": 3,
                   "engines": ["espeak", "mbrola-mapped"], "engine_weights": {"mbrola-mapped": 0.2}})
    assert "speaking rate x0.75-1.35" in said and "50% of utterances reading 2-3 sentences" in said
    assert "engines added: mbrola-mapped (weight 0.2)" in said and "pitch" not in said
    converted = _draws({"augment_config": {"speed_prob": 0.5, "speed_range": [0.9, 1.1], "voice_prob": 0.6,
                                           "f0_range": [0.7, 1.45], "formant_range": [0.87, 1.15]}})
    assert "60% of augmented utterances in a converted voice (F0 x0.7-1.45, formants x0.87-1.15)" in converted
    assert "converted voice" not in _draws({"augment_config": {"speed_prob": 0.5, "speed_range": [0.9, 1.1],
                                                               "voice_prob": 0.0}})


def test_real_speech_figures_go_into_metrics_and_the_card(tmp_path):
    # scripts/bench_real.py --json, stored with --real-figures: the card shows every system of that one run.
    import shutil

    from speech.pipelines.default_model import REAL_SPEECH_HEADING, main

    model = tmp_path / "model"
    shutil.copytree(DEFAULT_MODEL_DIR, model)
    systems = [{"system": "default", "wer": 0.5, "cer": 0.3, "clips": 10, "empty": 0, "cpu_per_audio_s": 0.05},
               {"system": "pocketsphinx", "wer": 0.6, "cer": 0.35, "clips": 10, "empty": 1, "cpu_per_audio_s": 0.4},
               {"system": "greedy", "error": "exit 1: boom"}]
    figures = tmp_path / "real.json"
    figures.write_text(json.dumps({"manifest": "/data/realset/manifest.jsonl", "audio_seconds": 12.0,
                                   "command": "python scripts/bench_real.py --manifest M", "systems": systems}))
    assert main(["--output", str(model), "--real-figures", str(figures)]) == 0
    metrics = json.loads((model / "metrics.json").read_text())
    assert metrics["real_speech"]["systems"] == systems and metrics["real_speech"]["clips"] == 10
    card = (model / "MODEL_CARD.md").read_text()
    section = card.split(REAL_SPEECH_HEADING, 1)[1].split("\n## ", 1)[0]
    assert "| this model, default decoding | 0.500 | 0.300 | 0 of 10 | 0.050 |" in section
    assert "| PocketSphinx 5.1.1, stock en-us model | 0.600 | 0.350 | 1 of 10 | 0.400 |" in section
    assert "greedy" not in section and "python scripts/bench_real.py --manifest M" in section


def test_the_card_names_a_blank_penalty_where_the_decoding_has_one():
    from speech.pipelines.default_model import STAGES_FILE, model_card

    def read(name):
        return json.loads((DEFAULT_MODEL_DIR / name).read_text())

    config, metrics = read("config.json"), read("metrics.json")
    for decoder in (config["decoder"], metrics["decoder"]):
        decoder.pop("blank_penalty", None)
    assert "blank penalty" not in model_card(config, metrics, read(STAGES_FILE))
    config["decoder"]["blank_penalty"] = metrics["decoder"]["blank_penalty"] = 0.75
    card = model_card(config, metrics, read(STAGES_FILE))
    assert "lowered by 0.75 in each frame (`blank_penalty`)" in card
    assert "tuned on dev; blank penalty 0.75, chosen on dev" in card
