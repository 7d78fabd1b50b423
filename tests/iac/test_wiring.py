"""The wiring of the stack, checked on the template after the SAM transform (aws-sam-translator):
what neither linter looks at (rule names, runtime names, least privilege, timeouts)."""

from __future__ import annotations

import ast
import json
import re
import tomllib
from typing import Any

import pytest

from reframe_pipeline.application.generations import KIND_TAG
from reframe_pipeline.settings import DEFAULT_MEMORY_MB, Settings, SettingsError

from .conftest import ACCOUNT, REGION, ROOT, STACK
from .template_eval import Evaluator

LAMBDA_PYTHON_RUNTIMES = {"python3.12", "python3.13"}


def resources_of(template: dict[str, Any], type_: str) -> dict[str, dict[str, Any]]:
    return {k: r for k, r in template["Resources"].items() if r["Type"] == type_}


def only(template: dict[str, Any], type_: str) -> tuple[str, dict[str, Any]]:
    found = resources_of(template, type_)
    assert len(found) == 1, f"expected one {type_}, found {sorted(found)}"
    return next(iter(found.items()))


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


@pytest.fixture(scope="module")
def ev(transformed: dict[str, Any]) -> Evaluator:
    return Evaluator(transformed)


@pytest.fixture(scope="module")
def bucket_name(ev: Evaluator, transformed: dict[str, Any]) -> str:
    return str(ev(transformed["Resources"]["Bucket"]["Properties"]["BucketName"]))


# ----------------------------------------------------------------------------- events


def test_notifications_go_to_the_queue_filtered_on_the_input_prefix(transformed: dict[str, Any]) -> None:
    bucket = transformed["Resources"]["Bucket"]["Properties"]
    configs = bucket["NotificationConfiguration"]["QueueConfigurations"]
    assert {c["Event"] for c in configs} == {"s3:ObjectCreated:*", "s3:ObjectRemoved:*"}
    for config in configs:
        assert config["Queue"] == {"Fn::GetAtt": ["UploadQueue", "Arn"]}
        rules = config["Filter"]["S3Key"]["Rules"]
        # S3 knows "prefix" and "suffix"; no linter catches another spelling.
        assert rules == [{"Name": "prefix", "Value": {"Ref": "InputPrefix"}}]
    assert transformed["Parameters"]["InputPrefix"]["Default"] == "uploads/"
    assert transformed["Parameters"]["OutputPrefix"]["Default"] == "reframed/"
    assert transformed["Parameters"]["StylePrefix"]["Default"] == "styles/"


def test_prefix_parameters_are_constrained(transformed: dict[str, Any]) -> None:
    for name in ("InputPrefix", "OutputPrefix", "StylePrefix"):
        pattern = transformed["Parameters"][name]["AllowedPattern"]
        assert re.fullmatch(pattern, "uploads/a b/")
        for bad in ("", "uploads", "/uploads/", "up*/"):
            assert not re.fullmatch(pattern, bad), (name, bad)
    assertion = transformed["Rules"]["PrefixesDiffer"]["Assertions"][0]["Assert"]
    assert assertion == {"Fn::Not": [{"Fn::Equals": [{"Ref": "InputPrefix"}, {"Ref": "OutputPrefix"}]}]}


def test_queue_policy_admits_only_this_bucket(ev: Evaluator, transformed: dict[str, Any], bucket_name: str) -> None:
    _, policy = only(transformed, "AWS::SQS::QueuePolicy")
    (statement,) = ev(policy["Properties"]["PolicyDocument"]["Statement"])
    assert statement["Principal"] == {"Service": "s3.amazonaws.com"}
    assert statement["Action"] == "sqs:SendMessage"
    assert statement["Resource"] == "<UploadQueue.Arn>"
    assert statement["Condition"]["ArnLike"]["aws:SourceArn"] == f"arn:aws:s3:::{bucket_name}"
    assert statement["Condition"]["StringEquals"]["aws:SourceAccount"] == ACCOUNT
    # The bucket waits for the policy: S3 tests its access to the queue when the notification is set.
    assert "UploadQueuePolicy" in as_list(transformed["Resources"]["Bucket"].get("DependsOn", []))


def test_event_source_mapping(transformed: dict[str, Any]) -> None:
    _, esm = only(transformed, "AWS::Lambda::EventSourceMapping")
    props = esm["Properties"]
    assert props["EventSourceArn"] == {"Fn::GetAtt": ["UploadQueue", "Arn"]}
    assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert props["ScalingConfig"]["MaximumConcurrency"] == {"Ref": "MaxConcurrency"}
    max_concurrency = transformed["Parameters"]["MaxConcurrency"]
    assert max_concurrency["MinValue"] >= 2  # SQS event sources accept 2..1000
    assert max_concurrency["MaxValue"] <= 1000
    assert 2 <= int(max_concurrency["Default"]) <= 1000
    assert 1 <= props["BatchSize"] <= 10
    assert 0 < props["MaximumBatchingWindowInSeconds"] <= 30


def test_snapstart_is_off_by_default_and_the_queue_invokes_a_published_version(transformed: dict[str, Any]) -> None:
    _, function = only(transformed, "AWS::Lambda::Function")
    snapstart = function["Properties"]["SnapStart"]
    assert Evaluator(transformed)(snapstart) == {"ApplyOn": "None"}
    assert Evaluator(transformed, SnapStart="Enabled")(snapstart) == {"ApplyOn": "PublishedVersions"}
    assert transformed["Parameters"]["SnapStart"]["AllowedValues"] == ["Disabled", "Enabled"]
    # SnapStart applies only to published versions: the queue's events go to the alias each deploy moves.
    (alias_id, alias), (version_id, _) = (
        only(transformed, kind) for kind in ("AWS::Lambda::Alias", "AWS::Lambda::Version")
    )
    assert alias["Properties"]["FunctionVersion"] == {"Fn::GetAtt": [version_id, "Version"]}
    _, esm = only(transformed, "AWS::Lambda::EventSourceMapping")
    assert esm["Properties"]["FunctionName"] == {"Ref": alias_id}


