"""The registered form of every exported model, as an MLflow "model from code": raw tweets in (a DataFrame with
a `text` column), the columns of `python -m tweet_sentiment score` out (label, one score per sentiment, reason,
reason_score, model_version, language, warnings, error), computed by the serving package on the exported ONNX
files.

It is logged with those files and the tweet_sentiment package (runner.register), so that
`mlflow.pyfunc.load_model("models:/tweet-sentiment@champion")`, `mlflow models serve` and
`mlflow.pyfunc.spark_udf` (scripts/spark_score.py) need nothing of training."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.pyfunc import PythonModel


class ServedSentiment(PythonModel):
    def load_context(self, context: Any) -> None:
        from tweet_sentiment.model import SentimentModel
        from tweet_sentiment.settings import Settings

        self.model = SentimentModel.load(Path(context.artifacts["model"]) / "model.json")
        self.settings = Settings.from_environment()

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        from tweet_sentiment.scoring import score_rows
        from tweet_sentiment.tabular import SCORE_COLUMNS

        rows = [{"text": text} for text in model_input["text"].tolist()]
        return pd.DataFrame(score_rows(self.model, rows, "text", self.settings), columns=SCORE_COLUMNS)


mlflow.models.set_model(ServedSentiment())
