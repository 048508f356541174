"""Resource properties checked as CloudFormation checks them, before the emulator sees them.

CloudFormation validates every resource's properties against the type's registry schema and
refuses the stack naming the resource and the property. moto's CloudFormation validates
nothing: a property of the wrong shape ends as a Python exception inside the emulator (an
HTTP 500 the client cannot read), or is stored as given and breaks whatever reads it later
(``Environment: {Variables: 5}``, ``Timeout: thirty``). So the transformed template is
checked here against the same schemas, as cfn-lint ships them (a dependency of SAM CLI, so
always installed), with CloudFormation's leniency: an intrinsic function stands for any
value, and scalars are converted as CloudFormation converts them ("30" is an integer, 5 a
string).

Also refused here, by name, what the local cloud cannot run although AWS could: SAM events of
types it cannot deliver (API Gateway, S3, SNS …), layers, and functions that are not Python.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import re
from collections.abc import Iterator, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

from tweetlens.localcloud import cache
from tweetlens.localcloud.errors import DeployError, UnsupportedResourceError


class InvalidPropertyError(DeployError):
    """A resource property CloudFormation would refuse; names the resource and the property."""

    def __init__(self, logical_id: str, resource_type: str, path: str, reason: str) -> None:
        where = f"property {path}" if path else "properties"
        super().__init__(f"Resource {logical_id} ({resource_type}): {where}: {reason}")
        self.logical_id = logical_id
        self.resource_type = resource_type
        self.path = path
        self.reason = reason


class UnsupportedEventError(DeployError):
    """A SAM event source the local cloud cannot deliver; names the resource and the event."""

    def __init__(self, logical_id: str, event: str, event_type: str, supported: list[str]) -> None:
        super().__init__(
            f"{logical_id}: event {event} has Type {event_type}, which the local cloud cannot "
            f"deliver (supported: {', '.join(supported)})"
        )
        self.logical_id = logical_id
        self.event = event
        self.event_type = event_type


# SAM event types the local cloud delivers: an SQS event source mapping (polled), EventBridge
# rules (schedules and patterns), and an SNS subscription (moto's SNS invokes the function).
# Everything else would deploy as a resource the local cloud refuses by its generated name, or
# as nothing at all (an S3 notification is stored and never sent).
SUPPORTED_EVENT_TYPES: Mapping[str, tuple[str, ...]] = {
    "AWS::Serverless::Function": (
        "CloudWatchEvent",
        "EventBridgeRule",
        "SNS",
        "SQS",
        "Schedule",
    ),
    "AWS::Serverless::StateMachine": ("CloudWatchEvent", "EventBridgeRule", "Schedule"),
}

# Function properties for which SAM generates a resource type the local cloud cannot create:
# refused by the property the user wrote (in Globals or the function), not by SAM's id.
UNSUPPORTED_FUNCTION_PROPERTIES: Mapping[str, str] = {
    "AutoPublishAlias": "AWS::Lambda::Alias",
    "DeploymentPreference": "AWS::CodeDeploy::DeploymentGroup",
    "EventInvokeConfig": "AWS::Lambda::EventInvokeConfig",
    "FunctionUrlConfig": "AWS::Lambda::Url",
    "ProvisionedConcurrencyConfig": "AWS::Lambda::Alias",
}

# Lambda workers are local Python processes of this interpreter's kind.
_PYTHON_RUNTIME = re.compile(r"python3\.\d+")


def is_intrinsic(value: Any) -> bool:
    """A ``{"Ref": …}`` or ``{"Fn::…": …}``: stands for a value known only at create time."""
    if not isinstance(value, dict) or len(value) != 1:
        return False
    (key,) = value
    return key in ("Ref", "Condition") or (isinstance(key, str) and key.startswith("Fn::"))


def check_serverless_resources(template: Mapping[str, Any]) -> None:
    """Before SAM's transform: refuse layers and undeliverable events by the names written."""
    globals_ = template.get("Globals", {}).get("Function", {})
    for logical_id, resource in template["Resources"].items():
        resource_type = resource.get("Type")
        if resource_type == "AWS::Serverless::Function":
            written = {**globals_, **resource.get("Properties", {})}
            for name, generated in UNSUPPORTED_FUNCTION_PROPERTIES.items():
                if name in written:
                    raise DeployError(
                        f"{logical_id}: {name} makes SAM create an {generated}, which the local "
                        "cloud cannot create"
                    )
        if resource_type == "AWS::Serverless::LayerVersion":
            # SAM would fail on the local ContentUri with a hashed logical id instead.
            raise UnsupportedResourceError(logical_id, resource_type)
        supported = SUPPORTED_EVENT_TYPES.get(str(resource_type))
        if supported is None:
            continue
        events = resource.get("Properties", {}).get("Events", {})
        if not isinstance(events, dict):
            raise InvalidPropertyError(
                logical_id, str(resource_type), "Events", f"must be a mapping, got {events!r}"
            )
        for event, body in events.items():
            if not isinstance(body, dict):
                raise InvalidPropertyError(
                    logical_id,
                    str(resource_type),
                    f"Events.{event}",
                    f"must be a mapping with Type and Properties, got {json.dumps(body)[:80]}",
                )
            event_type = body.get("Type")
            if not isinstance(event_type, str):
                raise InvalidPropertyError(
                    logical_id,
                    str(resource_type),
                    f"Events.{event}.Type",
                    f"must be an event type name, got {json.dumps(event_type)[:80]}",
                )
            if event_type not in supported:
                raise UnsupportedEventError(logical_id, event, event_type, list(supported))


