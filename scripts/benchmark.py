"""Serving benchmark: prints Markdown tables of in-process and HTTP figures for the shipped model.

    python -m scripts.benchmark [--requests 2000] [--manifest models/champion.json]

In process: model load, single-tweet and batch-of-64 latency (p50/p95/p99), tweets per second, resident
memory. Over HTTP on 127.0.0.1 (the local server, `hey` as load generator): cold start (process start to
first answer), then requests per second and p50/p99 at concurrency 1, 16 and 64, with the error count.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import re
import resource
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from tweet_sentiment.model import SentimentModel

APP_ROOT = Path(__file__).resolve().parent.parent

# Tweets in the style of the airline corpus, of different lengths.
TWEETS = [
    "@united lost my bag again, worst airline ever",
    "@JetBlue thank you so much for the amazing crew and the smooth flight, love you guys!",
    "@SouthwestAir what time does the flight from Dallas to Austin leave tomorrow?",
    "@AmericanAir 3 hours on the tarmac and no update. #fail http://t.co/abc",
    "@USAirways Cancelled Flightled again, customer service put me on hold for 2 hrs, can't believe this",
    "@VirginAmerica gr8 wifi and comfy seats, thx!",
    "@united how do I change my seat on the connecting flight to Newark?",
    "@JetBlue flight attendants were rude and the plane was dirty. Never again. Worst experience I have had in "
    "years of flying, I want a refund for this trip and an explanation of why nobody told us about the delay",
]


def percentiles(timings_ms: list[float]) -> tuple[float, float, float]:
    p50, p95, p99 = (float(np.percentile(timings_ms, q)) for q in (50, 95, 99))
    return p50, p95, p99


def in_process(manifest: Path, iterations: int) -> list[tuple[str, str]]:
    started = time.perf_counter()
    model = SentimentModel.load(manifest, intra_op_threads=1)
    load_ms = (time.perf_counter() - started) * 1000
    single = []
    for index in range(iterations):
        tweet = TWEETS[index % len(TWEETS)]
        started = time.perf_counter()
        model.predict([tweet])
        single.append((time.perf_counter() - started) * 1000)
    batch_tweets = [TWEETS[index % len(TWEETS)] + f" {index}" for index in range(64)]
    batch = []
    for _ in range(max(iterations // 20, 20)):
        started = time.perf_counter()
        model.predict(batch_tweets)
        batch.append((time.perf_counter() - started) * 1000)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    s50, s95, s99 = percentiles(single)
    b50, b95, b99 = percentiles(batch)
    return [
        ("model load (manifest check, session, warm-up)", f"{load_ms:.0f} ms"),
        ("one tweet p50 / p95 / p99", f"{s50:.2f} / {s95:.2f} / {s99:.2f} ms"),
        ("one tweet throughput", f"{1000 / np.mean(single):.0f} tweets/s"),
        ("batch of 64 p50 / p95 / p99", f"{b50:.1f} / {b95:.1f} / {b99:.1f} ms"),
        ("batch of 64 throughput", f"{64 * 1000 / np.mean(batch):.0f} tweets/s"),
        ("peak resident memory (benchmark process)", f"{rss_mb:.0f} MiB"),
    ]


def language_identification_cost(manifest: Path, iterations: int) -> list[tuple[str, str]]:
    """One tweet through the `predict` function (func.HttpRequest, as the host calls it) with language
    identification and with it switched off (a stand-in that answers "en"), alternately in the same run."""
    import azure.functions as func

    import tweet_sentiment.model as served

    os.environ["SENTIMENT_MODEL_PATH"] = str(manifest)
    import function_app

    predict = next(f for f in function_app.app.get_functions() if f.get_function_name() == "predict")
    call = predict.get_user_function()
    identify = served.language_of  # type: ignore[attr-defined]
    timings: dict[bool, list[float]] = {True: [], False: []}
    for index in range(iterations):
        body = json.dumps({"text": TWEETS[index % len(TWEETS)]}).encode()
        for with_language in (True, False) if index % 2 else (False, True):
            setattr(served, "language_of", identify if with_language else (lambda tweet: "en"))  # noqa: B010
            request = func.HttpRequest("POST", "/api/predict", body=body, headers={"Content-Type": "application/json"})
            started = time.perf_counter()
            call(request)
            timings[with_language].append((time.perf_counter() - started) * 1000)
    setattr(served, "language_of", identify)  # noqa: B010
    with_p50, without_p50 = (float(np.percentile(timings[flag], 50)) for flag in (True, False))
    return [
        ("`predict` function, one tweet, p50 with language identification", f"{with_p50:.2f} ms"),
        ("same, language identification off", f"{without_p50:.2f} ms"),
        ("language identification's share of the p50", f"+{100 * (with_p50 / without_p50 - 1):.1f}%"),
    ]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(port: int) -> tuple[subprocess.Popen, float]:
    """Start the local server; returns it and the seconds from process start to the first prediction."""
    import httpx

    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, str(APP_ROOT / "scripts" / "local_server.py"), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    while True:
        try:
            answer = httpx.post(f"http://127.0.0.1:{port}/api/predict", json={"text": TWEETS[0]}, timeout=5)
            if answer.status_code == 200:
                return process, time.perf_counter() - started
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.perf_counter() - started > 120:
            raise SystemExit("the local server did not answer")
        time.sleep(0.05)


def hey(url: str, requests: int, concurrency: int) -> dict[str, str]:
    body = json.dumps({"text": TWEETS[1]})
    output = subprocess.run(
        ["hey", "-n", str(requests), "-c", str(concurrency), "-m", "POST", "-T", "application/json", "-d", body, url],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    ).stdout
    # hey sends requests // concurrency per worker; count what was answered, and every failure.
    codes = {code: int(count) for code, count in re.findall(r"\[(\d+)\]\s+(\d+) responses", output)}
    error_section = output.split("Error distribution:", 1)[1] if "Error distribution:" in output else ""
    failures = sum(int(count) for count in re.findall(r"^\s+\[(\d+)\]\s", error_section, re.M))
    errors = sum(count for code, count in codes.items() if code != "200") + failures
    quantile = {q: float(_found(rf"{q}% in ([\d.]+) secs", output)) * 1000 for q in (50, 99)}
    rps = float(_found(r"Requests/sec:\s+([\d.]+)", output))
    return {
        "concurrency": str(concurrency),
        "requests": str(sum(codes.values()) + failures),
        "requests/s": f"{rps:.0f}",
        "p50 ms": f"{quantile[50]:.1f}",
        "p99 ms": f"{quantile[99]:.1f}",
        "errors": str(errors),
    }


def _found(pattern: str, output: str) -> str:
    match = re.search(pattern, output)
    if match is None:
        raise SystemExit(f"`hey` printed no {pattern!r}: {output[-500:]}")
    return match.group(1)


def machine() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    import onnxruntime

    return (
        f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"onnxruntime {onnxruntime.__version__}, {platform.system()} {platform.release()}"
    )


def environment() -> str:
    """Whether the figures are the image's: the Functions host installs the serving requirements only."""
    training = [name for name in ("sklearn", "scipy", "torch", "tensorflow") if importlib.util.find_spec(name)]
    if training:
        return f"the training stack is installed ({', '.join(training)}): cold start is slower than in the image"
    return "serving requirements only, as in the image"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--manifest", type=Path, default=APP_ROOT / "models" / "champion.json")
    parser.add_argument("--iterations", type=int, default=2000, help="single-tweet predictions in process")
    parser.add_argument("--requests", type=int, default=2000, help="HTTP requests per concurrency level")
    args = parser.parse_args()

    print(f"Machine: {machine()}")
    print(f"Environment: {environment()}")
    print(
        f"Model: {args.manifest.relative_to(APP_ROOT) if args.manifest.is_relative_to(APP_ROOT) else args.manifest}"
        f" ({json.loads(args.manifest.read_text())['family']}, ONNX Runtime, 1 intra-op thread)\n"
    )
    print("| in process | figure |\n|---|---|")
    for name, value in in_process(args.manifest, args.iterations):
        print(f"| {name} | {value} |")
    for name, value in language_identification_cost(args.manifest, min(args.iterations, 1000)):
        print(f"| {name} | {value} |")

    if shutil.which("hey") is None:
        raise SystemExit("\n`hey` is not installed (Debian package hey): HTTP figures skipped")
    port = free_port()
    process, cold_start = start_server(port)
    try:
        print(
            f"\nHTTP: local server (uvicorn, 1 process) on 127.0.0.1, load from `hey`, POST /api/predict "
            f"with one tweet. Cold start, process start to first answer: {cold_start:.2f} s\n"
        )
        rows = [hey(f"http://127.0.0.1:{port}/api/predict", args.requests, concurrency) for concurrency in (1, 16, 64)]
        print("| " + " | ".join(rows[0]) + " |\n|" + "---|" * len(rows[0]))
        for row in rows:
            print("| " + " | ".join(row.values()) + " |")
    finally:
        process.terminate()
        process.wait(timeout=15)


if __name__ == "__main__":
    main()
