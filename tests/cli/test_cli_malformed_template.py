"""A malformed template ends every command that deploys it with a named error, not a traceback.

Each shape below once ended as an AttributeError/TypeError deep in the packaging or the
deploy (or a YAMLError from the loader): the user saw a traceback with no word of where the
template was wrong.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.cli_testkit import make_runner, run_cli

FUNCTION = (
    "Transform: AWS::Serverless-2016-10-31\n"
    "Resources:\n"
    "  F:\n"
    "    Type: AWS::Serverless::Function\n"
    "    Properties:\n"
    "      CodeUri: fn\n"
    "      Handler: app.handler\n"
    "      Runtime: python3.12\n"
)

# (template text, the message the user must see, after "Error: ")
MALFORMED = {
    "yaml syntax": (
        "Resources: {X: [\n",
        "cannot read template {path}: while parsing a flow node expected the node content, "
        "but found '<stream end>' in \"<unicode string>\", line 2, column 1:",
    ),
    "resources a list": (
        "Resources: [1]\n",
        "{path}: Resources must be a mapping of logical id -> resource, got list [1]",
    ),
    "resource a number": (
        "Resources: {X: 5}\n",
        "{path}: Resources.X must be a mapping with Type and Properties, got int 5",
    ),
    "type a list": (
        "Resources: {X: {Type: [1]}}\n",
        "{path}: Resources.X.Type must be a resource type name, got list [1]",
    ),
    "properties a list": (
        "Resources: {X: {Type: AWS::Serverless::Function, Properties: [a]}}\n",
        "{path}: Resources.X.Properties must be a mapping, got list ['a']",
    ),
    "depends on a number": (
        "Resources: {X: {Type: AWS::SQS::Queue, DependsOn: 5}}\n",
        "{path}: Resources.X.DependsOn must be a logical id or a list of them, got int 5",
    ),
    "parameters a list": (
        "Parameters: [1]\nResources: {X: {Type: AWS::SQS::Queue}}\n",
        "{path}: Parameters must be a mapping, got list [1]",
    ),
    "parameter a string": (
        "Parameters: {P: text}\nResources: {X: {Type: AWS::SQS::Queue}}\n",
        "{path}: Parameters.P must be a mapping, got str 'text'",
    ),
    "globals a number": (
        "Globals: 5\nResources: {X: {Type: AWS::SQS::Queue}}\n",
        "{path}: Globals must be a mapping, got int 5",
    ),
    "conditions a list": (
        "Conditions: [1]\nResources: {X: {Type: AWS::SQS::Queue}}\n",
        "{path}: Conditions must be a mapping, got list [1]",
    ),
    "event of a function a number": (
        FUNCTION + "      Events: {E: 5}\n",
        "Resource F (AWS::Serverless::Function): property Events.E: must be a mapping with "
        "Type and Properties, got 5",
    ),
    # Checked against CloudFormation's schema before the emulator (which answered an HTTP 500).
    "property of the wrong shape": (
        "Resources:\n  F:\n    Type: AWS::Lambda::Function\n    Properties: {Code: {ZipFile: x},"
        " Handler: a.b, Runtime: python3.12, Role: 'arn:aws:iam::123456789012:role/r',"
        " Environment: 5}\n",
        "Resource F (AWS::Lambda::Function): property Environment: 5 is not of type 'object'",
    ),
}


def _write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "fn").mkdir()
    (tmp_path / "fn" / "app.py").write_text("def handler(event, context):\n    return 1\n")
    template = tmp_path / "template.yaml"
    template.write_text(text, encoding="utf-8")
    (tmp_path / "event.json").write_text("{}", encoding="utf-8")
    return template


@pytest.mark.parametrize("shape", sorted(MALFORMED))
def test_invoke_names_what_is_wrong_and_where(shape: str, tmp_path: Path) -> None:
    # GIVEN a template malformed in one way
    text, expected = MALFORMED[shape]
    template = _write(tmp_path, text)
    # WHEN the user invokes a function of it, as in the README
    result = run_cli(
        make_runner(), "invoke", "F", "-e", str(tmp_path / "event.json"), "-t", str(template)
    )
    # THEN the command ends with exit code 1 and one message naming the fault: no traceback
    assert result.exit_code == 1, result.output + result.stderr
    assert isinstance(result.exception, SystemExit)
    message = " ".join(result.stderr.split())
    assert message.startswith("Error: " + expected.format(path=template)), message
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("command", ["up", "demo"])
def test_up_and_demo_name_what_is_wrong_and_where(command: str, tmp_path: Path) -> None:
    # GIVEN a template whose resource is a number
    template = _write(tmp_path, "Resources: {X: 5}\n")
    # WHEN `tweetlens up -t` / `tweetlens demo -t` deploys it
    result = run_cli(make_runner(), command, "-t", str(template))
    # THEN it ends on the named error, where the fault is, not a traceback
    assert result.exit_code == 1, result.output + result.stderr
    assert isinstance(result.exception, SystemExit)
    expected = (
        f"Error: {template}: Resources.X must be a mapping with Type and Properties, got int 5"
    )
    assert expected in " ".join(result.stderr.split())
