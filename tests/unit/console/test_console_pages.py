"""The console's pages over a moto stack: what each shows, escaped, paginated, and redrives."""

from __future__ import annotations

import html
import json
import re
import time
from typing import Any
from xml.etree import ElementTree

import pytest
from flask.testing import FlaskClient
from markupsafe import escape

from tests.local.conftest import load_data, load_history
from tests.unit.console.console_testkit import (
    HOSTILE,
    ORIGIN,
    FakeCloud,
    Stack,
    client_of,
    console_app,
    csrf_token,
    image_bytes,
    photo_message,
    workflow_letter,
)
from tweetlens import demo, trace
from tweetlens.console import CloudActivity, ConsoleData, data, security
from tweetlens.dlq import (
    DELETED_COPY,
    SKIPPED_NO_MESSAGE,
    SKIPPED_REJECTION,
    SKIPPED_SUPERSEDED,
)
from tweetlens.stack import StackNotFound
from tweetlens_naming import SOURCE_MESSAGE_ID_ATTRIBUTE

URL = "https://pbs.twimg.com/media/"


def cards(page: str) -> list[str]:
    """The image URLs of the gallery's cards, in page order."""
    return [html.unescape(url) for url in re.findall(r'<article [^>]*data-url="([^"]*)"', page)]


# -- results -------------------------------------------------------------------------


def test_the_gallery_shows_each_result_with_labels_text_tags_route_and_post_link(
    client: FlaskClient, stack: Stack
) -> None:
    # GIVEN a classified image and a failed one
    key = stack.put_result(
        f"{URL}a.jpg", labels=[("Cat", 97.5), ("Pet", 90.0)], image=image_bytes(), text="nap"
    )
    stack.put_result(f"{URL}gone.jpg", status="FAILED", error="ImageNotFound", route="dogs")

    # WHEN the results page is opened
    page = client.get("/results").text

    # THEN the classified one comes first with its thumbnail (served by the console), labels,
    # text, hashtags, route and a link to the post; the failed one shows its error
    assert cards(page) == [f"{URL}a.jpg", f"{URL}gone.jpg"]
    assert f'src="/thumbnails/{key}"' in page
    assert "Cat 98%" in page
    assert "Pet 90%" in page
    assert "nap" in page
    assert "#cat" in page
    assert "route cats" in page
    assert 'href="https://x.com/i/web/status/1879000016202698239"' in page
    assert "failed: ImageNotFound" in page
    # AND no image is ever fetched by the browser from the post's host
    assert "pbs.twimg.com" not in " ".join(re.findall(r'src="([^"]*)"', page))


def test_post_text_hashtags_and_labels_are_escaped(client: FlaskClient, stack: Stack) -> None:
    # GIVEN a post whose text, hashtags and labels are attacker-controlled markup
    stack.put_result(
        f'{URL}x.jpg?"><script>alert(2)</script>',
        labels=[(HOSTILE, 80.0)],
        text=HOSTILE,
        hashtags=(HOSTILE,),
        post_id='1"><script>alert(3)</script>',
    )

    # WHEN shown, by label too
    pages = [
        client.get("/results").text,
        client.get("/results", query_string={"label": HOSTILE}).text,
    ]

    # THEN not one tag of it reaches the page as markup, and the text is still shown
    for page in pages:
        assert "<script>alert" not in page
        assert "<img src=x" not in page
        assert "&lt;script&gt;alert(&#39;pwned&#39;)&lt;/script&gt;" in page
    # AND a post id that is not a number gets no link
    assert "x.com/i/web/status" not in pages[0]


