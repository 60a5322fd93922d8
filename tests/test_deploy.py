"""`eventscope deploy template`: the template lints clean, agrees with the tap and the docs, and
deploys, updates and deletes against moto's CloudFormation over HTTP."""

from __future__ import annotations

import ast
import io
import json
import math
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings, strategies as st

from eventscope.cli import main
from eventscope.collectors import tap
from eventscope.deploy import (FUNCTION_TIMEOUT_SECONDS, LOGS_HANDLER, OWN_LOG_PREFIX,
                               TAP_HANDLER, VPC_ACTIONS, DeployError, StackOptions,
                               build_template, render)
from tests.conftest_aws import aws, clients, moto_endpoint  # noqa: F401
from tests.test_extras import AWS, needs, run_without

ROOT = Path(__file__).resolve().parent.parent
BUS = "shop-bus"
STACK = "eventscope"
# docs/collectors.md's IAM table row that lists each role's actions.
ROLE_ROWS = {"TapFunctionRole": "`deploy template`: the tap function's role",
             "LogsFunctionRole": "`deploy template`: the logs function's role"}
VPC_ROW = "`deploy template`: both roles, with `SubnetIds` (in a VPC)"


def template(**options: Any) -> dict[str, Any]:
    return build_template(StackOptions(**{"bus": BUS, **options}))


def resources_of(body: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in body["Resources"].items() if r["Type"] == kind}


