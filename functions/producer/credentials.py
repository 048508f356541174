"""The X bearer token, read from Secrets Manager or an SSM SecureString and cached."""

from __future__ import annotations

import logging
from typing import Literal

from aws_lambda_powertools.utilities.parameters import SecretsProvider, SSMProvider
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError

# Warm containers reuse the token; a rotated token is picked up within this many seconds.
TOKEN_MAX_AGE_SECONDS = 300

# botocore's DEBUG lines print whole response bodies, GetSecretValue's and decrypted
# GetParameter's included: keep them off whatever level the root logger is given.
logging.getLogger("botocore.parsers").setLevel(logging.INFO)


class BearerTokenError(Exception):
    """The bearer token could not be read (the message never contains the token)."""


class BearerTokenReader:
    def __init__(
        self, secrets: SecretsProvider | None = None, ssm: SSMProvider | None = None
    ) -> None:
        # Only the configured store's provider is built: each one is a boto3 client, and the
        # other store's would be made at every cold start and never called.
        self._secrets = secrets
        self._ssm = ssm

    def read(self, store: Literal["secretsmanager", "ssm"], name: str) -> str:
        provider = self._secrets if store == "secretsmanager" else self._ssm
        if provider is None:
            raise BearerTokenError(f"cannot read the X bearer token {name}: no {store} client")
        try:
            if isinstance(provider, SecretsProvider):
                value = provider.get(name, max_age=TOKEN_MAX_AGE_SECONDS)
            else:
                value = provider.get(name, max_age=TOKEN_MAX_AGE_SECONDS, decrypt=True)
        except GetParameterError as error:
            raise BearerTokenError(
                f"cannot read the X bearer token {name} from {store}: {error}"
            ) from error
        if isinstance(value, bytes):
            value = value.decode("utf-8")
        if not isinstance(value, str) or not value.strip():
            raise BearerTokenError(f"the X bearer token {name} in {store} is empty or not text")
        return value.strip()
