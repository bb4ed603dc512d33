"""Each text processing step, switched on and off, and both model variants, on real airline tweets."""

from __future__ import annotations

import dataclasses
import re

import pytest

from tweet_sentiment.text import (
    NORMALISATIONS,
    TextConfig,
    abbreviations,
    clean,
    preprocess,
    stopwords,
    tokens,
)

# Real tweets of the CrowdFlower airline corpus, as stored there (HTML entities included).
AMPERSAND = "@united Fingers crossed &amp; its all intact. Very disappointed with this experience"
URL = "@VirginAmerica Your chat support is not working on your site: http://t.co/vhp2GtDWPk"
HASHTAGS = "@VirginAmerica amazing to me that we can't get any cold air from the vents. #noair #worstflightever"
SLANG = (
    "@VirginAmerica What happened 2 ur vegan food options?! At least say on ur site so i know "
    "I won't be able 2 eat anything for next 6 hrs #fail"
)
THANKS = "@VirginAmerica i've been trying 2 book since last week & the page never loads. thx!"
ELONGATED = "@VirginAmerica soooo are you guys going to leave the seatbelt light on all flight?"
ACCENTED = "@SouthwestAir is this a joke? My return flight is delayed too! Café closed, crème brûlée gone"
LOST_BAG = "@united I sure did.   I had to drive a total of 3 hours to get my own bag."

ALL_OFF = TextConfig(
    unescape_html=False,
    replace_urls=False,
    replace_mentions=False,
    split_hashtags=False,
    lowercase=False,
    ascii_fold=False,
    reduce_elongations=False,
    expand_abbreviations=False,
    remove_stopwords=False,
    normalisation="none",
)


def only(**steps) -> TextConfig:
    return dataclasses.replace(ALL_OFF, **steps)


def test_html_unescape():
    assert "&" in clean(AMPERSAND, only(unescape_html=True)) and "&amp;" not in clean(
        AMPERSAND, only(unescape_html=True)
    )
    assert "&amp;" in clean(AMPERSAND, ALL_OFF)


def test_urls_become_a_placeholder():
    assert tokens(URL, only(replace_urls=True))[-1] == "url"
    assert "vhp" not in preprocess(URL, only(replace_urls=True))
    assert "httptcovhpGtDWPk" in tokens(URL, ALL_OFF)


def test_mentions_become_a_placeholder():
    assert tokens(URL, only(replace_mentions=True))[0] == "user"
    assert tokens(URL, ALL_OFF)[0] == "VirginAmerica"


def test_hashtag_words_are_kept_and_split():
    assert tokens(HASHTAGS, only(split_hashtags=True, lowercase=True))[-2:] == ["noair", "worstflightever"]
    assert tokens(HASHTAGS, ALL_OFF)[-2:] == ["noair", "worstflightever"]  # letters-only step drops the "#"
    assert tokens("@JetBlue #NeverAgain", only(split_hashtags=True, lowercase=True)) == ["jetblue", "never", "again"]
    assert tokens("@JetBlue #NeverAgain", ALL_OFF) == ["JetBlue", "NeverAgain"]


def test_lowercase():
    assert tokens(URL, only(lowercase=True))[:2] == ["virginamerica", "your"]
    assert tokens(URL, ALL_OFF)[1] == "Your"


def test_ascii_folding():
    assert "cafe" in tokens(ACCENTED, only(ascii_fold=True, lowercase=True))
    assert "brulee" in tokens(ACCENTED, only(ascii_fold=True, lowercase=True))
    # Without folding, accented letters are dropped by the letters-only step and words are cut.
    assert "cafe" not in tokens(ACCENTED, only(lowercase=True))


def test_elongations_reduced():
    assert "sooo" in tokens(ELONGATED, only(reduce_elongations=True, lowercase=True))
    assert "soooo" in tokens(ELONGATED, only(lowercase=True))


