"""The errors StoreResultFunction raises; the state machine matches them by class name."""


class InvalidStoreRequest(Exception):
    """Permanent: the task input is not a StoreRequest (a wiring bug in the state machine)."""


class ClaimLost(Exception):
    """Permanent: another execution owns the claim now, so this one must not write a result."""


class ResultStoreBusy(Exception):
    """Transient: DynamoDB throttled the transaction or it conflicted with another one."""
