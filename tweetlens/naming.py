"""The pipeline's naming rules, as the tooling needs them to find what the functions made.

The functions own these rules (``functions/common/messages.py``, ``fetch_image/fetcher.py``);
the tooling may not import ``functions/`` (the CLI runs outside the functions' path), so this
is the tooling's one copy, pinned to the functions' by ``tests/unit/messages/test_naming.py``.
"""

from __future__ import annotations

import hashlib
from typing import Final

IMAGE_KEY_PREFIX: Final = "images/"


def url_digest(url: str) -> str:
    """Hex SHA-256 of an image URL: the stem of its S3 key and of its execution names."""
    return hashlib.sha256(url.encode("utf-8")).hexdigest()


def image_key(url: str, extension: str = "jpg") -> str:
    """The S3 key FetchImageFunction stores an image URL's bytes under."""
    return f"{IMAGE_KEY_PREFIX}{url_digest(url)}.{extension}"


def execution_name(url: str, sequence: int = 1) -> str:
    """The name of the ``sequence``-th ClassifyImage execution for an image URL."""
    return f"{url_digest(url)}-{sequence}"
