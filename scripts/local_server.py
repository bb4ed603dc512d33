"""Serve the FunctionApp's HTTP functions on uvicorn: a local stand-in for `func start` where Core Tools
cannot be installed. Routes, methods and the route prefix are read from the app and host.json, and each
request reaches the very function object that Azure runs, as a `func.HttpRequest`.

    python -m scripts.local_server [--host 127.0.0.1] [--port 7071] [--azurite]

With --azurite it also starts its own Azurite table service (npm `azurite`) on a free port of 127.0.0.1
for the feedback table and prints the page's URL. Function keys are not checked, exactly as under
Core Tools.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

import azure.functions as func
import h11
import uvicorn
from azure.functions.decorators.http import HttpTrigger
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from uvicorn.protocols.http.h11_impl import H11Protocol

from tweet_sentiment.security import JSON_HEADERS

APP_ROOT = Path(__file__).resolve().parent.parent

logger = logging.getLogger("local_server")


def route_prefix() -> str:
    host = json.loads((APP_ROOT / "host.json").read_text(encoding="utf-8"))
    return host.get("extensions", {}).get("http", {}).get("routePrefix", "api")


# A request whose head or body has not arrived within this time is dropped (408 for a body), so half-sent
# requests cannot hold connections forever.
READ_SECONDS = 10.0


async def _read_body(request: Request, limit: int) -> bytes:
    """At most `limit` + 1 bytes of the body: enough for the function to answer 413, never the whole of a
    huge body in memory."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            break
    return bytes(body[: limit + 1])


def _endpoint(user_function, body_limit: int, read_seconds: float):
    async def endpoint(request: Request) -> Response:
        declared = request.headers.get("content-length", "")
        too_large = declared.isdigit() and int(declared) > body_limit
        try:  # a declared oversized body is not read at all: the function refuses it from its headers
            body = b"" if too_large else await asyncio.wait_for(_read_body(request, body_limit), read_seconds)
        except TimeoutError:
            return JSONResponse(
                {"error": f"the request body did not arrive within {read_seconds:g} s"},
                status_code=408,
                headers={**JSON_HEADERS, "Connection": "close"},
            )
        except ClientDisconnect:
            logger.info("%s %s: the client disconnected before its body arrived", request.method, request.url.path)
            return Response(status_code=400)  # nobody is left to read it
        http_request = func.HttpRequest(
            method=request.method,
            url=str(request.url),
            headers=dict(request.headers),
            params=dict(request.query_params),
            route_params=dict(request.path_params),
            body=body,
        )
        try:
            if inspect.iscoroutinefunction(user_function):
                answer = await user_function(http_request)
            else:
                answer = await run_in_threadpool(user_function, http_request)
        except Exception:  # the Functions host answers 500 for an unhandled error; do the same, and log it
            logger.exception("function %s failed", user_function.__name__)
            return Response(status_code=500)
        headers = {key: value for key, value in answer.headers.items() if key.lower() != "content-type"}
        if too_large:  # the body it did not read may still be arriving: the connection cannot serve another request
            headers["Connection"] = "close"
        return Response(answer.get_body(), status_code=answer.status_code, headers=headers, media_type=answer.mimetype)

    return endpoint


def build(functions: list[Any], body_limit: int, read_seconds: float = READ_SECONDS) -> Starlette:
    """A Starlette app with one route per HTTP-triggered function of the app (`app.get_functions()`: called
    once, azure-functions refuses a second indexing of one app); bodies are read up to `body_limit` + 1 bytes."""
    prefix = route_prefix().strip("/")
    routes = []
    for function in functions:
        trigger = function.get_trigger()
        if not isinstance(trigger, HttpTrigger):
            continue
        route = (trigger.route or function.get_function_name() or "").strip("/")
        methods = [str(getattr(method, "value", method)) for method in trigger.methods or ("GET", "POST")]
        path = "/" + "/".join(part for part in (prefix, route) if part)
        routes.append(Route(path, _endpoint(function.get_user_function(), body_limit, read_seconds), methods=methods))
    app = Starlette(routes=routes, exception_handlers={HTTPException: _json_error})  # type: ignore[dict-item]
    app.router.redirect_slashes = False  # a route with a slash is unknown, as in Azure: 404, not a 307
    app.add_middleware(_SecurityHeaders)
    return app


