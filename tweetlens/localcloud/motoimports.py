"""moto's EC2 models, imported with one boto3 session instead of three.

Every deploy imports them (moto's CloudFormation parser and its Step Functions interpreter
both do), and at import time moto's ``RegionsAndZonesBackend`` builds a fresh
``boto3.Session()`` three times only to list EC2's regions: each new session reads
botocore's endpoint data again, about 0.1-0.2 s apiece, a tenth of a cold
``tweetlens invoke``. While they import, a no-argument ``boto3.Session()`` returns the
session moto keeps for exactly this (``AccountSpecificBackend.get_session``); afterwards
every module is given the real class back. The regions listed are the same.

Imported first by ``tweetlens.localcloud``; importing it again does nothing.
"""

from __future__ import annotations

import sys
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


_import_ec2_models()
