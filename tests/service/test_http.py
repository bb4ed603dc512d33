"""The same functions over real HTTP: the local server (scripts/local_server.py) on 127.0.0.1."""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import time
import uuid

import httpx
import pytest

from tests.conftest import NEGATIVE_TWEET, LocalServer, feedback_on, free_port


def test_readme_curl_example_answers_negative(server):
    body = f'{{"text":"{NEGATIVE_TWEET}"}}'
    response = httpx.post(f"{server.url}/api/predict", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["label"] == "negative"
    assert body["scores"]["negative"] > 0.5
    assert body["model"]["name"] == "tweet-sentiment"
    uuid.UUID(body["prediction_id"])
    # curl's default for -d is form-encoded: that is refused, which keeps cross-site forms out.
    form = httpx.post(f"{server.url}/api/predict", content=f'{{"text":"{NEGATIVE_TWEET}"}}',
                      headers={"Content-Type": "application/x-www-form-urlencoded"})  # fmt: skip
    assert form.status_code == 415


def test_prediction_then_feedback(server):
    prediction = httpx.post(f"{server.url}/api/predict", json={"text": "@united thanks for nothing"}).json()
    right = prediction["label"] == "negative"
    feedback = httpx.post(
        f"{server.url}/api/feedback",
        json=feedback_on(
            prediction, "@united thanks for nothing", correct=right, expected_label=None if right else "negative"
        ),
    )
    assert feedback.status_code == 202
    assert feedback.json()["status"] == "accepted"


@pytest.mark.parametrize(
    "method, path, body, status, message",
    [
        ("POST", "/api/predict", b"{", 400, "must be a JSON object"),
        ("POST", "/api/predict", b'{"text": ""}', 400, "must not be empty"),
        ("POST", "/api/feedback", b'{"prediction_id": "x"}', 400, "must be the UUID"),
        ("GET", "/api/predict", b"", 405, "Method Not Allowed"),
        ("GET", "/api/nothing", b"", 404, "Not Found"),
    ],
)
def test_errors_are_json(server, method, path, body, status, message):
    response = httpx.request(method, f"{server.url}{path}", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == status
    assert message in response.json()["error"]


def test_health(server):
    response = httpx.get(f"{server.url}/api/health")
    assert response.status_code == 200
    assert response.json()["model"]["labels"] == ["negative", "neutral", "positive"]


def test_server_without_a_model_answers_503_and_stays_up(tmp_path, azurite):
    running = LocalServer(env={**os.environ, "SENTIMENT_MODEL_PATH": str(tmp_path / "missing.json")})
    try:
        health = httpx.get(f"{running.url}/api/health")
        predicted = httpx.post(f"{running.url}/api/predict", json={"text": NEGATIVE_TWEET})
        assert health.status_code == 503 and "model unavailable" in health.json()["error"]
        assert str(tmp_path) not in health.text and str(tmp_path) not in predicted.text
        assert "missing.json not found" in running.stop()  # the reason is in the server's log
        assert predicted.status_code == 503 and "model unavailable" in predicted.json()["error"]
    finally:
        if running.process.poll() is None:
            running.stop()


@pytest.fixture(scope="module")
def impatient_server(azurite):
    """A local server that gives a request's head or body 1 s to arrive."""
    running = LocalServer(args=("--read-timeout", "1"))
    yield running
    running.stop()


def raw_exchange(server: LocalServer, data: bytes, wait: float = 5.0) -> bytes:
    """Send `data` on a new connection and return what the server answers before closing or `wait` seconds."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=wait) as connection:
        connection.sendall(data)
        received = b""
        try:
            while chunk := connection.recv(65536):
                received += chunk
        except TimeoutError:
            pass
        return received


def test_declared_oversized_body_is_refused_without_being_sent(impatient_server):
    head = (
        b"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: 500000000\r\nConnection: close\r\n\r\n"
    )
    answer = raw_exchange(impatient_server, head)
    assert answer.startswith(b"HTTP/1.1 413") and b"the limit is 65536" in answer


def test_half_sent_requests_are_dropped(impatient_server):
    started = time.monotonic()
    assert raw_exchange(impatient_server, b"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\n") == b""
    body_missing = raw_exchange(
        impatient_server, b'POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n{"text": '
    )
    assert body_missing.startswith(b"HTTP/1.1 408")
    assert time.monotonic() - started < 5 * 2  # both were closed by the server, not by the client's wait


def read_answer(connection: socket.socket) -> bytes:
    """One whole answer (head and its Content-Length of body) from a kept-alive connection."""
    received = b""
    while b"\r\n\r\n" not in received:
        received += connection.recv(65536)
    head, body = received.split(b"\r\n\r\n", 1)
    length = int(re.search(rb"(?i)content-length: (\d+)", head).group(1))
    while len(body) < length:
        body += connection.recv(65536)
    return head + b"\r\n\r\n" + body


def closed_within(connection: socket.socket, seconds: float) -> bool:
    """Whether the server closes the connection within `seconds` (what it sends meanwhile is ignored)."""
    connection.settimeout(seconds)
    try:
        while connection.recv(65536):
            pass
        return True
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True


def test_a_half_sent_second_request_on_a_kept_alive_connection_is_dropped(impatient_server):
    with socket.create_connection(("127.0.0.1", impatient_server.port)) as connection:
        connection.sendall(b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert read_answer(connection).startswith(b"HTTP/1.1 200")
        connection.sendall(b"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # and nothing more
        assert closed_within(connection, 1 + 2)  # the read timeout, plus 2 s


def test_a_body_trickled_after_a_413_is_not_waited_for(impatient_server):
    with socket.create_connection(("127.0.0.1", impatient_server.port)) as connection:
        connection.sendall(
            b"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: 500000000\r\n\r\n"
        )
        answer = read_answer(connection)
        assert answer.startswith(b"HTTP/1.1 413") and b"connection: close" in answer.lower()
        started = time.monotonic()
        with contextlib.suppress(OSError):  # the server closes while the client still trickles
            while time.monotonic() - started < 3:
                connection.sendall(b"x")
                time.sleep(0.2)
        assert closed_within(connection, 0.5)


SECURITY_HEADERS = ("x-content-type-options", "content-security-policy", "x-frame-options", "referrer-policy")


@pytest.mark.parametrize(
    "request_line, status",
    [
        (b"GET /api/%3Cscript%3Ex%3C/script%3E HTTP/1.1", 404),
        (b"GET /api/predict HTTP/1.1", 405),
        (b"GET /api/health/ HTTP/1.1", 404),  # no redirect to the slash-less route
        (b"GET /api/health HTTP/1.1\r\nHost: a\r\nHost: b", 400),  # refused by uvicorn itself
        (b"GARBAGE", 400),
    ],
)
def test_every_answer_of_the_local_server_is_json_with_the_security_headers_and_no_echo(server, request_line, status):
    answer = raw_exchange(server, request_line + b"\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", wait=3)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(f"HTTP/1.1 {status}".encode()), answer[:200]
    assert all(name.encode() in head.lower() for name in SECURITY_HEADERS), head
    assert b"application/json" in head.lower() and "error" in json.loads(body)
    assert b"script" not in body.lower()


def test_a_client_that_leaves_mid_body_is_logged_in_one_line(azurite):
    running = LocalServer()
    with socket.create_connection(("127.0.0.1", running.port)) as connection:
        connection.sendall(
            b"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b'Content-Length: 100\r\n\r\n{"text": '
        )
        time.sleep(0.5)
    time.sleep(0.5)
    log = running.stop()
    assert "Traceback" not in log
    assert len([line for line in log.splitlines() if "disconnected" in line]) == 1, log


def test_function_keys_never_reach_the_access_log(azurite):
    running = LocalServer()
    httpx.get(f"{running.url}/api/health?code=s3cr3t-function-key&x=1")
    for spelling in ("%63ode", "CODE", "c%6Fde", "%43%4F%44%45"):  # any spelling the host would read as `code`
        raw_exchange(
            running,
            f"GET /api/health?{spelling}=key-{len(spelling)} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n".encode(),
            2,
        )
    log = running.stop()
    assert "s3cr3t-function-key" not in log and "key-" not in log
    assert "/api/health?code=REDACTED&x=1" in log


def test_azurite_keeps_the_last_writes_when_stopped(tmp_path):
    from azure.data.tables import TableClient

    from scripts.local_server import start_azurite, stop_azurite
    from tweet_sentiment.feedback import azurite_connection_string

    port = free_port()
    connection_string = azurite_connection_string(port=port)
    process = start_azurite(port, tmp_path)
    table = TableClient.from_connection_string(connection_string, table_name="feedback")
    table.create_table()
    table.create_entity({"PartitionKey": "p", "RowKey": "written-just-before-stop"})
    stop_azurite(process)
    process = start_azurite(port, tmp_path)
    try:
        assert table.get_entity("p", "written-just-before-stop")["RowKey"] == "written-just-before-stop"
    finally:
        stop_azurite(process)
