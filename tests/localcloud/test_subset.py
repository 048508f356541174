"""What one function needs of a template (``tweetlens invoke``'s partial deploy), offline."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tweetlens.localcloud.deploy import PreparedTemplate, only_for_function, prepare
from tweetlens.localcloud.errors import UnknownFunctionError
from tweetlens.localcloud.subset import function_closure, references, subset_template

REPO_TEMPLATE = Path(__file__).resolve().parent.parent.parent / "template.yaml"
REGION = "us-east-1"
PSEUDO = {"AWS::StackName": "local", "AWS::Region": REGION}


@pytest.fixture(scope="module")
def prepared() -> PreparedTemplate:
    return prepare(REPO_TEMPLATE, {}, REGION)


def test_fetch_function_gets_its_role_its_bucket_and_the_bucket_s_policy(
    prepared: PreparedTemplate,
) -> None:
    # GIVEN this repository's template, whose fetch function writes into the images bucket
    # WHEN it is cut down to the fetch function
    subset = only_for_function(prepared, "FetchImageFunction", PSEUDO)
    # THEN it holds the function, its role, the bucket its policy names and the bucket's policy
    assert sorted(subset.template["Resources"]) == [
        "FetchImageFunction",
        "FetchImageFunctionRole",
        "ImagesBucket",
        "ImagesBucketPolicy",
    ]
    # AND only the outputs that name those, the one code archive and no pending definition
    assert sorted(subset.template["Outputs"]) == ["FetchImageFunctionName", "ImagesBucketName"]
    assert [key.split("/")[0] for key in subset.packaged.uploads] == ["code"]
    assert subset.substitutions == {}


def test_classifier_gets_the_workflow_it_starts_with_the_workflow_s_functions(
    prepared: PreparedTemplate,
) -> None:
    # GIVEN the classifier, whose environment names the state machine, which names the fetch
    # and store functions only in its DefinitionSubstitutions
    # WHEN the template is cut down to the classifier
    subset = only_for_function(prepared, "ClassifierFunction", PSEUDO)
    # THEN the workflow comes with everything its substitutions name, and the classifier's own
    # mappings; the queues' shared policy brings the producer's dead-letter queue it names
    assert sorted(subset.template["Resources"]) == [
        "CatsDeadLetterQueue",
        "CatsQueue",
        "ClassifierFunction",
        "ClassifierFunctionCats",
        "ClassifierFunctionDogs",
        "ClassifierFunctionRole",
        "ClassifyImageLogGroup",
        "ClassifyImageStateMachine",
        "ClassifyImageStateMachineRole",
        "DogsDeadLetterQueue",
        "DogsQueue",
        "FetchImageFunction",
        "FetchImageFunctionRole",
        "ImagesBucket",
        "ImagesBucketPolicy",
        "ProducerDeadLetterQueue",
        "QueuesTlsOnlyPolicy",
        "ResultsTable",
        "StoreResultFunction",
        "StoreResultFunctionRole",
        "WorkflowDeadLetterQueue",
    ]
    assert sorted(subset.substitutions) == ["ClassifyImageStateMachine"]
    assert sorted(key.split("/")[0] for key in subset.packaged.uploads) == [
        "code",
        "statemachine",
    ]


def test_producer_leaves_out_the_classifier_s_mappings_alarms_and_schedules(
    prepared: PreparedTemplate,
) -> None:
    # GIVEN the producer, which sends to the route queues the classifier's mappings read
    # WHEN the template is cut down to the producer
    subset = only_for_function(prepared, "ProducerFunction", PSEUDO)
    resources = subset.template["Resources"]
    # THEN neither the classifier's mappings, nor alarms, rules or the alarm topic are created
    assert sorted(resources) == [
        "CatsDeadLetterQueue",
        "CatsQueue",
        "CheckpointsTable",
        "DogsDeadLetterQueue",
        "DogsQueue",
        "ProducerDeadLetterQueue",
        "ProducerFunction",
        "ProducerFunctionRole",
        "QueuesTlsOnlyPolicy",
        "WorkflowDeadLetterQueue",
    ]
    # AND the whole template had them
    assert {"ClassifierFunctionCats", "ProducerFunctionEveryMinute", "AlarmTopic"} <= set(
        prepared.template["Resources"]
    )


def test_a_function_the_template_lacks_names_every_function_it_has(
    prepared: PreparedTemplate,
) -> None:
    # GIVEN a logical id that is no function of the template
    # WHEN the template is cut down to it
    with pytest.raises(UnknownFunctionError) as raised:
        only_for_function(prepared, "CatsQueue", PSEUDO)
    # THEN the error lists the functions there are
    assert raised.value.functions == frozenset(
        {
            "ClassifierFunction",
            "ExecutionCloserFunction",
            "FetchImageFunction",
            "ProducerFunction",
            "StoreResultFunction",
        }
    )
    assert str(raised.value) == (
        "no function 'CatsQueue' in the template; functions: ClassifierFunction, "
        "ExecutionCloserFunction, FetchImageFunction, ProducerFunction, StoreResultFunction"
    )


def _function(environment: dict[str, Any]) -> dict[str, Any]:
    return {
        "Type": "AWS::Lambda::Function",
        "Properties": {"Environment": {"Variables": environment}},
    }


def test_a_resource_named_literally_in_the_environment_is_kept() -> None:
    # GIVEN a function that names a queue by its explicit QueueName, not by reference, and a
    # queue whose name is made of a parameter and the stack name
    resources = {
        "Worker": _function({"QUEUE": "orders-work", "AUDIT": "local-audit-dev"}),
        "WorkQueue": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "orders-work"}},
        "AuditQueue": {
            "Type": "AWS::SQS::Queue",
            "Properties": {"QueueName": {"Fn::Sub": "${AWS::StackName}-audit-${Stage}"}},
        },
        "OtherQueue": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "orders-other"}},
    }
    # WHEN the function's closure is taken
    kept = function_closure(
        resources, "Worker", parameters={"Stage": "dev", "AWS::StackName": "local"}
    )
    # THEN both named queues are kept, and the one it never names is not
    assert kept == {"Worker", "WorkQueue", "AuditQueue"}


def test_a_mapping_is_kept_only_with_both_its_function_and_its_queue() -> None:
    # GIVEN two functions, one of which has a mapping on the queue the other sends to
    resources = {
        "Sender": _function({"QUEUE": {"Ref": "Work"}}),
        "Receiver": _function({}),
        "Work": {"Type": "AWS::SQS::Queue", "Properties": {}},
        "ReceiverWork": {
            "Type": "AWS::Lambda::EventSourceMapping",
            "Properties": {
                "FunctionName": {"Ref": "Receiver"},
                "EventSourceArn": {"Fn::GetAtt": ["Work", "Arn"]},
            },
        },
    }
    # WHEN each function's closure is taken
    # THEN the sender does not bring the receiver, and the receiver's mapping needs its queue
    assert function_closure(resources, "Sender", parameters={}) == {"Sender", "Work"}
    assert function_closure(resources, "Receiver", parameters={}) == {"Receiver"}


def test_references_reads_ref_getatt_and_sub_but_not_sub_s_own_variables() -> None:
    # GIVEN a fragment using every spelling, and a Sub variable defined by the Sub itself
    fragment = {
        "A": {"Ref": "Queue"},
        "B": {"Fn::GetAtt": ["Table", "Arn"]},
        "C": {"Fn::GetAtt": "Bucket.Arn"},
        "D": {"Fn::Sub": "${Machine.Name}:${AWS::Region}:${!Literal}"},
        "E": {"Fn::Sub": ["${Local}-${Topic}", {"Local": {"Ref": "Stage"}}]},
    }
    # WHEN its references are listed
    # THEN each is found once, by logical id, and the Sub's own variable is not
    assert sorted(references(fragment)) == [
        "AWS::Region",
        "Bucket",
        "Machine",
        "Queue",
        "Stage",
        "Table",
        "Topic",
    ]


def test_outputs_naming_a_skipped_resource_are_dropped() -> None:
    # GIVEN a template with an output for a kept and one for a skipped resource
    template = {
        "Resources": {"Kept": {"Type": "AWS::SQS::Queue"}, "Skipped": {"Type": "AWS::SQS::Queue"}},
        "Outputs": {
            "KeptUrl": {"Value": {"Ref": "Kept"}},
            "SkippedUrl": {"Value": {"Ref": "Skipped"}},
            "Region": {"Value": {"Ref": "AWS::Region"}},
        },
    }
    # WHEN it is cut down to the kept resource
    subset = subset_template(template, {"Kept"})
    # THEN the skipped resource and its output are gone; the rest stays
    assert subset["Resources"] == {"Kept": {"Type": "AWS::SQS::Queue"}}
    assert sorted(subset["Outputs"]) == ["KeptUrl", "Region"]
