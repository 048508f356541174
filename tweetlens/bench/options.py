"""The bench's options, validated once; each way to get them wrong has its own named error."""

from __future__ import annotations

import math
import re
from typing import Final

from pydantic import BaseModel, ConfigDict

# An SQS event source mapping's MaximumConcurrency is 2 to 1000 (Lambda's API and the template's
# ClassifierMaxConcurrency both refuse 1).
MIN_MAPPING_CONCURRENCY: Final = 2
MAX_MAPPING_CONCURRENCY: Final = 1000
MAX_IMAGES: Final = 100_000
# Latencies past DetectLabels' 10 s task timeout would only measure timeouts.
MAX_LATENCY_MS: Final = 10_000


class BenchOptionError(ValueError):
    """A bench option is out of range; subclasses name which."""


class ImageCountError(BenchOptionError):
    pass


class DuplicateShareError(BenchOptionError):
    pass


class LatencyError(BenchOptionError):
    pass


class QuotaError(BenchOptionError):
    pass


class ConcurrencyError(BenchOptionError):
    pass


class DesignChoiceError(BenchOptionError):
    pass


class TemplateParameterError(BenchOptionError):
    pass


# Parameters the bench sets itself on the project template, per design and run.
BENCH_PARAMETERS: Final = frozenset(
    {
        "WorkflowType",
        "ClassifierMaxConcurrency",
        "AllowedImageHosts",
        "ImageHostAllowedNetworks",
        # The quota (--quota): STANDARD's starts are paced to it.
        "DetectLabelsRate",
    }
)
_PARAMETER_NAME: Final = re.compile(r"^[A-Za-z0-9]{1,255}$")


DESIGNS: Final = ("baseline", "standard", "express")


class BenchOptions(BaseModel):
    """What one bench run does. Build with ``BenchOptions.checked(...)``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    images: int = 60
    duplicate_share: float = 0.25
    fetch_latency_ms: int = 150
    detect_labels_latency_ms: int = 300
    # None: no DetectLabels quota at all (measures the local cloud itself, not the limiter).
    quota_tps: float | None = 5.0
    # ClassifierMaxConcurrency. One value: STANDARD and EXPRESS run with it. Several: a sweep,
    # EXPRESS runs once per value and STANDARD with the largest.
    concurrency: tuple[int, ...] = (5,)
    designs: tuple[str, ...] = DESIGNS
    # Extra parameters of the project template (STANDARD and EXPRESS), e.g. a logging level.
    parameters: dict[str, str] = {}
    seed: int = 2026
    # Seconds each design may take to settle before the bench gives up on it.
    design_timeout: float = 600.0

    @property
    def is_sweep(self) -> bool:
        return len(self.concurrency) > 1

    @classmethod
    def checked(cls, **values: object) -> BenchOptions:
        options = cls.model_validate(values)
        options.validate_ranges()
        return options

    def validate_ranges(self) -> None:
        if not 1 <= self.images <= MAX_IMAGES:
            raise ImageCountError(f"--images must be 1 to {MAX_IMAGES}, got {self.images}")
        if not (math.isfinite(self.duplicate_share) and 0 <= self.duplicate_share <= 10):
            raise DuplicateShareError(
                f"--duplicates must be 0 to 10 duplicate posts per unique image, "
                f"got {self.duplicate_share}"
            )
        for name, value in (
            ("--fetch-latency-ms", self.fetch_latency_ms),
            ("--detect-latency-ms", self.detect_labels_latency_ms),
        ):
            if not 0 <= value <= MAX_LATENCY_MS:
                raise LatencyError(f"{name} must be 0 to {MAX_LATENCY_MS} ms, got {value}")
        if self.quota_tps is not None and not (
            math.isfinite(self.quota_tps) and 0 < self.quota_tps <= 10_000
        ):
            raise QuotaError(
                f"--quota must be a positive number of requests/s up to 10000, or none; "
                f"got {self.quota_tps}"
            )
        if not self.concurrency:
            raise ConcurrencyError("--concurrency needs at least one value")
        for value in self.concurrency:
            if not MIN_MAPPING_CONCURRENCY <= value <= MAX_MAPPING_CONCURRENCY:
                raise ConcurrencyError(
                    f"--concurrency values must be {MIN_MAPPING_CONCURRENCY} to "
                    f"{MAX_MAPPING_CONCURRENCY}: an SQS event source mapping's "
                    f"MaximumConcurrency cannot be lower or higher; got {value}"
                )
        if len(set(self.concurrency)) != len(self.concurrency):
            raise ConcurrencyError(f"--concurrency repeats a value: {list(self.concurrency)}")
        unknown = [design for design in self.designs if design not in DESIGNS]
        if unknown or not self.designs or len(set(self.designs)) != len(self.designs):
            raise DesignChoiceError(
                f"--designs must be distinct names among {', '.join(DESIGNS)}, "
                f"got {', '.join(self.designs) or 'none'}"
            )
        if self.is_sweep and "express" not in self.designs:
            raise DesignChoiceError(
                "several --concurrency values sweep the express design: include it in --designs"
            )
        for name in self.parameters:
            if not _PARAMETER_NAME.match(name):
                raise TemplateParameterError(f"--param {name!r} is not a template parameter name")
            if name in BENCH_PARAMETERS:
                raise TemplateParameterError(
                    f"--param {name} is set by the bench itself (use its own option)"
                )
        if not (math.isfinite(self.design_timeout) and self.design_timeout > 0):
            raise BenchOptionError(f"--timeout must be positive, got {self.design_timeout}")
