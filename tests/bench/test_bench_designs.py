"""The template parameters each bench design deploys with."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tweetlens.bench.designs import BASELINE, EXPRESS, STANDARD
from tweetlens.imageserver import ImageServer


@pytest.fixture(scope="module")
def images() -> Iterator[ImageServer]:
    with ImageServer() as server:
        yield server


@pytest.mark.parametrize(
    ("quota_tps", "rate"),
    [(5.0, "5"), (2.5, "2.5"), (None, "0")],
    ids=["quota-5", "quota-2.5", "no-quota"],
)
def test_standard_paces_its_starts_to_the_runs_quota(
    images: ImageServer, quota_tps: float | None, rate: str
) -> None:
    # GIVEN a bench run with a DetectLabels quota (or none)
    # WHEN the STANDARD design's template parameters are made
    parameters = STANDARD.parameters(images, 5, {"ExpressLogLevel": "ALL"}, quota_tps=quota_tps)

    # THEN the classifier is told that quota as its start rate (0: nothing to pace to), next
    # to the concurrency it shares it among
    assert parameters == {
        "Stage": "prod",
        "ExpressLogLevel": "ALL",
        "WorkflowType": "STANDARD",
        "ClassifierMaxConcurrency": "5",
        "DetectLabelsRate": rate,
        "AllowedImageHosts": images.host,
        "ImageHostAllowedNetworks": images.allowed_network,
        "ScheduleEnabled": "false",
    }


def test_express_gets_the_same_rate_which_it_ignores(images: ImageServer) -> None:
    # GIVEN a run with quota 5/s
    # WHEN the EXPRESS design's parameters are made
    parameters = EXPRESS.parameters(images, 10, {}, quota_tps=5.0)

    # THEN it is deployed like STANDARD but for the workflow type and concurrency
    assert (parameters["WorkflowType"], parameters["ClassifierMaxConcurrency"]) == ("EXPRESS", "10")
    assert parameters["DetectLabelsRate"] == "5"


def test_the_baseline_has_no_rate_to_set(images: ImageServer) -> None:
    # GIVEN the seed's template, which has no such parameter
    # WHEN its parameters are made THEN only its image host is set
    assert BASELINE.parameters(images, 5, {}, quota_tps=5.0) == {"AllowedImageHosts": images.host}
