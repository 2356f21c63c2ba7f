"""Shared by the serving tests: a small real model, raw records, and the server as a process."""

from __future__ import annotations

import csv
import io
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import xgboost as xgb

from pipeline_steps.common import transform
from pipeline_steps.common.feature_spec import load_spec
from pipeline_steps.serve import payload

ROOT = Path(__file__).resolve().parents[1]
SPEC_PATH = ROOT / "workflow" / "specs" / "merchant_credit.yaml"
SPEC = load_spec(SPEC_PATH)
THRESHOLD = 0.3


# ---- data and model --------------------------------------------------------------------------
def make_records(n: int, seed: int) -> list[dict]:
    """Raw serving records for every entity column and aggregate, valid, some values missing."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        row: dict = {SPEC.entity_id: f"app-{seed}-{i}", SPEC.entity_time: "2025-03-01"}
        for name in payload.csv_columns(SPEC):
            kind = SPEC.feature_type(name)
            column = next((c for c in SPEC.columns if c.name == name), None)
            lo = column.min if column and column.min is not None else 0
            hi = column.max if column and column.max is not None else 50_000
            if rng.random() < 0.08:
                row[name] = None
            elif kind == "category":
                row[name] = rng.choice(list(SPEC.column(name).categories))
            elif kind == "boolean":
                row[name] = rng.random() < 0.4
            elif kind == "integer":
                row[name] = rng.randint(int(lo), int(min(hi, lo + 700)))
            elif kind == "number":
                row[name] = round(rng.uniform(lo, min(hi, lo + 50_000)), 3)
            else:
                row[name] = f"m-{rng.randint(1, 999)}"
        rows.append(row)
    return rows


def expected(records: list[dict], booster: xgb.Booster) -> list[float]:
    matrix = transform.model_matrix(transform.records_to_frame(records, SPEC), SPEC)
    return [float(p) for p in booster.inplace_predict(matrix)]


def build_model_dir(directory: Path) -> Path:
    """A small real XGBoost model trained on rows built from the spec, in the train step's layout."""
    directory.mkdir(parents=True, exist_ok=True)
    records = make_records(600, seed=1)
    matrix = transform.model_matrix(transform.records_to_frame(records, SPEC), SPEC)
    rng = np.random.default_rng(0)
    score = np.nan_to_num(matrix[:, SPEC.model_features.index("owner_credit_score")], nan=600) / 850
    labels = (rng.random(len(records)) > score).astype(np.float32)
    data = xgb.DMatrix(matrix, label=labels, feature_names=SPEC.model_features)
    params = {"objective": "binary:logistic", "max_depth": 3, "eta": 0.3}
    booster = xgb.train(params, data, num_boost_round=20)
    booster.save_model(str(directory / "xgboost-model.json"))
    shutil.copy(SPEC_PATH, directory / "feature_spec.yaml")
    meta = {"feature_names": SPEC.model_features, "spec_digest": SPEC.digest, "objective": "binary:logistic"}
    (directory / "model_meta.json").write_text(json.dumps(meta))
    return directory


def load_booster(model_dir: Path) -> xgb.Booster:
    b = xgb.Booster()
    b.load_model(str(model_dir / "xgboost-model.json"))
    return b


# ---- the server process ----------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """The server as SageMaker runs it; its log goes to a file (a pipe could fill and block it)."""

    def __init__(self, model_dir: Path, *args: str, python: list[str] | None = None, **env: str):
        """`python -m pipeline_steps.serve serve *args`, or `python *python` (a wrapper that runs it)."""
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        full_env = {
            **os.environ,
            "SM_MODEL_DIR": str(model_dir),
            "SAGEMAKER_BIND_TO_PORT": str(self.port),
            "SERVE_HOST": "127.0.0.1",
            "PYTHONPATH": str(ROOT),
            "SERVE_WORKERS": "1",  # one worker starts fastest; tests that need more say so
            **env,
        }
        self.log_file = Path(tempfile.mkstemp(prefix="serve-", suffix=".log")[1])
        with self.log_file.open("w") as handle:
            self.proc = subprocess.Popen(
                [sys.executable, *(python or ["-m", "pipeline_steps.serve", "serve", *args])],
                cwd=ROOT,
                env=full_env,
                stdout=handle,
                stderr=subprocess.STDOUT,
                text=True,
            )

    @property
    def log(self) -> str:
        return self.log_file.read_text(errors="replace")

    def wait_ready(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited {self.proc.returncode}: {self.log}")
            try:
                if get(self.url + "/ping", timeout=2)[0] == 200:
                    return
            except OSError:
                time.sleep(0.1)
        raise AssertionError("server did not answer /ping in time")

    def stop(self) -> tuple[int, str]:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.wait()

    def wait(self, timeout: float = 40) -> tuple[int, str]:
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        return self.proc.returncode, self.log


def request(
    url: str,
    data: bytes | None = None,
    headers: dict | None = None,
    method: str | None = None,
    timeout: float = 30,
):
    req = urllib.request.Request(url, data=data, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read()


def get(url: str, timeout: float = 30):
    return request(url, timeout=timeout)


def post_json(url: str, doc, accept: str | None = None):
    headers = {"Content-Type": "application/json"}
    if accept:
        headers["Accept"] = accept
    return request(url + "/invocations", json.dumps(doc).encode(), headers)


def cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def to_csv(records: list[dict], columns: list[str], header: bool) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    if header:
        writer.writerow(columns)
    for r in records:
        writer.writerow([cell(r.get(c)) for c in columns])
    return out.getvalue().encode()
