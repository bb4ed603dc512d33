"""What a tweet's context costs: /api/predict's function (in process, as the Functions host calls it) on a batch of
64 plain tweets and on the same 64 as objects with their context, timed alternately in one run. Prints a Markdown
table with the machine.

    python -m scripts.context_cost [--rounds 60]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import azure.functions as func

from scripts.benchmark import TWEETS, machine

CONTEXT = {"followers": 18200, "retweets": 340, "likes": 1200, "replies": 45, "created_at": "2026-12-05T09:30:00Z"}


def request(body: dict[str, object]) -> func.HttpRequest:
    headers = {"Content-Type": "application/json"}
    return func.HttpRequest(method="POST", url="/api/predict", body=json.dumps(body).encode(), headers=headers)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=60)
    args = parser.parse_args()
    import function_app  # the app as deployed, its model loaded at import

    predict = next(f for f in function_app.app.get_functions() if f.get_function_name() == "predict")
    handler = predict.get_user_function()
    tweets = [TWEETS[index % len(TWEETS)] + f" #{index}" for index in range(64)]
    bodies: dict[str, dict[str, object]] = {
        "64 plain tweets": {"texts": tweets},
        "64 tweets with context": {"texts": [{"text": tweet, "context": CONTEXT} for tweet in tweets]},
    }
    timings: dict[str, list[float]] = {name: [] for name in bodies}
    for body in bodies.values():  # warm up both
        assert handler(request(body)).status_code == 200
    for _ in range(args.rounds):
        for name, body in bodies.items():
            started = time.perf_counter()
            handler(request(body))
            timings[name].append((time.perf_counter() - started) * 1000)
    print(f"Machine: {machine()}; {args.rounds} rounds, alternately\n")
    print("| request | p50 ms | ratio |\n|---|---|---|")
    base = statistics.median(timings["64 plain tweets"])
    for name, values in timings.items():
        print(f"| {name} | {statistics.median(values):.1f} | {statistics.median(values) / base:.3f} |")


if __name__ == "__main__":
    main()
