from __future__ import annotations

import gzip
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent
# One prediction signing key for the session: the app in process and every local server it starts share it.
os.environ.setdefault("PREDICTION_SIGNING_KEY", secrets.token_urlsafe(48))
SHIPPED_MANIFEST = ROOT / "models" / "champion.json"
# The browser the page tests drive: any Chromium-based one (the Makefile's CHROMIUM).
CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"

# Real tweets from the airline corpus (CrowdFlower Twitter US Airline Sentiment), one per label.
NEGATIVE_TWEET = "@united lost my bag again, worst airline ever"
POSITIVE_TWEET = "@JetBlue thank you so much for the amazing crew and the smooth flight, love you guys!"
NEUTRAL_TWEET = "@SouthwestAir what time does the flight from Dallas to Austin leave tomorrow?"


def copy_shipped_model(folder: Path) -> Path:
    """The shipped champion (manifest, ONNX file and assets) copied into `folder`; returns the manifest."""
    for path in SHIPPED_MANIFEST.parent.glob("champion.*"):
        shutil.copy(path, folder / path.name)
    return folder / SHIPPED_MANIFEST.name


def feedback_on(prediction: dict, text: str, correct: bool, expected_label: str | None = None) -> dict:
    """The feedback body a client sends about `prediction` (an answer of /api/predict for `text`)."""
    return {
        "prediction_id": prediction["prediction_id"],
        "prediction_token": prediction["prediction_token"],
        "text": text,
        "predicted_label": prediction["label"],
        "correct": correct,
        **({"expected_label": expected_label} if expected_label else {}),
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LocalServer:
    """`python -m scripts.local_server` in a subprocess, on a free port of 127.0.0.1. Its output goes to a file, not a
    pipe: a pipe nobody reads fills up and blocks the server."""

    def __init__(self, env: dict[str, str] | None = None, args: tuple[str, ...] = ()):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 (closed by stop())
        self.process = subprocess.Popen(
            [sys.executable, "-m", "scripts.local_server", "--port", str(self.port), *args],
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            text=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"local server exited: {self.stop()}")
            try:
                httpx.get(f"{self.url}/api/health", timeout=1)
                return
            except httpx.TransportError:
                time.sleep(0.2)
        raise RuntimeError(f"local server did not answer within 60 s: {self.stop()}")

    def stop(self) -> str:
        """Stop the server; returns what it printed."""
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.seek(0)
        output = self.log.read()
        self.log.close()
        return output


@pytest.fixture(scope="session")
def azurite(tmp_path_factory):
    """Azurite's table service on a free port; the app (in process and in the local server) stores feedback
    there through FEEDBACK_STORAGE_CONNECTION_STRING."""
    from scripts.local_server import start_azurite, stop_azurite
    from tweet_sentiment.feedback import azurite_connection_string

    port = free_port()
    process = start_azurite(port, tmp_path_factory.mktemp("azurite"))
    connection_string = azurite_connection_string(port=port)
    os.environ["FEEDBACK_STORAGE_CONNECTION_STRING"] = connection_string
    yield connection_string
    stop_azurite(process)


@pytest.fixture(scope="module")
def server(azurite):
    """The local server for one test module, feedback stored in the session's Azurite."""
    running = LocalServer()
    yield running
    running.stop()


@pytest.fixture(scope="session")
def indexed_functions():
    """The app's functions as the Functions host indexes them (once: azure-functions refuses a second
    indexing of the same app). Feedback storage is not configured here: tests that store feedback ask for
    the `feedback_storage` fixture."""
    import function_app

    return function_app.app.get_functions()


@pytest.fixture(scope="session")
def http_functions(indexed_functions):
    """The HTTP functions by name, called with a `func.HttpRequest` as the host calls them."""
    return {function.get_function_name(): function.get_user_function() for function in indexed_functions}


@pytest.fixture()
def feedback_storage(azurite, monkeypatch):
    """The app in process stores feedback in the session's Azurite."""
    import function_app
    from tweet_sentiment.feedback import FeedbackStore

    monkeypatch.setattr(function_app, "feedback_store", FeedbackStore(azurite, function_app.settings.feedback_table))
    return azurite


@pytest.fixture()
def broken_model(monkeypatch, tmp_path):
    """The app with a model path that holds no model, as after a bad deployment."""
    import function_app
    from tweet_sentiment.service import ModelHolder
    from tweet_sentiment.settings import Settings

    holder = ModelHolder(Settings(model_path=tmp_path / "champion.json"))
    monkeypatch.setattr(function_app, "model_holder", holder)
    return holder


def post(function, payload, raw: bytes | None = None, headers: dict[str, str] | None = None):
    """Call an HTTP function with a JSON body (or `raw` bytes), as the Functions host does."""
    import azure.functions as func

    body = raw if raw is not None else json.dumps(payload).encode()
    headers = {"Content-Type": "application/json"} if headers is None else headers
    return function(func.HttpRequest(method="POST", url="/api/x", body=body, headers=headers))


def predict_in_process(http_functions, tweet: str) -> dict:
    """The answer of the predict function, in process, to one tweet."""
    response = post(http_functions["predict"], {"text": tweet})
    assert response.status_code == 200
    return body_of(response)


def get(function):
    import azure.functions as func

    return function(func.HttpRequest(method="GET", url="/api/x", body=b"", headers={}))


def feedback_payload(**changes):
    """A feedback with a genuine token for its prediction id, text and predicted label, unless `changes`
    give a token of their own (`...` leaves a field out)."""
    import function_app

    payload = {
        "prediction_id": str(uuid.uuid4()),
        "text": NEGATIVE_TWEET,
        "predicted_label": "positive",
        "correct": False,
        "expected_label": "negative",
        **changes,
    }
    try:
        token = function_app.signer.sign(payload["prediction_id"], payload["predicted_label"], "7", payload["text"])
    except (AttributeError, TypeError, UnicodeEncodeError):  # a field the test made unusable
        token = function_app.signer.sign(str(uuid.uuid4()), "negative", "7", NEGATIVE_TWEET)
    payload.setdefault("prediction_token", token)
    return {key: value for key, value in payload.items() if value is not ...}


def body_of(response) -> dict:
    assert response.mimetype == "application/json"
    return json.loads(response.get_body())


class IngestionEndpoint:
    """A local stand-in for Application Insights' ingestion service: records every envelope POSTed to
    /v2.1/track, answering with `status` (200 accepts them)."""

    def __init__(self, status: int = 200):
        self.envelopes: list[dict] = []
        self.status = status
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                if self.path.startswith("/v2.1/track") and endpoint.status == 200:
                    text = body.decode("utf-8")
                    items = (
                        json.loads(text)
                        if text.lstrip().startswith("[")
                        else [json.loads(line) for line in text.splitlines() if line.strip()]
                    )
                    endpoint.envelopes.extend(items)
                answer = json.dumps({"itemsReceived": 1, "itemsAccepted": 1, "errors": []}).encode()
                self.send_response(endpoint.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def events(self, name: str) -> list[dict]:
        """Properties of the custom events called `name` received so far."""
        return [
            envelope["data"]["baseData"].get("properties", {})
            for envelope in self.envelopes
            if envelope.get("data", {}).get("baseType") == "EventData"
            and envelope["data"]["baseData"].get("name") == name
        ]

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def telemetry_environment(ingestion_url: str, **extra: str) -> dict[str, str]:
    """Environment for a local server that exports to `ingestion_url` with the real Azure Monitor exporter.
    A fresh instrumentation key each time: the exporter keeps undelivered envelopes on disk per key and
    sends them later, which would replay one test's events into another."""
    return {
        **os.environ,
        "APPLICATIONINSIGHTS_CONNECTION_STRING": f"InstrumentationKey={uuid.uuid4()};IngestionEndpoint={ingestion_url}",
        "APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL": "true",
        "OTEL_BLRP_SCHEDULE_DELAY": "100",  # export log records (events) every 100 ms, not every 5 s
        **extra,
    }


TIERS = ("unit", "service", "training")


def pytest_collection_modifyitems(items):
    """Each test's tier is its folder: tests/unit, tests/service, tests/training (markers of the same names)."""
    for item in items:
        tier = item.path.parent.name
        if tier not in TIERS:
            raise pytest.UsageError(f"{item.nodeid}: tests live in tests/unit, tests/service or tests/training")
        item.add_marker(getattr(pytest.mark, tier))


@pytest.fixture()
def browser():
    """Headless Chromium, launched for one test (playwright: the page tests' dev requirement)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield launched
        launched.close()