def test_dead_letter_queue(transformed: dict[str, Any]) -> None:
    queue = transformed["Resources"]["UploadQueue"]["Properties"]
    dlq = transformed["Resources"]["DeadLetterQueue"]["Properties"]
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}
    assert 3 <= int(queue["RedrivePolicy"]["maxReceiveCount"]) <= 10
    assert int(dlq["MessageRetentionPeriod"]) == 14 * 24 * 3600
    assert int(dlq["MessageRetentionPeriod"]) > int(queue["MessageRetentionPeriod"])
    assert queue["SqsManagedSseEnabled"] is True
    assert dlq["SqsManagedSseEnabled"] is True


def test_visibility_timeout_covers_six_function_timeouts(transformed: dict[str, Any]) -> None:
    _, function = only(transformed, "AWS::Lambda::Function")
    assert function["Properties"]["Timeout"] == {"Ref": "Timeout"}
    timeout = transformed["Parameters"]["Timeout"]
    allowed = [int(v) for v in timeout["AllowedValues"]]
    assert int(timeout["Default"]) in allowed
    _, esm = only(transformed, "AWS::Lambda::EventSourceMapping")
    window = int(esm["Properties"]["MaximumBatchingWindowInSeconds"])
    for seconds in allowed:
        ev = Evaluator(transformed, Timeout=str(seconds))
        visibility = int(ev(transformed["Resources"]["UploadQueue"]["Properties"]["VisibilityTimeout"]))
        assert visibility >= 6 * seconds + window, (seconds, visibility)
        assert visibility <= 43200  # SQS maximum


# ----------------------------------------------------------------------------- function


def test_function_runtime_handler_and_layer(transformed: dict[str, Any]) -> None:
    _, function = only(transformed, "AWS::Lambda::Function")
    props = function["Properties"]
    # Neither linter catches a runtime name Lambda does not have.
    assert props["Runtime"] in LAMBDA_PYTHON_RUNTIMES
    assert props["Handler"] == "reframe_pipeline.handler.lambda_handler"
    assert props["TracingConfig"] == {"Mode": "Active"}
    assert props["Architectures"] == [{"Ref": "Architecture"}]
    arch = transformed["Parameters"]["Architecture"]
    assert arch["Default"] == "arm64" and set(arch["AllowedValues"]) == {"arm64", "x86_64"}
    ((layer_id, layer),) = resources_of(transformed, "AWS::Lambda::LayerVersion").items()
    assert props["Layers"] == [{"Ref": layer_id}]
    assert props["Runtime"] in layer["Properties"]["CompatibleRuntimes"]
    assert layer["Properties"]["CompatibleArchitectures"] == [{"Ref": "Architecture"}]
    # The handler module is where the template says, and defines the handler.
    source = ROOT / "functions" / "reframe" / "reframe_pipeline" / "handler.py"
    tree = ast.parse(source.read_text())
    assert "lambda_handler" in {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}


def test_function_builds_with_makefiles(template: dict[str, Any]) -> None:
    resources = template["Resources"]
    assert resources["ReframeFunction"]["Metadata"]["BuildMethod"] == "makefile"
    assert resources["DependenciesLayer"]["Metadata"]["BuildMethod"] == "makefile"
    function_makefile = (ROOT / "functions" / "reframe" / "Makefile").read_text()
    layer_makefile = (ROOT / "layers" / "deps" / "Makefile").read_text()
    assert re.search(r"^build-ReframeFunction:", function_makefile, re.M)
    assert re.search(r"^build-DependenciesLayer:", layer_makefile, re.M)
    requirements = (ROOT / "layers" / "deps" / "requirements.txt").read_text().lower()
    assert "boto3" not in re.sub(r"#.*", "", requirements)


def test_the_layer_installs_what_the_lock_pins() -> None:
    """layers/deps/requirements.txt: the runtime dependencies' closure in uv.lock, at the locked versions, each
    with hashes, minus what the Lambda runtime provides."""
    packages: dict[str, list[dict[str, Any]]] = {}
    for package in tomllib.loads((ROOT / "uv.lock").read_text())["package"]:
        packages.setdefault(package["name"], []).append(package)
    locked: set[tuple[str, str]] = set()
    todo = [{"name": "reframe-pipeline"}]
    while todo:
        wanted = todo.pop()
        for package in packages[wanted["name"]]:
            if "version" in wanted and package["version"] != wanted["version"]:
                continue  # a fork of the lock (one version per platform): the one this edge names
            for extra in wanted.get("extra", []):
                todo += package["optional-dependencies"][extra]
            if (package["name"], package["version"]) not in locked:
                locked.add((package["name"], package["version"]))
                todo += package.get("dependencies", [])
    expected = {pin for pin in locked if pin[0] not in {"reframe-pipeline", "boto3", "botocore", "s3transfer"}}
    text = (ROOT / "layers" / "deps" / "requirements.txt").read_text()
    pinned = set(re.findall(r"^([a-z0-9][a-z0-9._-]*)==([^ ;\\]+)", text, re.M))
    assert pinned == expected, "run make lock"
    requirements = re.split(r"\n(?=[a-z0-9])", text.strip())
    assert all("--hash=sha256:" in requirement for requirement in requirements)