def test_abbreviations_expanded_before_digits_are_stripped():
    config = only(expand_abbreviations=True, lowercase=True)
    assert "hours" in tokens(SLANG, config) and "your" in tokens(SLANG, config)
    assert tokens(THANKS, config)[-1] == "thanks"
    assert preprocess("@united won't refund, gr8 service w/ no help b4 boarding", config) == (
        "united will not refund great service with no help before boarding"
    )
    assert "thx" in tokens(THANKS, only(lowercase=True))


def test_abbreviation_table_is_curated():
    table = abbreviations()
    assert len(table) >= 150
    assert all(key == key.lower() and expansion.strip() for key, expansion in table.items())
    for shorthand in ("u", "pls", "thx", "gr8", "idk", "smh", "wtf", "dm", "tsa"):
        assert shorthand in table


def test_stopwords_removed_but_negations_and_sentiment_words_kept():
    config = only(remove_stopwords=True, lowercase=True, expand_abbreviations=True)
    processed = tokens("@united I can't say this was not a good flight, no never, nor the worst", config)
    assert processed == ["united", "not", "say", "not", "good", "flight", "no", "never", "nor", "worst"]
    words = stopwords()
    assert not words & {"not", "no", "nor", "never", "good", "great", "thanks", "please", "bad", "worst"}
    assert not any(word.endswith("n't") for word in words)


def test_lemmatisation_and_stemming_are_two_variants():
    text = "@united flights delayed again, bags lost and agents were rude"
    lemmas = tokens(text, TextConfig(normalisation="lemmatize"))
    stems = tokens(text, TextConfig(normalisation="stem"))
    plain = tokens(text, TextConfig(normalisation="none"))
    assert lemmas == ["user", "flight", "delay", "bag", "lose", "agent", "rude"]
    assert stems == ["user", "flight", "delay", "bag", "lost", "agent", "rude"]
    assert plain == ["user", "flights", "delayed", "bags", "lost", "agents", "rude"]
    assert tokens("amazing crew, loving it", TextConfig(normalisation="stem")) == ["amaz", "crew", "love"]


@pytest.mark.parametrize("normalisation", NORMALISATIONS)
def test_every_real_tweet_becomes_ascii_lowercase_words(normalisation):
    config = TextConfig(normalisation=normalisation)
    for tweet in (AMPERSAND, URL, HASHTAGS, SLANG, THANKS, ELONGATED, ACCENTED, LOST_BAG):
        processed = preprocess(tweet, config)
        assert re.fullmatch(r"[a-z]+( [a-z]+)*", processed), (tweet, processed)


def test_config_round_trip_and_validation():
    config = TextConfig(normalisation="stem", remove_stopwords=False)
    assert TextConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="unknown text processing settings"):
        TextConfig.from_dict({**config.to_dict(), "emoji": True})
    with pytest.raises(ValueError, match="normalisation"):
        TextConfig(normalisation="porter")


TRANSFORMER_TEXT = TextConfig(remove_stopwords=False, normalisation="none", emoji_to_words=True, letters_only=False)


@pytest.mark.parametrize(
    "tweet, words",
    [
        ("@united 😡😡😡", "user enraged face enraged face enraged face"),
        ("@JetBlue ❤️❤️✈️", "user red heart red heart airplane"),
        (":( :( :(", "sad face sad face sad face"),
        ("on time :D <3", "on time grinning face red heart"),
    ],
)
def test_emoji_and_emoticons_become_words(tweet, words):
    assert preprocess(tweet, TRANSFORMER_TEXT) == words


def test_the_transformer_text_keeps_punctuation_and_digits():
    assert preprocess("@united 3 hours late!!!!!! why???", TRANSFORMER_TEXT) == "user 3 hours late ! ! ! why ? ? ?"


def test_the_defaults_read_emoji_and_punctuation_as_before():
    # Models exported before these switches existed keep the exact processing they were trained with.
    assert preprocess("@united 😡 late!!! :(", TextConfig()) == preprocess("@united late", TextConfig())
    assert (
        TextConfig.from_dict(
            {
                key: value
                for key, value in TextConfig().to_dict().items()
                if key not in ("emoji_to_words", "letters_only")
            }
        )
        == TextConfig()
    )
