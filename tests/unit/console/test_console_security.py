"""The console's defences: loopback binds, Host, Origin and CSRF checks, headers, escaping."""

from __future__ import annotations

import re
from http.cookies import SimpleCookie
from pathlib import Path

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient

from tests.unit.console.console_testkit import (
    HOSTILE,
    ORIGIN,
    PORT,
    Stack,
    client_of,
    csrf_token,
)
from tweetlens.cli import cli
from tweetlens.console import ConsoleServer, NotLoopback, security
from tweetlens.console.server import loopback_host

TEMPLATES = Path(security.__file__).parent / "templates"


@pytest.mark.parametrize(
    ("host", "bound"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("localhost", "127.0.0.1"),
        ("::1", "::1"),
        ("[::1]", "::1"),
        ("127.0.0.2", "127.0.0.2"),
    ],
)
def test_loopback_addresses_are_accepted(host: str, bound: str) -> None:
    # GIVEN a loopback address in any of its spellings / WHEN checked / THEN it is the address
    assert loopback_host(host) == bound


@pytest.mark.parametrize(
    "host", ["0.0.0.0", "::", "192.168.1.20", "10.0.0.1", "example.com", "", "127.0.0.1.nip.io"]
)
def test_any_other_bind_address_is_refused(app: Flask, host: str) -> None:
    # GIVEN an address reachable from elsewhere (or a name that could resolve anywhere)
    # WHEN a server is made for it / THEN it is refused before any socket is opened
    with pytest.raises(NotLoopback):
        ConsoleServer(app, host=host, port=0)


def test_the_command_refuses_a_public_bind_with_a_clear_error() -> None:
    # GIVEN `tweetlens console --host 0.0.0.0`
    # WHEN it runs / THEN it exits 2 naming --host and listens nowhere
    result = CliRunner(mix_stderr=False).invoke(
        cli, ["console", "--host", "0.0.0.0"], prog_name="tweetlens"
    )
    assert result.exit_code == 2
    assert "--host" in result.stderr
    assert "not a loopback address" in result.stderr


@pytest.mark.parametrize("host", [f"127.0.0.1:{PORT}", f"localhost:{PORT}", f"[::1]:{PORT}"])
def test_the_console_answers_at_its_own_names(app: Flask, host: str) -> None:
    # GIVEN the console on port 8800 / WHEN asked under one of its names / THEN it answers
    assert client_of(app, host).get("/dead-letters").status_code == 200


@pytest.mark.parametrize(
    "host",
    ["attacker.example:8800", "attacker.example", "127.0.0.1:9999", "localhost", "127.0.0.1"],
)
def test_other_host_headers_are_refused_against_dns_rebinding(app: Flask, host: str) -> None:
    # GIVEN a page whose name was rebound to 127.0.0.1 (its Host header keeps its own name)
    # WHEN it asks the console for a page or a thumbnail
    for path in ("/", "/dead-letters", "/static/console.js"):
        response = client_of(app, host).get(path)
        # THEN it is refused, with nothing of the stack in the answer
        assert response.status_code == 400, path
        assert "Unexpected Host header" in response.text
        assert "moto stack" not in response.text


def _post_redrive(client: FlaskClient, **headers: str) -> int:
    token = csrf_token(client)
    return client.post(
        "/dead-letters/redrive", data={"csrf_token": token}, headers=headers
    ).status_code


def test_a_redrive_from_the_console_itself_is_accepted(client: FlaskClient) -> None:
    # GIVEN the page's token and the console's origin / WHEN posted / THEN See Other
    assert _post_redrive(client, Origin=ORIGIN) == 303


def test_referer_stands_in_when_a_browser_sends_no_origin(client: FlaskClient) -> None:
    assert _post_redrive(client, Referer=f"{ORIGIN}/dead-letters") == 303


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "http://attacker.example"},
        {"Origin": "http://127.0.0.1:9999"},  # another local app: same site, other origin
        {"Origin": "null"},
        {"Referer": "http://attacker.example/dead-letters"},
        {"Referer": f"{ORIGIN}.attacker.example/"},
        {},
    ],
    ids=["other-site", "other-port", "null", "other-referer", "lookalike-referer", "none"],
)
def test_a_cross_origin_redrive_is_refused(client: FlaskClient, headers: dict[str, str]) -> None:
    # GIVEN a valid token (the attacker cannot read it, but even so)
    # WHEN the form is posted from another origin, or with no origin at all
    # THEN it is refused
    assert _post_redrive(client, **headers) == 403


