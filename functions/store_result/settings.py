"""StoreResultFunction's environment, validated once at cold start."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from common.validation import summarize

TABLE_NAME_PATTERN = r"^[A-Za-z0-9_.-]{3,255}$"


class InvalidSettings(Exception):
    """The function's environment does not satisfy the contract in docs/architecture.md."""


class StoreSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    results_table: Annotated[str, Field(alias="RESULTS_TABLE", pattern=TABLE_NAME_PATTERN)]


def load_settings(environ: Mapping[str, str]) -> StoreSettings:
    """Validate the environment, naming every offending variable in one error."""
    try:
        return StoreSettings.model_validate(dict(environ))
    except ValidationError as error:
        raise InvalidSettings(
            f"invalid StoreResultFunction environment: {summarize(error, root='environment')}"
        ) from error
