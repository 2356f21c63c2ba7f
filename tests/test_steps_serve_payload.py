"""The serving payload rules and settings, without a server."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pipeline_steps.common.feature_spec import load_spec
from pipeline_steps.serve import payload
from pipeline_steps.serve.features import FeatureEncoder
from pipeline_steps.serve.payload import RequestError
from pipeline_steps.serve.server import ConfigError, Settings

SPEC = load_spec(Path(__file__).resolve().parents[1] / "workflow" / "specs" / "merchant_credit.yaml")


def test_columns_come_from_the_spec():
    assert payload.csv_columns(SPEC) == [c.name for c in SPEC.columns] + SPEC.aggregate_names
    assert payload.serving_columns(SPEC)[:2] == [SPEC.entity_id, SPEC.entity_time]
    assert not set(SPEC.derived_names) & set(payload.serving_columns(SPEC))


@pytest.mark.parametrize(
    "accept, kind",
    [
        (None, "application/json"),
        ("", "application/json"),
        ("*/*", "application/json"),
        ("text/csv", "text/csv"),
        ("text/csv;q=0.9, application/json", "text/csv"),
        ("application/xml, application/json", "application/json"),
        ("text/*", "text/csv"),
    ],
)
def test_response_type(accept, kind):
    assert payload.response_type(accept) == kind


def test_response_type_refuses_unknown():
    with pytest.raises(RequestError) as err:
        payload.response_type("image/png")
    assert err.value.status == 406


ENCODER = FeatureEncoder(SPEC)


def column(name: str) -> int:
    return SPEC.model_features.index(name)


def test_json_values_are_normalised():
    encoded = payload.decode(
        b'{"instances": [{"tenure_months": "12", "has_prior_loan": 1, "industry": "retail", '
        b'"employees": null, "application_id": "a-1"}]}',
        "application/json; charset=utf-8",
        ENCODER,
    )
    [row] = encoded.matrix
    assert row[column("tenure_months")] == 12.0 and row[column("has_prior_loan")] == 1.0
    assert row[column("industry")] == SPEC.column("industry").categories.index("retail")
    assert np.isnan(row[column("employees")]) and encoded.ids == ["a-1"]


def test_csv_header_detection():
    rows = payload.decode(b"region,tenure_months\nnorth,3\nsouth,\n", "text/csv", ENCODER).matrix
    assert rows[:, column("tenure_months")].tolist()[0] == 3.0 and np.isnan(rows[1, column("tenure_months")])
    assert rows[:, column("region")].tolist() == [0.0, 1.0]
    line = ",".join(["m-1", "retail", "north", "3", "", "1000", "700", "5000", "no"] + [""] * 8)
    [row] = payload.decode(line.encode(), "text/csv", ENCODER).matrix
    assert row[column("industry")] == 0.0 and row[column("has_prior_loan")] == 0.0
    assert np.isnan(row[column("employees")]) and row[column("request_to_revenue")] == 5.0


def test_jsonlines_one_record_a_line():
    body = b'{"tenure_months": 1}\n\n{"tenure_months": 2}\n'
    matrix = payload.decode(body, "application/jsonlines", ENCODER).matrix
    assert matrix[:, column("tenure_months")].tolist() == [1.0, 2.0]
    with pytest.raises(RequestError, match="JSON Lines line 2"):
        payload.decode(b'{"tenure_months": 1}\n[1]\n', "application/x-jsonlines", ENCODER)


def test_encode_csv_json_and_jsonlines():
    meta = {"model_version": "m-1", "inference_id": "i-1"}
    assert (
        payload.encode(np.array([0.25, 0.75]), 0.5, "text/csv", **meta) == b"0.25,0,m-1,i-1\n0.75,1,m-1,i-1\n"
    )
    want = {"predictions": [{"probability": 0.5, "label": 1}], **meta}
    assert json.loads(payload.encode(np.array([0.5]), 0.5, "application/json", **meta)) == want
    lines = payload.encode(np.array([0.1, 0.9]), 0.5, "application/jsonlines", ids=["a", None], **meta)
    assert [json.loads(line) for line in lines.splitlines()] == [
        {"probability": 0.1, "label": 0, "id": "a", **meta},
        {"probability": 0.9, "label": 1, **meta},
    ]


def test_settings_defaults_and_errors():
    s = Settings.from_env({})
    got = (s.host, s.port, str(s.model_dir), s.threshold, s.max_payload_mb)
    assert got == ("0.0.0.0", 8080, "/opt/ml/model", None, 6)  # None: the model's own threshold
    assert not s.access_log and Settings.from_env({"SERVE_ACCESS_LOG": "1"}).access_log  # summary by default
    assert Settings.from_env({"DECISION_THRESHOLD": "0.3"}).threshold == 0.3
    assert str(Settings.from_env({"OPT_ML_ROOT": "/x"}).model_dir) == "/x/model"
    assert str(Settings.from_env({"OPT_ML_ROOT": "/x", "SM_MODEL_DIR": "/m"}).model_dir) == "/m"
    assert Settings.from_env({"SAGEMAKER_BIND_TO_PORT": "9000"}).port == 9000
    with pytest.raises(ConfigError, match="DECISION_THRESHOLD='1.5' is outside"):
        Settings.from_env({"DECISION_THRESHOLD": "1.5"})
    with pytest.raises(ConfigError, match="SAGEMAKER_BIND_TO_PORT='http' is not an integer"):
        Settings.from_env({"SAGEMAKER_BIND_TO_PORT": "http"})
