"""Language identification: foreign tweets (tests/data/foreign_tweets.tsv, written for these tests in 19
languages) are named and warned about; English airline tweets are not (the false-alarm rate on the whole test
part, 0.07%, is measured in docs/language.md)."""

from __future__ import annotations

import csv
import re
import unicodedata

import pytest

from tests.conftest import ROOT, body_of, post
from tweet_sentiment.language import UNDETERMINED, language_of, unread_warning, written_text

FOREIGN = list(csv.DictReader((ROOT / "tests/data/foreign_tweets.tsv").open(encoding="utf-8"), delimiter="\t"))
# Real airline test tweets, short ones included (the hardest for a detector).
ENGLISH = [
    "@united lost my bag again, worst airline ever",
    "@JetBlue thanks!",
    "@SouthwestAir love you guys",
    "@AmericanAir flight 1234 delayed 3 hrs",
    "@USAirways on hold for 2 hours. Ridiculous.",
    "@VirginAmerica you're the best 😍",
    "@united why",
    "@JetBlue Cancelled Flightled again?? #fail",
]

# Characters a reader does not see: zero-width space, non-joiner and joiner, word joiner, byte-order mark, soft
# hyphen. Between letters they split the words that language identification read.
INVISIBLE = ["\u200b", "\u200c", "\u200d", "\u2060", "\u00ad", "\ufeff"]
FRENCH_COMPLAINTS = [
    "@AirParadis vol annulé, scandaleux",
    "@AirParadis bagage égaré à Orly, délai inacceptable",
    "@AirParadis nul, plus jamais avec vous",
    "@AirParadis pourquoi mon billet a-t-il été annulé ?",
]


def disguised(tweet: str) -> dict[str, str]:
    """The tweet with each invisible character between every two letters, and decomposed (NFD: accents as
    combining marks)."""
    variants = {f"U+{ord(mark):04X}": re.sub(r"(?<=[^\W\d_])(?=[^\W\d_])", mark, tweet) for mark in INVISIBLE}
    return variants | {"NFD": unicodedata.normalize("NFD", tweet)}


DISGUISED = {
    f"{index}-{name}": variant
    for index, tweet in enumerate(FRENCH_COMPLAINTS)
    for name, variant in disguised(tweet).items()
}


@pytest.mark.parametrize("row", FOREIGN, ids=[f"{row['language']}-{index}" for index, row in enumerate(FOREIGN)])
def test_every_foreign_tweet_is_named(row):
    assert language_of(row["tweet"]) == row["language"]


@pytest.mark.parametrize("tweet", ENGLISH)
def test_english_tweets_are_english(tweet):
    assert language_of(tweet) == "en"


@pytest.mark.parametrize("tweet", ["@united", "😡😡😡", "https://t.co/x1Yz 123", "!!! ???"])
def test_a_tweet_without_letters_is_undetermined(tweet):
    assert language_of(tweet) == UNDETERMINED


def test_handles_links_hashtag_signs_and_emoji_are_not_read_as_words():
    assert written_text("@AirParadis merci 😍 https://t.co/x #vol_AF12") == "merci vol AF"


@pytest.mark.parametrize("tweet", DISGUISED.values(), ids=DISGUISED.keys())
def test_invisible_characters_and_decomposed_accents_do_not_hide_the_language(tweet):
    """Answered as English without a warning (11 of 57 variants in the issue), though a reader reads French."""
    assert language_of(tweet) == "fr"


def test_a_disguised_french_complaint_gets_the_french_warning():
    from tests.conftest import SHIPPED_MANIFEST
    from tweet_sentiment.model import SentimentModel

    predictions = SentimentModel.load(SHIPPED_MANIFEST).predict(list(DISGUISED.values()))
    # The language warning first; how sure the answer is comes after it (tweet_sentiment/model.py).
    assert {(p.language, p.warnings[0]) for p in predictions} == {("fr", unread_warning("fr", ["en"]))}
    assert all(warning.startswith("unsure ") for p in predictions for warning in p.warnings[1:])


def test_the_warning_names_both_languages():
    assert unread_warning("fr", ["en"]) == (
        "written in French: the model reads English tweets; this answer is unreliable"
    )


def test_a_french_complaint_is_answered_with_its_language_and_a_warning(http_functions):
    french, english = FOREIGN[0]["tweet"], ENGLISH[0]
    body = body_of(post(http_functions["predict"], {"texts": [french, english]}))
    foreign, read = body["predictions"]
    assert foreign["language"] == "fr" and foreign["label"] in body["labels"]
    assert foreign["warnings"] == ["written in French: the model reads English tweets; this answer is unreliable"]
    assert read["language"] == "en" and "warnings" not in read
    single = body_of(post(http_functions["predict"], {"text": "@AirParadis 航班取消了，没有任何解释，太差了"}))
    assert single["language"] == "zh" and "written in Chinese" in single["warnings"][0]


def test_concurrent_first_tweets_load_the_identifier_once(monkeypatch):
    """16 first requests at once each loaded the model (0.8 s of CPU apiece): 10 s for the first answers."""
    import threading

    from py3langid.langid import LanguageIdentifier

    from tweet_sentiment import language

    language._loaded.cache_clear()
    loads = []
    real = LanguageIdentifier.from_model_file.__func__

    def counted(cls, *args, **kwargs):
        loads.append(1)
        return real(cls, *args, **kwargs)

    monkeypatch.setattr(LanguageIdentifier, "from_model_file", classmethod(counted))
    start = threading.Barrier(8)

    def first_tweet():
        start.wait()
        language.language_of("@united lost my bag again")

    threads = [threading.Thread(target=first_tweet) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(loads) == 1


def test_loading_a_model_loads_the_language_identifier():
    from tests.conftest import SHIPPED_MANIFEST
    from tweet_sentiment import language
    from tweet_sentiment.model import SentimentModel

    language._loaded.cache_clear()
    SentimentModel.load(SHIPPED_MANIFEST)
    assert language._loaded.cache_info().currsize == 1  # not on the first user's request