def test_the_label_filter_narrows_by_label_and_confidence(
    client: FlaskClient, stack: Stack
) -> None:
    # GIVEN three images: two cats of different confidence and a person
    stack.put_result(f"{URL}c1.jpg", labels=[("Cat", 95.0), ("Pet", 95.0)])
    stack.put_result(f"{URL}c2.jpg", labels=[("Cat", 72.0)])
    stack.put_result(f"{URL}p.jpg", labels=[("Person", 99.0)])

    # WHEN filtered by label, then by a minimum confidence
    by_label = client.get("/results", query_string={"label": "Cat"}).text
    confident = client.get("/results", query_string={"label": "Cat", "min_confidence": "80"}).text

    # THEN the ByLabel index answers, most confident first
    assert cards(by_label) == [f"{URL}c1.jpg", f"{URL}c2.jpg"]
    assert "Cat 95.0%" in by_label
    assert cards(confident) == [f"{URL}c1.jpg"]
    assert 'value="Cat"' in confident
    assert 'value="80"' in confident


@pytest.mark.parametrize(
    "query",
    [
        {"min_confidence": "lots"},
        {"min_confidence": "101"},
        {"min_confidence": "-1"},
        {"label": "x" * 101},
        {"cursor": "not-a-cursor"},
    ],
    ids=["not-a-number", "above-100", "negative", "label-too-long", "bad-cursor"],
)
def test_bad_filters_are_a_bad_request(client: FlaskClient, query: dict[str, str]) -> None:
    response = client.get("/results", query_string={"label": "Cat", **query})
    assert response.status_code == 400


def _follow_pages(client: FlaskClient, query: dict[str, str]) -> list[list[str]]:
    pages: list[list[str]] = []
    page = client.get("/results", query_string=query).text
    for _ in range(20):
        pages.append(cards(page))
        found = re.search(r'id="next-page" href="([^"]+)"', page)
        if not found:
            return pages
        page = client.get(html.unescape(found.group(1))).text
    raise AssertionError("more pages than images")


def test_label_pages_follow_last_evaluated_key_without_repeats(
    client: FlaskClient, stack: Stack
) -> None:
    # GIVEN 30 cats of distinct confidence: more than one page of 24
    urls = [f"{URL}cat-{n:02}.jpg" for n in range(30)]
    for number, url in enumerate(urls):
        stack.put_result(url, labels=[("Cat", 50.0 + number)])

    # WHEN the pages are followed through their "next" links
    pages = _follow_pages(client, {"label": "Cat"})

    # THEN page one holds 24, the rest follows, most confident first, nothing twice or missed
    assert [len(page) for page in pages][:2] == [24, 6]
    seen = [url for page in pages for url in page]
    assert seen == list(reversed(urls))


def test_result_pages_without_a_label_cover_every_result_once(stack: Stack) -> None:
    # GIVEN 13 results with label items between them in the table
    urls = {f"{URL}r-{n:02}.jpg" for n in range(13)}
    for url in urls:
        stack.put_result(url, labels=[("Cat", 90.0), ("Pet", 80.0), ("Animal", 70.0)])

    # WHEN read 4 at a time, page after page
    seen: list[str] = []
    cursor = None
    for _ in range(20):
        page = data.gallery(stack.deployed, label=None, cursor=cursor, limit=4)
        seen.extend(card.url for card in page.cards)
        cursor = page.next_cursor
        if cursor is None:
            break

    # THEN every result comes exactly once
    assert sorted(seen) == sorted(urls)


@pytest.mark.parametrize(
    "key",
    [
        {"pk": {"S": "x"}, "sk": {"S": "RESULT"}, "owner": {"S": "x"}},
        {"pk": {"B": "eA=="}},
        {"pk": {"S": 1}},
        {"pk": {"S": "x", "N": "1"}},
        [],
        {},
    ],
    ids=["unknown-attribute", "binary", "not-a-string", "two-types", "a-list", "empty"],
)
def test_a_tampered_cursor_is_refused_before_dynamodb(key: Any) -> None:
    token = data.encode_cursor(key) if isinstance(key, dict) else "W10"
    with pytest.raises(data.InvalidRequest):
        data.decode_cursor(token)


def test_a_cursor_round_trips() -> None:
    key = {
        "pk": {"S": "https://x/a.jpg"},
        "sk": {"S": "LABEL#Cat"},
        "label": {"S": "Cat"},
        "confidence": {"N": "97.5"},
    }
    assert data.decode_cursor(data.encode_cursor(key)) == key


