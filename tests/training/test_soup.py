"""The greedy soup that turns the MiniLM's fine-tuning epochs into one model: real torch state dicts."""

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
