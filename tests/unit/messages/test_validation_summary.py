"""``common.validation.summarize``: the one "loc: msg; …" wording every function uses."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ConfigDict, ValidationError

from common.validation import summarize


class Item(BaseModel):
    model_config = ConfigDict(extra="forbid")

    size: int
    tags: dict[str, int] = {}


def _error(value: object) -> ValidationError:
    with pytest.raises(ValidationError) as raised:
        Item.model_validate(value)
    return raised.value


def test_every_problem_is_named_by_its_path_without_the_value() -> None:
    # GIVEN an item with two bad fields
    error = _error({"size": "big", "tags": {"a": "secret-value"}})
    # WHEN it is summarized
    summary = summarize(error)
    # THEN each problem is "path: message", joined by "; ", and no input value appears
    assert summary == (
        "size: Input should be a valid integer, unable to parse string as an integer; "
        "tags.a: Input should be a valid integer, unable to parse string as an integer"
    )


def test_a_problem_with_the_whole_input_is_named_by_the_root() -> None:
    # GIVEN input that is not an object at all
    error = _error([1])
    # WHEN it is summarized with a root name
    # THEN the root stands for the empty location
    assert (
        summarize(error, root="event")
        == "event: Input should be a valid dictionary or instance of Item"
    )


def test_long_keys_are_cut_unless_the_caller_keeps_them() -> None:
    # GIVEN an unknown key of 100 characters
    key = "k" * 100
    error = _error({"size": 1, key: 1})
    # WHEN it is summarized by default, and with whole keys
    # THEN the default cuts the key at 64 characters, part_chars=None keeps it
    assert summarize(error) == f"{'k' * 64}: Extra inputs are not permitted"
    assert summarize(error, part_chars=None) == f"{key}: Extra inputs are not permitted"


def test_names_rename_the_top_level_field() -> None:
    # GIVEN a setting read from an environment variable of another name
    error = _error({"size": "x"})
    # WHEN it is summarized with that name
    # THEN the variable's name is shown
    assert summarize(error, names={"size": "ITEM_SIZE"}) == (
        "ITEM_SIZE: Input should be a valid integer, unable to parse string as an integer"
    )
