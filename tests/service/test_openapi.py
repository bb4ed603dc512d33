"""The OpenAPI document stays true: its paths are the app's routes, and schemathesis finds no 5xx and no
answer outside the schema when it runs against the local server."""

from __future__ import annotations

import os
import subprocess
import sys

import azure.functions as func
import httpx
from azure.functions.decorators.http import HttpTrigger

from tests.conftest import body_of


def test_document_lists_exactly_the_app_routes(http_functions, indexed_functions):
    import function_app

    document = body_of(
        http_functions["openapi_document"](
            func.HttpRequest(method="GET", url="/api/openapi.json", body=b"", headers={})
        )
    )
    documented = {(path, method.upper()) for path, operations in document["paths"].items() for method in operations}
    served = set()
    for function in indexed_functions:
        trigger = function.get_trigger()
        if not isinstance(trigger, HttpTrigger):  # the archive's queue functions
            continue
        served |= {(f"/{trigger.route}", str(getattr(method, "value", method))) for method in trigger.methods}
    assert documented == served
    assert document["paths"]["/predict"]["post"]["security"] and not document["paths"]["/health"]["get"]["security"]
    limits = document["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]["schema"]["oneOf"]
    assert limits[0]["properties"]["text"]["maxLength"] == function_app.settings.max_tweet_chars
    assert limits[1]["properties"]["texts"]["maxItems"] == function_app.settings.max_batch


def test_schemathesis_finds_no_server_error_and_no_answer_outside_the_schema(server, tmp_path):
    assert httpx.get(f"{server.url}/api/openapi.json").status_code == 200
    # Excluded checks, with the reason: ignored_auth - function keys are enforced by the Functions host in
    # Azure, not by the app nor the local server (as under Core Tools); positive_data_acceptance - feedback
    # whose expected_label equals a wrong prediction is refused by a cross-field rule that OpenAPI 3.0
    # cannot express.
    result = subprocess.run(
        [
            os.path.join(os.path.dirname(sys.executable), "st"),
            "run",
            f"{server.url}/api/openapi.json",
            "--checks",
            "all",
            "--exclude-checks",
            "ignored_auth,positive_data_acceptance",
            "--max-examples",
            "60",
            "--generation-deterministic",
            "--no-color",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout[-6000:]
    assert "No issues found" in result.stdout or " passed" in result.stdout, result.stdout[-3000:]
