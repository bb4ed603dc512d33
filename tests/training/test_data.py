"""Every loader on small fixture files (malformed ones included), the default corpus and the split."""

from __future__ import annotations

import pandas as pd
import pytest

from training.data import DataError, fingerprint, load_tweets, sample_tweets, split_tweets
from training.emoji_tweets import emoji_sentiments, emoji_tweets

SENTIMENT140 = (
    '"0","1467810369","Mon Apr 06 22:19:45 PDT 2009","NO_QUERY","_TheSpecialOne_","@switchfoot http://twitpic.com/2y1zl - Awww, that\'s a bummer"\n'
    '"4","1467822272","Mon Apr 06 22:22:45 PDT 2009","NO_QUERY","ersle","I LOVE @Health4UandPets u guys r the best!! café"\n'
    '"2","14072","Sun May 10 23:19:53 UTC 2009","latex","proggit","@lukewhite yeah, latex is ok &amp; fine"\n'
)
AIRLINE_CSV = (
    "tweet_id,airline_sentiment,airline_sentiment_confidence,negativereason,airline,text\n"
    "570306133677760513,neutral,1.0,,Virgin America,@VirginAmerica What @dhepburn said.\n"
    '570301130888122368,positive,0.3486,,Virgin America,"@VirginAmerica plus you\'ve added commercials to the experience... tacky."\n'
    '570301083672813571,negative,0.6837,Bad Flight,Virgin America,"@VirginAmerica it\'s really aggressive to blast obnoxious ""entertainment"" in your guests\' faces"\n'
)


def write(tmp_path, name, content, encoding="utf-8"):
    path = tmp_path / name
    path.write_bytes(content.encode(encoding))
    return path


def test_sentiment140_polarities_and_latin1(tmp_path):
    tweets = load_tweets("sentiment140", write(tmp_path, "s140.csv", SENTIMENT140, "latin-1"))
    assert tweets["sentiment"].tolist() == ["negative", "positive", "neutral"]
    assert tweets["text"][1].endswith("café")
    assert tweets["text"][2] == "@lukewhite yeah, latex is ok & fine"  # HTML-unescaped


def test_airline_csv(tmp_path):
    tweets = load_tweets("airline-csv", write(tmp_path, "Tweets.csv", AIRLINE_CSV))
    assert tweets["sentiment"].tolist() == ["neutral", "positive", "negative"]
    assert '"entertainment"' in tweets["text"][2]
    assert tweets["airline"].all()


def test_any_csv_with_named_columns(tmp_path):
    path = write(tmp_path, "mine.csv", 'id,tweet,label\n1,"@united great crew",POSITIVE\n2,@united meh,neutral\n')
    tweets = load_tweets("csv", path, text_column="tweet", label_column="label")
    assert tweets["sentiment"].tolist() == ["positive", "neutral"]


def test_duplicates_dropped_and_conflicting_labels_removed(tmp_path):
    content = "text,sentiment\nsame tweet,negative\nsame tweet,negative\ntorn tweet,negative\ntorn tweet,positive\nother,neutral\n"
    tweets = load_tweets("csv", write(tmp_path, "dups.csv", content))
    assert tweets["text"].tolist() == ["same tweet", "other"]


@pytest.mark.parametrize(
    "source, content, encoding, message",
    [
        ("sentiment140", SENTIMENT140 + '"4","1","date","q","user"\n', "latin-1", r"s\.csv, line 4: 5 fields"),
        ("sentiment140", SENTIMENT140 + '"3","1","d","q","u","text"\n', "latin-1", r"line 4: unknown label '3'"),
        ("airline-csv", AIRLINE_CSV + "1,angry,1.0,,United,@united text\n", "utf-8", r"line 5: unknown label 'angry'"),
        ("airline-csv", AIRLINE_CSV + "1,negative,1.0,,United\n", "utf-8", r"line 5: 5 fields where 6 are expected"),
        (
            "airline-csv",
            AIRLINE_CSV.replace("tweet_id,airline_sentiment", "tweet_id,sentiment"),
            "utf-8",
            r"line 1: no column \['airline_sentiment'\]",
        ),
        ("csv", "text,sentiment\n   ,negative\n", "utf-8", r"line 2: empty tweet text"),
        ("csv", "text,sentiment\n", "utf-8", r"no labelled tweets"),
        ("csv", "", "utf-8", r"the file is empty"),
    ],
)
def test_malformed_files_name_file_line_and_fix(tmp_path, source, content, encoding, message):
    path = write(tmp_path, "s.csv", content, encoding)
    with pytest.raises(DataError, match=message) as raised:
        load_tweets(source, path)
    assert "Fix:" in str(raised.value) and str(path) in str(raised.value)