def role_statements(role: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every statement of a role's inline policies, on both branches of a condition."""
    policies = role["Properties"]["Policies"]
    branches = policies["Fn::If"][1:] if isinstance(policies, dict) else [policies]
    for branch in branches:
        for policy in branch:
            yield from policy["PolicyDocument"]["Statement"]


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


# -- the template itself ------------------------------------------------------------------


def lint(text: str) -> list[Any]:
    from cfnlint.api import ManualArgs, lint as cfn_lint

    return cfn_lint(text, config=ManualArgs(regions=["us-east-1", "eu-west-1"]))


@pytest.mark.parametrize("fmt", ["yaml", "json"])
@pytest.mark.parametrize("options", [
    {}, {"bus": "default", "sample_rate": 0.1},
    {"log_groups": ("/aws/lambda/orders", "/aws/lambda/payments"), "payload_days": 3},
], ids=["shop-bus", "default-bus-sampled", "with-subscription-filters"])
def test_template_passes_cfn_lint_with_no_error_and_no_warning(fmt: str,
                                                               options: dict[str, Any]) -> None:
    """cfn-lint (errors and warnings, two regions) finds nothing in the template."""
    assert lint(render(template(**options), fmt)) == []


def test_cfn_lint_as_run_here_reports_a_broken_template() -> None:
    """The lint check can fail: a function timeout above the queue's visibility is reported."""
    broken = template()
    broken["Resources"]["TapFunction"]["Properties"]["Timeout"] = 600
    rules = {match.rule.id for match in lint(render(broken, "yaml"))}
    assert "E3505" in rules  # SQS visibility timeout below the function's timeout


def test_tap_resources_are_those_of_tap_install() -> None:
    """Queue names, rule name, pattern, target, DLQ redrive and retries are the tap's own."""
    body = template()
    queues = resources_of(body, "AWS::SQS::Queue")
    props = queues["TapQueue"]["Properties"]
    assert (props["QueueName"], queues["TapDeadLetterQueue"]["Properties"]["QueueName"]) == \
        tap.queue_names(BUS)
    assert props["VisibilityTimeout"] == tap.VISIBILITY_TIMEOUT_SECONDS
    assert props["RedrivePolicy"] == {"deadLetterTargetArn": {"Fn::GetAtt": [
        "TapDeadLetterQueue", "Arn"]}, "maxReceiveCount": tap.MAX_RECEIVE_COUNT}
    rule = body["Resources"]["TapRule"]["Properties"]
    assert (rule["Name"], rule["EventBusName"], rule["EventPattern"]) == (
        tap.RULE_NAME, BUS, tap.MATCH_ALL_PATTERN)
    [target] = rule["Targets"]
    assert target == {"Id": tap.TARGET_ID, "Arn": {"Fn::GetAtt": ["TapQueue", "Arn"]},
                      "DeadLetterConfig": {"Arn": {"Fn::GetAtt": ["TapDeadLetterQueue", "Arn"]}},
                      "RetryPolicy": tap.TARGET_RETRY_POLICY}


@pytest.mark.parametrize("queue", ["TapQueue", "TapDeadLetterQueue"])
def test_queue_policy_lets_only_eventbridge_send_from_the_tap_rule(queue: str) -> None:
    """Each queue accepts sqs:SendMessage from events.amazonaws.com for the rule's ARN only."""
    policy = template()["Resources"][f"{queue}Policy"]["Properties"]
    assert policy["Queues"] == [{"Ref": queue}]
    [statement] = policy["PolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert (statement["Action"], statement["Resource"]) == (
        "sqs:SendMessage", {"Fn::GetAtt": [queue, "Arn"]})
    assert statement["Condition"] == {"ArnEquals": {"aws:SourceArn": {
        "Fn::GetAtt": ["TapRule", "Arn"]}}}


def test_functions_run_eventscope_handlers_within_the_queue_visibility() -> None:
    """Each function runs its handler; the tap function's timeout fits in the visibility."""
    functions = resources_of(template(), "AWS::Lambda::Function")
    assert {name: f["Properties"]["Handler"] for name, f in functions.items()} == {
        "TapFunction": TAP_HANDLER, "LogsFunction": LOGS_HANDLER}
    assert FUNCTION_TIMEOUT_SECONDS < tap.VISIBILITY_TIMEOUT_SECONDS


@pytest.mark.parametrize("handler", [TAP_HANDLER, LOGS_HANDLER])
def test_handlers_named_by_the_template_exist(handler: str) -> None:
    """Lambda imports the module and calls the attribute the template names."""
    import importlib

    module, attribute = handler.rsplit(".", 1)
    assert callable(getattr(importlib.import_module(module), attribute, None)), handler


def test_functions_log_outside_the_subscribed_prefix() -> None:
    """The functions' own log groups are not under --log-prefix: no feedback loop."""
    body = template()
    for group in resources_of(body, "AWS::Logs::LogGroup").values():
        name = group["Properties"]["LogGroupName"]["Fn::Sub"]
        assert name.startswith(OWN_LOG_PREFIX) and not name.startswith("/aws/lambda/")


def test_event_source_mapping_reports_batch_item_failures() -> None:
    """The tap mapping reads the tap queue and lets the handler return failed messages."""
    mapping = template()["Resources"]["TapEventSourceMapping"]["Properties"]
    assert mapping["EventSourceArn"] == {"Fn::GetAtt": ["TapQueue", "Arn"]}
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


def test_logs_function_keeps_failed_pushes_in_its_dead_letter_queue() -> None:
    """A push failing past Lambda's retries goes to a queue the logs role may only send to."""
    body = template()
    dlq = {"Fn::GetAtt": ["LogsDeadLetterQueue", "Arn"]}
    assert body["Resources"]["LogsFunction"]["Properties"]["DeadLetterConfig"] == {
        "TargetArn": dlq}
    sends = [s for s in role_statements(body["Resources"]["LogsFunctionRole"])
             if "sqs:SendMessage" in s["Action"]]
    assert sends and all(s["Resource"] == dlq for s in sends)


def test_logs_permission_is_for_cloudwatch_logs_from_the_prefix_only() -> None:
    """Only logs.amazonaws.com, from this account's log groups under the prefix."""
    permission = template(log_prefix="/aws/lambda/shop-")["Resources"][
        "LogsInvokePermission"]["Properties"]
    assert permission["Principal"] == "logs.amazonaws.com"
    assert permission["SourceAccount"] == {"Ref": "AWS::AccountId"}
    assert permission["SourceArn"]["Fn::Sub"].endswith(":log-group:/aws/lambda/shop-*")


def test_listed_log_groups_get_one_subscription_filter_each() -> None:
    groups = ("/aws/lambda/orders", "/aws/lambda/payments")
    filters = resources_of(template(log_groups=groups), "AWS::Logs::SubscriptionFilter")
    assert sorted(f["Properties"]["LogGroupName"] for f in filters.values()) == list(groups)
    assert not resources_of(template(), "AWS::Logs::SubscriptionFilter")
    twice = template(log_groups=(groups[0], groups[0]))
    assert len(resources_of(twice, "AWS::Logs::SubscriptionFilter")) == 1


def iam_table() -> dict[str, set[str]]:
    """docs/collectors.md's IAM table: first cell -> the `service:Action` names of the row."""
    text = (ROOT / "docs/collectors.md").read_text(encoding="utf-8")
    section = text.split("## IAM permissions", 1)[1].split("\n## ", 1)[0]
    rows: dict[str, set[str]] = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 2 and not set(cells[0]) <= set("- "):
            rows[cells[0]] = set(re.findall(r"`([a-z0-9-]+:[A-Za-z]+)`", cells[1]))
    return rows


def test_every_role_action_is_listed_in_the_docs_iam_table_for_its_role() -> None:
    """Least privilege as documented: no action in a role that its docs row does not list."""
    table = iam_table()
    roles = resources_of(template(), "AWS::IAM::Role")
    assert set(roles) == set(ROLE_ROWS)
    for name, role in roles.items():
        actions = {a for s in role_statements(role) for a in as_list(s["Action"])}
        assert actions - set(VPC_ACTIONS) <= table[ROLE_ROWS[name]], name
        assert actions & set(VPC_ACTIONS) <= table[VPC_ROW], name


def test_no_wildcard_resource_but_the_vpc_network_interfaces() -> None:
    """Every statement names its resource, except the ENI actions AWS grants only on `*`."""
    for role in resources_of(template(), "AWS::IAM::Role").values():
        for statement in role_statements(role):
            if "*" in as_list(statement["Resource"]):
                assert as_list(statement["Action"]) == VPC_ACTIONS
            else:
                assert all("*" not in json.dumps(r) for r in as_list(statement["Resource"]))


def test_tap_role_reads_only_the_tap_queue() -> None:
    """The tap role's SQS actions are on the tap queue's ARN, not the DLQ or any queue."""
    role = template()["Resources"]["TapFunctionRole"]
    sqs = [s for s in role_statements(role) if any(a.startswith("sqs:") for a in s["Action"])]
    assert sqs and all(s["Resource"] == {"Fn::GetAtt": ["TapQueue", "Arn"]} for s in sqs)


def test_database_url_comes_from_the_secret_by_dynamic_reference() -> None:
    env = template()["Resources"]["TapFunction"]["Properties"]["Environment"]["Variables"]
    assert env["EVENTSCOPE_DB"] == {
        "Fn::Sub": "{{resolve:secretsmanager:${DatabaseSecretArn}:SecretString}}"}
    assert env["EVENTSCOPE_SAMPLE"] == {"Ref": "SampleRate"}
    assert int(env["EVENTSCOPE_ROLLUP_LAG_MS"]) == 120_000  # read by Store at open


# -- any options: a template or a DeployError ------------------------------------------------

OPTION_VALUES = st.fixed_dictionaries({
    "bus": st.one_of(st.sampled_from(["default", "shop-bus", "aws.partner/x/y"]), st.text()),
    "sample_rate": st.floats(allow_nan=True, allow_infinity=True),
    "log_prefix": st.one_of(st.sampled_from(["/aws/lambda/", "/", "/eventscope/x"]), st.text()),
    "log_groups": st.lists(st.one_of(st.just("/aws/lambda/orders"), st.text()),
                           max_size=3).map(tuple),
    "payload_days": st.integers(-2, 1000), "raw_days": st.integers(-2, 1000),
    "rollup_days": st.integers(-2, 1000),
})


@settings(max_examples=150, deadline=None)
@given(OPTION_VALUES)
def test_any_options_give_a_template_or_a_deploy_error(options: dict[str, Any]) -> None:
    """Never another exception; a template built reads back the same from YAML and JSON."""
    try:
        body = build_template(StackOptions(**options))
    except DeployError as error:
        assert str(error) and "\n" not in str(error)
        return
    assert 0 <= options["sample_rate"] <= 1
    assert yaml.safe_load(render(body, "yaml")) == body
    assert json.loads(render(body, "json")) == body


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.floats(min_value=0, max_value=1), st.integers(1, 30), st.integers(0, 400))
def test_valid_options_become_the_parameters_defaults(rate: float, payload: int,
                                                     extra: int) -> None:
    """The sample rate and retention days given are the defaults the stack deploys with."""
    body = template(sample_rate=rate, payload_days=payload, raw_days=payload + extra,
                    rollup_days=payload + 2 * extra)
    defaults = {name: p.get("Default") for name, p in body["Parameters"].items()}
    assert (defaults["SampleRate"], defaults["PayloadRetentionDays"],
            defaults["RawRetentionDays"], defaults["RollupRetentionDays"]) == (
        rate, payload, payload + extra, payload + 2 * extra)


