"""The model families, as a typed registry: each names its variants, its section of hyperparameters.toml and
the function that fits it. Heavy libraries (TensorFlow, torch, scikit-learn) load only when a family is fitted.

To add a family: a module in this folder with a `fit_...(split, variant, labels, hyperparameters, seed)` that returns
`Candidate`s (see candidate.py), a section in training/hyperparameters.toml, and a `Family` below. The runner
(training/pipeline/runner.py) does the rest: evaluation, ONNX export with parity, latency, tracking, the report row.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from ..data import Split
from .candidate import Candidate

Fit = Callable[[Split, str, list[str], dict[str, Any], int], list[Candidate]]


@dataclasses.dataclass(frozen=True)
class Family:
    name: str
    variants: tuple[str, ...]
    hyperparameters: str  # its section of hyperparameters.toml
    fit: Fit


def _logreg(split: Split, variant: str, labels: list[str], params: dict[str, Any], seed: int) -> list[Candidate]:
    from . import classic

    return [classic.fit_logreg(split, variant, labels, params, seed)]


def _gaussian_nb(split: Split, variant: str, labels: list[str], params: dict[str, Any], seed: int) -> list[Candidate]:
    from . import classic

    return [classic.fit_gaussian_nb(split, variant, labels, params, seed)]


def _xgboost(split: Split, variant: str, labels: list[str], params: dict[str, Any], seed: int) -> list[Candidate]:
    from . import classic

    return [classic.fit_xgboost(split, variant, labels, params, seed)]


def _bilstm_word2vec(
    split: Split, variant: str, labels: list[str], params: dict[str, Any], seed: int
) -> list[Candidate]:
    from . import lstm

    return [lstm.fit_bilstm("bilstm-word2vec", "word2vec", split, variant, labels, params, seed)]


def _bilstm_glove(split: Split, variant: str, labels: list[str], params: dict[str, Any], seed: int) -> list[Candidate]:
    from . import lstm

    return [lstm.fit_bilstm("bilstm-glove", "glove", split, variant, labels, params, seed)]


def _bert_minilm(split: Split, variant: str, labels: list[str], params: dict[str, Any], seed: int) -> list[Candidate]:
    from . import bert, distillation

    calibration = bert.calibration_tweets(split, seed, params["calibration_tweets"])
    if variant == "distilled":
        student = distillation.distil_minilm(split, labels, params, seed)
        return [student, bert.quantised(student, calibration)]
    fine_tuned = bert.fine_tune_minilm(split, labels, params, seed)
    return [fine_tuned, bert.quantised(fine_tuned, calibration)]  # the int8 twin: a row of its own


def _bert_mpnet(split: Split, variant: str, labels: list[str], params: dict[str, Any], seed: int) -> list[Candidate]:
    from . import distillation

    return distillation.fit_teacher(split, labels, params, seed)  # nothing when this store already has it


def _ensemble(split: Split, variant: str, labels: list[str], params: dict[str, Any], seed: int) -> list[Candidate]:
    from . import ensemble

    return [ensemble.fit_ensemble(split, variant, labels, params, seed)]


FAMILIES: dict[str, Family] = {
    family.name: family
    for family in (
        Family("logreg", ("lemmatize", "stem"), "logreg", _logreg),
        Family("gaussian-nb", ("lemmatize", "stem"), "gaussian-nb", _gaussian_nb),
        Family("xgboost", ("lemmatize", "stem"), "xgboost", _xgboost),
        Family("bilstm-word2vec", ("frozen", "fine-tuned"), "bilstm", _bilstm_word2vec),
        Family("bilstm-glove", ("frozen", "fine-tuned"), "bilstm", _bilstm_glove),
        # The teacher before its student (bert-minilm-distilled reads the teacher's outputs).
        Family("bert-mpnet", ("fine-tuned",), "bert-mpnet", _bert_mpnet),
        Family("bert-minilm", ("fine-tuned", "distilled"), "bert-minilm", _bert_minilm),
        # Last: its members are the runs above.
        Family("ensemble", ("minilm-int8-glove-logreg",), "ensemble", _ensemble),
    )
}
BASELINES = ("vader",)  # no training, no export: the row every model must beat


def selected(only: list[str] | None) -> list[tuple[Family, str]]:
    """(family, variant) pairs named by `only` (families or family-variant names); all when None."""
    pairs = [(family, variant) for family in FAMILIES.values() for variant in family.variants]
    if not only:
        return pairs
    names = {f"{family.name}-{variant}" for family, variant in pairs}
    unknown = [name for name in only if name not in FAMILIES and name not in BASELINES and name not in names]
    if unknown:
        raise ValueError(
            f"unknown models {unknown}; choose from {sorted(FAMILIES) + list(BASELINES)} "
            "or family-variant names such as logreg-stem"
        )
    return [(family, variant) for family, variant in pairs if family.name in only or f"{family.name}-{variant}" in only]
