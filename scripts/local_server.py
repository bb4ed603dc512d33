"""Serve the FunctionApp's HTTP functions on uvicorn: a local stand-in for `func start` where Core Tools
cannot be installed. Routes, methods and the route prefix are read from the app and host.json, and each
request reaches the very function object that Azure runs, as a `func.HttpRequest`.

    python scripts/local_server.py [--host 127.0.0.1] [--port 7071]

Function keys are not checked, exactly as under Core Tools.
"""

from __future__ import annotations

import argparse
import inspect
import json
import logging
import sys
from pathlib import Path

APP_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(APP_ROOT))

import azure.functions as func  # noqa: E402
import uvicorn  # noqa: E402
from starlette.applications import Starlette  # noqa: E402
from starlette.concurrency import run_in_threadpool  # noqa: E402
from starlette.exceptions import HTTPException  # noqa: E402
from starlette.requests import Request  # noqa: E402
from starlette.responses import JSONResponse, Response  # noqa: E402
from starlette.routing import Route  # noqa: E402

logger = logging.getLogger("local_server")


def route_prefix() -> str:
    host = json.loads((APP_ROOT / "host.json").read_text(encoding="utf-8"))
    return host.get("extensions", {}).get("http", {}).get("routePrefix", "api")


def _endpoint(user_function):
    async def endpoint(request: Request) -> Response:
        http_request = func.HttpRequest(
            method=request.method, url=str(request.url), headers=dict(request.headers),
            params=dict(request.query_params), route_params=dict(request.path_params),
            body=await request.body())
        try:
            if inspect.iscoroutinefunction(user_function):
                answer = await user_function(http_request)
            else:
                answer = await run_in_threadpool(user_function, http_request)
        except Exception:  # the Functions host answers 500 for an unhandled error; do the same, and log it
            logger.exception("function %s failed", user_function.__name__)
            return Response(status_code=500)
        headers = {key: value for key, value in answer.headers.items() if key.lower() != "content-type"}
        return Response(answer.get_body(), status_code=answer.status_code, headers=headers,
                        media_type=answer.mimetype)

    return endpoint


def build(app: func.FunctionApp) -> Starlette:
    """A Starlette app with one route per HTTP-triggered function of `app`."""
    prefix = route_prefix().strip("/")
    routes = []
    for function in app.get_functions():  # call once: azure-functions refuses a second indexing of one app
        trigger = function.get_trigger()
        if trigger is None or trigger.type != "httpTrigger":
            continue
        route = (trigger.route or function.get_function_name()).strip("/")
        methods = [str(getattr(method, "value", method)) for method in trigger.methods or ("GET", "POST")]
        path = "/" + "/".join(part for part in (prefix, route) if part)
        routes.append(Route(path, _endpoint(function.get_user_function()), methods=methods))
    return Starlette(routes=routes, exception_handlers={HTTPException: _json_error})


async def _json_error(request: Request, error: HTTPException) -> JSONResponse:
    # Unknown routes and wrong methods answer JSON too, like every error of the app.
    return JSONResponse({"error": f"{error.detail}: {request.method} {request.url.path}"},
                        status_code=error.status_code, headers=error.headers)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7071)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    import function_app

    uvicorn.run(build(function_app.app), host=args.host, port=args.port, log_level="info")


if __name__ == "__main__":
    main()
