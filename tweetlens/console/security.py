"""The console's request checks and response headers.

The console holds the user's AWS credentials (or the local cloud's) and can send dead letters
back, so a web page open in the same browser must not be able to use it:

* the Host header must name the console itself (127.0.0.1, localhost or [::1] with its port),
  so a DNS-rebinding page whose name now points at 127.0.0.1 gets nothing;
* every state-changing request is a POST that carries the session's CSRF token and comes from
  the console's own origin (Origin, or Referer when a browser sends no Origin). Cookies do not
  separate ports and SameSite treats every port of 127.0.0.1 as one site: the origin check is
  what keeps another local web app out;
* responses forbid framing, sniffing and inline scripts (CSP without 'unsafe-inline').
"""

from __future__ import annotations

import hmac
import secrets
from typing import Final
from xml.etree import ElementTree

from flask import Flask, Response, abort, current_app, request, session

CSRF_FIELD: Final = "csrf_token"
_CSRF_SESSION_KEY: Final = "csrf"
_SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})
LOOPBACK_NAMES: Final = ("127.0.0.1", "localhost", "[::1]")

CONTENT_SECURITY_POLICY: Final = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    ]
)
# The drawn trace is an SVG with its own <style>; served alone it may style itself, nothing else.
SVG_CONTENT_SECURITY_POLICY: Final = (
    "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; sandbox"
)
SECURITY_HEADERS: Final = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}


def allowed_hosts(bound_host: str, port: int) -> frozenset[str]:
    """The Host headers that name the console listening on ``bound_host``:``port``."""
    names = {*LOOPBACK_NAMES, f"[{bound_host}]" if ":" in bound_host else bound_host}
    hosts = {f"{name}:{port}" for name in names}
    if port == 80:
        hosts |= names
    return frozenset(hosts)


def bind(app: Flask, bound_host: str, port: int) -> None:
    """Tell the app where it listens: the Host check and the session cookie depend on it."""
    app.config["CONSOLE_ALLOWED_HOSTS"] = allowed_hosts(bound_host, port)
    # Cookies ignore ports: a console per port keeps its own session.
    app.config["SESSION_COOKIE_NAME"] = f"tweetlens_console_{port}"


def csrf_token() -> str:
    """This session's CSRF token (made on first use); forms send it back in CSRF_FIELD."""
    token = session.get(_CSRF_SESSION_KEY)
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        session[_CSRF_SESSION_KEY] = token
    return token


def _check_host() -> Response | None:
    allowed: frozenset[str] = current_app.config.get("CONSOLE_ALLOWED_HOSTS", frozenset())
    if request.host.lower() in allowed:
        return None
    # Plain text, not the error page: that page names the stack the console looks at.
    return Response(
        "Unexpected Host header: open the console at the address it printed.\n",
        status=400,
        mimetype="text/plain",
    )


def _check_same_origin() -> None:
    own = f"http://{request.host.lower()}"
    origin = request.headers.get("Origin")
    if origin is not None:
        same = origin.lower() == own
    else:
        referer = request.headers.get("Referer", "")
        same = referer.lower() == own or referer.lower().startswith(own + "/")
    if not same:
        abort(403, description="Refused: the request did not come from a page of this console.")


def _check_csrf() -> None:
    expected = session.get(_CSRF_SESSION_KEY)
    sent = request.form.get(CSRF_FIELD, "")
    if not isinstance(expected, str) or not hmac.compare_digest(sent, expected):
        abort(403, description="Refused: the form is stale or forged (reload the page).")


def check_request() -> Response | None:
    refused = _check_host()
    if refused is not None:
        return refused
    if request.method not in _SAFE_METHODS:
        _check_same_origin()
        _check_csrf()
    return None


def add_headers(response: Response) -> Response:
    response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    # Pages show live data and carry the CSRF token: never from a cache.
    response.headers.setdefault("Cache-Control", "no-store")
    return response


def install(app: Flask) -> None:
    app.config.update(
        SECRET_KEY=secrets.token_bytes(32),
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        # Forms carry a token and two names: nothing bigger is ever posted.
        MAX_CONTENT_LENGTH=16 * 1024,
        MAX_FORM_PARTS=20,
    )
    app.before_request(check_request)
    app.after_request(add_headers)
    app.jinja_env.globals["csrf_token"] = csrf_token
    app.jinja_env.globals["csrf_field"] = CSRF_FIELD


# -- the drawn trace -----------------------------------------------------------------

_SVG_NS: Final = "{http://www.w3.org/2000/svg}"
_SVG_ELEMENTS: Final = frozenset({"svg", "style", "defs", "marker", "path", "g", "rect", "text"})
_SVG_ATTRIBUTES: Final = frozenset(
    {
        "width",
        "height",
        "viewBox",
        "role",
        "id",
        "class",
        "refX",
        "refY",
        "markerWidth",
        "markerHeight",
        "markerUnits",
        "orient",
        "d",
        "fill",
        "x",
        "y",
        "rx",
        "marker-end",
        "data-state",
        "data-source",
        "data-target",
    }
)


class UnsafeSvg(ValueError):
    """The drawing holds something a drawing of ours never has."""


def check_svg(svg: str) -> str:
    """``svg`` if it is made only of what ``tweetlens.trace.render_svg`` draws.

    The drawing escapes every name and error it shows; this is the second line: an element,
    attribute or style outside the renderer's own vocabulary (a script, an event handler, a
    link, a stylesheet import) refuses the whole drawing instead of serving it.
    """
    if "<!" in svg or "<?" in svg:
        raise UnsafeSvg("declarations or processing instructions")
    try:
        # Our renderer's own output, without a DTD (refused above): no entity to expand.
        root = ElementTree.fromstring(svg)  # noqa: S314
    except ElementTree.ParseError as error:
        raise UnsafeSvg(f"not well-formed: {error}") from error
    for element in root.iter():
        name = element.tag.removeprefix(_SVG_NS)
        if name not in _SVG_ELEMENTS or name == element.tag:
            raise UnsafeSvg(f"element {element.tag!r}")
        for attribute, value in element.attrib.items():
            if attribute not in _SVG_ATTRIBUTES:
                raise UnsafeSvg(f"attribute {attribute!r}")
            if attribute == "marker-end" and value != "url(#arrow)":
                raise UnsafeSvg(f"marker-end {value!r}")
        if name == "style" and any(
            word in (element.text or "").lower() for word in ("@import", "url(", "expression(")
        ):
            raise UnsafeSvg("a style that loads or runs something")
    return svg