def test_a_thumbnail_is_the_image_re_encoded_by_the_console(
    client: FlaskClient, stack: Stack
) -> None:
    # GIVEN a large PNG stored by the fetch function
    original = image_bytes(".png", size=(1600, 1000))
    key = stack.put_result(f"{URL}big.png", labels=[("Cat", 90.0)], image=original)

    # WHEN its thumbnail is asked for
    response = client.get(f"/thumbnails/{key}")

    # THEN a fresh, smaller JPEG comes back, never the stored bytes
    assert response.status_code == 200
    assert response.mimetype == "image/jpeg"
    assert response.data.startswith(b"\xff\xd8")
    assert response.data != original
    assert len(response.data) < len(original)
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_an_image_that_is_not_one_is_not_served(client: FlaskClient, stack: Stack) -> None:
    # GIVEN an object whose bytes are HTML (what a hostile host might have served)
    stack.client("s3").put_object(Bucket="images", Key="images/evil.png", Body=HOSTILE.encode())

    # WHEN asked for, or a key that does not exist, or one that climbs
    # THEN no bytes of it are served
    assert client.get("/thumbnails/images/evil.png").status_code == 404
    assert client.get("/thumbnails/images/missing.png").status_code == 404
    assert client.get("/thumbnails/images/..%2F..%2Fsecret").status_code in {400, 404}
    with pytest.raises(data.InvalidRequest):
        data.check_image_key("images/../secret")


# -- executions ----------------------------------------------------------------------


def hostile_trace(status_failed: bool = True) -> trace.DrawnTrace:
    """A real recorded failure whose failing state and error are named like markup."""
    definition_text = json.dumps(load_data("trace_classify_image.asl.json"))
    history = load_history("history_failure.json")
    escaped = json.dumps(HOSTILE)[1:-1]
    definition = json.loads(definition_text.replace("Fetch Image", escaped))
    events = json.loads(
        json.dumps(history, default=str)
        .replace("Fetch Image", escaped)
        .replace("ImageNotFound", escaped)
    )
    for event, original in zip(events, history, strict=True):
        event["timestamp"] = original["timestamp"]
    built = trace.build_trace(definition, events)
    return trace.DrawnTrace(
        execution_arn="arn:aws:states:us-east-1:123456789012:execution:classify-image:e-0",
        execution_name="e-0",
        status=built.status,
        timeline="\n".join(trace.render_timeline(built)),
        svg=trace.render_svg(definition, built),
        html="",
        trace=built,
        input=json.dumps({"message": photo_message(f"{URL}a.jpg", text=HOSTILE)}),
    )


@pytest.fixture
def traced(monkeypatch: pytest.MonkeyPatch) -> trace.DrawnTrace:
    drawn = hostile_trace()

    def trace_execution(stack: Any, execution: str) -> trace.DrawnTrace:
        if execution != "e-0":
            raise StackNotFound(f"no execution named {execution!r}")
        return drawn

    monkeypatch.setattr(trace, "trace_execution", trace_execution)
    return drawn


def test_an_execution_shows_status_failing_state_error_and_its_drawing(
    client: FlaskClient, traced: trace.DrawnTrace
) -> None:
    # GIVEN a failed execution whose state and error names are markup
    # WHEN its page is opened
    page = client.get("/executions/e-0").text

    # THEN status, failing state and error are there, escaped; the drawing is an <img>
    assert 'id="execution-status">FAILED<' in page
    assert "<script>alert" not in page
    assert str(escape(HOSTILE)) in page
    assert '<img id="trace" src="/executions/e-0/trace.svg"' in page
    assert traced.trace.failed_state == HOSTILE


