"""Tweet text processing: the one implementation that training and serving both apply.

The steps run in a fixed order; each can be switched off in `TextConfig`, and the config is saved in the
model manifest so the service repeats exactly what training did:

    html unescape -> URLs / @mentions / #hashtags -> emoji and emoticons to words -> lower case
    -> ASCII folding -> abbreviation expansion -> tokenise (TweetTokenizer, elongations reduced)
    -> strip non-letters -> stopwords (negations kept) -> lemmatise or stem

Emoji and emoticons become words ("😡" -> "enraged face", ":(" -> "sad face") before ASCII folding would drop
them, for the models that can read those words (the transformer); the transformer also keeps digits and
punctuation ("!!!", "?"), which its tokenizer knows.

Abbreviations are expanded as whole words before digits and punctuation are stripped, so that "gr8", "b4"
and "w/" are still recognisable; stripping characters per token also squeezes the white space.
"""

from __future__ import annotations

import dataclasses
import html
import re
import unicodedata
from functools import lru_cache
from importlib import resources
from typing import Any, Literal

from nltk.stem.snowball import SnowballStemmer
from nltk.tokenize import TweetTokenizer

Normalisation = Literal["lemmatize", "stem", "none"]
NORMALISATIONS: tuple[str, ...] = ("lemmatize", "stem", "none")

URL_TOKEN = "url"
MENTION_TOKEN = "user"

URL_PATTERN = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
MENTION_PATTERN = re.compile(r"(?<!\w)@\w+")
_HASHTAG = re.compile(r"(?<!\w)#(\w+)")
_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])")
_NON_LETTERS = re.compile(r"[^A-Za-z]+")


@dataclasses.dataclass(frozen=True)
class TextConfig:
    """Which processing steps run. Saved with every model; unknown keys are refused on load."""

    unescape_html: bool = True
    replace_urls: bool = True  # URL -> "url"
    replace_mentions: bool = True  # @handle -> "user": the airline's handle is not sentiment
    split_hashtags: bool = True  # "#NeverAgain" -> "never again": hashtag words carry sentiment
    lowercase: bool = True
    ascii_fold: bool = True  # also what keeps ONNX Runtime's tokenizer in step with scikit-learn's
    reduce_elongations: bool = True  # "sooooo" -> "sooo"
    expand_abbreviations: bool = True
    emoji_to_words: bool = False  # "😡" -> "enraged face", ":(" -> "sad face"
    letters_only: bool = True  # strip digits and punctuation from tokens (off: "!!!" and "3" stay)
    remove_stopwords: bool = True
    normalisation: Normalisation = "lemmatize"

    def __post_init__(self) -> None:
        if self.normalisation not in NORMALISATIONS:
            raise ValueError(f"normalisation must be one of {NORMALISATIONS}, not {self.normalisation!r}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TextConfig:
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown text processing settings {unknown}; known: {sorted(known)}")
        return cls(**values)


def _data_lines(name: str) -> list[str]:
    text = resources.files(__package__).joinpath(name).read_text(encoding="utf-8")
    return [line for line in text.splitlines() if line.strip() and not line.startswith("#")]


@lru_cache(maxsize=1)
def abbreviations() -> dict[str, str]:
    """The curated slang / contraction / airline shorthand table: abbreviation -> expansion."""
    return dict(line.split("\t") for line in _data_lines("abbreviations.tsv"))


@lru_cache(maxsize=1)
def _abbreviation_pattern() -> re.Pattern[str]:
    # Whole words only, where "'" and "/" count as word characters ("w/", "can't", "b/c"); longest first.
    keys = sorted(abbreviations(), key=len, reverse=True)
    alternatives = "|".join(re.escape(key) for key in keys)
    return re.compile(rf"(?<![\w'/])(?:{alternatives})(?![\w'/])", re.IGNORECASE)


def expand_abbreviations(text: str) -> str:
    table = abbreviations()
    return _abbreviation_pattern().sub(lambda match: table[match.group(0).lower()], text)


@lru_cache(maxsize=1)
def stopwords() -> frozenset[str]:
    return frozenset(_data_lines("stopwords.txt"))


@lru_cache(maxsize=2)
def _tokenizer(reduce_elongations: bool) -> TweetTokenizer:
    return TweetTokenizer(preserve_case=True, reduce_len=reduce_elongations)


@lru_cache(maxsize=1)
def _stemmer() -> SnowballStemmer:
    return SnowballStemmer("english")


@lru_cache(maxsize=65536)
def _lemma(token: str) -> str:
    import simplemma  # imported on first use: its tables take a moment to load

    lemma = simplemma.lemmatize(token, lang="en")
    return lemma.lower() if token.islower() else lemma  # simplemma capitalises some lemmas ("url" -> "URL")


@lru_cache(maxsize=1)
def _emoticons() -> tuple[re.Pattern[str], dict[str, str]]:
    table = dict(line.split("\t", 1) for line in _data_lines("emoticons.tsv"))
    alternatives = "|".join(re.escape(emoticon) for emoticon in sorted(table, key=len, reverse=True))
    return re.compile(rf"(?<!\S)(?:{alternatives})(?!\S)"), table


def emoji_to_words(text: str) -> str:
    """Emoji by their CLDR names and emoticons by the words of emoticons.tsv, as separate words."""
    import emoji  # only configurations that read emoji need it

    pattern, table = _emoticons()
    text = pattern.sub(lambda match: f" {table[match.group(0)]} ", text)
    if text.isascii():  # every emoji lies outside ASCII; most tweets have none, and the search costs 0.2 ms
        return text
    return str(emoji.replace_emoji(text, replace=lambda _, data: " " + data["en"].strip(":").replace("_", " ") + " "))


def _fold_to_ascii(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")


def clean(text: str, config: TextConfig) -> str:
    """Character-level steps, before tokenisation."""
    if config.unescape_html:
        text = html.unescape(text)
    if config.replace_urls:
        text = URL_PATTERN.sub(f" {URL_TOKEN} ", text)
    if config.replace_mentions:
        text = MENTION_PATTERN.sub(f" {MENTION_TOKEN} ", text)
    if config.split_hashtags:
        text = _HASHTAG.sub(lambda match: " " + _CAMEL.sub(" ", match.group(1)) + " ", text)
    if config.emoji_to_words:
        text = emoji_to_words(text)
    if config.lowercase:
        text = text.lower()
    if config.ascii_fold:
        text = _fold_to_ascii(text)
    if config.expand_abbreviations:
        text = expand_abbreviations(text)
    return text


def tokens(text: str, config: TextConfig) -> list[str]:
    """The processed tokens of one tweet."""
    words: list[str] = _tokenizer(config.reduce_elongations).tokenize(clean(text, config))
    # Strip digits, punctuation and emoji remnants inside each token; "n't" was expanded above when enabled.
    if config.letters_only:
        words = [stripped for word in words if (stripped := _NON_LETTERS.sub("", word))]
    if config.remove_stopwords:
        stop = stopwords()
        words = [word for word in words if word not in stop]
    if config.normalisation == "lemmatize":
        words = [_lemma(word) for word in words]
    elif config.normalisation == "stem":
        stemmer = _stemmer()
        words = [stemmer.stem(word) for word in words]
    return words


def preprocess(text: str, config: TextConfig) -> str:
    """One tweet as the space-joined processed tokens that the models read."""
    return " ".join(tokens(text, config))


def preprocess_many(texts: list[str], config: TextConfig) -> list[str]:
    return [preprocess(text, config) for text in texts]
