"""The producer's Powertools logger, tracer and metrics, shared by its modules."""

from aws_lambda_powertools import Logger, Metrics, Tracer

logger = Logger()
tracer = Tracer()
metrics = Metrics()
