"""Packaging a SAM template for the local cloud, the way ``sam package`` does it.

Local ``CodeUri`` directories are zipped (once per directory, deterministically) and state
machine ``DefinitionUri`` files read; both are pointed at an artifacts bucket in the emulator."""

from __future__ import annotations

import copy
import hashlib
import io
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tweetlens.localcloud import cache
from tweetlens.localcloud.errors import DeployError

ARTIFACTS_BUCKET = "localcloud-artifacts"


@dataclass
class PackagedTemplate:
    """A template whose local code and definitions point at the artifacts bucket."""

    template: dict[str, Any]
    code_uris: dict[str, Path]
    definitions: dict[str, str]
    uploads: dict[str, bytes]


def load_template(path: Path) -> dict[str, Any]:
    """Parse a SAM/CloudFormation YAML or JSON template, keeping short-form intrinsics.

    The parse is cached by the file's bytes (``tweetlens.localcloud.cache``): SAM CLI's loader
    is imported and run only for a template not seen before.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, ValueError) as exc:
        raise DeployError(f"cannot read template {path}: {exc}") from exc
    key = cache.digest("template", text)
    parsed = cache.read("templates", key)
    if parsed is None:
        # Imported here: a cached parse needs neither SAM CLI nor its YAML loader.
        import yaml  # noqa: PLC0415 - SAM CLI's loader raises PyYAML's errors
        from samcli.yamlhelper import yaml_parse  # noqa: PLC0415

        try:
            parsed = yaml_parse(text)
        except (ValueError, yaml.YAMLError) as exc:
            # A YAML error's text names the line and column of the fault.
            raise DeployError(f"cannot read template {path}: {exc}") from exc
        if isinstance(parsed, dict) and "Resources" in parsed:
            # Before the cache, whose JSON would quietly make a key True the text "true".
            parsed = keys_as_text(parsed, path, "")
            cache.write("templates", key, parsed)
    if not isinstance(parsed, dict) or "Resources" not in parsed:
        raise DeployError(f"{path} is not a CloudFormation template (no Resources)")
    check_template_shape(parsed, path)
    return parsed


# Top-level sections whose value is a mapping of name -> mapping, as CloudFormation's template
# anatomy has them; Resources is checked entry by entry below.
_SECTIONS_OF_MAPPINGS = ("Parameters", "Outputs", "Mappings", "Globals")
_MAPPING_SECTIONS = ("Conditions", "Metadata", "Rules")


def _kind(value: Any) -> str:
    return f"{type(value).__name__} {value!r}"[:80]


class TemplateKeyError(DeployError):
    """A mapping key YAML read as something other than text (an unquoted ``ON:`` is True)."""

    def __init__(self, path: Path, where: str, key: Any) -> None:
        super().__init__(
            f"{path}: {where or 'the template'} has the key {key!r}, which YAML reads as a "
            f"{type(key).__name__}, not text (an unquoted ON, Off, yes, no, true, null …): "
            "quote it"
        )
        self.where = where
        self.key = key


def keys_as_text(value: Any, path: Path, where: str) -> Any:
    """``value`` with every mapping key text, as CloudFormation's JSON has them.

    A number key (``200:``) becomes its digits, as JSON writes it. A boolean or null key is
    refused naming where it is: whether ``ON`` was meant as ``"ON"`` or ``"true"`` cannot be
    told, and mixed with text keys it broke the transform's sorted dump with a TypeError.
    """
    if isinstance(value, list):
        return [keys_as_text(item, path, f"{where}[{index}]") for index, item in enumerate(value)]
    if not isinstance(value, dict):
        return value
    result: dict[str, Any] = {}
    for key, item in value.items():
        if isinstance(key, bool) or not isinstance(key, str | int | float):
            raise TemplateKeyError(path, where, key)
        name = str(key)
        result[name] = keys_as_text(item, path, f"{where}.{name}" if where else name)
    return result


def check_template_shape(template: dict[str, Any], path: Path) -> None:
    """Refuse a template whose sections or resources have the wrong shape, naming where.

    The packaging, the SAM transform and the deploy walk these as mappings; a list or a
    scalar there would otherwise end as an AttributeError deep inside them.
    """

    def refuse(where: str, expected: str, value: Any) -> None:
        raise DeployError(f"{path}: {where} must be {expected}, got {_kind(value)}")

    resources = template["Resources"]
    if not isinstance(resources, dict):
        refuse("Resources", "a mapping of logical id -> resource", resources)
    for logical_id, resource in resources.items():
        where = f"Resources.{logical_id}"
        if not isinstance(resource, dict):
            refuse(where, "a mapping with Type and Properties", resource)
        if not isinstance(resource.get("Type"), str):
            refuse(f"{where}.Type", "a resource type name", resource.get("Type"))
        if not isinstance(resource.get("Properties", {}), dict):
            refuse(f"{where}.Properties", "a mapping", resource["Properties"])
        depends_on = resource.get("DependsOn", [])
        if not isinstance(depends_on, str) and not (
            isinstance(depends_on, list) and all(isinstance(d, str) for d in depends_on)
        ):
            refuse(f"{where}.DependsOn", "a logical id or a list of them", depends_on)
    for section in _SECTIONS_OF_MAPPINGS:
        entries = template.get(section, {})
        if not isinstance(entries, dict):
            refuse(section, "a mapping", entries)
        for name, entry in entries.items():
            if not isinstance(entry, dict):
                refuse(f"{section}.{name}", "a mapping", entry)
    for section in _MAPPING_SECTIONS:
        if not isinstance(template.get(section, {}), dict):
            refuse(section, "a mapping", template[section])


def zip_directory(directory: Path) -> bytes:
    """A deterministic zip of a code directory, without byte-code caches."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for file in sorted(directory.rglob("*")):
            if file.is_file() and "__pycache__" not in file.parts:
                info = zipfile.ZipInfo(str(file.relative_to(directory)), (1980, 1, 1, 0, 0, 0))
                archive.writestr(info, file.read_bytes())
    return buffer.getvalue()


