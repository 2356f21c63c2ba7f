"""The inference server's HTTP application: a raw ASGI app (no framework) under uvicorn.

Routes (GET routes also answer HEAD; every route answers OPTIONS with its Allow header):

* `GET /ping`, `GET /execution-parameters`, `POST /invocations`: SageMaker's container contract.
* `POST /endpoints/<name>/invocations`: the SageMaker Runtime API's InvokeEndpoint, so
  `boto3.client("sagemaker-runtime", endpoint_url=...)` works against this server unchanged.
  As on SageMaker, a client error from the model comes back as a 424 `ModelError` naming the
  original status and message (boto3 raises it as a ClientError), an unknown endpoint as a
  400 `ValidationError`.
* `POST /endpoints/<name>/async-invocations`: InvokeEndpointAsync, when the server has a local
  asynchronous mode (`async_inference.py`).

Small requests are scored on the event loop (tens of microseconds); larger ones in a thread, so
`/ping` never waits behind a big batch.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

import orjson

from pipeline_steps.serve import payload
from pipeline_steps.serve.async_inference import (
    AsyncConfig,
    AsyncInference,
    AsyncValidationError,
    accepted_body,
)
from pipeline_steps.serve.capture import CaptureWriter
from pipeline_steps.serve.errors import RequestError
from pipeline_steps.serve.event_ids import event_id
from pipeline_steps.serve.features import FeatureEncoder
from pipeline_steps.serve.predictor import Predictor
from pipeline_steps.serve.traffic import SUMMARY_S, Traffic

log = logging.getLogger("serve")
MB = 1024 * 1024
# Bodies above this are decoded and scored in a worker thread instead of on the event loop.
INLINE_BYTES = 32 * 1024
# A too-large body is read and dropped up to this many times the limit before the 413.
DRAIN_FACTOR = 4
# Logged (nginx's convention) when the client left before the response could be written.
CLIENT_GONE = 499
PING_BODY = b'{"status": "ok"}'
RUNTIME_ROUTE = re.compile(r"^/endpoints/([^/]+)/(invocations|async-invocations)$")
# SageMaker Runtime's InferenceId: 1 to 64 printable characters, not starting with a space.
INFERENCE_ID = re.compile(r"^[!-~][ -~]{0,63}$")
ROUTES = {"/ping": "GET", "/execution-parameters": "GET", "/invocations": "POST"}

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


@dataclass(frozen=True)
class Model:
    """What a worker scores with: the encoder, the predictor and the serving settings."""

    encoder: FeatureEncoder
    predictor: Predictor
    threshold: float
    version: str
    max_payload_mb: int
    workers: int
    endpoint_name: str
    variant_name: str
    access_log: bool


class App:
    def __init__(
        self,
        model: Model,
        capture: Callable[[], CaptureWriter | None] | None = None,
        async_config: AsyncConfig | None = None,
    ):
        self.model = model
        self._capture_factory = capture
        self.capture: CaptureWriter | None = None
        self.pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="score")
        self._async_config = async_config
        self.async_jobs: AsyncInference | None = None
        self.traffic = Traffic()
        self._summary: asyncio.TimerHandle | None = None
        self.execution_parameters = orjson.dumps(
            {
                "MaxConcurrentTransforms": model.workers,
                "BatchStrategy": "MULTI_RECORD",
                "MaxPayloadInMB": model.max_payload_mb,
            }
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self.http(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self.lifespan(receive, send)

    # ---- lifespan ------------------------------------------------------------------------------
    async def lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                if self._capture_factory is not None:
                    self.capture = self._capture_factory()
                if self._async_config is not None:
                    self.async_jobs = AsyncInference(self._async_config, self.score, self.pool, self.captured)
                    self.async_jobs.start()
                self.traffic.reset()
                self._summary = asyncio.get_running_loop().call_later(SUMMARY_S, self.log_traffic)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self._summary is not None:
                    self._summary.cancel()
                if self.async_jobs is not None:  # queued requests are answered before the exit
                    await self.async_jobs.stop()
                if self.capture is not None:  # on the loop's thread: its last flush may be queued
                    self.capture.close()
                self.pool.shutdown(wait=True)
                self.log_traffic(again=False)
                await send({"type": "lifespan.shutdown.complete"})
                return

    def log_traffic(self, again: bool = True) -> None:
        """The traffic summary: every SUMMARY_S while serving, and what is left at shutdown."""
        line = self.traffic.summary()
        if line:
            log.info("%s", line)
        if again:
            self._summary = asyncio.get_running_loop().call_later(SUMMARY_S, self.log_traffic)

    # ---- one request ---------------------------------------------------------------------------
    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        start = time.perf_counter()
        path: str = scope["path"]
        method: str = scope["method"]
        note = ""
        runtime = False
        try:
            allowed = ROUTES.get(path)
            endpoint = None
            asynchronous = False
            if allowed is None:
                match = RUNTIME_ROUTE.match(path)
                if match:
                    allowed, endpoint, runtime = "POST", match.group(1), True
                    asynchronous = match.group(2) == "async-invocations"
            if allowed is None:
                status = await self.error(
                    send, 404, f"no route {path[:200]!r}; routes: {[*ROUTES, RUNTIME_HINT]}"
                )
            elif method == "OPTIONS":
                status = await self.respond(send, 204, b"", None, [(b"allow", _allow(allowed))])
            elif method != allowed and not (method == "HEAD" and allowed == "GET"):
                status = await self.error(
                    send, 405, f"{path} takes {allowed}, not {method}", [(b"allow", _allow(allowed))]
                )
            elif path == "/ping":
                status = await self.respond(send, 200, PING_BODY, payload.JSON)
            elif path == "/execution-parameters":
                status = await self.respond(send, 200, self.execution_parameters, payload.JSON)
            elif runtime and endpoint != self.model.endpoint_name:
                status = await self.runtime_validation_error(
                    send,
                    f"Endpoint {endpoint} of account local not found "
                    f"(this server is {self.model.endpoint_name})",
                )
            elif asynchronous:
                status, note = await self.invoke_async(scope, receive, send)
            else:
                status, note = await self.invoke(scope, receive, send, runtime)
        except RequestError as err:  # raised before a response started
            status = await self.error(send, err.status, err.message, runtime=runtime)
            note = _why(err)
        except Exception:  # the client gets a short message, the log one traceback
            log.exception("internal error on %s %s", method, path)
            status = await self.error(
                send, 500, "internal error while handling the request; see the server log"
            )
        elapsed = time.perf_counter() - start
        self.traffic.add(status, elapsed)
        if status >= 400 or self.model.access_log:
            log.info("%s %s %d %.2fms%s", method, path[:200], status, elapsed * 1000, note)

    async def invoke(self, scope: Scope, receive: Receive, send: Send, runtime: bool) -> tuple[int, str]:
        headers = _headers(scope)
        contributions = _contributions(scope, headers)
        caller_id = headers.get("x-amzn-sagemaker-inference-id")
        if caller_id is not None and not INFERENCE_ID.match(caller_id):
            raise RequestError(
                400, "InferenceId must be 1 to 64 printable characters, not starting with a space"
            )
        try:
            body = await self.read_body(headers, receive)
        except RequestError as err:
            close = [(b"connection", b"close")] if err.status in (411, 413) else []
            return await self.error(send, err.status, err.message, close, runtime=runtime), _why(err)
        content_type = headers.get("content-type")
        accept = headers.get("accept")
        event = event_id()
        inference_id = caller_id or event
        try:
            if len(body) > INLINE_BYTES or contributions:
                loop = asyncio.get_running_loop()
                out, kind, rows = await loop.run_in_executor(
                    self.pool, self.score, body, content_type, accept, inference_id, contributions
                )
            else:
                out, kind, rows = self.score(body, content_type, accept, inference_id, contributions)
        except RequestError as err:
            return await self.error(send, err.status, err.message, runtime=runtime), _why(err)
        extra = [(b"x-amzn-invoked-production-variant", self.model.variant_name.encode())] if runtime else []
        status = await self.respond(send, 200, out, kind, extra)
        capture = self.capture
        if capture is not None and capture.sampled():
            capture.offer(body, content_type or "", out, kind, event, caller_id)
        self.traffic.rows += rows
        return status, f" rows={rows}" if self.model.access_log else ""

    def captured(
        self, body: bytes, content_type: str, out: bytes, kind: str, event_id: str, caller_id: str | None
    ) -> None:
        capture = self.capture
        if capture is not None and capture.sampled():
            capture.offer(body, content_type, out, kind, event_id, caller_id)

    async def invoke_async(self, scope: Scope, receive: Receive, send: Send) -> tuple[int, str]:
        """InvokeEndpointAsync: validate, queue, answer 202 with where the result will be."""
        if self.async_jobs is None:
            message = f"Endpoint {self.model.endpoint_name} is not configured for asynchronous inference"
            return await self.runtime_validation_error(send, message), ""
        headers = _headers(scope)
        caller_id = headers.get("x-amzn-sagemaker-inference-id")
        try:
            if caller_id is not None and not INFERENCE_ID.match(caller_id):
                raise AsyncValidationError(
                    "InferenceId must be 1 to 64 printable characters, not starting with a space"
                )
            try:
                body = await self.read_body(headers, receive) if _has_body(headers) else b""
            except RequestError as err:
                raise AsyncValidationError(err.message) from None
            job = self.async_jobs.submit(headers, body, _contributions(scope, headers))
        except AsyncValidationError as err:
            return await self.runtime_validation_error(send, str(err)), f" error={str(err)[:200]!r}"
        except asyncio.QueueFull:
            body = orjson.dumps({"message": "the asynchronous queue is full; retry later"})
            error = [(b"x-amzn-errortype", b"ServiceUnavailable")]
            return await self.respond(send, 503, body, "application/json", error), " queue full"
        locations = [
            (b"x-amzn-sagemaker-outputlocation", job.output.encode()),
            (b"x-amzn-sagemaker-failurelocation", job.failure.encode()),
        ]
        status = await self.respond(send, 202, accepted_body(job), "application/json", locations)
        return status, f" queued={job.inference_id}"

    def score(
        self,
        body: bytes,
        content_type: str | None,
        accept: str | None,
        inference_id: str,
        contributions: bool,
    ) -> tuple[bytes, str, int]:
        kind = payload.response_type(accept)
        if contributions and kind == payload.CSV:
            raise RequestError(
                406, "contributions are returned as JSON or JSON Lines, not CSV; change Accept"
            )
        model = self.model
        encoded = payload.decode(body, content_type, model.encoder)
        probabilities = model.predictor.predict(encoded.matrix)
        out = payload.encode(
            probabilities,
            model.threshold,
            kind,
            model_version=model.version,
            inference_id=inference_id,
            ids=encoded.ids,
            warnings=encoded.warnings,
            contributions=model.predictor.contributions(encoded.matrix) if contributions else None,
        )
        return out, kind, len(probabilities)

    async def read_body(self, headers: dict[str, str], receive: Receive) -> bytes:
        limit = self.model.max_payload_mb * MB
        declared = headers.get("content-length")
        if declared is None and "chunked" not in headers.get("transfer-encoding", "").lower():
            raise RequestError(411, "Content-Length is required (or a chunked body)")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _drain(receive, DRAIN_FACTOR * limit)
            raise self.too_large(declared)
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise RequestError(CLIENT_GONE, "client closed the connection before sending the whole body")
            chunk = message.get("body", b"")
            size += len(chunk)
            more = message.get("more_body", False)
            if size > limit:
                if more:
                    await _drain(receive, DRAIN_FACTOR * limit - size)
                raise self.too_large(declared)
            chunks.append(chunk)
            if not more:
                return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def too_large(self, declared: str | None) -> RequestError:
        return RequestError(
            413,
            f"payload of {declared or 'more than the limit in'} bytes exceeds the "
            f"{self.model.max_payload_mb} MB limit; send fewer records at a time",
        )

    # ---- responses -----------------------------------------------------------------------------
    async def respond(
        self,
        send: Send,
        status: int,
        body: bytes,
        content_type: str | None,
        extra: list[tuple[bytes, bytes]] | None = None,
    ) -> int:
        headers = [(b"content-length", str(len(body)).encode())]
        if content_type:
            headers.append((b"content-type", content_type.encode()))
        if extra:
            headers.extend(extra)
        try:
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": body})
        except (OSError, RuntimeError):  # the client closed the connection: nobody to answer
            return CLIENT_GONE
        return status

    async def error(
        self,
        send: Send,
        status: int,
        message: str,
        extra: list[tuple[bytes, bytes]] | None = None,
        *,
        runtime: bool = False,
    ) -> int:
        if runtime and status < 500:
            return await self.runtime_model_error(send, status, message, extra)
        return await self.respond(send, status, payload.error_body(message), payload.JSON, extra)

    async def runtime_model_error(
        self, send: Send, status: int, message: str, extra: list[tuple[bytes, bytes]] | None
    ) -> int:
        """The container said 4xx: SageMaker Runtime answers 424 ModelError with the original."""
        original = payload.error_body(message).decode()
        body = orjson.dumps(
            {
                "ErrorCode": "CLIENT_ERROR_FROM_MODEL",
                "OriginalStatusCode": status,
                "OriginalMessage": original,
                "LogStreamArn": f"local:{self.model.endpoint_name}/{self.model.variant_name}",
                "message": f'Received client error ({status}) from primary with message "{original}".',
            }
        )
        headers = [(b"x-amzn-errortype", b"ModelError"), *(extra or [])]
        return await self.respond(send, 424, body, "application/json", headers)

    async def runtime_validation_error(self, send: Send, message: str) -> int:
        body = orjson.dumps({"message": message})
        return await self.respond(
            send, 400, body, "application/json", [(b"x-amzn-errortype", b"ValidationError")]
        )


RUNTIME_HINT = "/endpoints/<name>/invocations"


async def _drain(receive: Receive, budget: int) -> None:
    """Reads and drops a refused body (up to `budget` bytes), so the client sees the 413
    instead of a connection reset; past the budget the connection is simply closed."""
    while budget > 0:
        message = await receive()
        budget -= len(message.get("body", b""))
        if message["type"] == "http.disconnect" or not message.get("more_body", False):
            return


def _why(err: RequestError) -> str:
    """The reason, for the log line of a refused request (short: the client got all of it)."""
    return f" error={err.message[:200]!r}"


def _allow(method: str) -> bytes:
    return b"GET, HEAD, OPTIONS" if method == "GET" else f"{method}, OPTIONS".encode()


def _contributions(scope: Scope, headers: dict[str, str]) -> bool:
    """`contributions=true` in the query string or in X-Amzn-SageMaker-Custom-Attributes."""
    query = scope.get("query_string", b"")
    attributes = headers.get("x-amzn-sagemaker-custom-attributes", "")
    if not query and not attributes:  # the usual request: nothing to parse
        return False
    options = {
        **parse_qs(query.decode("latin-1")),
        **parse_qs(attributes.replace(";", "&")),
    }
    return options.get("contributions", ["false"])[-1].lower() in ("1", "true", "yes")


def _has_body(headers: dict[str, str]) -> bool:
    return headers.get("content-length", "0") != "0" or "transfer-encoding" in headers


def _headers(scope: Scope) -> dict[str, str]:
    return {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]}
