"""`sam local invoke -e events/<function>.json --env-vars env.local.json` against `make dev`'s moto.

Docker is not here, so the container is stood in for: SAM's own code resolves each function's
environment from the template and the env-vars file, and the function's handler runs in a fresh
process with exactly that environment and its code paths (layer, function), on its sample event.
"""

from __future__ import annotations

import json
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from callvault_local.sample_events import ENV_VARS_FILE, SAMPLES, resigned, sam_local_env_vars
from callvault_local.template import ROOT, Route, routes
from tests.e2e.conftest import RunningStack

WEBHOOK_ROUTES = [r for r in routes() if r.path in SAMPLES]
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # samtranslator's own, when SAM reads the template

# The container's side: the handler named by the template, invoked once with a Lambda context.
_INVOKE = """
import importlib, json, sys, types
module, _, name = sys.argv[1].rpartition(".")
handler = getattr(importlib.import_module(module), name)
context = types.SimpleNamespace(function_name=sys.argv[2], memory_limit_in_mb=512, aws_request_id="sam-local",
                                invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:" + sys.argv[2])
print(json.dumps(handler(json.load(open(sys.argv[3])), context)))
"""


def test_env_vars_file_is_current() -> None:
    assert json.loads(ENV_VARS_FILE.read_text()) == sam_local_env_vars(), "stale: run `make events`"


@cache
def _functions() -> Any:
    from samcli.lib.providers.sam_function_provider import SamFunctionProvider
    from samcli.lib.providers.sam_stack_provider import SamLocalStackProvider

    # As samconfig.toml has it: SAM CLI expands the template's Fn::ForEach loops itself.
    stacks, _ = SamLocalStackProvider.get_stacks(str(ROOT / "template.yaml"), language_extensions_enabled=True)
    return SamFunctionProvider(stacks)


def _sam_environment(function: str, env_vars: dict[str, Any]) -> dict[str, str]:
    """What `sam local invoke FUNCTION --env-vars FILE --region us-east-1` gives the container."""
    from samcli.commands.local.lib.local_lambda import LocalLambdaRunner

    provider = _functions()
    runner = LocalLambdaRunner(
        local_runtime=None,  # only the environment is asked of it
        function_provider=provider,
        cwd=str(ROOT),
        real_path=str(ROOT),
        aws_region="us-east-1",
        env_vars_values=env_vars,
    )
    environment: dict[str, str] = runner._make_env_vars(provider.get(function)).resolve()
    return environment


@pytest.mark.parametrize("route", WEBHOOK_ROUTES, ids=lambda r: r.function)
def test_sam_local_invoke_stores_through_make_dev(route: Route, dev_stack: RunningStack, tmp_path: Path) -> None:
    moto_port = int(dev_stack.moto_url.rsplit(":", 1)[1])
    environment = _sam_environment(route.function, sam_local_env_vars(moto_port))
    assert environment["AWS_ENDPOINT_URL"] == dev_stack.moto_url
    assert environment["TABLE_NAME"] == "callvault-sessions" and environment["BUCKET_NAME"] == "callvault-archive"

    code_paths = [str(ROOT / "layers/callvault"), str(ROOT / route.code_uri)]  # /opt/python, /var/task
    event_file = tmp_path / "event.json"  # the sample, its signature made again if it carries a time
    event_file.write_text(json.dumps(resigned(json.loads((ROOT / "events" / f"{route.code_uri.name}.json").read_text()))))
    done = subprocess.run(
        [sys.executable, "-c", _INVOKE, route.handler, route.function, str(event_file)],
        env={**environment, "PYTHONPATH": ":".join(code_paths), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    reply = json.loads(done.stdout.strip().splitlines()[-1])
    assert reply["statusCode"] == 200, reply
    body = json.loads(reply["body"])
    assert body["status"] == "stored"
    from callvault.store import session_pk

    key = session_pk(body["vendor"], body["session_id"])
    assert any(item["pk"]["S"] == key and item["sk"]["S"] == f"EVENT#{body['event_id']}" for item in dev_stack.items())