# -- the command --------------------------------------------------------------------------


def run(*args: str) -> Any:
    return CliRunner().invoke(main, ["deploy", "template", *args])


def test_command_prints_a_yaml_template_by_default() -> None:
    result = run("--bus", BUS)
    assert result.exit_code == 0, result.output
    assert yaml.safe_load(result.stdout) == template()


def test_command_prints_json_on_request() -> None:
    result = run("--bus", BUS, "--format", "json", "--sample-rate", "0.5")
    assert result.exit_code == 0
    assert json.loads(result.stdout) == template(sample_rate=0.5)


@pytest.mark.parametrize("args, says", [
    (["--sample-rate", "1.5"], "--sample-rate 1.5 is not between 0 and 1"),
    (["--sample-rate", "-0.1"], "--sample-rate -0.1 is not between 0 and 1"),
    (["--sample-rate", "nan"], "--sample-rate nan is not between 0 and 1"),
    (["--log-prefix", "/"], "would cover the functions' own log groups"),
    (["--log-group", "/other/group"], "is not a log group under --log-prefix"),
    (["--payload-days", "40"], "--payload-days <= --raw-days <= --rollup-days"),
    (["--raw-days", "0"], "retention days must be at least 1"),
    (["--bus", "shop bus"], "is not an event bus name"),
], ids=["rate-above-1", "rate-negative", "rate-nan", "prefix-covers-own-logs",
        "group-outside-prefix", "payload-longer-than-raw", "zero-days", "bad-bus"])
