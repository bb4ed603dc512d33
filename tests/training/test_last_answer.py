"""A transformer candidate's two heads answer from one forward pass: `predict_proba` then `predict_reasons` for
the same tweets (as the runner asks them) run the model once."""

from __future__ import annotations

import numpy as np

from training.families.bert import last_answer


def test_the_same_tweets_asked_twice_run_once_and_new_tweets_run_again() -> None:
    calls: list[list[str]] = []

    def both(texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        calls.append(list(texts))
        return np.full((len(texts), 3), len(calls), dtype=float), np.zeros((len(texts), 10))

    answers = last_answer(both)
    first = answers(["late again", "lost my bag"])[0]
    reasons = answers(["late again", "lost my bag"])[1]
    assert len(calls) == 1 and first.shape == (2, 3) and reasons.shape == (2, 10)
    assert answers(["thanks"])[0][0, 0] == 2  # other tweets: a new pass
    assert answers(["late again", "lost my bag"])[0][0, 0] == 3  # only the last tweets are kept
    assert len(calls) == 3


def test_a_caller_changing_its_answer_leaves_the_next_answer_whole() -> None:
    answers = last_answer(lambda texts: (np.ones((len(texts), 3)), np.ones((len(texts), 10))))
    changed = answers(["late again"])[0]
    changed *= 0
    assert answers(["late again"])[0].tolist() == [[1.0, 1.0, 1.0]]
