"""The deployable stack: an AWS CloudFormation template for eventscope's collectors on Lambda.

Owns building the template as a plain dict (`build_template`, a pure function of
`StackOptions`: no AWS call, no file) and writing it as YAML or JSON (`render`). The stack is
the tap of `eventscope tap install` (queue, dead-letter queue, queue policy, match-all rule:
the same names and settings, taken from `eventscope.collectors.tap`), the tap function on an
SQS event-source mapping, the logs function that CloudWatch Logs subscription filters push to,
and one least-privilege IAM role per function (the actions docs/collectors.md lists).

The PostgreSQL URL is the `SecretString` of a Secrets Manager secret, put into `EVENTSCOPE_DB`
by a CloudFormation dynamic reference: the handlers read `EVENTSCOPE_DB` as every eventscope
command does, so the functions need no Secrets Manager permission and no call at cold start;
the price is that the resolved URL shows in the function's configuration to whoever may read
it, and that a rotated secret reaches the functions at the next stack update.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

import yaml

from eventscope.collectors.tap import (MATCH_ALL_PATTERN, MAX_MESSAGE_BYTES, MAX_RECEIVE_COUNT,
                                       RETENTION_SECONDS, RULE_DESCRIPTION, RULE_NAME,
                                       SAMPLE_TAG_KEY, TARGET_ID, TARGET_RETRY_POLICY,
                                       VISIBILITY_TIMEOUT_SECONDS, queue_names, queue_policy)
from eventscope.errors import EventscopeError

TAP_HANDLER = "eventscope.collectors.lambda_handler"
LOGS_HANDLER = "eventscope.collectors.logs_lambda_handler"
RUNTIME = "python3.12"
# The functions log to their own groups under this prefix, outside /aws/lambda/, so that
# subscribing /aws/lambda/ to the logs function never feeds it its own records.
OWN_LOG_PREFIX = "/eventscope/"
OWN_LOG_RETENTION_DAYS = 14
# Under the queue's visibility timeout, as Lambda requires of an SQS event source.
FUNCTION_TIMEOUT_SECONDS = VISIBILITY_TIMEOUT_SECONDS // 2
STACK_TAG_KEY = "eventscope:stack"
PRUNE_COMMAND = ("eventscope prune --payload-days ${PayloadRetentionDays} --raw-days "
                 "${RawRetentionDays} --rollup-days ${RollupRetentionDays}")
# Lambda's network interfaces in a VPC: AWS's own AWSLambdaVPCAccessExecutionRole grants these
# on every resource; ec2:DescribeNetworkInterfaces has no resource-level permissions at all.
VPC_ACTIONS = ["ec2:CreateNetworkInterface", "ec2:DescribeNetworkInterfaces",
               "ec2:DeleteNetworkInterface", "ec2:AssignPrivateIpAddresses",
               "ec2:UnassignPrivateIpAddresses"]
TAP_QUEUE_ACTIONS = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility",
                     "sqs:GetQueueAttributes"]
OWN_LOG_ACTIONS = ["logs:CreateLogStream", "logs:PutLogEvents"]
LOGS_DLQ_ACTIONS = ["sqs:SendMessage"]
LOGS_DLQ_RETENTION_SECONDS = 14 * 24 * 3600
_BUS_NAME = re.compile(r"[/.\-_A-Za-z0-9]{1,256}")
_LOG_GROUP_NAME = re.compile(r"[.\-_/#A-Za-z0-9]{1,512}")


class DeployError(EventscopeError):
    """The template cannot be built from these options."""


@dataclass(frozen=True)
class StackOptions:
    """What `eventscope deploy template` bakes into the template (the rest are parameters).

    `sample_rate` and the retention days are the parameters' defaults; `log_groups` get one
    subscription filter each in the stack."""

    bus: str = "default"
    sample_rate: float = 1.0
    log_prefix: str = "/aws/lambda/"
    log_groups: tuple[str, ...] = ()
    payload_days: int = 7
    raw_days: int = 30
    rollup_days: int = 400


def validate(options: StackOptions) -> None:
    """Raise `DeployError` naming the first option the template cannot be built from."""
    if not _BUS_NAME.fullmatch(options.bus):
        raise DeployError(f"--bus {options.bus!r} is not an event bus name "
                          "(letters, digits, . - _ /, at most 256)")
    rate = options.sample_rate
    if math.isnan(rate) or not 0 <= rate <= 1:
        raise DeployError(f"--sample-rate {rate} is not between 0 and 1")
    if not _LOG_GROUP_NAME.fullmatch(options.log_prefix):
        raise DeployError(f"--log-prefix {options.log_prefix!r} is not a log group name prefix")
    if _feeds_itself(options.log_prefix):
        raise DeployError(f"--log-prefix {options.log_prefix!r} would cover the functions' "
                          f"own log groups ({OWN_LOG_PREFIX}...): the logs function would "
                          "read its own records")
    for group in options.log_groups:
        if not _LOG_GROUP_NAME.fullmatch(group) or not group.startswith(options.log_prefix):
            raise DeployError(f"--log-group {group!r} is not a log group under --log-prefix "
                              f"{options.log_prefix!r} (the logs function may only be invoked "
                              "for those)")
    days = (options.payload_days, options.raw_days, options.rollup_days)
    if min(days) < 1:
        raise DeployError("retention days must be at least 1")
    if not options.payload_days <= options.raw_days <= options.rollup_days:
        raise DeployError("retention must keep payloads no longer than raw rows, and raw rows "
                          "no longer than rollups (--payload-days <= --raw-days <= "
                          "--rollup-days)")


def build_template(options: StackOptions) -> dict[str, Any]:
    """The CloudFormation template (a JSON-ready dict) for OPTIONS; `DeployError` if invalid."""
    validate(options)
    resources: dict[str, Any] = {}
    resources.update(_tap_resources(options))
    resources.update(_function("Tap", TAP_HANDLER, _tap_statements()))
    resources["TapEventSourceMapping"] = _event_source_mapping()
    resources["LogsDeadLetterQueue"] = _logs_dead_letter_queue()
    resources.update(_function("Logs", LOGS_HANDLER, _logs_statements(), {
        "ReservedConcurrentExecutions": {"Ref": "LogsReservedConcurrency"},
        "DeadLetterConfig": {"TargetArn": {"Fn::GetAtt": ["LogsDeadLetterQueue", "Arn"]}}}))
    resources["LogsInvokePermission"] = _logs_permission(options.log_prefix)
    groups = list(dict.fromkeys(options.log_groups))  # a group named twice: one filter
    for index, group in enumerate(groups, start=1):
        resources[f"LogsSubscription{index}"] = _subscription_filter(group)
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": f"eventscope collectors for event bus {options.bus}: the tap queue "
                       "(+DLQ) and rule, the tap and logs Lambda functions, their roles",
        "Metadata": {"eventscope": {"bus": options.bus, "logPrefix": options.log_prefix,
                                    "logGroups": groups}},
        "Parameters": _parameters(options),
        "Conditions": {
            "InVpc": {"Fn::Not": [{"Fn::Equals": [{"Fn::Join": ["", {"Ref": "SubnetIds"}]},
                                                  ""]}]},
            "HasPiiKey": {"Fn::Not": [{"Fn::Equals": [{"Ref": "PiiKeySecretArn"}, ""]}]},
        },
        "Resources": resources,
        "Outputs": _outputs(),
    }


def render(template: dict[str, Any], fmt: str) -> str:
    """TEMPLATE as CloudFormation reads it: `json` (indented) or `yaml` (long-form intrinsics)."""
    if fmt == "json":
        return json.dumps(template, indent=2) + "\n"
    if fmt == "yaml":
        return yaml.dump(template, Dumper=_NoAliases, sort_keys=False, width=100,
                         default_flow_style=False)
    raise DeployError(f"unknown format {fmt!r} (yaml or json)")


class _NoAliases(yaml.SafeDumper):
    """A YAML dumper that writes repeated values out instead of as anchors and aliases."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _feeds_itself(prefix: str) -> bool:
    return OWN_LOG_PREFIX.startswith(prefix) or prefix.startswith(OWN_LOG_PREFIX)


