"""Traffic for the local endpoint: the generator's merchants (normal or drifted) turned into
serving requests (entity columns plus the history aggregates the online store would give),
sent over HTTP to the running server in small CSV batches, each with an inference id.  The
server captures every invocation itself (`pipeline_steps/serve/capture.py`).
"""

from __future__ import annotations

import http.client
import json
import uuid

import numpy as np
import pandas as pd

from pipeline_steps.common.feature_spec import FeatureSpec
from pipeline_steps.monitor.capture import input_columns
from workflow.monitoring.capture_files import csv_records

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


def send(
    port: int, records: pd.DataFrame, spec: FeatureSpec
) -> tuple[list[str | None], np.ndarray, list[str]]:
    """POSTs the records in CSV batches to the endpoint on 127.0.0.1:`port`, each with its own
    InferenceId (the server captures it, so late labels join by it).  A batch the endpoint
    refuses (400) is resent record by record.  Returns (record keys for labels, None where
    refused; probabilities; refusal messages)."""
    lines = csv_records(records, spec)
    keys: list[str | None] = []  # None: the endpoint refused the record (nothing captured)
    scores: list[float] = []
    refused: list[str] = []
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    for first in range(0, len(lines), BATCH):
        batch = lines[first : first + BATCH]
        inference_id = str(uuid.uuid4())
        status, answer = _post(conn, "\n".join(batch), inference_id)
        if status == 400:  # a record the endpoint refuses: send the batch's records one by one
            for i, line in enumerate(batch):
                one_id = f"{inference_id}-{i}"
                status, one = _post(conn, line, one_id)
                if status == 400:
                    refused.append(json.loads(one).get("error", ""))
                    keys.append(None)
                    continue
                keys.append(one_id)
                scores.append(json.loads(one)["predictions"][0]["probability"])
            continue
        predictions = json.loads(answer)["predictions"]
        count = len(predictions)
        keys += [inference_id] if count == 1 else [f"{inference_id}#{i}" for i in range(count)]
        scores += [p["probability"] for p in predictions]
    conn.close()
    return keys, np.array(scores), refused


def _post(conn: http.client.HTTPConnection, body: str, inference_id: str) -> tuple[int, str]:
    headers = {
        "Content-Type": "text/csv",
        "Accept": "application/json",
        "X-Amzn-SageMaker-Inference-Id": inference_id,  # SageMaker Runtime's InferenceId header
    }
    conn.request("POST", "/invocations", body=body.encode(), headers=headers)
    response = conn.getresponse()
    answer = response.read().decode()
    if response.status not in (200, 400):
        raise RuntimeError(f"the endpoint answered {response.status}: {answer[:200]!r}")
    return response.status, answer
