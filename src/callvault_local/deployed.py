"""Run the template's functions in-process as they are deployed: each with the environment the
template gives it and each AWS call it makes checked against its role's policy.

moto answers whatever it is asked and a test process has whatever environment the test set, so a
function that works in the tests can still fail in AWS: a variable the template sets (or does not)
changes what it does; a call its role does not allow is refused. The test harness
(`tests/conftest.py`) calls `activate()`; from then on every handler `functions.load_handler`
returns runs under `invoke`:

- its environment is the template's for that function (Globals and its own variables, intrinsic
  functions resolved to the local stack's names and ARNs, parameters at their defaults), plus the
  test process's variables the template does not declare for any function; a declared variable the
  test set itself overrides the template's, as `sam local invoke --env-vars` does. The local stand-ins
  for secrets (CALLVAULT_SECRET_*, CALLVAULT_API_KEY_*) are left out: a function reads Secrets
  Manager as deployed. Each invocation sees its own environment (`os.environ` answers per
  invocation), so functions running at once in threads do not see each other's;
- every AWS call it makes (on any botocore client, in its threads too) is mapped to the IAM
  requests it needs (`callvault_local.iam`) and evaluated against the function's statements in the
  template; a call the policy refuses is answered as AWS answers it (AccessDenied, or 403 for a read
  of a missing key without s3:ListBucket) and recorded, which fails the test (`take_refusals`).

`CALLVAULT_IAM_REPORT=DIR` makes each test process write what it checked to DIR at exit;
`python -m callvault_local.deployed DIR` prints it per function.
"""

from __future__ import annotations

import contextvars
import json
import os
import re
import sys
import threading
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from callvault_local import iam, stack
from callvault_local.stack import LOCAL_BUCKET, LOCAL_BUS, LOCAL_TABLE, LocalStack, local_secret_name, vendor_of_secret
from callvault_local.template import TEMPLATE, load

REGION = "us-east-1"
STACK_NAME = "callvault"
LOCAL_SECRET_PREFIXES = ("CALLVAULT_SECRET_", "CALLVAULT_API_KEY_")
Handler = Callable[[Any, Any], Any]


# ---------------------------------------------------------------- the template's functions


@dataclass(frozen=True)
class TemplateFunction:
    name: str  # logical id
    code_uri: Path
    handler: str
    variables: Mapping[str, Any]  # as written: Globals' and its own, intrinsics unresolved
    statements: tuple[Mapping[str, Any], ...]  # its role's, intrinsics unresolved


@cache
def functions(path: Path = TEMPLATE) -> dict[str, TemplateFunction]:
    """Every AWS::Serverless::Function of the template, with its role's statements: its `Policies`
    and any AWS::IAM::Policy attached to its role (`<Function>Role`, as SAM names it)."""
    template = load(path)
    resources = template["Resources"]
    global_vars = template.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {})
    attached: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for resource in resources.values():
        if resource.get("Type") == "AWS::IAM::Policy":
            for role in resource["Properties"]["Roles"]:
                attached[role["Ref"].removesuffix("Role")] += resource["Properties"]["PolicyDocument"]["Statement"]
    found = {}
    for name, resource in resources.items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        props = resource["Properties"]
        statements: list[Mapping[str, Any]] = []
        for policy in props.get("Policies", []):
            if not isinstance(policy, dict) or set(policy) != {"Statement"}:
                raise NotImplementedError(f"{name}: only inline statements are evaluated locally, not {policy!r}")
            statements += policy["Statement"]
        found[name] = TemplateFunction(
            name=name,
            code_uri=path.parent / props["CodeUri"],
            handler=props["Handler"],
            variables={**global_vars, **props.get("Environment", {}).get("Variables", {})},
            statements=tuple(statements + attached[name]),
        )
    return found


@cache
def declared_variables(path: Path = TEMPLATE) -> frozenset[str]:
    """Every variable the template sets for some function."""
    return frozenset(name for function in functions(path).values() for name in function.variables)


