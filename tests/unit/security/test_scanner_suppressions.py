"""Every accepted scanner finding is suppressed next to its resource, with its reason.

`make security` runs checkov and cfn-guard; these tests keep the way findings are accepted
honest without the scanners installed: no global skip, no silent skip, no stale skip.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from samcli.yamlhelper import yaml_parse

from guard.render_template import render

REPO = Path(__file__).resolve().parents[3]
TEMPLATE_PATH = REPO / "template.yaml"
CHECKOV_CONFIG_PATH = REPO / ".checkov.yaml"
CHECK_ID = re.compile(r"CKV2?_AWS_[0-9]+")
# A reason has to say why the finding does not apply, not merely that it is accepted.
MIN_REASON_CHARS = 60


@pytest.fixture
def sam() -> dict[str, Any]:
    """GIVEN template.yaml as written."""
    parsed: dict[str, Any] = yaml_parse(TEMPLATE_PATH.read_text(encoding="utf-8"))
    return parsed


def checkov_skips(resource: dict[str, Any]) -> list[dict[str, Any]]:
    skips: list[dict[str, Any]] = resource.get("Metadata", {}).get("checkov", {}).get("skip", [])
    return skips


def test_checkov_config_skips_nothing_globally() -> None:
    # GIVEN the checkov configuration
    config = yaml_parse(CHECKOV_CONFIG_PATH.read_text(encoding="utf-8"))

    # THEN it neither skips checks nor softens failures: those decisions live per resource
    assert sorted(config) == ["compact", "framework", "quiet", "skip-download"]
    assert config["framework"] == ["cloudformation"]


def test_every_checkov_skip_names_a_check_and_gives_a_reason(sam: dict[str, Any]) -> None:
    # WHEN every checkov skip in the template is read
    bad = [
        (name, skip)
        for name, resource in sam["Resources"].items()
        for skip in checkov_skips(resource)
        if not CHECK_ID.fullmatch(str(skip.get("id", "")))
        or len(str(skip.get("comment", "")).strip()) < MIN_REASON_CHARS
    ]

    # THEN each has a checkov check id and a reason of its own
    assert bad == []


def test_no_check_is_skipped_twice_on_one_resource(sam: dict[str, Any]) -> None:
    # WHEN the skipped ids are counted per resource
    repeated = {
        name: sorted(
            check
            for check, count in Counter(skip["id"] for skip in checkov_skips(resource)).items()
            if count > 1
        )
        for name, resource in sam["Resources"].items()
    }

    # THEN none repeats
    assert {name: checks for name, checks in repeated.items() if checks} == {}


def test_function_skips_survive_the_sam_transform(sam: dict[str, Any]) -> None:
    # GIVEN the template as CloudFormation creates it, which checkov scans as well
    cfn = render(TEMPLATE_PATH)

    # WHEN the skips of each function are compared before and after the transform
    functions = [
        name for name, r in sam["Resources"].items() if r["Type"] == "AWS::Serverless::Function"
    ]

    # THEN SAM carried them to the Lambda function, so both scans accept the same findings
    assert {name: checkov_skips(cfn["Resources"][name]) for name in functions} == {
        name: checkov_skips(sam["Resources"][name]) for name in functions
    }
