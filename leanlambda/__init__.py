"""leanlambda: generate, package, measure and review lean AWS Lambda functions in Python."""

__version__ = "0.1.0"
