"""Bucket policies evaluated like AWS does, for the conditions the local cloud can know.

moto 5.2.5 evaluates a bucket policy with no request context and treats a statement whose
Condition does not match as an explicit deny. A standard "deny unless TLS" statement
(``Deny`` + ``Bool: aws:SecureTransport: false``) then denies every request, over HTTPS or
not. Here a statement applies only when its conditions hold for the request context, as in
AWS. Every local client stands for an AWS SDK client, which always uses TLS, so the context
is ``aws:SecureTransport = true``; statements with condition keys outside that context are
kept as they are (moto's own behaviour) rather than guessed at.
"""

from __future__ import annotations

import json
from typing import Any

from moto.iam.access_control import IAMPolicy, PermissionResult
from moto.s3.models import FakeBucket

from tweetlens.localcloud._patching import PatchSet

REQUEST_CONTEXT = {"aws:securetransport": "true"}
_EQUALS = {"Bool", "StringEquals", "StringEqualsIgnoreCase"}
_NOT_EQUALS = {"StringNotEquals", "StringNotEqualsIgnoreCase"}


def _applies(statement: dict[str, Any]) -> bool | None:
    """Whether the statement's conditions hold; None when they use what is not known here."""
    for operator, tests in (statement.get("Condition") or {}).items():
        if operator not in _EQUALS | _NOT_EQUALS or not isinstance(tests, dict):
            return None
        for key, expected in tests.items():
            actual = REQUEST_CONTEXT.get(key.lower())
            if actual is None:
                return None
            values = [
                str(v).lower() for v in (expected if isinstance(expected, list) else [expected])
            ]
            matches = actual in values
            if matches != (operator in _EQUALS):
                return False
    return True


def effective_policy(policy: str) -> dict[str, Any]:
    """The policy as it applies to the request context: statements whose conditions fail are
    dropped, conditions that hold are removed, the rest is left to moto."""
    document: dict[str, Any] = json.loads(policy)
    statements = document.get("Statement", [])
    if isinstance(statements, dict):
        statements = [statements]
    kept = []
    for statement in statements:
        applies = _applies(statement)
        if applies is False:
            continue
        kept.append(
            {k: v for k, v in statement.items() if k != "Condition"} if applies else statement
        )
    return {**document, "Statement": kept}


def install(patches: PatchSet) -> None:
    def get_permission(bucket: FakeBucket, action: str, resource: str) -> Any:
        if bucket.policy is None:
            return PermissionResult.NEUTRAL
        policy = effective_policy(bucket.policy.decode())
        if not policy["Statement"]:
            return PermissionResult.NEUTRAL
        return IAMPolicy(json.dumps(policy)).is_action_permitted(action, resource)

    patches.replace(FakeBucket, "get_permission", get_permission)
