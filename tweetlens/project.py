"""Which SAM template the commands run: ``--template``, else ``template.yaml`` where you are.

The tooling is installed like any package, so it cannot assume a source checkout around its
own files: the template (and the ``functions/`` its ``CodeUri`` names) is the project in the
current directory, as with ``sam build``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

import yaml

TEMPLATE_NAME: Final = "template.yaml"
# Parameters only tweetlens's template declares: with them the commands replay posts and
# serve the loopback image host (see ``tweetlens.pipeline``).
_TWEETLENS_PARAMETERS: Final = frozenset({"PostSource", "ReplayUri", "AllowedImageHosts"})


class TemplateNotFound(Exception):
    """No template was given and there is none in the current directory."""


def find_template(given: Path | None = None, cwd: Path | None = None) -> Path:
    """``given`` if set, else ``template.yaml`` in ``cwd`` (default: the current directory)."""
    if given is not None:
        return given
    here = cwd if cwd is not None else Path.cwd()
    candidate = here / TEMPLATE_NAME
    if not candidate.is_file():
        raise TemplateNotFound(
            f"no {TEMPLATE_NAME} in {here}: run from the directory of a tweetlens project "
            "(its template.yaml and functions/), or pass --template PATH"
        )
    return candidate


def is_tweetlens_template(path: Path) -> bool:
    """Whether ``path`` is tweetlens's own template (it takes the replay and image host)."""
    # Imported here: the local cloud's package loads the emulator (seconds), which `invoke`
    # through a running cloud never needs.
    from tweetlens.localcloud import LocalCloudError, load_template  # noqa: PLC0415

    try:
        template = load_template(path)
    except (LocalCloudError, yaml.YAMLError):
        return False
    parameters = template.get("Parameters") or {}
    return isinstance(parameters, dict) and set(parameters) >= _TWEETLENS_PARAMETERS


def parameter_default(path: Path, name: str) -> str | None:
    """The ``Default`` the template declares for parameter ``name``; None when it has none."""
    from tweetlens.localcloud import load_template  # noqa: PLC0415 - see is_tweetlens_template

    parameters = load_template(path).get("Parameters") or {}
    declared = parameters.get(name) if isinstance(parameters, dict) else None
    if not isinstance(declared, dict) or "Default" not in declared:
        return None
    return str(declared["Default"])
