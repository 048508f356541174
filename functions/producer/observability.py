"""The producer's Powertools logger, tracer and metrics, shared by its modules."""

from aws_lambda_powertools import Logger, Metrics

from common.tracing import make_tracer

logger = Logger()
# Without the X-Ray SDK's import cost where tracing is off (see common.tracing).
tracer = make_tracer()
metrics = Metrics()
