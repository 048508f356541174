"""Templates a new user may bring: each ends deployed as AWS would, or refused by name.

Each case once ended otherwise: a botocore traceback (a property of the wrong shape stored by
moto and unreadable when read back), an HTTP 500 naming nothing, SAM's error about a hashed
logical id, or silence (a Node.js function run as Python, a layer left out, a transition to
nowhere accepted). All but one are refused offline, before the emulator starts.
"""

from __future__ import annotations

import json
from importlib import metadata
from pathlib import Path

import pytest

from tests.localcloud.conftest import TEMPLATES
from tweetlens.localcloud import LocalCloud, cache
from tweetlens.localcloud.aslcheck import InvalidDefinitionError
from tweetlens.localcloud.deploy import check_parameter_value, prepare
from tweetlens.localcloud.errors import (
    DeployError,
    UnknownFunctionError,
    UnsupportedResourceError,
)
from tweetlens.localcloud.packaging import TemplateKeyError
from tweetlens.localcloud.properties import (
    InvalidPropertyError,
    UnsupportedEventError,
    check_properties,
)

REGION = "us-east-1"
CHECKS = TEMPLATES / "checks"


@pytest.mark.parametrize(
    ("template", "where", "path", "reason"),
    [
        (
            "environment_variables_number",
            "Worker (AWS::Lambda::Function)",
            "Environment.Variables",
            "5 is not of type 'object'",
        ),
        (
            "timeout_words",
            "Worker (AWS::Lambda::Function)",
            "Timeout",
            "'thirty' is not of type 'integer'",
        ),
        (
            "queue_not_an_arn",
            "WorkerWork (AWS::Lambda::EventSourceMapping)",
            "EventSourceArn",
            r"'work-queue' does not match the pattern arn:(aws[a-zA-Z0-9-]*):([a-zA-Z0-9\-])+:"
            r"((eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1})?:(\d{12})?:(.*)",
        ),
        (
            "rule_targets_number",
            "Nightly (AWS::Events::Rule)",
            "Targets",
            "5 is not of type 'array'",
        ),
        (
            "rule_six_targets",
            "Nightly (AWS::Events::Rule)",
            "Targets",
            "has 6 items, at most 5 allowed",
        ),
        (
            "environment_value_list",
            "Worker (AWS::Lambda::Function)",
            "Environment.Variables.LIMITS",
            "must be a string, got list [1, 2]",
        ),
    ],
)
def test_a_property_of_the_wrong_shape_is_refused_naming_resource_and_property(
    template: str, where: str, path: str, reason: str
) -> None:
    # GIVEN a template with one property CloudFormation's schema for its type refuses
    # WHEN it is prepared
    # THEN the deploy fails naming the resource (SAM's generated one for an event), the
    # property and what is wrong, before the emulator sees it
    with pytest.raises(InvalidPropertyError) as raised:
        prepare(CHECKS / f"{template}.yaml", {}, REGION)
    assert str(raised.value) == f"Resource {where}: property {path}: {reason}"
    assert raised.value.path == path


def test_scalars_are_converted_as_cloudformation_converts_them() -> None:
    # GIVEN a Timeout written "30" and environment values that are numbers and a boolean
    # WHEN the templates are prepared
    digits = prepare(CHECKS / "timeout_digits.yaml", {}, REGION)
    scalars = prepare(CHECKS / "environment_value_scalars.yaml", {}, REGION)
    # THEN both deploy; the values reach Lambda as text, a boolean as "true" (not "True")
    assert digits.template["Resources"]["Worker"]["Properties"]["Timeout"] == "30"
    variables = scalars.template["Resources"]["Worker"]["Properties"]["Environment"]["Variables"]
    assert variables == {"LIMIT": "5", "ENABLED": "true", "RATIO": "0.5"}


