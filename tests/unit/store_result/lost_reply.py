"""A DynamoDB client whose first TransactWriteItems commits and then loses its answer.

What StoreResultFunction sees when the transaction commits but the reply does not arrive
within its 1 s read timeout: botocore raises ReadTimeoutError, the write is in the table.
The table is moto's, the client a real boto3 client; only the reply is dropped.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ReadTimeoutError


class FirstTransactionLosesItsReply:
    """Stands in for ``client``: every call goes through, the first transaction's answer is lost."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.transactions = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def transact_write_items(self, **kwargs: Any) -> Any:
        self.transactions += 1
        answer = self._client.transact_write_items(**kwargs)
        if self.transactions == 1:
            raise ReadTimeoutError(endpoint_url=self._client.meta.endpoint_url)
        return answer
