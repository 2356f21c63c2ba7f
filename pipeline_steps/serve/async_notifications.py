"""The local stand-in for the async endpoint's SNS topics: one JSON line per finished request.

On SageMaker, an asynchronous endpoint configured with a SuccessTopic and an ErrorTopic
publishes one JSON message per request to one of them (the `InferenceResult` event).  Locally
each topic is a file: every message is appended as one line, in a single `write` on a file
opened with O_APPEND, so the server's workers can share a topic file without tearing lines.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import orjson

from pipeline_steps.serve.capture import read_records

COMPLETED = "Completed"
FAILED = "Failed"


def iso_time(epoch: float) -> str:
    """SageMaker's notification timestamps: UTC, milliseconds, a trailing Z."""
    whole = int(epoch)
    millis = int((epoch - whole) * 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + f".{millis:03d}Z"


def inference_result(
    *,
    inference_id: str,
    status: str,
    region: str,
    received: float,
    request: dict[str, str],
    response: dict[str, str],
    failure_reason: str | None = None,
) -> dict[str, Any]:
    """The message SageMaker publishes when a request is answered (Completed) or not (Failed).

    `request` holds requestParameters (contentType, accept, customAttributes, endpointName,
    inputLocation: those the caller gave), `response` responseParameters (contentType and
    outputLocation, or failureLocation)."""
    message: dict[str, Any] = {
        "awsRegion": region,
        "eventTime": iso_time(time.time()),
        "receivedTime": iso_time(received),
        "invocationStatus": status,
    }
    if failure_reason is not None:
        message["failureReason"] = failure_reason
    message.update(
        {
            "requestParameters": request,
            "responseParameters": response,
            "inferenceId": inference_id,
            "eventVersion": "1.0",
            "eventSource": "aws:sagemaker",
            "eventName": "InferenceResult",
        }
    )
    return message


class TopicFile:
    """A topic: appends each message as one JSON line (one O_APPEND write: whole or nothing)."""

    def __init__(self, path: Path):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)

    def publish(self, message: dict[str, Any]) -> None:
        line = orjson.dumps(message) + b"\n"
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            written = os.write(fd, line)
        finally:
            os.close(fd)
        if written != len(line):  # a full disk: say so rather than leave a torn line unnoticed
            raise OSError(f"notification to {self.path} cut short ({written} of {len(line)} bytes)")


def read_topic(path: Path) -> list[dict[str, Any]]:
    """The messages published to a topic file, oldest first (empty when none yet)."""
    return list(read_records([path])) if path.exists() else []
