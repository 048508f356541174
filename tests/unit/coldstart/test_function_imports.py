"""What the functions import at cold start: none of them loads Powertools' parser package.

``aws_lambda_powertools.utilities.parser``'s ``__init__`` builds every envelope and every event
model Powertools ships; the functions own the few event models they validate (issue 8, item 5).
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


def test_importing_the_classifier_handler_never_loads_the_parser_package() -> None:
    # GIVEN a fresh interpreter with a valid ClassifierFunction environment, tracing off; its
    # handler imports Powertools' batch utility, whose types pull in every parser model when
    # pydantic is loaded before it
    queue = "arn:aws:sqs:us-east-1:123456789012:cats"
    dead_letters = "https://sqs.us-east-1.amazonaws.com/123456789012/cats-dlq"
    environment = {
        **os.environ,
        "AWS_DEFAULT_REGION": "us-east-1",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_SERVICE_NAME": "classifier",
        "POWERTOOLS_METRICS_NAMESPACE": "tweetlens",
        "RESULTS_TABLE": "results",
        "STATE_MACHINE_ARN": "arn:aws:states:us-east-1:123456789012:stateMachine:classify",
        "ROUTE_DLQ_URLS": f'{{"{queue}": "{dead_letters}"}}',
        "ROUTE_DLQ_URLS_BY_ROUTE": f'{{"cats": "{dead_letters}"}}',
        "CLAIM_LEASE_SECONDS": "330",
    }

    # WHEN the handler module is imported (it makes its clients, which needs no network)
    imported = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, classifier.app; "
            f"print(sorted(m for m in sys.modules if m.startswith({PARSER!r})))",
        ],
        cwd=FUNCTIONS,
        env=environment,
        capture_output=True,
        text=True,
        check=True,
    )

    # THEN no module of the parser package was loaded
    assert imported.stdout.strip() == "[]"
