"""`sam build` ships every module's bytecode, valid wherever and however the package is unzipped.

In Lambda /var/task is read-only: a module without bytecode there is compiled at every cold
start and the result thrown away. functions/Makefile (template: BuildMethod makefile) compiles
the whole package with checked-hash .pyc (PEP 552), which stay valid whatever modification
times zipping and unzipping leave. These tests read what `make build` (part of make test) left.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
BUILD = REPO / ".aws-sam" / "build"
FUNCTIONS = (
    "ProducerFunction",
    "ClassifierFunction",
    "FetchImageFunction",
    "StoreResultFunction",
    "ExecutionCloserFunction",
)
# PEP 552 flags of a .pyc: bit 0 hash-based, bit 1 checked against its source at import.
CHECKED_HASH = 0b11
# Pure-Python modules of the classifier's package, its own and its dependencies' (its compiled
# extensions are for arm64 and cannot load here).
PURE_MODULES = (
    "tweetlens_naming",
    "botocore.session",
    "urllib3",
    "jmespath",
    "dateutil.parser",
    "typing_extensions",
)
# The date SAM's zip gives every file of the package (samcli.lib.package.utils.make_zip): no
# source keeps the modification time a timestamp-based .pyc would have recorded.
ZIP_EPOCH = 315532800  # 1980-01-01T00:00:00Z

pytestmark = pytest.mark.skipif(
    not all((BUILD / name).is_dir() for name in FUNCTIONS),
    reason="no sam build output: make build (make test runs it)",
)


def _bytecode_faults(package: Path) -> dict[str, str]:
    """Each module of the package whose bytecode is missing, not checked-hash, or stale."""
    faults: dict[str, str] = {}
    for source in sorted(package.rglob("*.py")):
        name = source.relative_to(package).as_posix()
        cached = Path(importlib.util.cache_from_source(str(source)))
        if not cached.is_file():
            faults[name] = "no bytecode"
            continue
        header = cached.read_bytes()[:16]
        if header[:4] != importlib.util.MAGIC_NUMBER:
            faults[name] = "another Python's bytecode"
        elif int.from_bytes(header[4:8], "little") != CHECKED_HASH:
            faults[name] = f"flags {int.from_bytes(header[4:8], 'little'):#b}, not checked-hash"
        elif header[8:16] != importlib.util.source_hash(source.read_bytes()):
            faults[name] = "stale: compiled from another source"
    return faults


@pytest.mark.parametrize("function", FUNCTIONS)
def test_every_module_of_the_package_has_checked_hash_bytecode(function: str) -> None:
    # GIVEN a function's package as `sam build` left it
    package = BUILD / function

    # WHEN each module's bytecode is read beside it
    faults = _bytecode_faults(package)

    # THEN every one, the function's own and its dependencies', has this Python's (3.12, the
    # runtime's) checked-hash bytecode of exactly that source
    assert faults == {}
    assert sys.version_info[:2] == (3, 12)
    # AND the package is the one SAM's Python builder made: the code and its dependencies
    assert (package / "classifier" / "app.py").is_file()
    assert (package / "pydantic" / "__init__.py").is_file()
    # AND nothing a local run left in the source tree, nor the Makefile, is shipped
    assert not (package / "Makefile").exists()


def test_the_compiled_extensions_are_for_the_template_architecture() -> None:
    # GIVEN the classifier's package (template Globals: Architectures [arm64])
    # WHEN its one compiled dependency is looked for
    extensions = sorted(
        path.name for path in (BUILD / "ClassifierFunction" / "pydantic_core").glob("*.so")
    )

    # THEN it is pydantic-core built for arm64 Linux and CPython 3.12
    assert len(extensions) == 1
    assert extensions[0].endswith(".cpython-312-aarch64-linux-gnu.so")


def test_a_cold_start_from_the_unzipped_package_compiles_none_of_its_modules(
    tmp_path: Path,
) -> None:
    # GIVEN the pure-Python part of the classifier's package, copied as an unzip would leave
    # it: every file dated 1980, read-only, and no bytecode may be written
    source = BUILD / "ClassifierFunction"
    task_root = tmp_path / "task"
    task_root.mkdir()
    for entry in ("tweetlens_naming", "botocore", "urllib3", "jmespath", "dateutil", "six.py"):
        copy = shutil.copytree if (source / entry).is_dir() else shutil.copy2
        copy(source / entry, task_root / entry)
    shutil.copy2(source / "typing_extensions.py", task_root / "typing_extensions.py")
    shutil.copytree(source / "__pycache__", task_root / "__pycache__")
    for path in task_root.rglob("*"):
        os.utime(path, (ZIP_EPOCH, ZIP_EPOCH))
        path.chmod(0o555 if path.is_dir() else 0o444)

    # WHEN a fresh interpreter with only the standard library (-S) puts it first on its path,
    # records every module compiled from source, and imports them
    probe = f"""
import importlib.machinery, json, sys
sys.path.insert(0, {str(task_root)!r})
compiled = []
original = importlib.machinery.SourceFileLoader.source_to_code
def spy(self, data, path, *args, **kwargs):
    compiled.append(path)
    return original(self, data, path, *args, **kwargs)
importlib.machinery.SourceFileLoader.source_to_code = spy
loaded = {{}}
for name in {list(PURE_MODULES)!r}:
    loaded[name] = __import__(name, fromlist=["_"]).__file__
print(json.dumps({{"compiled": compiled, "loaded": loaded}}))
"""
    completed = subprocess.run(
        [sys.executable, "-S", "-c", probe],
        cwd=tmp_path,
        env={"PATH": os.environ.get("PATH", ""), "PYTHONDONTWRITEBYTECODE": "1"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    result = json.loads(completed.stdout)

    # THEN each module came from the package, and none of the package was compiled: all ran
    # from the bytecode shipped with it
    loaded = {name: Path(file).is_relative_to(task_root) for name, file in result["loaded"].items()}
    assert loaded == dict.fromkeys(PURE_MODULES, True)
    assert [path for path in result["compiled"] if Path(path).is_relative_to(task_root)] == []
