"""ONNX Runtime inference for an exported sentiment model: manifest in, labels and scores out.

The manifest's `input_kind` says how tweets become the graph's inputs (see manifest.py); every kind starts
from the same shared text processing, with the configuration saved at training time.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import onnxruntime as ort

from . import language
from .calibration import DEFAULT_UNSURE_BELOW, scaled
from .labels import NEGATIVE
from .language import UNDETERMINED, language_of, unread_warning
from .manifest import Manifest, ModelError, sha256_of
from .text import MENTION_TOKEN, URL_TOKEN, tokens

if TYPE_CHECKING:
    from collections.abc import Iterator

    from tokenizers import Encoding, Tokenizer

PADDING_ID, UNKNOWN_ID = 0, 1
REASON_OUTPUT = "reason_probabilities"  # the second output of a graph with a reason head
# ONNX Runtime's fusion of a residual Add and LayerNormalization into SkipLayerNormalization: its CPU kernel ran
# 4.6x slower than the two operators it replaces (onnxruntime 1.32, docs/performance.md "Two kernels that cost
# more than their work").
DISABLED_FUSIONS = ("SkipLayerNormFusion",)
PLACEHOLDERS = {URL_TOKEN, MENTION_TOKEN}  # what URLs and handles become: not the author's words
UNREADABLE = (
    "no readable words: the model saw an empty tweet, so its answer is a guess"  # reserved ids of the biLSTM vocabulary
)


@dataclasses.dataclass(frozen=True)
class Reason:
    """Why a negative tweet is negative: the complaint reason of the model's reason head, calibrated."""

    label: str
    score: float
    scores: dict[str, float]
    unsure: bool = False


@dataclasses.dataclass(frozen=True)
class Prediction:
    label: str
    scores: dict[str, float]  # calibrated (tweet_sentiment/calibration.py)
    language: str = "en"  # ISO 639-1, or "und" (tweet_sentiment/language.py)
    warnings: list[str] = dataclasses.field(default_factory=list)
    readable: bool = True  # False when the model could not read the tweet (a foreign language, no word): a guess
    unsure: bool = False  # the top score is under the manifest's unsure line
    reason: Reason | None = None  # for a negative answer of a model with a reason head


@dataclasses.dataclass(frozen=True)
class Scored:
    """One pass of a model over tweets: its raw probabilities, its reason head's (None without one) and
    whether each tweet had a readable word."""

    probabilities: np.ndarray
    reasons: np.ndarray | None
    readable: list[bool]


