"""Fixtures of the console's unit tests: a moto stack, the app over it, a test client."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from flask import Flask
from flask.testing import FlaskClient
from moto import mock_aws

from tests.unit.console.console_testkit import (
    REGION,
    Stack,
    client_of,
    console_app,
    resources_in_moto,
)
from tweetlens.console import ConsoleData
from tweetlens.stack import DeployedStack


@pytest.fixture
def stack(aws_credentials: None) -> Iterator[Stack]:
    """GIVEN a deployed stack (in moto, in this process) with empty tables and queues."""
    with mock_aws():
        session = boto3.session.Session(region_name=REGION)
        yield Stack(
            DeployedStack(
                resources=resources_in_moto(session),
                region=REGION,
                description="moto stack",
                _session=session,
            )
        )


@pytest.fixture
def data(stack: Stack) -> ConsoleData:
    return ConsoleData.fixed(stack.deployed)


@pytest.fixture
def app(data: ConsoleData) -> Flask:
    return console_app(data)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A browser at http://127.0.0.1:8800, the address the console printed."""
    return client_of(app)
