"""A shallower MiniLM (`encoder_layers`): the checkpoint's bottom layers, the real checkpoint."""

from __future__ import annotations

import torch

from training.families.bert import MINILM, classifier, two_heads, with_bottom_layers


def test_a_shallow_model_keeps_the_checkpoints_bottom_layers_and_still_answers():
    """`encoder_layers` in [bert-minilm] keeps the first encoder layers of the checkpoint, weights untouched."""

    full = classifier(MINILM.locate(), 3)
    shallow = with_bottom_layers(classifier(MINILM.locate(), 3), 2)
    assert len(shallow.bert.encoder.layer) == shallow.config.num_hidden_layers == 2
    kept, original = shallow.bert.encoder.layer[1], full.bert.encoder.layer[1]
    assert torch.equal(kept.output.dense.weight, original.output.dense.weight)
    assert len(with_bottom_layers(full, 0).bert.encoder.layer) == 6  # 0: every layer
    ids = torch.tensor([[101, 2026, 4385, 102]])
    sentiment, reasons = two_heads(shallow, 10).eval()(input_ids=ids, attention_mask=torch.ones_like(ids))
    assert sentiment.shape == (1, 3) and reasons.shape == (1, 10)
