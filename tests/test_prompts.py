"""Prompt sentences: parsing of the text packages, filters, normalisation, fallback, determinism."""

from __future__ import annotations

import gzip
import os

import pytest

from speech import prompts
from speech.text import DEFAULT_CHARS, normalize_text

FORTUNE = """\
Digital circuits are made from analog parts. It is a well known fact.
\t\t-- Don Vonada
%
Dr. Smith met Mr. Jones at 5 pm. They talked about the FBI and the weather.
%
You will be married within a year, and divorced within two.
%
J. R. R. Tolkien wrote long books; "Never laugh at live dragons," he said.
%
Do not  use this   sentence. Do not use this sentence.
"""
WORDNET = """\
  1 This software and database is being provided "AS IS" by Princeton
00001740 29 v 04 breathe 0 001 | draw air into the lungs; "I can breathe better now"; "Breathe deeply"
00002724 29 v 01 choke 0 002 | breathe with great difficulty; "She choked with emotion when she spoke about her husband"
"""
DEVIL = """\
PREFACE text that is not a definition at all and should be skipped.

ABNORMAL, adj.  Not conforming to standard.  In matters of thought and
conduct, to be independent is to be abnormal.

    Some indented verse line that is skipped entirely here.
"""


@pytest.fixture
def fixture_texts(tmp_path, monkeypatch):
    fortunes = tmp_path / "fortunes"
    fortunes.mkdir()
    (fortunes / "misc").write_text(FORTUNE)
    (fortunes / "misc.dat").write_bytes(b"\x00binary")
    (fortunes / "ascii-art").write_text("Pictures of cats made of many little letters.\n")
    wordnet = tmp_path / "wordnet"
    wordnet.mkdir()
    (wordnet / "data.verb").write_text(WORDNET)
    devil = tmp_path / "devil.dict.dz"
    with gzip.open(devil, "wt") as f:
        f.write(DEVIL)
    monkeypatch.setattr(prompts, "FORTUNE_DIR", str(fortunes))
    monkeypatch.setattr(prompts, "WORDNET_DIR", str(wordnet))
    monkeypatch.setattr(prompts, "DEVIL_DICT", str(devil))
    prompts._scan.cache_clear()
    yield tmp_path
    prompts._scan.cache_clear()


def test_split_sentences_respects_abbreviations_and_initials():
    text = 'Dr. Smith arrived. He said "Hello there." Then J. R. Bob left! Was it late? Yes.'
    assert prompts.split_sentences(text) == [
        "Dr. Smith arrived.", 'He said "Hello there."', "Then J. R. Bob left!", "Was it late?", "Yes."]


def test_parses_each_source_and_filters_unspeakable(fixture_texts):
    found = prompts.load_prompts(min_words=3, max_words=40)
    texts = [p.text for p in found]
    assert texts == [
        "digital circuits are made from analog parts",
        "it is a well known fact",
        "you will be married within a year and divorced within two",
        "do not use this sentence",
        "i can breathe better now",
        "she choked with emotion when she spoke about her husband",
        "not conforming to standard",
        "in matters of thought and conduct to be independent is to be abnormal",
    ]
    sources = {p.text: p.source for p in found}
    assert sources["i can breathe better now"] == "wordnet/verb"
    assert sources["not conforming to standard"] == "devil"
    # spoken keeps punctuation for the engine and normalises to exactly the transcript
    for p in found:
        assert normalize_text(p.spoken) == p.text
        assert p.spoken[-1] in ".!?" and '"' not in p.spoken
    # attribution lines, digits, abbreviations, acronyms, initials and ascii-art never become prompts
    joined = " ".join(texts)
    for bad in ("vonada", "smith", "fbi", "tolkien", "cats"):
        assert bad not in joined