@pytest.mark.parametrize("token", [None, "", "forged"], ids=["absent", "empty", "forged"])
def test_a_redrive_without_the_session_token_is_refused(
    client: FlaskClient, stack: Stack, token: str | None
) -> None:
    # GIVEN a dead letter, and a request from the console's origin without the right token
    stack.send("CatsDeadLetterQueue", "{}")
    csrf_token(client)
    form = {} if token is None else {"csrf_token": token}

    # WHEN posted
    response = client.post("/dead-letters/redrive", data=form, headers={"Origin": ORIGIN})

    # THEN it is refused, and nothing moved
    assert response.status_code == 403
    assert "stale or forged" in response.text
    assert stack.depth("CatsDeadLetterQueue") == 1


def test_a_token_of_another_session_is_refused(app: Flask) -> None:
    # GIVEN two browsers; the attacker's own session gives it a valid token of its own
    attacker, victim = client_of(app), client_of(app)
    stolen = csrf_token(attacker)
    csrf_token(victim)

    # WHEN the victim's browser posts the attacker's token / THEN it is refused
    response = victim.post(
        "/dead-letters/redrive", data={"csrf_token": stolen}, headers={"Origin": ORIGIN}
    )
    assert response.status_code == 403


def test_redrive_is_never_a_get(client: FlaskClient) -> None:
    assert client.get("/dead-letters/redrive").status_code == 405


def test_the_session_cookie_is_http_only_strict_and_per_port(client: FlaskClient) -> None:
    # GIVEN a page with a form / WHEN loaded
    response = client.get("/dead-letters")

    # THEN the session cookie is out of scripts' reach, same-site only, named for the port
    cookie = SimpleCookie(response.headers["Set-Cookie"])
    (morsel,) = cookie.values()
    assert morsel.key == f"tweetlens_console_{PORT}"
    assert morsel["httponly"]
    assert morsel["samesite"] == "Strict"


@pytest.mark.parametrize(
    "path", ["/", "/results", "/executions", "/dead-letters", "/static/console.js", "/nowhere"]
)
def test_every_response_carries_the_security_headers(client: FlaskClient, path: str) -> None:
    # GIVEN any page, a static file or an error / WHEN served
    response = client.get(path)

    # THEN scripts only from the console itself, no inline ones, no framing, no sniffing
    policy = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy
    assert "unsafe-inline" not in policy
    assert "frame-ancestors 'none'" in policy
    assert "default-src 'none'" in policy
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "same-origin"


def test_pages_hold_no_inline_script_or_style_attribute(client: FlaskClient) -> None:
    # GIVEN the CSP forbids inline scripts and styles: the pages must not need them
    for path in ("/", "/results", "/executions", "/dead-letters"):
        page = client.get(path).text
        # THEN every <script> has a src, and no element has an event handler or style attribute
        assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", page) == [], path
        assert not re.search(r"\son[a-z]+\s*=", page), path
        assert not re.search(r"\sstyle\s*=", page), path


def test_templates_never_mark_data_safe() -> None:
    # GIVEN every template / THEN none switches escaping off
    for template in TEMPLATES.glob("*.html"):
        text = template.read_text(encoding="utf-8")
        assert "|safe" not in text.replace(" ", ""), template.name
        assert "autoescape false" not in text, template.name
        assert "Markup" not in text, template.name


def test_autoescape_is_on_for_the_console_templates(app: Flask) -> None:
    env = app.jinja_env
    assert callable(env.autoescape)
    assert all(env.autoescape(t.name) for t in TEMPLATES.glob("*.html"))


def test_an_error_page_escapes_what_it_repeats(client: FlaskClient) -> None:
    # GIVEN a hostile label longer than allowed (its text is repeated nowhere raw)
    response = client.get("/results", query_string={"label": HOSTILE * 10})

    # THEN a bad request page, escaped
    assert response.status_code == 400
    assert "<script>" not in response.text
