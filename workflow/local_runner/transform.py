"""CreateModel and CreateTransformJob requests, run locally the way SageMaker runs them.

A Transform step names a model (made by a CreateModel step); the job starts that model's
serving container (here: the server as a local process, `endpoint.LocalEndpoint`), asks it for
`/execution-parameters`, then for every object under the input prefix:

* `SplitType`: `Line` splits the object into records at line breaks; `None` sends it whole;
* `BatchStrategy`: `MultiRecord` packs as many records as fit in `MaxPayloadInMB` into one
  request, `SingleRecord` sends one record per request;
* `AssembleWith`: `Line` joins the responses with line breaks (adding one where a response
  lacks it), `None` concatenates them;

and writes `<S3OutputPath>/<object key>.out`.  `MaxConcurrentTransforms` (else the container's
`/execution-parameters` value) requests are in flight at once, each on its own connection, and
the answers are assembled in record order.  A request the server refuses fails the job with
the object, the record range and the server's message, as SageMaker reports it.
"""

from __future__ import annotations

import http.client
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import orjson

from workflow.local_runner.cache import cache_key
from workflow.local_runner.endpoint import SERVE_MODULE, EndpointError, LocalEndpoint
from workflow.local_runner.jobs import StepFailed
from workflow.local_runner.registry import LocalModelRegistry, RegistryError
from workflow.local_runner.storage import LocalS3, file_digest

MB = 1024 * 1024


def run_create_model(
    step: str,
    args: dict[str, Any],
    models: dict[str, dict[str, Any]],
    name: str,
    registry: LocalModelRegistry,
) -> dict[str, Any]:
    """Records the model under its name: its container, from the request or from the model
    package it names (the package's model data), and its environment."""
    container = dict(args.get("PrimaryContainer") or (args.get("Containers") or [{}])[0])
    package_arn = container.get("ModelPackageName")
    if package_arn:
        group, _, version = str(package_arn).rpartition("model-package/")[2].partition("/")
        try:
            package = registry.get(group, int(version))
        except (RegistryError, ValueError) as err:
            raise StepFailed(step, f"ModelPackageName {package_arn!r}: {err}") from None
        container["LocalModelArchive"] = package.get("LocalModelArchive")
        # the image the package registered (its inference specification), as SageMaker uses it
        package_containers = package.get("InferenceSpecification", {}).get("Containers") or [{}]
        container.setdefault("Image", package_containers[0].get("Image"))
    elif container.get("ModelDataUrl"):
        container["LocalModelArchive"] = None
    else:
        raise StepFailed(step, "CreateModel request names neither a ModelPackageName nor a ModelDataUrl")
    models[name] = {"ModelName": name, "Container": container}
    return {"ModelName": name}


def model_archive(model: dict[str, Any], s3: LocalS3) -> Path:
    """The model.tar.gz a CreateModel step's model serves (registered copy or ModelDataUrl)."""
    container = model["Container"]
    return Path(container["LocalModelArchive"] or s3.path(container["ModelDataUrl"]))


def model_identity(model: dict[str, Any], s3: LocalS3) -> dict[str, Any]:
    """What a model is, for a Transform step's cache key: its image, its environment and the
    sha256 of its model archive.  Not its name: CreateModel names it after the execution, and
    a new registered version of the same trained model is the same model."""
    container = model["Container"]
    return {
        "Image": container.get("Image"),
        "Environment": container.get("Environment") or {},
        "ModelDataSha256": file_digest(model_archive(model, s3)),
    }


def transform_cache_key(
    symbolic_args: dict[str, Any], args: dict[str, Any], model: dict[str, Any], s3: LocalS3
) -> str:
    """The step cache's key of a transform job (`cache.cache_key`): its arguments with the model
    named by what it is, the serving code, and the content of every input object."""
    return cache_key(
        "Transform", {**symbolic_args, "ModelName": model_identity(model, s3)}, args, SERVE_MODULE, s3
    )


