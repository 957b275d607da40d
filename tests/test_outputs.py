import json

import pytest

from speech.decoding import Word
from speech.outputs import cues, json_line, render, to_srt, to_vtt

WORDS = [Word("hello", 0.5, 0.9, 0.9), Word("world", 1.0, 1.4, 0.8), Word("again", 3.0, 3.5, 0.7)]


def test_cues_split_on_pauses_and_length():
    assert cues(WORDS) == [(0.5, 1.4, "hello world"), (3.0, 3.5, "again")]
    many = [Word(f"w{i}", i * 0.5, i * 0.5 + 0.4, 1.0) for i in range(30)]
    for start, end, text in cues(many):
        assert end - start <= 6.0 and len(text) <= 42


def test_srt_and_vtt():
    srt = to_srt(WORDS)
    assert srt.startswith("1\n00:00:00,500 --> 00:00:01,400\nhello world\n\n2\n00:00:03,000 --> 00:00:03,500\nagain")
    vtt = to_vtt(WORDS)
    assert vtt.startswith("WEBVTT\n\n00:00:00.500 --> 00:00:01.400\nhello world\n")
    assert to_srt([]) == "" and to_vtt([]) == "WEBVTT\n\n"


def test_render_txt_and_jsonl():
    record = {"audio_filepath": "a.wav", "text": "hello world", "words": []}
    assert render(record, WORDS, "txt") == "hello world\n"
    assert render(record, WORDS, "jsonl").startswith('{"audio_filepath": "a.wav"')


def test_json_lines_are_valid_json_for_any_file_name():
    # A file name that is not UTF-8 reaches Python as lone surrogates, which a UTF-8 file cannot hold.
    name = b"caf\xe9.wav".decode("utf-8", "surrogateescape")
    line = json_line({"audio_filepath": name, "text": "é"})
    line.encode("utf-8")
    assert json.loads(line) == {"audio_filepath": name, "text": "é"}
    assert json_line({"text": "é"}) == '{"text": "é"}'  # plain UTF-8 stays readable
    with pytest.raises(ValueError):
        json_line({"confidence": float("nan")})  # never written as NaN, which JSON does not have
