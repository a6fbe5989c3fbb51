"""template.yaml rendered as CloudFormation would for odd stack names and every template mode,
each resource checked against CloudFormation's resource schemas and against the naming rules
AWS documents but no schema carries.

Linters see `!Sub ${AWS::StackName}-x`, not the string AWS receives. This script runs the SAM
transform offline, decides every condition for one set of parameters, substitutes the
pseudo-parameters (stack name, stack ID, region, account) and the values other resources will
have, and validates every resource's properties against its schema as bundled with cfn-lint
(patterns, lengths, enums, required and unknown properties). Each check also fails on a
deliberately weakened copy of the template.

Run: python tests/template_render.py (needs cfn-lint and aws-sam-translator; scripts/test.sh).
"""

import functools
import hashlib
import ipaddress
import itertools
import re
import sys
import unittest

import jsonschema
import regex
from cfnlint.schema import PROVIDER_SCHEMA_MANAGER

from template_security import (
    DELETE,
    SUB_VARIABLE,
    deployed,
    holds,
    load_source,
    to_cloudformation,
    weakened,
    with_defaults,
)

REGION = "us-east-1"
ACCOUNT = "123456789012"
NOVALUE = {"Ref": "AWS::NoValue"}

# Stack names CloudFormation accepts: a letter, then letters, digits and hyphens, at most 128.
# Capitals, doubled and trailing hyphens and the full length are all allowed.
STACK_NAMES = ("cache-aside", "CacheAside", "a", "My--Stack-", "Ab-" + "Cd9-" * 31 + "x")
# Stack IDs end in a version-1 UUID (lower-case hex).
STACK_UUIDS = ("1c2fa620-982a-11e3-aff7-50e2416294e0", "e722ae60-fe62-11e8-9a0e-0ae8cc519968")

CACHE_MODES = (
    ("token replication group", {}),
    ("IAM replication group", {"CacheAuth": "iam"}),
    ("IAM cluster with replicas", {"CacheAuth": "iam", "RedisClusterMode": "enabled", "RedisReplicasPerShard": 1}),
    ("token cluster", {"RedisClusterMode": "enabled"}),
    ("serverless", {"CacheMode": "serverless"}),
)
# The other issues' parameters, in combinations the template's Rules accept.
OTHER_MODES = (
    ("defaults", {}),
    (
        "PostgreSQL trigger push, IAM reviews, SQL restaurants, reserved concurrency, alarm topic",
        {
            "InvalidationSource": "trigger",
            "DatabaseChangeEvents": "enabled",
            "ReviewsAuth": "iam",
            "RestaurantOrigin": "sql",
            "QueryApiReservedConcurrency": 5,
            "AlarmTopicArn": f"arn:aws:sns:{REGION}:{ACCOUNT}:alarms",
        },
    ),
    (
        "MySQL, an outside JWT issuer",
        {
            "DatabaseEngine": "mysql",
            "ReviewsAuth": "jwt",
            "ReviewsJwtIssuer": "https://issuer.example.com",
            "ReviewsJwtAudience": "client-1",
        },
    ),
    ("PostgreSQL trigger without push, open reviews", {"InvalidationSource": "trigger", "ReviewsAuth": "none"}),
)