@cache
def key_schemas(path: Path = TEMPLATE) -> dict[str, str]:
    """The table's partition key and each index's, by table name (local) and `table/index/name`."""
    ((_, table),) = [(n, r) for n, r in load(path)["Resources"].items() if r.get("Type") == "AWS::DynamoDB::Table"]
    props = table["Properties"]

    def hash_key(schema: list[dict[str, str]]) -> str:
        return next(k["AttributeName"] for k in schema if k["KeyType"] == "HASH")

    schemas = {"": hash_key(props["KeySchema"])}
    for index in props.get("GlobalSecondaryIndexes", []):
        schemas[f"/index/{index['IndexName']}"] = hash_key(index["KeySchema"])
    return schemas


# ---------------------------------------------------------------- intrinsic functions, locally

_NO_VALUE = object()


@dataclass(frozen=True)
class LocalNames:
    """What the template's names are in the local stack."""

    table: str = LOCAL_TABLE
    bucket: str = LOCAL_BUCKET
    secrets: tuple[tuple[str, str], ...] = ()  # (local name, ARN)
    region: str = REGION
    account: str = iam.DEFAULT_ACCOUNT

    @classmethod
    def of(cls, created: LocalStack | None) -> LocalNames:
        if created is None:
            return cls()
        secrets = tuple((local_secret_name(v), a) for v, a in sorted(created.secret_arns.items()))
        return cls(created.table_name, created.bucket_name, secrets)

    def secret_arn(self, logical_id: str) -> str:
        name = local_secret_name(vendor_of_secret(logical_id))
        arn = dict(self.secrets).get(name)
        return arn or f"arn:aws:secretsmanager:{self.region}:{self.account}:secret:{name}"


# Template parameters a test deploys with, beside the defaults (`parameters`): a feature that is
# off by default (CallEvents, AnalyticsDataset) is tested as a stack deployed with it on.
_parameter_values: dict[str, str] = {}


@contextmanager
def parameters(**values: str) -> Iterator[None]:
    """Run the functions, within this block, as a stack deployed with these parameter values."""
    unknown = set(values) - set(load().get("Parameters", {}))
    if unknown:
        raise KeyError(f"template.yaml has no parameter {sorted(unknown)}")
    before = dict(_parameter_values)
    _parameter_values.update(values)
    try:
        yield
    finally:
        _parameter_values.clear()
        _parameter_values.update(before)


