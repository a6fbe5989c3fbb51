"""Security properties of template.yaml, checked on the template as CloudFormation will see it.

The SAM transform runs offline (aws-sam-translator) so the roles, permissions and API routes SAM
generates are checked too, not only what the template spells out. Each property is also checked
to fail on a deliberately weakened copy, so a check that can never fail is itself a failure.

Run: python tests/template_security.py  (needs cfn-lint and aws-sam-translator; scripts/test.sh
installs both).
"""

import copy
import json
import logging
import os
import re
import sys
import unittest
from pathlib import Path

from cfnlint.decode import decode
from samtranslator.translator.transform import transform

# The translator warns about its own unpublished usage metrics on every run.
logging.getLogger("samtranslator").setLevel(logging.ERROR)

TEMPLATE = Path(__file__).resolve().parent.parent / "template.yaml"

# AWS-managed policies SAM attaches for logs, X-Ray and VPC networking; nothing else may be.
ALLOWED_MANAGED_POLICIES = {
    "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
    "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess",
    "arn:aws:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole",
}
FUNCTIONS = ("QueryApiFunction", "IngesterFunction", "InvalidatorFunction")
REQUIRED_OUTPUTS = (
    "ApiUrl",
    "ObjectsBucketName",
    "RedisEndpoint",
    "DatabaseEndpoint",
    "RedisAuthSecretArn",
    "DatabaseSecretArn",
)
SECRET_NAMES = re.compile(r"password|token|secret_?key", re.IGNORECASE)
# RDS metrics (bytes) that watch the invalidator's logical replication slot and the WAL it keeps.
SLOT_METRICS = ("OldestReplicationSlotLag", "TransactionLogsDiskUsage")
# A drain must end this long before the invalidator times out (login, last acknowledgements).
DRAIN_RESERVE_SECONDS = 10
# The secrets of the database logins that are not the invalidator's own.
OTHER_DB_LOGINS = {"Database", "QueryDbRoleSecret", "WriteDbRoleSecret"}
# A variable in an Fn::Sub string (not a literal "${!...}").
SUB_VARIABLE = re.compile(r"\$\{([^!}][^}]*)\}")


class _NoManagedPolicyLookups:
    """The template names no managed policy by name, so nothing needs resolving through IAM."""

    def load(self):
        return {}


def load_source():
    template, problems = decode(str(TEMPLATE))
    if problems:
        raise SystemExit(f"template.yaml does not parse: {problems}")
    return template


def to_cloudformation(source):
    """The SAM transform, offline: code locations are placeholders as after `sam package`."""
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    sam = copy.deepcopy(source)
    for resource in sam["Resources"].values():
        if resource["Type"] == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = "s3://placeholder/code.zip"
    return transform(sam, {}, _NoManagedPolicyLookups())


def of_type(template, kind):
    return {n: r for n, r in template["Resources"].items() if r["Type"] == kind}


def as_list(value):
    return value if isinstance(value, list) else [value]


def branches(items):
    """Items with each Fn::If replaced by both of its outcomes (AWS::NoValue dropped)."""
    out = []
    for item in items:
        if isinstance(item, dict) and "Fn::If" in item:
            out.extend(branches(item["Fn::If"][1:]))
        elif item != {"Ref": "AWS::NoValue"}:
            out.append(item)
    return out


def references(node):
    """Logical ids a node depends on through Ref, Fn::GetAtt and Fn::Sub."""
    found = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref" and isinstance(value, str):
                found.add(value)
            elif key == "Fn::GetAtt":
                target = value[0] if isinstance(value, list) else value.split(".")[0]
                found.add(target)
            elif key == "Fn::Sub":
                text = value[0] if isinstance(value, list) else value
                found.update(m.split(".")[0] for m in SUB_VARIABLE.findall(text))
                if isinstance(value, list):
                    found |= references(value[1])
            else:
                found |= references(value)
    elif isinstance(node, list):
        for item in node:
            found |= references(item)
    return found


def with_defaults(node, cfn, parameters=None):
    """`node` with every Fn::If decided as CloudFormation would with the parameters' defaults
    (or `parameters`): what a stack deployed without overrides gets."""
    given = {name: p.get("Default") for name, p in cfn.get("Parameters", {}).items()}
    given.update(parameters or {})
    conditions = cfn.get("Conditions", {})

    def value(v):
        if isinstance(v, dict) and set(v) == {"Ref"}:
            return given.get(v["Ref"])
        return v

    def holds(c):
        if isinstance(c, dict):
            (op, args), = c.items()
            if op == "Condition":
                return holds(conditions[args])
            if op == "Fn::Equals":
                return str(value(args[0])) == str(value(args[1]))
            if op == "Fn::Not":
                return not holds(args[0])
            if op == "Fn::And":
                return all(holds(a) for a in args)
            if op == "Fn::Or":
                return any(holds(a) for a in args)
        raise ValueError(f"cannot evaluate condition {c!r}")

    def walk(n):
        if isinstance(n, dict):
            if set(n) == {"Fn::If"}:
                name, yes, no = n["Fn::If"]
                return walk(yes if holds(conditions[name]) else no)
            return {k: walk(v) for k, v in n.items()}
        if isinstance(n, list):
            return [walk(i) for i in n]
        return n

    return walk(node)


