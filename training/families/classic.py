"""Classic models on TF-IDF features of the lemmatised or stemmed tweets: logistic regression, Gaussian naive
Bayes and XGBoost, each with a small hyper-parameter search on validation."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from typing import Any, cast

import mlflow.sklearn
import numpy as np
import onnx
import onnx.compose
import sklearn
from skl2onnx import convert_sklearn, update_registered_converter
from skl2onnx.common.data_types import DoubleTensorType, StringTensorType
from skl2onnx.common.shape_calculator import calculate_linear_classifier_output_shapes
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from sklearn.naive_bayes import GaussianNB
from sklearn.pipeline import Pipeline

from tweet_sentiment.text import Normalisation, TextConfig, preprocess_many

from ..data import Split
from .candidate import Candidate

ONNX_OPSET = {"": 15, "ai.onnx.ml": 3}  # onnxmltools' XGBoost converter supports opset 15 at most
# Dense features for naive Bayes and XGBoost: XGBoost reads a sparse zero as "missing", and GaussianNB
# needs dense input, so both get the densest useful vocabulary instead of all bigrams.
DENSE_FEATURES = 3000


def _vectorizer(max_features: int | None) -> TfidfVectorizer:
    # sublinear_tf stays off and the token pattern stays scikit-learn's default: the ONNX converter reproduces
    # both exactly (see `to_onnx`).
    # No document-frequency ceiling: it can drop a word while keeping its bigrams, which the ONNX graph
    # then counts differently (the mention placeholder is in every airline tweet).
    return TfidfVectorizer(ngram_range=(1, 2), min_df=2, max_features=max_features, dtype=np.float32)


def to_onnx(vectorizer: TfidfVectorizer, classifier) -> bytes:
    """One graph from preprocessed tweet (a string per row) to probabilities. The vectorizer's ONNX output is
    dense, which is what naive Bayes and XGBoost were fitted on."""
    options = {
        # C.UTF-8 exists on every Linux; the default en_US locale is missing from slim images and the
        # session then fails to load. \w\w+ is scikit-learn's default token pattern without the \b anchors.
        id(vectorizer): {"tokenexp": r"\w\w+", "locale": "C.UTF-8"},
        id(classifier): {"zipmap": False},  # a plain probability tensor, not a list of dicts
    }
    if isinstance(classifier, GaussianNB):
        return _double_precision_naive_bayes(vectorizer, classifier).SerializeToString()
    pipeline = Pipeline([("tfidf", vectorizer), ("classifier", classifier)])
    model = convert_sklearn(
        pipeline, initial_types=[("text", StringTensorType([None, 1]))], options=options, target_opset=ONNX_OPSET
    )
    if type(classifier).__name__ == "XGBClassifier":
        _nudge_tree_thresholds(model)
    return model.SerializeToString()


def _double_precision_naive_bayes(vectorizer: TfidfVectorizer, classifier: GaussianNB) -> onnx.ModelProto:
    """TF-IDF graph, a cast to double, then naive Bayes in double precision: its log-likelihoods over thousands
    of features lose about 4e-4 of probability in float32, past the parity limit."""
    tfidf = convert_sklearn(
        vectorizer,
        initial_types=[("text", StringTensorType([None, 1]))],
        options={id(vectorizer): {"tokenexp": r"\w\w+", "locale": "C.UTF-8"}},
        target_opset=ONNX_OPSET,
    )
    width = len(vectorizer.vocabulary_)
    tfidf.graph.node.append(
        onnx.helper.make_node("Cast", [tfidf.graph.output[0].name], ["features_double"], to=onnx.TensorProto.DOUBLE)
    )
    del tfidf.graph.output[:]
    tfidf.graph.output.append(
        onnx.helper.make_tensor_value_info("features_double", onnx.TensorProto.DOUBLE, [None, width])
    )
    bayes = onnx.compose.add_prefix(
        convert_sklearn(
            classifier,
            initial_types=[("features", DoubleTensorType([None, width]))],
            options={id(classifier): {"zipmap": False}},
            target_opset=ONNX_OPSET,
        ),
        "nb_",
    )
    for model in (tfidf, bayes):  # merge_models wants the same opsets and IR version on both sides
        for opset in model.opset_import:
            opset.version = ONNX_OPSET.get(opset.domain, opset.version)
    tfidf.ir_version = bayes.ir_version = min(tfidf.ir_version, bayes.ir_version)
    return onnx.compose.merge_models(tfidf, bayes, io_map=[("features_double", "nb_features")])


def _nudge_tree_thresholds(model: onnx.ModelProto) -> None:
    """XGBoost's hist method splits exactly at observed feature values (x < cut goes left), and ONNX Runtime's
    TF-IDF can come out one float32 ulp below scikit-learn's, sending such a tweet down the other branch
    (probabilities then differ by up to 0.09). Lowering every threshold by a few ulps sends values equal to
    a cut where XGBoost sends them; distinct observed values are much further apart than that."""
    for node in model.graph.node:
        if node.op_type.startswith("TreeEnsemble"):
            for attribute in node.attribute:
                if attribute.name == "nodes_values":
                    values = np.asarray(attribute.floats, dtype=np.float32)
                    nudged = values - np.abs(values) * np.float32(4e-7)
                    del attribute.floats[:]
                    attribute.floats.extend(nudged.tolist())


def _register_xgboost_converter() -> None:
    from onnxmltools.convert.xgboost.operator_converters.XGBoost import convert_xgboost
    from xgboost import XGBClassifier

    update_registered_converter(
        XGBClassifier,
        "XGBoostXGBClassifier",
        calculate_linear_classifier_output_shapes,
        convert_xgboost,
        options={"nocl": [True, False], "zipmap": [True, False, "columns"]},
    )


def fit_best_on_validation(
    family: str,
    split: Split,
    variant: str,
    labels: list[str],
    grid: dict[str, tuple[Any, ...]],
    make: Callable[[dict[str, Any], int], Any],
    dense: bool,
    seed: int,
    early_stopping: bool = False,
) -> Candidate:
    """Fit one classifier per grid point on the training part and keep the one with the best validation
    macro-F1 (the grid: every list-valued hyperparameter)."""
    config = TextConfig(normalisation=cast(Normalisation, variant))  # checked by TextConfig
    started = time.perf_counter()
    train_texts = preprocess_many(split.train["text"].tolist(), config)
    validation_texts = preprocess_many(split.validation["text"].tolist(), config)
    vectorizer = _vectorizer(DENSE_FEATURES if dense else None).fit(train_texts)

    def features(texts: list[str]):
        matrix = vectorizer.transform(texts)
        # Naive Bayes runs in double precision, in scikit-learn as in its ONNX graph.
        return matrix.toarray().astype(np.float64 if family == "gaussian-nb" else np.float32) if dense else matrix

    train_x, validation_x = features(train_texts), features(validation_texts)
    train_y = np.array([labels.index(label) for label in split.train["sentiment"]])
    validation_y = np.array([labels.index(label) for label in split.validation["sentiment"]])
    results, best = [], None
    for values in itertools.product(*grid.values()):
        params = dict(zip(grid, values, strict=True))
        classifier = make(params, seed)
        # Early stopping watches the validation part, as the search does.
        fit_params = {"eval_set": [(validation_x, validation_y)], "verbose": False} if early_stopping else {}
        classifier.fit(train_x, train_y, **fit_params)
        score = f1_score(validation_y, classifier.predict(validation_x), average="macro")
        results.append({**{key: str(value) for key, value in params.items()}, "val_macro_f1": round(float(score), 5)})
        if best is None or score > best[0]:
            best = (score, classifier, params)
    assert best is not None
    _, classifier, params = best
    if early_stopping:
        # The ONNX converter keeps every tree, predict_proba only those up to the best iteration: refit with
        # exactly that many trees so that the exported graph is the model that was evaluated.
        params = {**params, "n_estimators": classifier.best_iteration + 1}
        classifier = make(params, seed).fit(train_x, train_y)

    def predict_proba(texts: list[str]) -> np.ndarray:
        return classifier.predict_proba(features(preprocess_many(texts, config))).astype(np.float64)

    def log_native() -> None:
        # cloudpickle: skops refuses XGBoost's types. Requirements stated, not inferred (inference runs pip).
        mlflow.sklearn.log_model(
            Pipeline([("tfidf", vectorizer), ("classifier", classifier)]),
            name="native",
            serialization_format="cloudpickle",
            pip_requirements=[f"scikit-learn=={sklearn.__version__}"],
        )

    return Candidate(
        family=family,
        variant=variant,
        text_config=config,
        params={
            **{key: str(value) for key, value in params.items()},
            "features": "tfidf word 1-2-grams" + (f", top {DENSE_FEATURES}, dense" if dense else ""),
            "vocabulary_size": len(vectorizer.vocabulary_),
        },
        predict_proba=predict_proba,
        onnx=to_onnx(vectorizer, classifier),
        labels=labels,
        search=results,
        training_seconds=time.perf_counter() - started,
        log_native=log_native,
    )


def _grid(params: dict[str, Any]) -> dict[str, tuple[Any, ...]]:
    return {key: tuple(value) for key, value in params.items() if isinstance(value, list)}


def fit_logreg(split: Split, variant: str, labels: list[str], params: dict[str, Any], seed: int) -> Candidate:
    return fit_best_on_validation(
        "logreg",
        split,
        variant,
        labels,
        _grid(params),
        lambda p, s: LogisticRegression(
            C=p["C"], class_weight=p["class_weight"], max_iter=params["max_iter"], random_state=s
        ),
        dense=False,
        seed=seed,
    )


def fit_gaussian_nb(split: Split, variant: str, labels: list[str], params: dict[str, Any], seed: int) -> Candidate:
    return fit_best_on_validation(
        "gaussian-nb",
        split,
        variant,
        labels,
        _grid(params),
        lambda p, s: GaussianNB(var_smoothing=p["var_smoothing"]),
        dense=True,
        seed=seed,
    )


def fit_xgboost(split: Split, variant: str, labels: list[str], params: dict[str, Any], seed: int) -> Candidate:
    from xgboost import XGBClassifier

    _register_xgboost_converter()
    return fit_best_on_validation(
        "xgboost",
        split,
        variant,
        labels,
        _grid(params),
        lambda p, s: XGBClassifier(
            n_estimators=p.get("n_estimators", params["n_estimators"]),
            max_depth=p["max_depth"],
            learning_rate=p["learning_rate"],
            subsample=params["subsample"],
            colsample_bytree=params["colsample_bytree"],
            tree_method="hist",
            # early stopping while searching; the final refit has its tree count fixed
            early_stopping_rounds=None if "n_estimators" in p else params["early_stopping_rounds"],
            eval_metric="mlogloss",
            n_jobs=2,
            random_state=s,
        ),
        dense=True,
        seed=seed,
        early_stopping=True,
    )


def reason_baseline(texts: list[str], codes: np.ndarray, reasons: int, seed: int) -> Callable[[list[str]], np.ndarray]:
    """The reason head's baseline: TF-IDF logistic regression on the lemmatised tweets the team gave a reason
    (`codes` >= 0), its C and class weights chosen by 5-fold cross-validation on those tweets alone (macro-F1),
    so that validation judges it as it judges the head. Returns raw tweets -> probabilities of the `reasons`
    reasons (a reason absent from the training labels at 0)."""
    from sklearn.model_selection import GridSearchCV, StratifiedKFold

    config = TextConfig(normalisation="lemmatize")
    labelled = codes >= 0
    search = GridSearchCV(
        Pipeline([("tfidf", _vectorizer(None)), ("classifier", LogisticRegression(max_iter=2000))]),
        {"classifier__C": [0.5, 2.0, 8.0], "classifier__class_weight": [None, "balanced"]},
        scoring="f1_macro",
        cv=StratifiedKFold(5, shuffle=True, random_state=seed),
    )
    search.fit(preprocess_many(list(np.asarray(texts, dtype=object)[labelled]), config), codes[labelled])
    columns = search.best_estimator_.classes_

    def probabilities(tweets: list[str]) -> np.ndarray:
        rows = np.zeros((len(tweets), reasons))
        rows[:, columns] = search.predict_proba(preprocess_many(tweets, config))
        return rows

    return probabilities
