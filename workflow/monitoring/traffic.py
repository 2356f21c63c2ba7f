"""Traffic for the local endpoint: the generator's merchants (normal or drifted) turned into
serving requests (entity columns plus the history aggregates the online store would give),
sent over HTTP to the running server in small CSV batches, each with an inference id.

Capture: the current local server does not capture yet, so the client records each
invocation in SageMaker's data-capture format (request and response as they went over the
wire) under the local capture prefix; a server that captures itself writes the same files.
"""

from __future__ import annotations

import http.client
import json
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline_steps.common.atomic import write_text
from pipeline_steps.common.feature_spec import FeatureSpec
from pipeline_steps.monitor.capture import input_columns
from workflow.monitoring.capture_files import csv_records, hour_path

BATCH = 25


def requests_for(rows: int, seed: int, spec: FeatureSpec, *, drift: bool) -> tuple[pd.DataFrame, np.ndarray]:
    """(request records, true outcomes) for `rows` generated merchants, with the generator's
    upstream mess (missing values where allowed, the odd unparseable or out-of-range value) as
    production traffic has it; the history aggregates are computed the way preprocessing
    computes them, as the online feature store would serve them."""
    from pipeline_steps.preprocess.history import aggregate
    from workflow.datasets.merchant_credit import add_mess, generate

    entities, history = generate(rows, seed, drift=drift)
    messy, messy_history = add_mess(entities, history, seed)
    messy[spec.entity_time] = pd.to_datetime(messy[spec.entity_time], errors="coerce")
    messy = messy[messy[spec.entity_time].notna() & messy[spec.entity_key].notna()].reset_index(drop=True)
    # the store's aggregates come from the same (messy) history preprocessing aggregates
    known = messy_history[messy_history[spec.entity_key].notna()]
    aggregates = aggregate(messy, known, spec).reset_index(drop=True)
    frame = pd.concat([messy, aggregates], axis=1)
    outcomes = pd.to_numeric(messy[spec.label], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    return frame[input_columns(spec)], outcomes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LocalEndpoint:
    process: subprocess.Popen
    port: int

    @classmethod
    def start(cls, model_dir: Path, repo_root: Path, log: Path) -> LocalEndpoint:
        port = free_port()
        handle = log.open("w")
        command = [sys.executable, "-m", "pipeline_steps.serve", "serve", "--host", "127.0.0.1"]
        command += ["--port", str(port), "--model-dir", str(model_dir)]
        process = subprocess.Popen(
            command,
            cwd=repo_root,
            stdout=handle,
            stderr=subprocess.STDOUT,
            env={"SERVE_WORKERS": "2", **_env()},
        )
        endpoint = cls(process, port)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"the local server exited with {process.returncode}; see {log}")
            try:
                if endpoint.get("/ping")[0] == 200:
                    return endpoint
            except OSError:
                time.sleep(0.2)
        endpoint.stop()
        raise RuntimeError(f"the local server did not answer /ping within 60 s; see {log}")

    def get(self, path: str) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()


def _env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith("SM_")}


def send(
    endpoint: LocalEndpoint,
    records: pd.DataFrame,
    spec: FeatureSpec,
    capture_prefix: Path,
    *,
    start: datetime,
    hours: int,
) -> tuple[list[str | None], np.ndarray, list[str]]:
    """POSTs the records in CSV batches; writes one capture line per invocation, spread evenly
    over `hours` from `start`.  A batch the endpoint refuses (400) is resent record by record.
    Returns (record keys for labels, None where refused; probabilities; refusal messages)."""
    lines = csv_records(records, spec)
    keys: list[str | None] = []  # None: the endpoint refused the record (nothing captured)
    scores: list[float] = []
    refused: list[str] = []
    by_hour: dict[datetime, list[str]] = {}
    conn = http.client.HTTPConnection("127.0.0.1", endpoint.port, timeout=30)
    batches = range(0, len(lines), BATCH)
    for n, first in enumerate(batches):
        body = "\n".join(lines[first : first + BATCH])
        inference_id = str(uuid.uuid4())
        when = start + timedelta(seconds=int(n * hours * 3600 / len(batches)))
        status, answer = _post(conn, body)
        if status == 400:  # a record the endpoint refuses: send the batch's records one by one
            for i, line in enumerate(lines[first : first + BATCH]):
                one_id = f"{inference_id}-{i}"
                status, one = _post(conn, line)
                if status == 400:
                    refused.append(json.loads(one).get("error", ""))
                    keys.append(None)
                    continue
                _record(by_hour, line, one, one_id, when)
                keys.append(one_id)
                scores.append(json.loads(one)["predictions"][0]["probability"])
            continue
        predictions = json.loads(answer)["predictions"]
        _record(by_hour, body, answer, inference_id, when)
        count = len(predictions)
        keys += [inference_id] if count == 1 else [f"{inference_id}#{i}" for i in range(count)]
        scores += [p["probability"] for p in predictions]
    conn.close()
    for hour, hour_lines in by_hour.items():
        write_text(hour_path(capture_prefix, hour) / f"{uuid.uuid4()}.jsonl", "\n".join(hour_lines) + "\n")
    return keys, np.array(scores), refused


def _post(conn: http.client.HTTPConnection, body: str) -> tuple[int, str]:
    headers = {"Content-Type": "text/csv", "Accept": "application/json"}
    conn.request("POST", "/invocations", body=body.encode(), headers=headers)
    response = conn.getresponse()
    answer = response.read().decode()
    if response.status not in (200, 400):
        raise RuntimeError(f"the endpoint answered {response.status}: {answer[:200]!r}")
    return response.status, answer


def _record(
    by_hour: dict[datetime, list[str]], body: str, answer: str, inference_id: str, when: datetime
) -> None:
    by_hour.setdefault(when.replace(minute=0, second=0, microsecond=0), []).append(
        _capture_line(body, answer, inference_id, when)
    )


def _capture_line(body: str, answer: str, inference_id: str, when: datetime) -> str:
    return json.dumps(
        {
            "captureData": {
                "endpointInput": {
                    "observedContentType": "text/csv",
                    "mode": "INPUT",
                    "data": body,
                    "encoding": "CSV",
                },
                "endpointOutput": {
                    "observedContentType": "application/json",
                    "mode": "OUTPUT",
                    "data": answer,
                    "encoding": "JSON",
                },
            },
            "eventMetadata": {
                "eventId": str(uuid.uuid5(uuid.NAMESPACE_URL, inference_id)),
                "inferenceId": inference_id,
                "inferenceTime": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
            },
            "eventVersion": "0",
        }
    )