def test_the_drawing_is_the_trace_commands_svg_checked_and_sandboxed(
    client: FlaskClient, traced: trace.DrawnTrace
) -> None:
    # WHEN the drawing itself is fetched
    response = client.get("/executions/e-0/trace.svg")

    # THEN it is exactly `tweetlens trace`'s SVG, as an SVG, with a policy that runs nothing
    assert response.status_code == 200
    assert response.mimetype == "image/svg+xml"
    assert response.text == traced.svg
    policy = response.headers["Content-Security-Policy"]
    assert "sandbox" in policy
    assert "script-src" not in policy
    assert "default-src 'none'" in policy
    # AND the hostile names are text in it, never elements
    root = ElementTree.fromstring(response.text)
    tags = {element.tag.rsplit("}", 1)[-1] for element in root.iter()}
    assert "script" not in tags
    assert "img" not in tags
    assert HOSTILE in {element.text for element in root.iter()}


@pytest.mark.parametrize(
    "svg",
    [
        '<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
        '<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"></svg>',
        '<svg xmlns="http://www.w3.org/2000/svg"><a href="javascript:alert(1)">x</a></svg>',
        '<svg xmlns="http://www.w3.org/2000/svg"><foreignObject/></svg>',
        '<svg xmlns="http://www.w3.org/2000/svg"><style>@import url(//x/y.css);</style></svg>',
        '<!DOCTYPE svg [<!ENTITY x "y">]><svg xmlns="http://www.w3.org/2000/svg"/>',
        "<svg><rect/></svg>",
        '<svg xmlns="http://www.w3.org/2000/svg"><path marker-end="url(https://x/y)"/></svg>',
    ],
    ids=["script", "handler", "link", "foreign", "import", "doctype", "no-namespace", "marker"],
)
def test_a_drawing_with_anything_the_renderer_never_draws_is_refused(svg: str) -> None:
    with pytest.raises(security.UnsafeSvg):
        security.check_svg(svg)


@pytest.mark.parametrize(
    "history",
    ["history_success.json", "history_failure.json", "history_retry.json", "history_uncaught.json"],
)
def test_every_recorded_drawing_passes_the_check(history: str) -> None:
    definition = load_data("trace_classify_image.asl.json")
    svg = trace.render_svg(definition, trace.build_trace(definition, load_history(history)))
    assert security.check_svg(svg) == svg


def test_an_unknown_execution_is_not_found_and_a_bad_name_a_bad_request(
    client: FlaskClient, traced: trace.DrawnTrace
) -> None:
    assert client.get("/executions/e-1").status_code == 404
    assert client.get("/executions/e-1/trace.svg").status_code == 404
    assert client.get("/executions/bad%20name!").status_code == 400


def test_the_executions_list_shows_status_and_filters_by_it(
    client: FlaskClient, stack: Stack
) -> None:
    # GIVEN two executions started (moto leaves them running)
    sfn = stack.client("stepfunctions")
    machine = stack.deployed.resources["ClassifyImageStateMachine"]
    for name in ("first-0", "second-0"):
        sfn.start_execution(stateMachineArn=machine, name=name, input="{}")

    # WHEN listed, all and by status
    every = client.get("/executions").text
    failed = client.get("/executions", query_string={"status": "FAILED"}).text

    # THEN each links to its trace with its status; the filter is the list's own
    assert 'href="/executions/first-0"' in every
    assert 'href="/executions/second-0"' in every
    assert 'data-status="RUNNING"' in every
    assert "first-0" not in failed
    assert "No executions FAILED" in failed
    assert client.get("/executions/table").text.lstrip().startswith("<table")
    assert client.get("/executions", query_string={"status": "DONE"}).status_code == 400


# -- dead letters --------------------------------------------------------------------


def _fill_dead_letters(stack: Stack) -> dict[str, str]:
    """A rejected route message, a failed execution, a rejected execution input."""
    return {
        "rejected": stack.send(
            "CatsDeadLetterQueue",
            json.dumps(photo_message(f"{URL}r.jpg")),
            {"error": "InvalidMessage", "reason": HOSTILE},
        ),
        "failed": stack.send(
            "WorkflowDeadLetterQueue",
            workflow_letter(f"{URL}gone.jpg", "ImageNotFound", "answered 404", text=HOSTILE),
        ),
        "invalid": stack.send(
            "WorkflowDeadLetterQueue",
            json.dumps(
                {
                    "input": [1, 2],
                    "error": {"Error": "InvalidExecutionInput", "Cause": "not an object"},
                    "execution": "arn:aws:states:us-east-1:123456789012:execution:m:x",
                    "failed_state": "Check Input",
                }
            ),
        ),
    }


