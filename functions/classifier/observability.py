"""The function's Logger, Tracer and Metrics: one instance each, shared by its modules.

Service name and namespace come from POWERTOOLS_SERVICE_NAME / POWERTOOLS_METRICS_NAMESPACE.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics

from common.tracing import make_tracer

logger = Logger()
# Without the X-Ray SDK's import cost where tracing is off (see common.tracing).
tracer = make_tracer()
metrics = Metrics()
