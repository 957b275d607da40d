import pytest

from speech.errors import TranscriptError
from speech.text import DEFAULT_CHARS, Vocabulary, normalize_text


@pytest.mark.parametrize("raw, expected", [
    ("Hello, World!", "hello world"),
    ("It’s 3rd of May", "it's third of may"),
    ("42% & 1.5", "forty two percent and one point five"),
    ("1,000 people", "one thousand people"),
    ("in 1984, 2005 and 2024; 3000 and 1099 are not years", "in nineteen eighty four two thousand and five and "
     "twenty twenty four three thousand and one thousand and ninety nine are not years"),
    ("the 1990s, the 80's, the 1900s, 100s", "the nineteen nineties the eighties the nineteen hundreds hundreds"),
    ("$5.50, $1, £0.01, €3,250 and $0.99", "five dollars and fifty cents one dollar one penny three thousand two "
     "hundred and fifty euros and ninety nine cents"),
    ("It costs $5. Or $5.50.", "it costs five dollars or five dollars and fifty cents"),
    ("$1.5 million, $3bn, $2.5", "one point five million dollars three billion dollars two point five dollars"),
    ("1,999 votes, the 1,000th, 20,000s", "one thousand nine hundred and ninety nine votes the one thousandth "
     "twenty thousands"),
    ("café naïve Straße", "cafe naive strasse"),
    ("well-known \"quote\"", "well known quote"),
    ("'quoted' don't", "quoted don't"),
    ("  many   spaces\t\n", "many spaces"),
    ("...", ""),
])
def test_normalize_policy(raw, expected):
    assert normalize_text(raw) == expected


def test_normalized_text_is_inside_default_vocabulary():
    text = normalize_text("Mr. O'Neil paid $3,250.75 — 20% more — on 2/3/2024 (see §4)!")
    assert set(text) <= set(DEFAULT_CHARS)


def test_encode_decode_round_trip_and_blank_is_last():
    vocab = Vocabulary()
    labels = vocab.encode("Hello there")
    assert vocab.decode(labels) == "hello there"
    assert vocab.blank == len(DEFAULT_CHARS) == vocab.num_classes - 1
    assert max(labels) < vocab.blank and min(labels) >= 0


def test_out_of_vocabulary_is_an_error_naming_the_characters():
    with pytest.raises(TranscriptError, match="日本"):
        Vocabulary().encode("日本語", path="x.wav")


def test_empty_transcript_is_an_error():
    with pytest.raises(TranscriptError, match="empty"):
        Vocabulary().encode("?!")


def test_custom_vocabulary_round_trips_through_json(tmp_path):
    vocab = Vocabulary(" abcé")
    vocab.save(tmp_path / "v.json")
    assert Vocabulary.load(tmp_path / "v.json") == vocab
    with pytest.raises(ValueError):
        Vocabulary("abc")  # no space
    with pytest.raises(ValueError):
        Vocabulary(" aa")


def test_custom_vocabulary_keeps_its_accented_letters():
    assert Vocabulary(" abcdefghijklmnopqrstuvwxyzé").normalize("Café Noël") == "café noel"


@pytest.mark.parametrize("text, expected", [("-5 degrees", "minus five degrees"), ("it was -12.5 today",
                                            "it was minus twelve point five today"), ("(-3)", "minus three"),
                                            ("\u22127", "minus seven"), ("pages 1-2", "pages one two"),
                                            ("x-5", "x five")])
def test_a_minus_sign_is_said_but_a_hyphen_between_numbers_is_not(text, expected):
    assert normalize_text(text) == expected
