"""The price table (``prices.toml``): one file, each price with its source and check date."""

from __future__ import annotations

import datetime
import tomllib
from pathlib import Path
from typing import Annotated, Final

from pydantic import BaseModel, ConfigDict, Field, ValidationError

PRICES_FILE: Final = Path(__file__).with_name("prices.toml")


class PriceError(Exception):
    """The price table cannot be read or lacks a price the bench needs."""


class Price(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    usd: Annotated[float, Field(ge=0)]
    unit: Annotated[str, Field(min_length=1)]
    source: Annotated[str, Field(pattern=r"^https://")]
    checked: datetime.date


class Prices(BaseModel):
    """Every price the cost model uses; a missing one is a validation error, not a zero."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rekognition_image: Price
    stepfunctions_standard_transition: Price
    stepfunctions_express_request: Price
    stepfunctions_express_gb_second: Price
    lambda_request: Price
    lambda_arm64_gb_second: Price
    sqs_request: Price
    dynamodb_write_unit: Price
    dynamodb_read_unit: Price
    s3_put_request: Price
    s3_get_request: Price
    cloudwatch_logs_ingested_gb: Price

    def every(self) -> list[Price]:
        return [getattr(self, name) for name in type(self).model_fields]


class PriceTable(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    region: str
    prices: Prices


def load_prices(path: Path = PRICES_FILE) -> PriceTable:
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
        return PriceTable.model_validate(raw)
    except (OSError, tomllib.TOMLDecodeError, ValidationError) as exc:
        raise PriceError(f"cannot read the price table {path}: {exc}") from exc