def test_bad_options_are_one_error_line_and_exit_2(args: list[str], says: str) -> None:
    result = run(*args)
    assert result.exit_code == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and says in lines[0], lines


def test_command_without_boto3_names_the_aws_extra(tmp_path: Path) -> None:
    """The template reuses the tap's definitions (collectors/tap.py), so it needs `aws`."""
    result = run_without(AWS, "deploy", "template", cwd=tmp_path)
    assert (result.returncode, result.stderr) == (2, needs("deploy", "aws"))


def test_command_is_in_the_readme_and_the_docs() -> None:
    for page in ("README.md", "docs/collectors.md"):
        assert "eventscope deploy template" in (ROOT / page).read_text(encoding="utf-8")


# -- deployed against moto's CloudFormation (HTTP) ------------------------------------------

# moto 5.2.5's CloudFormation skips these resource types with a warning (the stack still
# completes): their assertions below are skipped with this reason, the rest run.
MOTO_LACKS = {"AWS::SQS::QueuePolicy", "AWS::Logs::SubscriptionFilter"}
MOTO_SKIPS_TYPE = "ignore:Tried to parse AWS.*not supported by moto"
SUBSCRIBED_GROUP = "/aws/lambda/orders"


@pytest.fixture
def deployed(aws: Any) -> dict[str, Any]:  # noqa: F811
    """The stack created on moto: a bus, a zip in S3, a secret, a log group to subscribe."""
    return create_stack(aws)


