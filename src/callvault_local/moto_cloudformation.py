"""moto's CloudFormation, made to take `sam deploy` as CloudFormation does (for the deploy test).

Stock moto (5.x) falls short of CloudFormation where a SAM stack needs it; the adapter fills in:

- It applies no transform: `Fn::ForEach` stays a resource named "Fn::ForEach::…" and every
  `AWS::Serverless::*` resource is skipped with a warning. Here a change set's template is first
  expanded as `AWS::LanguageExtensions` does (callvault_local.template.expand: SAM CLI's own
  ForEach processor, the one `sam build` uses), then, when its `Transform` names
  `AWS::Serverless-2016-10-31`, translated by samtranslator's `Translator` (the library behind
  CloudFormation's SAM transform; SAM CLI depends on it) with the change set's parameters. That
  processed template is what the stack is built from, and what `GetTemplate` answers for
  `TemplateStage=Processed`, as CloudFormation does.
- Executing a change set creates the resources but never evaluates the new template's outputs
  (the stack's output map stays that of the empty template it was created with). Here it is
  rebuilt from the processed template once the change set is applied.
- Its `AWS::Lambda::Function` and `AWS::Lambda::LayerVersion` pass only some properties on: a
  function's `Architectures`, `Layers` and `TracingConfig` and a layer's `CompatibleArchitectures`
  are dropped (every function would be an x86_64 function without layers). Here they are applied
  as CloudFormation applies them (a `Ref` to the stack's layer version, which moto resolves to its
  model, taken as the version's ARN).
- It creates no HTTP API, no secret, no Glue database and no Athena workgroup
  (`AWS::ApiGatewayV2::Api`, `AWS::SecretsManager::Secret`, `AWS::Glue::Database`,
  `AWS::Athena::WorkGroup` are skipped, so the outputs built from them are left unresolved); the
  last two are created through moto's Glue and Athena backends. Here each is created
  through moto's own backends: the HTTP API from the OpenAPI body SAM writes (moto's import
  makes one route and integration per path and method; a route the body secures with SAM's
  `AWS_IAM` scheme gets authorization type `AWS_IAM`, which moto's import leaves out), and the
  secret with a value generated as `GenerateSecretString` asks.
- Its `AWS::Events::EventBus` has no physical id (the stack lists the bus without one); here it
  is the bus's name, what CloudFormation's Ref answers.
- (Smaller) a `TemplateURL` on a loopback endpoint (`http://127.0.0.1:PORT/bucket/key`, what
  `sam deploy` uploads to when `AWS_ENDPOINT_URL` points at moto) is read path-style; moto only
  does that for `localhost`.

So the deploy test reads from moto's own API: the stack and its outputs, the HTTP API's routes,
their integrations and authorization, the Lambda layer and functions (runtime, architecture,
layers, environment, reserved concurrency), the DynamoDB table (indexes, stream), the stream's
event source mapping (filter, on-failure destination), the bucket, the queue and the secrets
(moto also creates the roles, permissions and log groups). moto still creates no API stage, bucket policy or alarm
(`AWS::ApiGatewayV2::Stage`, `AWS::S3::BucketPolicy`, `AWS::CloudWatch::Alarm`): those the test
reads from the processed template.
"""

from __future__ import annotations

import copy
from typing import Any

from callvault_local.template import expand

SERVERLESS_TRANSFORM = "AWS::Serverless-2016-10-31"

_applied = False


def _transforms(template: dict[str, Any]) -> list[str]:
    declared = template.get("Transform", [])
    return [declared] if isinstance(declared, str) else list(declared)


def processed(template: dict[str, Any], parameters: dict[str, Any], region: str) -> dict[str, Any]:
    """`template` as CloudFormation processes it before creating anything: its transforms applied."""
    template = expand(template)  # AWS::LanguageExtensions first, as CloudFormation orders them
    if SERVERLESS_TRANSFORM not in _transforms(template):
        return template
    import boto3
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator

    # The session only tells the translator the region and partition; nothing is called.
    session = boto3.session.Session(region_name=region, aws_access_key_id="moto", aws_secret_access_key="moto")  # noqa: S106  # nosec B106
    translated: dict[str, Any] = Translator({}, Parser(), boto_session=session).translate(copy.deepcopy(template), parameters)
    return translated


def _route_authorization(operation: dict[str, Any], schemes: dict[str, Any]) -> str | None:
    for requirement in operation.get("security", []):
        for name in requirement:
            if schemes.get(name, {}).get("x-amazon-apigateway-authtype") == "awsSigv4":
                return "AWS_IAM"
    return None


