"""What an archive says, for a person: counts and reach by sentiment and reason, the unsure and unreadable
shares, the negative share and reach per hour with the hours the bad-buzz alert would have fired, and the
loudest complaints. Built row by row in the pass that writes the output (the score command) or the assembly
(the blob job): the figures are sums, and the only state that grows with the archive is one small entry per
distinct tweet.

Context columns (`followers`, `retweets`, `likes`, `replies`, `created_at`, `tweet_id`, or other names the
caller sets) are read with the API's own checks (tweet_sentiment/reach.py); a row whose context is invalid is
still scored, its context ignored with a warning, and the report counts it under `reading`.

Retweets (`RT @handle: ...`) and exact copies of a tweet (the same words, case and spacing aside) form one
group: the group is counted once, under the sentiment and reason of its first row, and its reach is the sum of
its rows' reach (a bad buzz is often one tweet retweeted a thousand times). Per hour every row counts, with its
own answer, as every prediction counts for the deployed rule.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import re
import sys
from array import array
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import ValidationError

from .labels import LABELS, NEGATIVE
from .model import UNREADABLE, unsure_warning
from .reach import MAX_COUNT, Context, reach
from .tabular import Row

CONTEXT_FIELDS = ("followers", "retweets", "likes", "replies", "created_at", "tweet_id")
RETWEET = re.compile(r"^(?:RT\s+@\w{1,50}:\s*)+", re.IGNORECASE)
SPACES = re.compile(r"\s+")
UNSURE_SENTIMENT = unsure_warning("sentiment", 0, 0).split(":")[0] + ":"
OFFSET_WITHOUT_COLON = re.compile(r"\s*([+-]\d{2})(\d{2})$")  # "2015-02-24 11:35:52 -0800", the airline dataset's
WHOLE_NUMBER = re.compile(r"[+-]?\d{1,30}")
EXPECTED = {  # what a refused cell should be, in the words of the report
    "created_at": "must be an RFC 3339 time with its offset, e.g. 2026-11-25T14:05:00Z",
    "tweet_id": "must be 1 to 64 letters, digits, '_' or '-'",
}
LOUDEST = 20  # complaints listed
HOUR = 3600


@dataclasses.dataclass(frozen=True)
class AlertRule:
    """The deployed bad-buzz rule (infra/alerts/bad-buzz.kql) with its Bicep defaults (infra/main.bicep,
    badBuzzMarginPoints and badBuzzMinimumVolume): it fires when the negative share of the last hour's readable
    tweets, counted by tweets or weighted by reach (at least 1 a tweet), exceeds that of the 24 hours before by
    more than the margin, both windows holding the minimum volume of readable tweets."""

    margin_points: float = 15
    minimum_volume: int = 50
    recent_hours: int = 1
    baseline_hours: int = 24


BAD_BUZZ = AlertRule()


def context_columns(overrides: Mapping[str, str | None] | None = None) -> dict[str, str]:
    """Context field -> the column that holds it: the field's own name unless the caller names another."""
    chosen = {field: field for field in CONTEXT_FIELDS}
    chosen.update({field: column for field, column in (overrides or {}).items() if column})
    return chosen


def _coerced(field: str, value: Any) -> Any:
    """A cell as the Context model takes it: CSV's "1200" a count, Parquet's 1200.0 too, a numeric tweet id
    a string, a time with a `-0800` offset or a datetime with its zone an RFC 3339 text."""
    if field == "created_at":
        if isinstance(value, dt.datetime):
            return value.isoformat() if value.tzinfo else value.isoformat() + " (no time zone)"
        return OFFSET_WITHOUT_COLON.sub(r"\1:\2", value.strip()) if isinstance(value, str) else value
    if field == "tweet_id":
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value
    if isinstance(value, str) and WHOLE_NUMBER.fullmatch(value.strip()):
        return int(value.strip())
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def context_of(row: Row, columns: Mapping[str, str]) -> tuple[Context | None, str]:
    """The row's context, or None with the reason it is ignored ("" when the row has no context at all)."""
    values = {
        field: _coerced(field, row[column])
        for field, column in columns.items()
        if row.get(column) is not None and row.get(column) != ""
    }
    if not values:
        return None, ""
    try:
        return Context(**values), ""
    except ValidationError as error:
        problem = error.errors()[0]
        field = str(problem["loc"][0]) if problem["loc"] else "context"
        expected = EXPECTED.get(field, f"must be a whole number from 0 to {MAX_COUNT:.0e}".replace("e+", "e"))
        return None, f"context ignored: column '{columns.get(field, field)}' {expected}"


