"""The serving payload rules and settings, without a server."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline_steps.common.feature_spec import load_spec
from pipeline_steps.serve import payload
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


def test_json_values_are_normalised():
    [row] = payload.decode(
        b'{"instances": [{"tenure_months": "12", "has_prior_loan": 1, "industry": "retail", '
        b'"employees": null}]}',
        "application/json; charset=utf-8",
        SPEC,
    )
    assert row == {"tenure_months": 12.0, "has_prior_loan": True, "industry": "retail", "employees": None}


def test_csv_header_detection():
    rows = payload.decode(b"region,tenure_months\nnorth,3\nsouth,\n", "text/csv", SPEC)
    assert rows == [{"region": "north", "tenure_months": 3.0}, {"region": "south", "tenure_months": None}]
    line = ",".join(["m-1", "retail", "north", "3", "", "1000", "700", "5000", "no"] + [""] * 8)
    [row] = payload.decode(line.encode(), "text/csv", SPEC)
    assert row["industry"] == "retail" and row["has_prior_loan"] is False and row["employees"] is None


def test_encode_csv_and_json():
    assert payload.encode([0.25, 0.75], 0.5, "text/csv") == b"0.25,0\n0.75,1\n"
    want = b'{"predictions": [{"probability": 0.5, "label": 1}]}'
    assert payload.encode([0.5], 0.5, "application/json") == want


def test_settings_defaults_and_errors():
    s = Settings.from_env({})
    got = (s.host, s.port, str(s.model_dir), s.threshold, s.max_payload_mb)
    assert got == ("0.0.0.0", 8080, "/opt/ml/model", None, 6)  # None: the model's own threshold
    assert Settings.from_env({"DECISION_THRESHOLD": "0.3"}).threshold == 0.3
    assert str(Settings.from_env({"OPT_ML_ROOT": "/x"}).model_dir) == "/x/model"
    assert str(Settings.from_env({"OPT_ML_ROOT": "/x", "SM_MODEL_DIR": "/m"}).model_dir) == "/m"
    assert Settings.from_env({"SAGEMAKER_BIND_TO_PORT": "9000"}).port == 9000
    with pytest.raises(ConfigError, match="DECISION_THRESHOLD='1.5' is outside"):
        Settings.from_env({"DECISION_THRESHOLD": "1.5"})
    with pytest.raises(ConfigError, match="SAGEMAKER_BIND_TO_PORT='http' is not an integer"):
        Settings.from_env({"SAGEMAKER_BIND_TO_PORT": "http"})
