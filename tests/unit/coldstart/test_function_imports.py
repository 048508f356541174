"""Cold start (issue 8, item 5): what the functions import, and the collector during init.

``aws_lambda_powertools.utilities.parser``'s ``__init__`` builds every envelope and every event
model Powertools ships; the functions own the few event models they validate. Init runs without
the cyclic garbage collector and freezes what it made (``common.coldstart``).
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

FUNCTIONS = Path(__file__).resolve().parents[3] / "functions"
PARSER = "aws_lambda_powertools.utilities.parser"
# Handler modules validate their environment at import, so the runtime check below imports
# every other module; the static check covers the handlers too.
MODULES = sorted(
    f"{path.parent.name}.{path.stem}"
    for path in FUNCTIONS.glob("*/*.py")
    if path.stem not in {"__init__", "app"}
)


def _imported_names(path: Path) -> list[str]:
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module is not None:
            names.append(node.module)
        elif isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
    return names


@pytest.mark.parametrize(
    "path", sorted(FUNCTIONS.glob("*/*.py")), ids=lambda path: f"{path.parent.name}/{path.name}"
)
def test_no_function_module_imports_the_parser_package(path: Path) -> None:
    # GIVEN one module of a function's code
    # WHEN its imports are read
    names = _imported_names(path)

    # THEN none of them is the parser package or one of its modules
    assert [name for name in names if name == PARSER or name.startswith(f"{PARSER}.")] == []


def test_importing_the_function_modules_never_loads_the_parser_package() -> None:
    # GIVEN a fresh interpreter, tracing off as outside Lambda
    environment = {
        **os.environ,
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_NAMESPACE": "tweetlens",
    }

    # WHEN every module of every function but the handlers is imported
    imported = subprocess.run(
        [
            sys.executable,
            "-c",
            f"import sys, {', '.join(MODULES)}; "
            f"print(sorted(m for m in sys.modules if m.startswith({PARSER!r})))",
        ],
        cwd=FUNCTIONS,
        env=environment,
        capture_output=True,
        text=True,
        check=True,
    )

    # THEN no module of the parser package was loaded, directly or through another library
    assert imported.stdout.strip() == "[]"


QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:cats"
DEAD_LETTERS_URL = "https://sqs.us-east-1.amazonaws.com/123456789012/cats-dlq"
# A valid ClassifierFunction environment, tracing off as outside Lambda.
CLASSIFIER_ENVIRONMENT = {
    "AWS_DEFAULT_REGION": "us-east-1",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_SERVICE_NAME": "classifier",
    "POWERTOOLS_METRICS_NAMESPACE": "tweetlens",
    "RESULTS_TABLE": "results",
    "STATE_MACHINE_ARN": "arn:aws:states:us-east-1:123456789012:stateMachine:classify",
    "ROUTE_DLQ_URLS": f'{{"{QUEUE_ARN}": "{DEAD_LETTERS_URL}"}}',
    "ROUTE_DLQ_URLS_BY_ROUTE": f'{{"cats": "{DEAD_LETTERS_URL}"}}',
    "CLAIM_LEASE_SECONDS": "330",
    "WORKFLOW_TYPE": "STANDARD",
    "DETECT_LABELS_RATE": "50",
}


def _run_after_classifier_init(statement: str) -> str:
    """Import the classifier's handler module in a fresh interpreter (it makes its clients,
    which needs no network), then run ``statement``; returns what it printed."""
    return subprocess.run(
        [sys.executable, "-c", f"import sys, gc, classifier.app; {statement}"],
        cwd=FUNCTIONS,
        env={**os.environ, **CLASSIFIER_ENVIRONMENT},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def test_importing_the_classifier_handler_never_loads_the_parser_package() -> None:
    # GIVEN a fresh interpreter with a valid ClassifierFunction environment; its handler
    # imports Powertools' batch utility, whose types pull in every parser model when pydantic
    # is loaded before it
    # WHEN the handler module is imported
    loaded = _run_after_classifier_init(
        f"print(sorted(m for m in sys.modules if m.startswith({PARSER!r})))"
    )

    # THEN no module of the parser package was loaded
    assert loaded == "[]"


def test_a_handler_init_ends_with_the_collector_on_and_its_objects_frozen() -> None:
    # GIVEN a fresh interpreter with a valid ClassifierFunction environment
    # WHEN the handler module is imported (init ran without automatic collection)
    state = _run_after_classifier_init("print(gc.isenabled(), gc.get_freeze_count() > 10_000)")

    # THEN collection is back on, and what init made is in the permanent generation
    assert state == "True True"


@pytest.mark.parametrize(
    "package", sorted({path.parent.name for path in FUNCTIONS.glob("*/app.py")})
)
def test_every_handler_starts_and_ends_init_with_common_coldstart(package: str) -> None:
    # GIVEN a function's handler module
    source = (FUNCTIONS / package / "app.py").read_text("utf-8")
    statements = ast.parse(source).body

    # WHEN its first import and its last statement are read
    imports = [node for node in statements if isinstance(node, ast.Import | ast.ImportFrom)]
    first_import = ast.unparse(imports[1])  # imports[0] is `from __future__ import annotations`
    last = ast.unparse(statements[-1])

    # THEN the collector is paused before anything else is imported and resumed at the end
    assert (first_import, last) == ("import common.coldstart", "common.coldstart.init_done()")


# A valid ExecutionCloserFunction environment, tracing off as outside Lambda.
CLOSER_ENVIRONMENT = {
    "AWS_DEFAULT_REGION": "us-east-1",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_SERVICE_NAME": "execution_closer",
    "POWERTOOLS_METRICS_NAMESPACE": "tweetlens",
    "RESULTS_TABLE": "results",
    "OPEN_CLAIMS_INDEX": "OpenClaims",
    "STATE_MACHINE_ARN": "arn:aws:states:us-east-1:123456789012:stateMachine:classify",
    "WORKFLOW_DLQ_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/workflow-dlq",
}

# Records every client class boto3's default session makes, by service ("sqs", "sfn", ...),
# through botocore's documented creating-client-class event.
RECORD_CLIENTS = (
    "import boto3; boto3.setup_default_session(); made = []; "
    "boto3.DEFAULT_SESSION.events.register('creating-client-class', "
    "lambda event_name, **_: made.append(event_name.rsplit('.', 1)[1]))"
)


def _run_around_init(
    module: str, environment: dict[str, str], statement: str, before: str = "pass"
) -> str:
    """Run ``before``, import handler module ``module`` in a fresh interpreter with
    ``environment`` (its clients need no network), then ``statement``; what it printed."""
    return subprocess.run(
        [sys.executable, "-c", f"import sys; {before}; import {module} as app; {statement}"],
        cwd=FUNCTIONS,
        env={**os.environ, **environment},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def test_the_classifier_init_makes_its_sqs_client_only_on_first_use() -> None:
    # GIVEN a fresh interpreter that records the clients made, with the classifier's environment
    # WHEN the handler module is imported, then its SQS client is used once
    made = _run_around_init(
        "classifier.app",
        CLASSIFIER_ENVIRONMENT,
        "print(sorted(made)); app.classifier.sqs.meta.service_model; print(sorted(made))",
        before=RECORD_CLIENTS,
    )

    # THEN init made the clients every invocation needs, and SQS's only when first used
    assert made.splitlines() == ["['dynamodb', 'sfn']", "['dynamodb', 'sfn', 'sqs']"]


def test_the_closer_init_makes_only_its_dynamodb_client() -> None:
    # GIVEN a fresh interpreter that records the clients made, with the closer's environment
    # WHEN the handler module is imported, then its Step Functions and SQS clients are used
    made = _run_around_init(
        "execution_closer.app",
        CLOSER_ENVIRONMENT,
        "print(sorted(made)); app.closer.stepfunctions.meta; app.closer.sqs.meta; "
        "print(sorted(made))",
        before=RECORD_CLIENTS,
    )

    # THEN init made the DynamoDB client every sweep needs; the others only when first used
    assert made.splitlines() == ["['dynamodb']", "['dynamodb', 'sfn', 'sqs']"]


# Models only a rare path uses are built by pydantic when first used (``defer_build``), not at
# init. ``__pydantic_complete__`` says whether a model's validator and serializer were built.
def _complete(models: str) -> str:
    return f"print(*(model.__pydantic_complete__ for model in ({models},)))"


def test_the_closer_init_builds_the_tick_s_model_and_none_only_closing_uses() -> None:
    # GIVEN a fresh interpreter with the closer's environment
    # WHEN the handler module is imported
    built = _run_around_init(
        "execution_closer.app",
        CLOSER_ENVIRONMENT,
        "from execution_closer import models as m; "
        + _complete(
            "m.ScheduledEvent, m.StatusChangeEvent, m.StatusChangeDetail, m.EndedExecution, "
            "m.WorkflowDeadLetter"
        ),
    )

    # THEN what every sweep tick validates is built; what only closing an execution uses is not
    assert built == "True False False False False"


STATUS_CHANGE_EVENT = {
    "detail-type": "Step Functions Execution Status Change",
    "source": "aws.states",
    "detail": {
        "executionArn": "arn:aws:states:us-east-1:123456789012:execution:classify:run-1",
        "stateMachineArn": CLOSER_ENVIRONMENT["STATE_MACHINE_ARN"],
        "status": "FAILED",
    },
}


def test_a_closing_only_model_is_built_by_its_first_use_and_kept() -> None:
    # GIVEN the closer after init, its status-change models not built
    # WHEN two status-change events are validated, one after the other
    built = _run_around_init(
        "execution_closer.app",
        CLOSER_ENVIRONMENT,
        "from execution_closer.models import StatusChangeEvent as M; "
        f"before = M.__pydantic_complete__; M.model_validate({STATUS_CHANGE_EVENT!r}); "
        "validator = M.__pydantic_validator__; "
        f"second = M.model_validate({STATUS_CHANGE_EVENT!r}); "
        "print(before, M.__pydantic_complete__, M.__pydantic_validator__ is validator, "
        "second.detail.status.value)",
    )

    # THEN the first validation built the model, and the second used the same validator
    assert built == "False True True FAILED"


def test_a_closing_only_model_refuses_what_it_refused_when_built_at_init() -> None:
    # GIVEN the closer after init, its status-change models not built
    # WHEN the first event it validates names an execution of another state machine
    other_machine = {
        **STATUS_CHANGE_EVENT,
        "detail": {
            **STATUS_CHANGE_EVENT["detail"],
            "executionArn": "arn:aws:states:us-east-1:123456789012:execution:other:run-1",
        },
    }
    refused = _run_around_init(
        "execution_closer.app",
        CLOSER_ENVIRONMENT,
        "from pydantic import ValidationError; "
        "from execution_closer.models import StatusChangeEvent as M\n"
        f"try:\n    M.model_validate({other_machine!r})\n"
        "except ValidationError as error:\n"
        "    print([(e['loc'], e['msg']) for e in error.errors()])",
    )

    # THEN the deferred build validates exactly as before: the event is refused
    assert refused == (
        "[(('detail',), 'Value error, executionArn is not an execution of stateMachineArn')]"
    )


def test_the_classifier_init_builds_what_every_record_needs_and_not_its_letters() -> None:
    # GIVEN a fresh interpreter with the classifier's environment
    # WHEN the handler module is imported
    built = _run_around_init(
        "classifier.app",
        CLASSIFIER_ENVIRONMENT,
        "from classifier import models as m; from common import messages, closing; "
        + _complete(
            "m.RouteQueueRecord, messages.PhotoMessage, messages.ClassifyRequest, "
            "m.RecordOutcomeLog, m.Rejection, closing.WorkflowDeadLetter"
        ),
    )

    # THEN the record, message, request and outcome models are built; a rejection's and a
    # workflow dead letter's are not
    assert built == "True True True True False False"


def test_a_rejected_body_builds_the_rejection_model_once() -> None:
    # GIVEN the classifier after init, its rejection model not built
    # WHEN two bodies that are not JSON are parsed
    built = _run_around_init(
        "classifier.app",
        CLASSIFIER_ENVIRONMENT,
        "from classifier.logic import parse_body; from classifier.models import Rejection as M; "
        "before = M.__pydantic_complete__; first = parse_body('not json'); "
        "validator = M.__pydantic_validator__; second = parse_body('{'); "
        "print(before, M.__pydantic_validator__ is validator, first.error, second.error)",
    )

    # THEN the first built it and the second reused it
    assert built == "False True NotJson NotJson"


# A valid ProducerFunction environment reading X (the default), tracing off as outside Lambda.
PRODUCER_ENVIRONMENT = {
    "AWS_DEFAULT_REGION": "us-east-1",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_SERVICE_NAME": "producer",
    "POWERTOOLS_METRICS_NAMESPACE": "tweetlens",
    "HASHTAG_ROUTES": '{"cats": "cat,cats"}',
    "ROUTE_QUEUE_URLS": '{"cats": "https://sqs.us-east-1.amazonaws.com/123456789012/cats"}',
    "CHECKPOINTS_TABLE": "checkpoints",
    "PRODUCER_DLQ_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/producer-dlq",
    "POST_SOURCE": "x-api",
    "BEARER_TOKEN_STORE": "secretsmanager",
    "BEARER_TOKEN_NAME": "tweetlens/x-bearer-token",
    "MAX_RESULTS_PER_PAGE": "10",
}


def test_the_producer_init_builds_what_every_run_needs_and_not_its_letters() -> None:
    # GIVEN a fresh interpreter with the producer's environment
    # WHEN the handler module is imported
    built = _run_around_init(
        "producer.app",
        PRODUCER_ENVIRONMENT,
        "from producer import letters, page, publisher, checkpoint, routing; "
        "from common.messages import PhotoMessage; "
        + _complete(
            "checkpoint.Checkpoint, page.SearchPage, routing.RoutedPage, PhotoMessage, "
            "letters.PageLetter, letters.PostLetter, letters.PhotoLetter, letters.RangeLetter, "
            "page.UnreadablePage, publisher.Refusal, publisher.RefusedMessage"
        ),
    )

    # THEN the checkpoint, page, routing and message models are built; the dead letters and
    # the models of an unreadable page or a refused message are not
    assert built == "True True True True False False False False False False False"


# Records the service and the config of every client the handler module asks boto3 for.
RECORD_CLIENT_CONFIGS = (
    "import boto3; made = []; _client = boto3.client\n"
    "def client(service, *args, **kwargs):\n"
    "    config = kwargs.get('config')\n"
    "    made.append((service, None if config is None else "
    "(config.connect_timeout, config.read_timeout, config.retries)))\n"
    "    return _client(service, *args, **kwargs)\n"
    "boto3.client = client"
)
# What producer.settings.AWS_CONFIG and execution_closer.settings.AWS_CONFIG hold: each call
# ends within the 10 s margin the function keeps before its timeout (tests/unit/template/
# test_client_timeouts.py holds the arithmetic against template.yaml).
BOUNDED = (0.5, 1.5, {"mode": "standard", "total_max_attempts": 3})


def test_every_producer_client_is_bounded() -> None:
    # GIVEN a fresh interpreter that records the config of every client made, with the
    # producer's environment (X API: its token in Secrets Manager)
    # WHEN the handler module is imported
    made = _run_around_init(
        "producer.app", PRODUCER_ENVIRONMENT, "print(made)", before=RECORD_CLIENT_CONFIGS
    )

    # THEN each of its clients has the bounded config, none botocore's defaults
    assert made == repr([("sqs", BOUNDED), ("dynamodb", BOUNDED), ("secretsmanager", BOUNDED)])


def test_every_closer_client_is_bounded() -> None:
    # GIVEN a fresh interpreter that records the config of every client made, with the
    # closer's environment
    # WHEN the handler module is imported and its first-use clients are used
    made = _run_around_init(
        "execution_closer.app",
        CLOSER_ENVIRONMENT,
        "app.closer.stepfunctions.meta; app.closer.sqs.meta; print(made)",
        before=RECORD_CLIENT_CONFIGS,
    )

    # THEN each of its clients has the bounded config, none botocore's defaults
    assert made == repr([("dynamodb", BOUNDED), ("stepfunctions", BOUNDED), ("sqs", BOUNDED)])


# What classifier.settings.AWS_CONFIG holds for its DynamoDB and SQS clients: an EXPRESS record
# started with the claim lease left settles before the invocation ends (the arithmetic against
# template.yaml and the ASL is in tests/unit/template/test_client_timeouts.py).
CLASSIFIER_BOUNDED = (0.5, 0.75, {"mode": "standard", "total_max_attempts": 2})


@pytest.mark.parametrize(
    ("workflow_type", "start_read_timeout", "start_attempts"),
    [("STANDARD", 5, 3), ("EXPRESS", 330, 1)],
    ids=["standard", "express"],
)
def test_every_classifier_client_is_bounded(
    workflow_type: str, start_read_timeout: int, start_attempts: int
) -> None:
    # GIVEN a fresh interpreter that records the config of every client made, with the
    # classifier's environment under either workflow type
    environment = {
        **CLASSIFIER_ENVIRONMENT,
        "WORKFLOW_TYPE": workflow_type,
        "WORKFLOW_DLQ_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/workflow-dlq",
    }

    # WHEN the handler module is imported and its first-use SQS client is used
    made = _run_around_init(
        "classifier.app",
        environment,
        "app.classifier.sqs.meta; print(made)",
        before=RECORD_CLIENT_CONFIGS,
    )

    # THEN DynamoDB and SQS have the bounded config, none botocore's defaults, and Step
    # Functions its own: under EXPRESS a read timeout of the claim lease and one attempt,
    # under STANDARD seconds and three
    starts = (3, start_read_timeout, {"mode": "standard", "total_max_attempts": start_attempts})
    assert made == repr(
        [("stepfunctions", starts), ("dynamodb", CLASSIFIER_BOUNDED), ("sqs", CLASSIFIER_BOUNDED)]
    )
