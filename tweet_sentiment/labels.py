"""The sentiments, in the order of every model's probability columns: training, serving and reports use it."""

LABELS = ("negative", "neutral", "positive")