class Resolver:
    """Ref, Fn::GetAtt, Fn::Sub, Fn::If, Fn::Join and the conditions, as CloudFormation resolves
    them with every parameter at its default (or as `parameters` sets it) and the resources named
    as in the local stack."""

    def __init__(self, names: LocalNames, path: Path = TEMPLATE, values: Mapping[str, str] | None = None) -> None:
        self.names = names
        self.template = load(path)
        self.values = dict(values or {})

    def ref(self, name: str) -> Any:
        pseudo = {
            "AWS::Region": self.names.region,
            "AWS::AccountId": self.names.account,
            "AWS::StackName": STACK_NAME,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::NoValue": _NO_VALUE,
        }
        if name in pseudo:
            return pseudo[name]
        if name in self.values:
            return self.values[name]
        if name in self.template.get("Parameters", {}):
            return str(self.template["Parameters"][name].get("Default", ""))
        kind = self.template["Resources"].get(name, {}).get("Type")
        if kind == "AWS::DynamoDB::Table":
            return self.names.table
        if kind == "AWS::S3::Bucket":
            return self.names.bucket
        if kind == "AWS::SecretsManager::Secret":
            return self.names.secret_arn(name)
        if kind == "AWS::SQS::Queue":  # the local stack names a queue by its logical id (queues.py)
            return f"https://sqs.{self.names.region}.amazonaws.com/{self.names.account}/{name}"
        if kind == "AWS::Events::EventBus":
            return LOCAL_BUS
        return name

    def get_att(self, name: str, attribute: str) -> str:
        kind = self.template["Resources"].get(name, {}).get("Type")
        region, account = self.names.region, self.names.account
        if kind == "AWS::DynamoDB::Table" and attribute == "Arn":
            return f"arn:aws:dynamodb:{region}:{account}:table/{self.names.table}"
        if kind == "AWS::DynamoDB::Table" and attribute == "StreamArn":
            return f"arn:aws:dynamodb:{region}:{account}:table/{self.names.table}/stream/local"
        if kind == "AWS::S3::Bucket" and attribute == "Arn":
            return iam.s3_bucket_arn(self.names.bucket)
        if kind == "AWS::SQS::Queue" and attribute == "Arn":
            return f"arn:aws:sqs:{region}:{account}:{name}"
        if kind == "AWS::SQS::Queue" and attribute == "QueueName":
            return name
        if kind == "AWS::Events::EventBus" and attribute == "Arn":
            return f"arn:aws:events:{region}:{account}:event-bus/{LOCAL_BUS}"
        raise NotImplementedError(f"Fn::GetAtt {name}.{attribute} is not resolved locally")

    def condition(self, name: str) -> bool:
        return bool(self.value(self.template["Conditions"][name]))

    def _sub(self, text: str, variables: Mapping[str, Any]) -> str:
        def one(match: Any) -> str:
            name = match.group(1)
            if name in variables:
                return str(self.value(variables[name]))
            if "." in name and not name.startswith("AWS::"):
                return self.get_att(*name.split(".", 1))
            return str(self.ref(name))

        return re.sub(r"\$\{([^}!]+)\}", one, text)

    def value(self, value: Any) -> Any:
        if isinstance(value, list):
            return [v for v in (self.value(item) for item in value) if v is not _NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) != 1 or not next(iter(value)).startswith(("Fn::", "Ref", "Condition")):
            return {k: v for k, v in ((k, self.value(v)) for k, v in value.items()) if v is not _NO_VALUE}
        ((function, argument),) = value.items()
        if function == "Ref":
            return self.ref(argument)
        if function == "Fn::GetAtt":
            return self.get_att(*(argument if isinstance(argument, list) else argument.split(".", 1)))
        if function == "Fn::Sub":
            text, variables = (argument, {}) if isinstance(argument, str) else argument
            return self._sub(text, variables)
        if function == "Fn::If":
            name, when_true, when_false = argument
            return self.value(when_true if self.condition(name) else when_false)
        if function == "Fn::Join":
            separator, items = argument
            return separator.join(str(v) for v in self.value(items))
        if function == "Fn::Equals":
            left, right = (str(self.value(v)) for v in argument)
            return left == right
        if function == "Fn::Not":
            return not self.value(argument[0])
        if function == "Fn::And":
            return all(self.value(v) for v in argument)
        if function == "Fn::Or":
            return any(self.value(v) for v in argument)
        if function in ("Condition", "Fn::Condition"):  # `!Condition X` inside Fn::Or, Fn::And...
            return self.condition(argument)
        raise NotImplementedError(f"{function} is not resolved locally")


@dataclass(frozen=True)
class Deployed:
    """One function as deployed against one local stack: its variables and its role's policy."""

    function: TemplateFunction
    variables: Mapping[str, str]
    policy: iam.Policy
    names: LocalNames

    @property
    def key_schemas(self) -> dict[str, str]:
        return {f"{self.names.table}{suffix}": key for suffix, key in key_schemas().items()}


def deployed(function: str, names: LocalNames) -> Deployed:
    """`function` resolved against the local stack's `names` and the parameters in force."""
    return _deployed(function, names, tuple(sorted(_parameter_values.items())))


