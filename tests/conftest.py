from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent
SHIPPED_MANIFEST = ROOT / "models" / "champion.json"

# Real tweets from the airline corpus (CrowdFlower Twitter US Airline Sentiment), one per label.
NEGATIVE_TWEET = "@united lost my bag again, worst airline ever"
POSITIVE_TWEET = "@JetBlue thank you so much for the amazing crew and the smooth flight, love you guys!"
NEUTRAL_TWEET = "@SouthwestAir what time does the flight from Dallas to Austin leave tomorrow?"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LocalServer:
    """scripts/local_server.py in a subprocess, on a free port of 127.0.0.1."""

    def __init__(self, env: dict[str, str] | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [sys.executable, str(ROOT / "scripts" / "local_server.py"), "--port", str(self.port)],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"local server exited: {self.process.stdout.read()}")
            try:
                httpx.get(f"{self.url}/api/health", timeout=1)
                return
            except httpx.TransportError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError("local server did not answer within 60 s")

    def stop(self) -> str:
        self.process.terminate()
        try:
            output, _ = self.process.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            output, _ = self.process.communicate()
        return output


@pytest.fixture(scope="session")
def http_functions():
    """The app's HTTP functions by name, as the Functions host indexes them (once: azure-functions refuses a
    second indexing of the same app)."""
    import function_app

    return {function.get_function_name(): function.get_user_function() for function in function_app.app.get_functions()}


def body_of(response) -> dict:
    assert response.mimetype == "application/json"
    return json.loads(response.get_body())
