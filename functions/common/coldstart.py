"""Cold start without the cyclic garbage collector: imported first by every handler module.

Init (importing the handler module) creates a few hundred thousand long-lived objects (boto3's
service models and clients, pydantic's validators, Powertools) and no garbage worth collecting.
With automatic collection on, CPython walks the young ones every 700 allocations and all of
them at each full collection: about 120 ms of CPU per cold start of every function, and about
50 ms more inside ``import boto3`` (median CPU time beside ``tweetlens coldstart``'s floor,
2026-12-02). Importing this module switches automatic collection off; the handler module calls
``init_done()`` as its last statement, which moves everything init made into the permanent
generation (``gc.freeze``: later collections never scan it again, so they stay cheap during
invocations too) and switches collection back on. Nothing is skipped that could be freed: an
object init made and dropped in a cycle is kept until the environment ends, a few kilobytes
at most. If init fails, Lambda discards the execution environment, collector and all.
"""

import gc

gc.disable()


def init_done() -> None:
    """End of init: freeze what it made and collect again as usual from now on."""
    gc.freeze()
    gc.enable()
