"""Dead letters: per queue, with error, reason and age; send back one or all."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from tweetlens import dlq
from tweetlens.console import data
from tweetlens.console.views import console_data

blueprint = Blueprint("dead_letters", __name__)


@blueprint.get("/dead-letters")
def page() -> str:
    console = console_data()
    return render_template("dead_letters.html", queues=data.dead_letters(console, console.stack()))


@blueprint.post("/dead-letters/redrive")
def redrive() -> Response:
    """Send back a letter (queue + message_id), a queue's letters (queue) or all (neither)."""
    console = console_data()
    try:
        outcome = data.redrive(
            console,
            console.stack(),
            queue=request.form.get("queue") or None,
            message_id=request.form.get("message_id") or None,
        )
    except dlq.RedriveError as error:
        flash(f"Not sent back: {error}", "error")
    else:
        for line in outcome.lines() or ["Nothing was sent back: the queue had no such letter."]:
            flash(line, "info")
    # See Other: reloading the page that follows must not post the form again.
    return redirect(url_for("dead_letters.page"), code=303)
