"""moto's request dispatcher with its host → backend lookup remembered.

For every request, moto's ``DomainDispatcherApplication.get_application`` infers a host from
the SigV4 scope (``sqs.us-east-1.amazonaws.com``) and asks ``get_backend_for_host`` which
backend serves it: that lists moto's package directory (``os.listdir`` plus an ``isdir`` for
each of ~250 entries) and then tries every backend's URL regex, all under one lock shared by
every request thread. A profile of the local cloud classifying images found ~15 % of the
emulator's time there. The answer depends only on the host and on the installed moto, so it
is computed once per host; a host moto does not know (``None``) is remembered too, and moto's
own ``get_backend_for_host`` still answers it the first time (with its warning).
"""

from __future__ import annotations

import threading
from typing import Any

from moto.moto_server.werkzeug_app import DomainDispatcherApplication

from tweetlens.localcloud._patching import PatchSet

_UNSET = object()


class BackendLookupCache:
    """``get_backend_for_host`` answers, by host, for every dispatcher instance."""

    def __init__(self) -> None:
        self._backends: dict[str | None, Any] = {}
        self._lock = threading.Lock()
        self._original = DomainDispatcherApplication.get_backend_for_host
        self.misses = 0

    def lookup(self, dispatcher: DomainDispatcherApplication, host: str | None) -> Any:
        with self._lock:
            backend = self._backends.get(host, _UNSET)
        if backend is _UNSET:
            backend = self._original(dispatcher, host)
            with self._lock:
                self._backends[host] = backend
                self.misses += 1
        return backend


def install_backend_lookup_cache(patches: PatchSet) -> BackendLookupCache:
    """Remember moto's host → backend answers until ``patches`` restore."""
    cache = BackendLookupCache()

    def get_backend_for_host(dispatcher: DomainDispatcherApplication, host: str | None) -> Any:
        return cache.lookup(dispatcher, host)

    patches.replace(DomainDispatcherApplication, "get_backend_for_host", get_backend_for_host)
    return cache