def create_stack(aws: Any, *extra: dict[str, str]) -> dict[str, Any]:  # noqa: F811
    """Create the stack (with EXTRA parameters) and what it needs, on moto."""
    cfn, s3, events, secrets, logs = clients(aws, "cloudformation", "s3", "events",
                                             "secretsmanager", "logs")
    events.create_event_bus(Name=BUS)
    s3.create_bucket(Bucket="eventscope-code")
    package = io.BytesIO()
    with zipfile.ZipFile(package, "w") as archive:
        archive.writestr("eventscope/__init__.py", "")
    s3.put_object(Bucket="eventscope-code", Key="eventscope.zip", Body=package.getvalue())
    secret = secrets.create_secret(Name="eventscope-db",
                                   SecretString="postgresql://es@db.internal:5432/es")["ARN"]
    logs.create_log_group(logGroupName=SUBSCRIBED_GROUP)
    body = render(template(log_groups=(SUBSCRIBED_GROUP,)), "yaml")
    stack_id = cfn.create_stack(StackName=STACK, TemplateBody=body,
                                Capabilities=["CAPABILITY_IAM"], Parameters=[
        {"ParameterKey": "DatabaseSecretArn", "ParameterValue": secret},
        {"ParameterKey": "CodeS3Bucket", "ParameterValue": "eventscope-code"},
        {"ParameterKey": "CodeS3Key", "ParameterValue": "eventscope.zip"}, *extra,
    ])["StackId"]
    return {"aws": aws, "cfn": cfn, "body": body, "secret": secret, "stack_id": stack_id}


def stack(cfn: Any, name: str = STACK) -> dict[str, Any]:
    found: dict[str, Any] = cfn.describe_stacks(StackName=name)["Stacks"][0]
    return found


def outputs(cfn: Any) -> dict[str, str]:
    return {o["OutputKey"]: o["OutputValue"] for o in stack(cfn).get("Outputs", [])}


def physical_ids(cfn: Any) -> dict[str, str]:
    return {r["LogicalResourceId"]: r.get("PhysicalResourceId", "")
            for r in cfn.list_stack_resources(StackName=STACK)["StackResourceSummaries"]}


def functions_by_handler(lam: Any) -> dict[str, dict[str, Any]]:
    return {f["Handler"]: f for f in lam.list_functions()["Functions"]}