def test_glosses_for_the_lm_leave_out_the_synsets_of_held_out_sentences(fixture_texts):
    assert prompts.load_glosses() == ["draw air into the lungs", "breathe with great difficulty"]
    # "Breathe deeply" is one of the first synset's examples: a held-out sentence drops its whole synset
    assert prompts.load_glosses(exclude={"breathe deeply"}) == ["breathe with great difficulty"]
    assert prompts.load_glosses(min_words=5) == ["draw air into the lungs"]
    # a definition that holds a held-out transcript, whole or inside it, is left out too
    assert prompts.load_glosses(exclude={"great difficulty"}) == ["draw air into the lungs"]
    assert prompts.load_glosses(exclude={"eat difficulty"}) == prompts.load_glosses()  # whole words only


def test_phrase_finder_matches_runs_of_whole_words():
    holds = prompts.phrase_finder(["to a certain degree", "all"])
    assert holds("to a certain degree") and holds("true to a certain degree at least") and holds("all of it")
    assert not holds("to a certain extent") and not holds("a ball") and not prompts.phrase_finder([])("anything")


def test_sentences_for_the_lm_keep_digits_spelled_out(fixture_texts):
    sentences = prompts.load_sentences(min_words=3, max_words=40)
    assert "they talked about the fbi and the weather" in sentences
    assert any("five pm" in s for s in sentences)
    assert len(sentences) == len(set(sentences))
    assert set(p.text for p in prompts.load_prompts(3, 40)) <= set(sentences)
    assert prompts.load_sentences(min_words=5, max_words=6) == [
        s for s in sentences if 5 <= len(s.split()) <= 6]


def test_builtin_fallback_when_no_package(tmp_path, monkeypatch):
    monkeypatch.setattr(prompts, "FORTUNE_DIR", str(tmp_path / "none"))
    monkeypatch.setattr(prompts, "WORDNET_DIR", str(tmp_path / "none"))
    monkeypatch.setattr(prompts, "DEVIL_DICT", str(tmp_path / "none.dz"))
    prompts._scan.cache_clear()
    try:
        found = prompts.load_prompts()
        assert len(found) >= 40 and all(p.source == "builtin" for p in found)
        assert len(" ".join(p.text for p in found).split()) < 500
        assert all(set(p.text) <= set(DEFAULT_CHARS) for p in found)
    finally:
        prompts._scan.cache_clear()


def test_write_sentences(tmp_path, fixture_texts):
    path = tmp_path / "out" / "sentences.txt"
    n = prompts.write_sentences(path)
    lines = path.read_text().splitlines()
    assert n == len(lines) == len(prompts.load_sentences())
    assert not [p for p in os.listdir(path.parent) if p.endswith(".tmp")]


@pytest.mark.skipif(not os.path.isdir(prompts.FORTUNE_DIR) or not os.path.isdir(prompts.WORDNET_DIR),
                    reason="fortunes/wordnet-base not installed (scripts/install_tts.sh)")
def test_installed_packages_give_many_clean_sentences():
    prompts._scan.cache_clear()
    sentences = prompts.load_sentences()
    found = prompts.load_prompts()
    assert len(sentences) > 20000 and len(found) > 10000
    assert len(set(sentences)) == len(sentences)
    allowed = set(DEFAULT_CHARS)
    assert all(set(s) <= allowed and 3 <= len(s.split()) <= 40 for s in sentences)
    assert all(4 <= len(p.text.split()) <= 20 for p in found)
    assert prompts.load_sentences()[:50] == sentences[:50]  # deterministic order