def check_functions(template: Mapping[str, Any]) -> None:
    """After SAM's transform (Globals merged): refuse what a local worker cannot run."""
    for logical_id, resource in template["Resources"].items():
        if resource.get("Type") != "AWS::Lambda::Function":
            continue
        properties = resource.get("Properties", {})
        runtime = properties.get("Runtime")
        if isinstance(runtime, str) and not _PYTHON_RUNTIME.fullmatch(runtime):
            raise DeployError(
                f"{logical_id}: Runtime {runtime} cannot run in the local cloud, which runs "
                "Python functions only (python3.x)"
            )
        if properties.get("Layers"):
            # The code would import what the layer provides and fail only when called.
            raise DeployError(
                f"{logical_id}: Layers are not supported by the local cloud (the function "
                "would run without them); put their packages in the CodeUri folder"
            )


def _is_integer_text(value: str) -> bool:
    return re.fullmatch(r"\s*[-+]?\d+\s*", value) is not None


def _is_number_text(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


def _is_type(instance: Any, name: str) -> bool:
    """CloudFormation's conversions: scalars to strings, numeric strings to numbers."""
    if name == "string":
        return isinstance(instance, str | int | float)
    if name == "integer":
        if isinstance(instance, bool):
            return False
        if isinstance(instance, int):
            return True
        if isinstance(instance, float):
            return instance.is_integer()
        return isinstance(instance, str) and _is_integer_text(instance)
    if name == "number":
        if isinstance(instance, bool):
            return False
        return isinstance(instance, int | float) or (
            isinstance(instance, str) and _is_number_text(instance)
        )
    if name == "boolean":
        return isinstance(instance, bool) or (
            isinstance(instance, str) and instance.lower() in ("true", "false")
        )
    if name == "object":
        return isinstance(instance, dict)
    if name == "array":
        return isinstance(instance, list)
    if name == "null":
        return instance is None
    return True


# The JSON-schema keywords enforced, those CloudFormation's own validation applies to a
# resource's properties. Conditional keywords (if/then, not, oneOf, dependencies) are left out: with
# intrinsics standing for unknown values they would refuse templates AWS accepts.
_KEYWORDS = (
    "$ref",
    "additionalProperties",
    "allOf",
    "anyOf",
    "enum",
    "items",
    "maxItems",
    "maxLength",
    "maximum",
    "minItems",
    "minLength",
    "minimum",
    "pattern",
    "patternProperties",
    "properties",
    "required",
    "type",
)


@functools.cache
def _validator_class() -> Any:
    # Imported here: a deploy whose template passes pays for jsonschema only once per process.
    import jsonschema  # noqa: PLC0415

    draft = jsonschema.Draft7Validator
    type_checker = draft.TYPE_CHECKER.redefine_many(
        {
            name: functools.partial(lambda _checker, instance, n: _is_type(instance, n), n=name)
            for name in ("string", "integer", "number", "boolean", "object", "array", "null")
        }
    )

    def lenient(keyword: str) -> Any:
        original = draft.VALIDATORS[keyword]

        def check(validator: Any, value: Any, instance: Any, schema: Any) -> Iterator[Any]:
            if is_intrinsic(instance):
                return
            if keyword in ("minLength", "maxLength", "pattern") and not isinstance(instance, str):
                return
            if keyword in ("minimum", "maximum") and isinstance(instance, str):
                try:
                    instance = float(instance)
                except ValueError:
                    return
            if keyword == "pattern":
                try:
                    re.compile(value)
                except re.error:
                    return  # an ECMAScript pattern Python cannot read: not ours to refuse
            if keyword == "additionalProperties" and isinstance(instance, dict):
                # Fn::If may stand in for a property's whole value, not for its name; a key
                # such as "Fn::Transform" is a macro CloudFormation expands first.
                instance = {k: v for k, v in instance.items() if not str(k).startswith("Fn::")}
            if keyword == "enum" and not isinstance(instance, str | int | float | bool):
                return
            if keyword == "enum":
                # CloudFormation compares the text of a scalar ("true" and true alike).
                texts = {json.dumps(v) if not isinstance(v, str) else v for v in value}
                text = instance if isinstance(instance, str) else json.dumps(instance)
                if text in texts or str(instance) in texts:
                    return
            yield from original(validator, value, instance, schema)

        return check

    validators = {keyword: lenient(keyword) for keyword in _KEYWORDS}
    return jsonschema.validators.create(
        meta_schema=draft.META_SCHEMA,
        validators=validators,
        type_checker=type_checker,
        version="tweetlens-cloudformation",
    )


@functools.cache
def _schema_folder() -> Path:
    # Found, not imported: importing cfnlint costs about 0.7 s, its data files nothing.
    spec = importlib.util.find_spec("cfnlint")
    if spec is None or not spec.submodule_search_locations:
        raise DeployError("cfn-lint (a dependency of aws-sam-cli) is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "data" / "schemas"


@functools.cache
def _schema_files(region: str) -> dict[str, str]:
    index = _schema_folder() / "providers" / f"{region}.json"
    if not index.is_file():
        index = _schema_folder() / "providers" / "us-east-1.json"
    names: dict[str, str] = json.loads(index.read_text(encoding="utf-8"))
    return names


@functools.cache
def _validator(region: str, resource_type: str) -> Any:
    digest = _schema_files(region).get(resource_type)
    if digest is None:
        return None
    path = _schema_folder() / "resources" / f"{digest}.json"
    schema = json.loads(path.read_text(encoding="utf-8"))
    return _validator_class()(schema)


_PRIORITY = {"type": 0, "required": 1, "additionalProperties": 2, "enum": 3, "pattern": 4}


def _path(error: Any) -> str:
    parts: list[str] = []
    for part in error.absolute_path:
        if isinstance(part, int):
            parts.append(f"[{part}]")
        else:
            parts.append(f".{part}" if parts else str(part))
    return "".join(parts)


def _reason(error: Any) -> str:
    # jsonschema repeats the whole value for a length check: say the count instead.
    instance, limit = error.instance, error.validator_value
    if error.validator in ("maxItems", "minItems") and isinstance(instance, list):
        bound = "at most" if error.validator == "maxItems" else "at least"
        return f"has {len(instance)} items, {bound} {limit} allowed"
    if error.validator in ("maxLength", "minLength") and isinstance(instance, str):
        bound = "at most" if error.validator == "maxLength" else "at least"
        return f"{instance[:60]!r} has {len(instance)} characters, {bound} {limit} allowed"
    if error.validator == "pattern" and isinstance(instance, str):
        # The pattern as the schema writes it (jsonschema's repr doubles each backslash).
        return f"{instance[:60]!r} does not match the pattern {limit}"
    message = str(error.message)
    return message if len(message) <= 200 else message[:197] + "..."


def check_properties(template: Mapping[str, Any], region: str) -> None:
    """Refuse the first resource whose properties break its type's schema, naming it.

    A template that passed is remembered (``tweetlens.localcloud.cache``, by its text, the
    region, cfn-lint's version, whose schemas these are, and the checks' own source): a
    repeated deploy imports nothing for it, and a check added later is not skipped.
    """
    key = cache.digest(
        "properties",
        json.dumps(template, sort_keys=True, default=str),
        region,
        metadata.version("cfn-lint"),
        checks_source_digest(),
    )
    if cache.read("checked", key) is True:
        return
    _check_properties(template, region)
    cache.write("checked", key, True)


# The modules whose code decides whether a template passes: this one, the definition checks
# and what they import of ours (a change to any of them must not be answered from the cache).
_CHECK_MODULES = ("properties.py", "aslcheck.py", "errors.py", "cache.py")


@functools.cache
def checks_source_digest() -> str:
    """SHA-256 of the checking modules' source, read once per process (about 35 kB)."""
    here = Path(__file__).parent
    return cache.digest(*((here / name).read_bytes() for name in _CHECK_MODULES))


def _check_properties(template: Mapping[str, Any], region: str) -> None:
    import jsonschema  # noqa: PLC0415

    for logical_id, resource in template["Resources"].items():
        resource_type = str(resource.get("Type"))
        validator = _validator(region, resource_type)
        if validator is None:
            continue
        properties = resource.get("Properties", {})
        errors = list(validator.iter_errors(properties))
        if errors:
            # Among a value's faults the most telling first: its type, then its format.
            first = min(_PRIORITY.get(e.validator, len(_PRIORITY)) for e in errors)
            error = jsonschema.exceptions.best_match(
                e for e in errors if _PRIORITY.get(e.validator, len(_PRIORITY)) == first
            )
            raise InvalidPropertyError(logical_id, resource_type, _path(error), _reason(error))
    check_environment_values(template)


def check_environment_values(template: Mapping[str, Any]) -> None:
    """A Lambda environment value must be text: CloudFormation converts a number or boolean,
    refuses a list or a mapping (cfn-lint's schema lets those through for intrinsics)."""
    for logical_id, resource in template["Resources"].items():
        if resource.get("Type") != "AWS::Lambda::Function":
            continue
        environment = resource.get("Properties", {}).get("Environment")
        variables = environment.get("Variables") if isinstance(environment, dict) else None
        if not isinstance(variables, dict):
            continue
        for name, value in variables.items():
            if isinstance(value, list) or (isinstance(value, dict) and not is_intrinsic(value)):
                raise InvalidPropertyError(
                    logical_id,
                    "AWS::Lambda::Function",
                    f"Environment.Variables.{name}",
                    f"must be a string, got {type(value).__name__} {json.dumps(value)[:80]}",
                )


def normalize_environment(template: dict[str, Any]) -> None:
    """Environment values as CloudFormation passes them to Lambda: ``true``, not ``True``."""
    for resource in template["Resources"].values():
        if resource.get("Type") != "AWS::Lambda::Function":
            continue
        environment = resource.get("Properties", {}).get("Environment")
        variables = environment.get("Variables") if isinstance(environment, dict) else None
        if not isinstance(variables, dict):
            continue
        for name, value in variables.items():
            if isinstance(value, bool):
                variables[name] = "true" if value else "false"
            elif isinstance(value, int | float):
                variables[name] = str(value)