def package(template: dict[str, Any], template_dir: Path) -> PackagedTemplate:
    """Point local CodeUri/DefinitionUri at the artifacts bucket, as ``sam package`` would."""
    packaged = copy.deepcopy(template)
    resources: dict[str, Any] = packaged["Resources"]
    global_code_uri = packaged.get("Globals", {}).get("Function", {}).get("CodeUri")
    code_uris: dict[str, Path] = {}
    definitions: dict[str, str] = {}
    uploads: dict[str, bytes] = {}
    zipped: dict[Path, str] = {}
    for logical_id, resource in resources.items():
        properties = resource.setdefault("Properties", {})
        if resource.get("Type") == "AWS::Serverless::Function":
            if "InlineCode" in properties or properties.get("PackageType") == "Image":
                raise DeployError(
                    f"{logical_id}: only functions with a local CodeUri can run in the local cloud"
                )
            code_uri = properties.get("CodeUri", global_code_uri)
            if not isinstance(code_uri, str) or code_uri.startswith("s3://"):
                raise DeployError(
                    f"{logical_id}: CodeUri must be a local directory, got {code_uri!r}"
                )
            directory = (template_dir / code_uri).resolve()
            if not directory.is_dir():
                raise DeployError(f"{logical_id}: CodeUri {directory} is not a directory")
            if directory not in zipped:
                archive = zip_directory(directory)
                key = f"code/{hashlib.sha256(archive).hexdigest()}.zip"
                uploads[key] = archive
                zipped[directory] = key
            code_uris[logical_id] = directory
            properties["CodeUri"] = f"s3://{ARTIFACTS_BUCKET}/{zipped[directory]}"
        elif resource.get("Type") == "AWS::Serverless::StateMachine":
            uri = properties.get("DefinitionUri")
            if isinstance(uri, str) and not uri.startswith("s3://"):
                definition_path = (template_dir / uri).resolve()
                try:
                    text = definition_path.read_text(encoding="utf-8")
                except OSError as exc:
                    raise DeployError(f"{logical_id}: cannot read DefinitionUri: {exc}") from exc
                key = f"statemachine/{logical_id}/{hashlib.sha256(text.encode()).hexdigest()}.json"
                uploads[key] = text.encode()
                definitions[key] = text
                properties["DefinitionUri"] = f"s3://{ARTIFACTS_BUCKET}/{key}"
            elif uri is not None:
                raise DeployError(f"{logical_id}: DefinitionUri must be a local file, got {uri!r}")
    return PackagedTemplate(packaged, code_uris, definitions, uploads)
