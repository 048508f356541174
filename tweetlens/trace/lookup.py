"""Find an execution of a deployed stack, read its history and draw its trace."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from tweetlens.stack import DeployedStack, StackNotFound
from tweetlens.trace import express_logs
from tweetlens.trace.drawing import render_html, render_svg
from tweetlens.trace.model import ExecutionTrace
from tweetlens.trace.replay import build_trace
from tweetlens.trace.timeline import render_timeline

_STATE_MACHINE_ARN = ":states:"


@dataclass(frozen=True)
class DrawnTrace:
    execution_arn: str
    execution_name: str
    status: str
    timeline: str
    svg: str
    html: str
    # The replayed path (visits, retries, the failing state) and the execution's input JSON.
    trace: ExecutionTrace
    input: str


def state_machine_arns(stack: DeployedStack) -> list[str]:
    return sorted(
        physical
        for physical in stack.resources.values()
        if _STATE_MACHINE_ARN in physical and ":stateMachine:" in physical
    )


class AmbiguousExecutionName(StackNotFound):
    """An Express name shared by several executions (Express names need not be unique)."""


def resolve_execution_arn(stack: DeployedStack, execution: str) -> str:
    """An execution ARN from an ARN or a bare name, looked up in every state machine.

    A Standard execution is described by name. An Express one is never listed nor described:
    its name is looked up in the machine's execution logs, which hold every execution only at
    logging level ALL; one name may be several executions (Express names need not be unique:
    the classifier names each after the image's URL and its SQS message, and a message that
    comes back after a transient failure runs again under the same name), which is an error
    naming them.
    """
    sfn = stack.client("stepfunctions")
    if execution.startswith("arn:"):
        return execution
    express: list[express_logs.WorkflowLogging] = []
    for machine in state_machine_arns(stack):
        logging = express_logs.workflow_logging(stack, machine)
        if logging.is_express:
            express.append(logging)
            continue
        candidate = machine.replace(":stateMachine:", ":execution:", 1) + ":" + execution
        try:
            sfn.describe_execution(executionArn=candidate)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ExecutionDoesNotExist":
                continue
            raise
        return candidate
    for logging in express:
        found = express_logs.logged_executions(stack, logging, name=execution)
        if len(found) == 1:
            return found[0].execution_arn
        if found:
            shown = "; ".join(f"{e.execution_arn} ({e.status})" for e in found[:5])
            raise AmbiguousExecutionName(
                f"{len(found)} Express executions are named {execution!r} (newest first: "
                f"{shown}{'; …' if len(found) > 5 else ''}): pass one ARN"
            )
    quiet = [logging for logging in express if not logging.logs_every_execution]
    if quiet:
        raise StackNotFound(
            f"no execution named {execution!r} in {stack.description}: its workflow is "
            f"EXPRESS, whose executions Step Functions does not list, and it logs them at "
            f"{quiet[0].level}; only logs at ALL (ExpressLogLevel=ALL) name every execution"
        )
    raise StackNotFound(f"no execution named {execution!r} in {stack.description}")


def execution_history(sfn: Any, execution_arn: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    for page in sfn.get_paginator("get_execution_history").paginate(executionArn=execution_arn):
        events.extend(page["events"])
    return events


def draw(sfn: Any, execution_arn: str) -> DrawnTrace:
    described = sfn.describe_execution(executionArn=execution_arn)
    return _drawn(
        sfn,
        state_machine_arn=described["stateMachineArn"],
        events=execution_history(sfn, execution_arn),
        execution_arn=execution_arn,
        name=str(described["name"]),
        status=str(described["status"]),
        execution_input=str(described.get("input") or "{}"),
    )


def draw_express(stack: DeployedStack, execution_arn: str) -> DrawnTrace:
    """An Express execution, drawn from its execution logs (Step Functions keeps no history)."""
    history = express_logs.read_history(stack, execution_arn)
    return _drawn(
        stack.client("stepfunctions"),
        state_machine_arn=history.state_machine_arn,
        events=history.events,
        execution_arn=execution_arn,
        name=history.name,
        status=history.status,
        execution_input=history.input,
    )


def _drawn(
    sfn: Any,
    *,
    state_machine_arn: str,
    events: list[dict[str, Any]],
    execution_arn: str,
    name: str,
    status: str,
    execution_input: str,
) -> DrawnTrace:
    machine = sfn.describe_state_machine(stateMachineArn=state_machine_arn)
    definition = json.loads(machine["definition"])
    built = build_trace(definition, events)
    return DrawnTrace(
        execution_arn=execution_arn,
        execution_name=name,
        status=status,
        timeline="\n".join(render_timeline(built)),
        svg=render_svg(definition, built),
        html=render_html(definition, built, title=f"Execution {name}"),
        trace=built,
        input=execution_input,
    )


def trace_execution(stack: DeployedStack, execution: str) -> DrawnTrace:
    """An execution by ARN or name, drawn from its history (Standard) or its logs (Express)."""
    arn = resolve_execution_arn(stack, execution)
    if express_logs.is_express(arn):
        return draw_express(stack, arn)
    return draw(stack.client("stepfunctions"), arn)