def hour_of(context: Context | None) -> int | None:
    """The hour of the tweet, in hours since 1970 UTC."""
    if context is None or context.created_at is None:
        return None
    moment = dt.datetime.fromisoformat(context.created_at.upper().replace("Z", "+00:00"))
    return int(moment.timestamp()) // HOUR


def group_key(text: str) -> tuple[int, str]:
    """(the key of the tweet's group, the original's text): a retweet's prefix dropped, case and spacing aside,
    as 8 bytes of BLAKE2b (a collision among a billion tweets is a one in 36 million chance)."""
    original = RETWEET.sub("", text).strip()
    digest = hashlib.blake2b(SPACES.sub(" ", original).casefold().encode("utf-8", "replace"), digest_size=8)
    return int.from_bytes(digest.digest(), "big"), original


@dataclasses.dataclass(frozen=True)
class Fact:
    """What the report needs of one row: a few numbers, and the text of a negative tweet only."""

    label: str | None  # None: the row could not be scored
    reason: str | None = None
    unsure: bool = False
    readable: bool = True
    reach: int = 0
    hour: int | None = None
    key: int = 0
    text: str | None = None  # the original's text, for negative tweets only (the loudest complaints)
    retweet: bool = False
    context_problem: str = ""  # the field whose value was refused

    def as_list(self) -> list[Any]:
        """Compact JSON, for the blob job's work blobs."""
        return [
            self.label, self.reason, self.unsure, self.readable, self.reach, self.hour,
            f"{self.key:016x}", self.text, self.retweet, self.context_problem,
        ]  # fmt: skip

    @classmethod
    def of_list(cls, values: list[Any]) -> Fact:
        label, reason, unsure, readable, reached, hour, key, text, retweet, problem = values
        return cls(label, reason, unsure, readable, reached, hour, int(key, 16), text, retweet, problem)


@dataclasses.dataclass(frozen=True)
class FactReader:
    """Turns a scored row into its Fact: which columns hold the tweet and its context, which languages the
    model reads (another language is an unreadable tweet, as in telemetry)."""

    text_column: str
    columns: Mapping[str, str]
    languages: tuple[str, ...]

    def fact(self, row: Row) -> Fact:
        if not row.get("label"):
            return Fact(label=None)
        context, problem = context_of(row, self.columns)
        warnings = str(row.get("warnings") or "")
        language = row.get("language") or "und"
        readable = UNREADABLE not in warnings and (language in self.languages or language == "und")
        text = str(row.get(self.text_column) or "")
        key, original = group_key(text)
        return Fact(
            label=str(row["label"]),
            reason=row.get("reason") or None,
            unsure=UNSURE_SENTIMENT in warnings,
            readable=readable,
            reach=reach(context),
            hour=hour_of(context),
            key=key,
            text=original if row["label"] == NEGATIVE else None,
            retweet=original != text.strip(),
            context_problem=problem.split("'")[1] if problem else "",
        )


@dataclasses.dataclass
class _Hour:
    rows: int = 0
    readable: int = 0
    readable_negative: int = 0
    readable_weight: int = 0  # the rule's weight: a tweet's reach, at least 1 (its author)
    readable_negative_weight: int = 0
    negative_reach: int = 0
    negative_reach_by_reason: Counter[str] = dataclasses.field(default_factory=Counter)