def test_function_environment(ev: Evaluator, transformed: dict[str, Any]) -> None:
    _, function = only(transformed, "AWS::Lambda::Function")
    env = ev(function["Properties"]["Environment"]["Variables"])
    assert env["INPUT_PREFIX"] == "uploads/"
    assert env["OUTPUT_PREFIX"] == "reframed/"
    assert env["REFRAME_PROVIDER"] == "segmind"
    assert env["SEGMIND_API_KEY_SECRET"] == "<ApiKeySecret>"  # created by the stack by default
    assert env["MAX_PARALLEL_CALLS"] == "8"
    assert env["MAX_TARGETS_PER_OBJECT"] == "20"
    assert env["IDEMPOTENCY_TABLE"] == "<IdempotencyTable>"
    assert env["DEFAULT_RENDERING_SPEED"] == "DEFAULT"
    assert env["DEFAULT_SIDECAR"] == ""
    assert env["SIDECAR_WAIT_S"] == "10"
    assert env["DAILY_BUDGET_USD"] == ""  # no budget unless the parameter sets one
    assert env["POWERTOOLS_SERVICE_NAME"] == "reframe"
    assert env["POWERTOOLS_METRICS_NAMESPACE"] == "ReframePipeline"
    assert env["LOG_LEVEL"] == "INFO"
    assert "SEGMIND_API_KEY" not in env  # the key itself never sits in the environment
    existing = "arn:aws:secretsmanager:us-east-1:123456789012:secret:reframe-key-AbCdEf"
    ev2 = Evaluator(transformed, ApiKeySecretArn=existing)
    assert ev2(function["Properties"]["Environment"]["Variables"])["SEGMIND_API_KEY_SECRET"] == existing
    assert not ev2.conditions["CreateApiKeySecret"]
    assert transformed["Resources"]["ApiKeySecret"]["Condition"] == "CreateApiKeySecret"


def test_the_function_environment_is_valid_settings(transformed: dict[str, Any]) -> None:
    _, function = only(transformed, "AWS::Lambda::Function")
    variables = function["Properties"]["Environment"]["Variables"]
    defaults = Settings.from_env(Evaluator(transformed)(variables))
    # Lambda sets the memory; run anywhere else, the settings assume the template's default.
    assert int(transformed["Parameters"]["MemorySize"]["Default"]) == DEFAULT_MEMORY_MB
    assert defaults.daily_budget_usd is None and defaults.style_prefix == "styles/"
    budget = Settings.from_env(Evaluator(transformed, DailyBudgetUsd="12.50")(variables))
    assert budget.daily_budget_usd == 12.5
    assert defaults.sidecar_wait_s == 10
    assert Settings.from_env(Evaluator(transformed, SidecarWaitSeconds="0")(variables)).sidecar_wait_s == 0
    # Every allowed timeout leaves room for at least one provider call and the upload after it.
    for seconds in transformed["Parameters"]["Timeout"]["AllowedValues"]:
        assert defaults.call_budget_ms + defaults.upload_reserve_ms < int(seconds) * 1000, seconds


def test_signing_is_off_by_default_and_on_only_with_a_signer_secret(transformed: dict[str, Any]) -> None:
    _, function = only(transformed, "AWS::Lambda::Function")
    variables = function["Properties"]["Environment"]["Variables"]
    assert Settings.from_env(Evaluator(transformed)(variables)).c2pa_signing == "off"
    secret = "arn:aws:secretsmanager:us-east-1:123456789012:secret:c2pa-AbCdEf"
    signing = Settings.from_env(Evaluator(transformed, C2paSigning="on", C2paSignerSecretArn=secret)(variables))
    assert (signing.c2pa_signing, signing.c2pa_signer_secret_arn) == ("on", secret)
    # CloudFormation refuses "on" without a secret before the function could fail its cold start on it.
    rule = transformed["Rules"]["SigningNeedsASigner"]
    assert rule["RuleCondition"] == {"Fn::Equals": [{"Ref": "C2paSigning"}, "on"]}
    assert rule["Assertions"][0]["Assert"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "C2paSignerSecretArn"}, ""]}]}
    alarm = transformed["Resources"]["SigningFailuresAlarm"]
    assert (alarm["Condition"], alarm["Properties"]["MetricName"]) == ("SignsVariants", "SigningFailures")


def test_the_fallback_is_off_by_default_and_passed_to_the_function(transformed: dict[str, Any]) -> None:
    _, function = only(transformed, "AWS::Lambda::Function")
    variables = function["Properties"]["Environment"]["Variables"]
    assert Settings.from_env(Evaluator(transformed)(variables)).fallback_provider == "none"
    local = Settings.from_env(Evaluator(transformed, FallbackProvider="local")(variables))
    assert local.fallback_provider == "local"
    assert transformed["Parameters"]["FallbackProvider"]["AllowedValues"] == ["none", "local"]


def test_the_source_check_warns_by_default_and_its_settings_reach_the_function(transformed: dict[str, Any]) -> None:
    _, function = only(transformed, "AWS::Lambda::Function")
    variables = function["Properties"]["Environment"]["Variables"]
    default = Settings.from_env(Evaluator(transformed)(variables))
    assert (default.source_check, default.source_match_min) == ("warn", 0.85)
    retry = Settings.from_env(Evaluator(transformed, SourceCheck="retry", SourceMatchMin="0.7")(variables))
    assert (retry.source_check, retry.source_match_min) == ("retry", 0.7)
    assert transformed["Parameters"]["SourceCheck"]["AllowedValues"] == ["off", "warn", "retry"]


# ----------------------------------------------------------------------------- IAM


def _role_statements(ev: Evaluator, transformed: dict[str, Any]) -> list[dict[str, Any]]:
    _, function = only(transformed, "AWS::Lambda::Function")
    role_id = function["Properties"]["Role"]["Fn::GetAtt"][0]
    role = transformed["Resources"][role_id]["Properties"]
    # Managed policies would bring Resource "*" grants (SAM's SQS poller and basic execution roles).
    assert not role.get("ManagedPolicyArns"), role.get("ManagedPolicyArns")
    statements = []
    for policy in role["Policies"]:
        # A statement under a false condition (AWS::NoValue) is no statement.
        statements += [s for s in ev(policy["PolicyDocument"]["Statement"]) if s is not None]
    return statements


