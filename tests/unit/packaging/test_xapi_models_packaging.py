"""One copy of the X API models (``functions/tweetlens_xapi``), shipped to both sides.

The producer and the tooling's streams (demo, chaos, the integration tests' recordings) import
the same classes, so what is written is what is read by construction. What remains to check is
that each side really gets that one file: the tooling's wheel carries it (``package-dir`` in
pyproject.toml) and works without a source checkout, ``sam build`` copies it into the
producer's package, and it stays importable on both sides (pydantic and the standard library
only), while the tooling still imports no function's code.
"""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
FUNCTIONS = REPO / "functions"
PACKAGE = "tweetlens_xapi"
SOURCE = FUNCTIONS / PACKAGE
# The naming rules, shipped the same way (standard library only).
NAMING = "tweetlens_naming"
SHARED = {PACKAGE: SOURCE, NAMING: FUNCTIONS / NAMING}
# What `sam build` (make build, part of make test) leaves for the producer.
PRODUCER_BUILD = REPO / ".aws-sam" / "build" / "ProducerFunction"
# The source tree a wheel is built from; the rest of a checkout is left out of the copy.
NOT_SOURCES = shutil.ignore_patterns(
    ".git",
    ".venv*",
    ".aws-sam",
    ".cfn-guard",
    ".tweetlens",
    "build",
    "dist",
    "out",
    "*.egg-info",
    "__pycache__",
    ".*_cache",
)


def _shipped_files(root: Path) -> dict[str, bytes]:
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts
    }