def str_nodes(node):
    """Every dict and list inside `node` (to look for one intrinsic anywhere in it)."""
    found = [node]
    if isinstance(node, dict):
        for v in node.values():
            found.extend(str_nodes(v))
    elif isinstance(node, list):
        for v in node:
            found.extend(str_nodes(v))
    return found


def holds(condition, cfn, parameters=None):
    """Whether a named condition holds with the parameters' defaults (or `parameters`)."""
    return with_defaults({"Fn::If": [condition, True, False]}, cfn, parameters)


def without_novalue(node):
    """`node` with every AWS::NoValue property and list item removed, as CloudFormation does."""
    if isinstance(node, dict):
        return {k: without_novalue(v) for k, v in node.items() if v != {"Ref": "AWS::NoValue"}}
    if isinstance(node, list):
        return [without_novalue(i) for i in node if i != {"Ref": "AWS::NoValue"}]
    return node


def deployed(cfn, parameters=None):
    """The resources of a stack deployed with the defaults (or `parameters`): those whose
    condition fails left out, every Fn::If decided, AWS::NoValue removed."""
    return {
        name: without_novalue(with_defaults(r, cfn, parameters))
        for name, r in cfn["Resources"].items()
        if "Condition" not in r or holds(r["Condition"], cfn, parameters)
    }


def parameter_value(node, cfn, parameters=None):
    """A literal, or the value of the template parameter `node` refers to."""
    if isinstance(node, dict) and set(node) == {"Ref"}:
        if node["Ref"] in (parameters or {}):
            return parameters[node["Ref"]]
        return cfn.get("Parameters", {}).get(node["Ref"], {}).get("Default")
    return node


def alarm_metrics(alarm):
    """(namespace, metric name, dimensions) of every metric an alarm watches."""
    p = alarm["Properties"]
    found = []
    if "MetricName" in p:
        found.append((p.get("Namespace"), p["MetricName"], p.get("Dimensions", [])))
    for query in p.get("Metrics", []):
        metric = query.get("MetricStat", {}).get("Metric")
        if metric:
            found.append((metric.get("Namespace"), metric.get("MetricName"), metric.get("Dimensions", [])))
    return found


def slot_alarms(resources):
    """Each slot metric watched on the database instance -> the alarms watching it."""
    on_database = {"Name": "DBInstanceIdentifier", "Value": {"Ref": "Database"}}
    found = {}
    for name, alarm in of_type({"Resources": resources}, "AWS::CloudWatch::Alarm").items():
        for namespace, metric, dimensions in alarm_metrics(alarm):
            if namespace == "AWS/RDS" and metric in SLOT_METRICS and on_database in dimensions:
                found.setdefault(metric, []).append(name)
    return found


def drain_schedules(resources):
    """EventBridge rules that target the invalidator, by name."""
    return {
        name: rule["Properties"]
        for name, rule in of_type({"Resources": resources}, "AWS::Events::Rule").items()
        if any("InvalidatorFunction" in references(t.get("Arn")) for t in rule["Properties"].get("Targets", []))
    }


def event_permissions(resources):
    """Permissions letting EventBridge invoke the invalidator."""
    return [
        perm["Properties"]
        for perm in of_type({"Resources": resources}, "AWS::Lambda::Permission").values()
        if "InvalidatorFunction" in references(perm["Properties"].get("FunctionName"))
        and perm["Properties"].get("Principal") == "events.amazonaws.com"
    ]


def secrets_read(function, resources):
    """The resources of every secretsmanager:GetSecretValue statement of a function's role."""
    role = resources.get(function["Properties"]["Role"]["Fn::GetAtt"][0], {})
    found = []
    for policy in role.get("Properties", {}).get("Policies", []):
        for st in branches(as_list(policy["PolicyDocument"]["Statement"])):
            if st.get("Effect") == "Allow" and "secretsmanager:GetSecretValue" in as_list(st.get("Action", [])):
                found.extend(branches(as_list(st.get("Resource", []))))
    return found