def _models() -> list[type[Any]]:
    """CloudFormation models, on moto's backends, for the resource types stock moto skips."""
    import json

    from moto.apigatewayv2.models import apigatewayv2_backends
    from moto.core.common_models import CloudFormationModel
    from moto.secretsmanager.models import secretsmanager_backends

    class HttpApi(CloudFormationModel):
        def __init__(self, api_id: str) -> None:
            self.physical_resource_id = api_id

        @staticmethod
        def cloudformation_type() -> str:
            return "AWS::ApiGatewayV2::Api"

        @classmethod
        def create_from_cloudformation_json(
            cls, resource_name: str, cloudformation_json: dict[str, Any], account_id: str, region_name: str, **kwargs: Any
        ) -> HttpApi:
            props = cloudformation_json["Properties"]
            body = props.get("Body", {})
            backend: Any = apigatewayv2_backends[account_id][region_name]
            api = backend.create_api(
                api_key_selection_expression=None,
                cors_configuration=None,
                description=props.get("Description"),
                disable_schema_validation=None,
                disable_execute_api_endpoint=props.get("DisableExecuteApiEndpoint"),
                name=props.get("Name") or body.get("info", {}).get("title") or resource_name,
                protocol_type=props.get("ProtocolType", "HTTP"),
                route_selection_expression=None,
                tags=props.get("Tags"),
                version=None,
            )
            if body:
                backend.reimport_api(api.api_id, json.dumps(body), fail_on_warnings=bool(props.get("FailOnWarnings")))
                schemes = body.get("components", {}).get("securitySchemes", {})
                for route in api.routes.values():
                    method, path = route.route_key.split(" ", 1)
                    authorization = _route_authorization(body["paths"][path][method.lower()], schemes)
                    route.authorization_type = authorization or "NONE"
            return cls(api.api_id)

    class Secret(CloudFormationModel):
        def __init__(self, arn: str) -> None:
            self.physical_resource_id = arn

        @staticmethod
        def cloudformation_type() -> str:
            return "AWS::SecretsManager::Secret"

        @staticmethod
        def cloudformation_name_type() -> str:
            return "Name"

        @classmethod
        def create_from_cloudformation_json(
            cls, resource_name: str, cloudformation_json: dict[str, Any], account_id: str, region_name: str, **kwargs: Any
        ) -> Secret:
            props = cloudformation_json["Properties"]
            backend: Any = secretsmanager_backends[account_id][region_name]
            value = props.get("SecretString")
            if value is None:
                generate = props.get("GenerateSecretString", {})
                value = json.loads(
                    backend.get_random_password(
                        password_length=int(generate.get("PasswordLength", 32)),
                        exclude_characters=generate.get("ExcludeCharacters", ""),
                        exclude_numbers=bool(generate.get("ExcludeNumbers")),
                        exclude_punctuation=bool(generate.get("ExcludePunctuation")),
                        exclude_uppercase=bool(generate.get("ExcludeUppercase")),
                        exclude_lowercase=bool(generate.get("ExcludeLowercase")),
                        include_space=bool(generate.get("IncludeSpace")),
                        require_each_included_type=bool(generate.get("RequireEachIncludedType", True)),
                    )
                )["RandomPassword"]
            created = json.loads(
                backend.create_secret(
                    name=resource_name,
                    secret_string=value,
                    secret_binary=None,
                    description=props.get("Description"),
                    tags=props.get("Tags"),
                    kms_key_id=props.get("KmsKeyId"),
                    client_request_token=None,
                    replica_regions=[],
                    force_overwrite=False,
                )
            )
            return cls(created["ARN"])

    class GlueDatabase(CloudFormationModel):
        def __init__(self, name: str) -> None:
            self.physical_resource_id = name

        @staticmethod
        def cloudformation_type() -> str:
            return "AWS::Glue::Database"

        @classmethod
        def create_from_cloudformation_json(
            cls, resource_name: str, cloudformation_json: dict[str, Any], account_id: str, region_name: str, **kwargs: Any
        ) -> GlueDatabase:
            from moto.glue.models import glue_backends

            database = cloudformation_json["Properties"]["DatabaseInput"]
            glue_backends[account_id][region_name].create_database(database["Name"], database)
            return cls(database["Name"])

    class AthenaWorkGroup(CloudFormationModel):
        def __init__(self, name: str) -> None:
            self.physical_resource_id = name

        @staticmethod
        def cloudformation_type() -> str:
            return "AWS::Athena::WorkGroup"

        @classmethod
        def create_from_cloudformation_json(
            cls, resource_name: str, cloudformation_json: dict[str, Any], account_id: str, region_name: str, **kwargs: Any
        ) -> AthenaWorkGroup:
            from moto.athena.models import athena_backends

            props = cloudformation_json["Properties"]
            backend: Any = athena_backends[account_id][region_name]
            backend.create_work_group(props["Name"], props.get("WorkGroupConfiguration", {}), props.get("Description", ""), [])
            return cls(props["Name"])

    return [HttpApi, Secret, GlueDatabase, AthenaWorkGroup]


