"""`tweetlens invoke` through a running cloud must not load the emulator (seconds of imports)."""

from __future__ import annotations

import subprocess
import sys

from tests.cli.cli_testkit import REPO_ROOT


def test_invoke_command_module_loads_neither_moto_nor_the_local_cloud() -> None:
    # GIVEN a fresh interpreter
    probe = (
        "import sys, tweetlens.cli.invoke, tweetlens.cli.common; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('moto', 'samtranslator', "
        "'rich') or m.startswith('tweetlens.localcloud')))"
    )

    # WHEN the invoke command's module (and the options it shares) is imported
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )

    # THEN none of the emulator's modules were loaded: they come only with a fresh cloud
    assert result.stdout.strip() == "[]"
