"""The behavioural suite of a served model (CheckList style): invariance to the airline's handle, direction
when a clear complaint is added, minimum functionality on plain tweets and on tweets that speak in emoji,
emoticons or punctuation. The tests hold the shipped champion to it; the retraining gate compares a challenger's
outcomes with the champion's case by case (training/promotion/gate.py, `behaviour_regressions`)."""

from __future__ import annotations

from tweet_sentiment.model import SentimentModel

HANDLES = ["@united", "@JetBlue", "@SouthwestAir", "@AmericanAir", "@USAirways", "@VirginAmerica", "@AirParadis"]
TEMPLATES = [
    "{handle} lost my luggage and nobody at the desk could help, terrible service",
    "{handle} thank you for the upgrade, the crew was wonderful",
    "{handle} what time does boarding start for the flight to Boston tomorrow?",
    "{handle} my flight has been delayed 4 hours with no explanation",
    "{handle} great flight, friendly staff and we landed early!",
]
COMPLAINTS = [" Worst airline ever.", " Never flying with you again, awful.", " Absolutely terrible customer service."]
MINIMUM = [
    ("negative", "@united my flight was cancelled and I am stuck at the airport, this is awful"),
    ("negative", "@AmericanAir rude staff, dirty plane and a two hour delay. Horrible"),
    ("negative", "@USAirways you lost my bag again, worst customer service ever"),
    ("negative", "@SouthwestAir on hold for three hours and still no answer, unacceptable"),
    ("positive", "@JetBlue thank you so much, the crew was amazing and the flight was perfect"),
    ("positive", "@VirginAmerica love the new seats, great experience, thanks!"),
    ("positive", "@united awesome service today, the gate agent was so helpful, thank you"),
    ("positive", "@SouthwestAir best airline ever, friendly crew and on time"),
    ("neutral", "@united what is the baggage allowance for international flights?"),
    ("neutral", "@JetBlue do you fly from Boston to Fort Lauderdale on Sundays?"),
    ("neutral", "@SouthwestAir can I change my flight online or do I need to call?"),
    ("neutral", "@AmericanAir is there wifi on the flight from Dallas to Chicago?"),
]
# Tweets that carry their sentiment in emoji, emoticons or punctuation alone, in both directions. The corpus
# has almost no emoji (0.4% of training tweets): the transformer reads them by their names ("enraged face"),
# and the emoji-only training tweets (training/emoji_tweets.py) have the form of the first six, not of the
# statements with an emoji added.
EXPRESSIVE = [
    ("negative", "emoji", "@united 😡😡😡"),
    ("negative", "emoji", "@AmericanAir 👎👎"),
    ("negative", "emoji", "@USAirways 😭😭 💔"),
    ("positive", "emoji", "@JetBlue ❤️❤️✈️"),
    ("positive", "emoji", "@SouthwestAir 😍😍"),
    ("positive", "emoji", "@VirginAmerica 👍😊"),
    ("negative", "emoticon", "@united :( :( :("),
    ("negative", "emoticon", "@USAirways >:("),
    ("positive", "emoticon", "@VirginAmerica :) :)"),
    ("positive", "emoticon", "@JetBlue <3 <3"),
    ("positive", "emoji on a neutral statement", "@JetBlue just landed in Boston 😍"),
    ("negative", "emoji on a neutral statement", "@united just landed in Denver 😡"),
    ("negative", "emoticon on a neutral statement", "@AmericanAir my flight is at 6pm :("),
    ("negative", "repeated punctuation", "@united delayed AGAIN!!! where is my bag???"),
    ("positive", "repeated punctuation", "@SouthwestAir you guys are the best!!!"),
]
SATURATED = 0.95  # a tweet already this negative cannot become strictly more so


Outcomes = dict[str, str | None]  # case -> why it failed, or None when it passed


def invariance_outcomes(model: SentimentModel, templates: list[str] = TEMPLATES) -> Outcomes:
    """Each template: does its label change with the airline's handle?"""
    outcomes: Outcomes = {}
    for template in templates:
        labels = {prediction.label for prediction in model.predict([template.format(handle=h) for h in HANDLES])}
        outcomes[template] = f"{template!r} gets {sorted(labels)} depending on the handle" if len(labels) > 1 else None
    return outcomes