def run_transform(
    step: str,
    args: dict[str, Any],
    job_dir: Path,
    s3: LocalS3,
    models: dict[str, dict[str, Any]],
    job_name: str,
) -> dict[str, Any]:
    model = models.get(args["ModelName"])
    if model is None:
        raise StepFailed(step, f"model {args['ModelName']!r} was not created in this execution")
    container = model["Container"]
    archive = model_archive(model, s3)
    source = args["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"]
    objects = s3.objects(source)
    if not objects:
        raise StepFailed(step, f"no input objects at {source}")
    output = args["TransformOutput"]["S3OutputPath"].rstrip("/")
    split = args["TransformInput"].get("SplitType", "None")
    content_type = args["TransformInput"].get("ContentType", "text/csv")
    accept = args["TransformOutput"].get("Accept", "text/csv")
    assemble = args["TransformOutput"].get("AssembleWith", "None")
    job_dir.mkdir(parents=True, exist_ok=True)
    log_path = job_dir / "logs" / "endpoint.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    env = {k: str(v) for k, v in (container.get("Environment") or {}).items()}
    asked = int(args.get("MaxConcurrentTransforms") or 0)
    # one server worker per concurrent request asked for, up to the cores this machine has
    workers = max(1, min(asked, os.cpu_count() or 1))
    with log_path.open("w") as log:
        try:
            endpoint = LocalEndpoint(
                archive,
                endpoint_name=job_name,
                model_version=model["ModelName"],
                workers=workers,
                env=env,
                log=log,
            ).wait_ready()
        except EndpointError as err:
            raise StepFailed(step, f"the model's server did not start: {err}", log_path) from None
        try:
            conn = http.client.HTTPConnection("127.0.0.1", endpoint.port, timeout=300)
            conn.request("GET", "/execution-parameters")
            parameters = orjson.loads(conn.getresponse().read())
            conn.close()
            strategy = args.get("BatchStrategy") or parameters.get("BatchStrategy", "MULTI_RECORD")
            max_mb = int(args.get("MaxPayloadInMB") or parameters.get("MaxPayloadInMB", 6))
            concurrency = max(1, asked or int(parameters.get("MaxConcurrentTransforms", 1)))
            client = _Client(endpoint.port, {"Content-Type": content_type, "Accept": accept})
            pool = ThreadPoolExecutor(concurrency, thread_name_prefix="transform")
            requests = records_out = 0
            for key, path in objects:
                body = path.read_bytes()
                batches = _batches(body, split, strategy, max_mb * MB, key, step)
                answers = []
                # in flight at once: `concurrency` requests; answers come back in record order
                for (first, _), (status, answer) in zip(
                    batches, pool.map(client.post, [b for _, b in batches]), strict=True
                ):
                    if status != 200:
                        pool.shutdown(cancel_futures=True)
                        raise StepFailed(
                            step,
                            f"{key}: records from {first}: the model answered {status}: "
                            f"{answer[:500].decode(errors='replace')}",
                            log_path,
                        )
                    answers.append(answer)
                requests += len(batches)
                assembled = _assemble(answers, assemble)
                records_out += len(assembled.splitlines())
                target = s3.path(f"{output}/{key}.out")
                target.parent.mkdir(parents=True, exist_ok=True)
                tmp = target.with_name(f".{target.name}.tmp")
                tmp.write_bytes(assembled)
                tmp.replace(target)
            pool.shutdown()
        finally:
            endpoint.stop()
    return {
        "TransformJobName": job_name,
        "TransformJobStatus": "Completed",
        "TransformOutput.S3OutputPath": output,
        "ModelName": args["ModelName"],
        "LocalSummary": {
            "objects": len(objects),
            "requests": requests,
            "output_lines": records_out,
            "concurrent_requests": concurrency,
        },
    }


class _Client:
    """POSTs mini-batches to /invocations, one keep-alive connection per calling thread."""

    def __init__(self, port: int, headers: dict[str, str]):
        self.port = port
        self.headers = headers
        self.local = threading.local()

    def post(self, body: bytes) -> tuple[int, bytes]:
        conn = getattr(self.local, "conn", None)
        if conn is None:
            conn = self.local.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=300)
        conn.request("POST", "/invocations", body, self.headers)
        response = conn.getresponse()
        return response.status, response.read()


def _batches(
    body: bytes, split: str, strategy: str, limit: int, key: str, step: str
) -> list[tuple[int, bytes]]:
    """(index of the first record, request body) pairs, as SageMaker forms mini-batches."""
    if split == "None":
        if len(body) > limit:
            raise StepFailed(step, f"{key}: {len(body)} bytes exceed MaxPayloadInMB with SplitType None")
        return [(0, body)]
    if split != "Line":
        raise StepFailed(step, f"SplitType {split!r} cannot run locally; supported: Line, None")
    lines = [line + b"\n" for line in body.splitlines() if line.strip()]
    if strategy in ("SingleRecord", "SINGLE_RECORD"):
        return [(i, line) for i, line in enumerate(lines)]
    batches: list[tuple[int, bytes]] = []
    current: list[bytes] = []
    size = first = 0
    for i, line in enumerate(lines):
        if len(line) > limit:
            raise StepFailed(step, f"{key}: record {i} alone is larger than MaxPayloadInMB")
        if current and size + len(line) > limit:
            batches.append((first, b"".join(current)))
            current, size, first = [], 0, i
        current.append(line)
        size += len(line)
    if current:
        batches.append((first, b"".join(current)))
    return batches


def _assemble(answers: list[bytes], assemble: str) -> bytes:
    if assemble == "Line":
        return b"".join(a if a.endswith(b"\n") else a + b"\n" for a in answers if a)
    return b"".join(answers)