def test_an_event_the_local_cloud_cannot_deliver_is_refused_by_its_name() -> None:
    # GIVEN a function with an API Gateway event
    # WHEN the template is prepared
    # THEN the deploy fails naming the function, the event and its type (it used to name the
    # API Gateway stage SAM generates, a resource the user never wrote)
    with pytest.raises(UnsupportedEventError) as raised:
        prepare(CHECKS / "api_event.yaml", {}, REGION)
    assert (raised.value.logical_id, raised.value.event, raised.value.event_type) == (
        "Worker",
        "Hello",
        "Api",
    )
    assert str(raised.value) == (
        "Worker: event Hello has Type Api, which the local cloud cannot deliver "
        "(supported: CloudWatchEvent, EventBridgeRule, SNS, SQS, Schedule)"
    )


def test_a_layer_is_refused_by_name() -> None:
    # GIVEN a layer built from a local folder, and a function using a published layer
    # WHEN the templates are prepared
    # THEN the first fails naming the layer (not SAM's hashed id), the second the function
    with pytest.raises(UnsupportedResourceError) as raised:
        prepare(CHECKS / "layer_version.yaml", {}, REGION)
    assert (raised.value.logical_id, raised.value.resource_type) == (
        "SharedLayer",
        "AWS::Serverless::LayerVersion",
    )
    with pytest.raises(DeployError) as layered:
        prepare(CHECKS / "layer_arn.yaml", {}, REGION)
    assert str(layered.value) == (
        "Worker: Layers are not supported by the local cloud (the function would run without "
        "them); put their packages in the CodeUri folder"
    )


def test_a_function_property_sam_turns_into_an_unsupported_type_is_refused_by_name() -> None:
    # GIVEN AutoPublishAlias in Globals
    # WHEN the template is prepared
    # THEN the deploy fails naming the function and the property written (it used to name
    # WorkerAliaslive, an id SAM made up)
    with pytest.raises(DeployError) as raised:
        prepare(CHECKS / "auto_publish_alias.yaml", {}, REGION)
    assert str(raised.value) == (
        "Worker: AutoPublishAlias makes SAM create an AWS::Lambda::Alias, which the local cloud "
        "cannot create"
    )


def test_a_function_that_is_not_python_is_refused() -> None:
    # GIVEN a Node.js function (it used to deploy and run its handler name as Python)
    # WHEN the template is prepared
    # THEN the deploy fails naming the function and its runtime
    with pytest.raises(DeployError) as raised:
        prepare(CHECKS / "node_runtime.yaml", {}, REGION)
    assert str(raised.value) == (
        "Worker: Runtime nodejs20.x cannot run in the local cloud, which runs Python "
        "functions only (python3.x)"
    )


@pytest.mark.parametrize(
    ("template", "problem"),
    [
        (
            "definition_missing_target",
            "MISSING_TRANSITION_TARGET: Missing target 'Store' at /States/Record/Next",
        ),
        (
            "definition_nested_target",
            "MISSING_TRANSITION_TARGET: Missing target 'Failed' at "
            "/States/Each/ItemProcessor/States/Step/Next",
        ),
        (
            "definition_not_json",
            "the definition is not JSON: Expecting property name enclosed in double quotes: "
            "line 3 column 54 (char 78)",
        ),
    ],
)
def test_a_definition_step_functions_would_refuse_is_refused(template: str, problem: str) -> None:
    # GIVEN a state machine whose definition is no JSON or moves to a state that is not there
    # (inside a Map's iterator too, beside a substitution written unquoted)
    # WHEN the template is prepared
    # THEN the deploy fails as CreateStateMachine would, naming the machine and where
    with pytest.raises(InvalidDefinitionError) as raised:
        prepare(CHECKS / f"{template}.yaml", {}, REGION)
    assert str(raised.value) == f"Flow: Invalid State Machine Definition: {problem}"