def test_dead_letters_are_listed_per_queue_with_error_reason_age(
    client: FlaskClient, stack: Stack
) -> None:
    # GIVEN three dead letters on two queues
    ids = _fill_dead_letters(stack)

    # WHEN the page is opened
    page = client.get("/dead-letters").text

    # THEN every queue has its section; each letter its error, escaped reason, age and a button
    for queue in ("CatsDeadLetterQueue", "DogsDeadLetterQueue", "WorkflowDeadLetterQueue"):
        assert f'id="queue-{queue}"' in page
    for message_id in ids.values():
        assert f'data-message-id="{message_id}"' in page
    assert "InvalidMessage" in page
    assert "ImageNotFound" in page
    assert "answered 404" in page
    assert "<script>alert" not in page
    assert str(escape(HOSTILE)) in page
    assert re.search(r'<td class="num">\d+ s</td>', page)
    # AND only the failed execution's letter can be sent back (the CLI's rules: the rejected
    # route message and the rejected execution input would fail again)
    assert page.count('class="redrive-one"') == 1
    assert "Send back all (1)" in page
    # AND listing left every letter where it was, visible
    assert stack.depth("CatsDeadLetterQueue") == 1
    assert stack.depth("WorkflowDeadLetterQueue") == 2


def test_a_letter_whose_image_was_classified_since_is_shown_superseded(
    client: FlaskClient, stack: Stack
) -> None:
    # GIVEN a failed execution's letter whose image a later post has classified since
    url = f"{URL}later.jpg"
    message_id = stack.send(
        "WorkflowDeadLetterQueue", workflow_letter(url, "ImageHostError", "answered 503")
    )
    stack.put_result(url)

    # WHEN the page is opened
    page = html.unescape(client.get("/dead-letters").text)

    # THEN the letter is listed as superseded, with the reason a redrive keeps it, and cannot be
    # sent back from its row
    assert f'data-message-id="{message_id}"' in page
    assert f'<span class="muted" title="{SKIPPED_SUPERSEDED}">superseded</span>' in page
    assert 'class="redrive-one"' not in page


def _letter_sent_twice(stack: Stack) -> tuple[str, str]:
    """A failed execution's letter and its copy (a closer killed between sending the letter and
    recording it sends it again): the first's id, then the copy's, sent a few ms later."""
    letter = workflow_letter(f"{URL}twice.jpg", "ImageNotFound", "answered 404")
    first = stack.send("WorkflowDeadLetterQueue", letter)
    time.sleep(0.005)  # SentTimestamp is in ms: the first letter is the earlier sent
    return first, stack.send("WorkflowDeadLetterQueue", letter)


def test_a_copy_of_a_letter_is_shown_as_its_copy(client: FlaskClient, stack: Stack) -> None:
    # GIVEN a failed execution's letter sent twice
    first, copy = _letter_sent_twice(stack)

    # WHEN the page is opened
    page = html.unescape(client.get("/dead-letters").text)

    # THEN the copy names its first letter, with what a redrive does with it, and only the
    # first letter can be sent back
    assert f'data-message-id="{copy}"' in page
    assert (
        f'<span class="muted copy" title="{DELETED_COPY}">copy of <code>{first}</code></span>'
        in page
    )
    assert page.count('class="redrive-one"') == 1
    assert "Send back all (1)" in page