def test_no_wildcard_actions_and_no_wildcard_resources_but_xray(ev: Evaluator, transformed: dict[str, Any]) -> None:
    for statement in _role_statements(ev, transformed):
        assert statement["Effect"] == "Allow"
        assert "NotAction" not in statement and "NotResource" not in statement
        actions = as_list(statement["Action"])
        for action in actions:
            assert "*" not in action, statement
        if "*" in as_list(statement["Resource"]):
            # X-Ray has no resource-level permissions: the one allowed exception.
            assert all(a.startswith("xray:") for a in actions), statement


def _grants(statements: list[dict[str, Any]]) -> dict[str, set[str]]:
    grants: dict[str, set[str]] = {}
    for statement in statements:
        for action in as_list(statement["Action"]):
            grants.setdefault(action, set()).update(as_list(statement["Resource"]))
    return grants


def test_s3_permissions_follow_the_prefixes(ev: Evaluator, transformed: dict[str, Any], bucket_name: str) -> None:
    statements = _role_statements(ev, transformed)
    grants = _grants(statements)
    bucket = f"arn:aws:s3:::{bucket_name}"
    assert grants["s3:GetObject"] == {f"{bucket}/uploads/*", f"{bucket}/styles/*", f"{bucket}/reframed/*"}
    assert grants["s3:PutObject"] == grants["s3:PutObjectTagging"] == {f"{bucket}/reframed/*"}
    assert grants["s3:DeleteObject"] == {f"{bucket}/reframed/*"}
    assert grants["s3:ListBucket"] == {bucket}
    # Unconditioned on purpose: a missing sidecar must answer 404, not 403 (see template.yaml).
    (listing,) = [s for s in statements if "s3:ListBucket" in as_list(s["Action"])]
    assert "Condition" not in listing
    assert {a for a in grants if a.startswith("s3:")} == {
        "s3:GetObject",
        "s3:PutObject",
        "s3:PutObjectTagging",
        "s3:DeleteObject",
        "s3:ListBucket",
    }
    # The ARNs in the policy name the bucket the template creates (built with !Sub, no cycle).
    assert ev(transformed["Resources"]["Bucket"]["Properties"]["BucketName"]) == f"{STACK}-{ACCOUNT}-{REGION}"