# The IDs ElastiCache stores: "must begin with a letter; can contain only ASCII letters, digits
# and hyphens; cannot end with a hyphen or contain two consecutive hyphens" (CreateUser,
# CreateUserGroup, CreateServerlessCache, CreateReplicationGroup), stored in lower case, and at
# most 40 characters (user groups and serverless caches; replication groups allow 40 too). The
# schemas carry only an unanchored "[a-z][a-z0-9\\-]*" or nothing. Lower case is required here,
# not only allowed: an IAM user's name must equal its ID (auth-iam.html, "Limitations"), and a
# token is signed for the name as configured.
ELASTICACHE_ID = re.compile(r"[a-z](?:[a-z0-9]|-(?=[a-z0-9])){0,39}")
ELASTICACHE_IDS = {
    "AWS::ElastiCache::User": "UserId",
    "AWS::ElastiCache::UserGroup": "UserGroupId",
    "AWS::ElastiCache::ServerlessCache": "ServerlessCacheName",
    "AWS::ElastiCache::ReplicationGroup": "ReplicationGroupId",
}
# Lambda's limit on a function's environment variables, names and values together.
ENVIRONMENT_LIMIT = 4096
# Tags, EC2's limits (the strictest; most services allow 128 and 256): "Maximum key length -
# 127 Unicode characters", "Maximum value length - 255 Unicode characters". cfn-lint's EC2
# schemas carry neither.
TAG_KEY_LIMIT, TAG_VALUE_LIMIT = 127, 255
# CloudWatch PutMetricData: a namespace is 1 to 255 characters and does not start with ":".
NAMESPACE = re.compile(r"[^:].{0,254}", re.DOTALL)
# The HTTP API's name comes from the OpenAPI title, where no schema looks. AWS documents no
# limit for it; it is kept within the stack name's own 128 so nothing longer reaches it.
API_TITLE_LIMIT = 128
# What Ref answers for resource types whose physical ID is not a generated name ({hex}: 17 hex
# digits of the logical ID, so two resources never share one).
REF_FORMS = {
    "AWS::EC2::VPC": "vpc-{hex}",
    "AWS::EC2::Subnet": "subnet-{hex}",
    "AWS::EC2::SecurityGroup": "sg-{hex}",
    "AWS::EC2::RouteTable": "rtb-{hex}",
    "AWS::EC2::VPCEndpoint": "vpce-{hex}",
    "AWS::SecretsManager::Secret": f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{{name}}-AbCdEf",
    "AWS::SNS::Topic": f"arn:aws:sns:{REGION}:{ACCOUNT}:{{name}}",
    "AWS::SQS::Queue": f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{{name}}",
    "AWS::Cognito::UserPool": f"{REGION}_AbCdEfGhI",
    "AWS::Cognito::UserPoolClient": "1example23456789example0123",
    "AWS::ApiGatewayV2::Api": "a1b2c3d4e5",
    "AWS::IAM::Role": "{name}",
}


def generated_name(stack_name, logical_id, limit=64):
    """A name as CloudFormation generates one: stack name and logical ID, shortened to fit, and
    a random suffix."""
    suffix = "-AbCdEf123456"
    room = limit - len(suffix)
    stem = f"{stack_name[: room // 2]}-{logical_id}"[:room]
    return stem + suffix


