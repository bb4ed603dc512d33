"""Score a folder of tweets (Parquet or CSV with a header) on Spark with a registered model, through
`mlflow.pyfunc.spark_udf`: each executor loads the pyfunc (the exported ONNX files and the tweet_sentiment
package travel with it) and answers as the service does. Writes Parquet: every input column, then label,
score_negative, score_neutral, score_positive, reason, reason_score, model_version, language, warnings and error.

    python -m scripts.spark_score INPUT OUTPUT [--format parquet|csv] [--model-uri models:/tweet-sentiment@champion]
                                               [--text-column text] [--master local[2]]

On a cluster (Azure Databricks, Synapse, HDInsight): `spark-submit scripts/spark_score.py abfss://.../in
abfss://.../out` with MLFLOW_TRACKING_URI pointing at the team's tracking server (on Databricks, its own).
"""

from __future__ import annotations

import argparse
import os
import sys

SCHEMA = (
    "label string, score_negative double, score_neutral double, score_positive double, reason string, "
    "reason_score double, model_version string, language string, warnings string, error string"
)


def score_folder(spark, model_uri: str, source: str, target: str, source_format: str = "parquet",
                 text_column: str = "text") -> None:  # fmt: skip
    """Every row of `source` (a Parquet or CSV folder or file) with the model's answer, written to `target`."""
    import mlflow.pyfunc
    from pyspark.sql import functions

    reader = spark.read
    frame = (
        reader.parquet(source)
        if source_format == "parquet"
        else reader.option("header", True).option("multiLine", True).option("escape", '"').csv(source)
    )
    answer = mlflow.pyfunc.spark_udf(spark, model_uri, result_type=SCHEMA, env_manager="local")
    scored = frame.withColumn("_answer", answer(functions.struct(functions.col(text_column).alias("text"))))
    scored = scored.select(*frame.columns, "_answer.*")
    for column in ("label", "reason", "language", "warnings"):  # spark_udf writes a row's missing string as "nan"
        scored = scored.withColumn(column, functions.when(functions.col(column) != "nan", functions.col(column)))
    scored.write.mode("overwrite").parquet(target)


def main() -> None:
    from pyspark.sql import SparkSession

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("input")
    parser.add_argument("output")
    parser.add_argument("--model-uri", default="models:/tweet-sentiment@champion")
    parser.add_argument("--text-column", default="text")
    parser.add_argument("--format", choices=("parquet", "csv"), default="parquet", help="the input's format")
    parser.add_argument("--master", default=None, help="e.g. local[2]; default: spark-submit's")
    args = parser.parse_args()
    # Python workers run this interpreter (its packages), not whatever `python3` is first on the PATH.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.appName("tweet-sentiment-score")
    spark = (builder.master(args.master) if args.master else builder).getOrCreate()
    try:
        score_folder(spark, args.model_uri, args.input, args.output, args.format, args.text_column)
    finally:
        spark.stop()


if __name__ == "__main__":
    main()
