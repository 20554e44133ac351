"""What local tooling reads from `template.yaml`: the HTTP routes and the resources to mock.

The template says each webhook once, in `Fn::ForEach` loops (AWS::LanguageExtensions). `load`
gives it expanded, as CloudFormation's transform hands it to SAM: every resource written out.

    python -m callvault_local.template > expanded.json    (what checkov scans)
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"


class _CfnLoader(yaml.SafeLoader):  # type: ignore[misc]
    """YAML with CloudFormation's short tags (!Ref, !Sub, ...) read as `{"Fn::X": value}`."""


def _tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if suffix == "GetAtt" and isinstance(value, str):
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


_CfnLoader.add_multi_constructor("!", _tag)


def source(path: Path = TEMPLATE) -> dict[str, Any]:
    """The template as written (its loops not expanded)."""
    with path.open() as handle:
        loaded: dict[str, Any] = yaml.load(handle, Loader=_CfnLoader)  # noqa: S506 - a SafeLoader subclass  # nosec B506
    return loaded


@cache
def load(path: Path = TEMPLATE) -> dict[str, Any]:
    """The template with its language extensions expanded: what SAM and CloudFormation deploy."""
    return expand(source(path))


def expand(template: dict[str, Any]) -> dict[str, Any]:
    """What the AWS::LanguageExtensions transform makes of `template` before SAM sees it.

    The loops are expanded by SAM CLI's own expander (the one `sam build` and `sam local` use);
    the lookups they leave are then resolved as the transform resolves them: `Fn::FindInMap` on
    literal keys (which also gives `Ref` the names it computes). A `Fn::Sub` whose variables all
    became literals is written out too, so an expanded resource reads as if written by hand.
    """
    transforms = template.get("Transform", [])
    if "AWS::LanguageExtensions" not in (transforms if isinstance(transforms, list) else [transforms]):
        return template
    from samcli.lib.cfn_language_extensions.models import TemplateProcessingContext
    from samcli.lib.cfn_language_extensions.pipeline import ProcessingPipeline
    from samcli.lib.cfn_language_extensions.processors import ForEachProcessor, TemplateParsingProcessor

    context = TemplateProcessingContext(fragment=copy.deepcopy(template))
    expanded: dict[str, Any] = ProcessingPipeline([TemplateParsingProcessor(), ForEachProcessor()]).process_template(context)
    resolved: dict[str, Any] = _resolve(expanded, expanded.get("Mappings", {}))
    return resolved


def _resolve(value: Any, mappings: dict[str, Any]) -> Any:
    if isinstance(value, list):
        return [_resolve(item, mappings) for item in value]
    if not isinstance(value, dict):
        return value
    value = {key: _resolve(item, mappings) for key, item in value.items()}
    if len(value) != 1:
        return value
    ((function, argument),) = value.items()
    if function == "Fn::FindInMap" and all(isinstance(key, str) for key in argument[:3]):
        name, top, second = argument[:3]
        return mappings[name][top][second]
    if function == "Fn::Sub" and isinstance(argument, list) and all(isinstance(v, str) for v in argument[1].values()):
        text = argument[0]
        for name, literal in argument[1].items():
            text = text.replace(f"${{{name}}}", literal)
        argument = text
    if function == "Fn::Sub" and isinstance(argument, str):
        return argument if "${" not in argument else {"Fn::Sub": argument}
    return value


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    function: str  # logical id
    code_uri: Path
    handler: str  # module.attribute
    environment: dict[str, Any]


def routes(path: Path = TEMPLATE) -> list[Route]:
    """Every HttpApi route of the template with the function that serves it."""
    template = load(path)
    global_env = template.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {})
    found = []
    for name, resource in template["Resources"].items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        props = resource["Properties"]
        env = {**global_env, **props.get("Environment", {}).get("Variables", {})}
        for event in props.get("Events", {}).values():
            if event.get("Type") == "HttpApi":
                found.append(
                    Route(
                        method=event["Properties"]["Method"].upper(),
                        path=event["Properties"]["Path"],
                        function=name,
                        code_uri=path.parent / props["CodeUri"],
                        handler=props["Handler"],
                        environment=env,
                    )
                )
    return found


def resources_of_type(kind: str, path: Path = TEMPLATE) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in load(path)["Resources"].items() if r.get("Type") == kind}


if __name__ == "__main__":
    print(json.dumps(load(), indent=2))
