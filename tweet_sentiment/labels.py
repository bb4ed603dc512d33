"""The sentiments, in the order of every model's probability columns: training, serving and reports use it."""

LABELS = ("negative", "neutral", "positive")
NEGATIVE = "negative"  # the sentiment whose tweets get a complaint reason

# The complaint reasons of a negative tweet (docs/reasons.md: definitions, examples, edge cases), in the order of
# the reason head's probability columns.
REASONS = (
    "delay",
    "cancellation",
    "lost_luggage",
    "damaged_luggage",
    "customer_service",
    "booking",
    "crew",
    "in_flight",
    "queues",
    "other",
)
