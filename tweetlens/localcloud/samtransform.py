"""SAM's transform, offline, and the state machine definitions moto's CloudFormation cannot take.

The translator runs with no AWS call (managed policy ARNs from its bundled map). moto ignores
``DefinitionSubstitutions`` and cannot read ``DefinitionS3Location``: every state machine
gets a literal definition, with substitutions applied once the stack's values exist."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from importlib import metadata
from typing import Any

from tweetlens.localcloud import cache
from tweetlens.localcloud.aslcheck import check_definition, definition_json
from tweetlens.localcloud.emulator import (
    FAKE_ACCESS_KEY_ID,
    FAKE_SECRET_ACCESS_KEY,
)
from tweetlens.localcloud.errors import DeployError

# A template's cached transforms: one per set of values of the parameters the translator read.
_MAX_VARIANTS = 16


class _NoManagedPolicyLookup:
    """Managed-policy loader that never calls IAM: SAM falls back to its bundled name→ARN map."""

    def load(self) -> dict[str, str]:
        return {}


class _ReadRecorder(dict[str, Any]):
    """Parameter values that note which ones the translator reads.

    SAM resolves parameters in a few properties only (e.g. a ``Ref`` in ``CodeUri`` or
    ``AutoPublishAlias``); the rest stay ``Ref`` for CloudFormation. A cached transform is
    valid for any parameter values that agree on the ones read. Reading all the values at once
    (``items``, ``values``) counts as reading each; membership tells only which names are
    set, and those come from the template's declarations and the overrides, both in the key.
    """

    def __init__(self, values: Mapping[str, Any], read: set[str]) -> None:
        super().__init__(values)
        self.read = read

    def __getitem__(self, name: str) -> Any:
        self.read.add(name)
        return super().__getitem__(name)

    def get(self, name: str, default: Any = None) -> Any:
        self.read.add(name)
        return super().get(name, default)

    def __iter__(self) -> Iterator[str]:
        # Defined so that CPython's dict(x), {**x} and update(x) take their slow path through
        # keys() and __getitem__ (recorded) instead of copying the values unseen.
        return super().__iter__()

    def items(self) -> Any:
        self.read.update(self.keys())
        return super().items()

    def values(self) -> Any:
        self.read.update(self.keys())
        return super().values()

    def copy(self) -> _ReadRecorder:
        return _ReadRecorder(self, self.read)

    def __deepcopy__(self, memo: dict[int, Any]) -> _ReadRecorder:
        # The translator deep-copies its parameter values: the copy reports to the same set.
        return _ReadRecorder(
            {name: copy.deepcopy(value, memo) for name, value in dict.items(self)}, self.read
        )


def transform(
    template: dict[str, Any], parameters: Mapping[str, str], region: str
) -> dict[str, Any]:
    """Run SAM's translator offline (same steps as ``samtranslator...transform``, with a region).

    The result is cached (``tweetlens.localcloud.cache``) by the template, the region, the
    translator's version and the values of the parameters the translator read: a hit needs
    neither the translator nor its import.
    """
    if "Transform" not in template:
        return copy.deepcopy(template)
    key = cache.digest(
        "transform",
        json.dumps(template, sort_keys=True, default=str),
        region,
        metadata.version("aws-sam-translator"),
        json.dumps(sorted(parameters)),
    )
    variants = cache.read("transforms", key)
    if not isinstance(variants, list):
        variants = []
    for variant in variants:
        read = variant.get("read") if isinstance(variant, dict) else None
        cached = variant.get("template") if isinstance(variant, dict) else None
        if (
            isinstance(read, dict)
            and isinstance(cached, dict)
            and all(parameters.get(name) == value for name, value in read.items())
        ):
            return cached
    read_names: set[str] = set()
    result: dict[str, Any] = _translate(template, parameters, region, read_names)
    read = {name: parameters.get(name) for name in sorted(read_names)}
    cache.write("transforms", key, [{"read": read, "template": result}, *variants][:_MAX_VARIANTS])
    return result


def _translate(
    template: dict[str, Any], parameters: Mapping[str, str], region: str, read: set[str]
) -> dict[str, Any]:
    # Imported here: a cached transform never needs the translator (about 0.3 s to import).
    import boto3  # noqa: PLC0415
    from samtranslator.model.exceptions import InvalidDocumentException  # noqa: PLC0415
    from samtranslator.parser.parser import Parser  # noqa: PLC0415
    from samtranslator.translator.translator import Translator  # noqa: PLC0415
    from samtranslator.utils.py27hash_fix import (  # noqa: PLC0415
        to_py27_compatible_template,
        undo_mark_unicode_str_in_template,
    )

    fragment = copy.deepcopy(template)
    parameter_values: dict[str, Any] = dict(parameters)
    to_py27_compatible_template(fragment, parameter_values)
    recorder = _ReadRecorder(parameter_values, read)
    # The translator needs a region for ARNs; a session built here keeps it from reading the
    # developer's AWS configuration.
    session = boto3.session.Session(
        region_name=region,
        aws_access_key_id=FAKE_ACCESS_KEY_ID,
        aws_secret_access_key=FAKE_SECRET_ACCESS_KEY,
    )
    translator = Translator(None, Parser(), boto_session=session)
    policy_loader = _NoManagedPolicyLookup()
    try:
        transformed = translator.translate(
            fragment, parameter_values=recorder, get_managed_policy_map=policy_loader.load
        )
    except InvalidDocumentException as exc:
        reasons = "; ".join(str(cause) for cause in exc.causes)
        raise DeployError(f"SAM transform failed: {reasons}") from exc
    result: dict[str, Any] = undo_mark_unicode_str_in_template(transformed)
    return result


def _literal_join(value: Any) -> str | None:
    join = value.get("Fn::Join") if isinstance(value, dict) and len(value) == 1 else None
    if (
        isinstance(join, list)
        and len(join) == 2
        and isinstance(join[0], str)
        and isinstance(join[1], list)
        and all(isinstance(part, str) for part in join[1])
    ):
        return join[0].join(join[1])
    return None


@dataclass(frozen=True)
class PendingSubstitution:
    """A state machine definition whose substitutions are applied after the stack exists."""

    text: str
    substitutions: dict[str, Any]


# A valid definition the state machine holds until its real one is substituted; nothing can
# start an execution before the deploy finishes.
PLACEHOLDER_DEFINITION = json.dumps(
    {"StartAt": "Deploying", "States": {"Deploying": {"Type": "Pass", "End": True}}}
)
_SUBSTITUTION = re.compile(r"\$\{([^}]+)\}")


def fold_definition_substitutions(
    template: dict[str, Any], definitions: Mapping[str, str], parameters: Mapping[str, str]
) -> dict[str, PendingSubstitution]:
    """Give every state machine a literal ``DefinitionString``.

    moto's CloudFormation ignores ``DefinitionSubstitutions`` and cannot read
    ``DefinitionS3Location``. Its ``Fn::Sub`` cannot be used instead: it runs Python's
    ``string.Template``, which turns the ASL context-object prefix ``$$`` into ``$``. So a
    machine with substitutions is created with a placeholder and its real definition is
    substituted here and set once the values exist (``apply_substitutions``). A YAML
    definition file is converted to JSON (after substitution, as its text is substituted).
    """
    pending: dict[str, PendingSubstitution] = {}
    for logical_id, resource in template["Resources"].items():
        if resource.get("Type") != "AWS::StepFunctions::StateMachine":
            continue
        properties = resource.setdefault("Properties", {})
        location = properties.pop("DefinitionS3Location", None)
        if location is not None:
            text = definitions.get(location.get("Key", "")) if isinstance(location, dict) else None
            if text is None:
                raise DeployError(f"{logical_id}: DefinitionS3Location must come from a local file")
        elif "Definition" in properties:
            text = json.dumps(properties.pop("Definition"))
        elif isinstance(properties.get("DefinitionString"), str):
            text = properties["DefinitionString"]
        elif (joined := _literal_join(properties.get("DefinitionString"))) is not None:
            # SAM writes an inline Definition as a Join of its pretty-printed lines.
            text = joined
        else:
            # An intrinsic already builds the string; substitutions cannot be folded into it.
            if "DefinitionSubstitutions" in properties:
                raise DeployError(
                    f"{logical_id}: DefinitionSubstitutions need a literal definition"
                )
            continue
        substitutions = properties.pop("DefinitionSubstitutions", None)
        # Checked now with the values known offline (literals, parameters); a field still
        # holding another substitution is checked once the real values are substituted.
        known = offline_values(substitutions or {}, template.get("Parameters", {}), parameters)
        check_definition(
            logical_id,
            substitute_definition(text, known),
            frozenset(substitutions or {}) - set(known),
        )
        if substitutions:
            pending[logical_id] = PendingSubstitution(text, dict(substitutions))
            properties["DefinitionString"] = PLACEHOLDER_DEFINITION
        else:
            properties["DefinitionString"] = definition_json(logical_id, text)
    return pending


# Parameter types whose Ref is not the text given (a list, or the value of an SSM parameter).
_NOT_TEXT_PARAMETER = re.compile(r"^(List<|CommaDelimitedList|AWS::SSM::)")


def offline_values(
    substitutions: Mapping[str, Any],
    declared: Mapping[str, Any],
    parameters: Mapping[str, str],
) -> dict[str, Any]:
    """The substitutions whose values are known before the stack exists: literals, and a
    ``Ref`` to a parameter of text or number type (its value as CloudFormation passes it)."""
    known: dict[str, Any] = {}
    for name, value in substitutions.items():
        if isinstance(value, str | int | float | bool):
            known[name] = value
            continue
        ref = value.get("Ref") if isinstance(value, dict) and len(value) == 1 else None
        if not isinstance(ref, str):
            continue
        declaration = declared.get(ref)
        if (
            isinstance(declaration, dict)
            and ref in parameters
            and not _NOT_TEXT_PARAMETER.match(str(declaration.get("Type", "String")))
        ):
            known[name] = parameters[ref]
    return known


def substitute_definition(text: str, values: Mapping[str, Any]) -> str:
    """Replace ``${Name}`` for each substitution Name, as Step Functions does."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            return match.group(0)
        value = values[name]
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)

    return _SUBSTITUTION.sub(replace, text)
