"""moto's request dispatcher with its host → backend lookup remembered.

For every request, moto's ``DomainDispatcherApplication.get_application`` infers a host from
the SigV4 scope (``sqs.us-east-1.amazonaws.com``) and asks ``get_backend_for_host`` which
backend serves it: that lists moto's package directory (``os.listdir`` plus an ``isdir`` for
each of ~250 entries) and then tries every backend's URL regex, all under one lock shared by
every request thread. A profile of the local cloud classifying images found ~15 % of the
emulator's time there. The answer depends only on the host and on the installed moto, so it
is computed once per host; a host moto does not know (``None``) is remembered too, and moto's
own ``get_backend_for_host`` still answers it the first time (with its warning).

``install_action_lookup``: which handler method serves a request's action, checked for that
one name rather than by listing the response class's members (``FunctionNames``).

``install_service_models_once``: moto parses and serialises each request with botocore's model
of its service, loaded on first use and then cached (``get_service_model``). The cache has no
lock, so requests to a service arriving together before its first load each load the model:
in a bench of EXPRESS at concurrency 10 the first eight ``BatchGetItem`` calls, from the first
wave of classifiers, each loaded DynamoDB's (42 ms of CPU each) while the whole wave waited for
the GIL. Concurrent first calls now wait for one load; the model is the same object moto caches.
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Iterator
from typing import Any

import moto.core.responses as moto_responses
import moto.core.routing as moto_routing
import moto.core.utils as moto_utils
from moto.core.utils import method_names_from_class
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


class FunctionNames:
    """``name in FunctionNames(cls)`` answers ``name in method_names_from_class(cls)`` (moto's
    ``moto.core.utils``) for one name, without listing every member.

    moto's ``BaseResponse.call_action`` asks, for every request, whether the action is a method
    of the response class: ``inspect.getmembers`` reads and tests all of the class's ~200
    attributes and sorts them (about 2 % of the emulator's GIL time in a bench of EXPRESS at
    concurrency 10). A member of that list is a name found in the ``__dict__`` of the class or
    one of its bases (what ``dir`` lists for a class) whose value, read from the class, is a
    plain function; this checks exactly that for the one name asked, on the class as it is now,
    so a method a patch adds or removes later is seen at once (nothing is remembered).
    """

    def __init__(self, clazz: type) -> None:
        self._clazz = clazz

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        if not any(name in vars(base) for base in self._clazz.__mro__):
            return False
        try:
            value = getattr(self._clazz, name)
        except AttributeError:
            return False
        return inspect.isfunction(value)

    def __iter__(self) -> Iterator[str]:
        # Any other use of the list still gets moto's own.
        return iter(method_names_from_class(self._clazz))


def install_action_lookup(patches: PatchSet) -> None:
    """Make ``call_action`` test its one action name instead of listing the class's members."""
    patches.replace(moto_responses, "method_names_from_class", FunctionNames)


def install_service_models_once(patches: PatchSet) -> None:
    """Concurrent first requests to a service load its model once (module docstring)."""
    load = moto_utils.get_service_model
    guard = threading.Lock()
    per_service: dict[str, threading.Lock] = {}

    def get_service_model(service_name: str) -> Any:
        with guard:
            lock = per_service.setdefault(service_name, threading.Lock())
        # Held only for the call: after the first load moto's cache answers at once.
        with lock:
            return load(service_name)

    # Each module bound moto's function to its own name on import.
    for module in (moto_utils, moto_responses, moto_routing):
        patches.replace(module, "get_service_model", get_service_model)
