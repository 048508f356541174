"""Where a deployed tweetlens stack lives: a running local cloud, or a CloudFormation stack in AWS.

The inspection commands (`results`, `trace`, `dlq`) work the same against both: they need
boto3 clients and the physical ids of the stack's resources, nothing more.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

STATE_FILE_ENV = "TWEETLENS_STATE_FILE"
DEFAULT_STATE_FILE = Path(".tweetlens") / "local-cloud.json"
# The emulator is on loopback: a refused connection means it has stopped (a state file left by
# a killed `tweetlens up`), and retrying that with backoff only turns one clear error into a
# half-minute wait.
EMULATOR_CLIENT_CONFIG = Config(connect_timeout=5, retries={"total_max_attempts": 2})
# boto3 sessions are not thread-safe (clients are), and the web console serves requests from
# several threads: clients are made one at a time, then kept.
_CLIENTS_LOCK = threading.Lock()


class StackNotFound(Exception):
    """No running local cloud and no such AWS stack."""


@dataclass(frozen=True)
class DeployedStack:
    """A deployed stack: how to reach its services and what its resources are called."""

    resources: dict[str, str]
    region: str
    endpoint_url: str | None = None
    description: str = ""
    _session: Any = field(default=None, compare=False, repr=False)
    _config: Config | None = field(default=None, compare=False, repr=False)
    _clients: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def client(self, service: str) -> Any:
        with _CLIENTS_LOCK:
            if service not in self._clients:
                session: Any = self._session or boto3.session.Session(region_name=self.region)
                self._clients[service] = session.client(
                    service,
                    region_name=self.region,
                    endpoint_url=self.endpoint_url,
                    config=self._config,
                )
            return self._clients[service]

    def resource(self, logical_id: str) -> str:
        try:
            return self.resources[logical_id]
        except KeyError:
            raise StackNotFound(
                f"the stack has no resource {logical_id!r} (is it a tweetlens stack?)"
            ) from None


def state_file_path() -> Path:
    return Path(os.environ.get(STATE_FILE_ENV, DEFAULT_STATE_FILE))


def write_local_state(
    path: Path,
    *,
    endpoint_url: str,
    region: str,
    resources: dict[str, str],
    template: Path | None = None,
    parameter_overrides: dict[str, str] | None = None,
    functions: list[str] | None = None,
) -> None:
    """Written by `tweetlens up` so that other terminals can inspect the running cloud.

    ``template``, ``parameter_overrides`` and ``functions`` (logical ids) let `tweetlens
    invoke` decide whether the running cloud is the one it was asked for.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    payload: dict[str, Any] = {
        "endpoint_url": endpoint_url,
        "region": region,
        "resources": resources,
    }
    if template is not None:
        payload["template"] = str(template.resolve())
        payload["parameter_overrides"] = dict(parameter_overrides or {})
        payload["functions"] = sorted(functions or [])
    path.write_text(json.dumps(payload, indent=2, sort_keys=True), encoding="utf-8")


def local_stack(path: Path | None = None) -> DeployedStack:
    """The local cloud that `tweetlens up` is running."""
    path = path or state_file_path()
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
        endpoint_url, region = str(payload["endpoint_url"]), str(payload["region"])
        resources = {str(key): str(value) for key, value in payload["resources"].items()}
    except FileNotFoundError:
        raise StackNotFound(
            f"no local cloud is running (no {path}); start one with `tweetlens up`, "
            "or pass --stack-name to inspect a stack in AWS"
        ) from None
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        # A half-written or foreign file must read as one clear line, not a traceback.
        raise StackNotFound(
            f"{path} is not a local cloud state file ({type(error).__name__}: {error}); "
            "delete it and start the local cloud again with `tweetlens up`"
        ) from None
    return emulator_stack(endpoint_url=endpoint_url, region=region, resources=resources)


def emulator_stack(*, endpoint_url: str, region: str, resources: dict[str, str]) -> DeployedStack:
    """A stack in the local cloud's emulator at `endpoint_url`."""
    # Local credentials are never real: the emulator accepts any, AWS would refuse these.
    session = boto3.session.Session(
        aws_access_key_id="testing",
        aws_secret_access_key="testing",  # noqa: S106 - the emulator's fixed fake key
        region_name=region,
    )
    return DeployedStack(
        resources=resources,
        region=region,
        endpoint_url=endpoint_url,
        description=f"local cloud at {endpoint_url}",
        _session=session,
        _config=EMULATOR_CLIENT_CONFIG,
    )


def aws_stack(stack_name: str, region: str | None = None) -> DeployedStack:
    """A stack deployed with `sam deploy`, reached with the caller's AWS credentials."""
    session = boto3.session.Session(region_name=region)
    region_name = session.region_name or "us-east-1"
    cloudformation = session.client("cloudformation", region_name=region_name)
    resources: dict[str, str] = {}
    try:
        paginator = cloudformation.get_paginator("list_stack_resources")
        for page in paginator.paginate(StackName=stack_name):
            for summary in page["StackResourceSummaries"]:
                if "PhysicalResourceId" in summary:
                    resources[summary["LogicalResourceId"]] = summary["PhysicalResourceId"]
    except (ClientError, BotoCoreError) as error:
        raise StackNotFound(
            f"cannot read stack {stack_name!r} in {region_name}: {error}"
        ) from error
    return DeployedStack(
        resources=resources,
        region=region_name,
        description=f"stack {stack_name} in {region_name}",
        _session=session,
    )


def resolve_stack(stack_name: str | None, region: str | None) -> DeployedStack:
    return aws_stack(stack_name, region) if stack_name else local_stack()