def test_short_prompts_are_what_people_say_in_a_few_words(fixture_texts):
    held_out = normalize_text("You will be married within a year, and divorced within two.")
    short = prompts.short_prompts(200, seed=3, exclude={held_out})
    assert short == prompts.short_prompts(200, seed=3, exclude={held_out})  # deterministic for a seed
    texts = [p.text for p in short]
    assert len(set(texts)) == len(texts)
    assert all(1 <= len(t.split()) <= 7 and set(t) <= set(DEFAULT_CHARS) for t in texts)
    assert all(p.text == normalize_text(p.text) for p in short)
    # Single words, numbers spelled out, and spelled letters (read as their names, transcribed as letters).
    assert any(len(t.split()) == 1 for t in texts)
    assert any(t.split()[0] in {"zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
                                "ten", "nineteen", "twenty"} for t in texts)
    letters = [p for p in short if all(len(w) == 1 for w in p.text.split()) and p.spoken.isupper()]
    assert letters and all(p.spoken == " ".join(c.upper() + "." for c in p.text.split()) for p in letters)
    # Nothing from a held-out sentence: its words "married" and "divorced" occur nowhere else in the texts.
    assert not any(w in t.split() for t in texts for w in ("married", "divorced"))


def _lm_text_fixture(root):
    (root / "brown").mkdir(parents=True)
    (root / "brown" / "ca01").write_text(
        "\n\n\tThe/at jury/nn said/vbd it/pps did/dod find/vb that/cs many/ap of/in Georgia's/np$ laws/nns "
        "are/ber outmoded/jj ./.\n\n\tIt/pps cost/vbd 5/cd dollars/nns ./.\n", encoding="utf-8")
    (root / "brown" / "README").write_text("not a text file of the corpus", encoding="utf-8")
    (root / "sotu" / "data").mkdir(parents=True)
    (root / "sotu" / "data" / "1790_george_washington_n.txt").write_text(
        "I embrace with great satisfaction the opportunity. [Applause] We shall all be glad of it.\n",
        encoding="utf-8")
    (root / "ham" / "data" / "easy-ham-1").mkdir(parents=True)
    (root / "ham" / "data" / "easy-ham-1" / "0001.txt").write_text(
        "From: a@b.example\nSubject: build\n\nI can't reproduce this error at all.\n> quoted reply line here\n"
        "See http://example.com for the log file\n", encoding="utf-8")
    (root / "ham" / "data" / "easy-ham-1" / "0002.txt").write_text(
        "Subject: x\n\n<html><body>Buy this now please friend</body></html>\n", encoding="utf-8")


def test_lm_text_reads_each_source_clean_and_keeps_the_eval_share_out(tmp_path, monkeypatch):
    _lm_text_fixture(tmp_path)
    prompts._lm_text_sentences.cache_clear()
    text = prompts.load_lm_text(folder=tmp_path)
    assert "the jury said it did find that many of georgia's laws are outmoded" in text  # tags stripped
    assert "it cost five dollars" in text  # digits spelled out, as the vocabulary needs
    assert "i embrace with great satisfaction the opportunity" in text  # "[Applause]" dropped
    assert "i can't reproduce this error at all" in text
    assert not any("quoted" in t or "http" in t or "buy this" in t or "not a text" in t for t in text)
    # Held-out transcripts take out every line that holds them.
    assert "it cost five dollars" not in prompts.load_lm_text(exclude={"five dollars"}, folder=tmp_path)
    # One sentence in EVAL_SHARE goes to the evaluation prompts instead of the LM: never both.
    monkeypatch.setattr(prompts, "is_eval_sentence", lambda t: t.startswith("we shall"))
    assert "we shall all be glad of it" not in prompts.load_lm_text(folder=tmp_path)
    assert prompts.load_read_eval_sentences(folder=tmp_path, min_words=3) == ["we shall all be glad of it"]
    assert prompts.load_lm_text(folder=tmp_path / "missing") == []  # nothing installed: no extra text
    prompts._lm_text_sentences.cache_clear()


def test_eval_share_is_a_stable_fraction():
    sentences = [f"sentence number {normalize_text(str(i))}" for i in range(4000)]
    held = [s for s in sentences if prompts.is_eval_sentence(s)]
    assert 0.5 / prompts.EVAL_SHARE < len(held) / len(sentences) < 2.0 / prompts.EVAL_SHARE
    assert held == [s for s in sentences if prompts.is_eval_sentence(s)]  # a hash, not a random draw