def test_parameters_are_checked_as_cloudformation_checks_them() -> None:
    # GIVEN a parameter without Default, a String parameter with length constraints, and
    # AllowedValues holding a YAML boolean
    # WHEN the first is deployed without an override, the others given values out of range
    # THEN each is refused naming the parameter and the constraint, as CloudFormation reads it
    with pytest.raises(DeployError) as raised:
        prepare(CHECKS / "parameter_without_value.yaml", {}, REGION)
    assert str(raised.value) == (
        "Parameters: ['QueueName'] must have values (no Default, no override)"
    )
    bounded = {"Type": "String", "MinLength": 2, "MaxLength": 5}
    with pytest.raises(DeployError, match=r"^parameter P='a' is shorter than MinLength 2$"):
        check_parameter_value("P", bounded, "a")
    with pytest.raises(DeployError, match=r"^parameter P='abcdef' is longer than MaxLength 5$"):
        check_parameter_value("P", bounded, "abcdef")
    check_parameter_value("P", bounded, "abcde")
    # An unquoted YAML OFF is the boolean false, which CloudFormation compares as "false".
    levels = {"Type": "String", "AllowedValues": ["ALL", False]}
    with pytest.raises(DeployError) as level:
        check_parameter_value("Level", levels, "OFF")
    assert str(level.value) == "parameter Level='OFF' is not one of ['ALL', 'false']"
    check_parameter_value("Level", levels, "false")


def test_unknown_function_of_a_template_without_functions_says_so() -> None:
    # GIVEN a template that declares no function
    # WHEN a function is asked of it
    error = UnknownFunctionError("Worker", frozenset())
    # THEN the message says there is none (it used to end in an empty list)
    assert str(error) == "no function 'Worker' in the template; it declares no function"


def test_a_resource_the_emulator_fails_to_create_is_named() -> None:
    # GIVEN a table whose KeySchema is one mapping: the schema lets it pass (as JSON text),
    # moto's CloudFormation raises a TypeError inside CreateStack (moto 5.2.5's words below)
    # WHEN the template is deployed
    # THEN the deploy fails naming the table and moto's complaint (it used to be an HTTP 500
    # answered "ResponseParserError" and a traceback in the emulator's log)
    with pytest.raises(DeployError) as raised, LocalCloud(CHECKS / "key_schema_mapping.yaml"):
        pass
    assert str(raised.value) == (
        "stack local was refused: An error occurred (ValidationError) when calling the "
        "CreateStack operation (reached max retries: 0): Resource Items (AWS::DynamoDB::Table) "
        "could not be created by the emulator from its properties (one of a shape it cannot "
        "read?): TypeError: string indices must be integers, not 'str'"
    )


def test_an_unquoted_boolean_default_is_the_text_cloudformation_passes() -> None:
    # GIVEN parameters whose Default is an unquoted YAML false, one with AllowedValues
    # [true, false] (it was refused: "parameter Debug='False' is not one of ['true', 'false']")
    # and one without (its !Ref was "False", so !Equals [!Ref Verbose, "false"] did not hold)
    # WHEN the template is prepared and deployed
    prepared = prepare(CHECKS / "parameter_boolean_default.yaml", {}, REGION)
    with LocalCloud(CHECKS / "parameter_boolean_default.yaml") as cloud:
        environment = cloud.functions["Worker"].environment
    # THEN both are "false", as CloudFormation passes them, in the checks and in the stack
    assert prepared.parameters == {"Debug": "false", "Verbose": "false"}
    assert environment == {"DEBUG": "false", "DEBUG_OFF": "yes", "VERBOSE_OFF": "yes"}


def test_a_boolean_override_is_the_same_text() -> None:
    # GIVEN the same template, and an override given as a Python boolean
    # WHEN it is prepared
    prepared = prepare(
        CHECKS / "parameter_boolean_default.yaml",
        {"Debug": True},  # type: ignore[dict-item]  # what a caller may pass; made text
        REGION,
    )
    # THEN the override passes AllowedValues as "true"
    assert prepared.parameters == {"Debug": "true", "Verbose": "false"}