def _parameters(options: StackOptions) -> dict[str, Any]:
    def days(default: int, what: str) -> dict[str, Any]:
        return {"Type": "Number", "Default": default, "MinValue": 1,
                "Description": f"Days eventscope keeps {what} (output PruneCommand)."}

    return {
        "DatabaseSecretArn": {
            "Type": "String", "AllowedPattern": "arn:aws[a-z-]*:secretsmanager:.+",
            "Description": "ARN of the Secrets Manager secret whose SecretString is the "
                           "PostgreSQL URL (postgresql://user:password@host:5432/db)."},
        "PiiKeySecretArn": {
            "Type": "String", "Default": "",
            "AllowedPattern": "(arn:aws[a-z-]*:secretsmanager:.+)?",
            "Description": "Optional: ARN of a secret holding EVENTSCOPE_PII_KEY, the HMAC "
                           "key of PII tokens (empty: the key kept in the store)."},
        "SampleRate": {
            "Type": "Number", "Default": options.sample_rate, "MinValue": 0, "MaxValue": 1,
            "Description": "Fraction of the bus's events stored (by event id)."},
        "PayloadRetentionDays": days(options.payload_days, "raw event payloads"),
        "RawRetentionDays": days(options.raw_days, "events, invocations and deliveries"),
        "RollupRetentionDays": days(options.rollup_days, "rollups"),
        "CodeS3Bucket": {"Type": "String", "MinLength": 3,
                         "Description": "S3 bucket holding the functions' zip package."},
        "CodeS3Key": {"Type": "String", "MinLength": 1,
                      "Description": "S3 key of the zip (eventscope[aws,postgres] for "
                                     f"{RUNTIME}, x86_64)."},
        "MemorySize": {"Type": "Number", "Default": 512, "MinValue": 128, "MaxValue": 10240,
                       "Description": "Memory of each function, MB."},
        "BatchSize": {"Type": "Number", "Default": 100, "MinValue": 1, "MaxValue": 10000,
                      "Description": "Most tap messages per invocation."},
        "MaximumBatchingWindowInSeconds": {
            "Type": "Number", "Default": 5, "MinValue": 1, "MaxValue": 300,
            "Description": "Longest wait to fill a batch (at least 1 when BatchSize > 10)."},
        "MaximumConcurrency": {
            "Type": "Number", "Default": 10, "MinValue": 2, "MaxValue": 1000,
            "Description": "Most concurrent tap invocations: each holds one PostgreSQL "
                           "connection."},
        "LogsReservedConcurrency": {
            "Type": "Number", "Default": 10, "MinValue": 1, "MaxValue": 1000,
            "Description": "Concurrency reserved for (and capping) the logs function: each "
                           "invocation holds one PostgreSQL connection; throttled pushes are "
                           "retried by Lambda."},
        "SubnetIds": {"Type": "CommaDelimitedList", "Default": "",
                      "Description": "Optional: subnets to run the functions in (the "
                                     "database's VPC)."},
        "SecurityGroupIds": {"Type": "CommaDelimitedList", "Default": "",
                             "Description": "Security groups of the functions, with "
                                            "SubnetIds."},
    }


