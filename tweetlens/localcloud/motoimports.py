"""moto imported for less: one boto3 session for its EC2 regions, OpenAPI validation deferred.

Every deploy imports moto's EC2 and API Gateway models (moto's CloudFormation parser imports
every service it knows, and its Step Functions interpreter imports EC2 too). Two of their
import-time costs buy nothing here:

- moto's ``RegionsAndZonesBackend`` builds a fresh ``boto3.Session()`` three times only to
  list EC2's regions, and each new session reads botocore's endpoint data again (about
  0.1-0.2 s apiece). While the EC2 models import, a no-argument ``boto3.Session()`` returns
  the session moto keeps for exactly this (``AccountSpecificBackend.get_session``);
  afterwards every module gets the real class back. The regions listed are the same.
- API Gateway's models import ``openapi_spec_validator`` (about 0.3 s: JSON Schema
  validators for every OpenAPI version) to validate a REST API's body, which the local cloud
  never creates. The package is registered without running its ``__init__``: ``validate``
  and any other attribute load it on first use, and its light ``exceptions`` modules import
  as usual, so behaviour is unchanged when it is used.

Imported first by ``tweetlens.localcloud``; importing it again does nothing.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from types import ModuleType
from typing import Any

import boto3
from moto.core.base_backend import AccountSpecificBackend


def _import_ec2_models() -> None:
    if "moto.ec2.models" in sys.modules:
        return
    real = boto3.Session

    def shared_session(*args: Any, **kwargs: Any) -> Any:
        if args or kwargs:
            return real(*args, **kwargs)
        return AccountSpecificBackend.get_session()

    boto3.Session = shared_session  # type: ignore[assignment,misc]
    try:
        import moto.ec2.models  # noqa: F401, PLC0415
    finally:
        boto3.Session = real  # type: ignore[misc]
        # Modules that ran ``from boto3 import Session`` meanwhile hold the stand-in: they get
        # the class back, so nothing after the import shares the session unknowingly.
        for module in list(sys.modules.values()):
            if getattr(module, "Session", None) is shared_session:
                module.__dict__["Session"] = real


def defer_package(name: str, functions: tuple[str, ...] = ()) -> None:
    """Register package ``name`` without running its ``__init__`` until an attribute is read.

    Its submodules import as usual. ``functions`` are names importers bind at import time
    (``from name import f``): they get a function that loads the package and calls the real
    one. Does nothing when the package is imported already or not installed.
    """
    if name in sys.modules:
        return
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None or spec.submodule_search_locations is None:
        return
    module = importlib.util.module_from_spec(spec)
    loader = spec.loader
    state = {"loaded": False}

    def load() -> ModuleType:
        if not state["loaded"]:
            state["loaded"] = True
            for attribute in (*functions, "__getattr__"):
                module.__dict__.pop(attribute, None)
            loader.exec_module(module)
        return module

    def module_getattr(attribute: str) -> Any:
        return getattr(load(), attribute)

    def stand_in(attribute: str) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            return getattr(load(), attribute)(*args, **kwargs)

        call.__name__ = attribute
        return call

    module.__dict__["__getattr__"] = module_getattr
    for attribute in functions:
        module.__dict__[attribute] = stand_in(attribute)
    sys.modules[name] = module


_import_ec2_models()
defer_package("openapi_spec_validator", ("validate", "validate_spec"))
defer_package("openapi_spec_validator.validation")