def test_substitutions_may_fill_transitions_and_end() -> None:
    # GIVEN a definition whose Next and End come from substitutions: literals and parameters
    # (known offline), and in a second machine a queue's name (known once the stack exists).
    # Each was replaced by 0 for the check before: "Missing target '0'".
    # WHEN the template is deployed
    with LocalCloud(CHECKS / "substitution_transitions.yaml") as cloud:
        sfn = cloud.client("stepfunctions")
        definitions = {
            machine: json.loads(
                sfn.describe_state_machine(stateMachineArn=cloud.resources[machine])["definition"]
            )
            for machine in ("Known", "Later")
        }
    # THEN both machines hold the definition with every value substituted
    expected = {
        "StartAt": "Start",
        "States": {
            "Start": {"Type": "Pass", "Next": "Done"},
            "Done": {"Type": "Wait", "Seconds": 1, "Next": "Finish"},
            "Finish": {"Type": "Pass", "End": True},
        },
    }
    assert definitions == {"Known": expected, "Later": expected}


def test_a_substitution_known_offline_is_checked_before_anything_is_created() -> None:
    # GIVEN the same definition, its Next filled from a parameter whose Default names no state
    # WHEN the template is prepared
    # THEN it is refused offline, naming the value substituted
    with pytest.raises(InvalidDefinitionError) as raised:
        prepare(CHECKS / "substitution_wrong_target.yaml", {}, REGION)
    assert str(raised.value) == (
        "Flow: Invalid State Machine Definition: MISSING_TRANSITION_TARGET: Missing target "
        "'Nowhere' at /States/Done/Next"
    )


def test_an_inline_definition_may_take_its_next_from_a_parameter() -> None:
    # GIVEN an inline SAM definition with Next: !Ref After and a Task's Resource: !GetAtt
    # (SAM makes both substitutions; the Ref was checked as the target '0')
    # WHEN the template is deployed
    with LocalCloud(CHECKS / "inline_definition_intrinsics.yaml") as cloud:
        definition = json.loads(
            cloud.client("stepfunctions").describe_state_machine(
                stateMachineArn=cloud.resources["Flow"]
            )["definition"]
        )
    # THEN the parameter's value is the transition
    assert definition["States"]["Pause"] == {"Type": "Wait", "Seconds": 1, "Next": "Done"}


def test_a_yaml_definition_file_is_taken_as_cloudformation_takes_it() -> None:
    # GIVEN DefinitionUri naming a YAML file with a substitution (it was refused "not JSON";
    # CloudFormation takes a JSON or YAML definition file)
    # WHEN the template is deployed
    with LocalCloud(CHECKS / "definition_yaml.yaml") as cloud:
        definition = json.loads(
            cloud.client("stepfunctions").describe_state_machine(
                stateMachineArn=cloud.resources["Flow"]
            )["definition"]
        )
    # THEN the machine holds it as JSON, substituted, the date as its text
    assert definition == {
        "StartAt": "Record",
        "States": {
            "Record": {
                "Type": "Pass",
                "Result": {"label": "recorded", "released": "2024-01-01"},
                "Next": "Done",
            },
            "Done": {"Type": "Succeed"},
        },
    }


def test_a_jsonata_expression_may_stand_where_jsonpath_takes_an_integer() -> None:
    # GIVEN Wait states whose Seconds is a JSONata expression: in a JSONata machine, and in
    # the branch of a JSONata Map inside a JSONPath machine (both refused as "Expected value of
    # type Integer" before)
    # WHEN the template is prepared
    prepared = prepare(CHECKS / "definition_jsonata.yaml", {}, REGION)

    # THEN both machines pass the checks
    assert sorted(prepared.template["Resources"]) == ["Flow", "FlowRole", "Mixed", "MixedRole"]


def test_a_jsonata_expression_in_a_jsonpath_state_is_still_refused() -> None:
    # GIVEN the same expression in a machine that does not declare JSONata (JSONPath, where
    # AWS wants an integer)
    # WHEN the template is prepared
    # THEN it is refused as before
    with pytest.raises(InvalidDefinitionError) as raised:
        prepare(CHECKS / "definition_jsonata_in_jsonpath.yaml", {}, REGION)
    assert str(raised.value) == (
        "Flow: Invalid State Machine Definition: SCHEMA_VALIDATION_FAILED: Expected value of "
        "type Integer at /States/Pause/Seconds"
    )