def direction_outcomes(model: SentimentModel, templates: list[str] = TEMPLATES) -> Outcomes:
    """Each tweet with a clear complaint added: does it become more negative?"""
    outcomes: Outcomes = {}
    for template in templates:
        tweet = template.format(handle="@united")
        base = model.predict([tweet])[0].scores["negative"]
        for complaint in COMPLAINTS:
            after = model.predict([tweet + complaint])[0].scores["negative"]
            moved = after > base if base < SATURATED else after >= base - 0.01
            failure = f"{tweet + complaint!r}: negative {base:.3f} -> {after:.3f}"
            outcomes[tweet + complaint] = None if moved else failure
    return outcomes


def minimum_functionality_outcomes(model: SentimentModel) -> Outcomes:
    """Plain tweets of obvious sentiment: do they get their label?"""
    return {
        text: None if got == expected else f"{text!r}: {got}, expected {expected}"
        for expected, _, text, got in labelled(model, [(expected, "plain", text) for expected, text in MINIMUM])
    }


def expressive_outcomes(model: SentimentModel) -> Outcomes:
    """Emoji, emoticon and punctuation tweets of clear sentiment: do they get their label?"""
    return {
        tweet: None if got == expected else f"{tweet!r} ({kind}): {got}, expected {expected}"
        for expected, kind, tweet, got in labelled(model, EXPRESSIVE)
    }


def failures_of(outcomes: Outcomes) -> list[str]:
    return [failure for failure in outcomes.values() if failure is not None]


def invariance_failures(model: SentimentModel, templates: list[str] = TEMPLATES) -> list[str]:
    return failures_of(invariance_outcomes(model, templates))


def direction_failures(model: SentimentModel, templates: list[str] = TEMPLATES) -> list[str]:
    return failures_of(direction_outcomes(model, templates))


def minimum_functionality_failures(model: SentimentModel) -> list[str]:
    return failures_of(minimum_functionality_outcomes(model))


def behaviour_outcomes(model: SentimentModel) -> dict[str, Outcomes]:
    """Every case of the suite, by check: the gate pairs the champion's and a challenger's case by case."""
    return {
        "invariance": invariance_outcomes(model),
        "direction": direction_outcomes(model),
        "minimum_functionality": minimum_functionality_outcomes(model),
        "expressive": expressive_outcomes(model),
    }


# Tweets the champion is known to get wrong, and why: listed in the comparison report with its answers, so
# the limits are visible instead of discovered by users. Sarcasm reads as praise word by word.
KNOWN_FAILURES = [
    ("negative", "sarcasm", "@united great, another 3 hour delay. Just what I needed today. Thanks so much!"),
    ("negative", "sarcasm", "@AmericanAir love how you lost my bag for the third time this year, really impressive"),
    ("negative", "sarcasm", "@SouthwestAir wow, only 45 minutes on hold this time, you're really improving"),
    ("positive", "negated complaint", "@JetBlue not a single problem today, can't complain at all"),
    ("neutral", "question with a sentiment word", "@united is the lounge in Denver any good?"),
    # Emoji newer than the Emoji Sentiment Ranking (2015) that the training tweets borrow their labels from.
    ("negative", "emoji the training lexicon lacks", "@delta 🤬🤬"),
]


def labelled(model: SentimentModel, cases: list[tuple[str, str, str]]) -> list[tuple[str, str, str, str]]:
    """(expected, kind, tweet, the model's label) for each (expected, kind, tweet) case."""
    predicted = model.predict([tweet for _, _, tweet in cases])
    return [
        (expected, kind, tweet, prediction.label)
        for (expected, kind, tweet), prediction in zip(cases, predicted, strict=True)
    ]


def known_failures(model: SentimentModel) -> list[tuple[str, str, str, str]]:
    """(expected, kind, tweet, the model's label) for each known hard case."""
    return labelled(model, KNOWN_FAILURES)