@pytest.mark.filterwarnings(MOTO_SKIPS_TYPE)
def test_stack_creates_the_queues_with_their_redrive(deployed: dict[str, Any]) -> None:
    cfn = deployed["cfn"]
    [sqs] = clients(deployed["aws"], "sqs")
    assert stack(cfn)["StackStatus"] == "CREATE_COMPLETE"
    main_name, dlq_name = tap.queue_names(BUS)
    assert [outputs(cfn)[key].rsplit("/", 1)[1] for key in (
        "TapQueueUrl", "TapDeadLetterQueueUrl")] == [main_name, dlq_name]
    queue_url = sqs.get_queue_url(QueueName=main_name)["QueueUrl"]
    dlq_url = sqs.get_queue_url(QueueName=dlq_name)["QueueUrl"]
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])[
        "Attributes"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    assert json.loads(attributes["RedrivePolicy"]) == {
        "deadLetterTargetArn": dlq_arn, "maxReceiveCount": tap.MAX_RECEIVE_COUNT}
    assert (attributes["VisibilityTimeout"], attributes["MessageRetentionPeriod"],
            attributes["MaximumMessageSize"]) == (str(tap.VISIBILITY_TIMEOUT_SECONDS),
                                                  str(tap.RETENTION_SECONDS),
                                                  str(tap.MAX_MESSAGE_BYTES))
    assert sqs.list_queue_tags(QueueUrl=queue_url)["Tags"][tap.SAMPLE_TAG_KEY] == "1.0"


@pytest.mark.filterwarnings(MOTO_SKIPS_TYPE)
def test_stack_creates_the_rule_and_its_queue_target(deployed: dict[str, Any]) -> None:
    [events, sqs] = clients(deployed["aws"], "events", "sqs")
    rule = events.describe_rule(Name=tap.RULE_NAME, EventBusName=BUS)
    assert json.loads(rule["EventPattern"]) == tap.MATCH_ALL_PATTERN
    assert rule["State"] == "ENABLED"
    arn = {url.rsplit("/", 1)[1]: sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        for url in sqs.list_queues()["QueueUrls"]}
    main_name, dlq_name = tap.queue_names(BUS)
    [target] = events.list_targets_by_rule(Rule=tap.RULE_NAME, EventBusName=BUS)["Targets"]
    assert target == {"Id": tap.TARGET_ID, "Arn": arn[main_name],
                      "DeadLetterConfig": {"Arn": arn[dlq_name]},
                      "RetryPolicy": tap.TARGET_RETRY_POLICY}


@pytest.mark.filterwarnings(MOTO_SKIPS_TYPE)
def test_stack_creates_both_functions_with_their_settings(deployed: dict[str, Any]) -> None:
    cfn = deployed["cfn"]
    [lam] = clients(deployed["aws"], "lambda")
    functions = functions_by_handler(lam)
    assert set(functions) == {TAP_HANDLER, LOGS_HANDLER}
    assert {functions[TAP_HANDLER]["FunctionArn"], functions[LOGS_HANDLER]["FunctionArn"]} == {
        outputs(cfn)["TapFunctionArn"], outputs(cfn)["LogsFunctionArn"]}
    for function in functions.values():
        assert function["Runtime"] == "python3.12"
        assert function["Timeout"] == FUNCTION_TIMEOUT_SECONDS
        env = function["Environment"]["Variables"]
        # moto does not resolve dynamic references: the variable keeps the reference itself,
        # which AWS replaces by the secret's value (checked: it names the stack's secret).
        assert env["EVENTSCOPE_DB"] == \
            f"{{{{resolve:secretsmanager:{deployed['secret']}:SecretString}}}}"
        assert float(env["EVENTSCOPE_SAMPLE"]) == 1.0
        assert "EVENTSCOPE_PII_KEY" not in env  # no PiiKeySecretArn: the condition drops it
    logs_function = lam.get_function(FunctionName=functions[LOGS_HANDLER]["FunctionName"])
    assert logs_function["Concurrency"] == {"ReservedConcurrentExecutions": 10}


@pytest.mark.filterwarnings(MOTO_SKIPS_TYPE)
def test_stack_maps_the_tap_queue_to_the_tap_function(deployed: dict[str, Any]) -> None:
    [lam, sqs] = clients(deployed["aws"], "lambda", "sqs")
    [mapping] = lam.list_event_source_mappings()["EventSourceMappings"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=outputs(deployed["cfn"])["TapQueueUrl"],
                                         AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    assert mapping["EventSourceArn"] == queue_arn
    assert mapping["FunctionArn"] == functions_by_handler(lam)[TAP_HANDLER]["FunctionArn"]
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert (mapping["BatchSize"], mapping["MaximumBatchingWindowInSeconds"],
            mapping["ScalingConfig"]) == (100, 5, {"MaximumConcurrency": 10})
    assert mapping["State"] == "Enabled"


@pytest.mark.filterwarnings(MOTO_SKIPS_TYPE)
def test_stack_gives_the_logs_function_a_dead_letter_queue(deployed: dict[str, Any]) -> None:
    """The logs DLQ exists (an output); the function points at it where moto says so."""
    [sqs, lam] = clients(deployed["aws"], "sqs", "lambda")
    name = outputs(deployed["cfn"])["LogsDeadLetterQueueUrl"].rsplit("/", 1)[1]
    url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"]
    function = functions_by_handler(lam)[LOGS_HANDLER]
    if "DeadLetterConfig" not in function:
        pytest.skip("not checked: moto's Lambda keeps no DeadLetterConfig (the queue exists)")
    assert function["DeadLetterConfig"] == {"TargetArn": arn}


@pytest.mark.filterwarnings(MOTO_SKIPS_TYPE)
def test_stack_lets_cloudwatch_logs_invoke_the_logs_function(deployed: dict[str, Any]) -> None:
    [lam] = clients(deployed["aws"], "lambda")
    name = functions_by_handler(lam)[LOGS_HANDLER]["FunctionName"]
    [statement] = json.loads(lam.get_policy(FunctionName=name)["Policy"])["Statement"]
    assert statement["Principal"] == {"Service": "logs.amazonaws.com"}
    assert statement["Action"] == "lambda:InvokeFunction"
    assert statement["Condition"]["ArnLike"]["AWS:SourceArn"] == \
        "arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/*"


@pytest.mark.filterwarnings(MOTO_SKIPS_TYPE)
def test_stack_roles_hold_the_template_policies(deployed: dict[str, Any]) -> None:
    """Each function's role carries exactly the inline policy the template gives it."""
    [iam, lam] = clients(deployed["aws"], "iam", "lambda")
    for function in lam.list_functions()["Functions"]:
        role_name = function["Role"].rsplit("/", 1)[1]
        names = iam.list_role_policies(RoleName=role_name)["PolicyNames"]
        assert len(names) == 1  # no VPC parameters: no network-interface policy
        document = iam.get_role_policy(RoleName=role_name, PolicyName=names[0])[
            "PolicyDocument"]
        if isinstance(document, str):  # moto keeps a template's policy as its Python repr
            document = ast.literal_eval(document)
        actions = {a for s in document["Statement"] for a in as_list(s["Action"])}
        expected = ({"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility",
                     "sqs:GetQueueAttributes"} if function["Handler"] == TAP_HANDLER
                    else {"sqs:SendMessage"})
        assert actions == expected | {"logs:CreateLogStream", "logs:PutLogEvents"}


@pytest.mark.filterwarnings(MOTO_SKIPS_TYPE)
def test_stack_in_a_vpc_with_a_pii_key(aws: Any) -> None:  # noqa: F811
    """Subnets add the VpcConfig and the network-interface policy; a PII key secret its
    variable: the conditional branches CloudFormation takes when those parameters are set."""
    ec2, secrets, lam, iam = clients(aws, "ec2", "secretsmanager", "lambda", "iam")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(GroupName="eventscope", Description="eventscope",
                                      VpcId=vpc)["GroupId"]
    key = secrets.create_secret(Name="eventscope-pii-key", SecretString="k" * 32)["ARN"]
    create_stack(aws, {"ParameterKey": "SubnetIds", "ParameterValue": subnet},
                 {"ParameterKey": "SecurityGroupIds", "ParameterValue": group},
                 {"ParameterKey": "PiiKeySecretArn", "ParameterValue": key})
    functions = lam.list_functions()["Functions"]
    assert len(functions) == 2
    for function in functions:
        assert function["VpcConfig"]["SubnetIds"] == [subnet]
        assert function["VpcConfig"]["SecurityGroupIds"] == [group]
        assert function["Environment"]["Variables"]["EVENTSCOPE_PII_KEY"] == \
            f"{{{{resolve:secretsmanager:{key}:SecretString}}}}"
        role_name = function["Role"].rsplit("/", 1)[1]
        assert sorted(iam.list_role_policies(RoleName=role_name)["PolicyNames"]) == [
            f"eventscope-{'tap' if function['Handler'] == TAP_HANDLER else 'logs'}",
            "vpc-network-interfaces"]


@pytest.mark.filterwarnings(MOTO_SKIPS_TYPE)
def test_stack_tap_is_found_by_name_and_not_adopted_by_tap_install(
        deployed: dict[str, Any]) -> None:
    """The tap commands find the stack's queue (redrive, collect) but never change it."""
    [sqs, events] = clients(deployed["aws"], "sqs", "events")
    url, rate = tap.find_tap_queue(sqs, BUS)
    assert url.endswith("/" + tap.queue_names(BUS)[0]) and rate == 1.0
    with pytest.raises(tap.TapError, match="not created by eventscope"):
        tap.install_tap(sqs, events, BUS)
    report = tap.remove_tap(sqs, events, BUS)
    assert report.removed == [] and len(report.not_ours) == 3
    assert all(sqs.get_queue_url(QueueName=name) for name in tap.queue_names(BUS))


@pytest.mark.parametrize("logical_id, kind", [
    ("TapQueuePolicy", "AWS::SQS::QueuePolicy"),
    ("LogsSubscription1", "AWS::Logs::SubscriptionFilter"),
])
@pytest.mark.filterwarnings(MOTO_SKIPS_TYPE)
def test_stack_resources_moto_may_lack(deployed: dict[str, Any], logical_id: str,
                                       kind: str) -> None:
    """The queue policy and the subscription filter exist, where moto implements them."""
    if logical_id not in physical_ids(deployed["cfn"]):
        assert kind in MOTO_LACKS
        pytest.skip(f"not checked: moto's CloudFormation does not implement {kind}")
    [sqs, logs] = clients(deployed["aws"], "sqs", "logs")
    if kind == "AWS::SQS::QueuePolicy":
        url = sqs.get_queue_url(QueueName=tap.queue_names(BUS)[0])["QueueUrl"]
        policy = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["Policy"])
        assert "events.amazonaws.com" in policy["Attributes"]["Policy"]
    else:
        found = logs.describe_subscription_filters(logGroupName=SUBSCRIBED_GROUP)
        assert len(found["subscriptionFilters"]) == 1


@pytest.mark.filterwarnings(MOTO_SKIPS_TYPE)
def test_stack_update_changes_the_sample_rate_and_batch(deployed: dict[str, Any]) -> None:
    """Changed parameters reach the functions' environment, the mapping, the prune command."""
    cfn = deployed["cfn"]
    [lam] = clients(deployed["aws"], "lambda")
    keep = [{"ParameterKey": k, "UsePreviousValue": True}
            for k in ("DatabaseSecretArn", "CodeS3Bucket", "CodeS3Key")]
    cfn.update_stack(StackName=STACK, TemplateBody=deployed["body"],
                     Capabilities=["CAPABILITY_IAM"], Parameters=[
                         *keep, {"ParameterKey": "SampleRate", "ParameterValue": "0.25"},
                         {"ParameterKey": "BatchSize", "ParameterValue": "50"},
                         {"ParameterKey": "RawRetentionDays", "ParameterValue": "14"}])
    assert stack(cfn)["StackStatus"] == "UPDATE_COMPLETE"
    for function in lam.list_functions()["Functions"]:
        assert math.isclose(float(function["Environment"]["Variables"]["EVENTSCOPE_SAMPLE"]),
                            0.25)
    [mapping] = lam.list_event_source_mappings()["EventSourceMappings"]
    assert mapping["BatchSize"] == 50
    assert outputs(cfn)["PruneCommand"] == \
        "eventscope prune --payload-days 7 --raw-days 14 --rollup-days 400"
    # (moto does not update a queue's tags on a stack update: the eventscope:sample tag is
    # not checked here.)


@pytest.mark.filterwarnings(MOTO_SKIPS_TYPE)
def test_stack_delete_removes_what_it_created(deployed: dict[str, Any]) -> None:
    cfn = deployed["cfn"]
    [sqs, events, lam, iam, logs] = clients(deployed["aws"], "sqs", "events", "lambda", "iam",
                                            "logs")
    cfn.delete_stack(StackName=STACK)
    # (list_stacks, not describe_stacks: moto evaluates a deleted stack's outputs again, which
    # creates the queues they name anew.)
    [summary] = cfn.list_stacks(StackStatusFilter=["DELETE_COMPLETE"])["StackSummaries"]
    assert summary["StackId"] == deployed["stack_id"]
    assert sqs.list_queues().get("QueueUrls", []) == []  # the tap's two and the logs DLQ
    assert events.list_rules(EventBusName=BUS)["Rules"] == []
    assert lam.list_functions()["Functions"] == []
    assert lam.list_event_source_mappings()["EventSourceMappings"] == []
    assert iam.list_roles()["Roles"] == []
    groups = [g["logGroupName"] for g in logs.describe_log_groups()["logGroups"]]
    assert groups == [SUBSCRIBED_GROUP]  # the functions' own groups are gone, not the app's
