"""The part of a transformed template one function needs, for a quick one-off invocation.

``tweetlens invoke`` runs one function once. Deploying the whole stack for it creates alarms,
dashboards, schedules and other functions' mappings that the call never touches, and that is
most of a cold invocation's time. ``function_closure`` keeps what the function can reach:

- every resource the function refers to (environment, role, policies, ``DependsOn``), and
  every resource those refer to in turn, including a state machine's
  ``DefinitionSubstitutions`` (so a workflow the function starts has its task functions);
- the *attachments* of a kept resource (bucket, queue and topic policies, IAM policies
  attached to a kept role, subscriptions of a kept topic): they change how a kept resource
  behaves, so they come along with whatever they refer to;
- the event source mappings whose function and source are both kept (a poller is not run for
  an invocation, but the mapping is part of the function's configuration and its checks);
- a resource skipped so far whose explicit name (``QueueName``, ``TableName`` …) appears in a
  kept resource's text: a function may name a resource literally instead of by reference.

What is left out is what nothing kept can refer to, so every reference the function holds
resolves exactly as in a full deploy (same stack name, same name patterns). Alarms, rules,
other functions and outputs that name skipped resources are not created.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

# Resources that configure the resources they name rather than being used by reference.
ATTACHMENT_TYPES = frozenset(
    {
        "AWS::IAM::Policy",
        "AWS::IAM::ManagedPolicy",
        "AWS::S3::BucketPolicy",
        "AWS::SNS::Subscription",
        "AWS::SNS::TopicPolicy",
        "AWS::SQS::QueuePolicy",
    }
)
# Resources kept only when everything they refer to is kept.
DEPENDENT_TYPES = frozenset({"AWS::Lambda::EventSourceMapping"})
# Properties that give a resource an explicit physical name.
NAME_PROPERTIES = (
    "BucketName",
    "FunctionName",
    "LogGroupName",
    "Name",
    "QueueName",
    "RoleName",
    "StateMachineName",
    "TableName",
    "TopicName",
)
_SUB_VARIABLE = re.compile(r"\$\{([^}!][^}]*)\}")


def references(value: Any) -> Iterator[str]:
    """Logical ids (or parameter names) a template fragment refers to, in any spelling."""
    if isinstance(value, dict):
        ref = value.get("Ref")
        if isinstance(ref, str):
            yield ref
        attribute = value.get("Fn::GetAtt")
        if isinstance(attribute, list) and attribute and isinstance(attribute[0], str):
            yield attribute[0]
        elif isinstance(attribute, str):
            yield attribute.split(".")[0]
        sub = value.get("Fn::Sub")
        text = sub if isinstance(sub, str) else sub[0] if isinstance(sub, list) and sub else None
        if isinstance(text, str):
            local = set(sub[1]) if isinstance(sub, list) and len(sub) > 1 else set()
            for name in _SUB_VARIABLE.findall(text):
                head = name.split(".")[0]
                if head not in local:
                    yield head
        for key, item in value.items():
            if key != "Fn::Sub" or not isinstance(item, str):
                yield from references(item)
    elif isinstance(value, list):
        for item in value:
            yield from references(item)


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _literal(value: Any, parameters: Mapping[str, str]) -> str | None:
    """A name as a string when it is one, or made only of parameters; else None."""
    if isinstance(value, str):
        return value
    if not isinstance(value, dict) or len(value) != 1:
        return None
    if isinstance(value.get("Ref"), str):
        return parameters.get(value["Ref"])
    sub = value.get("Fn::Sub")
    if isinstance(sub, str):
        names = _SUB_VARIABLE.findall(sub)
        if all(name in parameters for name in names):
            return _SUB_VARIABLE.sub(lambda match: parameters[match.group(1)], sub)
    return None


def function_closure(
    resources: Mapping[str, Any],
    root: str,
    *,
    parameters: Mapping[str, str],
    extra_references: Mapping[str, Any] | None = None,
) -> set[str]:
    """The logical ids of ``resources`` that ``root`` needs (see the module's docstring).

    ``extra_references`` holds, per logical id, fragments kept outside the resource's body
    (a state machine's ``DefinitionSubstitutions`` once folded) that count as its own.
    ``parameters`` (pseudo parameters included) resolve explicit names made of them.
    """
    graph = _Graph(resources, parameters, extra_references or {})
    kept: set[str] = set()
    pending = [root]
    while pending:
        while pending:
            logical_id = pending.pop()
            if logical_id not in kept:
                kept.add(logical_id)
                pending.extend(graph.referred[logical_id] - kept)
        pending = graph.joining(kept)
    return kept


class _Graph:
    """Who refers to whom in a template, and which resources carry an explicit name."""

    def __init__(
        self, resources: Mapping[str, Any], parameters: Mapping[str, str], extra: Mapping[str, Any]
    ) -> None:
        self.resources = resources
        self.extra = extra
        self.referred = {
            logical_id: {
                name
                for name in references([self._body(logical_id)])
                if name in resources and name != logical_id
            }
            | _depends_on(resource, resources)
            for logical_id, resource in resources.items()
        }
        self.named = {
            logical_id: name
            for logical_id, resource in resources.items()
            for key in NAME_PROPERTIES
            if (name := _literal(resource.get("Properties", {}).get(key), parameters))
        }

    def _body(self, logical_id: str) -> list[Any]:
        return [self.resources[logical_id].get("Properties", {}), self.extra.get(logical_id)]

    def joining(self, kept: set[str]) -> list[str]:
        """Skipped resources that must join the kept ones: attachments, mappings, names."""
        kept_text = [text for logical_id in kept for text in _strings(self._body(logical_id))]
        joining: list[str] = []
        for logical_id, resource in self.resources.items():
            if logical_id in kept:
                continue
            resource_type = resource.get("Type", "")
            referred = self.referred[logical_id]
            attached = resource_type in ATTACHMENT_TYPES and bool(referred & kept)
            dependent = resource_type in DEPENDENT_TYPES and bool(referred) and referred <= kept
            name = self.named.get(logical_id)
            named = name is not None and any(name in text for text in kept_text)
            if attached or dependent or named:
                joining.append(logical_id)
        return joining


def _depends_on(resource: Mapping[str, Any], resources: Mapping[str, Any]) -> set[str]:
    depends = resource.get("DependsOn", [])
    names = [depends] if isinstance(depends, str) else depends
    return {name for name in names if isinstance(name, str) and name in resources}


def subset_template(template: Mapping[str, Any], kept: set[str]) -> dict[str, Any]:
    """``template`` with only the ``kept`` resources, and the outputs that refer only to them."""
    subset = dict(template)
    subset["Resources"] = {
        logical_id: resource
        for logical_id, resource in template["Resources"].items()
        if logical_id in kept
    }
    resources = template["Resources"]
    outputs = {
        name: output
        for name, output in template.get("Outputs", {}).items()
        if all(ref in kept for ref in references(output) if ref in resources)
    }
    if "Outputs" in template:
        subset["Outputs"] = outputs
    return subset