def invalidation_findings(cfn):
    """How the invalidator learns of committed database changes. By default (logical mode on
    PostgreSQL) the database decodes logically with a bounded slot, two alarms watch the slot, a
    schedule starts a drain every minute that ends before the function times out, and the
    invalidator logs in as its own role only. PostgreSQL in trigger mode gets none of that; MySQL
    drains its outbox on the same schedule."""
    problems = []
    resources = cfn["Resources"]

    # Whatever the mode: the invalidator's only database login is its own role's.
    invalidator = resources["InvalidatorFunction"]
    for secret in secrets_read(invalidator, resources):
        for other in sorted(references(secret) & OTHER_DB_LOGINS):
            problems.append(f"InvalidatorFunction: may read {other}, not only its own database login")
    env = invalidator["Properties"].get("Environment", {}).get("Variables", {})
    if "DB_SECRET_ID" in env and references(env["DB_SECRET_ID"]) - {"AWS::NoValue"} != {"InvalidatorDbRoleSecret"}:
        problems.append("InvalidatorFunction: DB_SECRET_ID is not the InvalidatorDbRoleSecret role login")
    ingester = resources["IngesterFunction"]
    ingester_env = ingester["Properties"].get("Environment", {}).get("Variables", {})
    if ingester_env.get("DB_INVALIDATOR_ROLE_SECRET_ID") != {"Ref": "InvalidatorDbRoleSecret"} or not any(
        s == {"Ref": "InvalidatorDbRoleSecret"} for s in secrets_read(ingester, resources)
    ):
        problems.append("IngesterFunction: cannot create the invalidator's role (DB_INVALIDATOR_ROLE_SECRET_ID)")

    # The default: logical mode on PostgreSQL.
    logical = deployed(cfn)
    mode = "default (logical) mode"
    params = logical["DatabaseParameters"]["Properties"].get("Parameters", {})
    if str(params.get("rds.logical_replication")) != "1":
        problems.append(f"{mode}: the parameter group does not turn on rds.logical_replication")
    keep = parameter_value(params.get("max_slot_wal_keep_size"), cfn)
    if keep is None or int(str(keep)) <= 0:
        problems.append(f"{mode}: the WAL a slot may keep is not bounded (max_slot_wal_keep_size)")
    alarms = slot_alarms(logical)
    for metric in SLOT_METRICS:
        if metric not in alarms:
            problems.append(f"{mode}: no alarm on the database's {metric}")
        for name in alarms.get(metric, []):
            p = logical[name]["Properties"]
            expressions = str([q.get("Expression") for q in p.get("Metrics", [])])
            relative = "SlotWalKeepSizeMb" in expressions
            limit = 100 if relative else int(str(keep or 0)) * 1024 * 1024
            if float(p.get("Threshold", 0)) >= limit:
                problems.append(f"{mode}: {name} fires only after the slot is lost (threshold not below max_slot_wal_keep_size)")
    schedules = drain_schedules(logical)
    if not any(
        s.get("ScheduleExpression") == "rate(1 minute)" and s.get("State", "ENABLED") == "ENABLED"
        for s in schedules.values()
    ):
        problems.append(f"{mode}: no enabled rate(1 minute) schedule starts the invalidator's drain")
    for name in schedules:
        if not any(name in references(perm.get("SourceArn")) for perm in event_permissions(logical)):
            problems.append(f"{mode}: EventBridge may not invoke the invalidator for {name} (no permission limited to its ARN)")
    fn = logical["InvalidatorFunction"]["Properties"]
    env = fn.get("Environment", {}).get("Variables", {})
    timeout = int(fn.get("Timeout", 3))
    drain = int(env.get("INVALIDATOR_DRAIN_SECONDS", 55))
    if timeout <= drain + DRAIN_RESERVE_SECONDS:
        problems.append(
            f"{mode}: the invalidator's timeout ({timeout} s) leaves less than {DRAIN_RESERVE_SECONDS} s to spare after a drain ({drain} s)"
        )
    if env.get("FUNCTION_TIMEOUT_SECONDS", str(timeout)) != str(timeout):
        problems.append(f"{mode}: the invalidator's FUNCTION_TIMEOUT_SECONDS is not its timeout ({timeout} s)")
    if env.get("INVALIDATION_SOURCE") != "logical":
        problems.append(f"{mode}: the invalidator is not told INVALIDATION_SOURCE=logical")
    if env.get("DB_SECRET_ID") != {"Ref": "InvalidatorDbRoleSecret"} or "DB_HOST" not in env:
        problems.append(f"{mode}: the invalidator is not given the database and its own role login")
    if {"Ref": "InvalidatorDbRoleSecret"} not in secrets_read(logical["InvalidatorFunction"], logical):
        problems.append(f"{mode}: the invalidator may not read its own role login")

    # PostgreSQL in trigger mode: the change trigger pushes; nothing to drain, no slot.
    trigger = deployed(cfn, {"InvalidationSource": "trigger"})
    mode = "trigger mode (PostgreSQL)"
    if drain_schedules(trigger) or event_permissions(trigger):
        problems.append(f"{mode}: a drain schedule exists with nothing to drain")
    if slot_alarms(trigger):
        problems.append(f"{mode}: slot alarms exist without a slot")
    if str(trigger["DatabaseParameters"]["Properties"].get("Parameters", {}).get("rds.logical_replication")) == "1":
        problems.append(f"{mode}: logical decoding is turned on")
    env = trigger["InvalidatorFunction"]["Properties"].get("Environment", {}).get("Variables", {})
    if env.get("INVALIDATION_SOURCE") != "trigger":
        problems.append(f"{mode}: the invalidator is not told INVALIDATION_SOURCE=trigger")
    if "DB_SECRET_ID" in env or {"Ref": "InvalidatorDbRoleSecret"} in secrets_read(trigger["InvalidatorFunction"], trigger):
        problems.append(f"{mode}: the invalidator may log in to the database with nothing to drain")

    # MySQL: triggers fill the outbox, drained on the same schedule, whatever the mode says.
    mysql = deployed(cfn, {"DatabaseEngine": "mysql"})
    mode = "MySQL"
    if not any(s.get("ScheduleExpression") == "rate(1 minute)" for s in drain_schedules(mysql).values()):
        problems.append(f"{mode}: the outbox is never drained (no rate(1 minute) schedule)")
    if slot_alarms(mysql):
        problems.append(f"{mode}: slot alarms exist without a slot")
    env = mysql["InvalidatorFunction"]["Properties"].get("Environment", {}).get("Variables", {})
    if env.get("INVALIDATION_SOURCE") != "trigger":
        problems.append(f"{mode}: the invalidator is told to read a logical slot")
    if env.get("DB_SECRET_ID") != {"Ref": "InvalidatorDbRoleSecret"}:
        problems.append(f"{mode}: the invalidator is not given its own role login to drain the outbox")
    return problems