class Stack:
    """What CloudFormation knows when it resolves the intrinsics of one stack."""

    def __init__(self, cfn, resources, params, name, uuid):
        self.cfn, self.resources, self.name = cfn, resources, name
        self.id = f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/{name}/{uuid}"
        declared = cfn.get("Parameters", {})
        self.params = {n: p.get("Default") for n, p in declared.items()} | params
        self.numbers = {n for n, p in declared.items() if p.get("Type") == "Number"}
        # Resources referred to that this mode does not create (CloudFormation refuses those).
        self.missing = set()

    def ref(self, name):
        pseudo = {
            "AWS::StackName": self.name,
            "AWS::StackId": self.id,
            "AWS::Region": REGION,
            "AWS::AccountId": ACCOUNT,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
        }
        if name in pseudo:
            return pseudo[name]
        if name not in self.resources and name not in self.params:
            self.missing.add(name)
            return f"missing-{name}"
        if name in self.params:
            value = self.params[name]
            if name in self.numbers:
                number = float(value)
                return int(number) if number.is_integer() else number
            return str(value)
        return self.physical_id(name)

    @functools.cache
    def physical_id(self, name):
        resource = self.resources[name]
        kind, props = resource["Type"], resource.get("Properties", {})
        # An ElastiCache user, user group or cache answers its ID, stored in lower case.
        if kind in ELASTICACHE_IDS:
            given = props.get(ELASTICACHE_IDS[kind])
            if given is not None:
                return str(render(given, self)).lower()
            # Generated by CloudFormation: modelled as a valid ID, unique per logical ID.
            return "ca-gen-" + hashlib.sha256(name.encode()).hexdigest()[:12]
        if kind == "AWS::Lambda::Function" and "FunctionName" in props:
            return render(props["FunctionName"], self)
        if kind == "AWS::S3::Bucket":
            return generated_name(self.name, name, 63).lower()
        form = REF_FORMS.get(kind, "{name}")
        digest = hashlib.sha256(name.encode()).hexdigest()[:17]
        return form.format(name=generated_name(self.name, name), hex=digest)

    def arn(self, name):
        kind = self.resources[name]["Type"]
        service = kind.split("::")[1].lower()
        physical = self.physical_id(name)
        return {
            "AWS::Lambda::Function": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{physical}",
            "AWS::S3::Bucket": f"arn:aws:s3:::{physical}",
            "AWS::DynamoDB::Table": f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{physical}",
            "AWS::SQS::Queue": f"arn:aws:sqs:{REGION}:{ACCOUNT}:{generated_name(self.name, name)}",
            "AWS::IAM::Role": f"arn:aws:iam::{ACCOUNT}:role/{physical}",
            "AWS::Logs::LogGroup": f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{physical}:*",
            "AWS::ElastiCache::User": f"arn:aws:elasticache:{REGION}:{ACCOUNT}:user:{physical}",
            "AWS::ElastiCache::ServerlessCache": f"arn:aws:elasticache:{REGION}:{ACCOUNT}:serverlesscache:{physical}",
            "AWS::Events::Rule": f"arn:aws:events:{REGION}:{ACCOUNT}:rule/{physical}",
        }.get(kind, f"arn:aws:{service}:{REGION}:{ACCOUNT}:{physical}")

    def getatt(self, name, attribute):
        if name not in self.resources:
            self.missing.add(name)
            return f"missing-{name}.{attribute}"
        if attribute in ("Arn", "ARN"):
            return self.arn(name)
        if attribute == "StreamArn":
            return f"{self.arn(name)}/stream/2026-01-01T00:00:00.000"
        if attribute.endswith(".Address"):
            return f"{self.physical_id(name)}.abc123.{REGION}.cache.amazonaws.com"
        if attribute.endswith(".Port"):
            return "6380" if attribute.startswith("ReaderEndpoint") else "6379"
        if attribute == "MasterUserSecret.SecretArn":
            return f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:rds!db-0a1b2c3d-AbCdEf"
        return f"{name}-{attribute}"


def render(node, stack):
    """`node` with its intrinsic functions resolved (Fn::If is already decided by `deployed`)."""
    if isinstance(node, list):
        return [render(i, stack) for i in node if i != NOVALUE]
    if not isinstance(node, dict):
        return node
    if len(node) == 1:
        ((key, value),) = node.items()
        if key == "Ref":
            return stack.ref(value)
        if key == "Fn::GetAtt":
            name, attribute = value if isinstance(value, list) else value.split(".", 1)
            return stack.getatt(name, attribute)
        if key == "Fn::Select":
            return render(value[1], stack)[int(render(value[0], stack))]
        if key == "Fn::Split":
            return str(render(value[1], stack)).split(value[0])
        if key == "Fn::Join":
            return value[0].join(str(v) for v in render(value[1], stack))
        if key == "Fn::GetAZs":
            return [f"{REGION}a", f"{REGION}b", f"{REGION}c"]
        if key == "Fn::Cidr":
            block, count, bits = (render(v, stack) for v in value)
            subnets = ipaddress.ip_network(block).subnets(new_prefix=32 - int(bits))
            return [str(s) for s in itertools.islice(subnets, int(count))]
        if key == "Fn::Sub":
            text, local = (value, {}) if isinstance(value, str) else (value[0], render(value[1], stack))

            def one(match):
                var = match.group(1)
                if var in local:
                    return str(local[var])
                if "." in var and not var.startswith("AWS::"):
                    return str(stack.getatt(*var.split(".", 1)))
                return str(stack.ref(var))

            return SUB_VARIABLE.sub(one, text)
    return {k: render(v, stack) for k, v in node.items() if v != NOVALUE}


def _enum_any_case(validator, allowed, instance, schema):
    if isinstance(instance, str) and instance.lower() not in {str(a).lower() for a in allowed}:
        yield jsonschema.ValidationError(f"{instance!r} is not one of {allowed} (in any case)")


