"""The on-disk cache of parsed and SAM-transformed templates: hits, misses, invalidation."""

from __future__ import annotations

import copy
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import samcli.yamlhelper

from tests.localcloud.conftest import SAMPLE_APP
from tweetlens.localcloud import cache, samtransform
from tweetlens.localcloud.deploy import prepare
from tweetlens.localcloud.packaging import load_template, package

REGION = "us-east-1"
FUNCTION_TEMPLATE = """\
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Parameters:
  Alias:
    Type: String
    Default: live
  Stage:
    Type: String
    Default: dev
Resources:
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      Description: first
      Runtime: python3.12
      Handler: app.handler
      CodeUri: src/
      AutoPublishAlias: !Ref Alias
      Environment:
        Variables:
          STAGE: !Ref Stage
"""


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "cache"
    monkeypatch.setenv(cache.CACHE_DIR_ENV, str(directory))
    return directory


@pytest.fixture
def translations(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, str]]:
    """The parameter values of every run of SAM's translator (a cache hit runs none)."""
    runs: list[dict[str, str]] = []
    real: Callable[..., dict[str, Any]] = samtransform._translate

    def counted(
        template: dict[str, Any], parameters: dict[str, str], region: str, read: set[str]
    ) -> dict[str, Any]:
        runs.append(dict(parameters))
        return real(template, parameters, region, read)

    monkeypatch.setattr(samtransform, "_translate", counted)
    return runs


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A one-function SAM project whose alias is a parameter (which SAM itself resolves)."""
    root = tmp_path / "project"
    (root / "src").mkdir(parents=True)
    (root / "src" / "app.py").write_text("def handler(event, context):\n    return event\n")
    (root / "template.yaml").write_text(FUNCTION_TEMPLATE, encoding="utf-8")
    return root / "template.yaml"


def _transform(template: Path, parameters: dict[str, str]) -> dict[str, Any]:
    packaged = package(load_template(template), template.parent)
    return samtransform.transform(packaged.template, parameters, REGION)


def test_a_second_prepare_is_served_from_the_cache_with_the_same_template(
    cache_dir: Path, translations: list[dict[str, str]]
) -> None:
    # GIVEN an empty cache and the sample application
    # WHEN the template is prepared twice
    first = prepare(SAMPLE_APP / "template.yaml", {}, REGION)
    second = prepare(SAMPLE_APP / "template.yaml", {}, REGION)
    # THEN SAM's translator ran once, and both preparations are the same
    assert len(translations) == 1
    assert json.dumps(second.template, sort_keys=True) == json.dumps(first.template, sort_keys=True)
    assert second.substitutions == first.substitutions
    # AND one parsed template and one transform were stored
    assert len(list((cache_dir / "templates").glob("*.json"))) == 1
    assert len(list((cache_dir / "transforms").glob("*.json"))) == 1


def test_a_changed_template_is_transformed_again(
    cache_dir: Path, translations: list[dict[str, str]], project: Path
) -> None:
    # GIVEN a template transformed once
    _transform(project, {"Alias": "live", "Stage": "dev"})
    # WHEN its text changes and it is transformed again
    project.write_text(FUNCTION_TEMPLATE.replace("first", "second"), encoding="utf-8")
    transformed = _transform(project, {"Alias": "live", "Stage": "dev"})
    # THEN the translator ran again and the result has the change
    assert len(translations) == 2
    assert transformed["Resources"]["Fn"]["Properties"]["Description"] == "second"


def test_changed_code_is_transformed_again(
    cache_dir: Path, translations: list[dict[str, str]], project: Path
) -> None:
    # GIVEN a template transformed once
    before = _transform(project, {"Alias": "live", "Stage": "dev"})
    # WHEN the function's code changes (so does its packaged archive's key)
    (project.parent / "src" / "app.py").write_text("def handler(event, context):\n    return 1\n")
    after = _transform(project, {"Alias": "live", "Stage": "dev"})
    # THEN the translator ran again and the function points at the new archive
    assert len(translations) == 2
    code_before = before["Resources"]["Fn"]["Properties"]["Code"]["S3Key"]
    assert after["Resources"]["Fn"]["Properties"]["Code"]["S3Key"] != code_before


def test_a_parameter_the_translator_reads_is_part_of_the_key(
    cache_dir: Path, translations: list[dict[str, str]], project: Path
) -> None:
    # GIVEN a template transformed with Alias=live (SAM names the alias resource after it)
    _transform(project, {"Alias": "live", "Stage": "dev"})
    # WHEN it is transformed with another alias
    transformed = _transform(project, {"Alias": "blue", "Stage": "dev"})
    # THEN the translator ran again and the result follows the new value
    assert translations == [{"Alias": "live", "Stage": "dev"}, {"Alias": "blue", "Stage": "dev"}]
    assert "FnAliasblue" in transformed["Resources"]
    assert "FnAliaslive" not in transformed["Resources"]


def test_a_parameter_the_translator_leaves_to_cloudformation_is_not(
    cache_dir: Path, translations: list[dict[str, str]], project: Path
) -> None:
    # GIVEN a template transformed with Stage=dev, a value SAM leaves as a Ref
    first = _transform(project, {"Alias": "live", "Stage": "dev"})
    # WHEN it is transformed with Stage=prod
    second = _transform(project, {"Alias": "live", "Stage": "prod"})
    # THEN the cached transform served it, and it still refers to the parameter
    assert len(translations) == 1
    assert second == first
    variables = second["Resources"]["Fn"]["Properties"]["Environment"]["Variables"]
    assert variables == {"STAGE": {"Ref": "Stage"}}


def test_a_second_set_of_values_does_not_evict_the_first(
    cache_dir: Path, translations: list[dict[str, str]], project: Path
) -> None:
    # GIVEN transforms with Alias=live then Alias=blue
    _transform(project, {"Alias": "live", "Stage": "dev"})
    _transform(project, {"Alias": "blue", "Stage": "dev"})
    # WHEN Alias=live is asked for again
    transformed = _transform(project, {"Alias": "live", "Stage": "dev"})
    # THEN it is a hit
    assert len(translations) == 2
    assert "FnAliaslive" in transformed["Resources"]


def test_a_parsed_template_is_not_parsed_again(
    cache_dir: Path, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a template loaded once
    first = load_template(project)

    # WHEN it is loaded again with SAM CLI's YAML loader broken
    def broken(text: str) -> Any:
        raise AssertionError("parsed again")

    monkeypatch.setattr(samcli.yamlhelper, "yaml_parse", broken)
    second = load_template(project)
    # THEN the cached parse answers, equal to the first
    assert second == first
    assert second["Resources"]["Fn"]["Properties"]["AutoPublishAlias"] == {"Ref": "Alias"}


def test_a_corrupt_entry_is_a_miss_and_is_replaced(
    cache_dir: Path, translations: list[dict[str, str]], project: Path
) -> None:
    # GIVEN a cached transform whose file was truncated
    expected = _transform(project, {"Alias": "live", "Stage": "dev"})
    (entry,) = (cache_dir / "transforms").glob("*.json")
    entry.write_text('[{"read": {}, "templ', encoding="utf-8")
    # WHEN the template is transformed again
    transformed = _transform(project, {"Alias": "live", "Stage": "dev"})
    # THEN the translator ran again, and the entry is whole again
    assert len(translations) == 2
    assert transformed == expected
    assert json.loads(entry.read_text(encoding="utf-8"))[0]["template"] == expected


def test_an_empty_cache_dir_setting_switches_the_cache_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, translations: list[dict[str, str]]
) -> None:
    # GIVEN TWEETLENS_CACHE_DIR set to the empty string, and HOME pointing at a fresh directory
    monkeypatch.setenv(cache.CACHE_DIR_ENV, "")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    # WHEN a template is prepared twice
    prepare(SAMPLE_APP / "template.yaml", {}, REGION)
    prepare(SAMPLE_APP / "template.yaml", {}, REGION)
    # THEN the translator ran both times and nothing was written anywhere
    assert len(translations) == 2
    assert cache.cache_dir() is None
    assert not (tmp_path / "home").exists()


def test_a_cache_that_cannot_be_written_is_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, translations: list[dict[str, str]]
) -> None:
    # GIVEN a cache directory path that is a file
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("", encoding="utf-8")
    monkeypatch.setenv(cache.CACHE_DIR_ENV, str(blocker))
    # WHEN a template is prepared
    prepared = prepare(SAMPLE_APP / "template.yaml", {}, REGION)
    # THEN it is prepared as usual, by the translator
    assert len(translations) == 1
    assert "RouterStateMachine" in prepared.template["Resources"]


def test_values_json_cannot_carry_are_not_cached(cache_dir: Path) -> None:
    # GIVEN a value with integer keys (JSON would turn them into strings)
    # WHEN it is written
    cache.write("templates", "key", {"Mappings": {1: "one"}})
    # THEN nothing is stored, so a later read is a miss, not a different value
    assert cache.read("templates", "key") is None


def test_the_default_cache_lives_under_xdg_cache_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN no TWEETLENS_CACHE_DIR, and XDG_CACHE_HOME set
    monkeypatch.delenv(cache.CACHE_DIR_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    # WHEN the cache directory is asked for
    # THEN it is tweetlens's folder there
    assert cache.cache_dir() == tmp_path / "xdg" / "tweetlens"


def test_copying_the_project_elsewhere_reuses_its_transform(
    cache_dir: Path, translations: list[dict[str, str]], project: Path, tmp_path: Path
) -> None:
    # GIVEN a project transformed once
    _transform(project, {"Alias": "live", "Stage": "dev"})
    # WHEN the same files are transformed from another directory
    copy = tmp_path / "copy"
    shutil.copytree(project.parent, copy)
    _transform(copy / "template.yaml", {"Alias": "live", "Stage": "dev"})
    # THEN the key (the template's content and its code's digest) matched: no second run
    assert len(translations) == 1


def test_every_way_of_copying_the_values_counts_as_reading_them() -> None:
    # GIVEN parameter values that record what is read
    read: set[str] = set()
    values = samtransform._ReadRecorder({"Alias": "live", "Stage": "dev"}, read)
    # WHEN they are only tested for membership
    assert "Alias" in values
    # THEN nothing counts as read
    assert read == set()
    # AND each copy CPython could make without calling back counts as reading every value
    copies: list[Callable[[dict[str, Any]], object]] = [
        dict,
        lambda v: {**v},
        lambda v: dict[str, Any]().update(v),
        lambda v: list(v.items()),
    ]
    for copy_values in copies:
        read.clear()
        copy_values(values)
        assert read == {"Alias", "Stage"}
    # AND a deep copy (the translator makes one) reports its reads to the same set
    read.clear()
    copied = copy.deepcopy(values)
    assert copied["Stage"] == "dev"
    assert read == {"Stage"}
