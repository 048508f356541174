"""The three designs the bench compares, each a SAM application deployed in the local cloud.

* ``baseline`` — the seed's original design (``bench/baseline/template.yaml``): one scheduled
  consumer draining a queue serially. The bench fires its schedule on demand, again each time
  the consumer returns with work left, as EventBridge would every minute.
* ``standard`` — the project's ``template.yaml`` with ``WorkflowType=STANDARD``.
* ``express`` — the same with ``WorkflowType=EXPRESS``. What EXPRESS does is the template's
  and the local cloud's business: nothing here changes when the classifier starts Express
  executions synchronously.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from tweetlens.imageserver import ImageServer

PACKAGE_DIR: Final = Path(__file__).resolve().parent
BASELINE_TEMPLATE: Final = PACKAGE_DIR / "baseline" / "template.yaml"
PROJECT_TEMPLATE: Final = PACKAGE_DIR.parent.parent / "template.yaml"


@dataclass(frozen=True)
class Design:
    name: str
    title: str
    template: Path
    # Logical ids in the deployed stack.
    queue: str
    results_table: str
    # The result item's URL attribute, and which items are finished results.
    url_attribute: str
    result_filter: tuple[tuple[str, str], ...]
    state_machine: str | None
    # The scheduled function the bench fires (the baseline), or None when queues are polled.
    scheduled_consumer: str | None
    workflow_type: str | None
    # Functions the workload invokes: started before it (like provisioned concurrency), so the
    # bench measures the steady state and not a few seconds of cold starts on 2 cores.
    functions: tuple[str, ...]

    def parameters(
        self,
        images: ImageServer,
        concurrency: int,
        extra: Mapping[str, str],
        *,
        quota_tps: float | None,
    ) -> dict[str, str]:
        """Template parameters: the local image host is allowed; the concurrency applied;
        ``extra`` (the project template's other parameters) for STANDARD and EXPRESS; the
        run's DetectLabels quota as the rate STANDARD paces its starts to (0: no quota, so
        no pacing), as a deployment sets it to its account's quota."""
        if self.workflow_type is None:
            return {"AllowedImageHosts": images.host}
        return {
            # Production logging (INFO, not dev's DEBUG): the Logs bill the bench prices.
            "Stage": "prod",
            **extra,
            "WorkflowType": self.workflow_type,
            "ClassifierMaxConcurrency": str(concurrency),
            "DetectLabelsRate": _rate_text(quota_tps),
            "AllowedImageHosts": images.host,
            "ImageHostAllowedNetworks": images.allowed_network,
            "ScheduleEnabled": "false",
        }


def _rate_text(quota_tps: float | None) -> str:
    """The quota as the template's Number: exact, "0" for none (STANDARD starts unpaced)."""
    if quota_tps is None:
        return "0"
    return str(int(quota_tps)) if quota_tps.is_integer() else repr(quota_tps)


BASELINE: Final = Design(
    name="baseline",
    title="baseline: one scheduled serial consumer (the seed's design)",
    template=BASELINE_TEMPLATE,
    queue="WorkQueue",
    results_table="ResultsTable",
    url_attribute="url",
    result_filter=(),
    state_machine=None,
    scheduled_consumer="ConsumerFunction",
    workflow_type=None,
    functions=("ConsumerFunction",),
)


def _workflow(workflow_type: str) -> Design:
    return Design(
        name=workflow_type.lower(),
        title=f"{workflow_type}: classifier + ClassifyImage ({workflow_type} workflow)",
        template=PROJECT_TEMPLATE,
        queue="CatsQueue",
        results_table="ResultsTable",
        url_attribute="pk",
        result_filter=(("sk", "RESULT"), ("status", "DONE")),
        state_machine="ClassifyImageStateMachine",
        scheduled_consumer=None,
        workflow_type=workflow_type,
        functions=("ClassifierFunction", "FetchImageFunction", "StoreResultFunction"),
    )


STANDARD: Final = _workflow("STANDARD")
EXPRESS: Final = _workflow("EXPRESS")
DESIGNS: Final = {design.name: design for design in (BASELINE, STANDARD, EXPRESS)}