def findings(source):
    """Every violated property of a SAM template, as readable sentences (empty when secure)."""
    problems = []
    cfn = to_cloudformation(source)
    resources = cfn["Resources"]

    # No dependency cycle (CloudFormation refuses them only at deploy time).
    graph = {
        name: (references(r) | set(as_list(r.get("DependsOn", [])))) & resources.keys()
        for name, r in resources.items()
    }
    state = {}

    def visit(name, path):
        state[name] = "open"
        for dep in sorted(graph[name]):
            if state.get(dep) == "open":
                problems.append("dependency cycle: " + " -> ".join(path + [dep]))
            elif dep not in state:
                visit(dep, path + [dep])
        state[name] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])

    # IAM: named resources only, no wildcard actions, only the expected managed policies.
    documents = []
    for name, role in of_type(cfn, "AWS::IAM::Role").items():
        for arn in role["Properties"].get("ManagedPolicyArns", []):
            if arn not in ALLOWED_MANAGED_POLICIES:
                problems.append(f"{name}: unexpected managed policy {arn}")
        documents += [(name, policy["PolicyDocument"]) for policy in role["Properties"].get("Policies", [])]
    for kind in ("AWS::IAM::RolePolicy", "AWS::IAM::Policy"):
        documents += [(name, p["Properties"]["PolicyDocument"]) for name, p in of_type(cfn, kind).items()]
    for name, document in documents:
        for st in branches(as_list(document["Statement"])):
            if st.get("Effect") != "Allow":
                continue
            actions = as_list(st.get("Action", []))
            if any("*" in a for a in actions if isinstance(a, str)):
                problems.append(f"{name}: wildcard action in {actions}")
            for res in as_list(st.get("Resource", [])):
                if res == "*" or (isinstance(res, str) and res.endswith(":*")):
                    problems.append(f"{name}: {actions} on resource {res!r}")

    # RDS: encrypted, private, managed secret, TLS forced by its parameter group.
    for name, db in of_type(cfn, "AWS::RDS::DBInstance").items():
        p = db["Properties"]
        if p.get("StorageEncrypted") is not True:
            problems.append(f"{name}: storage not encrypted")
        if p.get("PubliclyAccessible") is not False:
            problems.append(f"{name}: publicly accessible")
        if p.get("ManageMasterUserPassword") is not True or "MasterUserPassword" in p:
            problems.append(f"{name}: master password not managed by Secrets Manager")
        group = resources.get(p.get("DBParameterGroupName", {}).get("Ref", ""), {})
        forced = str(group.get("Properties", {}).get("Parameters", ""))
        if "rds.force_ssl" not in forced or "require_secure_transport" not in forced:
            problems.append(f"{name}: parameter group does not force TLS on both engines")

    # ElastiCache: TLS required, encrypted at rest, an AUTH token from Secrets Manager or IAM
    # users; a serverless cache has a user group and usage limits (its bill is bounded).
    for name, rg in of_type(cfn, "AWS::ElastiCache::ReplicationGroup").items():
        p = rg["Properties"]
        if p.get("TransitEncryptionEnabled") is not True or p.get("TransitEncryptionMode") != "required":
            problems.append(f"{name}: transit encryption not required")
        if p.get("AtRestEncryptionEnabled") is not True:
            problems.append(f"{name}: not encrypted at rest")
        if "AuthToken" in p and "{{resolve:secretsmanager:" not in str(p["AuthToken"]):
            problems.append(f"{name}: AUTH token not resolved from Secrets Manager")
        if "AuthToken" not in p and "UserGroupIds" not in p:
            problems.append(f"{name}: no authentication (neither an AUTH token nor a user group)")
    for name, cache in of_type(cfn, "AWS::ElastiCache::ServerlessCache").items():
        p = cache["Properties"]
        if not p.get("UserGroupId"):
            problems.append(f"{name}: no user group (anything in the security group could connect)")
        limits = p.get("CacheUsageLimits", {})
        if "DataStorage" not in limits or "ECPUPerSecond" not in limits:
            problems.append(f"{name}: no usage limits (its bill has no bound)")
    for name, user in of_type(cfn, "AWS::ElastiCache::User").items():
        p = user["Properties"]
        access = str(p.get("AccessString", ""))
        if p.get("UserName") == "default":
            if not access.startswith("off"):
                problems.append(f"{name}: the default user is enabled")
        elif "-@dangerous" not in access:
            problems.append(f"{name}: may run admin (@dangerous) commands")

    # ElastiCache RBAC (ElastiCache user guide, "Role-Based Access Control"; no resource schema
    # carries these): a valkey user group holds only password or IAM users; a redis one must hold
    # a user named "default", here switched off; an IAM user's name equals its ID ("IAM
    # authentication", Limitations). IDs are stored in lower case, so they must not come from the
    # stack name, which may have capitals. Checked in both IAM modes as deployed.
    for label, params in (("serverless", {"CacheMode": "serverless"}), ("IAM replication group", {"CacheAuth": "iam"})):
        stack = deployed(cfn, params)
        for name, group in of_type({"Resources": stack}, "AWS::ElastiCache::UserGroup").items():
            p = group["Properties"]
            members = [
                stack[u["Ref"]]["Properties"]
                for u in p.get("UserIds", [])
                if isinstance(u, dict) and u.get("Ref") in stack
            ]
            kinds = {m.get("AuthenticationMode", {}).get("Type") for m in members}
            if p.get("Engine") == "valkey" and "no-password-required" in kinds:
                problems.append(f"{label}: {name} is a valkey user group holding a no-password user")
            defaults = [m for m in members if m.get("UserName") == "default"]
            if p.get("Engine") == "redis" and not defaults:
                problems.append(f"{label}: {name} is a redis user group without a user named default")
        for name, r in stack.items():
            if not r["Type"].startswith("AWS::ElastiCache::"):
                continue
            p = r["Properties"]
            for key in ("UserId", "UserName", "UserGroupId", "ServerlessCacheName", "ReplicationGroupId"):
                if key in p and "AWS::StackName" in json.dumps(p[key]):
                    problems.append(f"{label}: {name}.{key} comes from the stack name, which may have capitals")
            auth = p.get("AuthenticationMode", {}).get("Type")
            if r["Type"] == "AWS::ElastiCache::User" and auth == "iam" and p.get("UserName") != p.get("UserId"):
                problems.append(f"{label}: {name} is an IAM user whose name differs from its ID")

    # The cache's ports (ElastiCache Serverless, "Working with read replicas": reads on 6380
    # beside 6379 at the same name): exactly 6379, plus 6380 for a serverless cache, open
    # between the functions and the cache, and nothing else.
    for label, params, ports in (
        ("serverless", {"CacheMode": "serverless"}, {6379, 6380}),
        ("replication group", {}, {6379}),
    ):
        stack = deployed(cfn, params)
        ingress = {
            (rule.get("FromPort"), rule.get("ToPort"))
            for rule in stack["RedisSecurityGroup"]["Properties"].get("SecurityGroupIngress", [])
        } | {
            (r["Properties"].get("FromPort"), r["Properties"].get("ToPort"))
            for r in stack.values()
            if r["Type"] == "AWS::EC2::SecurityGroupIngress" and r["Properties"].get("GroupId") == {"Ref": "RedisSecurityGroup"}
        }
        egress = {
            (r["Properties"].get("FromPort"), r["Properties"].get("ToPort"))
            for r in stack.values()
            if r["Type"] == "AWS::EC2::SecurityGroupEgress"
            and r["Properties"].get("DestinationSecurityGroupId") == {"Ref": "RedisSecurityGroup"}
        }
        wanted = {(port, port) for port in ports}
        if ingress != wanted:
            problems.append(f"{label}: the cache accepts ports {sorted(ingress)}, not {sorted(wanted)}")
        if egress != wanted:
            problems.append(f"{label}: the functions reach the cache on ports {sorted(egress)}, not {sorted(wanted)}")

    # S3: encrypted, public access blocked, plain HTTP denied by policy.
    policies = of_type(cfn, "AWS::S3::BucketPolicy").values()
    for name, bucket in of_type(cfn, "AWS::S3::Bucket").items():
        p = bucket["Properties"]
        if not p.get("BucketEncryption"):
            problems.append(f"{name}: no default encryption")
        block = p.get("PublicAccessBlockConfiguration", {})
        for flag in ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"):
            if block.get(flag) is not True:
                problems.append(f"{name}: {flag} is not true")
        denies_http = any(
            pol["Properties"]["Bucket"] == {"Ref": name}
            and any(
                st.get("Effect") == "Deny" and "aws:SecureTransport" in str(st.get("Condition"))
                for st in as_list(pol["Properties"]["PolicyDocument"]["Statement"])
            )
            for pol in policies
        )
        if not denies_http:
            problems.append(f"{name}: plain-HTTP requests are not denied")

    # DynamoDB: on-demand, encrypted, point-in-time recovery, and a stream whose mapping
    # reports per-record failures and keeps the ones it gives up on.
    mappings = of_type(cfn, "AWS::Lambda::EventSourceMapping").values()
    for name, table in of_type(cfn, "AWS::DynamoDB::Table").items():
        p = table["Properties"]
        if p.get("BillingMode") != "PAY_PER_REQUEST":
            problems.append(f"{name}: not on-demand")
        if p.get("SSESpecification", {}).get("SSEEnabled") is not True:
            problems.append(f"{name}: server-side encryption not enabled")
        if p.get("PointInTimeRecoverySpecification", {}).get("PointInTimeRecoveryEnabled") is not True:
            problems.append(f"{name}: point-in-time recovery off")
        streamed = [m["Properties"] for m in mappings if name in references(m["Properties"].get("EventSourceArn"))]
        if not p.get("StreamSpecification") or not streamed:
            problems.append(f"{name}: no stream mapped to a function")
        for m in streamed:
            if "ReportBatchItemFailures" not in m.get("FunctionResponseTypes", []):
                problems.append(f"{name}: stream mapping does not report batch item failures")
            if not m.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination"):
                problems.append(f"{name}: stream mapping has no on-failure destination")

    # Network: ingress only from security groups; the only wide egress is HTTPS.
    for name, sg in of_type(cfn, "AWS::EC2::SecurityGroup").items():
        for rule in sg["Properties"].get("SecurityGroupIngress", []):
            if "CidrIp" in rule or "CidrIpv6" in rule:
                problems.append(f"{name}: ingress from an address range, not a security group")
        for rule in sg["Properties"].get("SecurityGroupEgress", []):
            wide = rule.get("CidrIp") == "0.0.0.0/0" or rule.get("CidrIpv6") == "::/0"
            if wide and (rule.get("FromPort"), rule.get("ToPort")) != (443, 443):
                problems.append(f"{name}: egress to anywhere beyond HTTPS")
    for name, rule in of_type(cfn, "AWS::EC2::SecurityGroupIngress").items():
        if "CidrIp" in rule["Properties"] or "CidrIpv6" in rule["Properties"]:
            problems.append(f"{name}: ingress from an address range, not a security group")
    for name, rule in of_type(cfn, "AWS::EC2::SecurityGroupEgress").items():
        if "DestinationSecurityGroupId" not in rule["Properties"]:
            problems.append(f"{name}: egress rule not to a security group")
    for kind in ("AWS::EC2::InternetGateway", "AWS::EC2::NatGateway"):
        if of_type(cfn, kind):
            problems.append(f"{kind} present: the functions must need no internet path")
    endpoints = str([e["Properties"]["ServiceName"] for e in of_type(cfn, "AWS::EC2::VPCEndpoint").values()])
    for service in ("s3", "secretsmanager", "dynamodb"):
        if f".{service}" not in endpoints:
            problems.append(f"no VPC endpoint for {service}")

    # Functions: runtime, architecture, build method, tracing, JSON logs, VPC, secure URLs.
    for name in FUNCTIONS:
        sam_fn = source["Resources"].get(name)
        fn = resources.get(name)
        if sam_fn is None or fn is None:
            problems.append(f"{name}: missing")
            continue
        if sam_fn.get("Metadata", {}).get("BuildMethod") != "rust-cargolambda":
            problems.append(f"{name}: not built with rust-cargolambda")
        p = fn["Properties"]
        if p.get("Runtime") != "provided.al2023" or p.get("Architectures") != ["arm64"]:
            problems.append(f"{name}: not provided.al2023 on arm64")
        if p.get("TracingConfig", {}).get("Mode") != "Active":
            problems.append(f"{name}: X-Ray tracing off")
        if p.get("LoggingConfig", {}).get("LogFormat") != "JSON":
            problems.append(f"{name}: logs are not JSON")
        if not p.get("VpcConfig", {}).get("SubnetIds"):
            problems.append(f"{name}: not in the VPC")
        env = p.get("Environment", {}).get("Variables", {})
        if "redis://" in str(env.get("REDIS_URL")) or "rediss://" not in str(env.get("REDIS_URL")):
            problems.append(f"{name}: REDIS_URL is not rediss://")
        if env.get("DB_SSL_MODE") != "verify-full":
            problems.append(f"{name}: DB_SSL_MODE is not verify-full")
        for var, value in env.items():
            if SECRET_NAMES.search(var) or (isinstance(value, str) and "{{resolve:" in value):
                problems.append(f"{name}: environment variable {var} carries a secret")

    # API: the cache admin routes require IAM (SigV4).
    paths = of_type(cfn, "AWS::ApiGatewayV2::Api")
    admin = [
        op
        for api in paths.values()
        for path, ops in api["Properties"].get("Body", {}).get("paths", {}).items()
        if path.startswith("/cache")
        for method, op in ops.items()
        if method == "delete"
    ]
    if not admin:
        problems.append("no DELETE /cache route")
    for op in admin:
        if {"AWS_IAM": []} not in op.get("security", []):
            problems.append("DELETE /cache route without IAM authorization")

    # Writes need an identity: in a stack deployed with the defaults, the review route has the
    # JWT authorizer, and the function is told to require the identity too.
    for api in paths.values():
        body = with_defaults(api["Properties"].get("Body", {}), cfn)
        review = body.get("paths", {}).get("/restaurants/{name}/reviews", {}).get("post")
        if review is None:
            problems.append("no POST /restaurants/{name}/reviews route")
            continue
        schemes = body.get("components", {}).get("securitySchemes", {})
        required = [name for entry in review.get("security") or [] for name in entry]
        if not required:
            problems.append("POST reviews without an authorizer by default")
        for name in required:
            authorizer = schemes.get(name, {}).get("x-amazon-apigateway-authorizer", {})
            if name != "AWS_IAM" and authorizer.get("type") != "jwt":
                problems.append(f"POST reviews names {name}, which is not a JWT authorizer")
    api_env = with_defaults(
        resources["QueryApiFunction"]["Properties"].get("Environment", {}).get("Variables", {}), cfn
    )
    if with_defaults({"v": api_env.get("REVIEWS_AUTH")}, cfn)["v"] not in ("jwt", {"Ref": "ReviewsAuth"}):
        problems.append("the query API is not told to require an identity for reviews")

    # Least privilege in the database: the master login is the ingester's alone; the query
    # API reads and writes with the two role secrets.
    master = {"Fn::GetAtt": ["Database", "MasterUserSecret.SecretArn"]}
    for name, function in of_type(cfn, "AWS::Lambda::Function").items():
        uses_master = master in str_nodes(function["Properties"].get("Environment", {}))
        role = resources.get(function["Properties"]["Role"]["Fn::GetAtt"][0], {})
        reads_master = master in str_nodes(role.get("Properties", {}).get("Policies", []))
        if (uses_master or reads_master) and not name.startswith("IngesterFunction"):
            problems.append(f"{name}: uses the database master secret")
    api_env = resources["QueryApiFunction"]["Properties"].get("Environment", {}).get("Variables", {})
    for var, secret in (("DB_SECRET_ID", "QueryDbRoleSecret"), ("DB_WRITE_SECRET_ID", "WriteDbRoleSecret")):
        if api_env.get(var) != {"Ref": secret}:
            problems.append(f"QueryApiFunction: {var} is not the {secret} role login")

    problems.extend(invalidation_findings(cfn))

    for output in REQUIRED_OUTPUTS:
        if output not in cfn.get("Outputs", {}):
            problems.append(f"output {output} missing")
    return problems


