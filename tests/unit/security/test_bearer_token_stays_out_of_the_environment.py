"""The X bearer token never reaches a Lambda environment variable or a template parameter.

The producer reads the token at run time from Secrets Manager or an SSM SecureString, named by
``BEARER_TOKEN_STORE`` / ``BEARER_TOKEN_NAME``; that it is sent to X and never logged is proven
by tests/unit/producer/test_producer_token.py. These tests close the other ways it could leak:
an environment variable (readable by anyone with lambda:GetFunctionConfiguration), a
parameter (kept in the stack's history, NoEcho or not), a dynamic reference resolved into the
environment at deploy time, or a deploy configuration committed with the token in it.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel
from samcli.yamlhelper import yaml_parse

from classifier.settings import ClassifierSettings
from fetch_image.settings import FetchSettings
from guard.render_template import render
from producer.settings import ProducerSettings

REPO = Path(__file__).resolve().parents[3]
TEMPLATE_PATH = REPO / "template.yaml"
SAMCONFIG_PATH = REPO / "samconfig.toml"

# Names that would announce a credential: the two variables that only *locate* the token are
# the sole exceptions.
SECRET_NAME = re.compile(r"TOKEN|SECRET|PASSW|API_?KEY|ACCESS_?KEY|PRIVATE|CREDENTIAL|AUTH")
TOKEN_LOCATOR_VARIABLES = {"BEARER_TOKEN_STORE", "BEARER_TOKEN_NAME"}
TOKEN_LOCATOR_PARAMETERS = {"BearerTokenStore", "BearerTokenName"}
# An X app-only bearer token: a long run of URL-safe base64 with percent-escapes; no setting
# of this application is a literal that long.
TOKEN_SHAPED = re.compile(r"[A-Za-z0-9%+/=_-]{40,}")
# The shape of a real token (the producer tests use the same fake one).
SAMPLE_TOKEN = (
    "AAAAAAAAAAAAAAAAAAAAAFh7xQEAAAAAq3ZpTXcyWk9rS2xBcDRvV2ZUQ1ZqUXJi%3DnG5bTqRzLw8XkY2vPc"
)


@cache
def _transformed() -> dict[str, Any]:
    return render(TEMPLATE_PATH)


@pytest.fixture
def sam() -> dict[str, Any]:
    """GIVEN template.yaml as written."""
    parsed: dict[str, Any] = yaml_parse(TEMPLATE_PATH.read_text(encoding="utf-8"))
    return parsed


@pytest.fixture
def cfn() -> dict[str, Any]:
    """GIVEN template.yaml as CloudFormation creates it (Globals merged into each function)."""
    return _transformed()


def function_environments(cfn: dict[str, Any]) -> Iterator[tuple[str, str, Any]]:
    for name, resource in cfn["Resources"].items():
        if resource["Type"] == "AWS::Lambda::Function":
            variables = resource["Properties"].get("Environment", {}).get("Variables", {})
            for variable, value in variables.items():
                yield name, variable, value


def literal_strings(value: Any) -> Iterator[str]:
    """Every literal string in a value, intrinsic function arguments included."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from literal_strings(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from literal_strings(item)


def referenced_parameters(value: Any, parameters: set[str]) -> set[str]:
    """The template parameters a value reads, by Ref or by ${Name} inside Fn::Sub."""
    found: set[str] = set()
    if isinstance(value, dict):
        if isinstance(value.get("Ref"), str) and value["Ref"] in parameters:
            found.add(value["Ref"])
        sub = value.get("Fn::Sub")
        text = sub[0] if isinstance(sub, list) else sub
        if isinstance(text, str):
            found |= set(re.findall(r"\$\{([A-Za-z0-9]+)\}", text)) & parameters
        for item in value.values():
            found |= referenced_parameters(item, parameters)
    elif isinstance(value, list):
        for item in value:
            found |= referenced_parameters(item, parameters)
    return found


def test_only_the_token_locators_have_secret_like_variable_names(cfn: dict[str, Any]) -> None:
    # WHEN every environment variable of every function is read
    secret_like = {
        (function, variable)
        for function, variable, _value in function_environments(cfn)
        if SECRET_NAME.search(variable)
    }

    # THEN only the producer's store and name variables look like secrets
    assert secret_like == {
        ("ProducerFunction", "BEARER_TOKEN_STORE"),
        ("ProducerFunction", "BEARER_TOKEN_NAME"),
    }


def test_token_locators_carry_the_store_and_name_parameters_only(cfn: dict[str, Any]) -> None:
    # WHEN the producer's token variables are read
    variables = cfn["Resources"]["ProducerFunction"]["Properties"]["Environment"]["Variables"]

    # THEN they are exactly the two locator parameters, nothing resolved or composed
    assert variables["BEARER_TOKEN_STORE"] == {"Ref": "BearerTokenStore"}
    assert variables["BEARER_TOKEN_NAME"] == {"Ref": "BearerTokenName"}


