"""`tweetlens.coldstart` on a function built with its Makefile: it cold-starts as Lambda would.

A module of its own: it starts its own local cloud (one per process), not the sample one.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tweetlens.coldstart import measure
from tweetlens.localcloud.cloud import LocalCloud

pytestmark = pytest.mark.integration


BUILT_TEMPLATE = """
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Resources:
  Built:
    Type: AWS::Serverless::Function
    Metadata:
      BuildMethod: makefile
    Properties:
      Runtime: python3.12
      Handler: app.handler
      CodeUri: code/
"""
BUILT_MAKEFILE = """
build-Built:
\tcp app.py helper.py "$(ARTIFACTS_DIR)/"
\t$(PYTHON312) -m compileall -q --invalidation-mode checked-hash "$(ARTIFACTS_DIR)"
"""
# Its init fails unless it runs as Lambda would run the package: from the build (not the
# source folder), read-only, its module loaded from the bytecode the build shipped, with the
# runtime's packages and not the tooling's.
BUILT_APP = """
import importlib.machinery, importlib.util, os, sys

compiled = []
original = importlib.machinery.SourceFileLoader.source_to_code
def spy(self, data, path, *args, **kwargs):
    compiled.append(path)
    return original(self, data, path, *args, **kwargs)
importlib.machinery.SourceFileLoader.source_to_code = spy
import helper
importlib.machinery.SourceFileLoader.source_to_code = original

import boto3

here = os.path.dirname(os.path.abspath(__file__))
problems = []
if os.path.basename(here) != "Built-package":
    problems.append(f"not the built package: {here}")
if os.stat(here).st_mode & 0o222:
    problems.append("the package is not read-only")
if compiled:
    problems.append(f"compiled at cold start: {compiled}")
if importlib.util.find_spec("pydantic") is not None:
    problems.append("the tooling's packages are visible")
if not boto3.__file__.startswith(os.environ["RUNTIME_FOR_TEST"]):
    problems.append(f"boto3 not from the runtime: {boto3.__file__}")
if problems:
    raise RuntimeError("; ".join(problems))

def handler(event, context):
    return None
"""


def test_a_makefile_function_cold_starts_from_its_read_only_package_beside_the_runtime(
    tmp_path: Path,
) -> None:
    # GIVEN an application whose function is built with its Makefile, and a runtime folder
    # holding a boto3 stand-in (the floor imports it and makes one client)
    code = tmp_path / "app" / "code"
    code.mkdir(parents=True)
    (tmp_path / "app" / "template.yaml").write_text(BUILT_TEMPLATE, "utf-8")
    (code / "Makefile").write_text(BUILT_MAKEFILE, "utf-8")
    (code / "app.py").write_text(BUILT_APP, "utf-8")
    (code / "helper.py").write_text("VALUE = 1\n", "utf-8")
    runtime = tmp_path / "runtime"
    runtime.mkdir()
    (runtime / "boto3.py").write_text("def client(name):\n    return name\n", "utf-8")

    with LocalCloud(
        tmp_path / "app" / "template.yaml",
        run_schedules=False,
        run_pollers=False,
        extra_env={"RUNTIME_FOR_TEST": str(runtime)},
    ) as started:
        # WHEN its cold start is measured against the floor
        records = measure(started, runs=1, runtime_packages=runtime)

    # THEN its init ran from the built package as Lambda would run it (it fails otherwise),
    # and the record says so
    assert [(record.function, record.package) for record in records] == [("Built", "build")]