@cache
def _deployed(function: str, names: LocalNames, values: tuple[tuple[str, str], ...]) -> Deployed:
    """(cached: one parse per function, stack and parameter values)"""
    template_function = functions()[function]
    resolver = Resolver(names, values=dict(values))
    variables = {}
    for name, raw in template_function.variables.items():
        value = resolver.value(raw)
        if value is not _NO_VALUE:
            variables[name] = str(value).lower() if isinstance(value, bool) else str(value)
    policy = iam.Policy.parse(resolver.value(list(template_function.statements)))
    return Deployed(template_function, variables, policy, names)


# ---------------------------------------------------------------- the harness


@dataclass
class Invocation:
    deployed: Deployed
    environment: dict[str, str]


@dataclass(frozen=True)
class Refusal:
    function: str
    operation: str
    action: str
    resource: str
    reason: str

    def __str__(self) -> str:
        return f"{self.function}: {self.operation} needs {self.action} on {self.resource} ({self.reason})"


@dataclass
class Ledger:
    """What the checked functions asked for, across the process (for the report) and since the
    last `take_refusals` (for the test)."""

    # function -> (operation, action, the granting statement's resources) -> calls
    allowed: dict[str, dict[tuple[str, str, str], int]] = field(default_factory=lambda: defaultdict(lambda: defaultdict(int)))
    # function -> (operation, action, resource ARN) -> calls
    refused: dict[str, dict[tuple[str, str, str], int]] = field(default_factory=lambda: defaultdict(lambda: defaultdict(int)))
    pending: list[Refusal] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def allow(self, function: str, operation: str, request: iam.Request, grant: str) -> None:
        with self.lock:
            self.allowed[function][operation, request.action, grant] += 1

    def refuse(self, refusal: Refusal) -> None:
        with self.lock:
            self.refused[refusal.function][refusal.operation, refusal.action, refusal.resource] += 1
            self.pending.append(refusal)


LEDGER = Ledger()
_current: contextvars.ContextVar[Invocation | None] = contextvars.ContextVar("callvault_invocation", default=None)
_active = False
_baseline: dict[str, str] = {}


def active() -> bool:
    return _active


def current() -> Invocation | None:
    return _current.get()


def environment(function: Deployed, process: Mapping[str, str]) -> dict[str, str]:
    """The environment `function` runs with, given the test process's `process` environment."""
    declared = declared_variables()
    kept = {k: v for k, v in process.items() if k not in declared and not k.startswith(LOCAL_SECRET_PREFIXES)}
    overridden = {k: process[k] for k in function.variables if k in process and process[k] != _baseline.get(k)}
    lambda_own = {"AWS_LAMBDA_FUNCTION_NAME": function.function.name, "AWS_REGION": function.names.region}
    return {**kept, **function.variables, **overridden, **lambda_own}


def checks(function: str, code_uri: Path) -> bool:
    """Whether a handler loaded as `function` from `code_uri` is one of the template's (run as
    deployed); a handler of another template (a test's own) is not. The template's code under
    another name is a mistake: a KeyError, not a run with no check."""
    if function in functions():
        return True
    if code_uri.resolve() in {f.code_uri.resolve() for f in functions().values()}:
        raise KeyError(f"{function} is not a function of template.yaml (give its logical id)")
    return False


def wrap(function: str, handler: Handler) -> Handler:
    """`handler` run as the template's `function` (its environment; its calls checked)."""
    if function not in functions():
        raise KeyError(f"{function} is not a function of template.yaml (give its logical id)")

    def invoke(event: Any, context: Any) -> Any:
        resolved = deployed(function, LocalNames.of(stack.last_created()))
        token = _current.set(Invocation(resolved, environment(resolved, _REAL_ENVIRON)))
        try:
            return handler(event, context)
        finally:
            _current.reset(token)

    invoke.__dict__.update(getattr(handler, "__dict__", {}))  # what the handler carries (its vendor, webhook)
    invoke.__wrapped__ = handler  # type: ignore[attr-defined]
    return invoke


