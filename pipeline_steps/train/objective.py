"""The line training prints last: the tuning objective, read from the log by a regex.

Shared by the train step (which prints it) and the pipeline definition (whose tuning step
declares the regex), so the two cannot drift apart.
"""

PREFIX = "final validation:"


def line(metric: str, value: float) -> str:
    return f"{PREFIX}{metric}={value}"


def regex(metric: str) -> str:
    return PREFIX.replace(".", r"\.") + metric + r"=([0-9.eE+-]+)"


def metric_name(metric: str) -> str:
    """The name SageMaker shows for the objective, e.g. validation:auc."""
    return f"validation:{metric}"
