"""The greedy soup that turns the MiniLM's fine-tuning epochs into one model (real torch state dicts), and the shallow
model's layers."""

from __future__ import annotations

import torch

from training.families.bert import Ingredient, average_states, greedy_soup

TARGET = 0.4  # the weight a perfect model would have; a state scores 1 - its distance to it


def _state(weight: float) -> dict[str, torch.Tensor]:
    return {"weight": torch.tensor([weight]), "position_ids": torch.arange(3)}


def _score(state: dict[str, torch.Tensor]) -> float:
    return 1 - abs(float(state["weight"][0]) - TARGET)


def _ingredient(name: str, weight: float) -> Ingredient:
    return Ingredient(name, _score(_state(weight)), _state(weight))


def test_average_states_averages_weights_and_keeps_integer_buffers() -> None:
    averaged = average_states([_state(1.0), _state(0.0)])
    assert float(averaged["weight"][0]) == 0.5
    assert averaged["position_ids"].dtype == torch.int64
    assert averaged["position_ids"].tolist() == [0, 1, 2]


def test_greedy_soup_starts_from_the_best_and_adds_only_what_does_not_lower_validation() -> None:
    ingredients = [_ingredient("overshoots", 1.0), _ingredient("far", -1.0), _ingredient("best alone", 0.0)]
    soup, score = greedy_soup(ingredients, _score)
    # "best alone" (0.6) + "overshoots" (0.4) average to 0.5: 0.9; adding "far" would average to 0: 0.6.
    assert [ingredient.name for ingredient in soup] == ["best alone", "overshoots"]
    assert abs(score - 0.9) < 1e-6


def test_greedy_soup_of_one_ingredient_is_that_ingredient() -> None:
    soup, score = greedy_soup([_ingredient("only", 0.1)], _score)
    assert ([ingredient.name for ingredient in soup], score) == (["only"], _score(_state(0.1)))


def test_a_shallow_model_keeps_the_checkpoints_bottom_layers_and_still_answers():
    """`layers` in [bert-minilm] keeps the first encoder layers of the checkpoint, weights untouched."""
    from training.families.bert import MINILM, bottom_layers, classifier, two_heads

    full = classifier(MINILM.locate(), 3)
    shallow = bottom_layers(classifier(MINILM.locate(), 3), 2)
    assert len(shallow.bert.encoder.layer) == shallow.config.num_hidden_layers == 2
    kept, original = shallow.bert.encoder.layer[1], full.bert.encoder.layer[1]
    assert torch.equal(kept.output.dense.weight, original.output.dense.weight)
    assert len(bottom_layers(full, 0).bert.encoder.layer) == 6  # 0: every layer
    ids = torch.tensor([[101, 2026, 4385, 102]])
    sentiment, reasons = two_heads(shallow, 10).eval()(input_ids=ids, attention_mask=torch.ones_like(ids))
    assert sentiment.shape == (1, 3) and reasons.shape == (1, 10)
