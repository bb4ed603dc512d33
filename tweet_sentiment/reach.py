"""How loud a tweet is: the context a social tool may send with it, and reach, the one figure the service counts.

Reach is the number of accounts known to have seen the tweet: its author's followers plus every account that
retweeted, liked or replied to it. It is a lower bound (a retweet's own audience is not sent with the tweet),
the same for every caller, computed here and nowhere else (docs/operations.md, "Reach")."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictInt, StrictStr

MAX_COUNT = 10**12  # more than every account there is: a larger count is a client's bug
Count = Annotated[StrictInt, Field(ge=0, le=MAX_COUNT)]
RFC_3339 = r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$"


def _a_moment(text: str) -> str:
    """An RFC 3339 date-time with its offset, kept as sent (a number of seconds is refused: which epoch?)."""
    dt.datetime.fromisoformat(text.upper().replace("Z", "+00:00"))  # ValueError for 2026-13-45
    return text


Moment = Annotated[
    StrictStr, Field(pattern=RFC_3339, json_schema_extra={"format": "date-time"}), AfterValidator(_a_moment)
]


class Context(BaseModel):
    """What a social tool knows about a tweet beside its text; every field optional."""

    model_config = ConfigDict(extra="forbid")

    followers: Count | None = Field(default=None, description="the author's followers when the tweet was read")
    retweets: Count | None = None
    likes: Count | None = None
    replies: Count | None = None
    created_at: Moment | None = Field(default=None, description="when it was tweeted, RFC 3339 with its offset")
    tweet_id: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[0-9A-Za-z_-]+$")] | None = None


COUNTS = ("followers", "retweets", "likes", "replies")


def reach(context: Context | None) -> int:
    """Accounts known to have seen the tweet: followers + retweets + likes + replies (0 without context)."""
    if context is None:
        return 0
    return sum(getattr(context, name) or 0 for name in COUNTS)
