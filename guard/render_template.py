"""Write template.yaml as CloudFormation will see it, for scanners that do not read SAM.

checkov and cfn-guard judge the IAM roles, queues and event source mappings that `sam deploy`
creates, not only the shorthand in template.yaml, so the template is transformed offline by
the SAM translator first (no AWS call: the managed policy map is the translator's bundled one).

Usage: python guard/render_template.py TEMPLATE OUTPUT
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from samcli.yamlhelper import yaml_parse
from samtranslator.translator.transform import transform

# The translator derives ARN partitions from the region; us-east-1 matches `sam validate`.
REGION = "us-east-1"
# Local artefact paths are what `sam package` replaces with S3 URIs; the translator refuses
# anything else, and the scanners never read the code behind them.
PACKAGED_CODE_URI = "s3://tweetlens-artifacts/functions.zip"
PACKAGED_DEFINITION_URI = "s3://tweetlens-artifacts/statemachine.asl.json"


class BundledPolicies:
    """Managed policy loader for an offline transform: the translator's own map suffices."""

    def load(self) -> dict[str, str]:
        return {}


def packaged(template: dict[str, Any]) -> dict[str, Any]:
    """The template with every local CodeUri / DefinitionUri pointed at S3, as after packaging."""
    function_globals = template.get("Globals", {}).get("Function", {})
    if "CodeUri" in function_globals:
        function_globals["CodeUri"] = PACKAGED_CODE_URI
    for resource in template["Resources"].values():
        properties = resource.get("Properties", {})
        if resource["Type"] == "AWS::Serverless::Function" and "CodeUri" in properties:
            properties["CodeUri"] = PACKAGED_CODE_URI
        if resource["Type"] == "AWS::Serverless::StateMachine" and "DefinitionUri" in properties:
            properties["DefinitionUri"] = PACKAGED_DEFINITION_URI
    return template


def render(source: Path) -> dict[str, Any]:
    os.environ["AWS_DEFAULT_REGION"] = REGION
    template: dict[str, Any] = yaml_parse(source.read_text(encoding="utf-8"))
    transformed: dict[str, Any] = transform(packaged(template), {}, BundledPolicies())
    return transformed


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        sys.stderr.write("usage: render_template.py TEMPLATE OUTPUT\n")
        return 2
    output = Path(argv[2])
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(render(Path(argv[1])), indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