async def _json_error(request: Request, error: HTTPException) -> JSONResponse:
    # Unknown routes and wrong methods answer JSON too, like every error of the app; the path is not echoed.
    return JSONResponse(
        {"error": f"{error.detail}: see /api/openapi.json for the routes and their methods"},
        status_code=error.status_code,
        headers={**(error.headers or {}), **JSON_HEADERS},
    )


class _SecurityHeaders:
    """The JSON answers' security headers on every answer that does not set its own (the page sets its own)."""

    def __init__(self, app: Any):
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        async def send_with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                message["headers"] = [
                    *message.get("headers", []),
                    *((name.lower().encode(), value.encode()) for name, value in JSON_HEADERS.items()
                      if name.lower().encode() not in present),
                ]  # fmt: skip
            await send(message)

        await self.app(scope, receive, send_with_headers)


class _HeadDeadlineProtocol(H11Protocol):
    """uvicorn's HTTP/1.1 protocol, with a deadline on every request head: a connection whose next head has not
    fully arrived within `read_seconds` of its opening or of the previous answer is closed. uvicorn has no
    setting for it: its keep-alive timer stops at the first byte of a head, so a half-sent head held the
    connection forever. Its own 400 for a malformed request is JSON with the security headers, like every
    other answer. (Head size: uvicorn's public `h11_max_incomplete_event_size`; bodies: the endpoint.)"""

    read_seconds = READ_SECONDS

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def _arm(self) -> None:
        self._waiting_after = self.cycle  # the head of the request after this cycle is awaited
        self._head_deadline = self.loop.call_later(self.read_seconds, self._head_too_slow)

    def handle_events(self) -> None:
        super().handle_events()
        if self.cycle is not self._waiting_after:  # a new request's head arrived in time
            self._head_deadline.cancel()

    def on_response_complete(self) -> None:
        self._head_deadline.cancel()
        self._arm()  # before the parent, which may start a pipelined request at once
        super().on_response_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._head_deadline.cancel()
        super().connection_lost(exc)

    def _head_too_slow(self) -> None:
        if self.cycle is self._waiting_after and not self.transport.is_closing():
            self.transport.close()

    def send_400_response(self, msg: str) -> None:
        body = json.dumps({"error": "malformed HTTP request"}).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"connection", b"close"),
            *((name.lower().encode(), value.encode()) for name, value in JSON_HEADERS.items()),
        ]
        for event in (h11.Response(status_code=400, headers=headers), h11.Data(data=body), h11.EndOfMessage()):
            self.transport.write(self.conn.send(event) or b"")
        self.transport.close()