def _with_dropped_properties(created: Any, props: dict[str, Any]) -> Any:
    """`created` (a moto Lambda function or layer version) given the properties moto's model dropped."""
    from moto.awslambda.models import LambdaFunction

    if isinstance(created, LambdaFunction):
        created.architectures = props.get("Architectures", created.architectures)
        created.tracing_config = props.get("TracingConfig", created.tracing_config)
        # moto resolves a Ref to its own LayerVersion to the model, not to its ARN as CloudFormation does
        layers = [layer if isinstance(layer, str) else layer.arn for layer in props.get("Layers", [])]
        created.layers = created._get_layers_data(layers)
    else:
        created.compatible_architectures = props.get("CompatibleArchitectures", created.compatible_architectures)
    return created


def _parse_change_set_template(change_set: Any, original: Any) -> None:
    original(change_set)
    change_set.template_dict = processed(change_set.template_dict, dict(change_set.parameters), change_set.stack.region_name)


def _execute_change_set(backend: Any, change_set_name: str, stack_name: str | None, original: Any) -> None:
    original(backend, change_set_name, stack_name)
    change_set = backend.describe_change_set(change_set_name)
    stack = backend.stacks[change_set.stack_id]
    stack.template_dict = change_set.template_dict
    stack.processed_template_dict = change_set.template_dict
    stack.output_map = stack._create_output_map()
    for export in stack.exports:
        backend.exports[export.name] = export


def _read_template_url(template_url: str, account_id: str, partition: str, original: Any) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(template_url)
    if parts.hostname == "127.0.0.1":
        parts = parts._replace(netloc=f"localhost:{parts.port}")  # moto reads localhost URLs path-style
    return str(original(parts.geturl(), account_id=account_id, partition=partition))


def apply() -> None:
    """Install the adapter into moto (idempotent): before the moto server that `sam deploy` talks to serves."""
    global _applied
    if _applied:
        return
    import json

    from moto.awslambda.models import LambdaFunction, LayerVersion
    from moto.cloudformation import parsing, responses
    from moto.cloudformation.models import ChangeSet, CloudFormationBackend
    from moto.core.responses import ActionResult

    patched: Any = (ChangeSet, CloudFormationBackend, responses.CloudFormationResponse, responses)
    change_set, backend, response, responses_module = patched
    parse, execute, get_template = change_set._parse_template, backend.execute_change_set, response.get_template
    change_set._parse_template = lambda self: _parse_change_set_template(self, parse)
    backend.execute_change_set = lambda self, change_set_name, stack_name=None: _execute_change_set(
        self, change_set_name, stack_name, execute
    )

    def get_processed_template(self: Any) -> Any:
        if self._get_param("TemplateStage") != "Processed":
            return get_template(self)
        stack = self.cloudformation_backend.get_stack(self._get_param("StackName"))
        body = getattr(stack, "processed_template_dict", None)
        return ActionResult({"TemplateBody": json.dumps(body) if body is not None else stack.template})

    response.get_template = get_processed_template
    read_url = responses_module.get_stack_from_s3_url
    responses_module.get_stack_from_s3_url = lambda url, account_id, partition: _read_template_url(
        url, account_id, partition, read_url
    )

    models: Any = (LambdaFunction, LayerVersion)
    for model in models:

        def create_complete(
            cls: Any,
            /,
            name: str,
            cfn_json: dict[str, Any],
            *args: Any,
            _create: Any = model.create_from_cloudformation_json.__func__,
            **kwargs: Any,
        ) -> Any:
            return _with_dropped_properties(_create(cls, name, cfn_json, *args, **kwargs), cfn_json["Properties"])

        model.create_from_cloudformation_json = classmethod(create_complete)

    from moto.events.models import EventBus

    # Its Ref is the bus's name, as CloudFormation answers it; moto's model lists no physical id.
    if not hasattr(EventBus, "physical_resource_id"):
        EventBus.physical_resource_id = property(lambda self: self.name)  # type: ignore[attr-defined]
    _models()
    for cached in (parsing.get_model_list, parsing.get_model_map, parsing.get_name_type_map):
        cached.cache_clear()  # moto lists CloudFormationModel's subclasses once
    _applied = True
