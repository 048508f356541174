"""ExecutionCloserFunction: each ClassifyImage execution that fails ends in one dead letter."""
