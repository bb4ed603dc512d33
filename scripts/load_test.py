"""Feedback and predictions together from concurrent clients against a running service (127.0.0.1 only):
each client predicts a tweet and sends feedback on it, `rounds` times. Prints the refused share of new
feedback, the p50/p99 of both calls and the feedback acknowledged.

    python -m scripts.local_server --azurite &   # or make serve
    python -m scripts.load_test http://127.0.0.1:7071 [--clients 16] [--rounds 50]
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import httpx
import numpy as np

TWEETS = [
    "@united lost my bag again, worst airline ever",
    "@JetBlue thank you so much for the amazing crew!",
    "@SouthwestAir what time does boarding start?",
    "@AmericanAir 3 hours on the tarmac and no update",
]


@dataclasses.dataclass
class LoadResult:
    sent: int = 0
    refused: int = 0  # 503: may not be stored (the client retries)
    acknowledged: list[str] = dataclasses.field(default_factory=list)  # prediction ids answered 202
    errors: list[str] = dataclasses.field(default_factory=list)
    predict_ms: list[float] = dataclasses.field(default_factory=list)
    feedback_ms: list[float] = dataclasses.field(default_factory=list)


def run_load(url: str, clients: int, rounds: int) -> LoadResult:
    if urlsplit(url).hostname not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit("load tests target this machine only (127.0.0.1)")
    result, lock = LoadResult(), threading.Lock()

    def client(number: int) -> None:
        with httpx.Client(base_url=url, timeout=30) as http:
            for round_ in range(rounds):
                tweet = f"{TWEETS[(number + round_) % len(TWEETS)]} #{random.randrange(10**9)}"
                started = time.perf_counter()
                answer = http.post("/api/predict", json={"text": tweet})
                predicted = time.perf_counter()
                body = answer.json()
                feedback = http.post(
                    "/api/feedback",
                    json={
                        "prediction_id": body["prediction_id"],
                        "prediction_token": body["prediction_token"],
                        "text": tweet,
                        "predicted_label": body["label"],
                        "correct": True,
                    },
                )
                done = time.perf_counter()
                with lock:
                    result.sent += 1
                    result.predict_ms.append((predicted - started) * 1000)
                    result.feedback_ms.append((done - predicted) * 1000)
                    if answer.status_code != 200:
                        result.errors.append(f"predict {answer.status_code}")
                    if feedback.status_code == 202:
                        result.acknowledged.append(body["prediction_id"])
                    elif feedback.status_code == 503:
                        result.refused += 1
                    else:
                        result.errors.append(f"feedback {feedback.status_code}: {feedback.text[:200]}")

    with ThreadPoolExecutor(clients) as pool:
        for future in [pool.submit(client, number) for number in range(clients)]:
            future.result()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("url", nargs="?", default="http://127.0.0.1:7071")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=50)
    args = parser.parse_args()
    result = run_load(args.url, args.clients, args.rounds)
    print(f"| {args.clients} clients x {args.rounds} rounds | figure |\n|---|---|")
    print(f"| new feedback refused (503) | {result.refused} of {result.sent} ({result.refused / result.sent:.1%}) |")
    print(f"| feedback acknowledged (202) | {len(result.acknowledged)} |")
    for name, timings in (("predict", result.predict_ms), ("feedback", result.feedback_ms)):
        p50, p99 = np.percentile(timings, 50), np.percentile(timings, 99)
        print(f"| {name} p50 / p99 | {p50:.1f} / {p99:.1f} ms |")
    print(f"| other errors | {len(result.errors)} |")


if __name__ == "__main__":
    main()