def test_no_environment_value_is_shaped_like_a_token(cfn: dict[str, Any]) -> None:
    # WHEN every literal string in every environment value is read
    shaped = [
        (function, variable, text)
        for function, variable, value in function_environments(cfn)
        for text in literal_strings(value)
        if TOKEN_SHAPED.fullmatch(text)
    ]

    # THEN none is long enough to be a token
    assert shaped == []


def test_no_dynamic_reference_resolves_a_secret_into_the_template() -> None:
    # GIVEN the template's text
    text = TEMPLATE_PATH.read_text(encoding="utf-8")

    # THEN it has no {{resolve:...}}, which would put the secret's value into the environment
    # at deploy time, in plain view of GetFunctionConfiguration
    assert "{{resolve:" not in text


def test_no_parameter_is_no_echo(sam: dict[str, Any]) -> None:
    # WHEN the parameters are read
    no_echo = [name for name, parameter in sam["Parameters"].items() if "NoEcho" in parameter]

    # THEN none is NoEcho: a secret passed as a parameter would still reach the environment,
    # so no parameter may be meant to carry one
    assert no_echo == []


def test_only_the_token_locators_have_secret_like_parameter_names(sam: dict[str, Any]) -> None:
    # WHEN the parameter names are read
    secret_like = {name for name in sam["Parameters"] if SECRET_NAME.search(name.upper())}

    # THEN only the store and the name of the token look like secrets
    assert secret_like == TOKEN_LOCATOR_PARAMETERS


def test_token_name_parameter_refuses_a_pasted_token(sam: dict[str, Any]) -> None:
    # GIVEN the pattern a BearerTokenName value must match
    pattern = re.compile(sam["Parameters"]["BearerTokenName"]["AllowedPattern"])

    # THEN a token pasted by mistake is refused at deploy time (X tokens carry %-escapes)
    assert pattern.fullmatch(SAMPLE_TOKEN) is None
    # AND secret and parameter names are accepted
    assert pattern.fullmatch("tweetlens/x-bearer-token") is not None
    assert pattern.fullmatch("/tweetlens/x-bearer-token") is not None


def test_parameters_read_by_the_environment_are_not_secrets(
    cfn: dict[str, Any], sam: dict[str, Any]
) -> None:
    # WHEN the parameters each environment variable reads are collected
    parameters = set(sam["Parameters"])
    read = {
        variable: referenced_parameters(value, parameters)
        for _function, variable, value in function_environments(cfn)
    }

    # THEN the token locators read only themselves, and no other variable reads either
    assert read["BEARER_TOKEN_STORE"] == {"BearerTokenStore"}
    assert read["BEARER_TOKEN_NAME"] == {"BearerTokenName"}
    others = {
        variable: found & TOKEN_LOCATOR_PARAMETERS
        for variable, found in read.items()
        if variable not in TOKEN_LOCATOR_VARIABLES and found & TOKEN_LOCATOR_PARAMETERS
    }
    assert others == {}


@pytest.mark.parametrize(
    "settings_model",
    [ProducerSettings, ClassifierSettings, FetchSettings],
    ids=lambda model: model.__name__,
)
def test_function_settings_read_no_secret_from_the_environment(
    settings_model: type[BaseModel],
) -> None:
    # WHEN the variables a function validates at cold start are listed
    secret_like = {
        field.alias or name
        for name, field in settings_model.model_fields.items()
        if SECRET_NAME.search((field.alias or name).upper())
    }

    # THEN only the producer reads token variables, and those only locate the token
    expected = TOKEN_LOCATOR_VARIABLES if settings_model is ProducerSettings else set()
    assert secret_like == expected


def test_committed_deploy_configuration_passes_no_token() -> None:
    # GIVEN every parameter override in samconfig.toml
    config = tomllib.loads(SAMCONFIG_PATH.read_text(encoding="utf-8"))
    overrides = {
        pair.split("=", 1)[0]: pair.split("=", 1)[1]
        for environment in config.values()
        if isinstance(environment, dict)
        for command in environment.values()
        for pair in command.get("parameters", {}).get("parameter_overrides", "").split()
    }

    # THEN none names a secret other than the locators, and no value is shaped like a token
    assert {key for key in overrides if SECRET_NAME.search(key.upper())} <= (
        TOKEN_LOCATOR_PARAMETERS
    )
    assert [value for value in overrides.values() if TOKEN_SHAPED.fullmatch(value)] == []