def _imported_top_level_names(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module is not None and node.level == 0:
            names.add(node.module.partition(".")[0])
        elif isinstance(node, ast.Import):
            names.update(alias.name.partition(".")[0] for alias in node.names)
    return names


def _run_isolated(code: str, cwd: Path) -> dict[str, str]:
    """Run ``code`` in a fresh interpreter that sees neither the checkout nor PYTHONPATH.

    ``-I`` leaves out the current folder, PYTHONPATH and the user's site: the venv's packages
    (the tooling's dependencies) stay, and ``code`` puts on the path what is under test.
    """
    completed = subprocess.run(
        [sys.executable, "-I", "-c", code],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    result: dict[str, str] = json.loads(completed.stdout)
    return result


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tooling's wheel, built offline from a copy of the sources (no build/ left behind)."""
    work = tmp_path_factory.mktemp("wheel")
    source = work / "source"
    shutil.copytree(REPO, source, ignore=NOT_SOURCES)
    subprocess.run(
        [
            *(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation"),
            *("--no-index", "--quiet", "--wheel-dir", str(work / "dist"), str(source)),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    (built,) = (work / "dist").glob("tweetlens-*.whl")
    return built


def test_the_models_import_only_pydantic_and_the_standard_library() -> None:
    # GIVEN the shared package, which both the Lambdas and the tooling's wheel ship
    modules = sorted(SOURCE.glob("*.py"))

    # WHEN the top-level names its modules import are read
    imported = set().union(*(_imported_top_level_names(path) for path in modules))

    # THEN each is pydantic, the standard library or the package itself
    foreign = {
        name
        for name in imported
        if name not in sys.stdlib_module_names and name not in {"pydantic", PACKAGE}
    }
    assert foreign == set()


def test_the_naming_rules_import_only_the_standard_library() -> None:
    # GIVEN the shared naming package WHEN the top-level names it imports are read
    imported = set().union(
        *(_imported_top_level_names(path) for path in sorted(SHARED[NAMING].glob("*.py")))
    )

    # THEN each is the standard library's
    assert {name for name in imported if name not in sys.stdlib_module_names} == set()


def test_the_tooling_imports_no_function_package() -> None:
    # GIVEN the function packages under functions/ other than the shared models
    function_packages = {
        path.parent.name
        for path in FUNCTIONS.glob("*/__init__.py")
        if path.parent.name not in SHARED
    }

    # WHEN every module of the tooling is read
    offenders = {
        path.relative_to(REPO).as_posix(): sorted(names)
        for path in sorted((REPO / "tweetlens").rglob("*.py"))
        if (names := _imported_top_level_names(path) & function_packages)
    }

    # THEN none imports one: the CLI runs where functions/ is not on the path
    assert offenders == {}


def test_the_wheel_carries_the_models_as_they_are_in_functions(wheel: Path) -> None:
    # GIVEN the built wheel
    with zipfile.ZipFile(wheel) as archive:
        # WHEN the files of the shared packages are read from it
        shipped = {
            package: {
                name.removeprefix(f"{package}/"): archive.read(name)
                for name in archive.namelist()
                if name.startswith(f"{package}/")
            }
            for package in SHARED
        }
        (record,) = [
            name for name in archive.namelist() if name.endswith(".dist-info/top_level.txt")
        ]
        top_level = archive.read(record).decode().split()

    # THEN they are the files under functions/, byte for byte, as top-level packages
    assert shipped == {package: _shipped_files(source) for package, source in SHARED.items()}
    assert sorted(top_level) == sorted(["tweetlens", *SHARED])


def test_the_installed_wheel_builds_a_stream_without_the_checkout(
    wheel: Path, tmp_path: Path
) -> None:
    # GIVEN the wheel's contents, unpacked as an installer lays them out
    installed = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(installed)

    # WHEN a fresh interpreter puts them first on its path and builds the demo stream
    result = _run_isolated(
        f"""
import json, sys
sys.path.insert(0, {str(installed)!r})
import tweetlens.demo_stream as demo, tweetlens_xapi.models as models
recording = demo.build_recording("https://localhost:4443")
print(json.dumps({{
    "demo_stream": demo.__file__,
    "models": models.__file__,
    "pages": str(len(recording.pages)),
    "post_class": type(recording.pages[0].body.data[0]).__module__,
    "functions_loaded": str(sorted(
        name for name, module in sys.modules.items()
        if (getattr(module, "__file__", None) or "").startswith({str(FUNCTIONS)!r})
    )),
}}))
""",
        tmp_path,
    )

    # THEN the tooling and its models come from the wheel, and nothing from functions/
    assert result == {
        "demo_stream": str(installed / "tweetlens" / "demo_stream.py"),
        "models": str(installed / PACKAGE / "models.py"),
        "pages": "5",
        "post_class": f"{PACKAGE}.models",
        "functions_loaded": "[]",
    }


@pytest.mark.skipif(
    not PRODUCER_BUILD.is_dir(), reason="no sam build output: make build (make test runs it)"
)
def test_sam_build_gives_the_producer_the_same_package(tmp_path: Path) -> None:
    # GIVEN the producer's package as `sam build` left it
    built = PRODUCER_BUILD / PACKAGE

    # WHEN the producer's page reader and the shared models are imported from it (last on the
    # path: the build's compiled dependencies are for the functions' arm64, so the venv's
    # pydantic is taken; nothing else provides the function packages)
    result = _run_isolated(
        f"""
import json, sys
sys.path.append({str(PRODUCER_BUILD)!r})
import producer.page, tweetlens_xapi.models as models
print(json.dumps({{"page": producer.page.__file__, "models": models.__file__}}))
""",
        tmp_path,
    )

    # THEN the build carries the package's files, and the producer reads pages with it
    assert sorted(_shipped_files(built)) == sorted(_shipped_files(SOURCE)), (
        "the build output is older than functions/: make build"
    )
    # AND the naming rules the tooling shares are in it too
    assert sorted(_shipped_files(PRODUCER_BUILD / NAMING)) == sorted(
        _shipped_files(SHARED[NAMING])
    ), "the build output is older than functions/: make build"
    assert result == {
        "page": str(PRODUCER_BUILD / "producer" / "page.py"),
        "models": str(built / "models.py"),
    }