def _cloudformation_types():
    """JSON Schema's types as CloudFormation applies them: it converts a parameter's string to
    the boolean or number a property takes ("true", "25"), and a number to a string."""
    base = jsonschema.Draft7Validator.TYPE_CHECKER

    def boolean(checker, instance):
        return base.is_type(instance, "boolean") or instance in ("true", "false")

    def number(checker, instance):
        if isinstance(instance, str):
            try:
                float(instance)
                return True
            except ValueError:
                return False
        return base.is_type(instance, "number")

    def integer(checker, instance):
        if isinstance(instance, str):
            return re.fullmatch(r"-?\d+", instance) is not None
        return base.is_type(instance, "integer")

    def string(checker, instance):
        return base.is_type(instance, "string") or base.is_type(instance, "number")

    return base.redefine_many({"boolean": boolean, "number": number, "integer": integer, "string": string})


def _as_text(instance):
    """A string, or a number CloudFormation would pass as one (None for anything else)."""
    if isinstance(instance, bool):
        return None
    return str(instance) if isinstance(instance, (str, int, float)) else None


def _pattern(validator, pattern, instance, schema):
    text = _as_text(instance)
    if text is not None and not regex.search(pattern, text):
        yield jsonschema.ValidationError(f"{text!r} does not match {pattern!r}")


def _max_length(validator, limit, instance, schema):
    text = _as_text(instance)
    if text is not None and len(text) > limit:
        yield jsonschema.ValidationError(f"{text!r} is too long (more than {limit} characters)")


def _min_length(validator, limit, instance, schema):
    text = _as_text(instance)
    if text is not None and len(text) < limit:
        yield jsonschema.ValidationError(f"{text!r} is too short (fewer than {limit} characters)")


# CloudFormation's schemas add one validating keyword to JSON Schema (draft 7), and write their
# patterns in ECMA-262 syntax (\p{L} and the like), which `regex` reads and `re` does not.
Validator = jsonschema.validators.extend(
    jsonschema.Draft7Validator,
    {
        "enumCaseInsensitive": _enum_any_case,
        "pattern": _pattern,
        "maxLength": _max_length,
        "minLength": _min_length,
    },
    type_checker=_cloudformation_types(),
)


@functools.cache
def validator(kind):
    return Validator(PROVIDER_SCHEMA_MANAGER.get_resource_schema(REGION, kind).schema)


def name_findings(where, rendered, resources):
    """The rules AWS documents for ElastiCache IDs and users, which no schema carries."""
    problems = []
    kinds = {n: resources[n]["Type"] for n in rendered}
    for name, props in rendered.items():
        field = ELASTICACHE_IDS.get(kinds[name])
        if field in props and not ELASTICACHE_ID.fullmatch(str(props[field])):
            problems.append(
                f"{where}: {name}.{field} {props[field]!r} is not 1 to 40 lower-case letters, digits "
                "and single hyphens, starting with a letter and ending with a letter or digit"
            )
    # Keyed as stored (lower case), which is what Ref answers.
    users = {str(p.get("UserId")).lower(): p for n, p in rendered.items() if kinds[n] == "AWS::ElastiCache::User"}
    for p in users.values():
        # auth-iam.html, "Limitations": the username and user ID of an IAM-enabled user must be identical.
        if str(p.get("AuthenticationMode", {}).get("Type", "")).lower() == "iam" and p.get("UserName") != p.get("UserId"):
            problems.append(f"{where}: the IAM user {p.get('UserId')!r} is named {p.get('UserName')!r}, not its ID")
    for name, props in rendered.items():
        if kinds[name] != "AWS::ElastiCache::UserGroup":
            continue
        members = [users[u] for u in props.get("UserIds", []) if u in users]
        if len(members) != len(props.get("UserIds", [])):
            problems.append(f"{where}: {name} lists a user ID no user of the stack has: {props.get('UserIds')}")
        names = [m.get("UserName") for m in members]
        if len(names) != len(set(names)):
            problems.append(f"{where}: {name} holds two users with one name")
    return problems