def test_sending_back_a_copy_sends_its_first_letter_once(client: FlaskClient, stack: Stack) -> None:
    # GIVEN a failed execution's letter sent twice
    _first, copy = _letter_sent_twice(stack)

    # WHEN the copy alone is asked to be sent back
    page = html.unescape(_redrive(client, queue="WorkflowDeadLetterQueue", message_id=copy))

    # THEN the first letter went back once, the copy was deleted, and the page says both
    assert "WorkflowDeadLetterQueue: 1 message(s) sent back" in page
    assert f"WorkflowDeadLetterQueue: 1 copy deleted ({DELETED_COPY})" in page
    assert stack.depth("CatsQueue") == 1
    assert stack.depth("WorkflowDeadLetterQueue") == 0


def _redrive(client: FlaskClient, **form: str) -> str:
    token = csrf_token(client)
    response = client.post(
        "/dead-letters/redrive", data={"csrf_token": token, **form}, headers={"Origin": ORIGIN}
    )
    assert response.status_code == 303
    assert response.headers["Location"] == "/dead-letters"
    return client.get(response.headers["Location"]).text


def test_one_letter_is_sent_back_by_the_clis_rules(client: FlaskClient, stack: Stack) -> None:
    # GIVEN the three dead letters
    ids = _fill_dead_letters(stack)

    # WHEN the failed execution's letter alone is sent back
    page = _redrive(client, queue="WorkflowDeadLetterQueue", message_id=ids["failed"])

    # THEN it went to its route queue as a new attempt, the others stayed, and the page says so
    assert "WorkflowDeadLetterQueue: 1 message(s) sent back" in page
    assert f'data-message-id="{ids["failed"]}"' not in page
    assert f'data-message-id="{ids["invalid"]}"' in page
    (sent,) = stack.client("sqs").receive_message(QueueUrl=stack.deployed.resources["CatsQueue"])[
        "Messages"
    ]
    assert json.loads(sent["Body"])["attempt"] == 1
    assert stack.depth("CatsDeadLetterQueue") == 1
    assert stack.depth("WorkflowDeadLetterQueue") == 1


def test_all_letters_are_sent_back_and_a_rejected_input_is_kept(
    client: FlaskClient, stack: Stack
) -> None:
    _fill_dead_letters(stack)

    # WHEN everything is sent back
    page = _redrive(client)

    # THEN each queue reports what it sent back and what it kept and why, as `tweetlens dlq
    # redrive` does
    assert "CatsDeadLetterQueue: 0 message(s) sent back" in page
    assert "WorkflowDeadLetterQueue: 1 message(s) sent back" in page
    assert f"CatsDeadLetterQueue: 1 message(s) kept (InvalidMessage: {SKIPPED_REJECTION})" in (
        html.unescape(page)
    )
    assert (
        f"WorkflowDeadLetterQueue: 1 message(s) kept (InvalidExecutionInput: {SKIPPED_NO_MESSAGE})"
        in html.unescape(page)
    )
    assert stack.depth("CatsQueue") == 1
    assert stack.depth("CatsDeadLetterQueue") == 1
    assert stack.depth("WorkflowDeadLetterQueue") == 1


def test_an_unknown_queue_is_a_bad_request(client: FlaskClient) -> None:
    token = csrf_token(client)
    response = client.post(
        "/dead-letters/redrive",
        data={"csrf_token": token, "queue": "<b>NoSuchQueue</b>"},
        headers={"Origin": ORIGIN},
    )
    assert response.status_code == 400
    assert "&lt;b&gt;NoSuchQueue" in response.text


# -- overview ------------------------------------------------------------------------


def test_the_overview_without_logs_shows_what_the_stack_holds(
    client: FlaskClient, stack: Stack
) -> None:
    # GIVEN a message waiting on the cats queue and a dead letter
    stack.send("CatsQueue", json.dumps(photo_message(f"{URL}q.jpg")))
    _fill_dead_letters(stack)

    # WHEN the overview is opened (a console not beside the cloud: no logs)
    page = client.get("/").text

    # THEN each route shows its queue and its dead letters by reason; published and lost wait
    # for the logs, and the page says how to get them
    assert 'data-route="cats"' in page
    assert 'data-route="dogs"' in page
    assert "InvalidMessage 1" in page
    assert "ImageNotFound 1" in page
    assert "tweetlens up --console" in page
    assert 'data-refresh="/overview/table"' in page