@dataclasses.dataclass(frozen=True)
class Batching:
    """How a transformer's tweets share ONNX Runtime runs (the manifest's `batching`). The default, one tweet a
    run and no padding, is the only safe way for a graph whose int8 activations are scaled per run (dynamic
    quantisation); a statically quantised graph computes each tweet alone, so its manifest records the
    micro-batch size and padding chosen by measurement (docs/performance.md)."""

    micro_batch: int = 1
    pad_to_multiple: int = 1

    @classmethod
    def of(cls, manifest: Manifest) -> Batching:
        return cls(**manifest.batching)

    def padded(self, length: int) -> int:
        """The length a tweet of `length` wordpieces is padded to, alone or in any run."""
        return -(-length // self.pad_to_multiple) * self.pad_to_multiple


def unsure_warning(what: str, score: float, line: float) -> str:
    return f"unsure {what}: {score:.0%}, under the line of {line:.0%} where the model's answers are often wrong"


def _verified(manifest_path: Path, file_name: str, sha256: str, what: str) -> Path:
    path = manifest_path.parent / file_name
    if not path.is_file():
        raise ModelError(f"{what} {path} named by {manifest_path} is missing: re-export the model")
    if sha256_of(path) != sha256:
        raise ModelError(
            f"{what} {path} does not match the sha256 in {manifest_path}: the file is corrupt or "
            "was replaced; re-export the model"
        )
    return path


def token_ids(token_lists: list[list[str]], vocabulary: dict[str, int], length: int) -> np.ndarray:
    """The biLSTM's input: token ids, the last `length` tokens of each tweet, padded in front (training and
    serving both call this, so the two cannot disagree)."""
    ids = np.full((len(token_lists), length), PADDING_ID, dtype=np.int64)
    for row, words in enumerate(token_lists):
        sequence = [vocabulary.get(word, UNKNOWN_ID) for word in words][-length:]
        if sequence:
            ids[row, length - len(sequence) :] = sequence
    return ids


def micro_batches(lengths: list[int], batching: Batching) -> list[list[int]]:
    """Indices of the tweets in ONNX Runtime runs: tweets of the same padded length (their wordpiece count
    rounded up to `pad_to_multiple`), sorted, in runs of at most `micro_batch`. A tweet is padded to the same
    length alone or in any batch, so its answer does not depend on the tweets sent with it (training's parity
    check uses the same runs)."""
    padded = [batching.padded(length) for length in lengths]
    order = sorted(range(len(lengths)), key=lambda index: (padded[index], index))
    runs = []
    for _, same_length in itertools.groupby(order, key=padded.__getitem__):
        tweets = list(same_length)
        runs += [tweets[start : start + batching.micro_batch] for start in range(0, len(tweets), batching.micro_batch)]
    return runs


def wordpiece_tokenizer(path: Path, max_length: int) -> Tokenizer:
    """A `tokenizers` tokenizer from tokenizer.json, truncating to `max_length`, padding to the longest tweet
    of the batch (the checkpoint's file pads every input to 128)."""
    from tokenizers import Tokenizer  # only the BERT family needs it: not imported before

    tokenizer = Tokenizer.from_file(str(path))
    tokenizer.enable_truncation(max_length=max_length)
    # The checkpoint's own pad token (BERT's [PAD], MPNet's <pad>), padding to the batch's longest instead.
    padding = tokenizer.padding or {"pad_id": tokenizer.token_to_id("[PAD]") or 0, "pad_token": "[PAD]"}
    tokenizer.enable_padding(pad_id=padding["pad_id"], pad_token=padding["pad_token"])
    return tokenizer


def padded_inputs(encodings: list[Encoding], length: int, pad_id: int) -> dict[str, np.ndarray]:
    """The BERT inputs of tweets already tokenised (with or without the tokenizer's own padding, on the right),
    each padded to `length` wordpieces."""
    inputs = {
        "input_ids": np.full((len(encodings), length), pad_id, dtype=np.int64),
        "attention_mask": np.zeros((len(encodings), length), dtype=np.int64),
        "token_type_ids": np.zeros((len(encodings), length), dtype=np.int64),
    }
    for row, encoding in enumerate(encodings):
        size = sum(encoding.attention_mask)
        inputs["input_ids"][row, :size] = encoding.ids[:size]
        inputs["attention_mask"][row, :size] = 1
        inputs["token_type_ids"][row, :size] = encoding.type_ids[:size]
    return inputs


def wordpiece_runs(
    tokenizer: Tokenizer, processed_texts: list[str], batching: Batching
) -> Iterator[tuple[list[int], dict[str, np.ndarray]]]:
    """The runs of a transformer (`micro_batches`): the tweets' indices and their inputs, padded to the run's
    length (serving and training's parity check both call this)."""
    pad_id = (tokenizer.padding or {}).get("pad_id", 0)
    encodings = tokenizer.encode_batch(processed_texts)  # each run is padded to its own length below
    lengths = [sum(encoding.attention_mask) for encoding in encodings]
    for run in micro_batches(lengths, batching):
        length = batching.padded(lengths[run[0]])  # the run's tweets share it (`micro_batches`)
        yield run, padded_inputs([encodings[index] for index in run], length, pad_id)


def wordpiece_inputs(tokenizer: Tokenizer, processed_texts: list[str]) -> dict[str, np.ndarray]:
    """The BERT inputs of a batch (training and serving both call this)."""
    encodings = tokenizer.encode_batch(processed_texts)
    return {
        "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
        "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
        "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64),
    }


class SentimentModel:
    """A served model: tweets in, labels and scores out. `load` reads a manifest and returns the class of its
    `input_kind` (one per kind, below); each starts from the same shared text processing. Thread-safe."""

    def __init__(self, manifest: Manifest):
        self.manifest = manifest
        self.load_seconds = 0.0

    @classmethod
    def load(cls, manifest_path: Path, intra_op_threads: int = 1) -> SentimentModel:
        """Load and verify a model; raises ModelError with what to do when it cannot be served."""
        started = time.perf_counter()
        manifest = Manifest.read(manifest_path)
        model = KINDS[manifest.input_kind].open(manifest_path, manifest, intra_op_threads)
        language.load()  # like the lemmatiser tables below: loaded with the model, not on a user's request
        try:
            # The first run loads the lemmatiser tables and shows the graph's width.
            warm_up = model.scored(["warm up"])
        except ModelError:
            raise
        except Exception as error:  # a damaged asset fails inside tokenizers, json or ONNX Runtime
            raise ModelError(
                f"model {manifest_path} cannot run ({type(error).__name__}: {error}): re-export the model"
            ) from error
        for what, names, scores in (
            ("labels", manifest.labels, warm_up.probabilities),
            ("reasons", manifest.reasons, warm_up.reasons),
        ):
            width = 0 if scores is None else scores.shape[-1]
            if len(names) != width or (scores is not None and scores.ndim != 2):
                raise ModelError(
                    f"the ONNX graph of {manifest_path} gives {width} {what} scores per tweet but "
                    f"the manifest names {len(names)} {what}: re-export the model"
                )
        model.load_seconds = time.perf_counter() - started
        return model

    @classmethod
    def open(cls, manifest_path: Path, manifest: Manifest, intra_op_threads: int) -> SentimentModel:
        raise NotImplementedError

    @property
    def labels(self) -> list[str]:
        return self.manifest.labels

    @property
    def reasons(self) -> list[str]:
        return self.manifest.reasons

    def scored(self, texts: list[str]) -> Scored:
        """Raw probabilities of both heads and whether each tweet had a readable word, from one pass."""
        words = [tokens(text, self.manifest.preprocessing) for text in texts]
        # Emoji-only or non-Latin tweets may keep no word: the model then sees an empty tweet, a guess.
        readable = [bool(set(tweet) - PLACEHOLDERS) for tweet in words]
        probabilities, reasons = self._outputs(words)
        return Scored(probabilities, reasons, readable)

    def _outputs(self, words: list[list[str]]) -> tuple[np.ndarray, np.ndarray | None]:
        raise NotImplementedError

    def probabilities(self, texts: list[str]) -> np.ndarray:
        """Raw class probabilities (before calibration), one row per tweet, columns in `labels` order."""
        return self.scored(texts).probabilities

    def predict(self, texts: list[str]) -> list[Prediction]:
        """Answers with calibrated scores; a negative answer of a model with a reason head carries its reason."""
        scored = self.scored(texts)
        calibration = self.manifest.calibration
        sentiment = scaled(scored.probabilities, calibration.get("temperature", 1.0))
        reasons = None if scored.reasons is None else scaled(scored.reasons, calibration.get("reason_temperature", 1.0))
        line = calibration.get("unsure_below", DEFAULT_UNSURE_BELOW)
        predictions = []
        for index, (text, known, row) in enumerate(zip(texts, scored.readable, sentiment, strict=True)):
            language = language_of(text)
            foreign = language not in self.manifest.languages and language != UNDETERMINED
            warnings = [unread_warning(language, self.manifest.languages)] if foreign else []
            warnings += [] if known else [UNREADABLE]
            label, top = self.labels[int(np.argmax(row))], float(np.max(row))
            unsure = top < line
            warnings += [unsure_warning("sentiment", top, line)] if unsure else []
            reason = None
            if reasons is not None and label == NEGATIVE:
                reason = self._reason(reasons[index])
                warnings += [unsure_warning("reason", reason.score, self._reason_line)] if reason.unsure else []
            predictions.append(
                Prediction(
                    label=label,
                    scores={name: round(float(value), 6) for name, value in zip(self.labels, row, strict=True)},
                    language=language,
                    warnings=warnings,
                    readable=known and not foreign,
                    unsure=unsure,
                    reason=reason,
                )
            )
        return predictions

    @property
    def _reason_line(self) -> float:
        return self.manifest.calibration.get("reason_unsure_below", DEFAULT_UNSURE_BELOW)

    def _reason(self, row: np.ndarray) -> Reason:
        top = float(np.max(row))
        return Reason(
            label=self.reasons[int(np.argmax(row))],
            score=round(top, 6),
            scores={name: round(float(value), 6) for name, value in zip(self.reasons, row, strict=True)},
            unsure=top < self._reason_line,
        )


def inference_session(
    graph: str | bytes,
    intra_op_threads: int,
    disabled_fusions: tuple[str, ...] = DISABLED_FUSIONS,
    optimised_copy: Path | None = None,
) -> ort.InferenceSession:
    """An ONNX Runtime session on the CPU, as the service runs every graph (training's int8 twins too, so that
    what is measured is what is served). `optimised_copy`: where to write the graph as ONNX Runtime runs it."""
    options = ort.SessionOptions()
    # ONNX Runtime sizes its pool from the host's cores, not the container's: set it explicitly.
    options.intra_op_num_threads = intra_op_threads
    options.inter_op_num_threads = 1
    if optimised_copy is not None:
        options.optimized_model_filepath = str(optimised_copy)
    return ort.InferenceSession(
        graph, options, providers=["CPUExecutionProvider"], disabled_optimizers=list(disabled_fusions)
    )


class GraphModel(SentimentModel):
    """One ONNX Runtime session and the assets its manifest names, sha256-checked."""

    def __init__(self, manifest: Manifest, session: ort.InferenceSession, assets: dict[str, Path]):
        super().__init__(manifest)
        self.session = session
        self._inputs = {item.name: item for item in session.get_inputs()}
        self._outputs_read = [_probability_output(session)]
        if manifest.reasons:
            if REASON_OUTPUT not in {output.name for output in session.get_outputs()}:
                raise ModelError(f"the manifest names reasons but the ONNX graph has no {REASON_OUTPUT} output")
            self._outputs_read.append(REASON_OUTPUT)

    @classmethod
    def open(cls, manifest_path: Path, manifest: Manifest, intra_op_threads: int) -> SentimentModel:
        onnx_path = _verified(manifest_path, manifest.onnx_file, manifest.onnx_sha256, "ONNX file")
        assets = {
            role: _verified(manifest_path, asset["file"], asset["sha256"], f"{role} file")
            for role, asset in manifest.assets.items()
        }
        try:
            session = inference_session(str(onnx_path), intra_op_threads)
        except Exception as error:  # ONNX Runtime raises its own exception types for unreadable graphs
            raise ModelError(f"ONNX Runtime cannot load {onnx_path} ({error}): re-export the model") from error
        try:
            return cls(manifest, session, assets)
        except Exception as error:  # a damaged asset fails inside tokenizers or json
            raise ModelError(
                f"model {manifest_path} cannot be read ({type(error).__name__}: {error}): re-export the model"
            ) from error

    def _run(self, feed: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray | None]:
        outputs = self.session.run(self._outputs_read, feed)
        reasons = np.asarray(outputs[1], dtype=np.float64) if len(outputs) > 1 else None
        return np.asarray(outputs[0], dtype=np.float64), reasons


class TextModel(GraphModel):
    """input_kind "text": the graph takes the processed tweets as strings (scikit-learn pipelines)."""

    def _outputs(self, words: list[list[str]]) -> tuple[np.ndarray, np.ndarray | None]:
        (name,) = self._inputs
        processed = [" ".join(tweet) for tweet in words]  # what `preprocess` gives, from the same tokens
        return self._run({name: np.array(processed, dtype=object).reshape(-1, 1)})


class TokenIdModel(GraphModel):
    """input_kind "token_ids": the biLSTMs, fed ids of the vocabulary saved with them."""

    def __init__(self, manifest: Manifest, session: ort.InferenceSession, assets: dict[str, Path]):
        super().__init__(manifest, session, assets)
        self._vocabulary: dict[str, int] = json.loads(assets["vocabulary"].read_text(encoding="utf-8"))
        self._sequence_length = manifest.sequence_length or 0  # the manifest requires it for this kind

    def _outputs(self, words: list[list[str]]) -> tuple[np.ndarray, np.ndarray | None]:
        ((name, spec),) = self._inputs.items()
        return self._run(
            {name: token_ids(words, self._vocabulary, self._sequence_length).astype(_numpy_type(spec.type))}
        )


class WordPieceModel(GraphModel):
    """input_kind "wordpiece": the transformers, fed their tokenizer's ids in the runs of the manifest's
    `batching`: a tweet's answer does not depend on the tweets sent with it."""

    def __init__(self, manifest: Manifest, session: ort.InferenceSession, assets: dict[str, Path]):
        super().__init__(manifest, session, assets)
        self._tokenizer = wordpiece_tokenizer(assets["tokenizer"], manifest.sequence_length or 0)
        self.batching = Batching.of(manifest)

    def _outputs(self, words: list[list[str]]) -> tuple[np.ndarray, np.ndarray | None]:
        processed = [" ".join(tweet) for tweet in words]
        rows = np.empty((len(words), len(self.labels)), dtype=np.float64)
        reason_rows = None  # as wide as the graph answers: `load` checks it against the manifest
        for run, columns in wordpiece_runs(self._tokenizer, processed, self.batching):
            rows[run], reasons = self._run(
                {name: columns[name].astype(_numpy_type(spec.type)) for name, spec in self._inputs.items()}
            )
            if reasons is not None:
                if reason_rows is None:
                    reason_rows = np.empty((len(words), reasons.shape[-1]), dtype=np.float64)
                reason_rows[run] = reasons
        return rows, reason_rows


class EnsembleModel(SentimentModel):
    """input_kind "ensemble": the weighted average of its members' probabilities (`combine`), each member an
    exported model of its own (its manifest, graph and assets sha256-checked like any model), all fed the
    same raw tweets."""

    def __init__(self, manifest: Manifest, members: list[tuple[SentimentModel, float]]):
        super().__init__(manifest)
        self.members = members

    @classmethod
    def open(cls, manifest_path: Path, manifest: Manifest, intra_op_threads: int) -> SentimentModel:
        members = []
        for member in manifest.members:
            path = _verified(manifest_path, member["manifest"], member["sha256"], "member manifest")
            model = SentimentModel.load(path, intra_op_threads)
            if model.labels != manifest.labels:
                raise ModelError(
                    f"member {path.name} of {manifest_path} has the labels {model.labels}, not "
                    f"{manifest.labels}: re-export the model"
                )
            members.append((model, float(member["weight"])))
        return cls(manifest, members)

    def scored(self, texts: list[str]) -> Scored:
        return combine([model.scored(texts) for model, _ in self.members], [weight for _, weight in self.members])


KINDS: dict[str, type[SentimentModel]] = {
    "text": TextModel,
    "token_ids": TokenIdModel,
    "wordpiece": WordPieceModel,
    "ensemble": EnsembleModel,
}


def combine(scored: list[Scored], weights: list[float]) -> Scored:
    """The weighted average of members' probabilities, where a member that found no readable word in a tweet
    abstains on it (its answer is a blind guess: a letters-only member on "@united 😡😡😡" would otherwise
    outvote one that reads emoji); the others' weights are renormalised. A tweet no member reads gets the
    plain weighted average, flagged unreadable. An ensemble has no reason head of its own."""
    rows = np.stack([member.probabilities for member in scored])  # member, tweet, label
    read = np.array([member.readable for member in scored], dtype=bool)  # member, tweet
    anyone = np.any(read, axis=0, keepdims=False).astype(bool)  # tweet
    weight = np.asarray(weights, dtype=np.float64)[:, None] * np.where(anyone, read, True)
    total = (weight[:, :, None] * rows).sum(axis=0) / weight.sum(axis=0)[:, None]
    return Scored(total, None, [bool(known) for known in anyone])


def _numpy_type(onnx_type: str) -> type:
    return {"tensor(int64)": np.int64, "tensor(int32)": np.int32, "tensor(float)": np.float32}[onnx_type]


def _probability_output(session: ort.InferenceSession) -> str:
    # skl2onnx names it "probabilities" (double for naive Bayes); Keras and torch exports end in a softmax:
    # the floating-point tensor of rank 2.
    for output in session.get_outputs():
        if output.type in ("tensor(float)", "tensor(double)") and len(output.shape) == 2:
            return str(output.name)
    raise ModelError(
        "the ONNX graph has no probability output (a float tensor of shape [batch, labels]): "
        "export it with zipmap disabled, or with its softmax"
    )