def function_environments(rendered, resources):
    """Each function's name and rendered environment variables."""
    for name, props in rendered.items():
        if resources[name]["Type"] == "AWS::Lambda::Function":
            yield name, props.get("Environment", {}).get("Variables", {})


def configuration_findings(where, rendered, resources, stack):
    """What the functions are told names what the stack created, as ElastiCache stores it."""
    problems = []
    # As stored: lower case.
    user_ids = {str(p.get("UserId")).lower() for n, p in rendered.items() if resources[n]["Type"] == "AWS::ElastiCache::User"}
    caches = {
        stack.physical_id(n)
        for n in rendered
        if resources[n]["Type"] in ("AWS::ElastiCache::ServerlessCache", "AWS::ElastiCache::ReplicationGroup")
    }
    for name, env in function_environments(rendered, resources):
        # Lambda quotas: "4 KB, for all environment variables associated with the function, in aggregate".
        size = sum(len(k.encode()) + len(str(v).encode()) for k, v in env.items())
        if size > ENVIRONMENT_LIMIT:
            problems.append(f"{where}: {name}'s environment is {size} bytes, over Lambda's {ENVIRONMENT_LIMIT}")
        if "REDIS_IAM_USER" in env and env["REDIS_IAM_USER"] not in user_ids:
            problems.append(f"{where}: {name}: REDIS_IAM_USER {env['REDIS_IAM_USER']!r} is no user's ID")
        cache = env.get("REDIS_IAM_CACHE_NAME")
        if cache is not None and (cache != cache.lower() or cache not in caches):
            problems.append(f"{where}: {name}: REDIS_IAM_CACHE_NAME {cache!r} is not a cache's lower-case ID")
    return problems


def limit_findings(where, rendered, resources, stack):
    """Limits AWS documents on values built from the stack name that no schema checks."""
    problems = []
    for name, props in rendered.items():
        tags = props.get("Tags", [])
        for tag in tags if isinstance(tags, list) else []:
            key, value = str(tag.get("Key", "")), str(tag.get("Value", ""))
            if len(key) > TAG_KEY_LIMIT or len(value) > TAG_VALUE_LIMIT:
                problems.append(f"{where}: {name} has a tag over {TAG_KEY_LIMIT}/{TAG_VALUE_LIMIT} characters: {key!r}")
        if resources[name]["Type"] == "AWS::ApiGatewayV2::Api":
            title = str(props.get("Body", {}).get("info", {}).get("title", ""))
            if not 1 <= len(title) <= API_TITLE_LIMIT:
                problems.append(f"{where}: {name}'s OpenAPI title (the API's name) is {len(title)} characters")
    namespaces = set()
    for name, env in function_environments(rendered, resources):
        namespace = env.get("METRICS_NAMESPACE")
        if namespace is not None:
            namespaces.add(namespace)
            if not NAMESPACE.fullmatch(namespace):
                problems.append(f"{where}: {name}'s METRICS_NAMESPACE is not a CloudWatch namespace (1-255 characters)")
    # The hit-ratio alarm reads what the functions publish.
    for name, props in rendered.items():
        if resources[name]["Type"] != "AWS::CloudWatch::Alarm":
            continue
        for query in props.get("Metrics", []):
            namespace = query.get("MetricStat", {}).get("Metric", {}).get("Namespace", "AWS/")
            if not namespace.startswith("AWS/") and namespace not in namespaces:
                problems.append(f"{where}: {name} watches namespace {namespace!r}, which no function publishes to")
    return problems


def output_findings(where, cfn, params, stack):
    """Outputs of this mode render, and name only resources it creates."""
    for output in cfn.get("Outputs", {}).values():
        if "Condition" not in output or holds(output["Condition"], cfn, params):
            render(with_defaults(output.get("Value"), cfn, params), stack)
    return [f"{where}: refers to resources this mode does not create: {sorted(stack.missing)}"] if stack.missing else []


