"""Recorded X API responses served to tweepy through a ``requests`` transport adapter.

The replay source is the real tweepy client with this adapter mounted on its session, so the
producer's request building, pagination, header reading and checkpointing all run as they do
against X. The recording format (``tweetlens_xapi.recording``) is shared with the tooling,
which writes it.
"""

from __future__ import annotations

import json
from http import HTTPStatus
from pathlib import Path
from typing import TYPE_CHECKING, Any, override
from urllib.parse import parse_qs, urlsplit

from botocore.exceptions import BotoCoreError, ClientError
from requests import PreparedRequest, Response
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict

from tweetlens_xapi.recording import ReplayRecording

if TYPE_CHECKING:
    from collections.abc import Mapping

    from mypy_boto3_s3 import S3Client

SEARCH_PATH = "/2/tweets/search/recent"
# tweepy 4.17 calls api.twitter.com; X also serves the same API on api.x.com.
X_API_HOSTS = frozenset({"api.twitter.com", "api.x.com"})


class RecordingError(Exception):
    """The recording cannot be read or is not in the recording format."""


def load_recording(uri: str, s3: S3Client | None = None) -> ReplayRecording:
    """Read a recording from a local path or ``s3://bucket/key``."""
    try:
        if uri.startswith("s3://"):
            bucket, _, key = uri.removeprefix("s3://").partition("/")
            if not bucket or not key:
                raise RecordingError(f"replay uri {uri} is not s3://bucket/key")
            if s3 is None:
                raise RecordingError("an S3 client is needed to read an s3:// recording")
            raw = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        else:
            raw = Path(uri).read_bytes()
        # The standard library keeps a lone surrogate escape, which pydantic's parser refuses.
        return ReplayRecording.model_validate(json.loads(raw))
    except (OSError, ClientError, BotoCoreError) as error:
        raise RecordingError(f"cannot read recording {uri}: {error}") from error
    except ValueError as error:  # not JSON, or a ValidationError
        raise RecordingError(f"recording {uri} is malformed: {error}") from error


class ReplayAdapter(BaseAdapter):
    """Answers recent-search requests from a recording, as X would; 404 for anything else."""

    def __init__(self, recording: ReplayRecording) -> None:
        super().__init__()
        self._pages = recording.pages
        self.requests: list[PreparedRequest] = []

    @override
    def send(
        self,
        request: PreparedRequest,
        stream: bool = False,
        timeout: Any = None,
        verify: Any = True,
        cert: Any = None,
        proxies: Any = None,
    ) -> Response:
        self.requests.append(request)
        parts = urlsplit(request.url or "")
        if (
            request.method != "GET"
            or parts.hostname not in X_API_HOSTS
            or parts.path != SEARCH_PATH
        ):
            return _response(request, 404, {}, _problem("Not Found", "Not replayed."))
        params = {name: values[-1] for name, values in parse_qs(parts.query).items()}
        if not params.get("query"):
            return _response(request, 400, {}, _invalid_parameter("query", "", "is required"))

        # The search endpoint takes the token as ``next_token``; ``pagination_token`` is its alias.
        token_name = "next_token" if "next_token" in params else "pagination_token"
        token = params.get(token_name)
        index = 0 if token is None else self._page_after(token)
        if index is None:
            return _response(
                request, 400, {}, _invalid_parameter(token_name, token or "", "is not valid")
            )
        page = self._pages[index]
        if page.raw_body is not None:
            return _response(request, page.status, page.headers, page.raw_body)
        body = page.json_body
        if page.status == 200 and params.get("since_id"):
            body = _newer_than(body, params["since_id"])
        return _response(request, page.status, page.headers, body)

    @override
    def close(self) -> None:
        """Nothing to release: no connection is ever opened."""

    def _page_after(self, token: str) -> int | None:
        for index, page in enumerate(self._pages[:-1]):
            if page.json_body.get("meta", {}).get("next_token") == token:
                return index + 1
        return None


def _newer_than(body: dict[str, Any], since_id: str) -> dict[str, Any]:
    """The page as X returns it for ``since_id``: only newer posts, meta recomputed."""
    floor = int(since_id)
    posts = body.get("data", [])
    kept = [post for post in posts if _newer(post, floor)]
    if len(kept) == len(posts):
        return body
    result = {name: value for name, value in body.items() if name not in {"data", "includes"}}
    meta = {
        name: value
        for name, value in body.get("meta", {}).items()
        if name not in {"newest_id", "oldest_id", "next_token"}
    }
    # X stops paginating at ``since_id``: a page that reaches it is the last one.
    meta["result_count"] = len(kept)
    if kept:
        result["data"] = kept
        ids = [int(post["id"]) for post in kept]
        meta["newest_id"] = str(max(ids))
        meta["oldest_id"] = str(min(ids))
        referenced = {
            key for post in kept for key in post.get("attachments", {}).get("media_keys", [])
        }
        includes = dict(body.get("includes", {}))
        if "media" in includes:
            includes["media"] = [m for m in includes["media"] if m.get("media_key") in referenced]
            if not includes["media"]:
                del includes["media"]
        if includes:
            result["includes"] = includes
    result["meta"] = meta
    return result


def _newer(post: Any, floor: int) -> bool:
    # A recorded poison post may have no numeric id: it was read before since_id moved past it.
    post_id = post.get("id") if isinstance(post, dict) else None
    return isinstance(post_id, str) and post_id.isdigit() and int(post_id) > floor


def _problem(title: str, detail: str) -> dict[str, Any]:
    return {"title": title, "detail": detail, "type": "about:blank"}


def _invalid_parameter(name: str, value: str, reason: str) -> dict[str, Any]:
    return {
        "errors": [
            {
                "parameters": {name: [value]},
                "message": f"The `{name}` query parameter value [{value}] {reason}",
            }
        ],
        "title": "Invalid Request",
        "detail": "One or more parameters to your request was invalid.",
        "type": "https://api.twitter.com/2/problems/invalid-request",
    }


def _response(
    request: PreparedRequest,
    status: int,
    headers: Mapping[str, str],
    body: dict[str, Any] | str,
) -> Response:
    response = Response()
    response.status_code = status
    try:
        response.reason = HTTPStatus(status).phrase
    except ValueError:
        response.reason = ""
    response.headers = CaseInsensitiveDict(
        {**headers, "content-type": "application/json; charset=utf-8"}
    )
    response._content = (body if isinstance(body, str) else json.dumps(body)).encode("utf-8")
    # No socket behind this response: mark the content read so ``close()`` has nothing to drain.
    response._content_consumed = True
    response.encoding = "utf-8"
    response.url = request.url or ""
    response.request = request
    return response