def test_the_overview_beside_the_cloud_counts_published_and_lost(stack: Stack) -> None:
    # GIVEN the producer's and classifier's logs of a run: 3 cats published, 2 duplicates
    # and one rejected into the cats DLQ
    cloud = FakeCloud()
    cloud.log(
        "ProducerFunction",
        {"message": "Producer run finished", "published": {"cats": 3, "dogs": 0}},
    )
    arn = "arn:aws:sqs:us-east-1:123456789012:cats"
    cloud.log(
        "ClassifierFunction",
        *(
            {
                "message": "Record processed",
                "record_outcome": {
                    "version": 1,
                    "message_id": f"m{n}",
                    "outcome": "Duplicate",
                    "route": "cats",
                    "event_source_arn": arn,
                },
            }
            for n in range(2)
        ),
    )
    stack.send(
        "CatsDeadLetterQueue",
        json.dumps(photo_message(f"{URL}r.jpg")),
        {"error": "InvalidMessage", "reason": "no"},
    )
    client = client_of(console_app(ConsoleData.fixed(stack.deployed, CloudActivity(cloud))))

    # WHEN the table is fetched
    table = client.get("/overview/table").text

    # THEN the cats row accounts for all three messages: nothing lost
    row = re.search(r'<tr data-route="cats">(.*?)</tr>', table, re.S)
    assert row
    cells = [
        re.sub(r"<[^>]+>", " ", cell).split()
        for cell in re.findall(r"<td[^>]*>(.*?)</td>", row.group(1), re.S)
    ]
    assert cells == [["cats"], ["3"], ["0"], ["0"], ["0"], ["2"], ["InvalidMessage", "1"], ["0"]]
    assert "tweetlens up --console" not in table


CATS_ARN = "arn:aws:sqs:us-east-1:123456789012:cats"


def _classifier_line(message_id: str, outcome: str) -> dict[str, Any]:
    return {
        "message": "Record processed",
        "record_outcome": {
            "version": 1,
            "message_id": message_id,
            "outcome": outcome,
            "route": "cats",
            "event_source_arn": CATS_ARN,
        },
    }


def _consumed(stack: Stack, *bodies: dict[str, Any]) -> list[str]:
    """Messages SQS accepted on the cats queue, then taken off it (as the classifier does)."""
    ids = [stack.send("CatsQueue", json.dumps(body)) for body in bodies]
    queue = stack.deployed.resources["CatsQueue"]
    sqs = stack.client("sqs")
    for message in sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]:
        sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
    return ids


def test_the_overview_beside_the_cloud_names_a_lost_message_a_double_count_hid(
    stack: Stack,
) -> None:
    # GIVEN (up --console: the cloud's record of accepted messages) two cats messages the
    # producer published: m1 logged a duplicate and yet moved to the cats DLQ by its redrive
    # policy, m2 taken off the queue with no record of the classifier
    cloud = FakeCloud()
    cloud.log("ProducerFunction", {"message": "Producer run finished", "published": {"cats": 2}})
    with demo.record_accepted(stack.deployed) as accepted:
        moved = stack.send("CatsQueue", json.dumps(photo_message(f"{URL}m1.jpg")))
        for _ in range(6):
            stack.client("sqs").receive_message(
                QueueUrl=stack.deployed.resources["CatsQueue"], VisibilityTimeout=0
            )
        (lost,) = _consumed(stack, photo_message(f"{URL}m2.jpg"))
        cloud.log("ClassifierFunction", _classifier_line(moved, "Duplicate"))
        console = ConsoleData.fixed(stack.deployed, CloudActivity(cloud), accepted)

        # WHEN the table is fetched
        table = html.unescape(client_of(console_app(console)).get("/overview/table").text)

    # THEN the route's totals would balance (1 duplicate + 1 dead letter for 2 published), but
    # settled message by message m2 is lost and m1 counted twice, each named
    assert 'id="per-message"' in table
    assert _cats_cells(table) == [
        ["cats"],
        ["2"],
        ["0"],
        ["0"],
        ["0"],
        ["0"],
        ["MaxReceiveCountExceeded", "1"],
        ["1"],
    ]
    assert re.findall(r'<p class="error">(.*?)</p>', table) == [
        f"route cats: 1 message(s) lost ({lost})",
        f"route cats: 1 message(s) counted twice ({moved})",
    ]


