"""The shipped champion answers a tweet the same alone and inside any batch, over the whole validation part:
its runs (tweet_sentiment/model.py `micro_batches`) never let a tweet's scores depend on its neighbours."""

from __future__ import annotations

import numpy as np

from tests.conftest import SHIPPED_MANIFEST
from training.config import DataOptions, load_split
from tweet_sentiment.model import SentimentModel


def test_every_validation_tweet_is_answered_the_same_alone_and_in_random_batches():
    model = SentimentModel.load(SHIPPED_MANIFEST)
    texts = load_split(DataOptions()).validation["text"].tolist()
    alone = [model.scored([text]) for text in texts]
    rng = np.random.default_rng(20261205)
    order, start = rng.permutation(len(texts)), 0
    while start < len(texts):
        size = int(rng.integers(2, 65))  # any request size the API takes
        indices = order[start : start + size]
        batch = model.scored([texts[index] for index in indices])
        for row, index in enumerate(indices):
            one = alone[index]
            np.testing.assert_allclose(batch.probabilities[row], one.probabilities[0], rtol=0, atol=1e-5)
            assert batch.probabilities[row].argmax() == one.probabilities[0].argmax()
            if one.reasons is not None:
                assert batch.reasons is not None
                np.testing.assert_allclose(batch.reasons[row], one.reasons[0], rtol=0, atol=1e-5)
        start += size