@pytest.mark.parametrize(
    ("template", "problem"),
    [
        (
            "definition_unreachable",
            'MISSING_TRANSITION_TARGET: State "Orphan" is not reachable. at /States/Orphan',
        ),
        (
            "definition_branch_unreachable",
            'MISSING_TRANSITION_TARGET: State "Forgotten" is not reachable. at '
            "/States/Both/Branches/1/States/Forgotten",
        ),
        (
            "definition_next_and_end",
            "SCHEMA_VALIDATION_FAILED: Next and End cannot both be present at /States/Record",
        ),
        (
            "definition_choice_empty",
            "SCHEMA_VALIDATION_FAILED: A Choice state needs a non-empty Choices at /States/Route",
        ),
        (
            "definition_succeed_next",
            "SCHEMA_VALIDATION_FAILED: Field Next is not supported by a Succeed state at "
            "/States/Done",
        ),
        # AWS reports only this one for a loop with no way out, not the stray state.
        ("definition_no_terminal", "MISSING_END_STATE: Workflow has no terminal state at /"),
        (
            "definition_seconds_ref",
            "SCHEMA_VALIDATION_FAILED: Expected value of type Integer at /States/Pause/Seconds",
        ),
    ],
)
def test_a_definition_aws_refuses_for_its_flow_is_refused(template: str, problem: str) -> None:
    # GIVEN a definition whose every transition has a target, but which AWS refuses: a state
    # nothing reaches (in a Parallel branch too), Next beside End, a Choice without Choices, a
    # Succeed with a Next, no terminal state, a Wait's Seconds given as text (each was
    # accepted; the last failed in moto's parser after the stack)
    # WHEN the template is prepared
    # THEN it is refused with AWS's error name, naming the machine and where
    with pytest.raises(InvalidDefinitionError) as raised:
        prepare(CHECKS / f"{template}.yaml", {}, REGION)
    assert str(raised.value) == f"Flow: Invalid State Machine Definition: {problem}"


def test_a_template_cached_as_passed_by_an_earlier_checker_is_checked_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a cache in which an earlier checker (whose key had no digest of its own code)
    # recorded a template as passed, a template the checks now refuse
    monkeypatch.setenv(cache.CACHE_DIR_ENV, str(tmp_path))
    template = {
        "Resources": {"Q": {"Type": "AWS::SQS::Queue", "Properties": {"VisibilityTimeout": 50000}}}
    }
    earlier_key = cache.digest(
        "properties",
        json.dumps(template, sort_keys=True, default=str),
        REGION,
        metadata.version("cfn-lint"),
    )
    cache.write("checked", earlier_key, True)
    assert cache.read("checked", earlier_key) is True
    # WHEN its properties are checked
    # THEN the cached answer is not used: the template is refused
    with pytest.raises(InvalidPropertyError) as raised:
        check_properties(template, REGION)
    assert str(raised.value) == (
        "Resource Q (AWS::SQS::Queue): property VisibilityTimeout: 50000 is greater than the "
        "maximum of 43200"
    )


def test_a_boolean_key_is_refused_naming_where_it_is() -> None:
    # GIVEN an environment variable named ON, unquoted: YAML reads the key as True
    # WHEN the template is prepared
    # THEN it is refused naming the resource's property and the key (it was a TypeError from
    # sorting the template's keys in the transform)
    path = CHECKS / "boolean_key.yaml"
    with pytest.raises(TemplateKeyError) as raised:
        prepare(path, {}, REGION)
    assert str(raised.value) == (
        f"{path}: Resources.Worker.Properties.Environment.Variables has the key True, which "
        "YAML reads as a bool, not text (an unquoted ON, Off, yes, no, true, null …): quote it"
    )