def test_wrong_encoding_names_the_line(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes(b"text,sentiment\n@united fine,neutral\n@united caf\xe9 closed,negative\n")
    with pytest.raises(DataError, match=r"latin\.csv, line 3: not valid utf-8.*--encoding latin-1"):
        load_tweets("csv", path)
    assert load_tweets("csv", path, encoding="latin-1")["text"][1] == "@united café closed"


def test_missing_file_and_missing_path(tmp_path):
    with pytest.raises(DataError, match=r"nope\.csv: file not found"):
        load_tweets("sentiment140", tmp_path / "nope.csv")
    with pytest.raises(DataError, match="pass its path"):
        load_tweets("airline-csv")
    with pytest.raises(DataError, match="unknown data source"):
        load_tweets("kaggle")


@pytest.fixture(scope="module")
def corpus() -> pd.DataFrame:
    return load_tweets("default")


def test_default_corpus_is_unescaped_deduplicated_with_an_airline_subset(corpus):
    assert 36_000 < len(corpus) < 38_158
    assert not corpus["text"].duplicated().any()
    assert corpus["text"].str.contains("&amp;").sum() <= 1  # one tweet was escaped twice at the source
    airline = corpus[corpus["airline"]]
    assert 14_000 < len(airline) < 14_700
    assert airline["text"].str.contains("@united", case=False).any()
    assert set(corpus["sentiment"]) == {"negative", "neutral", "positive"}


def test_split_is_stratified_disjoint_and_reproducible(corpus):
    split = split_tweets(corpus, train_on_all=False)
    airline = corpus[corpus["airline"]]
    sizes = {name: len(part) for name, part in split.parts().items()}
    assert sum(sizes.values()) == len(airline)
    assert sizes["test"] == pytest.approx(0.2 * len(airline), abs=1)
    assert sizes["validation"] == pytest.approx(0.1 * len(airline), abs=1)
    texts = [set(part["text"]) for part in split.parts().values()]
    assert not (texts[0] & texts[1] or texts[0] & texts[2] or texts[1] & texts[2])
    shares = [part["sentiment"].value_counts(normalize=True) for part in split.parts().values()]
    for share in shares[1:]:
        assert (share - shares[0]).abs().max() < 0.01
    assert split.description() == split_tweets(corpus, train_on_all=False).description()
    assert split.description()["split.test.sha256"] == fingerprint(split.test)


def test_training_on_all_adds_only_non_airline_tweets(corpus):
    airline_only, everything = split_tweets(corpus, train_on_all=False), split_tweets(corpus, train_on_all=True)
    assert fingerprint(airline_only.test) == fingerprint(everything.test)
    assert fingerprint(airline_only.validation) == fingerprint(everything.validation)
    assert len(everything.train) == len(airline_only.train) + (~corpus["airline"]).sum()


def test_sample_is_stratified(corpus):
    sample = sample_tweets(corpus, 2000)
    assert len(sample) == 2000
    assert (
        sample["sentiment"].value_counts(normalize=True) - corpus["sentiment"].value_counts(normalize=True)
    ).abs().max() < 0.01


def test_emoji_tweets_take_their_label_from_the_emoji_sentiment_ranking():
    sentiments = emoji_sentiments()
    # Clear cases of the ranking, and one it leaves out ("crying face": 0.38 negative against 0.39 positive).
    assert (sentiments["😡"], sentiments["👎"], sentiments["❤"], sentiments["😍"]) == (
        "negative",
        "negative",
        "positive",
        "positive",
    )
    assert "😢" not in sentiments
    tweets = emoji_tweets(300, ["negative", "neutral", "positive"], seed=3)
    assert len(tweets) == 300 and set(tweets["sentiment"]) == {"negative", "neutral", "positive"}
    for text, label in zip(tweets["text"], tweets["sentiment"], strict=True):
        handle, emoji = text.split(" ", 1)
        assert handle.startswith("@") and emoji and all(sentiments[character] == label for character in emoji)
    assert emoji_tweets(300, ["negative", "neutral", "positive"], seed=3).equals(tweets)  # reproducible
    assert set(emoji_tweets(50, ["negative", "positive"], seed=3)["sentiment"]) == {"negative", "positive"}
