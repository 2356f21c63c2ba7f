"""A local asynchronous mode: SageMaker Runtime's InvokeEndpointAsync against this server.

On SageMaker, asynchronous inference is the platform's: it queues the request, calls the
container's `/invocations` and puts the answer in S3.  Locally the server plays that part, so
`boto3.client("sagemaker-runtime", endpoint_url=...).invoke_endpoint_async(EndpointName=...,
InputLocation="s3://...")` works against it unchanged:

* `POST /endpoints/<name>/async-invocations` with the input in `X-Amzn-SageMaker-InputLocation`
  (an object of the local S3) or in the body; 202 with `{"InferenceId"}` and the
  `X-Amzn-SageMaker-OutputLocation` / `-FailureLocation` headers, before any scoring;
* a bounded queue per worker, scored in the background in arrival order (a full queue is a 503
  `ServiceUnavailable`, which boto3 retries); queued requests are finished on a graceful stop;
* the answer goes to `<output path>/[<S3OutputPathExtension>/]<InferenceId>.out` (or
  `Filename`), a refusal (bad input, missing object) to `<failure path>/<InferenceId>-error.out`
  with the error the model answered, as SageMaker names them.  Objects are written atomically;
* `RequestTTLSeconds` (60..21600, default 21600): a request that waited in the queue longer is
  not scored; it fails with the expiry as its reason.  `InvocationTimeoutSeconds` (1..3600,
  default 900): a scoring that takes longer fails with the timeout (its late answer is dropped);
* with topic files configured, one SageMaker `InferenceResult` message per request goes to the
  success or the error topic (`async_notifications.py`).
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path

import orjson

from pipeline_steps.common.atomic import write_bytes
from pipeline_steps.serve import payload
from pipeline_steps.serve.async_notifications import COMPLETED, FAILED, TopicFile, inference_result
from pipeline_steps.serve.errors import RequestError

log = logging.getLogger("serve.async")
S3_URI = re.compile(r"^s3://([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])/(.+)$")
# botocore's patterns for the two naming headers
PATH_EXTENSION = re.compile(r"^(?!s3:|https:)[a-zA-Z0-9!_.*'()/-]{1,512}$")
FILE_NAME = re.compile(r"^(?!.*\..*\.)[a-zA-Z0-9][a-zA-Z0-9-_\.]{0,31}$")
# botocore's ranges for the two integer headers, and SageMaker's defaults when they are absent
TTL_HEADER, TTL_RANGE, TTL_DEFAULT = "x-amzn-sagemaker-requestttlseconds", (60, 21600), 21600
TIMEOUT_HEADER, TIMEOUT_RANGE, TIMEOUT_DEFAULT = "x-amzn-sagemaker-invocationtimeoutseconds", (1, 3600), 900

# (body, content type, accept, inference id, contributions) -> (answer, its content type, rows)
Score = Callable[[bytes, str | None, str | None, str, bool], tuple[bytes, str, int]]
# what capture is offered on success: (input, input type, output, output type, event id, caller id)
Offer = Callable[[bytes, str, bytes, str, str, str | None], None]


class AsyncValidationError(Exception):
    """The request itself is invalid (SageMaker's 400 ValidationError); the message says why."""


@dataclass(frozen=True)
class AsyncConfig:
    s3_root: Path  # the local folder standing for S3: s3://bucket/key is <s3_root>/bucket/key
    output_path: str  # s3://bucket/prefix (the endpoint config's S3OutputPath)
    failure_path: str  # s3://bucket/prefix (S3FailurePath)
    max_queue: int = 1000
    endpoint_name: str = "local"
    region: str = "local"  # awsRegion in notifications
    success_topic: Path | None = None  # the NotificationConfig's SuccessTopic, as a local file
    error_topic: Path | None = None  # its ErrorTopic


@dataclass(frozen=True)
class Job:
    inference_id: str
    caller_id: str | None
    input_location: str | None
    body: bytes
    content_type: str | None
    accept: str | None
    contributions: bool
    output: str
    failure: str
    custom_attributes: str | None = None
    ttl: int = TTL_DEFAULT
    timeout: int = TIMEOUT_DEFAULT
    received: float = 0.0  # wall clock (epoch s): the notification's receivedTime
    queued_at: float = 0.0  # the queue's clock: what the TTL is measured on


def local_path(root: Path, uri: str) -> Path:
    """The local file of an s3:// URI; a URI that is not s3://bucket/key is a ValidationError."""
    match = S3_URI.match(uri)
    if not match or ".." in match.group(2).split("/") or match.group(2).startswith("/"):
        raise AsyncValidationError(f"InputLocation {uri[:200]!r} is not an s3://bucket/key URI")
    return root / match.group(1) / match.group(2)


def _seconds(headers: dict[str, str], header: str, field: str, bounds: tuple[int, int], default: int) -> int:
    """An integer header of the API; absent: SageMaker's default; else a ValidationError naming it."""
    raw = headers.get(header)
    if raw is None:
        return default
    lo, hi = bounds
    if not raw.strip().isdigit() or not lo <= int(raw) <= hi:
        raise AsyncValidationError(f"{field} {raw[:20]!r} must be an integer from {lo} to {hi} (seconds)")
    return int(raw)


class Claim:
    """Who settles a request whose scoring may outlive its InvocationTimeoutSeconds: the scoring
    thread (it writes the answer) or the consumer (it writes the timeout failure), never both."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._owner: str | None = None

    def take(self, owner: str) -> bool:
        with self._lock:
            if self._owner is None:
                self._owner = owner
            return self._owner == owner


class AsyncInference:
    def __init__(
        self,
        config: AsyncConfig,
        score: Score,
        pool: Executor,
        offer: Offer | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.config = config
        self.score = score
        self.pool = pool
        self.offer = offer
        self.clock = clock  # the queue's clock (TTL and timeout); a test may move it
        self.queue: asyncio.Queue[Job | None] = asyncio.Queue(config.max_queue)
        self.task: asyncio.Task[None] | None = None
        self.success_topic = TopicFile(config.success_topic) if config.success_topic else None
        self.error_topic = TopicFile(config.error_topic) if config.error_topic else None
        self.done = 0
        self.failed = 0
        self.expired = 0

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Finishes every queued request (a graceful stop loses none), then ends the consumer."""
        if self.task is not None:
            await self.queue.put(None)
            await self.task
            log.info(
                "async inference: %d answered, %d failed (%d expired)", self.done, self.failed, self.expired
            )

    def submit(self, headers: dict[str, str], body: bytes, contributions: bool) -> Job:
        """Validates and queues one request; raises AsyncValidationError, or QueueFull when full."""
        location = headers.get("x-amzn-sagemaker-inputlocation")
        if location is None and not body:
            raise AsyncValidationError("give the input in InputLocation (s3://bucket/key) or in the body")
        if location is not None:
            local_path(self.config.s3_root, location)
        extension = headers.get("x-amzn-sagemaker-s3outputpathextension")
        if extension is not None and not PATH_EXTENSION.match(extension):
            raise AsyncValidationError(f"S3OutputPathExtension {extension[:100]!r} is not a usable path")
        file_name = headers.get("x-amzn-sagemaker-filename")
        if file_name is not None and not FILE_NAME.match(file_name):
            raise AsyncValidationError(f"Filename {file_name[:100]!r} is not a usable file name")
        ttl = _seconds(headers, TTL_HEADER, "RequestTTLSeconds", TTL_RANGE, TTL_DEFAULT)
        timeout = _seconds(
            headers, TIMEOUT_HEADER, "InvocationTimeoutSeconds", TIMEOUT_RANGE, TIMEOUT_DEFAULT
        )
        caller_id = headers.get("x-amzn-sagemaker-inference-id")
        inference_id = caller_id or str(uuid.uuid4())
        suffix = f"/{extension.strip('/')}" if extension else ""
        job = Job(
            inference_id=inference_id,
            caller_id=caller_id,
            input_location=location,
            body=body,
            content_type=headers.get("x-amzn-sagemaker-content-type"),
            accept=headers.get("x-amzn-sagemaker-accept"),
            contributions=contributions,
            output=f"{self.config.output_path.rstrip('/')}{suffix}/{file_name or inference_id + '.out'}",
            failure=f"{self.config.failure_path.rstrip('/')}{suffix}/{inference_id}-error.out",
            custom_attributes=headers.get("x-amzn-sagemaker-custom-attributes"),
            ttl=ttl,
            timeout=timeout,
            received=time.time(),
            queued_at=self.clock(),
        )
        self.queue.put_nowait(job)  # asyncio.QueueFull when the backlog is at its bound
        return job

    async def _run(self) -> None:
        while (job := await self.queue.get()) is not None:
            try:
                answered = await self._handle(job)
            except Exception:  # one request's failure never stops the queue
                log.exception("async inference %s failed", job.inference_id)
                continue
            if answered is not None and self.offer is not None:  # capture, on the loop's thread
                data, out, kind = answered
                self.offer(data, job.content_type or "", out, kind, job.inference_id, job.caller_id)

    async def _handle(self, job: Job) -> tuple[bytes, bytes, str] | None:
        loop = asyncio.get_running_loop()
        waited = self.clock() - job.queued_at
        if waited > job.ttl:  # expired in the queue: not scored
            self.expired += 1
            reason = (
                f"Request {job.inference_id} expired: it waited {waited:.0f} s in the queue, "
                f"longer than its RequestTTLSeconds ({job.ttl} s)"
            )
            await loop.run_in_executor(self.pool, self._fail, job, reason, f"ClientError: {reason}")
            return None
        claim = Claim()
        scoring = loop.run_in_executor(self.pool, self._process, job, claim)
        try:
            return await asyncio.wait_for(asyncio.shield(scoring), job.timeout)
        except TimeoutError:
            if not claim.take("timeout"):  # the answer is being written as the time ran out
                return await scoring
            reason = (
                f"Request {job.inference_id} timed out: scoring took longer than its "
                f"InvocationTimeoutSeconds ({job.timeout} s)"
            )
            await loop.run_in_executor(self.pool, self._fail, job, reason, f"ClientError: {reason}")
            return None

    def _process(self, job: Job, claim: Claim) -> tuple[bytes, bytes, str] | None:
        """Runs in the scoring pool: read the input, score, write the answer or the failure."""
        root = self.config.s3_root
        data = job.body
        if job.input_location is not None:
            try:
                data = local_path(root, job.input_location).read_bytes()
            except OSError as err:  # the platform's failure, not the model's: no "from primary"
                message = f"cannot read InputLocation {job.input_location}: {err.strerror}"
                if claim.take("scoring"):
                    self._fail(job, message, f"ClientError: {message}")
                return None
        try:
            out, kind, rows = self.score(
                data, job.content_type, job.accept, job.inference_id, job.contributions
            )
        except RequestError as err:
            if claim.take("scoring"):
                original = payload.error_body(err.message).decode()
                reason = (
                    f"ClientError: Received client error ({err.status}) from primary with message "
                    f'"{original}".'
                )
                self._fail(job, err.message, reason)
            return None
        if not claim.take("scoring"):  # too late: the request already failed with the timeout
            log.info("async %s: answer dropped, it came after the invocation timeout", job.inference_id)
            return None
        write_bytes(local_path(root, job.output), out)
        self.done += 1
        log.info("async %s -> %s rows=%d", job.inference_id, job.output, rows)
        if self.success_topic is not None:
            response = {"contentType": kind, "outputLocation": job.output}
            self.success_topic.publish(self._message(job, COMPLETED, response))
        return data, out, kind

    def _fail(self, job: Job, message: str, reason: str) -> None:
        """The failure path: the error object at the failure location, then the error topic."""
        write_bytes(local_path(self.config.s3_root, job.failure), payload.error_body(message))
        self.failed += 1
        log.info("async %s -> %s error=%r", job.inference_id, job.failure, message[:200])
        if self.error_topic is not None:
            response = {"contentType": payload.JSON, "failureLocation": job.failure}
            self.error_topic.publish(self._message(job, FAILED, response, reason))

    def _message(
        self, job: Job, status: str, response: dict[str, str], reason: str | None = None
    ) -> dict[str, object]:
        given = {
            "accept": job.accept,
            "contentType": job.content_type,
            "customAttributes": job.custom_attributes,
            "endpointName": self.config.endpoint_name,
            "inputLocation": job.input_location,
        }
        return inference_result(
            inference_id=job.inference_id,
            status=status,
            region=self.config.region,
            received=job.received,
            request={k: v for k, v in given.items() if v is not None},
            response=response,
            failure_reason=reason,
        )


def accepted_body(job: Job) -> bytes:
    return orjson.dumps({"InferenceId": job.inference_id})
