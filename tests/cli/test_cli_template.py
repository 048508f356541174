"""Which template the commands deploy: --template, else ./template.yaml; never the install's."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.cli.cli_testkit import REPO_ROOT, run_cli
from tweetlens.project import TemplateNotFound, find_template, is_tweetlens_template

SAMPLE_TEMPLATE = REPO_ROOT / "tests" / "localcloud" / "sample_app" / "template.yaml"


@pytest.mark.parametrize("command", ["up", "demo", "chaos"])
def test_without_a_template_the_command_says_where_it_looked(
    command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a directory without template.yaml
    monkeypatch.chdir(tmp_path)
    # WHEN a command that deploys runs there without --template
    result = run_cli(CliRunner(), command)
    # THEN it stops before deploying anything, naming the directory and the way out
    assert result.exit_code == 2
    assert f"no template.yaml in {tmp_path}" in " ".join(result.output.split())
    assert "pass --template PATH" in result.output


def test_the_current_directory_template_is_the_default(tmp_path: Path) -> None:
    # GIVEN a project directory with its template
    (tmp_path / "template.yaml").write_text("Resources: {}\n", encoding="utf-8")
    # WHEN no template is given / THEN that one is used
    assert find_template(None, cwd=tmp_path) == tmp_path / "template.yaml"


def test_a_given_template_wins(tmp_path: Path) -> None:
    # GIVEN a template given by path and none in the directory
    # WHEN it is looked up / THEN the given one is used as it is
    assert find_template(SAMPLE_TEMPLATE, cwd=tmp_path) == SAMPLE_TEMPLATE


def test_no_template_anywhere_is_refused(tmp_path: Path) -> None:
    # GIVEN an empty directory / WHEN the template is looked up / THEN it is a clear error
    with pytest.raises(TemplateNotFound, match="run from the directory of a tweetlens project"):
        find_template(None, cwd=tmp_path)


@pytest.mark.parametrize(
    ("template", "expected"),
    [(REPO_ROOT / "template.yaml", True), (SAMPLE_TEMPLATE, False)],
)
def test_tweetlens_template_is_known_by_its_parameters(template: Path, expected: bool) -> None:
    # GIVEN tweetlens's template or another SAM app's
    # WHEN it is asked whether it takes the replay and image host
    # THEN only tweetlens's does, wherever it lives
    assert is_tweetlens_template(template) is expected


def test_an_unreadable_template_is_not_tweetlens(tmp_path: Path) -> None:
    # GIVEN a file that is no template / WHEN asked / THEN it is not tweetlens's
    broken = tmp_path / "template.yaml"
    broken.write_text("[not, a, template", encoding="utf-8")
    assert is_tweetlens_template(broken) is False
