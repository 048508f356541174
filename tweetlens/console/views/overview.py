"""Overview: where every message ended, per route, refreshed while the pipeline runs."""

from __future__ import annotations

from flask import Blueprint, render_template

from tweetlens.console import data
from tweetlens.console.views import console_data

blueprint = Blueprint("overview", __name__)


@blueprint.get("/")
def page() -> str:
    console = console_data()
    return render_template("overview.html", overview=data.overview(console, console.stack()))


@blueprint.get("/overview/table")
def table() -> str:
    """The table alone: what the page's script fetches every few seconds."""
    console = console_data()
    return render_template("_overview_table.html", overview=data.overview(console, console.stack()))
