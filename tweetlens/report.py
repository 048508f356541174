"""The demo's HTML report: the summary, every result with its thumbnail, every dead letter and
a drawn trace of every execution. One self-contained file: no scripts, no downloads."""

from __future__ import annotations

import base64
from collections import Counter
from html import escape
from pathlib import Path

from tweetlens.demo import DemoResult
from tweetlens.results import ImageResult

_STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#1d2330}
h1{font-size:1.6em}h2{margin-top:2em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ddd;padding:4px 8px;
text-align:left;vertical-align:top}th{background:#f3f5f8}
.cards{display:flex;flex-wrap:wrap;gap:12px}.card{border:1px solid #ddd;border-radius:6px;
padding:8px;width:250px}.card img{width:100%;height:170px;object-fit:cover;border-radius:4px}
.bad{color:#b3261e}.ok{color:#1b6e3a}details{margin:.6em 0}pre{background:#f6f8fa;padding:8px;
overflow:auto}small{color:#667}
"""


def _thumbnail(data: bytes) -> str:
    kind = "png" if data.startswith(b"\x89PNG") else "jpeg"
    return f"data:image/{kind};base64,{base64.b64encode(data).decode('ascii')}"


def _reasons(dead_letters: Counter[str]) -> str:
    return ", ".join(f"{error}: {n}" for error, n in sorted(dead_letters.items())) or "-"


def _labels(labels: list[tuple[str, float]]) -> str:
    return ", ".join(f"{name} {confidence:.0f}%" for name, confidence in labels) or "no labels"


def _headline(result: ImageResult) -> str:
    if result.status == "FAILED":
        return f"failed: {result.error or 'unknown error'}"
    return _labels(result.labels)


def render(result: DemoResult) -> str:
    tally = result.accounting
    rows = "".join(
        f"<tr><td>{escape(route)}</td><td>{t.published}</td><td>{t.classified}</td>"
        f"<td>{t.duplicates}</td><td>{escape(_reasons(t.dead_letters))}</td>"
        f"<td class={'ok' if t.lost == 0 else 'bad'}>{t.lost}</td></tr>"
        for route, t in sorted(tally.routes.items())
    )
    cards = "".join(
        "<div class=card>"
        + (
            f"<img alt='' src='{_thumbnail(result.images[r.url])}'>"
            if r.url in result.images
            else ""
        )
        + f"<div><b>{escape(_headline(r))}</b></div>"
        + f"<small>{escape(r.route)} · {escape(r.status)} · post {escape(r.post_id)}</small>"
        + f"<div><small>{escape(r.text[:140])}</small></div>"
        + f"<div><small>{escape(r.url)}</small></div></div>"
        # Classified images first, then the failures with their error.
        for r in sorted(result.results, key=lambda r: (r.status != "DONE", r.url))
    )
    letters = "".join(
        f"<tr><td>{escape(d.queue)}</td><td>{escape(d.route)}</td><td>{escape(d.error)}</td>"
        f"<td>{escape(d.reason[:300])}</td></tr>"
        for d in result.dead_letters
    )
    traces = "".join(
        f"<details><summary>{escape(t.status)} — {escape(t.execution_name)}</summary>"
        f"{t.svg}<pre>{escape(t.timeline)}</pre></details>"
        for t in result.traces
    )
    labels = ", ".join(f"{escape(name)} x {count}" for name, count in result.labels.most_common())
    return (
        "<!doctype html><html lang=en><meta charset=utf-8><title>tweetlens demo</title>"
        f"<style>{_STYLE}</style><h1>tweetlens demo</h1>"
        f"<p>{tally.published} messages published in {result.producer_runs} producer run(s); "
        f"finished in {result.seconds:.1f} s. Labels found: {labels or 'none'}.</p>"
        "<h2>Where every message ended</h2><table><tr><th>route</th><th>published</th>"
        "<th>classified</th><th>duplicates</th><th>dead letters by reason</th><th>lost</th></tr>"
        f"{rows}</table>"
        f"<h2>Results ({len(result.results)})</h2><div class=cards>{cards}</div>"
        f"<h2>Dead letters ({len(result.dead_letters)})</h2><table><tr><th>queue</th>"
        f"<th>route</th><th>error</th><th>reason</th></tr>{letters}</table>"
        f"<h2>Executions ({len(result.traces)})</h2>{traces}</html>"
    )


def write(result: DemoResult, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(result), encoding="utf-8")
    return path
