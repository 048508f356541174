"""FetchImageFunction's environment, validated at cold start."""

from __future__ import annotations

import ipaddress

import pytest

from fetch_image.addresses import HostPort
from fetch_image.settings import FetchSettings, InvalidSettings


def test_defaults_are_the_documented_ones() -> None:
    # GIVEN no FetchImage variable at all
    # WHEN the settings are loaded
    settings = FetchSettings.from_environ({})
    # THEN they are the values docs/architecture.md gives
    assert settings == FetchSettings(
        allowed_image_hosts=frozenset({HostPort("pbs.twimg.com", 443)}),
        extra_allowed_networks=(),
        max_image_bytes=15_728_640,
        connect_timeout_seconds=3.0,
        read_timeout_seconds=10.0,
    )


def test_template_values_are_parsed_and_normalised() -> None:
    # GIVEN the variables as the local cloud sets them
    environ = {
        "ALLOWED_IMAGE_HOSTS": " PBS.twimg.com. , images.localhost:8443,",
        "EXTRA_ALLOWED_NETWORKS": "127.0.0.1/32, ::1/128",
        "MAX_IMAGE_BYTES": "1048576",
        "CONNECT_TIMEOUT_SECONDS": "0.5",
        "READ_TIMEOUT_SECONDS": "2",
    }
    # WHEN the settings are loaded
    settings = FetchSettings.from_environ(environ)
    # THEN hosts are normalised, ports explicit and networks parsed
    assert settings.allowed_image_hosts == frozenset(
        {HostPort("pbs.twimg.com", 443), HostPort("images.localhost", 8443)}
    )
    assert settings.extra_allowed_networks == (
        ipaddress.ip_network("127.0.0.1/32"),
        ipaddress.ip_network("::1/128"),
    )
    assert (
        settings.max_image_bytes,
        settings.connect_timeout_seconds,
        settings.read_timeout_seconds,
    ) == (1_048_576, 0.5, 2.0)


@pytest.mark.parametrize(
    ("environ", "reason"),
    [
        (
            {"ALLOWED_IMAGE_HOSTS": " , "},
            "ALLOWED_IMAGE_HOSTS: Frozenset should have at least 1 item after validation, not 0",
        ),
        (
            {"ALLOWED_IMAGE_HOSTS": "127.0.0.1"},
            "ALLOWED_IMAGE_HOSTS: Value error, allowed host '127.0.0.1': host '127.0.0.1' is an "
            "IP address literal (127.0.0.1); only host names are allowed",
        ),
        (
            {"ALLOWED_IMAGE_HOSTS": "pbs.twimg.com:https"},
            "ALLOWED_IMAGE_HOSTS: Value error, allowed host 'pbs.twimg.com:https' has an "
            "invalid port",
        ),
        (
            {"ALLOWED_IMAGE_HOSTS": "pbs.twimg.com:70000"},
            "ALLOWED_IMAGE_HOSTS: Value error, allowed host 'pbs.twimg.com:70000' has an "
            "invalid port",
        ),
        (
            {"EXTRA_ALLOWED_NETWORKS": "10.0.0.1/8"},
            "EXTRA_ALLOWED_NETWORKS: Value error, 10.0.0.1/8 has host bits set",
        ),
        (
            {"EXTRA_ALLOWED_NETWORKS": "0.0.0.0/0"},
            "EXTRA_ALLOWED_NETWORKS: Value error, 0.0.0.0/0 would switch the public-address "
            "rule off",
        ),
        (
            {"EXTRA_ALLOWED_NETWORKS": "169.254.0.0/16"},
            "EXTRA_ALLOWED_NETWORKS: Value error, 169.254.0.0/16 contains the instance "
            "metadata address 169.254.169.254",
        ),
        (
            {"EXTRA_ALLOWED_NETWORKS": "fd00:ec2::/32"},
            "EXTRA_ALLOWED_NETWORKS: Value error, fd00:ec2::/32 contains the instance "
            "metadata address fd00:ec2::254",
        ),
        (
            {"MAX_IMAGE_BYTES": "15MB"},
            "MAX_IMAGE_BYTES: Input should be a valid integer, unable to parse string as an "
            "integer",
        ),
        (
            {"MAX_IMAGE_BYTES": "15728641"},
            "MAX_IMAGE_BYTES: Input should be less than or equal to 15728640",
        ),
        ({"MAX_IMAGE_BYTES": "0"}, "MAX_IMAGE_BYTES: Input should be greater than 0"),
        (
            {"CONNECT_TIMEOUT_SECONDS": "0"},
            "CONNECT_TIMEOUT_SECONDS: Input should be greater than 0",
        ),
        (
            {"READ_TIMEOUT_SECONDS": "60"},
            "READ_TIMEOUT_SECONDS: Input should be less than or equal to 30",
        ),
    ],
)
def test_bad_value_stops_the_cold_start(environ: dict[str, str], reason: str) -> None:
    # GIVEN one variable with a value the function cannot run with
    # WHEN the settings are loaded
    # THEN loading fails, naming the variable
    with pytest.raises(InvalidSettings) as raised:
        FetchSettings.from_environ(environ)
    assert str(raised.value) == f"invalid FetchImageFunction settings: {reason}"