class ArchiveReport:
    """The figures of an archive, added to row by row (`add`), read at the end (`figures`)."""

    def __init__(self, rule: AlertRule = BAD_BUZZ, loudest: int = LOUDEST):
        self.rule, self.loudest = rule, loudest
        self.rows = self.errors = self.retweets = self.with_context = 0
        self.context_ignored: Counter[str] = Counter()
        self.unsure = self.unreadable = 0  # distinct tweets
        self.hours: dict[int, _Hour] = defaultdict(_Hour)
        self.rows_without_time = 0
        # One entry per distinct tweet: its key -> its index in the arrays (sentiment, reason, reach, rows).
        self._groups: dict[int, int] = {}
        self._label, self._reason = array("b"), array("h")
        self._reach, self._copies = array("q"), array("l")
        self._reasons: list[str] = []
        self._candidates: dict[int, tuple[int, str]] = {}  # group -> (its reach then, its text): the loudest

    def add(self, fact: Fact) -> None:
        self.rows += 1
        if fact.label is None:
            self.errors += 1
            return
        self.retweets += fact.retweet
        self.with_context += fact.reach > 0 or fact.hour is not None
        if fact.context_problem:
            self.context_ignored[fact.context_problem] += 1
        group = self._group_of(fact)
        self._reach[group] += fact.reach
        self._copies[group] += 1
        if self._label[group] == LABELS.index(NEGATIVE):
            self._keep_if_loud(group, fact.text)
        self._add_to_hour(fact)

    def _group_of(self, fact: Fact) -> int:
        group = self._groups.get(fact.key)
        if group is not None:
            return group
        group = self._groups[fact.key] = len(self._label)
        self._label.append(LABELS.index(fact.label))
        self._reason.append(self._reason_code(fact.reason))
        self._reach.append(0)
        self._copies.append(0)
        self.unsure += fact.unsure
        self.unreadable += not fact.readable
        return group

    def _reason_code(self, reason: str | None) -> int:
        if reason is None:
            return -1
        if reason not in self._reasons:
            self._reasons.append(reason)
        return self._reasons.index(reason)

    def _keep_if_loud(self, group: int, text: str | None) -> None:
        """Keeps the text of the `loudest` groups by reach so far. A group's reach only grows, and each of its
        rows brings its text again, so the loudest at the end are kept, whatever the order of the rows."""
        loud = self._reach[group]
        if group in self._candidates:  # the text it was kept with: its first row's, as a rule the original
            self._candidates[group] = (loud, self._candidates[group][1])
            return
        if text is None:  # a row of a negative group answered otherwise (a retweet read as neutral): no text
            return
        if len(self._candidates) < self.loudest:
            self._candidates[group] = (loud, text)
            return
        quietest = min(self._candidates, key=lambda kept: self._candidates[kept][0])
        if loud > self._candidates[quietest][0]:
            del self._candidates[quietest]
            self._candidates[group] = (loud, text)

    def _add_to_hour(self, fact: Fact) -> None:
        if fact.hour is None:
            self.rows_without_time += 1
            return
        hour = self.hours[fact.hour]
        hour.rows += 1
        hour.readable += fact.readable
        weight = max(fact.reach, 1) if fact.readable else 0
        hour.readable_weight += weight
        if fact.label == NEGATIVE:
            hour.readable_negative += fact.readable
            hour.readable_negative_weight += weight
            hour.negative_reach += fact.reach
            hour.negative_reach_by_reason[fact.reason or "unknown"] += fact.reach

    # ------------------------------------------------------------------ the figures

    def state_bytes(self) -> int:
        """The memory of the state kept per distinct tweet (the dict, its keys, the arrays), in bytes."""
        arrays = (self._label, self._reason, self._reach, self._copies)
        keys = sum(sys.getsizeof(key) for key in list(self._groups)[:1000]) * len(self._groups) // 1000 or 0
        indexes = 28 * max(0, len(self._groups) - 256)  # the small ints are shared
        return sys.getsizeof(self._groups) + keys + indexes + sum(a.buffer_info()[1] * a.itemsize for a in arrays)

    def figures(self) -> dict[str, Any]:
        tweets = len(self._label)
        by_sentiment: dict[str, dict[str, Any]] = {label: {"tweets": 0, "rows": 0, "reach": 0} for label in LABELS}
        by_reason: dict[str, dict[str, Any]] = {}
        for label, reason, reached, copies in zip(self._label, self._reason, self._reach, self._copies, strict=True):
            tallies = [by_sentiment[LABELS[label]]]
            if LABELS[label] == NEGATIVE:
                name = self._reasons[reason] if reason >= 0 else "unknown"
                tallies.append(by_reason.setdefault(name, {"tweets": 0, "rows": 0, "reach": 0}))
            for tally in tallies:
                tally["tweets"] += 1
                tally["rows"] += copies
                tally["reach"] += reached
        negative_reach = by_sentiment[NEGATIVE]["reach"]
        total_reach = sum(tally["reach"] for tally in by_sentiment.values())
        for tally in by_sentiment.values():
            tally["share_of_tweets"] = _share(tally["tweets"], tweets)
            tally["share_of_reach"] = _share(tally["reach"], total_reach)
        reasons = dict(sorted(by_reason.items(), key=lambda item: (-item[1]["reach"], -item[1]["tweets"])))
        for tally in reasons.values():
            tally["share_of_negative_tweets"] = _share(tally["tweets"], by_sentiment[NEGATIVE]["tweets"])
            tally["share_of_negative_reach"] = _share(tally["reach"], negative_reach)
        hours = self._hours()
        return {
            "rows": self.rows,
            "rows_scored": self.rows - self.errors,
            "rows_with_error": self.errors,
            "error_share": _share(self.errors, self.rows),
            "tweets": tweets,
            "retweets_and_copies": self.rows - self.errors - tweets,
            "reach": total_reach,
            "unsure_share": _share(self.unsure, tweets),
            "unreadable_share": _share(self.unreadable, tweets),
            "by_sentiment": by_sentiment,
            "by_reason": reasons,
            "loudest_complaints": self._loudest(),
            "hours": hours,
            "bad_buzz_hours": [hour["hour"] for hour in hours if hour["bad_buzz"]],
            "bad_buzz_rule": dataclasses.asdict(self.rule),
            "rows_with_context": self.with_context,
            "rows_without_time": self.rows_without_time,
            "grouping_state_bytes": self.state_bytes(),
        }

    def _loudest(self) -> list[dict[str, Any]]:
        kept = sorted(self._candidates, key=lambda group: -self._reach[group])[: self.loudest]
        return [
            {
                "text": self._candidates[group][1],
                "reason": self._reasons[self._reason[group]] if self._reason[group] >= 0 else None,
                "reach": self._reach[group],
                "rows": self._copies[group],
            }
            for group in kept
        ]

    def _hours(self) -> list[dict[str, Any]]:
        """Each hour with tweets, in order, judged as the deployed rule judges its last hour: the rise of the
        negative share by tweets and by reach, the larger one against the margin (shares rounded to a tenth of a
        point as the query rounds them)."""
        rule, judged = self.rule, []
        for start in sorted(self.hours):
            recent = self._window(start - rule.recent_hours + 1, start + 1)
            baseline = self._window(start - rule.recent_hours - rule.baseline_hours + 1, start - rule.recent_hours + 1)
            share, reach_share = (
                _percent(recent.readable_negative, recent.readable),
                _percent(recent.readable_negative_weight, recent.readable_weight),
            )
            baseline_share = _percent(baseline.readable_negative, baseline.readable)
            baseline_reach_share = _percent(baseline.readable_negative_weight, baseline.readable_weight)
            judged_by = min(recent.readable, baseline.readable) >= rule.minimum_volume
            rise = signal = None
            if judged_by:  # both windows hold readable tweets: every share is a number
                count_rise = round(float(share or 0) - float(baseline_share or 0), 1)
                reach_rise = round(float(reach_share or 0) - float(baseline_reach_share or 0), 1)
                signal = "reach" if reach_rise > count_rise else "count"
                rise = max(count_rise, reach_rise)
            hour = self.hours[start]
            judged.append(
                {
                    "hour": dt.datetime.fromtimestamp(start * HOUR, dt.UTC).isoformat().replace("+00:00", "Z"),
                    "rows": hour.rows,
                    "readable": hour.readable,
                    "negative_share_percent": share,
                    "baseline_share_percent": baseline_share,
                    "negative_reach_share_percent": reach_share,
                    "baseline_reach_share_percent": baseline_reach_share,
                    "baseline_readable": baseline.readable,
                    "rise_points": rise,
                    "signal": signal,
                    "negative_reach": hour.negative_reach,
                    "negative_reach_by_reason": dict(hour.negative_reach_by_reason.most_common()),
                    "bad_buzz": rise is not None and rise > rule.margin_points,
                }
            )
        return judged

    def _window(self, first: int, end: int) -> _Hour:
        """The sums of the hours from `first` to `end` (excluded)."""
        total = _Hour()
        for start in range(first, end):
            hour = self.hours.get(start)
            if hour is not None:
                total.readable += hour.readable
                total.readable_negative += hour.readable_negative
                total.readable_weight += hour.readable_weight
                total.readable_negative_weight += hour.readable_negative_weight
        return total

    def reading(self) -> dict[str, Any]:
        """What reading the context did, for the report's `reading`."""
        return {"rows_context_ignored": dict(self.context_ignored)}


def report_of(facts: Iterable[Fact], rule: AlertRule = BAD_BUZZ) -> dict[str, Any]:
    """The figures of these facts (tests, small files)."""
    report = ArchiveReport(rule)
    for fact in facts:
        report.add(fact)
    return report.figures()


def _percent(part: int, whole: int) -> float | None:
    return round(100 * part / whole, 1) if whole else None


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None