def test_other_permissions_are_scoped(ev: Evaluator, transformed: dict[str, Any]) -> None:
    grants = _grants(_role_statements(ev, transformed))
    assert grants["secretsmanager:GetSecretValue"] == {"<ApiKeySecret>"}
    dynamodb = {a for a in grants if a.startswith("dynamodb:")}
    assert dynamodb == {
        "dynamodb:GetItem",
        "dynamodb:BatchGetItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
    }
    assert all(grants[a] == {"<IdempotencyTable.Arn>"} for a in dynamodb)
    sqs = {a for a in grants if a.startswith("sqs:")}
    assert {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"} <= sqs
    assert all(grants[a] == {"<UploadQueue.Arn>"} for a in sqs)
    assert grants["logs:PutLogEvents"] == {"<FunctionLogGroup.Arn>"}
    assert "xray:PutTraceSegments" in grants
    webhook_secret = "arn:aws:secretsmanager:us-east-1:123456789012:secret:hook-AbCdEf"
    with_webhook = _grants(_role_statements(Evaluator(transformed, WebhookSecretArn=webhook_secret), transformed))
    assert with_webhook["secretsmanager:GetSecretValue"] == {"<ApiKeySecret>", webhook_secret}
    signer_secret = "arn:aws:secretsmanager:us-east-1:123456789012:secret:c2pa-AbCdEf"
    # The signer's secret is readable only while signing is on.
    for signing, readable in (("on", {"<ApiKeySecret>", signer_secret}), ("off", {"<ApiKeySecret>"})):
        signs = Evaluator(transformed, C2paSigning=signing, C2paSignerSecretArn=signer_secret)
        assert _grants(_role_statements(signs, transformed))["secretsmanager:GetSecretValue"] == readable
    assert grants["events:PutEvents"] == {"arn:aws:events:us-east-1:123456789012:event-bus/default"}
    services = {a.split(":")[0] for a in grants}
    assert services == {"s3", "secretsmanager", "dynamodb", "sqs", "logs", "xray", "events"}


# ----------------------------------------------------------------------------- data, alarms, outputs


def test_bucket_is_private_encrypted_and_tls_only(ev: Evaluator, transformed: dict[str, Any]) -> None:
    props = transformed["Resources"]["Bucket"]["Properties"]
    assert all(props["PublicAccessBlockConfiguration"].values())
    assert len(props["PublicAccessBlockConfiguration"]) == 4
    sse = props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
    assert sse["SSEAlgorithm"] in {"AES256", "aws:kms"}
    _, policy = only(transformed, "AWS::S3::BucketPolicy")
    (deny,) = ev(policy["Properties"]["PolicyDocument"]["Statement"])
    assert deny["Effect"] == "Deny"
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert ev(props["VersioningConfiguration"]) is None
    assert Evaluator(transformed, EnableVersioning="true")(props["VersioningConfiguration"]) == {"Status": "Enabled"}


def test_kept_generations_expire_by_their_tag(ev: Evaluator, transformed: dict[str, Any]) -> None:
    _, function = only(transformed, "AWS::Lambda::Function")
    rules = transformed["Resources"]["Bucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
    (rule,) = [r for r in rules if r["Id"] == "expire-kept-generations"]
    assert rule["TagFilters"] == [{"Key": k, "Value": v} for k, v in KIND_TAG.items()]  # what the function tags
    assert (ev(rule["Status"]), ev(rule["ExpirationInDays"])) == ("Enabled", "30")
    assert ev(function["Properties"]["Environment"]["Variables"])["GENERATIONS_KEEP_DAYS"] == "30"
    none_kept = Evaluator(transformed, GenerationsKeepDays="0")
    assert none_kept(rule["Status"]) == "Disabled"
    assert Settings.from_env(none_kept(function["Properties"]["Environment"]["Variables"])).generations_keep_days == 0


def test_idempotency_table(transformed: dict[str, Any]) -> None:
    _, table = only(transformed, "AWS::DynamoDB::Table")
    props = table["Properties"]
    assert props["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]
    assert props["AttributeDefinitions"] == [{"AttributeName": "id", "AttributeType": "S"}]
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expiration", "Enabled": True}
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert props["SSESpecification"]["SSEEnabled"] is True


def test_alarms(ev: Evaluator, transformed: dict[str, Any]) -> None:
    alarms = {
        (a["Properties"]["Namespace"], a["Properties"]["MetricName"]): a["Properties"]
        for a in resources_of(transformed, "AWS::CloudWatch::Alarm").values()
    }
    for key in [
        ("AWS/SQS", "ApproximateNumberOfMessagesVisible"),
        ("AWS/Lambda", "Errors"),
        ("ReframePipeline", "VariantsFailed"),
        ("ReframePipeline", "AccountErrors"),
    ]:
        alarm = alarms[key]
        assert alarm["ComparisonOperator"] == "GreaterThanThreshold" and float(alarm["Threshold"]) == 0, key
        assert alarm["TreatMissingData"] == "notBreaching"
    assert ev(alarms["AWS/SQS", "ApproximateNumberOfMessagesVisible"]["Dimensions"]) == [
        {"Name": "QueueName", "Value": "<DeadLetterQueue.QueueName>"}
    ]
    for metric in ("VariantsFailed", "AccountErrors"):  # EMF metrics, as Powertools emits them
        assert alarms["ReframePipeline", metric]["Dimensions"] == [{"Name": "service", "Value": "reframe"}]
    # Alarm mails only when an address is given.
    assert transformed["Resources"]["AlarmTopic"]["Condition"] == "HasAlarmEmail"
    some = alarms["AWS/Lambda", "Errors"]
    assert ev(some["AlarmActions"]) is None
    assert Evaluator(transformed, AlarmEmail="ops@example.com")(some["AlarmActions"]) == ["<AlarmTopic>"]


def test_outputs(ev: Evaluator, transformed: dict[str, Any]) -> None:
    assert {"BucketName", "UploadPrefix", "QueueUrl", "DeadLetterQueueUrl", "FunctionName", "DashboardUrl"} <= set(
        transformed["Outputs"]
    )
    assert ev(transformed["Outputs"]["DashboardUrl"]["Value"]) == (
        "https://us-east-1.console.aws.amazon.com/cloudwatch/home?region=us-east-1#dashboards:name=<Dashboard>"
    )


# ----------------------------------------------------------------------------- dashboard

FUNCTIONS = ROOT / "functions" / "reframe" / "reframe_pipeline"
# count("Name"), measure("Name", ...), and the metric names handed to them as defaults or arguments.
_EMITTED = re.compile(r'\b(?:count|measure)\(\s*"(\w+)"|_metric(?:: [\w |]+)? ?= ?"(\w+)"')


def emitted_metrics() -> set[str]:
    names: set[str] = set()
    for path in FUNCTIONS.rglob("*.py"):
        for match in _EMITTED.finditer(path.read_text()):
            names.add(match.group(1) or match.group(2))
    return names


def dashboard_metrics(body: dict[str, Any]) -> list[list[Any]]:
    return [row for widget in body["widgets"] for row in widget["properties"].get("metrics", [])]


def test_the_emitted_metrics_are_found_in_the_code() -> None:
    names = emitted_metrics()  # the scan below is only as good as this: it must see known metrics
    assert {"VariantsCreated", "VariantsFailed", "ProviderLatency", "EstimatedCostUSD", "ProviderRetries"} <= names
    assert {"ProviderThrottled", "ProviderConcurrencyLimit", "WebhookRetries"} <= names


def test_dashboard_body_is_json_naming_metrics_the_code_emits(ev: Evaluator, transformed: dict[str, Any]) -> None:
    _, dashboard = only(transformed, "AWS::CloudWatch::Dashboard")
    body = json.loads(ev(dashboard["Properties"]["DashboardBody"]))
    emitted = emitted_metrics()
    rows = dashboard_metrics(body)
    own = [row for row in rows if row[0] == "ReframePipeline"]
    for row in own:
        # Powertools' EMF: namespace ReframePipeline, the one dimension service=<POWERTOOLS_SERVICE_NAME>.
        assert row[1] in emitted, f"the dashboard shows {row[1]}, which the function never emits"
        assert row[2:4] == ["service", "reframe"], row
    shown = {row[1] for row in own}
    assert {
        "VariantsCreated",
        "VariantsFailed",
        "VariantsFallback",
        "ProviderLatency",
        "ProviderThrottled",
        "ProviderConcurrencyLimit",
        "EstimatedCostUSD",
    } <= shown
    stats = {row[-1].get("stat") for row in own if row[1] == "ProviderLatency"}
    assert stats == {"p50", "p95"}
    queues = {(row[1], row[3]) for row in rows if row[0] == "AWS/SQS"}
    assert queues == {
        ("ApproximateAgeOfOldestMessage", "<UploadQueue.QueueName>"),
        ("ApproximateNumberOfMessagesVisible", "<DeadLetterQueue.QueueName>"),
    }
    for widget in body["widgets"]:
        assert widget["properties"]["region"] == REGION
    env = ev(only(transformed, "AWS::Lambda::Function")[1]["Properties"]["Environment"]["Variables"])
    assert (env["POWERTOOLS_SERVICE_NAME"], env["POWERTOOLS_METRICS_NAMESPACE"]) == ("reframe", "ReframePipeline")


def _spend_widget(body: dict[str, Any]) -> dict[str, Any]:
    (widget,) = [w for w in body["widgets"] if any(r[1] == "EstimatedCostUSD" for r in w["properties"]["metrics"])]
    return dict(widget["properties"])


def test_dashboard_spend_is_per_day_against_the_budget(transformed: dict[str, Any]) -> None:
    _, dashboard = only(transformed, "AWS::CloudWatch::Dashboard")
    without = _spend_widget(json.loads(Evaluator(transformed)(dashboard["Properties"]["DashboardBody"])))
    assert (without["period"], without["stat"]) == (86400, "Sum")
    assert without["annotations"] == {}  # no budget, no line
    for amount in ("25", "12.50", "0.5"):
        body = Evaluator(transformed, DailyBudgetUsd=amount)(dashboard["Properties"]["DashboardBody"])
        assert _spend_widget(json.loads(body))["annotations"]["horizontal"][0]["value"] == float(amount)
    # Every amount the parameter admits is a JSON number in the dashboard.
    pattern = transformed["Parameters"]["DailyBudgetUsd"]["AllowedPattern"]
    assert re.fullmatch(pattern, "012") is None and re.fullmatch(pattern, "0.25")


def test_every_checkov_skip_is_explained(template: dict[str, Any]) -> None:
    for logical_id, resource in template["Resources"].items():
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", []):
            assert re.fullmatch(r"CKV2?_AWS_\d+", skip["id"]), (logical_id, skip)
            assert len(skip.get("comment", "")) > 20, (logical_id, skip)


# ----------------------------------------------------------------------------- delivery: which bucket, which CDN

CREATED = f"{STACK}-{ACCOUNT}-{REGION}"
EXISTING = "photos-site"
OUTPUT = "cdn-assets"
DISTRIBUTION = f"arn:aws:cloudfront::{ACCOUNT}:distribution/<Cdn>"


def _stack(transformed: dict[str, Any], ev: Evaluator) -> dict[str, Any]:
    """The resources and outputs CloudFormation would create for these parameters, evaluated."""
    kept = {
        name: ev(resource)
        for name, resource in transformed["Resources"].items()
        if ev.conditions.get(resource.get("Condition", ""), True)
    }
    outputs = {
        name: ev(output["Value"])
        for name, output in transformed["Outputs"].items()
        if ev.conditions.get(output.get("Condition", ""), True)
    }
    return {"Resources": kept, "Outputs": outputs}


def _env(transformed: dict[str, Any], ev: Evaluator) -> dict[str, str]:
    _, function = only(transformed, "AWS::Lambda::Function")
    return dict(ev(function["Properties"]["Environment"]["Variables"]))


def _queue_statements(transformed: dict[str, Any], ev: Evaluator) -> list[dict[str, Any]]:
    _, policy = only(transformed, "AWS::SQS::QueuePolicy")
    return list(ev(policy["Properties"]["PolicyDocument"]["Statement"]))


def _bucket_statements(transformed: dict[str, Any], ev: Evaluator) -> list[dict[str, Any]]:
    return list(ev(transformed["Resources"]["BucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]))


def test_by_default_the_stack_creates_its_bucket_and_no_rule_and_no_cdn(ev: Evaluator, transformed: dict[str, Any]):
    stack = _stack(transformed, ev)
    assert {"Bucket", "BucketPolicy"} <= set(stack["Resources"])
    assert not {"SourceBucketRule", "Cdn", "CdnOriginAccessControl"} & set(stack["Resources"])
    ((statement),) = _queue_statements(transformed, ev)
    assert statement["Principal"] == {"Service": "s3.amazonaws.com"}
    env = _env(transformed, ev)
    # Empty settings: the pipeline's own defaults (the source bucket, today's keys, its Cache-Control, no URL).
    assert [env[name] for name in ("OUTPUT_BUCKET", "OUTPUT_KEY_TEMPLATE", "CACHE_CONTROL", "PUBLIC_BASE_URL")] == [
        ""
    ] * 4
    assert stack["Outputs"]["DeliverablesLocation"] == f"s3://{CREATED}/reframed/"
    assert "PublicBaseUrl" not in stack["Outputs"] and "CdnBucketPolicyStatements" not in stack["Outputs"]


def test_an_existing_source_bucket_is_reached_through_an_eventbridge_rule(transformed: dict[str, Any]) -> None:
    ev = Evaluator(transformed, SourceBucketName=EXISTING)
    assert not ev.conditions["CreateSourceBucket"] and ev.conditions["UseExistingSourceBucket"]
    stack = _stack(transformed, ev)
    assert not {"Bucket", "BucketPolicy"} & set(stack["Resources"])  # neither created nor its policy replaced
    rule = stack["Resources"]["SourceBucketRule"]["Properties"]
    assert rule["EventBusName"] == "default" and rule["State"] == "ENABLED"  # where S3 sends its events
    assert rule["EventPattern"] == {
        "source": ["aws.s3"],
        "detail-type": ["Object Created", "Object Deleted"],
        "detail": {"bucket": {"name": [EXISTING]}, "object": {"key": [{"prefix": "uploads/"}]}},
    }
    assert [t["Arn"] for t in rule["Targets"]] == ["<UploadQueue.Arn>"]
    # The queue admits this rule only, and no longer S3's own notifications.
    ((statement),) = _queue_statements(transformed, ev)
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert (statement["Action"], statement["Resource"]) == ("sqs:SendMessage", "<UploadQueue.Arn>")
    assert statement["Condition"] == {"ArnEquals": {"aws:SourceArn": "<SourceBucketRule.Arn>"}}
    # Every place that named the created bucket names the existing one.
    text = json.dumps(stack)
    assert CREATED not in text and "<Bucket" not in text
    assert stack["Outputs"]["BucketName"] == EXISTING
    assert stack["Outputs"]["UploadPrefix"] == f"s3://{EXISTING}/uploads/"


def test_on_an_existing_bucket_the_role_reaches_only_its_prefixes(transformed: dict[str, Any]) -> None:
    ev = Evaluator(transformed, SourceBucketName=EXISTING, InputPrefix="incoming/", OutputPrefix="derived/")
    grants = _grants(_role_statements(ev, transformed))
    bucket = f"arn:aws:s3:::{EXISTING}"
    assert grants["s3:GetObject"] == {f"{bucket}/incoming/*", f"{bucket}/styles/*", f"{bucket}/derived/*"}
    assert grants["s3:PutObject"] == grants["s3:DeleteObject"] == {f"{bucket}/derived/*"}
    assert grants["s3:PutObjectTagging"] == {f"{bucket}/derived/*"}
    assert grants["s3:ListBucket"] == {bucket}


@pytest.mark.parametrize(
    ("key_template", "area"),
    [
        ("", "reframed/"),  # today's keys
        ("{prefix}{path}/{name}.{ext}", "reframed/"),
        ("{prefix}web/{dir}/{stem}-{width}w.{ext}", "reframed/"),
        ("img/{dir}/{stem}/{name}-{width}w.{hash}.{ext}", "img/"),
        ("site/assets/{prefix}{name}.{ext}", "site/assets/"),
    ],
)
def test_deliverables_go_to_the_output_bucket_below_the_templates_literal_start(
    transformed: dict[str, Any], key_template: str, area: str
) -> None:
    ev = Evaluator(transformed, OutputBucketName=OUTPUT, OutputKeyTemplate=key_template)
    env = _env(transformed, ev)
    assert (env["OUTPUT_BUCKET"], env["OUTPUT_KEY_TEMPLATE"]) == (OUTPUT, key_template)
    grants = _grants(_role_statements(ev, transformed))
    source, output = f"arn:aws:s3:::{CREATED}", f"arn:aws:s3:::{OUTPUT}"
    # State (manifests, kept generations) stays in the source bucket; deliverables in the output bucket only.
    assert grants["s3:PutObject"] == {f"{source}/reframed/*", f"{output}/{area}*"}
    assert grants["s3:DeleteObject"] == {f"{source}/reframed/*", f"{output}/{area}*"}
    assert grants["s3:PutObjectTagging"] == {f"{source}/reframed/*"}
    assert grants["s3:ListBucket"] == {source, output}
    assert _stack(transformed, ev)["Outputs"]["DeliverablesLocation"] == f"s3://{OUTPUT}/{area}"


def test_delivery_settings_reach_the_function(transformed: dict[str, Any]) -> None:
    cache, keys = "public, max-age=31536000, immutable", "img/{dir}/{stem}/{name}-{width}w.{hash}.{ext}"
    ev = Evaluator(transformed, CacheControl=cache, PublicBaseUrl="https://img.example.com", OutputKeyTemplate=keys)
    env = _env(transformed, ev)
    assert (env["CACHE_CONTROL"], env["PUBLIC_BASE_URL"]) == (cache, "https://img.example.com")
    assert env["OUTPUT_KEY_TEMPLATE"] == keys  # immutable needs {hash} in the keys: the function checks it
    Settings.from_env(env)  # still settings the function starts with
    rule = transformed["Rules"]["OneBaseUrl"]  # a CDN of the stack's and a URL of one's own exclude each other
    assert rule["RuleCondition"] == {"Fn::Equals": [{"Ref": "CreateCdn"}, "true"]}
    assert rule["Assertions"][0]["Assert"] == {"Fn::Equals": [{"Ref": "PublicBaseUrl"}, ""]}


def test_bucket_name_and_url_parameters_are_constrained(transformed: dict[str, Any]) -> None:
    params = transformed["Parameters"]
    for name in ("SourceBucketName", "OutputBucketName"):
        pattern = params[name]["AllowedPattern"]
        assert all(re.fullmatch(pattern, ok) for ok in ("", "photos-site", "my.assets.2024"))
        assert not any(re.fullmatch(pattern, bad) for bad in ("Photos", "a", "-x", "s3://photos", "photos/uploads"))
    key_template = params["OutputKeyTemplate"]["AllowedPattern"]
    assert all(re.fullmatch(key_template, ok) for ok in ("", "{prefix}{path}/{name}.{ext}", "img/{stem} {name}.{ext}"))
    # A wildcard would widen the role's grant, built from the template's literal start.
    assert not any(re.fullmatch(key_template, bad) for bad in ("/img/{name}.{ext}", "img*/{name}", "i?g/{name}"))
    url = params["PublicBaseUrl"]["AllowedPattern"]
    assert all(re.fullmatch(url, ok) for ok in ("", "https://cdn.example.com", "https://example.com/img"))
    assert not any(re.fullmatch(url, bad) for bad in ("http://cdn.example.com", "https://cdn.example.com/"))
    assert params["CreateCdn"]["Default"] == "false"


def test_the_cdn_reads_the_created_bucket_through_oac_and_never_sources_or_state(transformed: dict[str, Any]) -> None:
    ev = Evaluator(transformed, CreateCdn="true")
    assert ev.conditions["CdnOnCreatedBucket"] and not ev.conditions["CdnOnExistingBucket"]
    stack = _stack(transformed, ev)
    oac = stack["Resources"]["CdnOriginAccessControl"]["Properties"]["OriginAccessControlConfig"]
    assert (oac["OriginAccessControlOriginType"], oac["SigningProtocol"], oac["SigningBehavior"]) == (
        "s3",
        "sigv4",
        "always",
    )
    config = stack["Resources"]["Cdn"]["Properties"]["DistributionConfig"]
    ((origin),) = config["Origins"]
    assert origin["DomainName"] == f"{CREATED}.s3.{REGION}.amazonaws.com"
    assert origin["OriginAccessControlId"] == "<CdnOriginAccessControl.Id>"
    assert origin["S3OriginConfig"] == {"OriginAccessIdentity": ""}  # OAC, not the legacy identity
    behavior = config["DefaultCacheBehavior"]
    assert behavior["TargetOriginId"] == origin["Id"] and behavior["ViewerProtocolPolicy"] == "redirect-to-https"
    assert behavior["AllowedMethods"] == ["GET", "HEAD"]
    assert _env(transformed, ev)["PUBLIC_BASE_URL"] == stack["Outputs"]["PublicBaseUrl"] == "https://<Cdn.DomainName>"
    insecure, reads, state = _bucket_statements(transformed, ev)
    assert insecure["Sid"] == "DenyInsecureTransport"
    assert reads["Principal"] == {"Service": "cloudfront.amazonaws.com"} and reads["Effect"] == "Allow"
    assert (reads["Action"], reads["Resource"]) == ("s3:GetObject", "<Bucket.Arn>/reframed/*")
    assert reads["Condition"] == {"StringEquals": {"AWS:SourceArn": DISTRIBUTION}}
    assert state["Effect"] == "Deny" and state["Principal"] == reads["Principal"]
    assert state["Resource"] == [
        "<Bucket.Arn>/uploads/*",
        "<Bucket.Arn>/styles/*",
        "<Bucket.Arn>/reframed/*/manifest.json",
        "<Bucket.Arn>/reframed/*/_generation-*",
        "<Bucket.Arn>/reframed/*/_prepared.png",
    ]
    assert "CdnBucketPolicyStatements" not in stack["Outputs"]


def test_a_template_without_a_literal_start_opens_the_bucket_but_never_sources_or_state(
    transformed: dict[str, Any],
) -> None:
    ev = Evaluator(transformed, CreateCdn="true", OutputKeyTemplate="{dir}/{stem}-{width}w.{ext}")
    _, reads, state = _bucket_statements(transformed, ev)
    assert reads["Resource"] == "<Bucket.Arn>/*"
    assert {"<Bucket.Arn>/uploads/*", "<Bucket.Arn>/reframed/*/manifest.json"} <= set(state["Resource"])


def test_state_the_cdn_must_not_read_is_named_as_the_function_names_it() -> None:
    from reframe_pipeline.application.generations import GENERATION_PREFIX
    from reframe_pipeline.application.outputs import PREPARED_NAME
    from reframe_pipeline.domain.events import MANIFEST_NAME

    assert (MANIFEST_NAME, GENERATION_PREFIX, PREPARED_NAME) == ("manifest.json", "_generation-", "_prepared.png")


def test_without_cdn_the_bucket_policy_is_only_tls(ev: Evaluator, transformed: dict[str, Any]) -> None:
    assert [s["Sid"] for s in _bucket_statements(transformed, ev)] == ["DenyInsecureTransport"]


def test_on_a_bucket_the_stack_does_not_own_the_cdn_statements_are_printed_not_written(
    transformed: dict[str, Any],
) -> None:
    created = _bucket_statements(transformed, Evaluator(transformed, CreateCdn="true"))[1:]
    # The existing source bucket also holds the state: the printed statements are the created bucket's ones.
    ev = Evaluator(transformed, CreateCdn="true", SourceBucketName=EXISTING)
    assert ev.conditions["CdnOnExistingBucket"]
    stack = _stack(transformed, ev)
    assert "BucketPolicy" not in stack["Resources"]
    printed = json.loads(stack["Outputs"]["CdnBucketPolicyStatements"])
    as_created = json.loads(json.dumps(printed).replace(f"arn:aws:s3:::{EXISTING}", "<Bucket.Arn>"))
    assert as_created == created
    assert stack["Resources"]["Cdn"]["Properties"]["DistributionConfig"]["Origins"][0]["DomainName"] == (
        f"{EXISTING}.s3.{REGION}.amazonaws.com"
    )
    # A separate output bucket holds deliverables only: the one statement that lets the distribution read them.
    ev = Evaluator(transformed, CreateCdn="true", OutputBucketName=OUTPUT, OutputKeyTemplate="img/{name}.{ext}")
    stack = _stack(transformed, ev)
    assert [s["Sid"] for s in _bucket_statements(transformed, ev)] == ["DenyInsecureTransport"]
    ((statement),) = json.loads(stack["Outputs"]["CdnBucketPolicyStatements"])
    assert statement["Resource"] == f"arn:aws:s3:::{OUTPUT}/img/*"
    assert statement["Condition"] == {"StringEquals": {"AWS:SourceArn": DISTRIBUTION}}
    assert stack["Resources"]["Cdn"]["Properties"]["DistributionConfig"]["Origins"][0]["DomainName"] == (
        f"{OUTPUT}.s3.{REGION}.amazonaws.com"
    )


@pytest.mark.parametrize("amount", ["0", "0.0", "0.00", "", "0.5", "12.50"])
def test_the_budget_parameter_admits_exactly_what_the_function_starts_with(
    transformed: dict[str, Any], amount: str
) -> None:
    """A DailyBudgetUsd the template admits but the settings refuse would fail every cold start."""
    admitted = re.fullmatch(transformed["Parameters"]["DailyBudgetUsd"]["AllowedPattern"], amount) is not None
    environment = {"DAILY_BUDGET_USD": amount, "IDEMPOTENCY_TABLE": "t"}
    try:
        Settings.from_env(environment)
        starts = True
    except SettingsError:
        starts = False
    assert admitted == starts