def _tags(*extra: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"Key": STACK_TAG_KEY, "Value": {"Ref": "AWS::StackName"}}, *extra]


def _tap_resources(options: StackOptions) -> dict[str, Any]:
    main_name, dlq_name = queue_names(options.bus)
    queue_common = {"MessageRetentionPeriod": RETENTION_SECONDS,
                    "MaximumMessageSize": MAX_MESSAGE_BYTES}
    # Deleting the stack deletes the queues and what waits in them (say so, explicitly).
    deleted = {"DeletionPolicy": "Delete", "UpdateReplacePolicy": "Delete"}
    dlq_arn = {"Fn::GetAtt": ["TapDeadLetterQueue", "Arn"]}
    queue_arn = {"Fn::GetAtt": ["TapQueue", "Arn"]}
    rule_arn = {"Fn::GetAtt": ["TapRule", "Arn"]}
    return {
        "TapDeadLetterQueue": {"Type": "AWS::SQS::Queue", **deleted, "Properties": {
            "QueueName": dlq_name, **queue_common, "Tags": _tags()}},
        "TapQueue": {"Type": "AWS::SQS::Queue", **deleted, "Properties": {
            "QueueName": main_name, **queue_common,
            "VisibilityTimeout": VISIBILITY_TIMEOUT_SECONDS,
            "RedrivePolicy": {"deadLetterTargetArn": dlq_arn,
                              "maxReceiveCount": MAX_RECEIVE_COUNT},
            "Tags": _tags({"Key": SAMPLE_TAG_KEY, "Value": {"Ref": "SampleRate"}})}},
        # EventBridge sends to the queue, and its failed deliveries to the DLQ: one policy per
        # queue naming that queue, as `tap install` sets them.
        "TapQueuePolicy": {"Type": "AWS::SQS::QueuePolicy", "Properties": {
            "Queues": [{"Ref": "TapQueue"}], "PolicyDocument": queue_policy(queue_arn, rule_arn)}},
        "TapDeadLetterQueuePolicy": {"Type": "AWS::SQS::QueuePolicy", "Properties": {
            "Queues": [{"Ref": "TapDeadLetterQueue"}],
            "PolicyDocument": queue_policy(dlq_arn, rule_arn)}},
        "TapRule": {"Type": "AWS::Events::Rule", "Properties": {
            "Name": RULE_NAME, "EventBusName": options.bus, "Description": RULE_DESCRIPTION,
            "EventPattern": MATCH_ALL_PATTERN, "State": "ENABLED",
            "Targets": [{"Id": TARGET_ID, "Arn": queue_arn,
                         "DeadLetterConfig": {"Arn": dlq_arn},
                         "RetryPolicy": dict(TARGET_RETRY_POLICY)}]}},
    }


