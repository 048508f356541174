"""Bench options: every way to get one wrong is refused with its own named error."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from tweetlens.bench.options import (
    BenchOptionError,
    BenchOptions,
    ConcurrencyError,
    DesignChoiceError,
    DuplicateShareError,
    ImageCountError,
    LatencyError,
    QuotaError,
    TemplateParameterError,
)
from tweetlens.cli import cli
from tweetlens.cli.bench import parse_quota


def test_defaults_are_valid() -> None:
    # GIVEN no options / WHEN checked / THEN the documented defaults
    options = BenchOptions.checked()
    assert (options.images, options.duplicate_share, options.quota_tps) == (60, 0.25, 5.0)
    assert (options.fetch_latency_ms, options.detect_labels_latency_ms) == (150, 300)
    assert options.concurrency == (5,)
    assert options.designs == ("baseline", "standard", "express")
    assert options.is_sweep is False


@pytest.mark.parametrize(
    ("values", "error", "message"),
    [
        ({"images": 0}, ImageCountError, "--images must be 1 to 100000, got 0"),
        ({"images": 100_001}, ImageCountError, "--images must be 1 to 100000, got 100001"),
        ({"duplicate_share": -0.1}, DuplicateShareError, "got -0.1"),
        ({"duplicate_share": float("nan")}, DuplicateShareError, "got nan"),
        ({"duplicate_share": 11.0}, DuplicateShareError, "got 11.0"),
        ({"fetch_latency_ms": -1}, LatencyError, "--fetch-latency-ms must be 0 to 10000 ms"),
        ({"detect_labels_latency_ms": 10_001}, LatencyError, "--detect-latency-ms must be"),
        ({"quota_tps": 0.0}, QuotaError, "--quota must be a positive number"),
        ({"quota_tps": float("inf")}, QuotaError, "--quota must be a positive number"),
        ({"concurrency": (1,)}, ConcurrencyError, "MaximumConcurrency cannot be lower"),
        ({"concurrency": (1001,)}, ConcurrencyError, "got 1001"),
        ({"concurrency": ()}, ConcurrencyError, "at least one value"),
        ({"concurrency": (2, 5, 2)}, ConcurrencyError, "repeats a value"),
        ({"designs": ("fast",)}, DesignChoiceError, "got fast"),
        ({"designs": ()}, DesignChoiceError, "got none"),
        ({"designs": ("baseline", "baseline")}, DesignChoiceError, "distinct names"),
        (
            {"designs": ("baseline", "standard"), "concurrency": (2, 5)},
            DesignChoiceError,
            "include it in --designs",
        ),
        ({"design_timeout": 0.0}, BenchOptionError, "--timeout must be positive"),
        ({"parameters": {"Bad-Name": "x"}}, TemplateParameterError, "not a template parameter"),
        ({"parameters": {"WorkflowType": "EXPRESS"}}, TemplateParameterError, "set by the bench"),
        ({"parameters": {"DetectLabelsRate": "50"}}, TemplateParameterError, "set by the bench"),
    ],
)
def test_a_bad_option_gets_its_named_error(
    values: dict[str, object], error: type[BenchOptionError], message: str
) -> None:
    # GIVEN one option out of range / WHEN the options are checked
    with pytest.raises(error) as raised:
        BenchOptions.checked(**values)
    # THEN its named error says which option and why
    assert message in str(raised.value)


def test_no_quota_is_none() -> None:
    # GIVEN --quota none (the local cloud measured without the limiter) / WHEN checked
    options = BenchOptions.checked(quota_tps=None)
    # THEN it is accepted as no quota
    assert options.quota_tps is None


@pytest.mark.parametrize(("text", "expected"), [("none", None), ("NONE", None), ("7.5", 7.5)])
def test_the_quota_option_reads_a_rate_or_none(text: str, expected: float | None) -> None:
    # GIVEN --quota as typed / WHEN parsed / THEN a rate, or None for no quota
    assert parse_quota(text) == expected


def test_a_sweep_is_several_concurrencies() -> None:
    options = BenchOptions.checked(concurrency=(2, 5, 10))
    assert options.is_sweep is True


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--images", "0"], "Error: ImageCountError: --images must be 1 to 100000, got 0"),
        (["--concurrency", "1,2,5,10"], "Error: ConcurrencyError: --concurrency values"),
        (["--concurrency", "2,five"], "Error: ConcurrencyError: --concurrency takes integers"),
        (["--quota", "-5"], "Error: QuotaError: --quota must be a positive number"),
        (["--quota", "unlimited"], "Error: QuotaError: --quota takes requests/s (e.g. 5) or none"),
        (["--designs", "baseline,lambda"], "Error: DesignChoiceError: --designs must be"),
        (["--duplicates", "-1"], "Error: DuplicateShareError:"),
        (["--fetch-latency-ms", "-3"], "Error: LatencyError: --fetch-latency-ms"),
        (["--param", "Stage"], "Error: TemplateParameterError: --param takes KEY=VALUE"),
        (["--param", "ClassifierMaxConcurrency=9"], "Error: TemplateParameterError: --param"),
    ],
)
def test_the_command_refuses_bad_options_before_starting_anything(
    args: list[str], expected: str
) -> None:
    # GIVEN a bad option on the command line
    runner = CliRunner(mix_stderr=False)
    # WHEN `tweetlens bench` runs (no socket is allowed here: nothing may start)
    result = runner.invoke(cli, ["bench", *args], prog_name="tweetlens")
    # THEN it is a usage error (exit 2) naming the error, and no report is written
    assert result.exit_code == 2
    assert expected in result.stderr