def weakened(source, path, value):
    """A copy of the template with one property at `path` (keys separated by /) replaced."""
    copy_ = copy.deepcopy(source)
    *parents, last = [p.replace("~1", "/") for p in path.split("/")]
    node = copy_
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node[key]
    if value is DELETE:
        del node[last]
    elif isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return copy_


DELETE = object()

# Each weakening, and a phrase the finding it causes must contain.
WEAKENINGS = [
    ("Resources/RedisUserGroup/Properties/Engine", "valkey", "valkey user group holding a no-password user"),
    ("Resources/RedisAppUser/Properties/UserName", "app", "name differs from its ID"),
    ("Resources/RedisUserGroup/Properties/UserGroupId", {"Fn::Sub": "${AWS::StackName}-users"}, "stack name"),
    ("Resources/RedisReadsFromFunctions/Properties/FromPort", 6000, "the cache accepts ports"),
    ("Resources/FunctionToRedisReads/Properties/ToPort", 6390, "the functions reach the cache"),
    ("Resources/Database/Properties/StorageEncrypted", False, "storage not encrypted"),
    ("Resources/Database/Properties/PubliclyAccessible", True, "publicly accessible"),
    ("Resources/Database/Properties/ManageMasterUserPassword", False, "master password"),
    ("Resources/DatabaseParameters/Properties/Parameters", {"foo": "1"}, "force TLS"),
    ("Resources/Redis/Properties/TransitEncryptionEnabled", False, "transit encryption"),
    ("Resources/Redis/Properties/AtRestEncryptionEnabled", False, "at rest"),
    ("Resources/Redis/Properties/AuthToken", "hunter2hunter2hunter2", "AUTH token"),
    ("Resources/ObjectsBucket/Properties/BucketEncryption", DELETE, "no default encryption"),
    (
        "Resources/ObjectsBucket/Properties/PublicAccessBlockConfiguration/BlockPublicPolicy",
        False,
        "BlockPublicPolicy",
    ),
    ("Resources/ObjectsBucketPolicy/Properties/PolicyDocument/Statement/0/Effect", "Allow", "plain-HTTP"),
    (
        "Resources/IngesterFunction/Properties/Policies/0/Statement/2/Resource",
        "*",
        "on resource '*'",
    ),
    (
        "Resources/DatabaseInvokePolicy/Properties/PolicyDocument/Statement/0/Resource",
        "*",
        "on resource '*'",
    ),
    (
        "Resources/EndpointsFromDatabase/Properties",
        {"GroupId": {"Ref": "EndpointSecurityGroup"}, "IpProtocol": "tcp", "CidrIp": "0.0.0.0/0"},
        "ingress from an address range",
    ),
    (
        "Resources/QueryApiFunction/Properties/Policies/0/Statement/0/Action",
        "secretsmanager:*",
        "wildcard action",
    ),
    (
        "Resources/RedisSecurityGroup/Properties/SecurityGroupIngress/0",
        {"IpProtocol": "tcp", "FromPort": 6379, "ToPort": 6379, "CidrIp": "10.0.0.0/8"},
        "ingress from an address range",
    ),
    ("Resources/QueryApiFunction/Properties/Events/Admin/Properties/Auth", DELETE, "without IAM"),
    ("Parameters/ReviewsAuth/Default", "none", "POST reviews without an authorizer"),
    (
        "Resources/QueryApiFunction/Properties/Environment/Variables/DB_SECRET_ID",
        {"Fn::GetAtt": ["Database", "MasterUserSecret.SecretArn"]},
        "uses the database master secret",
    ),
    (
        "Resources/QueryApiFunction/Properties/Policies/0/Statement/0/Resource/1",
        {"Fn::GetAtt": ["Database", "MasterUserSecret.SecretArn"]},
        "uses the database master secret",
    ),
    ("Resources/QueryApiFunction/Properties/Environment/Variables/DB_WRITE_SECRET_ID", DELETE, "role login"),
    (
        "Resources/HttpApi/Properties/DefinitionBody/paths/~1restaurants~1{name}~1reviews/post/security",
        [],
        "POST reviews without an authorizer",
    ),
    ("Resources/QueryApiFunction/Properties/Environment/Variables/REVIEWS_AUTH", "none", "require an identity"),
    ("Globals/Function/Environment/Variables/DB_SSL_MODE", "require", "DB_SSL_MODE"),
    ("Globals/Function/Environment/Variables/REDIS_URL", "redis://cache:6379", "rediss://"),
    ("Globals/Function/Architectures", ["x86_64"], "arm64"),
    ("Globals/Function/Tracing", "PassThrough", "X-Ray"),
    ("Globals/Function/Environment/Variables/OBJECTS_BUCKET", {"Ref": "ObjectsBucket"}, "dependency cycle"),
    ("Outputs/RedisAuthSecretArn", DELETE, "RedisAuthSecretArn missing"),
    ("Resources/RestaurantsTable/Properties/SSESpecification/SSEEnabled", False, "encryption not enabled"),
    (
        "Resources/RestaurantsTable/Properties/PointInTimeRecoverySpecification/PointInTimeRecoveryEnabled",
        False,
        "point-in-time recovery",
    ),
    ("Resources/RestaurantsTable/Properties/BillingMode", "PROVISIONED", "on-demand"),
    ("Resources/RestaurantStreamMapping/Properties/FunctionResponseTypes", [], "batch item failures"),
    ("Resources/RestaurantStreamMapping/Properties/DestinationConfig", DELETE, "on-failure destination"),
    ("Resources/RestaurantStreamMapping", DELETE, "no stream mapped"),
    ("Resources/DynamoDbEndpoint", DELETE, "no VPC endpoint for dynamodb"),
    (
        "Resources/QueryApiFunction/Properties/Policies/0/Statement/2/Resource",
        "*",
        "on resource '*'",
    ),
    (
        "Resources/InvalidatorFunction/Properties/Policies/0/Statement/1/Fn::If/1/Resource",
        "*",
        "on resource '*'",
    ),
    ("Resources/ServerlessRedis/Properties/CacheUsageLimits", DELETE, "no usage limits"),
    ("Resources/ServerlessRedis/Properties/UserGroupId", DELETE, "no user group"),
    ("Resources/RedisDisabledDefaultUser/Properties/AccessString", "on ~* +@all", "default user is enabled"),
    ("Resources/RedisAppUser/Properties/AccessString", "on ~* &* +@all", "@dangerous"),
    # Invalidation from the logical replication slot.
    ("Parameters/InvalidationSource/Default", "trigger", "default (logical) mode"),
    (
        "Resources/DatabaseParameters/Properties/Parameters/Fn::If/1/rds.logical_replication",
        "0",
        "rds.logical_replication",
    ),
    (
        "Resources/DatabaseParameters/Properties/Parameters/Fn::If/1/max_slot_wal_keep_size",
        DELETE,
        "max_slot_wal_keep_size",
    ),
    ("Resources/OldestReplicationSlotLagAlarm", DELETE, "no alarm on the database's OldestReplicationSlotLag"),
    (
        "Resources/TransactionLogsDiskUsageAlarm/Properties/Metrics/1/MetricStat/Metric/Dimensions",
        [],
        "no alarm on the database's TransactionLogsDiskUsage",
    ),
    ("Resources/OldestReplicationSlotLagAlarm/Properties/Threshold", 100, "only after the slot is lost"),
    ("Resources/InvalidatorDrainSchedule/Properties/ScheduleExpression", "rate(1 hour)", "rate(1 minute)"),
    ("Resources/InvalidatorDrainSchedule/Properties/State", "DISABLED", "no enabled rate(1 minute)"),
    ("Resources/InvalidatorDrainPermission", DELETE, "EventBridge may not invoke the invalidator"),
    ("Resources/InvalidatorDrainPermission/Properties/SourceArn", DELETE, "EventBridge may not invoke the invalidator"),
    ("Resources/InvalidatorFunction/Properties/Timeout", 60, "to spare after a drain"),
    ("Resources/InvalidatorFunction/Properties/Environment/Variables/FUNCTION_TIMEOUT_SECONDS", "29", "FUNCTION_TIMEOUT_SECONDS"),
    (
        "Resources/InvalidatorFunction/Properties/Policies/0/Statement/5/Fn::If/1/Resource",
        [{"Ref": "InvalidatorDbRoleSecret"}, {"Ref": "QueryDbRoleSecret"}],
        "may read QueryDbRoleSecret",
    ),
    (
        "Resources/InvalidatorFunction/Properties/Policies/0/Statement/5/Fn::If/1/Resource",
        {"Fn::GetAtt": ["Database", "MasterUserSecret.SecretArn"]},
        "uses the database master secret",
    ),
    (
        "Resources/InvalidatorFunction/Properties/Environment/Variables/DB_SECRET_ID",
        {"Ref": "WriteDbRoleSecret"},
        "DB_SECRET_ID is not the InvalidatorDbRoleSecret",
    ),
    (
        "Resources/InvalidatorFunction/Properties/Environment/Variables/DB_SECRET_ID",
        {"Fn::GetAtt": ["Database", "MasterUserSecret.SecretArn"]},
        "uses the database master secret",
    ),
    ("Resources/InvalidatorDrainSchedule/Condition", DELETE, "trigger mode (PostgreSQL): a drain schedule"),
    ("Resources/OldestReplicationSlotLagAlarm/Condition", DELETE, "slot alarms exist without a slot"),
    ("Conditions/LogicalInvalidation", {"Condition": "IsPostgres"}, "trigger mode (PostgreSQL): logical decoding"),
    ("Conditions/DrainsChanges", {"Condition": "LogicalInvalidation"}, "the outbox is never drained"),
    (
        "Resources/InvalidatorFunction/Properties/Environment/Variables/INVALIDATION_SOURCE",
        "logical",
        "MySQL: the invalidator is told to read a logical slot",
    ),
    ("Resources/IngesterFunction/Properties/Environment/Variables/DB_INVALIDATOR_ROLE_SECRET_ID", DELETE, "invalidator's role"),
]


class TemplateSecurity(unittest.TestCase):
    source = load_source()

    def test_template_has_every_security_property(self):
        self.assertEqual(findings(self.source), [])

    def test_each_check_catches_a_weakened_template(self):
        for path, value, expected in WEAKENINGS:
            with self.subTest(path=path):
                found = findings(weakened(self.source, path, value))
                self.assertTrue(any(expected in f for f in found), f"{path}: {found}")


if __name__ == "__main__":
    sys.exit(unittest.main())
