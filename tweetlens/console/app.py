"""The console's Flask application: pages, checks, headers and readable errors."""

from __future__ import annotations

import datetime

from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError
from flask import Flask, render_template
from werkzeug.exceptions import HTTPException

from tweetlens.console import security
from tweetlens.console.data import ConsoleData, InvalidRequest
from tweetlens.console.views import EXTENSION, dead_letters, executions, overview, results
from tweetlens.stack import StackNotFound


def create_app(data: ConsoleData, *, host: str = "127.0.0.1", port: int | None = None) -> Flask:
    """The console over ``data``; ``port`` may be given later with ``security.bind``."""
    app = Flask(__name__)
    app.extensions[EXTENSION] = data
    security.install(app)
    if port is not None:
        security.bind(app, host, port)
    for blueprint in (overview.blueprint, results.blueprint, executions.blueprint):
        app.register_blueprint(blueprint)
    app.register_blueprint(dead_letters.blueprint)
    app.jinja_env.filters.update(seconds=_seconds, age=_age, when=_when)
    app.context_processor(lambda: {"where": _where(data)})
    _install_error_pages(app)
    return app


def _where(data: ConsoleData) -> str:
    """What the header says the console looks at; never fails (it is on every error page too)."""
    try:
        return data.stack().description
    except (StackNotFound, ClientError, BotoCoreError):
        return "no stack found"


def _install_error_pages(app: Flask) -> None:
    def page(status: int, title: str, message: str) -> tuple[str, int]:
        return render_template("error.html", title=title, message=message), status

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> tuple[str, int]:
        return page(error.code or 500, error.name, error.description or "")

    @app.errorhandler(InvalidRequest)
    def invalid(error: InvalidRequest) -> tuple[str, int]:
        return page(400, "Bad request", str(error))

    @app.errorhandler(StackNotFound)
    def no_stack(error: StackNotFound) -> tuple[str, int]:
        return page(503, "No stack", str(error))

    @app.errorhandler(ClientError)
    def aws_error(error: ClientError) -> tuple[str, int]:
        details = error.response.get("Error", {})
        message = f"{details.get('Code', 'AWS error')}: {details.get('Message', error)}"
        return page(502, "AWS error", message)

    @app.errorhandler(EndpointConnectionError)
    def unreachable(error: EndpointConnectionError) -> tuple[str, int]:
        message = f"{error}: nothing answers there (a local cloud whose `tweetlens up` stopped?)"
        return page(503, "Unreachable", message)

    @app.errorhandler(BotoCoreError)
    def botocore_error(error: BotoCoreError) -> tuple[str, int]:
        return page(503, "AWS error", str(error))


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    if value < 10:
        return f"{value:.2f} s"
    if value < 120:
        return f"{value:.1f} s"
    return _age(value)


def _age(value: float | None) -> str:
    """A coarse age: 42 s, 5 min, 3 h 12 min, 2 d 4 h."""
    if value is None:
        return "-"
    seconds = int(value)
    if seconds < 60:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"


def _when(value: datetime.datetime | None) -> str:
    if value is None:
        return "-"
    return value.astimezone(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