def run_as(function: str, code: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
    """`code(*args, **kwargs)` run as the template's `function` would run it (a test's stand-in for
    another function's invocation, say an erasure arriving while a copy runs)."""
    return wrap(function, lambda event, context: code(*args, **kwargs))({}, None)


class _FunctionEnviron(os._Environ):  # type: ignore[type-arg]
    """`os.environ` that answers, inside an invocation, with that invocation's environment (writes
    still go to the process's)."""

    def __getitem__(self, key: str) -> str:
        invocation = _current.get()
        if invocation is None:
            value: str = super().__getitem__(key)
            return value
        return invocation.environment[key]

    def __iter__(self) -> Iterator[str]:
        invocation = _current.get()
        return iter(list(invocation.environment)) if invocation is not None else super().__iter__()

    def __len__(self) -> int:
        invocation = _current.get()
        return len(invocation.environment) if invocation is not None else super().__len__()

    def copy(self) -> dict[str, str]:
        return dict(self)


_REAL_ENVIRON: Mapping[str, str] = os.environ


def _denied(operation: str, service: str, refusal: Refusal) -> tuple[Any, dict[str, Any]]:
    """The answer AWS gives a call its caller may not make."""
    role = f"arn:aws:sts::{iam.DEFAULT_ACCOUNT}:assumed-role/{refusal.function}Role"
    message = f"User: {role} is not authorized to perform: {refusal.action} on resource: {refusal.resource}"
    if service == "s3":
        error = (
            {"Code": "403", "Message": "Forbidden"} if operation == "HeadObject" else {"Code": "AccessDenied", "Message": message}
        )
    elif service == "sqs":
        error = {"Code": "AccessDenied", "Message": message}
    else:
        error = {"Code": "AccessDeniedException", "Message": message}
    parsed = {"Error": error, "ResponseMetadata": {"HTTPStatusCode": 403, "HTTPHeaders": {}}}
    return SimpleNamespace(status_code=403, headers={}, content=b"", text=""), parsed


def _check(params: Any, model: Any, context: dict[str, Any], **_: Any) -> None:
    """before-parameter-build: decide the call of the invocation running now, if any."""
    invocation = _current.get()
    if invocation is None:
        return
    function = invocation.deployed
    name = function.function.name
    operation, service = model.name, model.service_model.service_name
    call = iam.Call(service, operation, params, region=context.get("client_region") or REGION, account=function.names.account)
    try:
        needs = iam.requests_for(call, function.key_schemas, dict(function.names.secrets))
    except NotImplementedError as exc:
        refusal = Refusal(name, operation, f"{service}:{operation}", "?", f"not mapped to IAM: {exc}")
        LEDGER.refuse(refusal)
        context["callvault_denied"] = refusal
        return
    for request in needs.requests:
        grant = function.policy.grant(request)
        if grant is None:
            refusal = Refusal(name, operation, request.action, request.resource, "the role's policy does not allow it")
            LEDGER.refuse(refusal)
            context["callvault_denied"] = refusal
            return
        LEDGER.allow(name, operation, request, grant)
    if needs.missing_object_needs is not None and function.policy.grant(needs.missing_object_needs) is None:
        context["callvault_missing_is_403"] = (name, needs.missing_object_needs)


def _refuse(model: Any, context: dict[str, Any], **_: Any) -> tuple[Any, dict[str, Any]] | None:
    """before-call: answer a refused call as AWS does, without sending it."""
    refusal = context.get("callvault_denied")
    if refusal is None:
        return None
    return _denied(model.name, model.service_model.service_name, refusal)


def _hide_missing(http_response: Any, parsed: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
    """after-call: S3 tells a caller without s3:ListBucket 403, not 404, for a key that is not there."""
    hidden = context.get("callvault_missing_is_403")
    if hidden is None or http_response.status_code != 404:
        return
    name, request = hidden
    refusal = Refusal(name, model.name, request.action, request.resource, "a missing key is 403, not 404, without s3:ListBucket")
    LEDGER.refuse(refusal)
    _, answer = _denied(model.name, "s3", refusal)
    parsed.clear()
    parsed.update(answer)


def take_refusals() -> list[Refusal]:
    """The refusals since the last call (and forget them)."""
    with LEDGER.lock:
        taken, LEDGER.pending[:] = list(LEDGER.pending), []
    return taken


def activate() -> None:
    """Check every AWS call a wrapped handler makes, from now on, in this process. Call it before
    any boto3 session is made (botocore copies its handlers into each new session)."""
    global _active, _REAL_ENVIRON
    if _active:
        return
    import botocore.handlers

    _baseline.update(os.environ)
    botocore.handlers.BUILTIN_HANDLERS += [
        ("before-parameter-build", _check),
        ("before-call", _refuse),
        ("after-call", _hide_missing),
    ]
    real = os.environ
    _REAL_ENVIRON = real  # shares its store with the new os.environ, and answers for the process
    # Replaced, not cleared: the new mapping shares the process's store (B003 warns of the opposite).
    os.environ = _FunctionEnviron(real._data, real.encodekey, real.decodekey, real.encodevalue, real.decodevalue)  # type: ignore[attr-defined]  # noqa: B003
    # A function's threads are the function's: a pool task runs in the submitter's context.
    submit = ThreadPoolExecutor.submit

    def submit_in_context(self: ThreadPoolExecutor, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        return submit(self, contextvars.copy_context().run, fn, *args, **kwargs)

    ThreadPoolExecutor.submit = submit_in_context  # type: ignore[method-assign,assignment]
    _active = True


# ---------------------------------------------------------------- the report


def write_report(directory: Path, worker: str) -> None:
    """What this process checked, for `report`."""
    directory.mkdir(parents=True, exist_ok=True)
    with LEDGER.lock:
        data = {
            kind: {fn: [[*key, n] for key, n in entries.items()] for fn, entries in table.items()}
            for kind, table in (("allowed", LEDGER.allowed), ("refused", LEDGER.refused))
        }
    (directory / f"{worker}-{os.getpid()}.json").write_text(json.dumps(data))


def report(directory: Path) -> str:
    """Per function: calls checked, distinct operation/action/resource pairs allowed, refusals."""
    allowed: dict[str, dict[tuple[str, ...], int]] = defaultdict(lambda: defaultdict(int))
    refused: dict[str, dict[tuple[str, ...], int]] = defaultdict(lambda: defaultdict(int))
    for file in sorted(directory.glob("*.json")):
        data = json.loads(file.read_text())
        for kind, table in (("allowed", allowed), ("refused", refused)):
            for fn, entries in data[kind].items():
                for *key, n in entries:
                    # One secret per test stack, each with its own random suffix: one grant.
                    table[fn][tuple(re.sub(r"(:secret:[^,]*?)-\w{6}\b", r"\1-*", part) for part in key)] += n
    lines = [f"{'function':40} {'requests':>8} {'pairs':>5} {'refused':>7}"]
    for fn in sorted(set(allowed) | set(refused) | set(functions())):
        calls = sum(allowed[fn].values()) + sum(refused[fn].values())
        lines.append(f"{fn:40} {calls:8} {len(allowed[fn]) + len(refused[fn]):5} {sum(refused[fn].values()):7}")
        for (operation, action, grant), n in sorted(allowed[fn].items()):
            lines.append(f"    ok      {operation} -> {action} on {grant} ({n})")
        for (operation, action, resource), n in sorted(refused[fn].items()):
            lines.append(f"    REFUSED {operation} -> {action} on {resource} ({n})")
    return "\n".join(lines)


if __name__ == "__main__":
    print(report(Path(sys.argv[1])))