def _logs_dead_letter_queue() -> dict[str, Any]:
    """Where Lambda puts a push the logs function failed to store after its own retries (2,
    within minutes): kept 14 days, SQS's longest, instead of dropped."""
    return {"Type": "AWS::SQS::Queue", "DeletionPolicy": "Delete",
            "UpdateReplacePolicy": "Delete", "Properties": {
                "MessageRetentionPeriod": LOGS_DLQ_RETENTION_SECONDS, "Tags": _tags()}}


def _logs_statements() -> list[dict[str, Any]]:
    return [{"Effect": "Allow", "Action": LOGS_DLQ_ACTIONS,
             "Resource": {"Fn::GetAtt": ["LogsDeadLetterQueue", "Arn"]}}]


def _tap_statements() -> list[dict[str, Any]]:
    return [{"Effect": "Allow", "Action": TAP_QUEUE_ACTIONS,
             "Resource": {"Fn::GetAtt": ["TapQueue", "Arn"]}}]


def _function(name: str, handler: str, statements: list[dict[str, Any]],
              extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """A function NAME with its own log group and role (STATEMENTS plus writing its logs)."""
    log_group, role = f"{name}LogGroup", f"{name}FunctionRole"
    own_logs = {"Effect": "Allow", "Action": OWN_LOG_ACTIONS,
                "Resource": {"Fn::GetAtt": [log_group, "Arn"]}}
    policy = {"PolicyName": f"eventscope-{name.lower()}", "PolicyDocument": {
        "Version": "2012-10-17", "Statement": [*statements, own_logs]}}
    vpc = {"PolicyName": "vpc-network-interfaces", "PolicyDocument": {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": VPC_ACTIONS, "Resource": "*"}]}}
    return {
        log_group: {"Type": "AWS::Logs::LogGroup", "DeletionPolicy": "Delete",
                    "UpdateReplacePolicy": "Delete", "Properties": {
                        "LogGroupName": {"Fn::Sub": f"{OWN_LOG_PREFIX}${{AWS::StackName}}/"
                                                    f"{name.lower()}"},
                        "RetentionInDays": OWN_LOG_RETENTION_DAYS}},
        role: {"Type": "AWS::IAM::Role", "Properties": {
            "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [{
                "Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                "Action": "sts:AssumeRole"}]},
            # The whole list is conditional: AWS::NoValue as a list item is CloudFormation's
            # own, and an emulator may keep it as a null policy.
            "Policies": {"Fn::If": ["InVpc", [policy, vpc], [policy]]},
            "Tags": _tags()}},
        f"{name}Function": {"Type": "AWS::Lambda::Function", "Properties": {
            "Description": f"eventscope {name.lower()} collector",
            "Runtime": RUNTIME, "Handler": handler,
            "Code": {"S3Bucket": {"Ref": "CodeS3Bucket"}, "S3Key": {"Ref": "CodeS3Key"}},
            "Role": {"Fn::GetAtt": [role, "Arn"]},
            "Timeout": FUNCTION_TIMEOUT_SECONDS, "MemorySize": {"Ref": "MemorySize"},
            "Environment": {"Variables": _environment()},
            "LoggingConfig": {"LogGroup": {"Ref": log_group}},
            "VpcConfig": {"Fn::If": ["InVpc", {"SubnetIds": {"Ref": "SubnetIds"},
                                               "SecurityGroupIds": {"Ref": "SecurityGroupIds"}},
                                     {"Ref": "AWS::NoValue"}]},
            **(extra or {}), "Tags": _tags()}},
    }


ROLLUP_LAG_MS = "120000"


def _environment() -> dict[str, Any]:
    return {
        "EVENTSCOPE_DB": {"Fn::Sub": "{{resolve:secretsmanager:${DatabaseSecretArn}:"
                                     "SecretString}}"},
        "EVENTSCOPE_PII_KEY": {"Fn::If": [
            "HasPiiKey", {"Fn::Sub": "{{resolve:secretsmanager:${PiiKeySecretArn}:"
                                     "SecretString}}"}, {"Ref": "AWS::NoValue"}]},
        "EVENTSCOPE_SAMPLE": {"Ref": "SampleRate"},
        # busy writers settle the rollups of minutes older than 2 min only, so concurrent
        # batches do not each recompute the current minute (eventscope.store)
        "EVENTSCOPE_ROLLUP_LAG_MS": ROLLUP_LAG_MS,
    }


def _event_source_mapping() -> dict[str, Any]:
    return {"Type": "AWS::Lambda::EventSourceMapping", "Properties": {
        "EventSourceArn": {"Fn::GetAtt": ["TapQueue", "Arn"]},
        "FunctionName": {"Ref": "TapFunction"},
        "BatchSize": {"Ref": "BatchSize"},
        "MaximumBatchingWindowInSeconds": {"Ref": "MaximumBatchingWindowInSeconds"},
        "FunctionResponseTypes": ["ReportBatchItemFailures"],
        "ScalingConfig": {"MaximumConcurrency": {"Ref": "MaximumConcurrency"}},
        "Enabled": True}}


def _logs_permission(prefix: str) -> dict[str, Any]:
    """CloudWatch Logs may invoke the logs function, for groups under PREFIX in this account."""
    return {"Type": "AWS::Lambda::Permission", "Properties": {
        "Action": "lambda:InvokeFunction",
        "FunctionName": {"Fn::GetAtt": ["LogsFunction", "Arn"]},
        "Principal": "logs.amazonaws.com",
        "SourceAccount": {"Ref": "AWS::AccountId"},
        "SourceArn": {"Fn::Sub": "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}"
                                 f":log-group:{prefix}*"}}}


def _subscription_filter(group: str) -> dict[str, Any]:
    return {"Type": "AWS::Logs::SubscriptionFilter", "DependsOn": "LogsInvokePermission",
            "Properties": {"LogGroupName": group, "FilterPattern": "",
                           "DestinationArn": {"Fn::GetAtt": ["LogsFunction", "Arn"]}}}


def _outputs() -> dict[str, Any]:
    return {
        "TapQueueUrl": {"Description": "The tap queue (eventscope collect tap --queue-url).",
                        "Value": {"Ref": "TapQueue"}},
        "TapDeadLetterQueueUrl": {"Description": "The tap's dead-letter queue.",
                                  "Value": {"Ref": "TapDeadLetterQueue"}},
        "TapFunctionArn": {"Value": {"Fn::GetAtt": ["TapFunction", "Arn"]}},
        "LogsDeadLetterQueueUrl": {"Description": "Pushes the logs function could not store.",
                                   "Value": {"Ref": "LogsDeadLetterQueue"}},
        "LogsFunctionArn": {"Description": "The destination for eventscope logs subscribe "
                                           "--destination-arn.",
                            "Value": {"Fn::GetAtt": ["LogsFunction", "Arn"]}},
        # No function of the stack prunes: this is the command that applies its retention
        # (run once, it records the policy that `collect all`'s daily prune then follows).
        "PruneCommand": {"Description": "Run daily with --db: the stack's retention.",
                         "Value": {"Fn::Sub": PRUNE_COMMAND}},
    }