def findings(source, stack_names=STACK_NAMES, uuids=STACK_UUIDS):
    problems = []
    cfn = to_cloudformation(source)
    for (cache_label, cache), (other_label, other) in itertools.product(CACHE_MODES, OTHER_MODES):
        params = cache | other
        resources = deployed(cfn, params)
        for stack_name, uuid in itertools.product(stack_names, uuids):
            stack = Stack(cfn, resources, params, stack_name, uuid)
            where = f"{cache_label} / {other_label}, stack {stack_name!r}"
            rendered = {n: render(r.get("Properties", {}), stack) for n, r in resources.items()}
            for name, props in rendered.items():
                for error in validator(resources[name]["Type"]).iter_errors(props):
                    at = "/".join(str(p) for p in error.absolute_path)
                    problems.append(f"{where}: {name}{'.' + at if at else ''}: {error.message[:300]}")
            problems.extend(name_findings(where, rendered, resources))
            problems.extend(configuration_findings(where, rendered, resources, stack))
            problems.extend(limit_findings(where, rendered, resources, stack))
            problems.extend(output_findings(where, cfn, params, stack))
    return sorted(set(problems))


SUB = "Fn::Sub"
# Each weakening, and a phrase the finding it causes must contain.
WEAKENINGS = [
    ("Resources/RedisAppUser/Properties/UserId", {SUB: "${AWS::StackName}-app"}, "RedisAppUser.UserId 'CacheAside-app'"),
    ("Resources/RedisAppUser/Properties/UserName", "app", "is named 'app', not its ID"),
    ("Resources/RedisUserGroup/Properties/UserGroupId", {SUB: "${AWS::StackName}-users"}, "RedisUserGroup.UserGroupId"),
    ("Resources/RedisUserGroup/Properties/UserGroupId", {SUB: "ca-${AWS::AccountId}-users-of-the-cache-aside-stack"}, "1 to 40"),
    ("Resources/ServerlessRedis/Properties/ServerlessCacheName", {SUB: "${AWS::StackName}"}, "ServerlessRedis.ServerlessCacheName"),
    ("Resources/RedisDisabledDefaultUser/Properties/Engine", "Valkey", "is not one of"),
    ("Resources/RedisAppUser/Properties/AuthenticationMode/Type", "token", "(in any case)"),
    ("Resources/InvalidatorFunction/Properties/FunctionName", {SUB: "${AWS::StackName}-invalidator"}, "FunctionName"),
    ("Resources/ReviewsUserPool/Properties/UserPoolName", {SUB: "${AWS::StackName}-reviewers"}, "UserPoolName"),
    ("Resources/RedisSecurityGroup/Properties/VpcIdentifier", {"Ref": "Vpc"}, "Additional properties"),
    ("Globals/Function/Environment/Variables/REDIS_IAM_USER", {SUB: "${AWS::StackName}-app"}, "is no user's ID"),
    ("Globals/Function/Environment/Variables/METRICS_NAMESPACE", {SUB: "${AWS::StackName}" * 32}, "over Lambda's 4096"),
    ("Globals/Function/Environment/Variables/METRICS_NAMESPACE", {SUB: "CacheAside/${AWS::StackName}-x${AWS::StackName}"}, "not a CloudWatch namespace"),
    ("Globals/Function/Environment/Variables/METRICS_NAMESPACE", {SUB: "CacheAside-${AWS::StackName}"}, "which no function publishes to"),
    ("Resources/Vpc/Properties/Tags/0/Value", {SUB: "${AWS::StackName}-vpc-${AWS::StackName}-${AWS::StackName}"}, "has a tag over"),
    ("Resources/HttpApi/Properties/DefinitionBody/info/title", {SUB: "${AWS::StackName}-api"}, "OpenAPI title"),
    ("Outputs/RedisAuthSecretArn/Condition", DELETE, "does not create: ['RedisAuthSecret']"),
]


class TemplateRender(unittest.TestCase):
    source = load_source()

    def test_every_mode_renders_valid_for_every_stack_name(self):
        self.assertEqual(findings(self.source), [])

    def test_each_check_catches_a_weakened_template(self):
        for path, value, expected in WEAKENINGS:
            with self.subTest(path=path):
                found = findings(weakened(self.source, path, value), uuids=STACK_UUIDS[:1])
                self.assertTrue(any(expected in f for f in found), f"{path}: {found[:5]}")


if __name__ == "__main__":
    sys.exit(unittest.main())
