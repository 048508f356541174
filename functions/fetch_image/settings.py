"""FetchImageFunction's environment, validated once at cold start.

A bad value stops the function at initialisation with a message naming the variable, instead
of turning into a confusing refusal of every image later. Defaults are the ones documented in
docs/architecture.md. An empty ALLOWED_IMAGE_HOSTS is an error rather than a default: it would
refuse every image.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Annotated, Final

from botocore.config import Config
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from common.clients import CallBounds
from common.validation import summarize
from fetch_image.addresses import METADATA_ADDRESSES, HostPort, IPNetwork, parse_allowed_host

# Rekognition reads images from S3 up to 15 MB; a larger download could never be labelled.
DEFAULT_MAX_IMAGE_BYTES: Final = 15 * 1024 * 1024
# A ceiling that catches a typo (seconds taken for milliseconds), not the real bound: the
# function's Timeout is 20 s (template.yaml), of which the download gets 20 - STORE_MARGIN_SECONDS
# = 14 s, so a single wait above that can never finish. The template's own values (3 + 10 s)
# are checked against that budget in tests/unit/template/test_client_timeouts.py.
MAX_TIMEOUT_SECONDS: Final = 30.0

# The chain of timeouts: the Fetch Image state's TimeoutSeconds (20 s) equals this function's
# Timeout, and a task that times out ends the execution (States.Timeout is not retried). The
# download gets the invocation's time less STORE_MARGIN_SECONDS; the PutObject to S3 that
# follows must end within that margin, so its client is bounded: its waits take at most
# 2 x (0.5 + 1.5) + 1 = 5 s (S3_BOUNDS.worst_case_seconds()), and the margin keeps 1 s more for
# moving the bytes (the timeouts bound each wait on the socket, not the upload: at most 15 MB,
# a fraction of a second within a region) and the handler's answer. botocore's defaults (60 s
# timeouts, 5 attempts, backoff up to ~20 s) let one stalled S3 call outlast the task.
S3_CONNECT_TIMEOUT_SECONDS: Final = 0.5
S3_READ_TIMEOUT_SECONDS: Final = 1.5
S3_ATTEMPTS: Final = 2
S3_BOUNDS: Final = CallBounds(
    connect_timeout=S3_CONNECT_TIMEOUT_SECONDS,
    read_timeout=S3_READ_TIMEOUT_SECONDS,
    attempts=S3_ATTEMPTS,
)
S3_CONFIG: Final[Config] = S3_BOUNDS.config()
# Time kept back from the invocation's remaining time for the S3 write and the response, so
# a slow image host ends in ImageHostError (retried by the state machine) rather than in a
# Lambda timeout.
STORE_MARGIN_SECONDS: Final = S3_BOUNDS.worst_case_seconds() + 1.0

_ENV_NAMES: Final = {
    "allowed_image_hosts": "ALLOWED_IMAGE_HOSTS",
    "extra_allowed_networks": "EXTRA_ALLOWED_NETWORKS",
    "max_image_bytes": "MAX_IMAGE_BYTES",
    "connect_timeout_seconds": "CONNECT_TIMEOUT_SECONDS",
    "read_timeout_seconds": "READ_TIMEOUT_SECONDS",
}


class InvalidSettings(Exception):
    """An environment variable has a value the function cannot run with."""


def _split_list(value: object) -> object:
    if isinstance(value, str):
        return tuple(item.strip() for item in value.split(",") if item.strip())
    return value


class FetchSettings(BaseModel):
    """The download's limits and allow-lists."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    allowed_image_hosts: Annotated[frozenset[HostPort], Field(min_length=1)] = frozenset(
        {HostPort("pbs.twimg.com", 443)}
    )
    extra_allowed_networks: tuple[IPNetwork, ...] = ()
    max_image_bytes: Annotated[int, Field(gt=0, le=DEFAULT_MAX_IMAGE_BYTES)] = (
        DEFAULT_MAX_IMAGE_BYTES
    )
    connect_timeout_seconds: Annotated[float, Field(gt=0, le=MAX_TIMEOUT_SECONDS)] = 3.0
    read_timeout_seconds: Annotated[float, Field(gt=0, le=MAX_TIMEOUT_SECONDS)] = 10.0

    @field_validator("allowed_image_hosts", mode="before")
    @classmethod
    def _parse_hosts(cls, value: object) -> object:
        items = _split_list(value)
        if isinstance(items, tuple):
            return frozenset(
                item if isinstance(item, HostPort) else parse_allowed_host(str(item))
                for item in items
            )
        return items

    @field_validator("extra_allowed_networks", mode="before")
    @classmethod
    def _parse_networks(cls, value: object) -> object:
        items = _split_list(value)
        if isinstance(items, tuple):
            # Strict: a CIDR with host bits set is a typo more often than an intention.
            return tuple(ipaddress.ip_network(item, strict=True) for item in items)
        return items

    @field_validator("extra_allowed_networks")
    @classmethod
    def _never_exempt_metadata(cls, networks: tuple[IPNetwork, ...]) -> tuple[IPNetwork, ...]:
        for network in networks:
            if network.prefixlen == 0:
                raise ValueError(f"{network} would switch the public-address rule off")
            for address in METADATA_ADDRESSES:
                if address in network:
                    raise ValueError(f"{network} contains the instance metadata address {address}")
        return networks

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> FetchSettings:
        """Build the settings from environment variables; absent ones take their defaults."""
        values = {field: environ[name] for field, name in _ENV_NAMES.items() if name in environ}
        try:
            return cls.model_validate(values)
        except ValidationError as error:
            problems = summarize(error, root="settings", names=_ENV_NAMES, part_chars=None)
            raise InvalidSettings(f"invalid FetchImageFunction settings: {problems}") from error


def describe(settings: FetchSettings) -> dict[str, object]:
    """The settings as plain values, for the cold-start log line."""
    return {
        "allowed_image_hosts": sorted(str(entry) for entry in settings.allowed_image_hosts),
        "extra_allowed_networks": [str(network) for network in settings.extra_allowed_networks],
        "max_image_bytes": settings.max_image_bytes,
        "connect_timeout_seconds": settings.connect_timeout_seconds,
        "read_timeout_seconds": settings.read_timeout_seconds,
    }
