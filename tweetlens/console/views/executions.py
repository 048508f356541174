"""Executions: the list with status and duration, and one execution's drawn trace."""

from __future__ import annotations

from flask import Blueprint, Response, abort, render_template

from tweetlens.console import data, security
from tweetlens.console.views import console_data, text_arg
from tweetlens.stack import StackNotFound

blueprint = Blueprint("executions", __name__)


def _listing() -> data.ExecutionList:
    return data.executions(
        console_data().stack(),
        status=text_arg("status", max_chars=20),
        token=text_arg("token", max_chars=4096),
    )


@blueprint.get("/executions")
def page() -> str:
    return render_template("executions.html", listing=_listing(), statuses=data.EXECUTION_STATUSES)


@blueprint.get("/executions/table")
def table() -> str:
    """The table alone: what the page's script fetches every few seconds."""
    return render_template("_executions_table.html", listing=_listing())


def _execution(name: str) -> data.ExecutionView:
    console = console_data()
    try:
        return data.execution(console, console.stack(), name)
    except StackNotFound as error:
        abort(404, description=str(error))


@blueprint.get("/executions/<name>")
def detail(name: str) -> str:
    return render_template("execution.html", view=_execution(name))


@blueprint.get("/executions/<name>/trace.svg")
def drawing(name: str) -> Response:
    """The drawing `tweetlens trace` makes, as an image: the page shows it with <img>."""
    svg = security.check_svg(_execution(name).drawn.svg)
    response = Response(svg, mimetype="image/svg+xml")
    response.headers["Content-Security-Policy"] = security.SVG_CONTENT_SECURITY_POLICY
    return response