def test_the_overview_beside_the_cloud_counts_a_letter_sent_twice_once(stack: Stack) -> None:
    # GIVEN (up --console) one cats message the classifier rejected, its rejection letter sent
    # twice (the worker was killed between sending it and recording it)
    cloud = FakeCloud()
    cloud.log("ProducerFunction", {"message": "Producer run finished", "published": {"cats": 1}})
    body = photo_message(f"{URL}r.jpg")
    with demo.record_accepted(stack.deployed) as accepted:
        (rejected,) = _consumed(stack, body)
        cloud.log("ClassifierFunction", _classifier_line(rejected, "Rejected"))
        attributes = {
            "error": "InvalidMessage",
            "reason": "no",
            SOURCE_MESSAGE_ID_ATTRIBUTE: rejected,
        }
        stack.send("CatsDeadLetterQueue", json.dumps(body), attributes)
        time.sleep(0.005)  # SentTimestamp is in ms: the first letter is the earlier sent
        copy = stack.send("CatsDeadLetterQueue", json.dumps(body), attributes)
        console = ConsoleData.fixed(stack.deployed, CloudActivity(cloud), accepted)

        # WHEN the table is fetched
        table = html.unescape(client_of(console_app(console)).get("/overview/table").text)

    # THEN the message ends once, in one dead letter, nothing is lost or wrong, and the copy is
    # named on a line of its own
    assert _cats_cells(table) == [
        ["cats"],
        ["1"],
        ["0"],
        ["0"],
        ["0"],
        ["0"],
        ["InvalidMessage", "1"],
        ["0"],
    ]
    assert re.findall(r'<p class="error">(.*?)</p>', table) == []
    assert re.findall(r'<p class="note copy">(.*?)</p>', table) == [
        f"copy: cats message {rejected} (post 1879000016202698239, {URL}r.jpg): "
        f"dead:InvalidMessage, its letter sent 2 times (copies {copy}); counted once"
    ]


def _cats_cells(table: str) -> list[list[str]]:
    row = re.search(r'<tr data-route="cats">(.*?)</tr>', table, re.S)
    assert row
    return [
        re.sub(r"<[^>]+>", " ", cell).split()
        for cell in re.findall(r"<td[^>]*>(.*?)</td>", row.group(1), re.S)
    ]


def test_cloud_activity_keeps_lines_after_the_history_rolls_over() -> None:
    # GIVEN a cloud whose history is read, then trimmed as it fills up, then appended to
    cloud = FakeCloud()
    activity = CloudActivity(cloud)
    line = {"message": "Producer run finished", "published": {"cats": 1}}
    cloud.log("ProducerFunction", line)
    assert len(activity.function_logs("ProducerFunction")[0].splitlines()) == 1
    cloud.log("ProducerFunction", line)
    cloud.records = cloud.records[1:]
    cloud.log("ProducerFunction", line, {"message": "Unrelated"})

    # WHEN read again / THEN every summary is there once, and nothing else is kept
    logs = activity.function_logs("ProducerFunction")[0].splitlines()
    assert len(logs) == 3
    assert all("Producer run finished" in entry for entry in logs)


def test_no_stack_is_a_readable_error_page() -> None:
    # GIVEN a console whose stack cannot be found (no `tweetlens up` running)
    def missing() -> Any:
        raise StackNotFound("no local cloud is running (no .tweetlens/local-cloud.json)")

    client = client_of(console_app(ConsoleData(load_stack=missing, reload=True)))

    # WHEN any page is opened / THEN 503 with the reason, and the usual headers
    response = client.get("/results")
    assert response.status_code == 503
    assert "no local cloud is running" in response.text
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
