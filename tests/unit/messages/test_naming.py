"""The naming rules are written once (``functions/tweetlens_naming``): the functions and the
tooling use that copy, and the rules give the names and keys the pipeline relies on."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

import common.messages
import tweetlens_naming as naming
from classifier import lookup
from fetch_image.fetcher import JPEG, PNG
from fetch_image.fetcher import image_key as fetch_image_key

REPO = Path(__file__).resolve().parents[3]
URL = "https://pbs.twimg.com/media/abc.jpg"
# sha256 of URL's UTF-8 bytes, computed outside this code (`sha256sum`).
URL_DIGEST = "c616ca93fac60b0af66709cea6decf011dfbd63dc3a62930632533405b98656e"
# Step Functions execution names: 1 to 80 characters of [0-9A-Za-z_-].
EXECUTION_NAME = re.compile(r"[0-9A-Za-z_-]{1,80}")


def test_the_functions_use_the_shared_rules() -> None:
    # GIVEN the functions' message module WHEN its naming functions are looked up
    # THEN they are the shared package's own, not copies
    assert common.messages.url_digest is naming.url_digest
    assert common.messages.execution_name is naming.execution_name
    # AND the classifier reads a URL's claim by the key the tooling reads it by
    assert (lookup.RESULT_SORT_KEY, lookup.DONE_STATUS) == ("RESULT", "DONE")


# Names whose value only the shared package may spell out. An identity check (`is`) cannot
# tell a copy from an import: CPython interns equal identifier-like string literals.
SHARED_CONSTANTS = frozenset({"RESULT_SORT_KEY", "DONE_STATUS"})


def _modules_binding(root: Path, names: frozenset[str]) -> list[str]:
    bound: list[str] = []
    for path in sorted(root.rglob("*.py")):
        if "tweetlens_naming" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets = (
                node.targets
                if isinstance(node, ast.Assign)
                else [node.target]
                if isinstance(node, ast.AnnAssign)
                else []
            )
            bound += [
                f"{path.relative_to(REPO)}:{node.lineno} {target.id}"
                for target in targets
                if isinstance(target, ast.Name) and target.id in names
            ]
    return bound


def test_no_module_keeps_its_own_copy_of_the_result_key() -> None:
    # GIVEN every module of the functions and the tooling
    # WHEN the shared constants are looked for as assignments
    bound = _modules_binding(REPO / "functions", SHARED_CONSTANTS)
    bound += _modules_binding(REPO / "tweetlens", SHARED_CONSTANTS)
    # THEN none binds them: each imports them from tweetlens_naming
    assert bound == []


def test_the_state_machine_claims_the_shared_result_key() -> None:
    # GIVEN the state machine's definition (ASL cannot import the shared package)
    definition = json.loads((REPO / "statemachine" / "classify_image.asl.json").read_text())
    # WHEN its claim's key is read
    key = definition["States"]["Claim Image"]["Parameters"]["Key"]
    # THEN its sort key is the shared one
    assert key["sk"] == {"S": naming.RESULT_SORT_KEY}


def test_url_digest_is_the_hex_sha256_of_the_url() -> None:
    # GIVEN an image URL WHEN it is digested THEN it is SHA-256 of its UTF-8 bytes, in hex
    assert naming.url_digest(URL) == URL_DIGEST


def test_the_image_key_is_the_fetch_functions_key() -> None:
    # GIVEN an image URL WHEN its S3 key is named for a JPEG and a PNG
    # THEN it is images/<digest>.<extension>, and the fetch function stores under that key
    assert naming.image_key(URL, "jpg") == f"images/{URL_DIGEST}.jpg"
    assert fetch_image_key(URL, JPEG) == naming.image_key(URL, JPEG.extension)
    assert fetch_image_key(URL, PNG) == f"images/{URL_DIGEST}.png"


@pytest.mark.parametrize("sequence", [1, 2, naming.MAX_EXECUTION_SEQUENCE])
def test_execution_names_are_valid_step_functions_names(sequence: int) -> None:
    # GIVEN an attempt at a URL WHEN its Standard execution is named
    name = naming.execution_name(URL, sequence)

    # THEN it is <digest>-<attempt>, within Step Functions' 80 characters
    assert name == f"{URL_DIGEST}-{sequence}"
    assert EXECUTION_NAME.fullmatch(name)


@pytest.mark.parametrize("sequence", [0, naming.MAX_EXECUTION_SEQUENCE + 1])
def test_an_attempt_out_of_range_is_refused_by_name(sequence: int) -> None:
    # GIVEN an attempt number outside 1..MAX WHEN it is named THEN a ValueError says so
    with pytest.raises(ValueError, match=f"execution sequence {sequence} is out of range"):
        naming.execution_name(URL, sequence)
