"""The local asynchronous mode's RequestTTLSeconds and InvocationTimeoutSeconds, in process.

The API's smallest TTL is 60 s, so the queue's clock is moved instead of waited on: a request
is queued behind one whose scoring is held, the clock passes its TTL, the hold is released.
The timeout runs on real time (the smallest is 1 s).  The queue, the scoring threads, the S3
objects and the topic files are the server's own (`async_inference.py`); the HTTP side of the
same mode (boto3, validation, notifications) is in `test_steps_serve_runtime.py`.
"""

from __future__ import annotations

import asyncio
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from pipeline_steps.serve.async_inference import AsyncConfig, AsyncInference
from pipeline_steps.serve.async_notifications import read_topic
from pipeline_steps.serve.settings import ConfigError, Settings


class HeldScoring:
    """A score function: answers at once, except for the ids it is told to hold until released."""

    def __init__(self, held: set[str]):
        self.held = held
        self.release = threading.Event()
        self.started = threading.Event()
        self.scored: list[str] = []

    def __call__(
        self, body: bytes, content_type: str | None, accept: str | None, inference_id: str, contrib: bool
    ) -> tuple[bytes, str, int]:
        self.scored.append(inference_id)
        if inference_id in self.held:
            self.started.set()
            assert self.release.wait(10), "the test never released the scoring"
        return b'{"predictions": [{"probability": 0.25}]}', "application/json", 1


def _config(root: Path) -> AsyncConfig:
    return AsyncConfig(
        s3_root=root / "s3",
        output_path="s3://local-capture/async/ep/output",
        failure_path="s3://local-capture/async/ep/failure",
        endpoint_name="ep",
        region="eu-west-1",
        success_topic=root / "sns" / "success.jsonl",
        error_topic=root / "sns" / "error.jsonl",
    )


def _headers(inference_id: str, **extra: str) -> dict[str, str]:
    return {
        "x-amzn-sagemaker-inference-id": inference_id,
        "x-amzn-sagemaker-content-type": "application/json",
        **{f"x-amzn-sagemaker-{name.lower()}": value for name, value in extra.items()},
    }


def _object(root: Path, uri: str) -> Path:
    return root / "s3" / uri.removeprefix("s3://")


def test_a_request_queued_past_its_ttl_is_not_scored_and_fails(tmp_path):
    config = _config(tmp_path)
    score = HeldScoring(held={"blocker"})
    now = [1_000.0]

    async def scenario() -> dict[str, str]:
        with ThreadPoolExecutor(2) as pool:
            jobs = AsyncInference(config, score, pool, clock=lambda: now[0])
            jobs.start()
            jobs.submit(_headers("blocker"), b"{}", False)
            late = jobs.submit(_headers("late", RequestTTLSeconds="60"), b"{}", False)
            patient = jobs.submit(_headers("patient", RequestTTLSeconds="21600"), b"{}", False)
            assert late.ttl == 60 and patient.ttl == 21600
            while not score.started.is_set():  # the blocker holds the queue
                await asyncio.sleep(0.01)
            now[0] += 61  # 61 s pass on the queue's clock while it is blocked
            score.release.set()
            await jobs.stop()
            assert (jobs.done, jobs.failed, jobs.expired) == (2, 1, 1)
            return {"output": late.output, "failure": late.failure}

    late = asyncio.run(scenario())
    assert score.scored == ["blocker", "patient"]  # the expired request never reached the model
    assert not _object(tmp_path, late["output"]).exists()
    refused = json.loads(_object(tmp_path, late["failure"]).read_bytes())
    assert "expired" in refused["error"] and "RequestTTLSeconds (60 s)" in refused["error"]
    [failed] = read_topic(config.error_topic or Path())
    assert failed["inferenceId"] == "late" and failed["invocationStatus"] == "Failed"
    assert failed["failureReason"].startswith("ClientError: Request late expired: it waited 61 s")
    assert failed["responseParameters"]["failureLocation"] == late["failure"]
    assert [m["inferenceId"] for m in read_topic(config.success_topic or Path())] == ["blocker", "patient"]


def test_a_scoring_past_its_invocation_timeout_fails_and_its_late_answer_is_dropped(tmp_path):
    config = _config(tmp_path)
    score = HeldScoring(held={"slow"})

    async def scenario() -> dict[str, str]:
        with ThreadPoolExecutor(2) as pool:
            jobs = AsyncInference(config, score, pool)
            jobs.start()
            slow = jobs.submit(_headers("slow", InvocationTimeoutSeconds="1"), b"{}", False)
            jobs.submit(_headers("next"), b"{}", False)
            failure = _object(tmp_path, slow.failure)
            for _ in range(400):  # the timeout fails it after 1 s, while its scoring still runs
                if failure.exists():
                    break
                await asyncio.sleep(0.01)
            assert failure.exists() and not score.release.is_set()
            score.release.set()  # the scoring now answers: too late
            await jobs.stop()
            assert (jobs.done, jobs.failed) == (1, 1)
            return {"output": slow.output, "failure": slow.failure}

    slow = asyncio.run(scenario())
    assert score.scored == ["slow", "next"]  # the queue went on after the timeout
    assert not _object(tmp_path, slow["output"]).exists()
    assert (
        "InvocationTimeoutSeconds (1 s)"
        in json.loads(_object(tmp_path, slow["failure"]).read_bytes())["error"]
    )
    [failed] = read_topic(config.error_topic or Path())
    assert failed["inferenceId"] == "slow" and "timed out" in failed["failureReason"]
    assert [m["inferenceId"] for m in read_topic(config.success_topic or Path())] == ["next"]


def test_topic_settings_need_the_async_mode_and_a_file(tmp_path):
    base = {"SERVE_ASYNC_S3_ROOT": str(tmp_path), "SERVE_ASYNC_OUTPUT": "s3://local-capture/async/out"}
    topic = tmp_path / "sns" / "success.jsonl"
    settings = Settings.from_env({**base, "SERVE_ASYNC_SUCCESS_TOPIC": str(topic), "AWS_REGION": "eu-west-1"})
    assert settings.async_success_topic == topic and settings.async_error_topic is None
    assert settings.region == "eu-west-1"
    with pytest.raises(
        ConfigError, match="SERVE_ASYNC_SUCCESS_TOPIC and _ERROR_TOPIC need SERVE_ASYNC_OUTPUT"
    ):
        Settings.from_env({"SERVE_ASYNC_ERROR_TOPIC": str(topic)})
    with pytest.raises(ConfigError, match="SERVE_ASYNC_ERROR_TOPIC=.* is a folder"):
        Settings.from_env({**base, "SERVE_ASYNC_ERROR_TOPIC": str(tmp_path)})