class _RedactKeys(logging.Filter):
    """Access log lines without the function key a client may pass as `?code=`, however it is spelled
    (`?CODE=`, `?%63ode=`: the host decodes and ignores case)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and len(record.args) >= 3 and isinstance(record.args[2], str):
            record.args = (*record.args[:2], redacted(record.args[2]), *record.args[3:])
        return True


def redacted(target: str) -> str:
    path, separator, query = target.partition("?")
    if not separator:
        return target
    parameters = []
    for parameter in query.split("&"):
        name, equals, _ = parameter.partition("=")
        parameters.append(f"code{equals}REDACTED" if unquote_plus(name).strip().lower() == "code" else parameter)
    return f"{path}?{'&'.join(parameters)}"


def development_signing_key(path: Path) -> str:
    """A key for signing predictions locally: generated once, kept in a git-ignored file readable by its owner
    only, so tokens survive a restart of the local server."""
    if not path.exists():
        from tweet_sentiment.signing import generate_key

        path.touch(mode=0o600)
        path.write_text(generate_key(), encoding="utf-8")
        logger.info("generated a development prediction signing key in %s", path.name)
    return path.read_text(encoding="utf-8").strip()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def start_azurite(
    port: int,
    location: Path,
    options: tuple[str, ...] = (),
    blob_port: int | None = None,
    queue_port: int | None = None,
) -> subprocess.Popen:
    """Azurite's table service on 127.0.0.1:`port` (and its blob and queue services on theirs, when given),
    storing its data in `location`, with extra command-line `options` (HTTPS and OAuth, say); waits until
    every service listens."""
    every = blob_port is not None and queue_port is not None
    binary = APP_ROOT / "node_modules" / ".bin" / ("azurite" if every else "azurite-table")
    if not binary.exists():
        raise SystemExit(f"{binary} not found: run `npm ci` in {APP_ROOT} (make serve and make test do)")
    location.mkdir(parents=True, exist_ok=True)
    services = {"table": port, **({"blob": blob_port, "queue": queue_port} if every else {})}
    addresses = [f"--{service}{part}" for service in services for part in ("Host", "Port")]
    values = [value for number in services.values() for value in ("127.0.0.1", str(number))]
    process = subprocess.Popen(
        [
            str(binary),
            *(item for pair in zip(addresses, values, strict=True) for item in pair),
            "--location",
            str(location),
            "--silent",
            "--skipApiVersionCheck",
            "--disableTelemetry",
            *options,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 30
    while not all(_listening(number) for number in services.values()):  # type: ignore[arg-type]
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            reason = process.stderr.read().decode()[-500:] if process.stderr else ""
            raise SystemExit(f"Azurite did not start on port {port}: {reason}")
        time.sleep(0.1)
    return process


def stop_azurite(process: subprocess.Popen) -> None:
    """Azurite saves its data on SIGINT only: SIGTERM would lose its last seconds of writes."""
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7071)
    parser.add_argument("--azurite", action="store_true", help="start Azurite for the feedback table")
    parser.add_argument(
        "--read-timeout",
        type=float,
        default=READ_SECONDS,
        help="seconds a request's head or body may take to arrive (default %(default)s)",
    )
    args = parser.parse_args()
    _HeadDeadlineProtocol.read_seconds = args.read_timeout
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("azure").setLevel(logging.WARNING)  # the SDKs log every HTTP request at INFO
    for handler in logging.getLogger().handlers:  # telemetry events are for Application Insights, not the console
        handler.addFilter(lambda record: not record.name.startswith("tweet_sentiment.events"))
    # uvicorn re-raises SIGTERM once it has shut down; exiting through SystemExit lets Azurite be stopped below.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    logging.getLogger("uvicorn.access").addFilter(_RedactKeys())
    if not os.environ.get("PREDICTION_SIGNING_KEY"):
        os.environ["PREDICTION_SIGNING_KEY"] = development_signing_key(APP_ROOT / ".dev-signing-key")
    azurite = queues = None
    if args.azurite:
        from tweet_sentiment import archive
        from tweet_sentiment.__main__ import LOCAL_ARCHIVE_STORAGE
        from tweet_sentiment.feedback import azurite_connection_string

        # Its own Azurite on a free port: never another process's emulator, whose store would get the feedback.
        table, blob, queue = _free_port(), _free_port(), _free_port()
        azurite = start_azurite(table, APP_ROOT / ".azurite", blob_port=blob, queue_port=queue)
        connection_string = azurite_connection_string(port=table, blob_port=blob, queue_port=queue)
        os.environ["FEEDBACK_STORAGE_CONNECTION_STRING"] = connection_string
        os.environ[archive.CONNECTION] = connection_string
        # For `python -m tweet_sentiment archive put FILE`: the ports change at every start.
        (APP_ROOT / LOCAL_ARCHIVE_STORAGE).write_text(connection_string, encoding="utf-8")
        print(
            f"Azurite on 127.0.0.1 (its data in .azurite/): table {table} (feedback), blob {blob} and queue "
            f"{queue} (archives: `.venv/bin/python -m tweet_sentiment archive put FILE` drops a file in tweets-in "
            "and waits for its report)",
            flush=True,
        )
    print(f"Serving on http://{args.host}:{args.port}: the page is http://{args.host}:{args.port}/api/ui", flush=True)
    try:
        import function_app

        functions = function_app.app.get_functions()
        if args.azurite:
            from scripts.local_queues import QueueHost

            queues = QueueHost(functions, os.environ).start()
        uvicorn.run(
            build(functions, function_app.settings.max_request_bytes, args.read_timeout),
            host=args.host,
            port=args.port,
            log_level="info",
            http=_HeadDeadlineProtocol,
            timeout_keep_alive=5,  # an idle kept-alive connection closes after 5 s (uvicorn's public setting)
            h11_max_incomplete_event_size=16 * 1024,  # the largest request head it buffers
        )
    finally:
        if queues is not None:
            queues.stop()
        if azurite is not None:
            (APP_ROOT / LOCAL_ARCHIVE_STORAGE).unlink(missing_ok=True)
            stop_azurite(azurite)


if __name__ == "__main__":
    main()
