"""Results: the gallery, by label and minimum confidence, and its thumbnails."""

from __future__ import annotations

from flask import Blueprint, Response, abort, render_template, request

from tweetlens.console import data
from tweetlens.console.views import console_data, text_arg

blueprint = Blueprint("results", __name__)


def _min_confidence() -> float:
    raw = request.args.get("min_confidence", "").strip()
    if not raw:
        return 0.0
    try:
        value = float(raw)
    except ValueError:
        raise data.InvalidRequest("min_confidence is not a number") from None
    if not 0.0 <= value <= 100.0:
        raise data.InvalidRequest("min_confidence is not between 0 and 100")
    return value


@blueprint.get("/results")
def page() -> str:
    console = console_data()
    gallery = data.gallery(
        console.stack(),
        label=text_arg("label"),
        min_confidence=_min_confidence(),
        cursor=text_arg("cursor", max_chars=4096),
    )
    return render_template("results.html", gallery=gallery)


@blueprint.get("/thumbnails/<path:key>")
def image(key: str) -> Response:
    """A thumbnail of an image in the stack's bucket, re-encoded by the console."""
    console = console_data()
    data.check_image_key(key)
    stack = console.stack()
    made = console.cached_thumbnail(key, lambda: data.thumbnail(stack, key))
    if made is None:
        abort(404, description="No such image (images expire from the bucket after a day).")
    response = Response(made, mimetype="image/jpeg")
    # An image key names its URL's digest: the bytes behind it do not change.
    response.headers["Cache-Control"] = "private, max-age=3600"
    return response
